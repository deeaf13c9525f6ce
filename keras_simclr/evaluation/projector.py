"""Features for TensorBoard's embedding projector, and the held-out sample
they (and the report's neighbours) come from.

Keras 3's `TensorBoard` callback dropped tf.keras's `embeddings_freq`, and
the projector's own writer (`tensorboard.plugins.projector`) needs the
`tensorboard` package, which TensorFlow no longer installs. The projector
reads plain files, so they are written here: `features.tsv` (one row of h
per image), `metadata.tsv` (its label), `sprite.png` (the images in a
square grid) and `projector_config.pbtxt` naming them, in the log folder
(TensorBoard's projector reads the log folder itself as a run).

    tensorboard --logdir LOG_DIR   # then the "Projector" tab
"""

import math
import os

import numpy as np

from keras_simclr.evaluation.features import as_labelled_dataset, extract_features

CONFIG_FILE = "projector_config.pbtxt"


def labelled_sample(model, labelled, count=500, size=32):
    """The first `count` images of a labelled dataset, their labels, their
    features h (as the probes compute them) and uint8 RGB tiles.

    Args:
        model: a `SimCLRModel` (or an encoder `extract_features` takes).
        labelled: `(images, labels)` or a dataset of such batches.
        count: int, images taken at most.
        size: int, the tiles' side.

    Returns:
        `(images, labels, features, tiles)`: numpy arrays of `N <= count`
        rows; `tiles` uint8 `(N, size, size, 3)`.
    """
    import tensorflow as tf

    images, labels = [], []
    for batch, batch_labels in as_labelled_dataset(labelled, 64):
        images.append(np.asarray(batch))
        labels.append(np.asarray(batch_labels))
        if sum(len(part) for part in images) >= count:
            break
    images = np.concatenate(images)[:count]
    labels = np.concatenate(labels)[:count]
    features, _ = extract_features(model, (images, labels))
    tiles = tf.image.resize(images.astype("float32"), (size, size)).numpy()
    if tiles.max() <= 1.0:  # images in [0, 1]
        tiles = tiles * 255
    tiles = np.clip(np.round(tiles), 0, 255).astype("uint8")
    if tiles.shape[-1] == 1:
        tiles = np.repeat(tiles, 3, axis=-1)
    return images, labels, features, tiles


def sprite(tiles):
    """The tiles in a square grid, row by row (TensorBoard's sprite layout;
    the last row is padded with black).

    Examples:
        >>> sprite(np.zeros((5, 4, 4, 3), "uint8")).shape
        (12, 12, 3)
    """
    count, height, width, channels = tiles.shape
    side = math.ceil(math.sqrt(count))
    grid = np.zeros((side * height, side * width, channels), tiles.dtype)
    for index, tile in enumerate(tiles):
        row, column = divmod(index, side)
        grid[
            row * height : (row + 1) * height, column * width : (column + 1) * width
        ] = tile
    return grid


def write_projector(log_dir, features, labels=None, tiles=None, name="features"):
    """Writes features (and labels, tiles) for TensorBoard's projector.

    Args:
        log_dir: the TensorBoard log folder (created if missing).
        features: float `(N, D)`.
        labels: None, or `(N,)` labels (one `metadata.tsv` column).
        tiles: None, or uint8 `(N, S, S, 3)` thumbnails (`sprite.png`).
        name: the tensor's name in the projector.

    Returns:
        The path of `projector_config.pbtxt`.

    Examples:
        >>> import tempfile
        >>> folder = tempfile.mkdtemp()
        >>> path = write_projector(folder, np.eye(3), labels=[0, 1, 2])
        >>> sorted(os.listdir(folder))
        ['features.tsv', 'metadata.tsv', 'projector_config.pbtxt']
        >>> print(open(path).read().strip())
        embeddings {
          tensor_name: "features"
          tensor_path: "features.tsv"
          metadata_path: "metadata.tsv"
        }
    """
    import tensorflow as tf

    features = np.asarray(features, "float32")
    if features.ndim != 2 or not len(features):
        raise ValueError(f"`features` must be (N, D). Received shape {features.shape}")
    os.makedirs(log_dir, exist_ok=True)
    np.savetxt(
        os.path.join(log_dir, "features.tsv"), features, delimiter="\t", fmt="%.6g"
    )
    lines = [
        "embeddings {",
        f'  tensor_name: "{name}"',
        '  tensor_path: "features.tsv"',
    ]
    if labels is not None:
        labels = np.asarray(labels).reshape(-1)
        if len(labels) != len(features):
            raise ValueError(f"{len(labels)} labels for {len(features)} features.")
        with open(os.path.join(log_dir, "metadata.tsv"), "w") as file:
            # One column: no header line (the projector's format).
            file.writelines(f"{label}\n" for label in labels)
        lines.append('  metadata_path: "metadata.tsv"')
    if tiles is not None:
        tiles = np.asarray(tiles, "uint8")
        if len(tiles) != len(features):
            raise ValueError(f"{len(tiles)} tiles for {len(features)} features.")
        tf.io.write_file(
            os.path.join(log_dir, "sprite.png"), tf.io.encode_png(sprite(tiles))
        )
        height, width = tiles.shape[1:3]
        lines += [
            "  sprite {",
            '    image_path: "sprite.png"',
            f"    single_image_dim: {width}",
            f"    single_image_dim: {height}",
            "  }",
        ]
    lines.append("}")
    path = os.path.join(log_dir, CONFIG_FILE)
    with open(path, "w") as file:
        file.write("\n".join(lines) + "\n")
    return path
