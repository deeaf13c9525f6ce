"""The TensorFlow backend: `tf.distribute`, graph checks, TensorFlow's kernels.

Every name of `keras_simclr.backend.INTERFACE`; see there.
"""

import os
import weakref

import tensorflow as tf

NAME = "tensorflow"
# A `tf.function` step raises on a failed `tf.debugging` assertion.
CHECKS_RUN_IN_STEP = True
# Each replica of a `tf.distribute` strategy normalises its own share.
REPLICAS_SPLIT_BATCH_NORM = True
# TensorFlow's CropAndResize kernel has no XLA lowering.
CROP_COMPILES = False
FUSED_BATCH_NORM = True
ONNX_CONVERTER = "tf2onnx"


def crop_and_resize(images, boxes, size):
    """TensorFlow's bilinear CropAndResize kernel (one box per image)."""
    return tf.image.crop_and_resize(
        images, boxes, tf.range(tf.shape(images)[0]), (size, size)
    )


def at_least_two_rows(tensor, message):
    """`tensor`, asserting at run time that it has >= 2 rows (a graph's batch
    size may be known only then)."""
    with tf.control_dependencies(
        [tf.debugging.assert_greater_equal(tf.shape(tensor)[0], 2, message=message)]
    ):
        return tf.identity(tensor)


# extractor -> {(shape, dtype): tf.function}: one trace per extractor and
# input signature, reused by later calls (the CLI probes several splits).
_ENCODE_FUNCTIONS = weakref.WeakKeyDictionary()


def encode_function(extractor, spec):
    """images -> h in inference mode: a `tf.function` with a free batch
    dimension, traced once per extractor and input signature."""
    shape = None if spec.shape.rank is None else (None, *spec.shape[1:])
    functions = _ENCODE_FUNCTIONS.setdefault(extractor, {})
    key = (shape, spec.dtype)
    if key not in functions:

        @tf.function(input_signature=[tf.TensorSpec(shape, spec.dtype)])
        def encode(images):
            return extractor(images, training=False)

        functions[key] = encode
    return functions[key]


def make_strategy(name):
    """A `tf.distribute` strategy by name (see `distribute.make_strategy`)."""
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi-worker":
        if "TF_CONFIG" not in os.environ:
            raise ValueError(
                "The multi-worker strategy needs the TF_CONFIG environment "
                "variable (the cluster and this worker's task); see "
                "docs/distributed.md."
            )
        return tf.distribute.MultiWorkerMirroredStrategy()
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, RuntimeError, tf.errors.OpError) as error:
        raise ValueError(f"No TPU could be reached ({error}).") from error
    return tf.distribute.TPUStrategy(resolver)


def replica_context():
    """The `tf.distribute` replica context (None in cross-replica context)."""
    return tf.distribute.get_replica_context()


def num_replicas():
    """Replicas of the strategy in scope (1 without a strategy)."""
    return tf.distribute.get_strategy().num_replicas_in_sync


def is_multi_worker():
    """Whether a `MultiWorkerMirroredStrategy` is in scope."""
    return isinstance(
        tf.distribute.get_strategy(), tf.distribute.MultiWorkerMirroredStrategy
    )


def step_logs(logs):
    """A step's logs as Keras's trainer reduces them on this backend.

    Keras 3 reduces multi-worker logs with `reduce("MEAN", axis=0)`, which
    needs a batch axis: each scalar gets one.
    """
    if not is_multi_worker():
        return logs
    return {name: tf.reshape(value, (1,)) for name, value in logs.items()}


def process_share():
    """(1, 0): `tf.distribute` splits and shards the data itself (a reader
    given an `InputContext` reads its share of the files)."""
    return 1, 0


def is_writer(strategy=None):
    """The chief of a multi-worker `strategy` (worker 0); otherwise True.

    Args:
        strategy: the run's strategy; None for the one in scope.
    """
    strategy = strategy or tf.distribute.get_strategy()
    return bool(strategy.extended.should_checkpoint)


def check_can_train():
    """Every TensorFlow set-up trains (strategies gather the negatives)."""


def on_import():
    """Nothing to set up: TensorFlow trains, so it keeps its devices."""
