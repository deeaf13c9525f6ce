"""Where an image is decoded: any format to RGB uint8, JPEGs at a reduced scale.

`decode` turns one encoded image of any supported format into uint8
`(H, W, 3)`; `decode_jpeg_for_windows` decodes a JPEG at the smallest DCT
scale (1, 1/2, 1/4, 1/8) that still serves every crop window, which is far
cheaper than a full decode followed by a downscale. Both run inside
`tf.data.Dataset.map` (TensorFlow ops, whatever the Keras backend).
"""

import tensorflow as tf

# JPEG decoders can decode at 1/2, 1/4 or 1/8 scale in the DCT domain, far
# faster than a full decode followed by a downscale.
JPEG_SCALES = (1, 2, 4, 8)


def decode_jpeg_for_windows(encoded, windows, image_size):
    """Decodes a JPEG at the smallest scale that still serves every window.

    When all windows are at least `2 ** k * image_size` pixels on their
    shorter side, the JPEG is decoded at `1 / 2 ** k` scale (DCT scaling: a
    proper low-pass, and much less work than a full decode), and the windows
    are scaled to match; every window then still has at least `image_size`
    pixels on its shorter side.

    Args:
        encoded: the JPEG's bytes.
        windows: int32 `(V, 4)` windows in the original's pixels.
        image_size: int, the output side.

    Returns:
        `(image, windows)`: uint8 `(h, w, 3)` and the windows in its pixels.
    """
    smallest = tf.reduce_min(windows[:, 2:])
    level = tf.zeros((), tf.int32)
    for index, scale in enumerate(JPEG_SCALES[1:], start=1):
        level = tf.where(smallest >= scale * image_size, index, level)
    image = tf.switch_case(
        level,
        [
            lambda scale=scale: tf.io.decode_jpeg(encoded, channels=3, ratio=scale)
            for scale in JPEG_SCALES
        ],
    )
    scale = tf.gather(tf.constant(JPEG_SCALES, tf.int32), level)
    shape = tf.shape(image)
    sizes = tf.minimum(tf.maximum(windows[:, 2:] // scale, 1), shape[None, :2])
    corners = tf.minimum(windows[:, :2] // scale, shape[None, :2] - sizes)
    return image, tf.concat([corners, sizes], axis=1)


def decode(encoded, key, on_error):
    """One encoded image → uint8 `(H, W, 3)` RGB.

    JPEG (also CMYK and grayscale), PNG (also 16-bit, with alpha), GIF
    (first frame) and BMP become 3-channel uint8; 16-bit values are scaled
    to 0–255 and alpha is dropped. With `on_error="raise"` the decode runs
    in Python so that the error names `key` (slower: for debugging a dataset).
    """

    def decode_image(data):
        return tf.io.decode_image(
            data, channels=3, dtype=tf.uint8, expand_animations=False
        )

    if on_error == "skip":
        return decode_image(encoded)

    def decode_or_name(data, name):
        try:
            return decode_image(data)
        except tf.errors.OpError as error:
            message = str(error).splitlines()[-1].split("] ")[-1]
            raise ValueError(
                f"Cannot decode {name.numpy().decode()!r}: {message}. Remove or "
                "fix the file, or pass on_error='skip' to skip it."
            ) from None

    image = tf.py_function(decode_or_name, [encoded, key], tf.uint8)
    image.set_shape((None, None, 3))
    return image


# Pillow's decompression-bomb threshold (`PIL.Image.MAX_IMAGE_PIXELS`): larger
# images are refused before decoding.
MAX_PIXELS = 89_478_485
# A real JPEG holds at least ~1 byte per 1,000 pixels (a uniform 8x8 block
# still costs a few bits per channel); far less means a header that claims a
# size the data does not have.
MIN_JPEG_BYTES_PER_PIXEL = 1e-3


def _unsigned(data, start, length, byteorder):
    """The unsigned integer of `length` bytes of `data` at `start`."""
    raw = tf.io.decode_raw(tf.strings.substr(data, start, length), tf.uint8)
    order = range(length) if byteorder == "big" else reversed(range(length))
    value = tf.constant(0, tf.int64)
    for index in order:
        value = value * 256 + tf.cast(raw[index], tf.int64)
    return value


def header_pixels(encoded):
    """Pixels an encoded image claims in its header, read without decoding.

    JPEG (`extract_jpeg_shape`), PNG (IHDR), GIF (logical screen) and BMP
    (info header); 0 for formats not read here (WebP caps itself at 16383²)
    and for data too short to hold a header (the decode then fails).
    """
    length = tf.strings.length(encoded)
    magic = tf.strings.substr(encoded, 0, 4)

    def jpeg():
        shape = tf.cast(tf.io.extract_jpeg_shape(encoded), tf.int64)
        return shape[0] * shape[1]

    def png():
        return _unsigned(encoded, 16, 4, "big") * _unsigned(encoded, 20, 4, "big")

    def gif():
        return _unsigned(encoded, 6, 2, "little") * _unsigned(encoded, 8, 2, "little")

    def bmp():
        height = _unsigned(encoded, 22, 4, "little")
        height = tf.where(height >= 2**31, 2**32 - height, height)  # top-down
        return _unsigned(encoded, 18, 4, "little") * height

    def unknown():
        return tf.constant(0, tf.int64)

    is_png = tf.logical_and(tf.equal(magic, b"\x89PNG"), length >= 24)
    is_gif = tf.logical_and(
        tf.equal(tf.strings.substr(magic, 0, 3), b"GIF"), length >= 10
    )
    is_bmp = tf.logical_and(
        tf.equal(tf.strings.substr(magic, 0, 2), b"BM"), length >= 26
    )
    return tf.case(
        [
            (tf.io.is_jpeg(encoded), jpeg),
            (is_png, png),
            (is_gif, gif),
            (is_bmp, bmp),
        ],
        default=unknown,
        exclusive=False,
    )


def check_size(encoded, key, max_pixels=MAX_PIXELS):
    """`encoded`, with a run-time check of its header against `max_pixels`.

    The item fails (skipped and named, or raised with `on_error="raise"`)
    before any decoding when its header claims more than `max_pixels`, or
    when a JPEG's data is far too short for the size it claims.
    """
    pixels = header_pixels(encoded)
    too_large = tf.debugging.Assert(
        pixels <= max_pixels,
        ["image larger than max_pixels (a decompression bomb?):", key, pixels],
    )
    length = tf.cast(tf.strings.length(encoded), tf.float64)
    claimed = tf.cast(pixels, tf.float64) * MIN_JPEG_BYTES_PER_PIXEL
    truncated = tf.debugging.Assert(
        tf.logical_or(tf.logical_not(tf.io.is_jpeg(encoded)), length >= claimed),
        ["JPEG data too short for the size its header claims:", key],
    )
    with tf.control_dependencies([too_large, truncated]):
        return tf.identity(encoded)
