"""Tiny models and data shared by the model tests."""

import numpy as np

import keras_simclr as ks


def tiny_images(count=16, size=16, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (count, size, size, 3), dtype="uint8")


def tiny_model(
    size=16, probe_classes=None, synchronized=False, augmentation=None, seed=0
):
    """ResNet-18 x1/16 with the CIFAR recipe (`ks.recipes`), 16-d projections."""
    model = ks.recipes.simclr_model(
        18,
        0.0625,
        size,
        temperature=0.5,
        projection_dim=16,
        probe_classes=probe_classes,
        synchronized_batch_norm=synchronized,
        seed=seed,
    )
    if augmentation is None:
        return model
    return ks.SimCLRModel(
        model.encoder,
        model.projection_head,
        augmentation,
        temperature=0.5,
        probe_classes=probe_classes,
    )


def fixed_augmentation(size=16):
    """No randomness: both views are the whole image (for exact comparisons)."""
    return ks.layers.SimCLRAugmentation(
        size,
        crop_area=(1.0, 1.0),
        aspect_ratio=(1.0, 1.0),
        flip=False,
        jitter_rate=0.0,
        grayscale_rate=0.0,
        blur_rate=0.0,
    )
