"""`image_files`: a folder, glob or list of photos → SimCLR view pairs or eval crops."""

import dataclasses

import tensorflow as tf

from keras_simclr import backend
from keras_simclr.datasets import encoded_images
from keras_simclr.datasets.listing import IMAGE_EXTENSIONS, list_image_files
from keras_simclr.datasets.order import EpochOrder

__all__ = ["IMAGE_EXTENSIONS", "image_files", "list_image_files"]


def image_files(
    source,
    image_size=224,
    batch_size=256,
    mode="pretrain",
    labels=None,
    input_context=None,
    **options,
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
        batch_size: int, per input pipeline. Defaults to 256.
        mode: "pretrain" (view pairs) or "evaluate" (centre crops in file
            order); see `ReaderOptions`.
        labels: None, "inferred" or a list of ints (see `list_image_files`).
        input_context: a `tf.distribute.InputContext`: this pipeline reads only
            its share of the files (`strategy.distribute_datasets_from_function`),
            so each worker decodes only its files. In a multi-process run
            a "pretrain" reader takes its process's share by itself.
        **options: the options every reader shares, documented in
            `ReaderOptions`: `crop_area`, `aspect_ratio`, `shuffle`, `seed`,
            `on_error`, `drop_remainder`, `shuffle_buffer` (default: all
            files of this pipeline's share) and `max_pixels`.

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
    options = encoded_images.ReaderOptions.of_reader(  # before listing files
        image_size, batch_size, mode, options, shuffle_buffer=None
    )
    paths, label_list, class_names = list_image_files(source, labels)
    return files_reader(paths, label_list, class_names, options, input_context)


def files_reader(paths, labels, class_names, options, input_context=None):
    """The reader of listed files (`image_files`, `image_folder`).

    Args:
        paths: the files, in order.
        labels: a list of ints, or None.
        class_names: the labels' names, or None.
        options: a `ReaderOptions` (its `shuffle_buffer` None: all files).
        input_context: a `tf.distribute.InputContext`, or None: in a
            multi-process run a "pretrain" reader then reads its
            process's share (`process_context`).
    """
    total = len(paths)
    if input_context is None and options.mode == "pretrain":
        input_context = process_context()
    labelled = labels is not None
    items = tf.data.Dataset.from_tensor_slices(
        (paths, paths, labels if labelled else [-1] * len(paths))
    )
    if input_context is not None:
        # Shard the FILE LIST, before anything is read or decoded.
        shards = input_context.num_input_pipelines
        shard = input_context.input_pipeline_id
        items = items.shard(shards, shard)
        paths = paths[shard::shards]
        labels = None if labels is None else list(labels)[shard::shards]
    if options.shuffle_buffer is None:
        options = dataclasses.replace(options, shuffle_buffer=max(len(paths), 1))
    order = None
    if options.mode == "pretrain" and options.shuffle and not options.input_service:
        # Files are shuffled in full, in an order a resumed run can seek to
        # (`EpochOrder`): a pass's order is drawn from (seed, epoch).
        share = (1, 0) if input_context is None else (shards, shard)
        items, order = _ordered(paths, labels, options.seed, share)
    return encoded_images.build(
        items,
        options,
        read_files=True,
        labelled=labelled,
        sharded=input_context is not None,
        file_paths=paths,
        class_names=class_names,
        num_items=len(paths),
        total_items=total,
        shares=1 if input_context is None else input_context.num_input_pipelines,
        order=order,
    )


def _ordered(paths, labels, seed, share=(1, 0)):
    """The `(key, path, label, crop_seed)` items of `paths` (this process's
    share `(shares, index)` of all files) in an `EpochOrder`, and the order.
    The crop seed is the file's in its epoch (`EpochOrder.item_seed` of its
    index among all files): a resumed run cuts the crops an uninterrupted
    one does, and no two processes draw alike."""
    order = EpochOrder(len(paths), seed)
    paths = tf.constant(list(paths), tf.string)
    labels = tf.constant([-1] * len(paths) if labels is None else list(labels))

    def item(index, epoch):
        path = tf.gather(paths, index)
        crop_seed = order.item_seed(epoch, index * share[0] + share[1])
        return path, path, tf.gather(labels, index), crop_seed

    return order.one_pass(with_epoch=True).map(item), order


def process_context():
    """The `InputContext` of this process's share of the input in a
    multi-process run (`backend.current().process_share()`: JAX or TensorFlow), else None.
    """
    processes, index = backend.current().process_share()
    if processes == 1:
        return None
    return tf.distribute.InputContext(processes, index, processes)
