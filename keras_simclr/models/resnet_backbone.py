"""ResNet backbones (v1.5) for SimCLR: depths 18–152, widths, CIFAR stem."""

import numbers

import keras

from keras_simclr.layers.fused_batch_norm import FusedBatchNormalization
from keras_simclr.models.initializers import HeNormal

BLOCKS_PER_STAGE = {
    18: (2, 2, 2, 2),
    34: (3, 4, 6, 3),
    50: (3, 4, 6, 3),
    101: (3, 4, 23, 3),
    152: (3, 8, 36, 3),
}
STAGE_FILTERS = (64, 128, 256, 512)
# SimCLR's batch-norm settings (BATCH_NORM_DECAY = 0.9, epsilon 1e-5).
BATCH_NORM_MOMENTUM = 0.9
BATCH_NORM_EPSILON = 1e-5


def scaled_channels(channels, width_multiplier):
    """`channels · width_multiplier`, rounded, at least 1."""
    return max(1, int(round(channels * width_multiplier)))


def batch_norm(x, name, synchronized, zero_gamma=False):
    # Fused kernel on TF (falls back to Keras's when synchronized).
    return FusedBatchNormalization(
        momentum=BATCH_NORM_MOMENTUM,
        epsilon=BATCH_NORM_EPSILON,
        gamma_initializer="zeros" if zero_gamma else "ones",
        synchronized=synchronized,
        name=f"{name}_bn",
    )(x)


def conv(x, filters, kernel_size, strides, name):
    return keras.layers.Conv2D(
        filters,
        kernel_size,
        strides=strides,
        padding="same",
        use_bias=False,
        kernel_initializer=HeNormal(),
        name=f"{name}_conv",
    )(x)


def shortcut(x, filters, strides, name, synchronized):
    if strides == 1 and x.shape[-1] == filters:
        return x
    if strides > 1:
        # A 1×1 convolution of stride s with "same" padding reads pixels
        # 0, s, 2s, ...: subsample first, then convolve with stride 1. Same
        # function and weights; it also avoids a heap corruption in
        # TensorFlow's oneDNN backward pass of the strided 1×1 convolution
        # with one intra-op thread (tests/test_reliability.py).
        x = keras.layers.MaxPooling2D(
            1, strides, padding="same", name=f"{name}_shortcut_subsample"
        )(x)
    x = conv(x, filters, 1, 1, f"{name}_shortcut")
    return batch_norm(x, f"{name}_shortcut", synchronized)


def basic_block(x, filters, strides, name, synchronized):
    """Two 3×3 convolutions (ResNet-18/34)."""
    residual = shortcut(x, filters, strides, name, synchronized)
    x = conv(x, filters, 3, strides, f"{name}_1")
    x = keras.layers.ReLU(name=f"{name}_1_relu")(
        batch_norm(x, f"{name}_1", synchronized)
    )
    x = conv(x, filters, 3, 1, f"{name}_2")
    # Zero-initialised last gamma: each block starts as the identity (SimCLR).
    x = batch_norm(x, f"{name}_2", synchronized, zero_gamma=True)
    x = keras.layers.Add(name=f"{name}_add")([residual, x])
    return keras.layers.ReLU(name=f"{name}_out")(x)


def bottleneck_block(x, filters, strides, name, synchronized):
    """1×1 → 3×3 (strided, v1.5) → 1×1 ×4 (ResNet-50/101/152)."""
    residual = shortcut(x, 4 * filters, strides, name, synchronized)
    x = conv(x, filters, 1, 1, f"{name}_1")
    x = keras.layers.ReLU(name=f"{name}_1_relu")(
        batch_norm(x, f"{name}_1", synchronized)
    )
    x = conv(x, filters, 3, strides, f"{name}_2")
    x = keras.layers.ReLU(name=f"{name}_2_relu")(
        batch_norm(x, f"{name}_2", synchronized)
    )
    x = conv(x, 4 * filters, 1, 1, f"{name}_3")
    x = batch_norm(x, f"{name}_3", synchronized, zero_gamma=True)
    x = keras.layers.Add(name=f"{name}_add")([residual, x])
    return keras.layers.ReLU(name=f"{name}_out")(x)


