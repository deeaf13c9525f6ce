"""Pictures users want, as PNGs: image grids and maps, drawn with numpy (the
run report's charts, which need axes, are matplotlib's: `report.metric_chart`).

`augmentation_grid` (views of a few images) and `embedding_map` (a 2-D map of
h coloured by label).
"""

import numpy as np
import tensorflow as tf

from keras_simclr.evaluation.features import extract_features


def _to_uint8(images, value_range=(0.0, 1.0)):
    low, high = value_range
    images = (np.asarray(images, "float32") - low) / (high - low)
    return np.clip(np.round(images * 255), 0, 255).astype("uint8")


def write_png(image, path):
    """Writes a uint8 `(H, W, 3)` array to `path` as a PNG."""
    tf.io.write_file(str(path), tf.io.encode_png(image))


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
    write_png(grid, path)
    return grid


# Tableau-10 colours, cycled for more classes.
PALETTE = np.array(
    [
        [31, 119, 180],
        [255, 127, 14],
        [44, 160, 44],
        [214, 39, 40],
        [148, 103, 189],
        [140, 86, 75],
        [227, 119, 194],
        [127, 127, 127],
        [188, 189, 34],
        [23, 190, 207],
    ],
    "uint8",
)


def embedding_map(model_or_encoder, data, path, method="pca", size=512, dot=2, seed=0):
    """Writes a PNG scatter of the 2-D embedding of h, one colour per label.

    Args:
        model_or_encoder: a `SimCLRModel` or a Keras encoder.
        data: `tf.data.Dataset` of (images, labels) batches or `(x, y)`.
        path: where to write the PNG.
        method: `"pca"` or `"tsne"` (scikit-learn). Defaults to `"pca"`.
        size: side of the square picture in pixels. Defaults to 512.
        dot: half-side of each point's square in pixels. Defaults to 2.
        seed: t-SNE seed. Defaults to 0.

    Returns:
        `(points, labels)`: the float `(N, 2)` coordinates and `(N,)` labels.

    Examples:
        >>> import numpy as np, keras, tempfile, os
        >>> encoder = keras.Sequential([keras.Input((5,)), keras.layers.Identity()])
        >>> x = np.random.default_rng(0).normal(size=(50, 5)).astype("float32")
        >>> path = os.path.join(tempfile.mkdtemp(), "map.png")
        >>> points, labels = embedding_map(encoder, (x, np.arange(50) % 3), path)
        >>> points.shape
        (50, 2)
    """
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    features, labels = extract_features(model_or_encoder, data)
    if method == "pca":
        points = PCA(n_components=2, random_state=seed).fit_transform(features)
    elif method == "tsne":
        perplexity = min(30.0, (len(features) - 1) / 3)
        points = TSNE(
            2, perplexity=perplexity, random_state=seed, init="pca"
        ).fit_transform(features)
    else:
        raise ValueError(f'`method` must be "pca" or "tsne". Received: {method!r}')
    low, high = points.min(axis=0), points.max(axis=0)
    margin = dot + 2
    pixels = margin + (points - low) / np.maximum(high - low, 1e-12) * (
        size - 1 - 2 * margin
    )
    pixels = np.round(pixels).astype(int)
    canvas = np.full((size, size, 3), 255, "uint8")
    for (x, y), label in zip(pixels, labels):
        row = size - 1 - y  # y grows upwards
        canvas[row - dot : row + dot + 1, x - dot : x + dot + 1] = PALETTE[
            label % len(PALETTE)
        ]
    write_png(canvas, path)
    return points, labels


def neighbours_grid(queries, neighbours, similarities, path, padding=4, bar=6):
    """Writes a PNG: per row, a query photo, a gap, then its nearest photos.

    Under each neighbour a bar shows its cosine similarity (full width = 1,
    green; half = 0.5). The numbers are the caller's to print.

    Args:
        queries: uint8 `(Q, S, S, 3)` tiles.
        neighbours: uint8 `(Q, k, S, S, 3)` tiles.
        similarities: `(Q, k)` floats in [-1, 1].
        path: where to write the PNG.
        padding: white pixels between tiles. Defaults to 4.
        bar: height of the similarity bars. Defaults to 6.

    Returns:
        The grid, uint8 `(Q * (S + bar + padding) + padding,
        (k + 1) * (S + padding) + 3 * padding, 3)`.

    Examples:
        >>> import numpy as np, tempfile, os
        >>> tiles = np.zeros((2, 3, 16, 16, 3), "uint8")
        >>> path = os.path.join(tempfile.mkdtemp(), "grid.png")
        >>> neighbours_grid(tiles[:, 0], tiles, np.ones((2, 3)), path).shape
        (56, 92, 3)
    """
    queries, neighbours = np.asarray(queries), np.asarray(neighbours)
    rows, k, size = neighbours.shape[0], neighbours.shape[1], neighbours.shape[2]
    step_y, step_x = size + bar + padding, size + padding
    height = rows * step_y + padding
    width = (k + 1) * step_x + 3 * padding  # a wider gap after the query
    grid = np.full((height, width, 3), 255, "uint8")
    for row in range(rows):
        top = padding + row * step_y
        grid[top : top + size, padding : padding + size] = queries[row]
        for column in range(k):
            left = padding + (column + 1) * step_x + 2 * padding
            grid[top : top + size, left : left + size] = neighbours[row, column]
            filled = int(round(size * float(np.clip(similarities[row, column], 0, 1))))
            grid[top + size + 1 : top + size + bar - 1, left : left + size] = 220
            grid[top + size + 1 : top + size + bar - 1, left : left + filled] = (
                44,
                160,
                44,
            )
    write_png(grid, path)
    return grid


def photo_tiles(paths, size):
    """Centre crops of the photos at `paths`, uint8 `(N, size, size, 3)`, in
    the order of `paths`; each file is read once however often it appears.

    Args:
        paths: image file paths, or `datasets.records.record_key`s of
            TFRecords (repeats allowed).
        size: int, the tiles' side.

    Examples:
        >>> import os, tempfile, numpy as np, tensorflow as tf
        >>> path = os.path.join(tempfile.mkdtemp(), "a.png")
        >>> tf.io.write_file(path, tf.io.encode_png(np.zeros((20, 30, 3), "uint8")))
        >>> photo_tiles([path, path], 8).shape
        (2, 8, 8, 3)
    """
    import os

    from keras_simclr import datasets

    is_record = datasets.records.is_record_key
    unique = list(dict.fromkeys(paths))
    tiles = {}
    files = [path for path in unique if not is_record(path)]
    if files:
        images = datasets.image_files(
            files, size, 64, mode="evaluate", on_error="raise"
        )
        crops = np.concatenate([batch.numpy() for batch in images])
        row = {os.path.realpath(p): index for index, p in enumerate(images.file_paths)}
        tiles.update({path: crops[row[os.path.realpath(path)]] for path in files})
    keys = [path for path in unique if is_record(path)]
    if keys:  # an `embed` of TFRecords names its rows by record
        images = datasets.records.record_images(keys, size, on_error="raise")
        crops = np.concatenate([batch.numpy() for batch in images])
        tiles.update(zip(keys, crops))
    return np.stack([tiles[path] for path in paths])
