"""Batched random resized crop with horizontal flip (Inception-style crop)."""

import keras
from keras import ops

from keras_simclr import backend
from keras_simclr.layers.crop_sampling import sample_crop_windows
from keras_simclr.layers.random_layer import RandomLayer


def crop_and_resize(images, boxes, size):
    """Bilinear crops of a batch, one normalised box per image, resized to `size`.

    Keras has no batched crop-and-resize with a box per image (its
    `RandomCrop` / `ops.image.crop_images` cut one window for the whole
    batch), so this is written here: `tf.image.crop_and_resize` on the
    TensorFlow backend (one fused kernel), and the same sampling in
    `keras.ops` gathers elsewhere (JAX, PyTorch): normalised 0 and 1 are the
    first and last pixel centres, and a box with `x1 > x2` is flipped.

    Args:
        images: `(B, H, W, C)` uint8 or float.
        boxes: float32 `(B, 4)` rows `[y1, x1, y2, x2]` in [0, 1].
        size: int, the output side.

    Returns:
        float32 `(B, size, size, C)`.

    Examples:
        >>> import numpy as np
        >>> images = np.arange(2 * 3 * 3, dtype="float32").reshape(2, 3, 3, 1)
        >>> boxes = np.array([[0, 0, 1, 1], [0, 1, 1, 0]], "float32")
        >>> np.asarray(crop_and_resize(images, boxes, 3))[1, 0, :, 0]
        array([11., 10.,  9.], dtype=float32)
    """
    native = backend.current().crop_and_resize
    if native is not None:  # TensorFlow's kernel
        return native(images, boxes, size)
    return crop_and_resize_with_ops(images, boxes, size)


def crop_and_resize_with_ops(images, boxes, size):
    """`crop_and_resize` in `keras.ops` (every backend); see there."""
    images = ops.convert_to_tensor(images)
    shape = ops.shape(images)
    batch, height, width, channels = shape[0], shape[1], shape[2], shape[3]
    boxes = ops.cast(boxes, "float32")
    if size > 1:
        steps = ops.arange(size, dtype="float32") / float(size - 1)  # (S,)
    else:
        steps = ops.convert_to_tensor([0.5], "float32")

    def sample_points(start, end, extent):  # (B, S) pixel coordinates
        span = ops.cast(extent - 1, "float32")
        return (start[:, None] + (end - start)[:, None] * steps[None, :]) * span

    rows = sample_points(boxes[:, 0], boxes[:, 2], height)
    columns = sample_points(boxes[:, 1], boxes[:, 3], width)

    def neighbours(points, extent):
        low = ops.floor(points)
        weight = points - low  # (B, S)
        low = ops.clip(ops.cast(low, "int32"), 0, extent - 1)
        high = ops.clip(low + 1, 0, extent - 1)
        return low, high, weight

    top, bottom, row_weight = neighbours(rows, height)
    left, right, column_weight = neighbours(columns, width)
    flat = ops.reshape(ops.cast(images, "float32"), (-1, channels))  # (B*H*W, C)
    first = (ops.arange(batch, dtype="int32") * height * width)[:, None, None]

    def gather(row_index, column_index):  # (B, S), (B, S) -> (B, S, S, C)
        index = first + row_index[:, :, None] * width + column_index[:, None, :]
        values = ops.take(flat, ops.reshape(index, (-1,)), axis=0)
        return ops.reshape(values, (batch, size, size, channels))

    column_weight = column_weight[:, None, :, None]  # (B, 1, S, 1)
    upper = (
        gather(top, left) * (1.0 - column_weight) + gather(top, right) * column_weight
    )
    lower = (
        gather(bottom, left) * (1.0 - column_weight)
        + gather(bottom, right) * column_weight
    )
    row_weight = row_weight[:, :, None, None]  # (B, S, 1, 1)
    return upper * (1.0 - row_weight) + lower * row_weight


def _check_range(name, value, low_bound):
    if len(value) != 2 or not low_bound < value[0] <= value[1]:
        raise ValueError(
            f"`{name}` must be a pair (low, high) with {low_bound} < low <= high. "
            f"Received: {name}={value}"
        )


