"""SimCLR's colour distortion (jitter in random order, then grayscale), batched."""

import math

import keras
import numpy as np
from keras import ops

from keras_simclr.layers.random_layer import RandomLayer

# ITU-R 601 luma weights, as tf.image.rgb_to_grayscale and torchvision use.
LUMA = np.array([0.299, 0.587, 0.114], "float32")
# Row-vector form: pixel @ GRAY_MATRIX puts the pixel's luma in all 3 channels.
GRAY_MATRIX = np.tile(LUMA[:, None], (1, 3))
RGB_TO_YIQ = np.array(
    [[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]],
    "float32",
)
YIQ_TO_RGB = np.linalg.inv(RGB_TO_YIQ).astype("float32")


def _scale(matrix, factor):
    return matrix * factor[:, None, None]


# The per-image 3×3 algebra below is written as broadcast-multiply-and-sum,
# not MatMul: a batched MatMul of 3×3 matrices costs ~0.1 ms per call on
# oneDNN's CPU kernels, which made sampling the transforms 3× slower than
# applying them (benchmarks/augmentation.py).
def _matmul(a, b):
    """`a @ b` for (batches of) 3×3 matrices."""
    return ops.sum(ops.expand_dims(a, -1) * ops.expand_dims(b, -3), axis=-2)


def _vecmat(vector, matrix):
    """`vector @ matrix` for (batches of) 3-vectors and 3×3 matrices."""
    return ops.sum(ops.expand_dims(vector, -1) * matrix, axis=-2)


