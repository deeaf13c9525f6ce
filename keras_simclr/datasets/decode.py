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
