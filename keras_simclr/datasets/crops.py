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


def displayed_shape(height, width, orientation):
    """`(height, width)` as the photo is shown: swapped for EXIF 5–8."""
    turned = orientation >= 5
    return tf.where(turned, width, height), tf.where(turned, height, width)


def stored_windows(windows, orientation, height, width):
    """Windows drawn on the displayed photo, in the stored pixels' frame.

    EXIF Orientation `o` says how the stored pixels are turned for display
    (2 mirror, 3 rotate 180°, 4 flip, 5 transpose, 6 rotate 90° clockwise,
    7 transverse, 8 rotate 90° anticlockwise). A crop of the stored image
    at the returned window, resized to a square and turned by `orient`,
    equals the same crop of the displayed photo.

    Args:
        windows: int32 `(V, 4)` `[top, left, height, width]` on the displayed
            photo.
        orientation: int32 scalar, 1–8.
        height: the displayed photo's height.
        width: the displayed photo's width.

    Returns:
        int32 `(V, 4)` windows in the stored image.
    """
    top, left, size_y, size_x = tf.unstack(windows, axis=1)
    bottom = height - top - size_y  # margins on the displayed photo
    right = width - left - size_x
    # Per orientation: (stored top, stored left) and whether sizes swap.
    corners = tf.stack(
        [
            tf.stack([top, left]),  # 1
            tf.stack([top, right]),  # 2
            tf.stack([bottom, right]),  # 3
            tf.stack([bottom, left]),  # 4
            tf.stack([left, top]),  # 5
            tf.stack([right, top]),  # 6
            tf.stack([right, bottom]),  # 7
            tf.stack([left, bottom]),  # 8
        ]
    )  # (8, 2, V)
    corner = tf.gather(corners, tf.clip_by_value(orientation, 1, 8) - 1)  # (2, V)
    turned = orientation >= 5
    sizes = tf.where(turned, tf.stack([size_x, size_y]), tf.stack([size_y, size_x]))
    return tf.transpose(tf.concat([corner, sizes], axis=0))  # (V, 4)


def orient(view, orientation):
    """Turns a square crop of the stored image as EXIF `orientation` says."""
    turns = [
        lambda: view,  # 1
        lambda: view[:, ::-1],  # 2 mirror
        lambda: view[::-1, ::-1],  # 3 rotate 180
        lambda: view[::-1],  # 4 flip
        lambda: tf.transpose(view, (1, 0, 2)),  # 5 transpose
        lambda: tf.transpose(view, (1, 0, 2))[:, ::-1],  # 6 rotate 90 clockwise
        lambda: tf.transpose(view, (1, 0, 2))[::-1, ::-1],  # 7 transverse
        lambda: tf.transpose(view, (1, 0, 2))[::-1],  # 8 rotate 90 anticlockwise
    ]
    return tf.switch_case(tf.clip_by_value(orientation, 1, 8) - 1, turns)


def halve(image, window=None):
    """A 2x2 average pool of uint8 pixels, computed in uint8.

    Pairs are averaged with bit operations that cannot overflow (rounding
    up in the first pairs, down in the second: off by at most 1 from the
    exact mean, unbiased). With `window` (`[top, left, height, width]`) the
    four pixel phases are read straight from `image`, without copying the
    crop first. Temporaries stay below the crop's own uint8 size, where a
    float32 pool needs 4x it for its input alone.
    """
    if window is None:
        window = tf.stack([0, 0, tf.shape(image)[0], tf.shape(image)[1]])
    top, left = window[0], window[1]
    bottom = top + window[2] // 2 * 2
    right = left + window[3] // 2 * 2

    def phase(dy, dx):
        return image[top + dy : bottom : 2, left + dx : right : 2]

    def mean_up(a, b):  # ceil((a + b) / 2) without overflow
        return tf.bitwise.bitwise_or(a, b) - tf.bitwise.right_shift(
            tf.bitwise.bitwise_xor(a, b), 1
        )

    def mean_down(a, b):  # floor((a + b) / 2) without overflow
        return tf.bitwise.bitwise_and(a, b) + tf.bitwise.right_shift(
            tf.bitwise.bitwise_xor(a, b), 1
        )

    upper = mean_up(phase(0, 0), phase(0, 1))
    return mean_down(upper, mean_up(phase(1, 0), phase(1, 1)))


# Decoded images up to this many pixels are cropped with a float32 pool (the
# fast path: a crop's float32 copy is at most 4 Mpx x 3 x 4 B = 48 MB);
# larger ones with uint8 pools read straight from the image, one view after
# the other, so a huge photo never gets a float32 copy.
FLOAT_POOL_MAX_PIXELS = 4_000_000


def _pool_level(window, image_size):
    """0-3: how many 2x poolings keep the window's shorter side >= image_size."""
    shorter = tf.minimum(window[2], window[3])
    level = tf.zeros((), tf.int32)
    for index, factor in enumerate((2, 4, 8), start=1):
        level = tf.where(shorter >= factor * image_size, index, level)
    return level


def _crop(image, window):
    """`image[top : top + height, left : left + width]` of a window."""
    return image[window[0] : window[0] + window[2], window[1] : window[1] + window[3]]


def _to_uint8(resized):
    return tf.cast(tf.clip_by_value(tf.round(resized), 0, 255), tf.uint8)


def crop_and_resize(image, window, image_size):
    """Cuts `window` out of one `(H, W, 3)` uint8 image and resizes it.

    Downscaling is antialiased mipmap-style: an average pool by the largest
    power of two (up to 8) that keeps the crop at least `image_size`, then
    bilinear for the remaining factor (below 2), which reads 4 pixels per
    output. In `tf.data` this is about 3x faster than
    `tf.image.resize(antialias=True)` at 224 px (benchmarks/input_pipeline.py).
    The pool runs on a float32 copy of the crop: `crop_views` sends images
    over `FLOAT_POOL_MAX_PIXELS` to `crop_and_resize_bounded` instead.

    Returns:
        uint8 `(image_size, image_size, 3)`.
    """
    crop = _crop(image, window)
    level = _pool_level(window, image_size)

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
    return _to_uint8(resized)


def crop_and_resize_bounded(image, window, image_size):
    """`crop_and_resize` in bounded memory: uint8 2x2 pools read from the image.

    No copy of the crop and no float32 image larger than twice the output's
    side: for decoded images too large for a float32 copy of a crop.
    """
    level = _pool_level(window, image_size)
    pixels = tf.cond(
        level > 0, lambda: halve(image, window), lambda: _crop(image, window)
    )
    for times in (2, 3):
        pixels = tf.cond(level >= times, lambda p=pixels: halve(p), lambda p=pixels: p)
    return _to_uint8(
        tf.image.resize(pixels, (image_size, image_size), method="bilinear")
    )


def crop_views(image, windows, image_size):
    """Every window of `windows` cut from `image` and resized: `(V, S, S, 3)`.

    Images of up to `FLOAT_POOL_MAX_PIXELS` take the fast path (views in
    parallel); larger ones the bounded-memory path, one view after the
    other, so a huge photo's crops are never in memory together.
    """
    views = windows.shape[0]

    def fast():
        return tf.stack(
            [crop_and_resize(image, windows[i], image_size) for i in range(views)]
        )

    def bounded():
        done = []
        for index in range(views):
            with tf.control_dependencies(done):
                done.append(crop_and_resize_bounded(image, windows[index], image_size))
        return tf.stack(done)

    pixels = tf.shape(image)[0] * tf.shape(image)[1]
    return tf.cond(pixels > FLOAT_POOL_MAX_PIXELS, bounded, fast)
