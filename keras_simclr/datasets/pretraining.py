"""The data contract between every input and `SimCLRModel.fit`.

`pretraining_data` is the one road from any input to `fit`: numpy images,
a `tf.data.Dataset` of image batches (with or without labels), or the pairs
of views the photo readers cut (image files, TFRecords, tfds) become one
`PretrainingData`: the dataset in the model's input form, the steps per
epoch, the steps to plan a learning-rate schedule with, and the reader's
report of skipped files. `SimCLRModel.fit` and `evaluate`, the workflow
behind the command line (`keras_simclr.workflow`) and
`datasets.pretraining_batches` all go through it, and `fit` takes its
result unchanged. It is the only code that batches arrays for pretraining,
re-batches a reader, and refuses data without a full batch (`no_full_batch`).

The model's input form is explicit, never guessed from ranks:
`{"images": (B, H, W, C)}` (whole images, the model cuts both views) or
`{"views_a": ..., "views_b": ...}` (views already cut by a reader), followed
by the labels when there are any. Readers yield view pairs as `ViewPair`, a
named tuple; a plain `(views_a, views_b)` tuple is refused with a message,
since it reads as `(images, labels)`.

A reader's facts travel as one documented attribute, `dataset.reader_info`
(a `ReaderInfo`). A user's `.map`, `.prefetch` or `.take` returns a new
dataset without it: the epochs stay right (a reader's dataset has no known
size, so each epoch is one pass, as Keras iterates it), only the report of
skipped files is then left to `reader_info.skipped_files()` of the original.
"""

import dataclasses
import logging
import typing

import numpy as np
import tensorflow as tf

from keras_simclr import backend
from keras_simclr.batching import plan_batch
from keras_simclr.datasets.iteration import quiet_options
from keras_simclr.datasets.order import EpochOrder

LOGGER = logging.getLogger("keras_simclr")


class ViewPair(typing.NamedTuple):
    """Two batches of views of the same images (row i of each: image i).

    What `image_files(mode="pretrain")` and the other readers yield; a
    `(views_a, views_b)` tuple to the eye, marked as a pair for `fit`.

    Examples:
        >>> import numpy as np
        >>> pair = ViewPair(np.zeros((2, 8, 8, 3)), np.ones((2, 8, 8, 3)))
        >>> views_a, views_b = pair
        >>> pair.views_b.mean()
        np.float64(1.0)
    """

    views_a: typing.Any
    views_b: typing.Any


@dataclasses.dataclass(frozen=True)
class ReaderInfo:
    """What a photo reader knows about the data it yields.

    Attributes:
        file_paths: the files this pipeline reads (its shard), in order for
            "evaluate".
        class_names: class names of the labels, or None.
        batch_size: the batch size the reader was built with.
        image_size: the side of its views or crops.
        mode: "pretrain" or "evaluate".
        tracker: the `DecodeTracker` the reader fills as it decodes.
        num_items: images in this pipeline's share when known (image files),
            else None (TFRecords and tfds hold an unknown count per file).
        total_items: images of all pipelines' shares when known.
        shares: the number of pipelines (processes) the files are shared
            among, each reading its own files.
        input_service: the tf.data service that runs the pipeline, or None.
        order: the `EpochOrder` of its files (a shuffled "pretrain" reader of
            files), or None: its order cannot be sought.
    """

    file_paths: tuple
    class_names: typing.Any
    batch_size: int
    image_size: int
    mode: str
    tracker: typing.Any = dataclasses.field(repr=False, compare=False)
    num_items: typing.Any = None
    total_items: typing.Any = None
    shares: int = 1
    input_service: typing.Any = None
    order: typing.Any = dataclasses.field(default=None, repr=False, compare=False)

    @property
    def num_files(self):
        return len(self.file_paths)

    def skipped_files(self):
        """Names of the files read but not decoded so far (sorted); [] on
        the input service (its workers name them in their logs)."""
        return [] if self.tracker is None else self.tracker.skipped()


