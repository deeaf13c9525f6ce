"""Crop windows in the original image's pixel coordinates, for `tf.data`.

These functions work on ONE decoded image inside `tf.data.Dataset.map`, where
each image has its own size: SimCLR's random resized crop is cut from the
full-resolution original, and only the crop is resized. That is the one part
of the augmentation that must see the original (`layers.RandomResizedCrop`
works on a batch of same-sized images on device, after the input pipeline
has already resized them). Keras has no per-image, original-resolution crop
for `tf.data`, and keras-cv's crops one image at a time in Python-level loops.
"""

import types

import tensorflow as tf

from keras_simclr.layers.crop_sampling import sample_crop_windows

# The evaluation crop covers this share of the shorter side (the standard
# "resize to S / 0.875, centre crop S" of ImageNet evaluation).
CENTRE_CROP_FRACTION = 0.875


# The array functions `sample_crop_windows` calls, as plain TensorFlow ops.
# Not `tf.experimental.numpy`: its broadcasting helpers (`take_along_axis`
# above all) add hundreds of graph nodes, and `tf.data` re-optimises every
# map function's graph for each new iterator (each epoch): ~0.1 s here.
TF_ARRAYS = types.SimpleNamespace(
    expand_dims=tf.expand_dims,
    exp=tf.exp,
    sqrt=tf.sqrt,
    logical_and=tf.logical_and,
    argmax=lambda x, axis: tf.argmax(x, axis, output_type=tf.int32),
    where=tf.where,
    any=lambda x, axis: tf.reduce_any(x, axis),
    minimum=tf.minimum,
    take_along_axis=lambda x, indices, axis: tf.gather(
        x, indices, axis=axis, batch_dims=indices.shape.rank - 1
    ),
)


def crop_draws(seed, shape, views=2, attempts=10):
    """Uniform draws for `random_crop_windows`: float32 `(*shape, views, 2a+2)`.

    One random call for every view of a batch of images (each op costs
    microseconds in `tf.data`, whatever its size). `shape` is the images'
    batch shape: a tuple, or an int32 tensor such as `tf.shape(encoded)`.
    """
    shape = tf.cast(tf.reshape(shape, [-1]), tf.int32)
    full = tf.concat([shape, [views, 2 * attempts + 2]], axis=0)
    return tf.random.stateless_uniform(full, seed)


def random_crop_windows(
    height, width, draws, crop_area=(0.08, 1.0), aspect_ratio=(3 / 4, 4 / 3)
):
    """SimCLR's random resized crop windows, in pixels of the original images.

    Reference: Chen et al., 2020, Appendix A: "a random patch of the image is
    selected, with an area uniformly sampled between 8% and 100% of that of
    the original image, and an aspect ratio logarithmically sampled between
    3/4 and 4/3". The windows come from `layers.crop_sampling`, the one
    sampler (and fallback) `RandomResizedCrop` uses too, then are rounded to
    whole pixels. Vectorised: one call draws the windows of a whole batch of
    differently sized images.

    Args:
        height: int32 `(...)`, the originals' heights.
        width: int32 `(...)`, their widths.
        draws: float32 `(..., views, 2 * attempts + 2)` from `crop_draws`.
        crop_area: (low, high) share of the original's area.
        aspect_ratio: (low, high) width / height of the window.

    Returns:
        int32 `(..., views, 4)`: rows `[top, left, crop_height, crop_width]`.

    Examples:
        >>> draws = crop_draws((0, 1), (2,))
        >>> random_crop_windows([300, 50], [400, 80], draws).shape
        TensorShape([2, 2, 4])
    """
    image_height = tf.cast(height, tf.float32)[..., None]  # against (..., views)
    image_width = tf.cast(width, tf.float32)[..., None]
    top, left, crop_height, crop_width = sample_crop_windows(
        draws, image_height, image_width, crop_area, aspect_ratio, TF_ARRAYS
    )  # (..., views) each, float
    # Whole pixels inside the image.
    crop_height = tf.clip_by_value(tf.round(crop_height), 1.0, image_height)
    crop_width = tf.clip_by_value(tf.round(crop_width), 1.0, image_width)
    top = tf.clip_by_value(tf.floor(top), 0.0, image_height - crop_height)
    left = tf.clip_by_value(tf.floor(left), 0.0, image_width - crop_width)
    return tf.cast(tf.stack([top, left, crop_height, crop_width], axis=-1), tf.int32)


