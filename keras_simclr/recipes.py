"""SimCLR's recipe, written once: augmentation, backbone, model, optimizer.

Reference: Chen et al., 2020, Appendix B.1 (ImageNet) and B.9 (CIFAR-10).
Each function returns the library's building blocks configured as the paper
does, with every choice an argument; the command line, the benchmarks, the
tests and the notebooks build their models here, so the recipe is stated in
one place. Bypass it by composing the blocks yourself.

    import keras_simclr as ks
    model = ks.recipes.simclr_model(depth=18, width_multiplier=0.25, image_size=32)
    model.compile(optimizer=ks.recipes.pretraining_optimizer(
        batch_size=256, total_steps=epochs * steps_per_epoch))
"""

from keras_simclr.layers import ProjectionHead, SimCLRAugmentation
from keras_simclr.layers.simclr_augmentation import SMALL_IMAGE_SIDE
from keras_simclr.models import ResNetBackbone
from keras_simclr.optimizers import LARS, WarmupCosineDecay, scaled_learning_rate
from keras_simclr.simclr_model import SimCLRModel

# Appendix B.1: "LearningRate = 0.3 × BatchSize/256" or "0.075 × sqrt(BatchSize)".
BASE_LEARNING_RATES = {"linear": 0.3, "sqrt": 0.075}
# Appendix B.1: "10 epochs" of linear warm-up, here a share of the run for
# short runs (10% of the steps: 10 of 100 epochs).
WARMUP_FRACTION = 0.1


def default_temperature(image_size):
    """The paper's NT-Xent temperature for views of side `image_size`.

    0.5 below 64 pixels (CIFAR-10, Appendix B.9), else 0.1 (ImageNet,
    Appendix B.1). `SimCLRModel`'s own default is the ImageNet 0.1.

    Examples:
        >>> default_temperature(32), default_temperature(224)
        (0.5, 0.1)
    """
    return 0.5 if image_size < SMALL_IMAGE_SIDE else 0.1


def augmentation(image_size, seed=None, **overrides):
    """`SimCLRAugmentation` with the paper's settings for the image size.

    Strength 1.0 and blur with probability 0.5 (ImageNet); below 64 pixels
    strength 0.5 and no blur (CIFAR-10): `SimCLRAugmentation.for_image_size`,
    which reads `layers.simclr_augmentation.paper_settings`.

    Args:
        image_size: int, side of the views.
        seed: int or None.
        **overrides: any other `SimCLRAugmentation` argument (e.g.
            `jitter_strength`, `blur_rate`, `crop_area`, `value_range`).

    Examples:
        >>> augmentation(32).blur_rate, augmentation(224).blur_rate
        (0.0, 0.5)
    """
    return SimCLRAugmentation.for_image_size(image_size, seed=seed, **overrides)


def backbone(
    depth=50, width_multiplier=1.0, image_size=224, synchronized_batch_norm=False
):
    """`ResNetBackbone` for the image size: the CIFAR stem below 64 pixels.

    Reference: Appendix B.9: "we replace the first 7x7 Conv of stride 2 with
    3x3 Conv of stride 1, and also remove the first max pooling operation."

    Args:
        depth: 18, 34, 50, 101 or 152. Defaults to 50.
        width_multiplier: float. Defaults to 1.0.
        image_size: int, the side of the views. Defaults to 224.
        synchronized_batch_norm: bool, global BatchNorm across replicas.

    Examples:
        >>> backbone(18, 0.0625, image_size=32).output_shape
        (None, 32)
    """
    return ResNetBackbone(
        depth,
        width_multiplier,
        cifar_stem=image_size < SMALL_IMAGE_SIDE,
        input_shape=(image_size, image_size, 3),
        synchronized_batch_norm=synchronized_batch_norm,
    )


