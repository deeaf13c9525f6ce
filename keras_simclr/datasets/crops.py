"""Crop windows in the original image's pixel coordinates, for `tf.data`.

These functions work on ONE decoded image inside `tf.data.Dataset.map`, where
each image has its own size: SimCLR's random resized crop is cut from the
full-resolution original, and only the crop is resized. That is the one part
of the augmentation that must see the original (`layers.RandomResizedCrop`
works on a batch of same-sized images on device, after the input pipeline
has already resized them). Keras has no per-image, original-resolution crop
for `tf.data`, and keras-cv's crops one image at a time in Python-level loops.
"""

import tensorflow as tf
import tensorflow.experimental.numpy as tnp

from keras_simclr.layers.crop_sampling import sample_crop_windows

# The evaluation crop covers this share of the shorter side (the standard
# "resize to S / 0.875, centre crop S" of ImageNet evaluation).
CENTRE_CROP_FRACTION = 0.875


def random_crop_windows(
    height,
    width,
    seed,
    crop_area=(0.08, 1.0),
    aspect_ratio=(3 / 4, 4 / 3),
    views=2,
    attempts=10,
):
    """SimCLR's random resized crop windows, in pixels of the original image.

    Reference: Chen et al., 2020, Appendix A: "a random patch of the image is
    selected, with an area uniformly sampled between 8% and 100% of that of
    the original image, and an aspect ratio logarithmically sampled between
    3/4 and 4/3". The windows come from `layers.crop_sampling`, the one
    sampler (and fallback) `RandomResizedCrop` uses too, then are rounded to
    whole pixels. All views' draws come from one random call (few ops per
    image: in `tf.data` each op costs microseconds).

    Args:
        height: int32 scalar, the original's height.
        width: int32 scalar, the original's width.
        seed: int `(2,)` stateless seed.
        crop_area: (low, high) share of the original's area.
        aspect_ratio: (low, high) width / height of the window.
        views: int, independent windows to draw. Defaults to 2.
        attempts: int, draws before the fallback. Defaults to 10.

    Returns:
        int32 `(views, 4)`: rows `[top, left, crop_height, crop_width]`.
    """
    uniform = tf.random.stateless_uniform((views, 2 * attempts + 2), seed)
    image_height = tf.cast(height, tf.float32)
    image_width = tf.cast(width, tf.float32)
    top, left, crop_height, crop_width = sample_crop_windows(
        uniform, image_height, image_width, crop_area, aspect_ratio, tnp
    )  # (views,) each, float
    # Whole pixels inside the image.
    crop_height = tf.clip_by_value(tf.round(crop_height), 1.0, image_height)
    crop_width = tf.clip_by_value(tf.round(crop_width), 1.0, image_width)
    top = tf.clip_by_value(tf.floor(top), 0.0, image_height - crop_height)
    left = tf.clip_by_value(tf.floor(left), 0.0, image_width - crop_width)
    return tf.cast(tf.stack([top, left, crop_height, crop_width], axis=1), tf.int32)


def centre_crop_window(height, width, fraction=CENTRE_CROP_FRACTION):
    """The evaluation window: a centred square of `fraction` of the shorter side.

    Resizing it to S × S is the usual "resize the shorter side to S /
    0.875, then centre-crop S × S", with the resize applied to the crop only.

    Returns:
        int32 `(1, 4)`: `[[top, left, side, side]]`.
    """
    shorter = tf.minimum(height, width)
    side = tf.maximum(
        tf.cast(tf.round(tf.cast(shorter, tf.float32) * fraction), tf.int32), 1
    )
    return tf.stack([(height - side) // 2, (width - side) // 2, side, side])[None]


def crop_and_resize(image, window, image_size):
    """Cuts `window` out of one `(H, W, 3)` uint8 image and resizes it.

    Downscaling is antialiased mipmap-style: an average-pool by the largest
    power of two (up to 8) that keeps the crop at least `image_size`, then
    bilinear for the remaining factor (below 2). A crop that needs no pool
    is resized straight from uint8 (bilinear reads 4 pixels per output). In
    `tf.data` this is about 3x faster than `tf.image.resize(antialias=True)`
    at 224 px (benchmarks/input_pipeline.py).

    Returns:
        uint8 `(image_size, image_size, 3)`.
    """
    crop = image[window[0] : window[0] + window[2], window[1] : window[1] + window[3]]
    shorter = tf.minimum(window[2], window[3])
    level = tf.zeros((), tf.int32)
    for index, factor in enumerate((2, 4, 8), start=1):
        level = tf.where(shorter >= factor * image_size, index, level)

    def resize(pixels):
        return tf.image.resize(pixels, (image_size, image_size), method="bilinear")

    def pooled(factor):
        def pool_then_resize():
            pixels = tf.cast(crop, tf.float32)[None]
            return resize(tf.nn.avg_pool2d(pixels, factor, factor, "VALID")[0])

        return pool_then_resize

    resized = tf.switch_case(
        level, [lambda: resize(crop)] + [pooled(f) for f in (2, 4, 8)]
    )  # (S, S, 3) float32
    return tf.cast(tf.clip_by_value(tf.round(resized), 0, 255), tf.uint8)
