"""What the tests share (no test module imports another), modelled on
Keras's own test harness.

- Round trips: `assert_config_round_trip` for anything with a config, and
  `assert_saved_model_round_trip` for anything that computes (save to
  `.keras`, load, compare outputs). tests/test_public_classes.py runs both
  over every public class; other tests call them for their own cases.
- Tiny models and data: `tiny_images`, `tiny_model`, `fixed_augmentation`.
- The NT-Xent oracle: `algorithm_1_numpy`, the paper's Algorithm 1 in numpy.
- Files and steps: `write` (an image file), `bad_folder` (good and bad
  photos), `StepsPerEpoch` (batches each epoch trains on), `python_blocks`
  (the README's Python).
"""

import importlib.util
import os
import re
import signal
import socket
import sys
import tempfile

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_simclr as ks


def assert_config_round_trip(obj):
    """`from_config(get_config())` and Keras (de)serialization keep the config."""
    config = obj.get_config()
    clone = type(obj).from_config(config)
    assert clone.get_config() == config, (clone.get_config(), config)
    serialized = keras.saving.serialize_keras_object(obj)
    restored = keras.saving.deserialize_keras_object(serialized)
    assert type(restored) is type(obj)
    assert restored.get_config() == config
    return restored


def assert_saved_model_round_trip(model, inputs, atol=1e-5, compile=True):
    """Saves `model` to `.keras`, loads it, and compares inference outputs.

    Returns the loaded model.
    """
    expected = keras.ops.convert_to_numpy(model(inputs, training=False))
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "model.keras")
        model.save(path)
        restored = keras.models.load_model(path, compile=compile)
    assert type(restored) is type(model)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(restored(inputs, training=False)),
        expected,
        atol=atol,
        rtol=1e-5,
    )
    return restored


def wrap_layer(layer, input_shape):
    """A functional model around one layer, so that it can be saved."""
    inputs = keras.Input(input_shape)
    return keras.Model(inputs, layer(inputs))


def tiny_images(count=16, size=16, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (count, size, size, 3), dtype="uint8")


def tiny_model(
    size=16, probe_classes=None, synchronized=False, augmentation=None, seed=0
):
    """ResNet-18 x1/16 with the CIFAR recipe (`ks.recipes`), 16-d projections."""
    model = ks.recipes.simclr_model(
        18,
        0.0625,
        size,
        temperature=0.5,
        projection_dim=16,
        probe_classes=probe_classes,
        synchronized_batch_norm=synchronized,
        seed=seed,
    )
    if augmentation is None:
        return model
    return ks.SimCLRModel(
        model.encoder,
        model.projection_head,
        augmentation,
        temperature=0.5,
        probe_classes=probe_classes,
    )


def fixed_augmentation(size=16):
    """No randomness: both views are the whole image (for exact comparisons)."""
    return ks.layers.SimCLRAugmentation(
        size,
        crop_area=(1.0, 1.0),
        aspect_ratio=(1.0, 1.0),
        flip=False,
        jitter_rate=0.0,
        grayscale_rate=0.0,
        blur_rate=0.0,
    )