@keras.saving.register_keras_serializable(package="keras_simclr")
class ResNetBackbone(keras.Model):
    """ResNet feature extractor: images → globally average-pooled features h.

    Reference: Chen et al., 2020, Section 2.1: "We opt for simplicity and adopt
    the commonly used ResNet (He et al., 2016) to obtain h_i = f(x̃_i) =
    ResNet(x̃_i) where h_i ∈ R^d is the output after the average pooling
    layer." Appendix B.9 (CIFAR-10): "we replace the first 7x7 Conv of stride 2
    with 3x3 Conv of stride 1, and also remove the first max pooling operation."

    ResNet v1.5 (stride on the 3×3 convolution of bottlenecks), BatchNorm after
    every bias-free convolution, the last BatchNorm of each block initialised
    to zero. Depths 18 and 34 use basic blocks (output 512·w), 50, 101 and 152
    bottlenecks (output 2048·w). Inputs are float images, SimCLR-style in
    [0, 1].

    Args:
        depth: one of 18, 34, 50, 101, 152. Defaults to 50.
        width_multiplier: float > 0, multiplies every channel count (SimCLR
            uses 1, 2, 4; fractions such as 0.25 suit small experiments).
            Defaults to 1.
        cifar_stem: bool, 3×3 stride-1 stem without max-pool. Defaults to False.
        input_shape: `(height, width, 3)`, None for any size. Defaults to
            `(None, None, 3)`.
        synchronized_batch_norm: bool, BatchNorm statistics over the global
            batch of all replicas (SimCLR's global BN). Defaults to False.
        **kwargs: passed to `keras.Model` (e.g. `name`).

    Examples:
        >>> import numpy as np
        >>> encoder = ResNetBackbone(depth=18, width_multiplier=0.125, cifar_stem=True)
        >>> encoder(np.zeros((2, 32, 32, 3), "float32")).shape
        TensorShape([2, 64])
    """

    def __init__(
        self,
        depth=50,
        width_multiplier=1,
        cifar_stem=False,
        input_shape=(None, None, 3),
        synchronized_batch_norm=False,
        **kwargs,
    ):
        if isinstance(depth, bool) or not isinstance(depth, numbers.Integral):
            raise TypeError(
                f"`depth` must be an int, one of {sorted(BLOCKS_PER_STAGE)}. "
                f"Received: depth={depth!r} ({type(depth).__name__})"
            )
        if depth not in BLOCKS_PER_STAGE:
            raise ValueError(
                f"`depth` must be one of {sorted(BLOCKS_PER_STAGE)}. Received: "
                f"depth={depth}"
            )
        if not width_multiplier > 0:
            raise ValueError(
                f"`width_multiplier` must be > 0. Received: {width_multiplier}"
            )
        input_shape = tuple(input_shape)
        if len(input_shape) != 3 or input_shape[-1] != 3:
            raise ValueError(
                "`input_shape` must be (height, width, 3) (RGB images; convert "
                f"grayscale to RGB first). Received: input_shape={input_shape}"
            )
        kwargs.setdefault("name", f"resnet{depth}")
        block = basic_block if depth < 50 else bottleneck_block
        sync = synchronized_batch_norm

        # === Functional Model ===
        inputs = keras.Input(shape=input_shape, name="images")
        stem_filters = scaled_channels(64, width_multiplier)
        if cifar_stem:
            x = conv(inputs, stem_filters, 3, 1, "stem")
            x = keras.layers.ReLU(name="stem_relu")(batch_norm(x, "stem", sync))
        else:
            x = conv(inputs, stem_filters, 7, 2, "stem")
            x = keras.layers.ReLU(name="stem_relu")(batch_norm(x, "stem", sync))
            x = keras.layers.MaxPooling2D(3, 2, padding="same", name="stem_pool")(x)
        for stage, (filters, blocks) in enumerate(
            zip(STAGE_FILTERS, BLOCKS_PER_STAGE[depth])
        ):
            filters = scaled_channels(filters, width_multiplier)
            for index in range(blocks):
                strides = 2 if stage > 0 and index == 0 else 1
                x = block(
                    x, filters, strides, f"stage{stage + 1}_block{index + 1}", sync
                )
        outputs = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

        # === Config ===
        self.depth = depth
        self.width_multiplier = width_multiplier
        self.cifar_stem = cifar_stem
        self.image_shape = input_shape
        self.synchronized_batch_norm = synchronized_batch_norm

    @property
    def feature_dim(self):
        """The size D of the representation h."""
        return self.output.shape[-1]

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "depth": self.depth,
            "width_multiplier": self.width_multiplier,
            "cifar_stem": self.cifar_stem,
            "input_shape": self.image_shape,
            "synchronized_batch_norm": self.synchronized_batch_norm,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)