def simclr_model(
    depth=50,
    width_multiplier=1.0,
    image_size=224,
    temperature=None,
    projection_dim=128,
    projection_layers=2,
    probe_classes=None,
    synchronized_batch_norm=False,
    seed=None,
    chunk_size=None,
    **augmentation_overrides,
):
    """A `SimCLRModel`: ResNet, projection head and augmentation of the paper.

    Build it inside `strategy.scope()` for distributed training, with
    `synchronized_batch_norm=True` for global BatchNorm.

    Args:
        depth: ResNet depth. Defaults to 50.
        width_multiplier: ResNet width. Defaults to 1.0.
        image_size: side of the views. Defaults to 224.
        temperature: NT-Xent temperature; None gives the paper's for the
            image size (`default_temperature(image_size)`).
        projection_dim: output size of the head. Defaults to 128.
        projection_layers: 2 (SimCLR) or 3 (SimCLRv2). Defaults to 2.
        probe_classes: int or None, the online linear probe's classes.
        synchronized_batch_norm: bool, global BatchNorm across replicas.
        seed: augmentation seed.
        chunk_size: images per device per encoder pass (gradient caching,
            `SimCLRModel`); None: one pass.
        **augmentation_overrides: passed to `augmentation`.

    Examples:
        >>> model = simclr_model(18, 0.0625, image_size=16, projection_dim=8)
        >>> model.temperature, model.augmentation.jitter_strength
        (0.5, 0.5)
    """
    if temperature is None:
        temperature = default_temperature(image_size)
    return SimCLRModel(
        backbone(depth, width_multiplier, image_size, synchronized_batch_norm),
        ProjectionHead(
            projection_dim,
            num_layers=projection_layers,
            synchronized_batch_norm=synchronized_batch_norm,
        ),
        augmentation(image_size, seed=seed, **augmentation_overrides),
        temperature=temperature,
        probe_classes=probe_classes,
        chunk_size=chunk_size,
    )


def pretraining_optimizer(
    batch_size,
    total_steps,
    warmup_steps=None,
    learning_rate=None,
    scaling="sqrt",
    weight_decay=1e-6,
    momentum=0.9,
):
    """LARS with the batch-scaled rate, linear warm-up, then cosine decay.

    Reference: Appendix B.1: "LARS optimizer with learning rate of 4.8 (=
    0.3 × BatchSize/256) and weight decay of 10−6 [...] linear warmup for the
    first 10 epochs, and decay the learning rate with the cosine decay
    schedule without restarts"; square-root scaling (0.075 × √BatchSize) for
    small batches.

    Args:
        batch_size: int, the global batch size (images).
        total_steps: int, optimizer steps of the whole run.
        warmup_steps: int; None gives 10% of `total_steps`.
        learning_rate: base rate before batch scaling; None gives 0.3
            (linear) or 0.075 (sqrt).
        scaling: "sqrt" (default, better below batch 1024) or "linear".
        weight_decay: float. Defaults to 1e-6.
        momentum: float. Defaults to 0.9.

    Returns:
        A `LARS` optimizer whose rate is a `WarmupCosineDecay`.

    Examples:
        >>> optimizer = pretraining_optimizer(256, total_steps=1000)
        >>> schedule = optimizer.get_config()["learning_rate"]["config"]
        >>> round(schedule["peak_learning_rate"], 3), schedule["warmup_steps"]
        (1.2, 100)
    """
    if scaling not in BASE_LEARNING_RATES:
        raise ValueError(
            f'`scaling` must be "linear" or "sqrt". Received: scaling={scaling!r}'
        )
    if int(total_steps) != total_steps or total_steps < 1:
        raise ValueError(
            f"`total_steps` must be a positive int. Received: {total_steps!r}"
        )
    if learning_rate is None:
        learning_rate = BASE_LEARNING_RATES[scaling]
    if warmup_steps is None:
        warmup_steps = int(WARMUP_FRACTION * total_steps)
    peak = scaled_learning_rate(learning_rate, batch_size, scaling)
    schedule = WarmupCosineDecay(peak, int(total_steps), int(warmup_steps))
    return LARS(schedule, momentum=momentum, weight_decay=weight_decay)
