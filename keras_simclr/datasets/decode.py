"""Where an image is decoded: any format to RGB uint8, JPEGs at a reduced scale.

`decode` turns one encoded image of any supported format into uint8
`(H, W, 3)`; a JPEG is decoded at the smallest DCT scale (1, 1/2, 1/4, 1/8)
that still serves every crop window (`jpeg_scales`, `scaled_windows`), which
is far cheaper than a full decode followed by a downscale. What can be read
before decoding (`header_shape`, `size_problems`, `exif_orientation`) is
read here too. All of it runs inside `tf.data.Dataset.map` (TensorFlow ops,
whatever the Keras backend); the functions that take a batch of images
(`size_problems`, `exif_orientation`, `jpeg_scales`, `scaled_windows`) cost
a few ops per batch, not per image.
"""

import tensorflow as tf

# JPEG decoders can decode at 1/2, 1/4 or 1/8 scale in the DCT domain, far
# faster than a full decode followed by a downscale.
JPEG_SCALES = (1, 2, 4, 8)


def jpeg_scales(windows, image_size):
    """The DCT scale level (0-3: 1, 1/2, 1/4, 1/8) that serves every window.

    When all of an image's windows are at least `2 ** k * image_size` pixels
    on their shorter side, the JPEG can be decoded at `1 / 2 ** k` scale (DCT
    scaling: a proper low-pass, and much less work than a full decode); every
    window then still has at least `image_size` pixels on its shorter side.

    Args:
        windows: int32 `(..., V, 4)` windows `[top, left, height, width]`.
        image_size: int, the output side.

    Returns:
        int32 `(...)` levels: indices into `JPEG_SCALES`.
    """
    smallest = tf.reduce_min(windows[..., 2:], axis=[-2, -1])
    level = tf.zeros_like(smallest)
    for index, scale in enumerate(JPEG_SCALES[1:], start=1):
        level = tf.where(smallest >= scale * image_size, index, level)
    return level