def algorithm_1_numpy(a, b, temperature):
    """A literal transcription of Algorithm 1 of Chen et al. (2020), in float64."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    n = len(a)
    z = np.empty((2 * n, a.shape[1]))
    z[0::2], z[1::2] = a, b  # z_{2k-1} = view a of k, z_{2k} = view b of k
    s = np.array(
        [[zi @ zj / (np.linalg.norm(zi) * np.linalg.norm(zj)) for zj in z] for zi in z]
    )

    def ell(i, j):
        denominator = sum(np.exp(s[i, k] / temperature) for k in range(2 * n) if k != i)
        return -np.log(np.exp(s[i, j] / temperature) / denominator)

    per_pair = np.array(
        [(ell(2 * k, 2 * k + 1) + ell(2 * k + 1, 2 * k)) / 2 for k in range(n)]
    )
    return per_pair.mean(), per_pair


def write(path, image):
    if str(path).endswith(".png"):
        tf.io.write_file(str(path), tf.io.encode_png(image))
    else:
        tf.io.write_file(str(path), tf.io.encode_jpeg(image, quality=95))
    return str(path)


def labelled_photos(root, per_class=12, seed=0):
    """Two class folders of JPEGs of varied sizes and qualities (bright and
    dark noise), and one truncated file (the first of each class): what
    `pretrain --dataset` reads."""
    rng = np.random.default_rng(seed)
    for label, (low, high) in enumerate([(0, 110), (140, 256)]):
        folder = os.path.join(root, f"class_{label}")
        os.makedirs(folder)
        for index in range(per_class):
            shape = (int(rng.integers(24, 120)), int(rng.integers(24, 120)), 3)
            image = rng.integers(low, high, shape).astype("uint8")
            quality = int(rng.integers(40, 96))
            data = tf.io.encode_jpeg(image, quality=quality).numpy()
            with open(os.path.join(folder, f"{index}.jpg"), "wb") as file:
                file.write(data[: len(data) // 2] if index == 0 else data)
    return str(root)


class StepsPerEpoch(keras.callbacks.Callback):
    """Counts the batches each epoch trains on."""

    def __init__(self):
        super().__init__()
        self.counts = []

    def on_epoch_begin(self, epoch, logs=None):
        self.counts.append(0)

    def on_train_batch_end(self, batch, logs=None):
        self.counts[-1] += 1


def bad_folder(root):
    """One of each file a real photo folder holds, good and bad.

    Returns `(good, bad)`: the sorted names of each kind.
    """
    import io

    from PIL import Image

    rng = np.random.default_rng(0)
    photo = rng.integers(0, 256, (120, 90, 3), "uint8")
    good = {
        "photo.jpg": photo,
        "gray.png": photo[..., :1],
        "alpha.png": np.concatenate([photo, photo[..., :1]], axis=-1),
        "tiny.png": photo[:3, :2],  # smaller than the view
        "large.jpg": rng.integers(0, 256, (1600, 2400, 3), "uint8"),
    }
    os.makedirs(root, exist_ok=True)
    for name, image in good.items():
        write(os.path.join(root, name), image)
    tf.io.write_file(
        os.path.join(root, "deep.png"),
        tf.io.encode_png(photo.astype("uint16") * 257),  # 16-bit PNG
    )
    buffer = io.BytesIO()
    Image.fromarray(photo).convert("CMYK").save(buffer, "JPEG")
    with open(os.path.join(root, "cmyk.jpg"), "wb") as file:
        file.write(buffer.getvalue())
    jpeg = tf.io.encode_jpeg(photo).numpy()
    bad = {
        "empty.jpg": b"",
        "truncated.jpg": jpeg[: len(jpeg) // 2],
        "not_an_image.jpg": b"<html>this is a web page</html>",
    }
    for name, data in bad.items():
        with open(os.path.join(root, name), "wb") as file:
            file.write(data)
    return sorted(good) + ["cmyk.jpg", "deep.png"], sorted(bad)


README = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md"
)


def python_blocks():
    """The README's ```python blocks, in order."""
    with open(README) as readme:
        return re.findall(r"```python\n(.*?)```", readme.read(), flags=re.DOTALL)


# Shared by several test modules (no test module imports another).


def bright_or_dark(count=64, seed=0):
    """An easy labelled task: class 1 images are bright, class 0 dark."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, count)
    base = np.where(labels[:, None, None, None] == 1, 200, 40)
    noise = rng.integers(-30, 30, (count, 16, 16, 3))
    return np.clip(base + noise, 0, 255).astype("uint8"), labels


def free_port():
    with socket.socket() as probe:
        probe.bind(("localhost", 0))
        return probe.getsockname()[1]


def jax_environment(backend="jax", **extra):
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("KERAS_DISTRIBUTION_", "XLA_FLAGS", "TF_CONFIG"))
    }
    environment.update(KERAS_BACKEND=backend, CUDA_VISIBLE_DEVICES="", **extra)
    return environment


def cli(*arguments):
    return [sys.executable, "-m", "keras_simclr.cli", *map(str, arguments)]


def run_saved_model(path, batch):
    import tensorflow as tf

    loaded = tf.saved_model.load(path)  # kept: the endpoint needs it alive
    return loaded.serve(batch).numpy()


def run_onnx(path, batch):
    onnxruntime = pytest.importorskip("onnxruntime")
    session = onnxruntime.InferenceSession(path)
    return session.run(None, {session.get_inputs()[0].name: batch})[0]


def run_litert(path, batch):
    interpreter_module = pytest.importorskip("ai_edge_litert.interpreter")
    interpreter = interpreter_module.Interpreter(model_path=path)
    entry = interpreter.get_input_details()[0]
    interpreter.resize_tensor_input(entry["index"], batch.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(entry["index"], batch)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


def run_keras(path, batch):
    return keras.models.load_model(path).predict(batch, verbose=0)


# format: (output name, runtime)
RUNTIMES = {
    "saved_model": ("served", run_saved_model),
    "onnx": ("encoder.onnx", run_onnx),
    "litert": ("encoder.tflite", run_litert),
    "keras": ("encoder.keras", run_keras),
}


def signal_at(step, *numbers):
    """A callback that sends `numbers` to this process after `step` steps
    (counted over the epochs)."""

    class Send(keras.callbacks.Callback):
        steps = 0

        def on_train_batch_end(self, batch, logs=None):
            self.steps += 1
            if self.steps == step:
                for number in numbers:
                    signal.raise_signal(number)

    return Send()


# The other backends a worker runs one step on, against TensorFlow's: JAX on
# one device and under DataParallel over two host devices, PyTorch where
# installed. `(backend, data_parallel)` pairs for `pytest.mark.parametrize`.
OTHER_BACKENDS = [
    pytest.param("jax", False, id="jax"),
    pytest.param("jax", True, id="jax-data-parallel-2-devices"),
    pytest.param(
        "torch",
        False,
        id="torch",
        marks=pytest.mark.skipif(
            importlib.util.find_spec("torch") is None, reason="torch not installed"
        ),
    ),
]
