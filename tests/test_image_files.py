"""The full-resolution input pipeline: crop geometry, order, bad files, shards."""

import logging
import os

import numpy as np
import pytest
import tensorflow as tf
from harness import StepsPerEpoch, bad_folder, write

import keras_simclr as ks
from keras_simclr import datasets

WIDTH, HEIGHT = 800, 200  # a 4:1 scene, far outside the crop's aspect range


def position_image(scale=1):
    """Pixels that encode their position (R ~ x, G ~ y) in a 4:1 scene."""
    y, x = np.mgrid[0 : HEIGHT * scale, 0 : WIDTH * scale].astype("float32") / scale
    red = np.round(x * 255 / (WIDTH - 1))
    green = np.round(y * 255 / (HEIGHT - 1))
    blue = np.full_like(x, 128)
    return np.clip(np.stack([red, green, blue], axis=-1), 0, 255).astype("uint8")


def window_of(view):
    """(left, top, width, height) of a view's window in original pixels."""
    view = view.astype("float64")
    size = view.shape[0]
    x_left, x_right = view[:, 0, 0].mean(), view[:, -1, 0].mean()
    y_top, y_bottom = view[0, :, 1].mean(), view[-1, :, 1].mean()
    to_x, to_y = (WIDTH - 1) / 255, (HEIGHT - 1) / 255
    # Edge pixel centres sit half a view-pixel inside the window.
    width = (x_right - x_left) * to_x * size / (size - 1)
    height = (y_bottom - y_top) * to_y * size / (size - 1)
    return x_left * to_x, y_top * to_y, width, height


@pytest.mark.parametrize(
    "name, scale",
    # Lossless 800 x 200 PNG; a 3200 x 800 JPEG, which is decoded at 1/2 to
    # 1/8 scale wherever both crops allow it.
    [("scene.png", 1), ("scene.jpg", 4)],
)
def test_pretrain_crops_are_cut_from_the_original_with_the_papers_geometry(
    tmp_path, name, scale
):
    path = write(tmp_path / name, position_image(scale))
    pairs = datasets.image_files([path] * 64, image_size=48, batch_size=16, seed=3)
    areas, aspects, differ = [], [], 0
    for views_a, views_b in pairs:
        assert views_a.dtype == tf.uint8 and views_a.shape == (16, 48, 48, 3)
        for view_a, view_b in zip(views_a.numpy(), views_b.numpy()):
            if np.array_equal(view_a, view_b):
                # Only possible when both views fell back to the paper's
                # centred crop (no draw fits: ~4% of draws in a 4:1 scene).
                left, top, width, height = window_of(view_a)
                assert left + width / 2 == pytest.approx(WIDTH / 2, abs=6)
                assert width == pytest.approx(4 / 3 * HEIGHT, rel=0.05)
            else:
                differ += 1
            for view in (view_a, view_b):
                _, _, width, height = window_of(view)
                areas.append(width * height / (WIDTH * HEIGHT))
                aspects.append(width / height)
    areas, aspects = np.array(areas), np.array(aspects)
    # 8-100% of the ORIGINAL area (at most 4/3 * 200 * 200 fits in a 4:1
    # scene), scene aspect within 3/4-4/3; tolerance for the resize.
    assert (
        areas.min() > 0.08 * 0.9
        and areas.max() < (4 / 3 * HEIGHT**2) / (WIDTH * HEIGHT) * 1.05
    )
    assert aspects.min() > 0.75 * 0.92 and aspects.max() < 4 / 3 * 1.08
    assert aspects.max() - aspects.min() > 0.3  # the aspect really varies
    assert differ >= 58  # the two views of a pair differ (64 pairs)


