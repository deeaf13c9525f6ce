import numpy as np
import pytest
import tensorflow as tf

from keras_simclr import datasets


def test_digits_is_embedded_rgb_uint8_with_a_stratified_split():
    splits = datasets.digits(image_size=16, validation_fraction=0.25)
    x_train, y_train = splits.train
    x_validation, y_validation = splits.validation
    assert x_train.shape[1:] == (16, 16, 3) and x_train.dtype == np.uint8
    assert len(x_train) + len(x_validation) == 1797
    assert np.all(x_train[..., 0] == x_train[..., 2])  # grayscale repeated
    assert x_train.max() > 200
    counts = np.bincount(y_validation, minlength=10) / np.bincount(
        np.concatenate([y_train, y_validation])
    )
    assert np.allclose(counts, 0.25, atol=0.02)
    assert splits.unlabeled is x_train and splits.num_classes == 10


def test_to_dataset_batches_shuffles_and_drops_remainder():
    images = np.arange(10)[:, None, None, None] * np.ones((1, 2, 2, 3), "uint8")
    labels = np.arange(10)
    dataset = datasets.to_dataset(
        images, labels, batch_size=4, shuffle=True, drop_remainder=True
    )
    batches = list(dataset)
    assert [len(b[1]) for b in batches] == [4, 4]
    first, second = ([int(v) for b in dataset for v in b[1]] for _ in range(2))
    assert first != second or first != sorted(first)
    with pytest.raises(ValueError, match="0 images"):
        datasets.to_dataset(images[:0])


def write_pngs(folder, count, colour):
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        image = np.full((20, 24, 3), colour, "uint8")
        image[index % 20] = 255 - colour
        tf.io.write_file(str(folder / f"{index}.png"), tf.io.encode_png(image))


def test_image_folder_with_classes(tmp_path):
    write_pngs(tmp_path / "cats", 6, 10)
    write_pngs(tmp_path / "dogs", 4, 200)
    splits = datasets.image_folder(
        str(tmp_path), image_size=8, batch_size=4, validation_fraction=0.3
    )
    assert splits.num_classes == 2
    # Pretraining pairs, full batches only: 10 images -> 2 batches of 4.
    views = np.concatenate([np.stack(pair, axis=1) for pair in splits.unlabeled])
    assert views.shape == (8, 2, 8, 8, 3)
    labels = np.concatenate(
        [b[1].numpy() for b in splits.train] + [b[1].numpy() for b in splits.validation]
    )
    assert sorted(labels.tolist()) == [0] * 6 + [1] * 4


def test_image_folder_without_labels_and_missing_folder(tmp_path):
    write_pngs(tmp_path, 5, 50)
    splits = datasets.image_folder(str(tmp_path), image_size=8, batch_size=2)
    assert splits.train is None
    assert sum(len(views_a) for views_a, _ in splits.unlabeled) == 4  # 2 batches
    with pytest.raises(FileNotFoundError, match="No image folder"):
        datasets.image_folder(str(tmp_path / "missing"))


def test_cifar_loaders_wrap_keras_datasets(monkeypatch):
    import keras

    rng = np.random.default_rng(0)

    def fake_load_data(**kwargs):
        x = rng.integers(0, 256, (50, 32, 32, 3), dtype="uint8")
        y = (np.arange(50) % 10).reshape(-1, 1)
        return (x, y), (x[:20], y[:20])

    monkeypatch.setattr(keras.datasets.cifar10, "load_data", fake_load_data)
    splits = datasets.cifar10()
    assert splits.train[1].shape == (50,) and splits.validation[0].shape == (
        20,
        32,
        32,
        3,
    )
    carved = datasets.cifar10(validation_fraction=0.2)
    assert len(carved.validation[1]) == 10 and len(carved.train[1]) == 40

    def failing_load_data(**kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr(keras.datasets.cifar100, "load_data", failing_load_data)
    with pytest.raises(RuntimeError, match="CIFAR-100.*network unreachable"):
        datasets.cifar100()


def test_stl10_names_its_missing_package(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_tfds(name, *args, **kwargs):
        if name == "tensorflow_datasets":
            raise ImportError("No module named 'tensorflow_datasets'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tfds)
    with pytest.raises(ImportError, match="pip install tensorflow-datasets"):
        datasets.stl10()


def test_unknown_dataset_name():
    with pytest.raises(ValueError, match="digits, cifar10"):
        datasets.load("imagenet-but-typo")
