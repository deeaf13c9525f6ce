"""The TensorFlow backend: `tf.distribute`, graph checks, TensorFlow's kernels.

Every name of `keras_simclr.backend.INTERFACE`; see there.
"""

import os
import weakref

import tensorflow as tf

from keras_simclr.batching import plan_batch

NAME = "tensorflow"
# A `tf.function` step raises on a failed `tf.debugging` assertion.
CHECKS_RUN_IN_STEP = True
# Each replica of a `tf.distribute` strategy normalises its own share.
REPLICAS_SPLIT_BATCH_NORM = True
# TensorFlow's CropAndResize kernel has no XLA lowering.
CROP_COMPILES = False
FUSED_BATCH_NORM = True
WRITES_SERVING_FILES = True
DRAWS_WEIGHTS_IN_TENSORFLOW = False


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
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
        _MULTI_WORKER[:] = [strategy]  # its processes feed their shares
        return strategy
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


def devices_in_step():
    """1: a `tf.distribute` strategy splits uneven batches itself in
    `predict`, and its step checks `fit`'s (`distribute.cross_replica_concat`)."""
    return 1


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


# The `MultiWorkerMirroredStrategy` `make_strategy("multi-worker")` made.
_MULTI_WORKER = []


def _multi_worker_strategy():
    """The multi-worker strategy in scope, else the one `make_strategy` made
    in this process, else None."""
    strategy = tf.distribute.get_strategy()
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return strategy
    return _MULTI_WORKER[0] if _MULTI_WORKER else None


def process_share():
    """`(workers, index)` under a `MultiWorkerMirroredStrategy` (in scope or
    made by `make_strategy("multi-worker")`), else (1, 0).

    Each worker feeds its share of the global batch, as on JAX: a photo
    reader reads its share of the files before decoding (tf.distribute's
    own sharding would decode every file in every worker), and numpy rows
    are split after one shuffle that every worker draws alike.
    """
    strategy = _multi_worker_strategy()
    if strategy is None:
        return 1, 0
    resolver = strategy.cluster_resolver
    spec = resolver.cluster_spec()
    chiefs = spec.num_tasks("chief") if "chief" in spec.jobs else 0
    workers = spec.num_tasks("worker") if "worker" in spec.jobs else 0
    index = resolver.task_id + (chiefs if resolver.task_type == "worker" else 0)
    return chiefs + workers, index


def per_process_input(dataset):
    """`dataset` of this process's batches → what `fit` takes.

    Under a multi-worker strategy: a distributed dataset whose per-replica
    batches are this process's batches split over its local replicas
    (`distribute_datasets_from_function`: no re-sharding, no re-batching to
    a global batch). Otherwise `dataset` itself.
    """
    strategy = _multi_worker_strategy()
    if strategy is None:
        return dataset
    replicas = len(strategy.extended.worker_devices)
    if replicas > 1:
        batch = tf.nest.flatten(dataset.element_spec)[0].shape[0]
        if not batch:
            raise ValueError(
                "This process's batches need a static size to split over its "
                f"{replicas} replicas: batch with drop_remainder=True."
            )
        plan_batch(batch, replicas=replicas)  # this process's batch, its replicas
        dataset = dataset.rebatch(batch // replicas)
    return strategy.distribute_datasets_from_function(lambda context: dataset)


def is_writer(strategy=None):
    """The chief of a multi-worker `strategy` (worker 0); otherwise True.

    Args:
        strategy: the run's strategy; None for the one in scope.
    """
    strategy = strategy or tf.distribute.get_strategy()
    return bool(strategy.extended.should_checkpoint)


def any_over_processes(flags):
    """`flags` (a list of bools) OR-ed over the processes of a multi-worker
    run (one small all-reduce); `flags` itself in one process."""
    strategy = _multi_worker_strategy()
    if strategy is None:
        return list(flags)
    if strategy not in _ANY_FUNCTIONS:

        @tf.function
        def summed(values):
            per_replica = strategy.run(lambda: tf.identity(values))
            return strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)

        _ANY_FUNCTIONS[strategy] = summed
    counts = _ANY_FUNCTIONS[strategy](tf.constant([int(f) for f in flags], tf.int32))
    return [bool(count) for count in counts.numpy()]


_ANY_FUNCTIONS = weakref.WeakKeyDictionary()


def is_lost_process(error):
    """A collective aborted or unreachable: `MultiWorkerMirroredStrategy`'s
    health check found a worker gone (`UnavailableError`)."""
    return isinstance(error, tf.errors.UnavailableError) or (
        isinstance(error, tf.errors.OpError) and "unhealthy" in str(error)
    )