def reader_info(dataset):
    """The `ReaderInfo` of a reader's dataset, or None for any other data."""
    return getattr(dataset, "reader_info", None)


@dataclasses.dataclass
class PretrainingData:
    """Pretraining input in the form `SimCLRModel` trains on.

    `SimCLRModel.fit` takes it as it is (`model.fit(data, epochs=...)`).

    Attributes:
        dataset: a `tf.data.Dataset` of `inputs` or `(inputs, labels)`,
            `inputs` being `{"images": ...}` or `{"views_a", "views_b"}`.
            Repeated when `steps_per_epoch` was derived from a known size
            (one iterator serves every epoch).
        steps_per_epoch: int, or None: one pass of `dataset` per epoch.
        info: the reader's `ReaderInfo`, or None.
        planned_steps_per_epoch: the steps per epoch to plan a learning-rate
            schedule with: `steps_per_epoch` when set, else a reader's
            images // batch size when its count is known (an epoch, one
            pass, is a few steps shorter when files are skipped), else None.
        order: the `EpochOrder` a resumed run seeks (numpy images, a
            shuffled photo reader of files; a TFRecord reader's
            `RecordOrder`), or None: the data starts where
            it starts.
    """

    dataset: typing.Any
    steps_per_epoch: typing.Any
    info: typing.Any = None
    planned_steps_per_epoch: typing.Any = None
    order: typing.Any = None

    def __post_init__(self):
        if self.planned_steps_per_epoch is None:
            self.planned_steps_per_epoch = self.steps_per_epoch

    def position_state(self):
        """What a checkpoint keeps so that `seek` finds this position again:
        the order's seed and the files skipped so far (a JSON-able dict)."""
        if self.order is None:
            return {}
        return {**self.order.state(), "skipped": self.skipped_files()}

    def seek(self, epoch, step, state=None):
        """The next iteration of `dataset` starts at step `step` (0-based)
        of epoch `epoch`, as in the run whose `position_state` is `state`.

        Numpy images count steps of the global batch over the whole stream
        (so `steps_per_epoch` may differ from an epoch of images); a photo
        reader (files or TFRecords) counts its batches into the pass,
        passing over the files or records the run skipped as it did (a
        TFRecord reader reads, without decoding, the records before the
        place: `RecordOrder`). Returns False when the order cannot be
        sought (`order` None).
        """
        if self.order is None:
            return False
        state = state or {}
        order = self.order
        if order.batch_size is not None:  # numpy images: one endless stream
            position = epoch * self.steps_per_epoch + step
            per_epoch = order.count // order.batch_size
            epoch, step = divmod(position, per_epoch)
            order.seek(epoch, step * order.batch_size, state.get("seed"))
            return True
        left_out = state.get("skipped", ())
        if isinstance(order, EpochOrder):  # a photo reader's: file indices
            paths = {path: index for index, path in enumerate(self.info.file_paths)}
            left_out = [paths[path] for path in left_out if path in paths]
        order.seek(epoch, step * self.info.batch_size, state.get("seed"), left_out)
        return True

    def begin_epoch(self, epoch):
        """Called before each epoch's first step: a reader's pass of epoch
        `epoch` follows that epoch's order. (Numpy images are one stream,
        placed once by `seek`.)"""
        if self.order is not None and self.order.batch_size is None:
            self.order.begin_epoch(epoch)

    def skipped_files(self):
        """Files the reader skipped so far; [] for data that is not a reader's."""
        return [] if self.info is None else self.info.skipped_files()

    def report_skipped_files(self):
        """Logs the skipped files once (a warning naming up to 20 of them)."""
        skipped = self.skipped_files()
        if skipped:
            LOGGER.warning(
                "keras-simclr: %d file(s) could not be decoded and were skipped: %s",
                len(skipped),
                ", ".join(skipped[:20]) + (" ..." if len(skipped) > 20 else ""),
            )
        return skipped

    @staticmethod
    def check_trained(history, epochs, callbacks=None):
        """Raises when `fit` ran no step (unless a backup had every epoch)."""
        if history.history.get("loss") or any(
            getattr(callback, "restored_epoch", 0) >= epochs
            for callback in callbacks or []
        ):
            return
        raise no_full_batch("the training data produced no batch")


