"""Gaussian blur with a per-image random sigma, batched."""

import keras
from keras import ops

from keras_simclr.layers.random_layer import RandomLayer


@keras.saving.register_keras_serializable(package="keras_simclr")
class RandomGaussianBlur(RandomLayer):
    """Blurs each image with probability `blur_rate`, with its own sigma.

    Reference: Chen et al., 2020, Appendix A: "We blur the image 50% of the
    time using a Gaussian kernel. We randomly sample σ ∈ [0.1, 2.0], and the
    kernel size is set to be 10% of the image height/width." SimCLR uses no blur
    for CIFAR-10.

    Unlike `keras.layers.RandomGaussianBlur` (one sigma per batch, and a
    `factor` that sets the blur strength, not how often), every image draws
    whether it is blurred and its own sigma; Keras has no per-image version,
    which SimCLR's "50% of the time" needs. The batch is folded into the channel axis so one
    separable depthwise convolution (reflect padding) blurs all images with
    their own kernels; images not selected get a unit (identity) kernel.

    Args:
        blur_rate: probability of blurring an image (`SimCLRAugmentation`'s
            name; `probability=` and `rate=`, the names files of 0.2.0 and
            0.1.0 were saved with, are accepted). Defaults to 0.5.
            (Named `rate` in 0.1.0; `rate=` is still accepted.)
        sigma: (low, high) range of the Gaussian's standard deviation in
            pixels. Defaults to (0.1, 2.0).
        kernel_fraction: kernel side as a fraction of the image side (rounded
            to an odd number ≥ 3). Defaults to 0.1.
        seed: int or None.
        **kwargs: passed to `keras.layers.Layer`.

    Examples:
        >>> import numpy as np
        >>> blur = RandomGaussianBlur(blur_rate=1.0, seed=0)
        >>> blur(np.random.rand(2, 32, 32, 3).astype("float32")).shape
        TensorShape([2, 32, 32, 3])
    """

    def __init__(
        self,
        blur_rate=0.5,
        sigma=(0.1, 2.0),
        kernel_fraction=0.1,
        seed=None,
        **kwargs,
    ):
        blur_rate = kwargs.pop("rate", blur_rate)  # the 0.1.0 name
        blur_rate = kwargs.pop("probability", blur_rate)  # the 0.2.0 name
        super().__init__(seed=seed, **kwargs)
        if not 0 <= blur_rate <= 1:
            raise ValueError(
                f"`blur_rate` must be in [0, 1]. Received: blur_rate={blur_rate}"
            )
        if len(sigma) != 2 or not 0 < sigma[0] <= sigma[1]:
            raise ValueError(
                f"`sigma` must be (low, high) with 0 < low <= high. Received: {sigma}"
            )
        self.blur_rate = blur_rate
        self.sigma = tuple(sigma)
        self.kernel_fraction = kernel_fraction

    def kernel_size(self, image_side):
        radius = max(1, int(image_side * self.kernel_fraction) // 2)
        return 2 * radius + 1

    def sample_kernels(self, batch_size, kernel_size):
        """`(B, kernel_size)` normalised 1-D kernels; identity where not blurred."""
        sigma = keras.random.uniform(
            (batch_size,), self.sigma[0], self.sigma[1], seed=self.seed_generator
        )
        blurred = (
            keras.random.uniform((batch_size,), seed=self.seed_generator)
            < self.blur_rate
        )
        radius = kernel_size // 2
        x = ops.arange(-radius, radius + 1, dtype="float32")  # (k,)
        kernels = ops.exp(-(x[None, :] ** 2) / (2.0 * sigma[:, None] ** 2))  # (B, k)
        kernels = kernels / ops.sum(kernels, axis=1, keepdims=True)
        identity = ops.cast(ops.equal(x, 0.0), "float32")[None, :]
        return ops.where(blurred[:, None], kernels, identity)

    @property
    def active(self):
        """Whether `call(..., training=True)` may change images."""
        return self.blur_rate > 0

    def call(self, images, training=True):
        """`images`: float `(B, H, W, C)` with static H, W and C."""
        if not training or self.blur_rate == 0:
            return images
        batch_size = ops.shape(images)[0]
        _, height, width, channels = images.shape
        kernel_size = self.kernel_size(min(height, width))
        radius = kernel_size // 2
        kernels = self.sample_kernels(batch_size, kernel_size)  # (B, k)
        kernels = ops.reshape(ops.repeat(kernels, channels, axis=0), (-1, kernel_size))
        kernels = ops.transpose(kernels)  # (k, B*C): one kernel per image channel
        # (B, H, W, C) -> (1, H, W, B*C): each image channel becomes a channel.
        stacked = ops.reshape(
            ops.transpose(images, (1, 2, 0, 3)), (1, height, width, -1)
        )
        stacked = ops.pad(
            stacked,
            [[0, 0], [radius, radius], [radius, radius], [0, 0]],
            mode="reflect",
        )
        stacked = ops.depthwise_conv(
            stacked, kernels[:, None, :, None], padding="valid"
        )  # vertical
        stacked = ops.depthwise_conv(
            stacked, kernels[None, :, :, None], padding="valid"
        )  # horizontal
        blurred = ops.reshape(stacked, (height, width, batch_size, channels))
        return ops.transpose(blurred, (2, 0, 1, 3))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "blur_rate": self.blur_rate,
                "sigma": self.sigma,
                "kernel_fraction": self.kernel_fraction,
            }
        )
        return config