@keras.saving.register_keras_serializable(package="keras_simclr")
class RandomResizedCrop(RandomLayer):
    """Crops a random area and aspect ratio of each image, resized to a square.

    Reference: Chen et al., 2020, Appendix A: "random crop with resize [...] a
    random patch of the image is selected, with an area uniformly sampled
    between 8% and 100% of that of the original image, and an aspect ratio
    logarithmically sampled between 3/4 and 4/3. This patch is then resized to
    the original image size. [...] random horizontal flip".

    Each image draws its own box with `crop_sampling.sample_crop_windows`
    (the photo readers' sampler): `attempts` candidate (area, log-aspect)
    pairs, the first that fits inside the image is kept (if none fits, the
    whole image cut to the nearest allowed aspect ratio, centred), then a
    uniform position.
    The whole batch is cropped by one `crop_and_resize` call (bilinear)
    and a flip is a box with its x-coordinates swapped, so it costs nothing.
    With `training=False` the central square is resized instead.

    Args:
        image_size: int, side of the square output.
        crop_area: (low, high) fraction of the image area. Defaults to
            (0.08, 1.0).
        aspect_ratio: (low, high) width/height ratio, sampled log-uniformly.
            Defaults to (3/4, 4/3).
        flip: bool, random horizontal flip with probability 0.5. Defaults to
            True.
        attempts: int, candidate boxes per image. Defaults to 10.
        seed: int or None.
        **kwargs: passed to `keras.layers.Layer`.

    Examples:
        >>> import numpy as np
        >>> crop = RandomResizedCrop(16, seed=0)
        >>> crop(np.zeros((2, 40, 30, 3), "uint8")).shape
        TensorShape([2, 16, 16, 3])
    """

    def __init__(
        self,
        image_size,
        crop_area=(0.08, 1.0),
        aspect_ratio=(3 / 4, 4 / 3),
        flip=True,
        attempts=10,
        seed=None,
        **kwargs,
    ):
        super().__init__(seed=seed, **kwargs)
        if int(image_size) != image_size or image_size < 1:
            raise ValueError(
                f"`image_size` must be a positive int. Received: image_size={image_size}"
            )
        _check_range("crop_area", crop_area, 0.0)
        _check_range("aspect_ratio", aspect_ratio, 0.0)
        if crop_area[1] > 1:
            raise ValueError(
                f"`crop_area` must be within (0, 1]. Received: {crop_area}"
            )
        self.image_size = int(image_size)
        self.crop_area = tuple(crop_area)
        self.aspect_ratio = tuple(aspect_ratio)
        self.flip = flip
        self.attempts = attempts
        # TensorFlow's CropAndResize kernel has no XLA lowering; the
        # `keras.ops` path of the other backends compiles (and a JAX step
        # must: without jit it runs op by op, ~15x slower).
        self.supports_jit = backend.current().CROP_COMPILES
        self._ops_crop = False

    def compile_with_xla(self, xla):
        """Crops with the `keras.ops` path (which XLA compiles) when `xla`,
        else with the backend's kernel (TensorFlow's fused CropAndResize,
        faster without XLA). `SimCLRModel.compile` calls it."""
        compiles = backend.current().CROP_COMPILES
        self._ops_crop = bool(xla) and not compiles
        self.supports_jit = compiles or self._ops_crop

    def _crop(self, images, boxes):
        if self._ops_crop:
            return crop_and_resize_with_ops(images, boxes, self.image_size)
        return crop_and_resize(images, boxes, self.image_size)

    def sample_boxes(self, batch_size, height, width):
        """Normalised `[y1, x1, y2, x2]` boxes, `(batch_size, 4)` float32.

        The windows come from `crop_sampling.sample_crop_windows`, the same
        sampler (and fallback) the photo readers use.
        """
        uniform = keras.random.uniform(
            (batch_size, 2 * self.attempts + 2), seed=self.seed_generator
        )
        height, width = ops.cast(height, "float32"), ops.cast(width, "float32")
        top, left, box_height, box_width = sample_crop_windows(
            uniform, height, width, self.crop_area, self.aspect_ratio, ops
        )
        # Crop sides as fractions of the image sides.
        y1, x1 = top / height, left / width
        y2, x2 = y1 + box_height / height, x1 + box_width / width
        if self.flip:
            # crop_and_resize flips a box whose x1 > x2.
            flipped = (
                keras.random.uniform((batch_size,), seed=self.seed_generator) < 0.5
            )
            x1, x2 = ops.where(flipped, x2, x1), ops.where(flipped, x1, x2)
        return ops.stack([y1, x1, y2, x2], axis=1)

    def central_boxes(self, batch_size, height, width):
        """Boxes of the largest central square, `(batch_size, 4)` float32.

        `crop_and_resize` maps normalised 0 and 1 to the first and last pixel
        centres, so the box spans pixel centres `offset … offset + side - 1`:
        at `image_size == side` the output is exactly the central pixels.
        """
        height, width = ops.cast(height, "float32"), ops.cast(width, "float32")
        side = ops.minimum(height, width)
        top, left = (height - side) // 2, (width - side) // 2
        last_row, last_column = ops.maximum(height - 1, 1), ops.maximum(width - 1, 1)
        box = ops.stack(
            [
                top / last_row,
                left / last_column,
                (top + side - 1) / last_row,
                (left + side - 1) / last_column,
            ]
        )
        return ops.tile(box[None, :], (batch_size, 1))

    def flip_boxes(self, batch_size):
        """Whole-image boxes, x-swapped (flipped) with probability 0.5."""
        ones, zeros = ops.ones((batch_size,)), ops.zeros((batch_size,))
        x1, x2 = zeros, ones
        if self.flip:
            flipped = (
                keras.random.uniform((batch_size,), seed=self.seed_generator) < 0.5
            )
            x1, x2 = ops.where(flipped, ones, zeros), ops.where(flipped, zeros, ones)
        return ops.stack([zeros, x1, ones, x2], axis=1)

    def resize_and_flip(self, images, training=True):
        """No crop: each whole image, randomly flipped, resized to the square.

        For views already cut from the original by the input pipeline
        (`keras_simclr.datasets.image_files`); at their own size the resize
        is exact (normalised 0 and 1 are the first and last pixel centres).
        """
        batch_size = ops.shape(images)[0]
        if training:
            boxes = self.flip_boxes(batch_size)
        else:
            boxes = ops.tile(
                ops.convert_to_tensor([[0.0, 0.0, 1.0, 1.0]]), (batch_size, 1)
            )
        return self._crop(images, boxes)

    def call(self, images, training=True):
        shape = ops.shape(images)
        batch_size, height, width = shape[0], shape[1], shape[2]
        if training:
            boxes = self.sample_boxes(batch_size, height, width)
        else:
            boxes = self.central_boxes(batch_size, height, width)
        # (B, image_size, image_size, C) float32
        return self._crop(images, boxes)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.image_size, self.image_size, input_shape[-1])

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "image_size": self.image_size,
                "crop_area": self.crop_area,
                "aspect_ratio": self.aspect_ratio,
                "flip": self.flip,
                "attempts": self.attempts,
            }
        )
        return config
