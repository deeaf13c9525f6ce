"""He-normal kernels drawn by TensorFlow's stateless generator on every backend.

Keras's `he_normal` draws with the backend's own generator. On JAX that is
`jax.random.truncated_normal`, which compiles one program per kernel shape:
about 0.4 s each on a CPU, 8 of the 9 seconds it takes to build a
ResNet-18, in every process that builds or loads a model (a multi-process
run, `embed`, the probes, a `.keras` file loaded). TensorFlow is installed
with every backend (`tf.data` is the input engine), and its stateless
truncated normal draws at once, so `HeNormal` draws there, from the seed
Keras's own initializer would use: on TensorFlow the values are exactly
Keras's `he_normal`'s, and on JAX and PyTorch they are the same values, so a
seed gives the same initial model on every backend.
"""

import math

import keras

from keras_simclr import backend


@keras.saving.register_keras_serializable(package="keras_simclr")
class HeNormal(keras.initializers.VarianceScaling):
    """`keras.initializers.HeNormal` (truncated normal, fan-in), drawn by
    TensorFlow on every backend (see the module docstring).

    Args:
        seed: None (Keras's global seed decides, as for `he_normal`) or an
            int. A `keras.random.SeedGenerator` is drawn from by the
            backend's own generator.

    Examples:
        >>> import numpy as np
        >>> ours = HeNormal(seed=3)((3, 3, 8, 16))
        >>> theirs = keras.initializers.HeNormal(seed=3)((3, 3, 8, 16))
        >>> bool(np.allclose(ours, theirs))  # TensorFlow's values
        True
    """

    def __init__(self, seed=None):
        super().__init__(
            scale=2.0, mode="fan_in", distribution="truncated_normal", seed=seed
        )

    def __call__(self, shape, dtype=None):
        if not backend.current().DRAWS_WEIGHTS_IN_TENSORFLOW or not isinstance(
            self.seed, int
        ):
            return super().__call__(shape, dtype)
        import tensorflow as tf

        dtype = keras.backend.standardize_dtype(dtype or keras.config.floatx())
        fan_in = math.prod(shape[:-1]) if len(shape) > 1 else shape[0]
        stddev = math.sqrt(2.0 / max(1.0, fan_in)) / 0.87962566103423978
        # Keras's TensorFlow backend: the seed (s, 0), folded into int32.
        seed = tf.constant([self.seed % (2**31 - 2), 0], tf.int32)
        values = tf.random.stateless_truncated_normal(
            shape, seed=seed, stddev=stddev, dtype=dtype
        )
        return keras.ops.convert_to_tensor(values.numpy(), dtype)

    def get_config(self):
        return {"seed": self._init_seed}
