"""What the backends that distribute through `keras.distribution` share
(JAX and PyTorch): the step holds the global batch.

Under `keras.distribution.DataParallel` the step sees the global batch as one
array and the compiler inserts the collectives: there are no replicas in
`tf.distribute`'s sense, shapes are concrete (checked where they are made),
the `keras.ops` crop compiles, and a traced step cannot raise (the value
checks run in tf.data). `backend/jax.py` and `backend/torch.py` take these
names and add what differs.
"""

import contextlib

import keras

__all__ = [  # the interface names JAX and PyTorch share
    "CHECKS_RUN_IN_STEP",
    "CROP_COMPILES",
    "FUSED_BATCH_NORM",
    "REPLICAS_SPLIT_BATCH_NORM",
    "at_least_two_rows",
    "crop_and_resize",
    "devices_in_step",
    "is_multi_worker",
    "num_replicas",
    "on_import",
    "replica_context",
    "step_logs",
]


class KerasDistribution:
    """`keras.distribution.DataParallel` behind a strategy's two attributes.

    The command line asks for a strategy by name; on the JAX (and PyTorch)
    backends "mirrored" means data parallelism over every local device and
    "multi-worker" over every process's devices (after
    `keras.distribution.initialize()`). Setting it is global, as Keras's
    distribution API is: it lasts for the process (the command line's).

    Attributes:
        num_replicas_in_sync: devices the global batch is split over.
    """

    def __init__(self, distribution=None):
        self.distribution = distribution
        self.num_replicas_in_sync = (
            1 if distribution is None else len(distribution.device_mesh.devices.flat)
        )

    def scope(self):
        return contextlib.nullcontext()


def data_parallel(name):
    """A `KerasDistribution` by name; "mirrored" and "multi-worker" set
    `keras.distribution.DataParallel` over all devices (globally)."""
    if name == "default":
        return KerasDistribution()
    if name == "multi-worker":
        keras.distribution.initialize()
    # keras-simclr's adapter (`datasets.pretraining_data`) feeds each process
    # its share itself: a photo reader reads its process's files, before
    # decoding; Keras's own sharding would read and decode every file in
    # every process and keep its share of the batches.
    distribution = keras.distribution.DataParallel(auto_shard_dataset=False)
    keras.distribution.set_distribution(distribution)
    return KerasDistribution(distribution)


def hide_gpus_from_tensorflow():
    """TensorFlow (tf.data only) sees no GPU.

    TensorFlow would otherwise reserve most of each GPU's memory the first
    time a `tf.data` pipeline runs, beside the backend that trains there
    (Keras's JAX guide asks for the CPU TensorFlow for this reason; here one
    `tensorflow` wheel serves every stack). If TensorFlow already
    initialised its devices it is left as it is. Returns whether it hid them.
    """
    import tensorflow as tf

    try:
        tf.config.set_visible_devices([], "GPU")
    except RuntimeError:  # devices already initialised by the user's code
        return False
    return True


# A jitted step cannot raise: the checks run in tf.data instead.
CHECKS_RUN_IN_STEP = False
REPLICAS_SPLIT_BATCH_NORM = False
# The `keras.ops` crop compiles (without jit a JAX step runs op by op).
CROP_COMPILES = True
FUSED_BATCH_NORM = False
crop_and_resize = None  # the `keras.ops` crop


def at_least_two_rows(tensor, message):
    """`tensor`: shapes are concrete here, checked where they are made."""
    return tensor


def replica_context():
    """None: no `tf.distribute` replicas."""
    return None


def num_replicas():
    """1: the step holds the global batch."""
    return 1


def devices_in_step():
    """The devices the global batch is split over: those of Keras's
    distribution (`DataParallel`), 1 without one."""
    distribution = keras.distribution.distribution()
    mesh = getattr(distribution, "device_mesh", None)
    return 1 if mesh is None else len(mesh.devices.flat)


def is_multi_worker():
    return False


def step_logs(logs):
    return logs


def on_import():
    """TensorFlow only feeds tf.data here: it sees no GPU."""
    hide_gpus_from_tensorflow()
