"""BatchNormalization through TensorFlow's fused kernel (much faster on CPU)."""

import keras
import tensorflow as tf

from keras_simclr import backend


@keras.saving.register_keras_serializable(package="keras_simclr")
class FusedBatchNormalization(keras.layers.BatchNormalization):
    """`keras.layers.BatchNormalization` that uses TF's fused kernel when it can.

    Keras 3 computes batch moments and the normalisation as separate ops;
    `tf.compat.v1.nn.fused_batch_norm` does both (and its gradient) in one
    kernel. This layer takes that path for 4-D channels-last inputs on the
    TensorFlow backend when not `synchronized`, without mask or renorm, and
    falls back to the Keras implementation otherwise (and on JAX and
    PyTorch). Same weights, same config, same moving-average rule: the
    batch's biased variance, as Keras 3's own layer keeps it on every backend,
    so saved files move between backends.

    Takes the arguments of `keras.layers.BatchNormalization`.
    """

    def _can_fuse(self, inputs, mask):
        return (
            backend.current().FUSED_BATCH_NORM
            and len(inputs.shape) == 4
            and self.axis in (-1, 3)
            and mask is None
            and not self.synchronized
            and not self.renorm
            and self.center
            and self.scale
        )

    def call(self, inputs, training=None, mask=None):
        if not self._can_fuse(inputs, mask):
            return super().call(inputs, training=training, mask=mask)
        # The fused kernel takes float16/bfloat16/float32 inputs with float32
        # statistics, which is what mixed precision needs.
        gamma = tf.cast(self.gamma, tf.float32)
        beta = tf.cast(self.beta, tf.float32)
        if training and self.trainable:
            outputs, mean, variance = tf.compat.v1.nn.fused_batch_norm(
                inputs, gamma, beta, epsilon=self.epsilon, is_training=True
            )
            # The kernel reports the unbiased variance; Keras's own layer
            # (every backend) keeps the biased one: the same moving average
            # on every backend, so saved files move between them.
            count = tf.cast(tf.size(inputs) // tf.shape(inputs)[-1], tf.float32)
            variance = variance * (count - 1.0) / tf.maximum(count, 1.0)
            momentum = tf.cast(self.momentum, tf.float32)
            self.moving_mean.assign(
                self.moving_mean * momentum
                + tf.cast(mean, self.moving_mean.dtype) * (1.0 - momentum)
            )
            self.moving_variance.assign(
                self.moving_variance * momentum
                + tf.cast(variance, self.moving_variance.dtype) * (1.0 - momentum)
            )
        else:
            outputs, _, _ = tf.compat.v1.nn.fused_batch_norm(
                inputs,
                gamma,
                beta,
                mean=tf.cast(self.moving_mean, tf.float32),
                variance=tf.cast(self.moving_variance, tf.float32),
                epsilon=self.epsilon,
                is_training=False,
            )
        return tf.cast(outputs, self.compute_dtype)