@keras.saving.register_keras_serializable(package="keras_simclr")
class RandomColorDistortion(RandomLayer):
    """Colour jitter (p = `jitter_rate`) then grayscale (p = `grayscale_rate`).

    Reference: Chen et al., 2020, Appendix A, "color_distortion(image, s=1.0)":
    brightness, contrast and saturation with strength 0.8·s, hue with 0.2·s,
    "randomly apply" with p = 0.8, in a random order, then random grayscale with
    p = 0.2.

    Every image draws its own factors and its own order of the four jitter
    operations. Each operation is a per-image affine map of RGB, so the four
    (in the image's order) and the grayscale step compose into ONE `3×3`
    matrix and offset per image, applied to the whole batch by a single
    einsum — the cost does not grow with the number of operations.

    - brightness: `x · f`, f ~ U[max(0, 1 − 0.8s), 1 + 0.8s] (SimCLRv2's
      multiplicative brightness, as torchvision);
    - contrast: `(x − mean) · f + mean`, per-channel image mean (as
      `tf.image.adjust_contrast`), f as above;
    - saturation: blend with the grayscale image, `gray + f · (x − gray)` (as
      torchvision; TensorFlow scales HSV saturation instead), f as above;
    - hue: rotation by `2π·δ`, δ ~ U[−0.2s, 0.2s], of the chroma plane of YIQ —
      a linear approximation of the HSV hue shift of `tf.image.adjust_hue`;
    - grayscale: luma `0.299 R + 0.587 G + 0.114 B` in all channels.

    Documented difference from the reference: values are clipped to [0, 1]
    once, after the composed map, instead of after each operation.

    Args:
        jitter_strength: float ≥ 0, the colour-jitter strength s
            (`strength=`, the name of files saved by 0.2.0, is accepted).
            Defaults to 1.0
            (0.5 is SimCLR's CIFAR setting).
        jitter_rate: probability of the jitter. Defaults to 0.8.
        grayscale_rate: probability of grayscale. Defaults to 0.2.
        seed: int or None.
        **kwargs: passed to `keras.layers.Layer`.

    Examples:
        >>> import numpy as np
        >>> distort = RandomColorDistortion(seed=0)
        >>> distort(np.full((2, 4, 4, 3), 0.5, "float32")).shape
        TensorShape([2, 4, 4, 3])
    """

    def __init__(
        self,
        jitter_strength=1.0,
        jitter_rate=0.8,
        grayscale_rate=0.2,
        seed=None,
        **kwargs,
    ):
        jitter_strength = kwargs.pop("strength", jitter_strength)  # the 0.2.0 name
        super().__init__(seed=seed, **kwargs)
        if jitter_strength < 0:
            raise ValueError(
                f"`jitter_strength` must be >= 0. Received: jitter_strength={jitter_strength}"
            )
        for name, rate in (
            ("jitter_rate", jitter_rate),
            ("grayscale_rate", grayscale_rate),
        ):
            if not 0 <= rate <= 1:
                raise ValueError(f"`{name}` must be in [0, 1]. Received: {name}={rate}")
        self.jitter_strength = jitter_strength
        self.jitter_rate = jitter_rate
        self.grayscale_rate = grayscale_rate

    def _factor(self, batch_size, spread):
        low = max(0.0, 1.0 - spread)
        return keras.random.uniform(
            (batch_size,), low, 1.0 + spread, seed=self.seed_generator
        )

    def sample_transforms(self, channel_means):
        """Per-image `(matrix (B, 3, 3), offset (B, 3))`: pixel ↦ pixel @ matrix + offset.

        Args:
            channel_means: `(B, 3)` mean colour of each input image (the
                contrast step needs the mean of the image it receives).
        """
        batch_size = ops.shape(channel_means)[0]
        identity = ops.broadcast_to(ops.eye(3), (batch_size, 3, 3))
        matrix, offset = identity, ops.zeros((batch_size, 3))
        if self.jitter_strength > 0 and self.jitter_rate > 0:
            brightness = self._factor(batch_size, 0.8 * self.jitter_strength)
            contrast = self._factor(batch_size, 0.8 * self.jitter_strength)
            saturation = self._factor(batch_size, 0.8 * self.jitter_strength)
            angle = (
                2
                * math.pi
                * keras.random.uniform(
                    (batch_size,),
                    -0.2 * self.jitter_strength,
                    0.2 * self.jitter_strength,
                    seed=self.seed_generator,
                )
            )
            saturation_matrix = _scale(identity, saturation) + _scale(
                ops.broadcast_to(GRAY_MATRIX, (batch_size, 3, 3)), 1.0 - saturation
            )
            cos, sin, zero, one = (
                ops.cos(angle),
                ops.sin(angle),
                ops.zeros_like(angle),
                ops.ones_like(angle),
            )
            rotation = ops.stack(
                [
                    ops.stack([one, zero, zero], 1),
                    ops.stack([zero, cos, -sin], 1),
                    ops.stack([zero, sin, cos], 1),
                ],
                axis=1,
            )  # (B, 3, 3), column-vector form in YIQ
            hue_matrix = ops.transpose(
                _matmul(_matmul(YIQ_TO_RGB, rotation), RGB_TO_YIQ), (0, 2, 1)
            )  # (B, 3, 3), row-vector form in RGB
            # Each image's order of the four operations: a random permutation.
            order = ops.argsort(
                keras.random.uniform((batch_size, 4), seed=self.seed_generator), axis=1
            )
            for slot in range(4):
                mean = _vecmat(channel_means, matrix) + offset
                candidates = [
                    (_scale(matrix, brightness), offset * brightness[:, None]),
                    (
                        _scale(matrix, contrast),
                        offset * contrast[:, None] + mean * (1.0 - contrast[:, None]),
                    ),
                    (
                        _matmul(matrix, saturation_matrix),
                        _vecmat(offset, saturation_matrix),
                    ),
                    (
                        _matmul(matrix, hue_matrix),
                        _vecmat(offset, hue_matrix),
                    ),
                ]
                chosen = ops.one_hot(order[:, slot], 4)  # (B, 4)
                matrix = sum(
                    _scale(m, chosen[:, i]) for i, (m, _) in enumerate(candidates)
                )
                offset = sum(
                    o * chosen[:, i : i + 1] for i, (_, o) in enumerate(candidates)
                )
            jitter = (
                keras.random.uniform((batch_size,), seed=self.seed_generator)
                < self.jitter_rate
            )
            matrix = ops.where(jitter[:, None, None], matrix, identity)
            offset = ops.where(jitter[:, None], offset, 0.0)
        if self.grayscale_rate > 0:
            gray = (
                keras.random.uniform((batch_size,), seed=self.seed_generator)
                < self.grayscale_rate
            )
            matrix = ops.where(
                gray[:, None, None], _matmul(matrix, GRAY_MATRIX), matrix
            )
            offset = ops.where(gray[:, None], _vecmat(offset, GRAY_MATRIX), offset)
        return matrix, offset

    def call(self, images, training=True):
        """`images`: float `(B, H, W, 3)` in [0, 1]."""
        if not training or not self.active:
            return images
        return self.distort(images)

    @property
    def active(self):
        """Whether `call(..., training=True)` changes (and clips) images."""
        return self.jitter_rate > 0 or self.grayscale_rate > 0

    def distort(self, images, scale=1.0):
        """Distorts `images * scale`, clipped to [0, 1], in one pass over the pixels.

        `scale` folds a value-range normalisation into the colour matrix
        (colour distortion is affine per image) so callers need not rescale
        the pixels first.
        """
        means = ops.mean(images, axis=(1, 2))
        if scale != 1.0:
            means = means * scale
        matrix, offset = self.sample_transforms(means)
        if scale != 1.0:
            matrix = matrix * scale
        images = ops.einsum("bhwc,bcd->bhwd", images, matrix) + offset[:, None, None, :]
        return ops.clip(images, 0.0, 1.0)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "jitter_strength": self.jitter_strength,
                "jitter_rate": self.jitter_rate,
                "grayscale_rate": self.grayscale_rate,
            }
        )
        return config