def centre_crop_window(height, width, fraction=CENTRE_CROP_FRACTION):
    """The evaluation window: a centred square of `fraction` of the shorter side.

    Resizing it to S × S is the usual "resize the shorter side to S /
    0.875, then centre-crop S × S", with the resize applied to the crop only.

    Args:
        height: int32 `(...)`.
        width: int32 `(...)`.

    Returns:
        int32 `(..., 1, 4)`: `[[top, left, side, side]]` per image.
    """
    height, width = tf.cast(height, tf.int32), tf.cast(width, tf.int32)
    shorter = tf.minimum(height, width)
    side = tf.maximum(
        tf.cast(tf.round(tf.cast(shorter, tf.float32) * fraction), tf.int32), 1
    )
    window = tf.stack([(height - side) // 2, (width - side) // 2, side, side], -1)
    return window[..., None, :]


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
        windows: int32 `(..., V, 4)` `[top, left, height, width]` on the
            displayed photos.
        orientation: int32 `(...)`, 1–8.
        height: int32 `(...)`, the displayed photos' heights.
        width: int32 `(...)`, their widths.

    Returns:
        int32 `(..., V, 4)` windows in the stored images.
    """
    orientation = tf.convert_to_tensor(orientation, tf.int32)[..., None]
    height = tf.convert_to_tensor(height, tf.int32)[..., None]  # against (..., V)
    width = tf.convert_to_tensor(width, tf.int32)[..., None]
    top, left, size_y, size_x = tf.unstack(windows, axis=-1)  # (..., V) each
    bottom = height - top - size_y  # margins on the displayed photo
    right = width - left - size_x
    # Per orientation 1-8: the stored top and left, chosen by a one-hot.
    choice = tf.one_hot(tf.clip_by_value(orientation, 1, 8) - 1, 8, dtype=tf.int32)

    def chosen(*candidates):
        return tf.reduce_sum(tf.stack(candidates, axis=-1) * choice, axis=-1)

    stored_top = chosen(top, top, bottom, bottom, left, right, right, left)
    stored_left = chosen(left, right, right, left, top, top, bottom, bottom)
    turned = orientation >= 5
    stored_height = tf.where(turned, size_x, size_y)
    stored_width = tf.where(turned, size_y, size_x)
    return tf.stack([stored_top, stored_left, stored_height, stored_width], axis=-1)


def orient(views, orientation):
    """Turns square crops of the stored image as EXIF `orientation` says.

    `views` is one `(S, S, C)` crop or a stack `(..., S, S, C)` of crops of
    the same photo, all turned by one switch.
    """
    row, column = views.shape.rank - 3, views.shape.rank - 2
    order = list(range(views.shape.rank))
    order[row], order[column] = column, row

    def flip(*axes):
        return lambda: tf.reverse(views, axes) if axes else views

    def transpose_then(*axes):
        return lambda: tf.reverse(tf.transpose(views, order), axes)

    turns = [
        flip(),  # 1
        flip(column),  # 2 mirror
        flip(row, column),  # 3 rotate 180
        flip(row),  # 4 flip
        lambda: tf.transpose(views, order),  # 5 transpose
        transpose_then(column),  # 6 rotate 90 clockwise
        transpose_then(row, column),  # 7 transverse
        transpose_then(row),  # 8 rotate 90 anticlockwise
    ]
    return tf.switch_case(tf.clip_by_value(orientation, 1, 8) - 1, turns)


# Decoded images up to this many pixels are cropped with the views in
# parallel (the fast path: a crop's uint8 copy, and its float32 copy when
# enlarged, are at most 4 Mpx x 3 x 4 B = 48 MB); larger ones are resized
# straight from the image, one view after the other, so a huge photo never
# gets a copy of its crop.
FAST_PATH_MAX_PIXELS = 4_000_000


def _crop(image, window):
    """`image[top : top + height, left : left + width]` of a window."""
    return image[window[0] : window[0] + window[2], window[1] : window[1] + window[3]]


def _to_uint8(resized):
    """Rounds float pixels back to uint8: `+ 0.5`, then truncation.

    No clip is needed: area, bilinear and triangle weights are convex
    combinations, so the pixels stay within [0, 255] (up to float error,
    which truncation absorbs).
    """
    return tf.cast(resized + 0.5, tf.uint8)


def resize(crop, image_size):
    """One uint8 `(h, w, 3)` crop to a float32 `(S, S, 3)` square, antialiased.

    A crop at least `image_size` on its shorter side is shrunk by area
    averaging (`tf.image.resize(method="area")`: each output pixel is the
    mean of the input pixels it covers, exactly, so nothing aliases at any
    factor); a smaller one is enlarged bilinearly, on a float32 copy
    (TensorFlow's bilinear resize reads float32 about 3x faster than uint8).
    In `tf.data`, two views of a ~440 px photo take 0.5 ms of a core at 96
    px and 0.95 ms at 224 px, against 1.6 and 3.0 ms for
    `tf.image.resize(antialias=True)` and 1.5 and 1.1 ms for the uint8 2x
    pools then bilinear used before, which aliased below a factor of 2
    (2 cores; benchmarks/input_pipeline.py's folder).
    """
    size = (image_size, image_size)
    return tf.cond(
        tf.reduce_min(tf.shape(crop)[:2]) >= image_size,
        lambda: tf.image.resize(crop, size, method="area"),
        lambda: tf.image.resize(tf.cast(crop, tf.float32), size, method="bilinear"),
    )


def crop_and_resize(image, window, image_size):
    """Cuts `window` out of one `(H, W, 3)` uint8 image and `resize`s it.

    `crop_views` sends images over `FAST_PATH_MAX_PIXELS` to
    `resize_window` instead.

    Returns:
        uint8 `(image_size, image_size, 3)`.

    Examples:
        >>> image = tf.zeros((300, 400, 3), tf.uint8)
        >>> crop_and_resize(image, tf.constant([10, 20, 200, 150]), 96).shape
        TensorShape([96, 96, 3])
    """
    return _to_uint8(resize(_crop(image, window), image_size))


def resize_window(image, window, image_size):
    """`crop_and_resize` without copying the crop, for very large images.

    One `ScaleAndTranslate` reads the window straight from the image with
    the kernel of `tf.image.resize(antialias=True)` (a triangle widened by
    the factor: antialiased at any factor). Slower per pixel than `resize`,
    but its only temporary is one pass's `(S, W, 3)` float32 rows: nothing
    the size of the crop. At the window's edges the kernel also weighs the
    photo's pixels just outside it (a copied crop has none there).

    Examples:
        >>> image = tf.zeros((300, 400, 3), tf.uint8)
        >>> resize_window(image, tf.constant([10, 20, 200, 150]), 96).shape
        TensorShape([96, 96, 3])
    """
    top, left, height, width = tf.unstack(tf.cast(window, tf.float32))
    scale = tf.stack([image_size / height, image_size / width])
    resized = tf.raw_ops.ScaleAndTranslate(
        images=image[None],
        size=[image_size, image_size],
        scale=scale,
        translation=-scale * tf.stack([top, left]),
        kernel_type="triangle",
        antialias=True,
    )
    return _to_uint8(resized[0])


def crop_views(image, windows, image_size):
    """Every window of `windows` cut from `image` and resized: `(V, S, S, 3)`.

    Images of up to `FAST_PATH_MAX_PIXELS` take the fast path (views in
    parallel); larger ones `resize_window`, one view after the other, so a
    huge photo's crops are never copied.
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
                done.append(resize_window(image, windows[index], image_size))
        return tf.stack(done)

    pixels = tf.shape(image)[0] * tf.shape(image)[1]
    return tf.cond(pixels > FAST_PATH_MAX_PIXELS, bounded, fast)
