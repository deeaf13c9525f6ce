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


def _head_bytes(data, keep, total):
    """The first `keep` bytes of `data`, zero-padded to `total`, as uint8.

    Reads at fixed positions then never run past a short file's end.
    """
    padded = tf.strings.join([tf.strings.substr(data, 0, keep), b"\0" * total])
    return tf.io.decode_raw(padded, tf.uint8)[:total]


def _unsigned(head, start, length, byteorder):
    """The unsigned integer of `length` bytes of the uint8 vector `head`."""
    order = range(length) if byteorder == "big" else reversed(range(length))
    value = tf.constant(0, tf.int64)
    for index in order:
        value = value * 256 + tf.cast(head[start + index], tf.int64)
    return value


def header_pixels(encoded):
    """Pixels an encoded image claims in its header, read without decoding.

    JPEG (`extract_jpeg_shape`), PNG (IHDR), GIF (logical screen) and BMP
    (info header); 0 for formats not read here (WebP caps itself at 16383²)
    and for data too short to hold a header (the decode then fails). The
    non-JPEG formats are read from a zero-padded copy of the first 32 bytes
    and chosen by arithmetic: one branch per image, not one per format.
    """
    head = _head_bytes(encoded, 32, 32)
    length = tf.strings.length(encoded)

    def magic(prefix):
        return tf.reduce_all(tf.equal(head[: len(prefix)], list(prefix)))

    def jpeg():
        shape = tf.cast(tf.io.extract_jpeg_shape(encoded), tf.int64)
        return shape[0] * shape[1]

    def other():
        png = _unsigned(head, 16, 4, "big") * _unsigned(head, 20, 4, "big")
        gif = _unsigned(head, 6, 2, "little") * _unsigned(head, 8, 2, "little")
        bmp_height = _unsigned(head, 22, 4, "little")
        bmp_height = tf.where(bmp_height >= 2**31, 2**32 - bmp_height, bmp_height)
        bmp = _unsigned(head, 18, 4, "little") * bmp_height  # top-down: negative
        pixels = tf.zeros((), tf.int64)
        pixels = tf.where(tf.logical_and(magic(b"BM"), length >= 26), bmp, pixels)
        pixels = tf.where(tf.logical_and(magic(b"GIF"), length >= 10), gif, pixels)
        return tf.where(tf.logical_and(magic(b"\x89PNG"), length >= 24), png, pixels)

    return tf.cond(tf.io.is_jpeg(encoded), jpeg, other)


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


# EXIF is read from the first 16 KiB only: the APP1 segment holding it comes
# right after the start of image (or after a JFIF APP0), and IFD0 at its
# start; a file with larger segments before it reads as orientation 1.
EXIF_SEARCH_BYTES = 16_384
EXIF_MAX_SEGMENTS = 4  # APPn segments walked before giving up
EXIF_MAX_ENTRIES = 64  # IFD0 entries read (Orientation is among the first)
ORIENTATION_TAG = 0x0112


def exif_orientation(encoded):
    """The EXIF Orientation (1–8) of a JPEG, read from its bytes; 1 if none.

    Cameras store a portrait photo sideways with the Orientation tag saying
    how to turn it for display; `tf.io.decode_jpeg` ignores the tag. This
    reads it with tensor ops (no Python per image): walk the first APPn
    segments to the `Exif` APP1, read the TIFF byte order, then look for tag
    0x0112 among IFD0's entries. Non-JPEGs, missing or malformed EXIF and
    values outside 1–8 give 1 (as shown). All reads are gathers from a
    zero-padded copy of the first 16 KiB, so a truncated file cannot read
    out of range.

    Examples:
        >>> import tensorflow as tf
        >>> int(exif_orientation(tf.constant(b"not a jpeg")))
        1
    """
    start = tf.strings.substr(encoded, 0, EXIF_SEARCH_BYTES)
    # Most files carry no EXIF: one byte search skips the parse (a regular
    # expression would read the bytes as UTF-8 and miss it).
    parts = tf.strings.split(start[None], sep="Exif\0\0").row_lengths()[0]
    has_exif = tf.logical_and(tf.io.is_jpeg(encoded), parts > 1)
    return tf.cond(has_exif, lambda: _parse_orientation(start), lambda: tf.constant(1))


def _parse_orientation(start):
    """`exif_orientation` of a JPEG whose first bytes `start` hold `Exif\\0\\0`."""
    limit = EXIF_SEARCH_BYTES
    data = _head_bytes(start, limit, 2 * limit)

    def byte(position):
        position = tf.clip_by_value(position, 0, 2 * limit - 1)
        return tf.cast(tf.gather(data, position), tf.int32)

    def big_endian_16(position):
        return byte(position) * 256 + byte(position + 1)

    # Walk the APPn segments: a marker 0xFFEn, a 2-byte length, the payload.
    position = tf.constant(2, tf.int32)
    tiff = tf.constant(-1, tf.int32)  # where the TIFF header starts, if found
    exif = tf.constant([ord(c) for c in "Exif"] + [0, 0], tf.int32)
    for _ in range(EXIF_MAX_SEGMENTS):
        marker = byte(position + 1)
        is_app = tf.logical_and(
            tf.equal(byte(position), 0xFF),
            tf.logical_and(marker >= 0xE0, marker <= 0xEF),
        )
        header = byte(position + 4 + tf.range(6))
        is_exif = tf.logical_and(
            tf.logical_and(is_app, tf.equal(marker, 0xE1)),
            tf.reduce_all(tf.equal(header, exif)),
        )
        tiff = tf.where(tf.logical_and(tiff < 0, is_exif), position + 10, tiff)
        moved = position + 2 + big_endian_16(position + 2)
        position = tf.where(tf.logical_and(is_app, tiff < 0), moved, position)
        position = tf.minimum(position, limit)

    little = tf.logical_and(tf.equal(byte(tiff), 0x49), tf.equal(byte(tiff + 1), 0x49))

    def unsigned_16(at):
        first, second = byte(at), byte(at + 1)
        return tf.where(little, first + 256 * second, first * 256 + second)

    ifd_offset = tf.where(
        little,
        unsigned_16(tiff + 4) + 65_536 * unsigned_16(tiff + 6),
        unsigned_16(tiff + 4) * 65_536 + unsigned_16(tiff + 6),
    )
    ifd = tiff + tf.clip_by_value(ifd_offset, 0, limit)
    count = tf.minimum(unsigned_16(ifd), EXIF_MAX_ENTRIES)
    entries = ifd + 2 + 12 * tf.range(EXIF_MAX_ENTRIES)  # (E,) entry starts
    is_orientation = tf.logical_and(
        tf.equal(unsigned_16(entries), ORIENTATION_TAG),
        tf.range(EXIF_MAX_ENTRIES) < count,
    )
    values = unsigned_16(entries + 8)  # a SHORT sits in the value field's start
    value = tf.reduce_max(tf.where(is_orientation, values, 0))
    valid = tf.logical_and(tiff >= 0, tf.logical_and(value >= 1, value <= 8))
    return tf.where(valid, value, 1)
