"""Pictures users want, as PNGs (no plotting library needed).

`augmentation_grid` here; `embedding_map` (2-D map of h by label) is
re-exported from `keras_simclr.evaluation`.
"""

import numpy as np
import tensorflow as tf


def _to_uint8(images, value_range=(0.0, 1.0)):
    low, high = value_range
    images = (np.asarray(images, "float32") - low) / (high - low)
    return np.clip(np.round(images * 255), 0, 255).astype("uint8")


def _write_png(grid, path):
    tf.io.write_file(str(path), tf.io.encode_png(grid))


def augmentation_grid(images, augmentation, path, views=4, padding=2):
    """Writes a PNG: one row per image, its original then `views` augmented views.

    Args:
        images: `(B, H, W, 3)` (or 1-channel) array in the augmentation's
            `value_range`.
        augmentation: a `SimCLRAugmentation` (or any callable giving float
            views in [0, 1] of side `augmentation.image_size`).
        path: where to write the PNG.
        views: int, augmented views per image. Defaults to 4.
        padding: int, white pixels between tiles. Defaults to 2.

    Returns:
        The grid as a uint8 `(rows, columns, 3)` array.

    Examples:
        >>> import numpy as np, tempfile, os
        >>> from keras_simclr.layers import SimCLRAugmentation
        >>> images = np.random.randint(0, 256, (3, 32, 32, 3), dtype="uint8")
        >>> path = os.path.join(tempfile.mkdtemp(), "views.png")
        >>> augmentation_grid(images, SimCLRAugmentation(32, seed=0), path).shape
        (104, 172, 3)
    """
    size = augmentation.image_size
    originals = _to_uint8(augmentation(images, training=False))
    columns = [originals] + [
        _to_uint8(augmentation(images, training=True)) for _ in range(views)
    ]
    rows, cols = len(originals), len(columns)
    step = size + padding
    grid = np.full((rows * step + padding, cols * step + padding, 3), 255, "uint8")
    for col, tiles in enumerate(columns):
        for row, tile in enumerate(tiles):
            top, left = padding + row * step, padding + col * step
            grid[top : top + size, left : left + size] = tile
    _write_png(grid, path)
    return grid


def embedding_map(*args, **kwargs):
    """See `keras_simclr.evaluation.embedding_map`."""
    from keras_simclr.evaluation.embedding_map import embedding_map as draw

    return draw(*args, **kwargs)