def test_evaluate_is_a_centre_crop_in_file_order(tmp_path):
    image = position_image()
    paths = [write(tmp_path / f"{index}.png", image) for index in range(3)]
    # A second, different image in the middle shows the order is kept.
    paths[1] = write(tmp_path / "1.png", 255 - image)
    data = datasets.image_files(tmp_path, image_size=32, batch_size=2, mode="evaluate")
    assert data.file_paths == sorted(paths)
    images = np.concatenate([batch.numpy() for batch in data])
    assert images.shape == (3, 32, 32, 3)
    left, top, width, height = window_of(images[0])
    side = 0.875 * HEIGHT  # resize the shorter side to S / 0.875, crop S
    assert width == pytest.approx(side, rel=0.05)
    assert height == pytest.approx(side, rel=0.05)
    assert left + width / 2 == pytest.approx(WIDTH / 2, abs=4)
    assert top + height / 2 == pytest.approx(HEIGHT / 2, abs=2)
    np.testing.assert_array_equal(images[2], images[0])
    assert not np.array_equal(images[1], images[0])


def test_same_seed_same_pairs(tmp_path):
    paths = [write(tmp_path / f"{i}.png", position_image()) for i in range(6)]

    def first_batch(seed):
        return next(iter(datasets.image_files(paths, 24, batch_size=4, seed=seed)))

    a, b = first_batch(1), first_batch(1)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], first_batch(2)[0])


def test_bad_files_are_skipped_and_reported_by_name(tmp_path):
    good, bad = bad_folder(tmp_path)
    pairs = datasets.image_files(tmp_path, 32, batch_size=1, seed=0)
    count = 0
    for views_a, views_b in pairs:
        assert views_a.shape == views_b.shape == (1, 32, 32, 3)
        count += 1
    assert count == len(good)
    assert [os.path.basename(p) for p in pairs.skipped_files()] == bad

    evaluate = datasets.image_files(tmp_path, 32, batch_size=4, mode="evaluate")
    assert sum(len(batch) for batch in evaluate) == len(good)


def test_on_error_raise_names_the_file(tmp_path):
    bad_folder(tmp_path)
    pairs = datasets.image_files(tmp_path, 32, batch_size=2, on_error="raise")
    with pytest.raises(tf.errors.OpError, match=r"Cannot decode .*\.jpg"):
        for _ in pairs:
            pass


