"""Gradient caching against its oracles, on the backend of `KERAS_BACKEND`.

Usage: python chunked_step.py OUTPUT.json [data_parallel | mirrored]

Trains tiny models two steps (batch 16, SGD) and writes the largest
differences found (and how far the steps moved the weights), as JSON:

- `plain`: an encoder and head without BatchNorm, `chunk_size=4` against
  one pass (the losses and every weight): chunking must not change the
  training at all.
- `batch_norm`: the tiny ResNet (BatchNorm everywhere), `chunk_size=4`
  with the cached gradient against the same chunked forward differentiated
  directly in one graph (losses, every weight, moving statistics included).

With `data_parallel`, the steps run under `keras.distribution.DataParallel`
over the local devices (JAX); with `mirrored`, under a `MirroredStrategy`
over two logical CPUs (TensorFlow): each replica chunks its share, the
negatives stay global.
"""

import functools
import json
import os
import sys

import keras
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def plain_model(chunk_size):
    from harness import fixed_augmentation

    import keras_simclr as ks

    encoder = keras.Sequential(
        [
            keras.Input((16, 16, 3)),
            keras.layers.Conv2D(8, 3, strides=2, activation="relu"),
            keras.layers.Conv2D(8, 3, activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
        ]
    )
    head = ks.layers.ProjectionHead(16, use_batch_norm=False)
    augmentation = fixed_augmentation()
    return ks.SimCLRModel(
        encoder, head, augmentation, temperature=0.5, chunk_size=chunk_size
    )


def resnet_model(chunk_size, synchronized=False):
    from harness import tiny_model

    import keras_simclr as ks

    model = tiny_model(synchronized=synchronized)
    return ks.SimCLRModel(
        model.encoder,
        model.projection_head,
        model.augmentation,
        temperature=0.5,
        chunk_size=chunk_size,
    )


def train(make, chunk_size, cache=True, scope=None):
    """Losses and weights after two SGD steps of batch 16 (seeds fixed)."""
    from harness import tiny_images

    keras.utils.set_random_seed(0)
    with scope() if scope else _no_scope():
        model = make(chunk_size)
        model._cache_gradients = cache
        model.compile(optimizer=keras.optimizers.SGD(0.05))
    start = [keras.ops.convert_to_numpy(weight) for weight in model.weights]
    keras.utils.set_random_seed(1)
    history = model.fit(tiny_images(32), batch_size=16, epochs=1, verbose=0)
    assert history.history["loss"], "no step trained"
    weights = [keras.ops.convert_to_numpy(weight) for weight in model.weights]
    moved = max(float(np.abs(a - b).max()) for a, b in zip(start, weights) if a.size)
    return np.array(history.history["loss"]), weights, moved


class _no_scope:
    def __enter__(self):
        return self

    def __exit__(self, *error):
        return False


def largest_difference(first, second):
    (loss_a, weights_a, moved), (loss_b, weights_b, _) = first, second
    assert len(weights_a) == len(weights_b)
    differ = max(
        float(np.abs(a - b).max()) for a, b in zip(weights_a, weights_b) if a.size
    )
    return {
        "loss": float(np.abs(loss_a - loss_b).max()),
        "weights": differ,
        "trained": moved,  # how far the steps moved the weights
    }


def run(output, mode=None):
    sys.path.insert(0, os.path.dirname(HERE))  # tests/, for the harness
    scope = None
    if mode == "mirrored":
        import tensorflow as tf

        (cpu,) = tf.config.list_physical_devices("CPU")
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2
        )
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        scope = strategy.scope
    if mode == "data_parallel":
        keras.distribution.set_distribution(keras.distribution.DataParallel())
    result = {
        "plain": largest_difference(
            train(plain_model, None, scope=scope), train(plain_model, 4, scope=scope)
        ),
        "batch_norm": largest_difference(
            train(resnet_model, 4, cache=False, scope=scope),
            train(resnet_model, 4, scope=scope),
        ),
        "backend": keras.backend.backend(),
        "mode": mode,
    }
    if mode == "mirrored":  # global BN all-reduces inside each chunk's pass
        synchronized = functools.partial(resnet_model, synchronized=True)
        result["synchronized_batch_norm"] = largest_difference(
            train(synchronized, 4, cache=False, scope=scope),
            train(synchronized, 4, scope=scope),
        )
    with open(output, "w") as file:
        json.dump(result, file)
    return result


if __name__ == "__main__":
    print(run(sys.argv[1], *sys.argv[2:3]))
