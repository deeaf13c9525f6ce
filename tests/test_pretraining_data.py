"""The data contract: every input reaches `fit` in one explicit form."""

import logging

import numpy as np
import pytest
import tensorflow as tf
from harness import StepsPerEpoch, write

import keras_simclr as ks
from keras_simclr import datasets


@pytest.fixture
def photos(tmp_path):
    rng = np.random.default_rng(0)
    for index in range(9):
        write(tmp_path / f"{index}.jpg", rng.integers(0, 256, (30, 40, 3), "uint8"))
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    return tmp_path


def model():
    built = ks.recipes.simclr_model(18, 0.0625, image_size=16, projection_dim=8)
    built.compile(optimizer=ks.optimizers.LARS(0.1))
    return built


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda d: d, id="as-is"),
        pytest.param(lambda d: d.prefetch(2), id="prefetch"),
        pytest.param(lambda d: d.map(lambda pair: pair), id="map"),
        pytest.param(lambda d: d.take(100), id="take"),
    ],
)
def test_a_users_map_prefetch_or_take_keeps_the_epochs(photos, change):
    pairs = datasets.image_files(photos, 16, batch_size=3, seed=0)
    steps = StepsPerEpoch()
    model().fit(change(pairs), epochs=2, verbose=0, callbacks=[steps])
    # 9 photos decode (one file is broken): 3 full batches, every epoch.
    assert steps.counts == [3, 3]
    decoded = pairs.reader_info.tracker.decoded.export()[0].numpy()
    assert len(decoded) == 9


def test_take_gives_epochs_of_what_it_takes(photos):
    pairs = datasets.image_files(photos, 16, batch_size=3, seed=0)
    steps = StepsPerEpoch()
    model().fit(pairs.take(2), epochs=2, verbose=0, callbacks=[steps])
    assert steps.counts == [2, 2]


def test_a_plain_tuple_of_views_is_refused_with_the_fix(photos):
    pairs = datasets.image_files(photos, 16, batch_size=3, seed=0)
    plain = pairs.map(lambda pair: (pair.views_a, pair.views_b))
    with pytest.raises(ValueError, match="ViewPair"):
        model().fit(plain, verbose=0)
    as_pair = plain.map(lambda a, b: datasets.ViewPair(a, b))
    assert model().fit(as_pair, verbose=0).history["loss"]


def test_skipped_files_are_reported_once_by_fit(photos, caplog):
    pairs = datasets.image_files(photos, 16, batch_size=3, seed=0)
    with caplog.at_level(logging.WARNING, logger="keras_simclr"):
        model().fit(pairs, epochs=2, verbose=0)
    assert caplog.text.count("broken.jpg") == 1


def test_reader_info_is_kept_by_as_model_inputs_not_by_a_users_map(photos):
    pairs = datasets.image_files(photos, 16, batch_size=3, seed=0)
    assert datasets.as_model_inputs(pairs).reader_info is pairs.reader_info
    assert datasets.reader_info(pairs.prefetch(1)) is None
    info = pairs.reader_info
    assert (info.num_files, info.batch_size, info.mode) == (10, 3, "pretrain")


def test_model_forms_of_each_input():
    images = np.zeros((10, 8, 8, 3), "uint8")
    labels = np.arange(10) % 2
    data = datasets.pretraining_data(images, labels, batch_size=4)
    assert data.steps_per_epoch == 2
    inputs, batch_labels = data.dataset.element_spec
    assert sorted(inputs) == ["images"] and batch_labels.shape.rank == 1
    pairs = tf.data.Dataset.from_tensors(datasets.ViewPair(images, images))
    data = datasets.pretraining_data(pairs.map(lambda pair: (pair, labels)))
    assert sorted(data.dataset.element_spec[0]) == ["views_a", "views_b"]
    assert data.steps_per_epoch == 1


@pytest.mark.parametrize(
    "data, message",
    [
        (tf.data.Dataset.from_tensors({"image": np.zeros((2, 8, 8, 3))}), "dict"),
        (tf.data.Dataset.from_tensor_slices(np.zeros((4, 8, 8, 3))), "not batches"),
        (
            tf.data.Dataset.from_tensors(np.zeros((2, 8, 8, 3))).filter(
                lambda x: False
            ),
            None,
        ),
        (
            tf.data.Dataset.from_tensors(
                (np.zeros((2, 8, 8, 3)), np.array(["a", "b"]))
            ),
            "integer class ids",
        ),
        ([1, 2, 3], "numpy images"),
    ],
)
def test_inputs_fit_cannot_take_are_refused_before_training(data, message):
    if message is None:  # empty and of unknown size: refused after its pass
        with pytest.raises(ValueError, match="no batch"):
            model().fit(data, verbose=0)
        return
    with pytest.raises((ValueError, TypeError), match=message):
        datasets.pretraining_data(data)


def test_one_road_rebatches_a_reader_and_plans_its_steps(photos):
    # Issue #32: a reader built at another batch size is re-batched by the
    # adapter, its facts say so, and the schedule's steps come from its files.
    reader = datasets.image_files(photos, 16, batch_size=3, seed=0)
    data = datasets.pretraining_data(reader, batch_size=4)
    assert data.info.batch_size == 4 and data.info.num_items == 10
    assert data.planned_steps_per_epoch == 10 // 4
    assert data.steps_per_epoch is None  # an epoch is one pass of the reader
    sizes = {int(inputs["views_a"].shape[0]) for inputs in data.dataset}
    assert sizes == {4}
    assert datasets.pretraining_data(data) is data
    splits = datasets.Splits(reader, None, None, 0, 16)
    again, steps = datasets.pretraining_batches(splits, batch_size=4)
    assert steps == 2 and again.info.batch_size == 4


def test_fit_takes_the_adapters_result_unchanged_and_again(photos):
    images = np.random.default_rng(0).integers(0, 256, (12, 16, 16, 3), "uint8")
    data = datasets.pretraining_data(images, batch_size=4, seed=0)
    spec = data.dataset.element_spec
    trained = model()
    for _ in range(2):  # the caller's PretrainingData is not changed by fit
        history = trained.fit(data, epochs=1, verbose=0)
        assert len(history.history["loss"]) == 1
    assert data.dataset.element_spec == spec
    with pytest.raises(ValueError, match="set by the PretrainingData"):
        trained.fit(data, steps_per_epoch=2, verbose=0)


def test_no_full_batch_is_refused_in_one_sentence(photos):
    images = np.zeros((3, 16, 16, 3), "uint8")
    reader = datasets.image_files(photos, 16, batch_size=32)
    empty = tf.data.Dataset.from_tensor_slices(images).batch(4, drop_remainder=True)
    for data, batch_size in ((images, 4), (reader, None), (empty, None)):
        with pytest.raises(ValueError, match="needs at least one full batch"):
            datasets.pretraining_data(data, batch_size=batch_size)


def test_what_fit_receives_never_waits_for_tf_datas_autotuning(photos):
    # Issue #34 row 24: Keras deletes its iterator of a user's pipeline
    # before fit returns; with autotuning on the deletion could wait up to a
    # minute. The adapter turns it off for every input.
    images = np.zeros((8, 16, 16, 3), "uint8")
    users = (
        tf.data.Dataset.from_tensor_slices(images)
        .shuffle(8)
        .batch(4, drop_remainder=True)
        .prefetch(tf.data.AUTOTUNE)
    )
    for data in (images, users, datasets.image_files(photos, 16, batch_size=2)):
        options = datasets.pretraining_data(data, batch_size=4).dataset.options()
        assert options.autotune.enabled is False
    assert users.options().autotune.enabled is not False  # the user's own: as is
