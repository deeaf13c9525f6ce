"""Tiny models and data shared by the model tests."""

import numpy as np

import keras_simclr as ks


def tiny_images(count=16, size=16, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (count, size, size, 3), dtype="uint8")


def tiny_model(
    size=16, probe_classes=None, synchronized=False, augmentation=None, seed=0
):
    encoder = ks.models.ResNetBackbone(
        18,
        width_multiplier=0.0625,
        cifar_stem=True,
        input_shape=(size, size, 3),
        synchronized_batch_norm=synchronized,
    )
    head = ks.layers.ProjectionHead(16, synchronized_batch_norm=synchronized)
    if augmentation is None:
        augmentation = ks.layers.SimCLRAugmentation(size, blur_rate=0.0, seed=seed)
    return ks.SimCLRModel(
        encoder, head, augmentation, temperature=0.5, probe_classes=probe_classes
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