def no_full_batch(what, batch_size=None):
    """The one `ValueError` for data that gives no full batch.

    Args:
        what: what was found, e.g. "received 5 images".
        batch_size: int or None.
    """
    size = "" if batch_size is None else f" of {batch_size} images"
    return ValueError(
        f"Training needs at least one full batch{size}: {what}. SimCLR's "
        "NT-Xent compares the images of a full batch (a batch of one has no "
        "negative), and distillation trains on the same batches; lower the "
        "batch size or add images."
    )


def pretraining_data(
    x, y=None, batch_size=None, shuffle=True, steps_per_epoch=None, seed=None
):
    """Any supported pretraining input → `PretrainingData`.

    Args:
        x: uint8/float images `(N, H, W, C)` (numpy), a batched
            `tf.data.Dataset` of images, `(images, labels)`, `ViewPair`s or
            `(ViewPair, labels)` (the photo readers' datasets among them),
            or a `PretrainingData` (returned as it is).
        y: optional integer labels `(N,)` for numpy images (online probe).
        batch_size: int. For numpy images the batch (default 32, as Keras):
            a last partial batch is left out of each epoch (logged once),
            since a batch of one image has no negatives and under a strategy
            it cannot be split over the replicas. For a photo reader built
            at another batch size, the reader is re-batched to it (full
            batches only). Ignored for other datasets (already batched).
        shuffle: bool, numpy images are reshuffled every epoch.
        steps_per_epoch: int or None. Given, the data is left as it is.
        seed: shuffle seed for numpy images.

    In a multi-process run (`make_strategy("multi-worker")`, JAX or
    TensorFlow) every process calls this with the same arguments: `batch_size` stays the
    global batch, of which each process feeds `batch_size // processes`
    images a step (numpy: its rows of one shuffle, the same in every
    process, seed 0 when None; a photo reader: from its own share of the
    files, for the same number of steps in every process whatever files a
    share skips).

    Returns:
        A `PretrainingData`.

    Examples:
        >>> import numpy as np
        >>> data = pretraining_data(np.zeros((10, 8, 8, 3), "uint8"), batch_size=4)
        >>> data.steps_per_epoch, sorted(data.dataset.element_spec)
        (2, ['images'])
        >>> pretraining_data(data) is data
        True
    """
    if isinstance(x, PretrainingData):
        if y is not None:
            raise ValueError("`y` must be None when `x` is a PretrainingData.")
        return x
    share = backend.current().process_share()  # (processes, this one)
    order = None
    if isinstance(x, np.ndarray):
        dataset, order = _batches_of_arrays(
            x, y, batch_size or 32, shuffle, seed, share
        )
        if steps_per_epoch is None:
            steps_per_epoch = len(x) // (batch_size or 32)
    elif _is_distributed(x):
        # Built by `strategy.distribute_datasets_from_function`: it cannot be
        # mapped any more, so its function must yield the model's form.
        if not _in_model_form(x.element_spec):
            raise ValueError(
                "A distributed dataset must yield SimCLRModel's input form: "
                "return ks.datasets.as_model_inputs(dataset) from the function "
                "given to strategy.distribute_datasets_from_function."
            )
        return PretrainingData(x, steps_per_epoch, None)
    elif isinstance(x, tf.data.Dataset):
        if y is not None:
            raise ValueError(
                "`y` must be None when `x` is a tf.data.Dataset: the dataset "
                "yields (images, labels) itself."
            )
        dataset = x
    else:
        raise TypeError(
            "SimCLRModel.fit takes numpy images (N, H, W, C) or a batched "
            "tf.data.Dataset. Received: x of type "
            f"{type(x).__name__}"
        )
    info = reader_info(x)
    if info is not None:
        dataset, info = _reader_share(dataset, info, batch_size, share)
        order = info.order
    planned = None
    fixed = info is not None and (info.shares > 1 or info.input_service)
    if fixed and steps_per_epoch is None:
        if info.total_items is not None:
            # Processes step together: each runs (total // shares) // batch
            # steps, whatever files its own share skips or how the records
            # fall into shards; its reader repeats, so an epoch may take a
            # few batches of the next pass. So do the passes of the input
            # service (each worker's last batch of a pass is partial, a lost
            # worker loses its files of the pass).
            planned = (info.total_items // info.shares) // info.batch_size
            if planned == 0:
                raise no_full_batch(
                    f"each of {info.shares} processes reads about "
                    f"{info.total_items // info.shares} images",
                    info.batch_size,
                )
            steps_per_epoch = planned
            dataset = dataset.repeat()
            order = None  # epochs straddle passes: not sought (yet)
        else:
            raise ValueError(
                "This reader's size is unknown, and the processes of a run (or "
                "the passes of the input service) need planned steps: give "
                "tfrecord_images num_records=N (make-tfrecords writes it), or "
                "pass steps_per_epoch."
            )
    elif info is not None and info.num_items is not None and steps_per_epoch is None:
        planned = info.num_items // info.batch_size
        if planned == 0:
            raise no_full_batch(
                f"the reader has {info.num_items} images", info.batch_size
            )
    dataset = as_model_inputs(dataset)
    if info is None:  # a reader reads its process's files already
        dataset = process_rows(dataset, share)
    dataset = _without_single_image_batches(dataset)
    if steps_per_epoch is None:
        batches = int(dataset.cardinality())
        if batches == 0:
            raise no_full_batch("the dataset is empty or smaller than one batch")
        if batches > 0:
            # Keras makes a new iterator of a finite dataset every epoch, and
            # TensorFlow (2.21) deletes the old one only once its tf.data
            # autotuning thread wakes up: 0.5-30 s before each epoch's first
            # step. Repeated, one iterator serves every epoch (each reshuffles).
            steps_per_epoch = batches
            dataset = dataset.repeat()
    # Keras deletes its iterator before fit returns: without autotuning the
    # deletion does not wait for tf.data's autotuning thread (up to a
    # minute, at random; `iteration.quiet_options`).
    dataset = dataset.with_options(quiet_options())
    return PretrainingData(dataset, steps_per_epoch, info, planned, order)


def _reader_share(dataset, info, batch_size, share):
    """A reader's dataset at this process's batch, and its facts.

    `batch_size` is global: with several processes each feeds
    `batch_size // processes` images a step from its own share of the files.
    """
    processes, _ = share
    if info.shares != processes:
        raise ValueError(
            f"This reader reads {info.shares} share(s) of the files but "
            f"{processes} processes train: build it after "
            'ks.distribute.make_strategy("multi-worker") (a "pretrain" reader '
            "then reads this process's share), or pass it an input_context "
            f"of {processes} input pipelines."
        )
    if batch_size is None:
        return dataset, info
    plan_batch(batch_size, processes)
    if batch_size // processes == info.batch_size:
        return dataset, info
    return _rebatched(dataset, info, batch_size // processes)


def _rebatched(dataset, info, batch_size):
    """A reader's dataset in full batches of `batch_size`, and its facts.

    The reader's elements are unbatched and batched again, full batches
    only (a `ViewPair` stays one); its facts say the new batch size.
    """
    rebatched = dataset.unbatch().batch(batch_size, drop_remainder=True)
    info = dataclasses.replace(info, batch_size=batch_size)
    return attach(rebatched, info), info


def prepare_fit(x, y, batch_size, fit_arguments, check_values=None):
    """`SimCLRModel.fit`'s data: `PretrainingData`, with Keras's fit arguments
    (`fit_arguments`, changed in place) set to match.

    Refuses sample weights; splits a numpy `validation_split`; sets
    `steps_per_epoch`; adapts `validation_data` the same way; with
    `check_values` (the augmentation's run-time checks, for backends whose
    jitted step cannot raise) maps it over every input tensor.
    """
    if isinstance(x, PretrainingData) and fit_arguments.get("steps_per_epoch"):
        raise ValueError(
            "`steps_per_epoch` is set by the PretrainingData given to fit "
            f"({x.steps_per_epoch}); build it with "
            "pretraining_data(..., steps_per_epoch=N) instead."
        )
    if fit_arguments.get("sample_weight") is not None:
        raise ValueError(
            "SimCLRModel does not take sample weights: NT-Xent compares every "
            "image of a batch with all the others, so an image cannot be "
            "weighted out. Filter the images instead."
        )
    x, y, validation = split_validation(
        x, y, fit_arguments.pop("validation_split", None)
    )
    if validation is not None:
        fit_arguments["validation_data"] = validation
    data = pretraining_data(
        x,
        y,
        batch_size=batch_size,
        shuffle=fit_arguments.pop("shuffle", True),
        steps_per_epoch=fit_arguments.get("steps_per_epoch"),
    )
    fit_arguments["steps_per_epoch"] = data.steps_per_epoch
    if check_values is not None:

        def checked(inputs, *labels):
            return (
                {key: check_values(value) for key, value in inputs.items()},
                *labels,
            )

        # A new PretrainingData: the caller's may be given to fit again.
        data = dataclasses.replace(data, dataset=data.dataset.map(checked))
    if fit_arguments.get("validation_data") is not None:
        validation = evaluation_data(
            fit_arguments["validation_data"],
            batch_size,
            fit_arguments.get("validation_steps"),
        )
        fit_arguments["validation_data"] = validation.dataset
        fit_arguments["validation_steps"] = validation.steps_per_epoch
    return data


def split_validation(x, y, fraction):
    """`(x, y, validation)`: numpy `validation_split`, the last share, as Keras.

    `validation` is None without a `fraction`.
    """
    if not fraction:
        return x, y, None
    if not isinstance(x, np.ndarray):
        raise ValueError("`validation_split` is only supported for numpy images.")
    cut = int(len(x) * (1 - fraction))
    validation = x[cut:] if y is None else (x[cut:], y[cut:])
    return x[:cut], None if y is None else y[:cut], validation


def evaluation_data(data, batch_size=None, steps=None):
    """`PretrainingData` for `evaluate` / `validation_data`: not shuffled.

    Args:
        data: images, `(images, labels)` numpy, or a dataset as `fit` takes.
        batch_size: for numpy images.
        steps: int or None, batches to evaluate.
    """
    x, y = data if isinstance(data, tuple) and len(data) == 2 else (data, None)
    if not isinstance(x, np.ndarray):
        x, y = data, None
    return pretraining_data(
        x, y, batch_size=batch_size, shuffle=False, steps_per_epoch=steps
    )


def _without_single_image_batches(dataset):
    """Drops batches of one image (a `drop_remainder=False` remainder): NT-Xent
    has no negative in them. Batches of a static size need no filter, and a
    dataset of known size keeps it (Keras's step count stays right)."""
    inputs = dataset.element_spec
    inputs = inputs[0] if isinstance(inputs, tuple) else inputs
    first = next(iter(inputs.values()))
    known_size = int(dataset.cardinality()) != tf.data.UNKNOWN_CARDINALITY
    if first.shape[0] is not None or known_size:
        return dataset

    def at_least_two(inputs, *labels):
        return tf.shape(next(iter(inputs.values())))[0] >= 2

    return dataset.filter(at_least_two)


def as_model_inputs(dataset):
    """A dataset of images, `(images, labels)` or view pairs, in the model's form.

    `pretraining_data` does this itself; call it inside the function given to
    `strategy.distribute_datasets_from_function`, whose result cannot be
    mapped any more. The reader's `reader_info` is kept.

    Examples:
        >>> import numpy as np, tensorflow as tf
        >>> images = tf.data.Dataset.from_tensor_slices(np.zeros((4, 8, 8, 3))).batch(2)
        >>> sorted(as_model_inputs(images).element_spec)
        ['images']
    """
    if _in_model_form(dataset.element_spec):
        return dataset
    mapped = dataset.map(
        model_inputs_function(dataset.element_spec),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    info = reader_info(dataset)
    return mapped if info is None else attach(mapped, info)


def _is_distributed(x):
    return isinstance(x, tf.distribute.DistributedDataset)


def _batches_of_arrays(images, labels, batch_size, shuffle, seed, share=(1, 0)):
    if images.ndim != 4:
        raise ValueError(
            "SimCLRModel.fit expects numpy images of shape (N, H, W, C). "
            f"Received: shape={images.shape}"
        )
    if len(images) < batch_size:
        raise no_full_batch(f"received {len(images)} images", batch_size)
    check_label_count(images, labels)
    left_over = len(images) % batch_size
    if left_over:
        LOGGER.warning(
            "keras-simclr: %d images do not fill the last batch of %d; that "
            "partial batch is left out of each epoch (the images are reshuffled "
            "each epoch, so every image is still seen).",
            left_over,
            batch_size,
        )
    if share[0] > 1 and seed is None:
        seed = 0  # every process shuffles the same arrays the same way
    return array_stream(images, labels, batch_size, shuffle, seed)


def array_stream(images, labels, batch_size, shuffle, seed=None):
    """Every epoch's batches of `images` (or `(images, labels)`), one epoch
    after the other, in an `EpochOrder` a resumed run seeks to; each
    epoch's partial batch is left out.

    Returns:
        `(dataset, order)`: an infinite `tf.data.Dataset` and its
        `EpochOrder`.
    """
    order = EpochOrder(len(images), seed, shuffle)
    images = tf.convert_to_tensor(images)
    labels = None if labels is None else tf.convert_to_tensor(np.asarray(labels))

    def gather(indices):
        if labels is None:
            return tf.gather(images, indices)
        return tf.gather(images, indices), tf.gather(labels, indices)

    stream = order.stream(batch_size).map(gather, num_parallel_calls=tf.data.AUTOTUNE)
    return stream, order


def process_rows(dataset, share):
    """This process's rows of each global batch of `dataset`.

    In a multi-process run each process feeds `batch // processes` images a
    step (Keras's JAX trainer joins them into the global batch): process i
    takes rows `[i * b, (i + 1) * b)` of every batch. The batches need a
    static size (`drop_remainder=True`).
    """
    processes, index = share
    if processes == 1:
        return dataset
    inputs = dataset.element_spec
    inputs = inputs[0] if isinstance(inputs, tuple) else inputs
    batch = next(iter(inputs.values())).shape[0]
    if batch is None:
        raise ValueError(
            f"In a run of {processes} processes each feeds its share of every "
            "global batch, so the batches need a static size: batch the "
            "dataset with drop_remainder=True."
        )
    plan_batch(batch, processes)
    rebatched = dataset.rebatch(batch // processes, drop_remainder=True)
    rows = rebatched.shard(processes, index)
    batches = int(dataset.cardinality())
    if batches >= 0:  # one share of each global batch: as many steps
        rows = rows.apply(tf.data.experimental.assert_cardinality(batches))
    return rows


def check_label_count(images, labels):
    """Raises unless there is one label per image (or no labels)."""
    if labels is not None and len(labels) != len(images):
        raise ValueError(
            f"Received {len(images)} images but {len(labels)} labels; give one "
            "label per image."
        )


def batch_arrays(images, labels, batch_size, shuffle, drop_remainder, seed=None):
    """The one batching of numpy arrays: a `tf.data.Dataset` of `images` or
    `(images, labels)` batches, reshuffled every epoch over all the images
    when `shuffle`."""
    elements = images if labels is None else (images, np.asarray(labels))
    dataset = tf.data.Dataset.from_tensor_slices(elements)
    if shuffle:
        dataset = dataset.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    return dataset.batch(batch_size, drop_remainder=drop_remainder)


def attach(dataset, info):
    """Sets a reader's facts on its dataset: `reader_info` (a `ReaderInfo`),
    and for convenience `file_paths`, `class_names` and `skipped_files()`.

    Only the readers (`encoded_images.build`) and this module's adapter call
    it: a reader's facts are written where it is built.
    """
    dataset.reader_info = info
    dataset.file_paths = list(info.file_paths)
    dataset.class_names = info.class_names
    dataset.skipped_files = info.skipped_files
    return dataset


MODEL_FORMS = ({"images"}, {"views_a", "views_b"})


def _in_model_form(element_spec):
    inputs = element_spec[0] if isinstance(element_spec, tuple) else element_spec
    return isinstance(inputs, dict) and set(inputs) in MODEL_FORMS


def model_inputs_function(element_spec):
    """The `Dataset.map` function from an element to the model's input form.

    Decided once from the dataset's structure (`ViewPair` or not, labels or
    not); a structure `SimCLRModel` cannot take raises `ValueError` here,
    before any training.
    """
    if isinstance(element_spec, dict):
        raise ValueError(
            "SimCLRModel expects batches of images, (images, labels) or view "
            f"pairs; received a dict with keys {sorted(element_spec)}. Map the "
            "dataset first, e.g. dataset.map(lambda e: e['image'])."
        )
    if isinstance(element_spec, ViewPair):
        _check_images(element_spec.views_a, "views_a")
        # tf.data passes a named tuple as one argument.
        return lambda pair: {"views_a": pair.views_a, "views_b": pair.views_b}
    if isinstance(element_spec, tf.TensorSpec):
        _check_images(element_spec, "images")
        return lambda images: {"images": images}
    if isinstance(element_spec, tuple) and len(element_spec) == 3:
        raise ValueError(
            "SimCLRModel does not take sample weights: NT-Xent compares every "
            "image of a batch with all the others, so an image cannot be "
            "weighted out. Filter the images instead."
        )
    if not isinstance(element_spec, tuple) or len(element_spec) != 2:
        raise ValueError(
            "SimCLRModel expects batches of images, (images, labels), a "
            "ks.datasets.ViewPair or (ViewPair, labels). Received elements of "
            f"structure {element_spec}."
        )
    first, labels = element_spec
    if isinstance(labels, tf.TensorSpec) and labels.shape.rank == 4:
        raise ValueError(
            "The dataset yields a plain tuple of two image batches: SimCLRModel "
            "reads a 2-tuple as (images, labels). Yield the two views as "
            "ks.datasets.ViewPair(views_a, views_b) (as the photo readers do), "
            "or whole images and let the model cut both views."
        )
    if not isinstance(labels, tf.TensorSpec) or not (
        labels.dtype.is_integer or labels.dtype.is_floating
    ):
        raise ValueError(
            "The labels of (images, labels) must be integer class ids. Received: "
            f"{labels}; map class names to ids first."
        )
    if isinstance(first, ViewPair):
        _check_images(first.views_a, "views_a")
        return lambda pair, labels: (
            {"views_a": pair.views_a, "views_b": pair.views_b},
            labels,
        )
    _check_images(first, "images")
    return lambda images, labels: ({"images": images}, labels)


def _check_images(spec, name):
    if not isinstance(spec, tf.TensorSpec):
        raise ValueError(f"`{name}` must be one tensor. Received: {spec}")
    if spec.shape.rank == 3:
        raise ValueError(
            f"SimCLRModel.fit received single images of shape {tuple(spec.shape)}, "
            "not batches: batch the dataset (dataset.batch(256, "
            "drop_remainder=True))."
        )
    if spec.shape.rank not in (None, 4):
        raise ValueError(
            f"`{name}` must be batches (B, H, W, C). Received shape {spec.shape}."
        )
