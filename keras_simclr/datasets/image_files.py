"""`image_files`: a folder, glob or list of photos → SimCLR view pairs or eval crops."""

import dataclasses

import tensorflow as tf

from keras_simclr.datasets import encoded_images
from keras_simclr.datasets.listing import IMAGE_EXTENSIONS, list_image_files

__all__ = ["IMAGE_EXTENSIONS", "image_files", "list_image_files"]


def image_files(
    source,
    image_size=224,
    batch_size=256,
    mode="pretrain",
    crop_area=(0.08, 1.0),
    aspect_ratio=(3 / 4, 4 / 3),
    labels=None,
    shuffle=None,
    seed=None,
    on_error="skip",
    input_context=None,
    drop_remainder=None,
    max_pixels=encoded_images.decode.MAX_PIXELS,
):
    """Image files as SimCLR view pairs ("pretrain") or centre crops ("evaluate").

    Reference: Chen et al., 2020, Appendix A: the random crop takes "an area
    uniformly sampled between 8% and 100% of that of the original image". The
    crops are cut here, in `tf.data`, from each photo decoded once at full
    resolution, so a small crop of a large photo keeps its detail and the
    scene's aspect ratio; only the crop is resized (antialiased) to
    `image_size`. `SimCLRModel.fit` then applies flip, colour distortion,
    grayscale and blur to each view on device.

    Each file is read and decoded once per epoch, in parallel
    (`num_parallel_calls=AUTOTUNE`). Grayscale, CMYK, alpha and 16-bit images
    become RGB uint8. Files that cannot be read or decoded are skipped and
    listed by `dataset.skipped_files()` (and logged by `SimCLRModel.fit` and
    the command line), or raise naming the file with `on_error="raise"`.

    Args:
        source: a folder (recursive; with `labels="inferred"`, one sub-folder
            per class), a glob pattern, or a list of paths.
        image_size: int, side of each output image. Defaults to 224.
        batch_size: int. With `input_context`, the per-pipeline batch (e.g.
            `input_context.get_per_replica_batch_size(global_batch)`).
            Defaults to 256.
        mode: "pretrain": elements `(views_a, views_b)`, two uint8
            `(B, S, S, 3)` batches of independent random resized crops, full
            batches only, shuffled. "evaluate": elements `images` uint8
            `(B, S, S, 3)`: the shorter side resized to `S / 0.875`, centre
            crop `S × S`, in file order. Either with `labels`: `(x, labels)`.
        crop_area: (low, high) share of the original's area. Defaults to
            (0.08, 1.0).
        aspect_ratio: (low, high) crop width / height in the original's
            pixels. Defaults to (3/4, 4/3).
        labels: None, "inferred" or a list of ints (see `list_image_files`).
        shuffle: None (True for "pretrain", False for "evaluate") or bool.
        seed: int or None: the same seed gives the same order and crops.
        on_error: "skip" (default) or "raise".
        input_context: a `tf.distribute.InputContext`: this pipeline reads only
            its share of the files (`strategy.distribute_datasets_from_function`),
            so each worker decodes only its files.
        drop_remainder: None (True for "pretrain") or bool.
        max_pixels: a file whose header claims more pixels is skipped (and
            named) before it is decoded; so is a JPEG whose data is far too
            short for the size it claims. Defaults to 89,478,485 (Pillow's
            decompression-bomb limit).

    Returns:
        A `tf.data.Dataset` of `ViewPair`s ("pretrain") or image batches
        ("evaluate"), with its `reader_info` (a `ReaderInfo`: files, class
        names, batch and image size, skipped files) and, for convenience,
        `file_paths` (in order for "evaluate"), `class_names` and
        `skipped_files()`. A `.map`/`.take`/`.prefetch` of it keeps its
        epochs (one pass each) but not these attributes.

    Examples:
        >>> import os, tempfile, numpy as np, tensorflow as tf
        >>> folder = tempfile.mkdtemp()
        >>> photo = np.random.default_rng(0).integers(0, 256, (60, 90, 3), "uint8")
        >>> for index in range(4):
        ...     tf.io.write_file(f"{folder}/{index}.jpg", tf.io.encode_jpeg(photo))
        >>> pairs = image_files(folder, image_size=32, batch_size=2, seed=0)
        >>> views_a, views_b = next(iter(pairs))
        >>> views_a.shape, views_a.dtype
        (TensorShape([2, 32, 32, 3]), tf.uint8)
        >>> images = image_files(folder, 32, batch_size=4, mode="evaluate")
        >>> next(iter(images)).shape, len(images.file_paths)
        (TensorShape([4, 32, 32, 3]), 4)
    """
    options = encoded_images.ReaderOptions(  # checked before listing the files
        image_size,
        batch_size,
        mode,
        crop_area,
        aspect_ratio,
        shuffle,
        seed,
        on_error,
        drop_remainder,
        max_pixels=max_pixels,
    )
    paths, label_list, class_names = list_image_files(source, labels)
    labelled = label_list is not None
    items = tf.data.Dataset.from_tensor_slices(
        (paths, paths, label_list if labelled else [-1] * len(paths))
    )
    if input_context is not None:
        # Shard the FILE LIST, before anything is read or decoded.
        shards = input_context.num_input_pipelines
        shard = input_context.input_pipeline_id
        items = items.shard(shards, shard)
        paths = paths[shard::shards]
    options = dataclasses.replace(options, shuffle_buffer=max(len(paths), 1))
    return encoded_images.build(
        items,
        options,
        read_files=True,
        labelled=labelled,
        sharded=input_context is not None,
        file_paths=paths,
        class_names=class_names,
        num_items=len(paths),
    )