def is_out_of_memory(error):
    """TensorFlow's allocation failure (`ResourceExhaustedError`) or Python's."""
    return isinstance(error, (tf.errors.ResourceExhaustedError, MemoryError))


def check_can_train():
    """Every TensorFlow set-up trains (strategies gather the negatives)."""


def on_import():
    """Nothing to set up: TensorFlow trains, so it keeps its devices."""


def cached_chunks(forward, chunks, trainable, non_trainable):
    """`gradient_cache`'s two passes as one `tf.custom_gradient` op.

    Both passes are `tf.while_loop`s over the chunks: the graph holds one
    chunk's encoder and TensorFlow's executor one chunk's activations at a
    time. (Unrolled in Python, the graph, and the memory to optimise and
    run it, grew with the number of chunks: ~45 MB a chunk for ResNet-18
    x0.25, docs/benchmarks.md.) Synchronised BatchNorm all-reduces inside
    the encoder, which a `tf.while_loop` body cannot hold under a
    `tf.distribute` strategy (`merge_call`): those run `_unrolled_chunks`.

    Returns:
        `(features, projections, non_trainable)`: `(G, n, D)`, `(G, n, d)`
        and the state after pass 1; the gradient of the projections reaches
        `trainable` by encoding each chunk again.
    """
    groups = chunks.shape[0]
    if getattr(forward, "synchronizes", False):
        return _unrolled_chunks(forward, chunks, trainable, non_trainable)

    @tf.custom_gradient
    def run(chunks, *trainable):
        def encode(index, state, features, projections):
            h, z, state = forward(list(trainable), list(state), chunks[index])
            return (
                index + 1,
                state,
                features.write(index, h),
                projections.write(index, z),
            )

        def arrays(first):  # chunk 0, encoded before the loop, gives the shapes
            array = tf.TensorArray(first.dtype, groups, element_shape=first.shape)
            return array.write(0, first)

        h, z, state = forward(list(trainable), list(non_trainable), chunks[0])
        _, state, features, projections = tf.while_loop(
            lambda index, *_: index < groups,
            encode,
            (tf.constant(1), state, arrays(h), arrays(z)),
            parallel_iterations=1,
        )

        def gradient(*upstream):
            d_projections = upstream[1]

            def accumulate(index, totals):
                with tf.GradientTape() as tape:
                    tape.watch(trainable)
                    z = forward(list(trainable), list(non_trainable), chunks[index])[1]
                grads = tape.gradient(
                    z, trainable, output_gradients=d_projections[index]
                )
                grads = [
                    tf.zeros_like(t) if g is None else g
                    for t, g in zip(trainable, grads)
                ]
                return index + 1, [total + grad for total, grad in zip(totals, grads)]

            _, totals = tf.while_loop(
                lambda index, _: index < groups,
                accumulate,
                (tf.constant(0), [tf.zeros_like(value) for value in trainable]),
                parallel_iterations=1,
            )
            return (None, *totals)

        return (features.stack(), projections.stack(), *state), gradient

    features, projections, *state = run(chunks, *trainable)
    return tf.stop_gradient(features), projections, state


def _unrolled_chunks(forward, chunks, trainable, non_trainable):
    """`cached_chunks` unrolled in Python, each chunk's pass waiting for the
    previous one (control dependencies): the graph grows with the chunks,
    but an all-reduce inside the encoder (synchronised BatchNorm) works."""

    @tf.custom_gradient
    def run(chunks, *trainable):
        state, features, projections, previous = list(non_trainable), [], [], []
        for chunk in tf.unstack(chunks):
            with tf.control_dependencies(previous):
                h, z, state = forward(list(trainable), state, chunk)
            features.append(h)
            projections.append(z)
            previous = [z]

        def gradient(*upstream):
            d_projections = upstream[1]
            totals, previous = [tf.zeros_like(value) for value in trainable], []
            for index, chunk in enumerate(tf.unstack(chunks)):
                with tf.control_dependencies(previous):
                    with tf.GradientTape() as tape:
                        tape.watch(trainable)
                        z = forward(list(trainable), non_trainable, chunk)[1]
                    step = tape.gradient(
                        z, trainable, output_gradients=d_projections[index]
                    )
                totals = [total + grad for total, grad in zip(totals, step)]
                previous = totals
            return (None, *totals)

        return (tf.stack(features), tf.stack(projections), *state), gradient

    features, projections, *state = run(chunks, *trainable)
    return tf.stop_gradient(features), projections, state