def test_fit_on_a_bad_folder_completes_and_logs_the_skipped_files(tmp_path, caplog):
    _, bad = bad_folder(tmp_path)
    pairs = datasets.image_files(tmp_path, 16, batch_size=2, seed=0)
    model = ks.recipes.simclr_model(18, 0.0625, image_size=16, projection_dim=8)
    model.compile(optimizer=ks.optimizers.LARS(0.1))
    steps = StepsPerEpoch()
    with caplog.at_level(logging.WARNING, logger="keras_simclr"):
        history = model.fit(pairs, epochs=2, verbose=0, callbacks=[steps])
    assert np.isfinite(history.history["loss"][-1])
    # An epoch is one pass over the files that decode (#22: the file count
    # made each "epoch" run into the next pass).
    good = len(pairs.file_paths) - len(bad)
    assert steps.counts == [good // 2, good // 2]
    logged = caplog.text
    assert f"{len(bad)} file(s) could not be decoded" in logged
    for name in bad:
        assert name in logged


def test_the_step_counter_equals_the_steps_trained(tmp_path):
    # #34 row 17: 2 epochs of 4 batches of a reader gave optimizer.iterations
    # 10 on TensorFlow (Keras counts the step that finds the data exhausted).
    for index in range(16):
        write(tmp_path / f"{index}.jpg", np.full((40, 50, 3), 10 * index, "uint8"))
    pairs = datasets.image_files(tmp_path, 16, batch_size=4, seed=0)
    model = ks.recipes.simclr_model(18, 0.0625, image_size=16, projection_dim=8)
    model.compile(optimizer=ks.optimizers.LARS(0.1))
    steps = StepsPerEpoch()
    model.fit(pairs, epochs=2, verbose=0, callbacks=[steps])
    assert steps.counts == [4, 4]
    assert int(model.optimizer.iterations) == 8


def test_fit_applies_only_the_appearance_to_view_pairs():
    augmentation = ks.layers.SimCLRAugmentation(
        16, flip=False, jitter_rate=0.0, grayscale_rate=0.0, blur_rate=0.0
    )
    views = np.random.default_rng(0).integers(0, 256, (4, 16, 16, 3), "uint8")
    np.testing.assert_allclose(
        augmentation.appearance(views, training=True), views / 255, atol=1e-6
    )
    flips = ks.layers.SimCLRAugmentation(
        16, jitter_rate=0.0, grayscale_rate=0.0, blur_rate=0.0, seed=0
    )
    flipped = flips.appearance(views, training=True).numpy() * 255
    for view, out in zip(views, flipped):
        assert np.allclose(out, view, atol=1e-3) or np.allclose(
            out, view[:, ::-1], atol=1e-3
        )


def test_folder_splits_work_with_the_readme_calls(tmp_path):
    photo = np.random.default_rng(0).integers(0, 256, (50, 70, 3), "uint8")
    for klass in ("cats", "dogs"):
        os.makedirs(tmp_path / klass)
        for index in range(5):
            write(tmp_path / klass / f"{index}.jpg", photo // (1 + index))
    splits = datasets.image_folder(tmp_path, image_size=16, batch_size=4)
    unlabeled, steps = datasets.pretraining_batches(splits, batch_size=4)
    assert steps == 10 // 4
    model = ks.recipes.simclr_model(18, 0.0625, image_size=16, projection_dim=8)
    model.compile(optimizer=ks.recipes.pretraining_optimizer(4, total_steps=steps))
    model.fit(unlabeled, epochs=1, verbose=0)
    result = ks.linear_probe(model, splits.train, splits.validation)
    assert 0 <= result.accuracy <= 1
    assert splits.num_classes == 2 and splits.train.class_names == ["cats", "dogs"]


def test_input_context_shards_files_before_decoding(tmp_path):
    paths = [write(tmp_path / f"{i}.png", position_image()[:50, :60]) for i in range(8)]
    decoded = []
    for worker in range(2):
        context = tf.distribute.InputContext(2, worker, 1)
        data = datasets.image_files(paths, 16, batch_size=1, input_context=context)
        for _ in data:
            pass
        keys = data.reader_info.tracker.decoded.export()[0].numpy()
        decoded.append({key.decode() for key in keys})
    assert len(decoded[0]) == len(decoded[1]) == 4
    assert decoded[0].isdisjoint(decoded[1]) and decoded[0] | decoded[1] == set(paths)


def test_readers_turn_tf_data_autotuning_off(tmp_path):
    # TensorFlow deletes an iterator only once tf.data's autotuning thread
    # wakes (its sleep doubles up to a minute): with autotuning on, a fit or
    # predict over a reader waited that long at its end. The options travel
    # with every dataset built on the reader.
    paths = [write(tmp_path / f"{i}.png", position_image()[:50, :60]) for i in range(4)]
    context = tf.distribute.InputContext(2, 0, 1)
    plain = datasets.image_files(paths, 16, batch_size=2)
    sharded = datasets.image_files(paths, 16, batch_size=2, input_context=context)
    off = tf.data.experimental.AutoShardPolicy.OFF
    for data, auto_shard_off in ((plain, False), (sharded, True)):
        for dataset in (data, datasets.as_model_inputs(data).repeat()):
            options = dataset.options()
            assert options.autotune.enabled is False
            assert options.autotune.initial_parallelism == (
                datasets.iteration.schedulable_cores()
            )
            policy = options.experimental_distribute.auto_shard_policy
            assert (policy == off) == auto_shard_off
    assert len(list(plain)) == 2  # and it still reads


def test_tfrecords_round_trip_with_labels_and_shards(tmp_path):
    photo = position_image()[:60, :80]
    for klass in ("a", "b"):
        os.makedirs(tmp_path / "photos" / klass)
        for index in range(3):
            write(tmp_path / "photos" / klass / f"{index}.png", photo)
    with open(tmp_path / "photos" / "b" / "broken.png", "wb") as file:
        file.write(b"\x89PNG broken")
    shards = datasets.write_tfrecords(
        tmp_path / "photos", tmp_path / "records", shards=3
    )
    assert len(shards) == 3
    data = datasets.tfrecord_images(
        str(tmp_path / "records" / "*.tfrecord"), 16, batch_size=8, mode="evaluate"
    )
    images, labels = next(iter(data))
    assert images.shape == (6, 16, 16, 3)
    assert sorted(labels.numpy().tolist()) == [0, 0, 0, 1, 1, 1]
    assert len(data.skipped_files()) == 1 and "#" in data.skipped_files()[0]
    pairs = datasets.tfrecord_images(
        shards, 16, batch_size=2, input_context=tf.distribute.InputContext(3, 0, 1)
    )
    (views_a, views_b), labels = next(iter(pairs))
    assert views_a.shape == views_b.shape == (2, 16, 16, 3)


@pytest.mark.parametrize("side", [150, 300, 700, 1700])  # factors 1.6 to 18
def test_crop_resize_is_antialiased_like_tensorflows_reference(side):
    from keras_simclr.datasets import crops

    # Pixel-level noise: all of its detail is above the output's Nyquist
    # frequency, so an aliasing resize keeps it and an antialiased one
    # averages it away.
    image = np.random.default_rng(side).integers(0, 256, (side, side, 3), "uint8")
    window = tf.constant([0, 0, side, side], tf.int32)
    ours = crops.crop_and_resize(tf.constant(image), window, 96).numpy().astype(float)
    reference = tf.image.resize(image, (96, 96), antialias=True).numpy()
    aliased = tf.image.resize(image, (96, 96), method="bilinear").numpy()
    error = np.abs(ours - reference).mean()
    aliased_error = np.abs(aliased - reference).mean()  # what no antialiasing gives
    # Area averaging (a box filter) against the reference's triangle filter:
    # far closer to it than the aliased resize.
    assert error < aliased_error / 2.5, (error, aliased_error)


def test_views_of_a_huge_image_are_read_straight_from_it(monkeypatch):
    # Over `FAST_PATH_MAX_PIXELS` each view is resized from the image itself
    # (no copy of its crop) with the kernel of `antialias=True`.
    from keras_simclr.datasets import crops

    image = np.random.default_rng(0).integers(0, 256, (90, 120, 3), "uint8")
    windows = tf.constant([[0, 0, 90, 120], [10, 20, 60, 50]], tf.int32)
    monkeypatch.setattr(crops, "FAST_PATH_MAX_PIXELS", 90 * 120 - 1)
    views = crops.crop_views(tf.constant(image), windows, 24).numpy().astype(float)
    whole = tf.image.resize(image, (24, 24), antialias=True).numpy()
    np.testing.assert_allclose(views[0], whole, atol=0.5 + 1e-3)  # rounding only
    # Inside the window, a resize of the copied crop; at its edges the kernel
    # also weighs the photo's pixels just outside it.
    crop = tf.image.resize(image[10:70, 20:70], (24, 24), antialias=True).numpy()
    assert np.abs(views[1] - crop)[2:-2, 2:-2].max() <= 0.5 + 1e-3
    assert not np.array_equal(views[1], views[0])


def test_every_reader_takes_the_same_options_and_refuses_others(tmp_path):
    # Issue #32: one reader surface. The pixel limit applies to records too.
    small = position_image()[:40, :50]
    write(tmp_path / "small.png", small)
    write(tmp_path / "large.png", np.zeros((200, 300, 3), "uint8"))
    shards = datasets.write_tfrecords(tmp_path, tmp_path / "records", shards=1)
    for read in (
        lambda **options: datasets.image_files(tmp_path, 16, 2, "evaluate", **options),
        lambda **options: datasets.tfrecord_images(
            shards, 16, 2, "evaluate", label_key=None, **options
        ),
    ):
        with pytest.raises(TypeError, match="max_pixels"):
            read(max_pixel=10)
        limited = read(max_pixels=10_000, shuffle_buffer=4, on_error="skip")
        assert sum(len(batch) for batch in limited) == 1
        assert len(limited.skipped_files()) == 1
    with pytest.raises(ValueError, match="shuffle_buffer"):
        datasets.image_files(tmp_path, 16, shuffle_buffer=0)