def scaled_windows(windows, level, height, width):
    """Windows in the pixels of a JPEG decoded at `JPEG_SCALES[level]`.

    libjpeg's scaled output is `ceil(side / scale)`; windows are divided by
    the scale and kept inside it.

    Args:
        windows: int32 `(..., V, 4)` in the original's pixels.
        level: int32 `(...)`.
        height: int32 `(...)`, the original's height.
        width: int32 `(...)`.
    """
    scale = tf.gather(tf.constant(JPEG_SCALES, tf.int32), level)[..., None, None]
    shape = tf.stack([height, width], axis=-1)[..., None, :]  # (..., 1, 2)
    shape = (shape + scale - 1) // scale
    sizes = tf.minimum(tf.maximum(windows[..., 2:] // scale, 1), shape)
    corners = tf.minimum(windows[..., :2] // scale, shape - sizes)
    return tf.concat([corners, sizes], axis=-1)


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
    # Every string `total` bytes long: a batch decodes to one (..., total) array.
    return tf.io.decode_raw(tf.strings.substr(padded, 0, total), tf.uint8)


def _unsigned(head, start, length, byteorder):
    """The unsigned integer of `length` bytes of the uint8 vector `head`."""
    order = range(length) if byteorder == "big" else reversed(range(length))
    value = tf.constant(0, tf.int64)
    for index in order:
        value = value * 256 + tf.cast(head[start + index], tf.int64)
    return value


# Header sides are kept below this, so that a lying header cannot overflow
# the int32 window arithmetic (the size check refuses such images anyway).
MAX_SIDE = 2**30


def header_shape(encoded):
    """int32 `(height, width)` an encoded image claims in its header.

    JPEG (`extract_jpeg_shape`), PNG (IHDR), GIF (logical screen) and BMP
    (info header), read without decoding; `(0, 0)` for formats not read here
    (WebP caps itself at 16383²) and for data too short to hold a header (the
    decode then fails). The non-JPEG formats are read from a zero-padded copy
    of the first 32 bytes and chosen by arithmetic: one branch per image, not
    one per format.

    Examples:
        >>> import tensorflow as tf
        >>> png = tf.io.encode_png(tf.zeros((3, 5, 3), tf.uint8))
        >>> header_shape(png).numpy().tolist()
        [3, 5]
    """
    head = _head_bytes(encoded, 32, 32)
    length = tf.strings.length(encoded)

    def magic(prefix):
        return tf.reduce_all(tf.equal(head[: len(prefix)], list(prefix)))

    def jpeg():
        return tf.cast(tf.io.extract_jpeg_shape(encoded)[:2], tf.int64)

    def other():
        png = tf.stack([_unsigned(head, 20, 4, "big"), _unsigned(head, 16, 4, "big")])
        gif = tf.stack(
            [_unsigned(head, 8, 2, "little"), _unsigned(head, 6, 2, "little")]
        )
        bmp_height = _unsigned(head, 22, 4, "little")
        bmp_height = tf.where(bmp_height >= 2**31, 2**32 - bmp_height, bmp_height)
        bmp = tf.stack([bmp_height, _unsigned(head, 18, 4, "little")])  # top-down: <0
        shape = tf.zeros((2,), tf.int64)
        shape = tf.where(tf.logical_and(magic(b"BM"), length >= 26), bmp, shape)
        shape = tf.where(tf.logical_and(magic(b"GIF"), length >= 10), gif, shape)
        return tf.where(tf.logical_and(magic(b"\x89PNG"), length >= 24), png, shape)

    shape = tf.cond(tf.io.is_jpeg(encoded), jpeg, other)
    return tf.cast(tf.minimum(shape, MAX_SIDE), tf.int32)


def size_problems(shapes, lengths, is_jpeg, max_pixels=MAX_PIXELS):
    """Which images to refuse before decoding, from their headers (vectorised).

    Args:
        shapes: int32 `(..., 2)` from `header_shape`.
        lengths: int `(...)` bytes of each encoded image.
        is_jpeg: bool `(...)`.
        max_pixels: the largest image accepted.

    Returns:
        `(too_large, truncated)`, bool `(...)` each. `too_large`: the header
        claims more than `max_pixels` (a decompression bomb?); `truncated`: a
        JPEG whose data is far too short for the size it claims.
    """
    pixels = tf.reduce_prod(tf.cast(shapes, tf.int64), axis=-1)
    claimed = tf.cast(pixels, tf.float64) * MIN_JPEG_BYTES_PER_PIXEL
    truncated = tf.logical_and(is_jpeg, tf.cast(lengths, tf.float64) < claimed)
    return pixels > max_pixels, truncated


# The formats the readers decode, by their first bytes (WebP: RIFF....WEBP).
MAGIC = (b"\xff\xd8", b"\x89PNG", b"GIF8", b"BM", b"RIFF")


def header_problem(data, max_pixels=MAX_PIXELS):
    """Why the readers would skip an image before decoding it, or None.

    The checks a reader runs on the header (`header_shape`, `size_problems`)
    in Python, for one file's bytes: `make-tfrecords` runs them as it writes,
    so a bomb or a lying header is named then and never packed. A file whose
    data is damaged after a valid header passes here; the readers skip it
    when its decode fails.

    Examples:
        >>> import tensorflow as tf
        >>> header_problem(tf.io.encode_png(tf.zeros((3, 5, 3), tf.uint8)).numpy())
        >>> header_problem(b"hello")
        'not an image (JPEG, PNG, GIF, BMP or WebP)'
    """
    if not data:
        return "empty file"
    if not data.startswith(MAGIC) or (
        data.startswith(b"RIFF") and data[8:12] != b"WEBP"
    ):
        return "not an image (JPEG, PNG, GIF, BMP or WebP)"
    try:
        shape = _header_shape_graph(tf.constant(data))
    except tf.errors.OpError:
        return "unreadable image header"
    is_jpeg = data.startswith(MAGIC[0])
    too_large, truncated = size_problems(shape, len(data), is_jpeg, max_pixels)
    if bool(too_large):
        height, width = shape.numpy().tolist()
        return (
            f"{height} x {width} is larger than max_pixels={max_pixels} "
            "(a decompression bomb?)"
        )
    if bool(truncated):
        return "JPEG data too short for the size its header claims"
    return None


# One graph call per file (0.34 ms on typical JPEGs; 0.6 ms op by op).
_header_shape_graph = tf.function(
    lambda encoded: header_shape(encoded),
    input_signature=[tf.TensorSpec([], tf.string)],
    autograph=False,
)


# EXIF is read from the first 16 KiB only: the APP1 segment holding it comes
# right after the start of image (or after a JFIF APP0), and IFD0 at its
# start; a file with larger segments before it reads as orientation 1.
EXIF_SEARCH_BYTES = 16_384
EXIF_MAX_ENTRIES = 64  # IFD0 entries read (Orientation is among the first)
ORIENTATION_TAG = 0x0112


def exif_orientation(encoded):
    """The EXIF Orientation (1–8) of JPEGs, read from their bytes; 1 if none.

    Cameras store a portrait photo sideways with the Orientation tag saying
    how to turn it for display; `tf.io.decode_jpeg` ignores the tag. This
    reads it with tensor ops, for a whole batch of images at once (a few
    dozen ops per batch, not per image): find the first `Exif\0\0` within
    the first 16 KiB and check that it opens an APP1 segment (the marker
    0xFFE1 and a length just before it), read the TIFF byte order, then
    look for tag 0x0112 among IFD0's entries. Non-JPEGs, missing or
    malformed EXIF and values outside 1–8 give 1 (as shown). All reads are
    gathers from a zero-padded copy of the first 16 KiB, so a truncated file
    cannot read out of range.

    Args:
        encoded: string tensor of any shape, encoded images.

    Returns:
        int32 tensor of `encoded`'s shape.

    Examples:
        >>> import tensorflow as tf
        >>> exif_orientation(tf.constant([b"not a jpeg", b"\\xff\\xd8\\xff"])).numpy()
        array([1, 1], dtype=int32)
    """
    encoded = tf.convert_to_tensor(encoded, tf.string)
    flat = tf.reshape(encoded, [-1])
    start = tf.strings.substr(flat, 0, EXIF_SEARCH_BYTES)
    # A byte search (a regular expression would read the bytes as UTF-8):
    # the first piece's length is where the first `Exif\0\0` starts. Most
    # files carry none, and a batch without any skips the parse.
    pieces = tf.strings.split(start, sep="Exif\0\0")
    before = tf.strings.length(tf.gather(pieces.values, pieces.row_starts()))
    has_exif = tf.logical_and(tf.io.is_jpeg(flat), pieces.row_lengths() > 1)
    values = tf.cond(
        tf.reduce_any(has_exif),
        lambda: tf.where(has_exif, _parse_orientation(start, before), 1),
        lambda: tf.ones_like(before),
    )
    return tf.reshape(values, tf.shape(encoded))


def _parse_orientation(start, exif):
    """`exif_orientation` of `(B,)` JPEGs' first bytes, `Exif\0\0` at `exif`.

    No walk over the segments (a `while_loop`, or one copy of its step per
    segment, multiplied the graph that `tf.data` re-optimises for every new
    iterator): the header found must sit right after an APP1 marker and its
    length, as a segment start has it.
    """
    limit = EXIF_SEARCH_BYTES
    data = _head_bytes(start, limit, 2 * limit)  # (B, 2 * limit)

    def read(positions):  # (B, k) -> (B, k) int32 bytes
        positions = tf.clip_by_value(positions, 0, 2 * limit - 1)
        return tf.cast(tf.gather(data, positions, batch_dims=1), tf.int32)

    # Two gathers, one per level of indirection. First: the APP1 marker
    # before the header, the TIFF byte order and IFD0's 4-byte offset.
    head = read(exif[:, None] + [-4, -3, 6, 7, 10, 11, 12, 13])
    is_app1 = tf.logical_and(  # SOI, then the marker and the length
        exif >= 6, tf.reduce_all(tf.equal(head[:, :2], [0xFF, 0xE1]), axis=-1)
    )
    little = tf.reduce_all(tf.equal(head[:, 2:4], [0x49, 0x49]), axis=-1)
    weights = tf.where(
        little[:, None],
        tf.constant([1, 256, 65_536, 16_777_216], tf.int64),
        tf.constant([16_777_216, 65_536, 256, 1], tf.int64),
    )  # int64: an offset can exceed int32
    offset = tf.reduce_sum(tf.cast(head[:, 4:], tf.int64) * weights, axis=-1)
    tiff = exif + 6  # where the TIFF header starts
    ifd = tiff + tf.cast(tf.clip_by_value(offset, 0, limit), tf.int32)
    # Second: IFD0's entry count, then each entry's tag and the first two
    # bytes of its value field (where a SHORT such as Orientation sits).
    fields = tf.reshape(
        2 + 12 * tf.range(EXIF_MAX_ENTRIES)[:, None] + [0, 1, 8, 9], [-1]
    )
    ifd_bytes = read(ifd[:, None] + tf.concat([[0, 1], fields], axis=0))
    pairs = tf.reshape(ifd_bytes, [-1, 1 + 2 * EXIF_MAX_ENTRIES, 2])
    pair_weights = tf.where(little[:, None, None], [1, 256], [256, 1])
    numbers = tf.reduce_sum(pairs * pair_weights, axis=-1)  # (B, 1 + 2E)
    count = tf.minimum(numbers[:, 0], EXIF_MAX_ENTRIES)
    tags, values = numbers[:, 1::2], numbers[:, 2::2]  # (B, E) each
    is_orientation = tf.logical_and(
        tf.equal(tags, ORIENTATION_TAG),
        tf.range(EXIF_MAX_ENTRIES) < count[:, None],
    )
    value = tf.reduce_max(tf.where(is_orientation, values, 0), axis=-1)
    valid = tf.logical_and(is_app1, tf.logical_and(value >= 1, value <= 8))
    return tf.where(valid, value, 1)
