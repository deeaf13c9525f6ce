"""SimCLRv2's third stage (issue #35): the loss against numpy, a student
that learns its teacher, saving, and the three stages' numbers (tiny
settings; fuller ones under `-m slow`)."""

import os

import keras
import numpy as np
import pytest
from harness import (
    OTHER_BACKENDS,
    bright_or_dark,
    labelled_photos,
    signal_at,
    tiny_model,
)

import keras_simclr as ks
from keras_simclr.evaluation import distillation_loss


def numpy_distillation_loss(teacher, student, temperature):
    def softmax(logits):
        shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
        return shifted / shifted.sum(axis=-1, keepdims=True)

    targets = softmax(teacher / temperature)
    log_student = np.log(softmax(student / temperature))
    return -(targets * log_student).sum(axis=-1).mean()


@pytest.mark.parametrize("temperature", [0.5, 1.0, 4.0])
def test_the_distillation_loss_against_numpy(temperature):
    rng = np.random.default_rng(0)
    teacher, student = rng.normal(0, 3, (2, 16, 10)).astype("float32")
    np.testing.assert_allclose(
        float(distillation_loss(teacher, student, temperature)),
        numpy_distillation_loss(teacher, student, temperature),
        rtol=1e-5,
    )


def test_a_student_learns_its_teacher_and_saves(tmp_path):
    x, y = bright_or_dark(96)
    teacher = ks.fine_tune(tiny_model(), (x, y), epochs=6, batch_size=16).classifier
    teacher_accuracy = np.mean(np.argmax(teacher.predict(x, verbose=0), -1) == y)
    keras.utils.set_random_seed(0)
    student = ks.evaluation.student_classifier(2, 16, width=0.0625)
    before = student.predict(x, verbose=0)
    trained = ks.evaluation.distill(teacher, student, x, epochs=6, batch_size=16)
    assert trained is student
    logits = student.predict(x, verbose=0)
    assert not np.allclose(logits, before)
    agreement = np.mean(
        np.argmax(logits, -1) == np.argmax(teacher.predict(x, verbose=0), -1)
    )
    accuracy = np.mean(np.argmax(logits, -1) == y)
    assert agreement >= 0.9 and accuracy >= teacher_accuracy - 0.1, (
        agreement,
        accuracy,
        teacher_accuracy,
    )
    path = tmp_path / "student.keras"
    student.save(path)
    np.testing.assert_allclose(
        keras.models.load_model(path).predict(x, verbose=0), logits, atol=1e-5
    )


def test_wrong_arguments_are_refused():
    x, _ = bright_or_dark(16)
    student = ks.evaluation.student_classifier(2, 16, width=0.0625)
    with pytest.raises(ValueError, match="temperature"):
        ks.evaluation.distill(student, student, x, temperature=0)
    with pytest.raises(TypeError, match="unlabeled"):
        ks.evaluation.distill(student, student, [1, 2, 3])


def simple_classifier(classes=2, size=16, seed=0):
    """Images -> logits without BatchNorm: one step of it on N replicas
    equals one step on one device exactly (BatchNorm would see each
    replica's share)."""
    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [
            keras.Input((size, size, 3)),
            keras.layers.Rescaling(1 / 255),
            keras.layers.Conv2D(4, 3, activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(classes),
        ]
    )


DISTILL_BACKENDS = [
    *OTHER_BACKENDS,
    pytest.param("tensorflow", True, id="tensorflow-mirrored-2-replicas"),
]


@pytest.fixture(scope="module")
def distill_step_files(tmp_path_factory):
    """A teacher, a student, 8 labelled images, and TensorFlow's one step."""
    import sys

    folder = tmp_path_factory.mktemp("distill")
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "workers"))
    from distill_step import run_step

    simple_classifier(seed=1).save(folder / "teacher.keras")
    simple_classifier(seed=2).save(folder / "student.keras")
    x, y = bright_or_dark(8)
    np.savez(folder / "images.npz", images=x, labels=y)
    files = [str(folder / name) for name in ("teacher.keras", "student.keras")]
    files.append(str(folder / "images.npz"))
    run_step(*files, str(folder / "tensorflow.npz"))
    return files, dict(np.load(folder / "tensorflow.npz")), run_step


@pytest.mark.parametrize("backend, parallel", DISTILL_BACKENDS)
def test_one_distillation_step_agrees_with_tensorflow_on_one_device(
    backend, parallel, distill_step_files, two_replica_strategy, tmp_path
):
    # Every backend, and two replicas / devices: the same loss and the same
    # student after one step (the gradient is scaled for the replicas).
    import subprocess
    import sys

    files, expected, run_step = distill_step_files
    output = str(tmp_path / "step.npz")
    if backend == "tensorflow":
        run_step(*files, output, strategy=two_replica_strategy)
    else:
        worker = os.path.join(os.path.dirname(__file__), "workers", "distill_step.py")
        environment = dict(os.environ, KERAS_BACKEND=backend, CUDA_VISIBLE_DEVICES="")
        if parallel:
            environment["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
        result = subprocess.run(
            [sys.executable, worker, *files, output]
            + (["data_parallel"] if parallel else []),
            env=environment,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert result.returncode == 0, result.stderr[-3000:]
    step = dict(np.load(output))
    start = keras.models.load_model(files[1]).weights
    moved = [
        not np.allclose(expected[f"weight_{index}"], weight.numpy(), atol=1e-4)
        for index, weight in enumerate(start)
    ]
    assert all(moved)  # the step trained every weight of the student
    np.testing.assert_allclose(step["loss"], expected["loss"], rtol=1e-5)
    for name in expected:
        np.testing.assert_allclose(step[name], expected[name], rtol=1e-4, atol=1e-6)


def three_stages(size, width, pretrain_epochs, fine_tune_epochs, distill_epochs, seed):
    """Pretrain -> fine-tune on 10% of the labels (teacher) -> distil into a
    student of the same size on all the images with those labels; against
    the same student trained on the 10% alone for as many steps, with the
    same crops. Returns the held-out accuracies (teacher, student, alone)."""
    import tensorflow as tf

    splits = ks.datasets.digits(size)
    (x, y), (x_val, y_val) = splits.train, splits.validation
    keras.utils.set_random_seed(seed)
    model = ks.recipes.simclr_model(18, width, size)
    steps = len(splits.unlabeled) // 256
    optimizer = ks.recipes.pretraining_optimizer(256, pretrain_epochs * steps)
    model.compile(optimizer=optimizer)
    model.fit(splits.unlabeled, batch_size=256, epochs=pretrain_epochs, verbose=0)
    x_few, y_few = ks.evaluation.balanced_subset(x, y, 0.1)
    teacher = ks.fine_tune(
        model, (x_few, y_few), (x_val, y_val), epochs=fine_tune_epochs, batch_size=32
    )
    student = ks.evaluation.student_classifier(10, size, width=width)
    ks.evaluation.distill(
        teacher.classifier,
        student,
        splits.unlabeled,
        labeled=(x_few, y_few),
        epochs=distill_epochs,
    )

    def accuracy(classifier):
        logits = classifier.predict(x_val, verbose=0)
        return float(np.mean(np.argmax(logits, -1) == y_val))

    alone = ks.evaluation.student_classifier(10, size, width=width)
    alone.compile(
        optimizer=keras.optimizers.SGD(0.05, momentum=0.9, nesterov=True),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    crop = ks.layers.RandomResizedCrop(size, seed=0)
    labelled = tf.data.Dataset.from_tensor_slices((x_few, y_few)).shuffle(256)
    labelled = labelled.repeat().batch(32).map(lambda a, b: (crop(a, training=True), b))
    steps = distill_epochs * (len(splits.unlabeled) // 64)
    alone.fit(labelled, steps_per_epoch=steps, verbose=0)
    return teacher.accuracy, accuracy(student), accuracy(alone)


@pytest.mark.slow
def test_the_three_stages_on_digits_with_ten_percent_of_the_labels():
    # A comparison of trained accuracies: behind `-m slow` (issue #43), as
    # `student > alone` failed on other CPUs with two seeds. The default
    # suite checks distillation's loss and step against numpy (above) and
    # the command end to end (below). Tiny settings (ResNet-18 x0.125, 16 px; about 25 s a seed on 2 cores),
    # two seeds, their mean: seeds 0-3 gave student - alone = +1.1, +5.3,
    # +8.7, +10.0 points and student - teacher = +10.3, +1.2, +8.9, +3.0
    # (docs/benchmarks.md).
    runs = np.array([three_stages(16, 0.125, 15, 40, 10, seed) for seed in (0, 1)])
    teacher, student, alone = runs.mean(axis=0)
    assert student >= teacher - 0.03, runs
    assert student > alone, runs


@pytest.mark.slow
def test_the_three_stages_with_fuller_settings():
    # The figures of docs/benchmarks.md (one seed).
    teacher, student, alone = three_stages(16, 0.125, 30, 80, 20, 0)
    assert student >= teacher - 0.03
    assert student > alone


def test_the_distill_command(tmp_path, capsys):
    from keras_simclr import cli

    splits = ks.datasets.digits(16)
    x, y = ks.evaluation.balanced_subset(*splits.train, 0.1)
    teacher = ks.fine_tune(tiny_model(), (x, y), epochs=1, batch_size=32).classifier
    teacher.save(tmp_path / "teacher.keras")
    output = tmp_path / "student.keras"
    arguments = ["distill", str(tmp_path / "teacher.keras"), "--epochs", "1"]
    arguments += ["--width", "0.0625", "--output", str(output)]
    assert cli.main(arguments) == 0
    printed = capsys.readouterr().out
    assert "validation accuracy: teacher" in printed and "student" in printed
    student = keras.models.load_model(output)
    assert student.predict(splits.validation[0][:4], verbose=0).shape == (4, 10)
    assert cli.main(["distill", str(tmp_path / "none.keras")]) == 1


def test_a_distillation_stopped_by_sigterm_resumes_at_the_next_step(tmp_path):
    # distill trains through the same loop as SimCLRModel.fit: a
    # PreemptionCheckpoint stops it at the step a SIGTERM arrives in, and
    # passed again it continues from there to the uninterrupted run's student.
    import signal

    x, _ = bright_or_dark(24)
    teacher = simple_classifier(seed=1)

    def run(callbacks):
        student = simple_classifier(seed=2)
        ks.evaluation.distill(
            teacher, student, x, epochs=3, batch_size=4, callbacks=callbacks
        )
        return [weight.numpy() for weight in student.weights]

    uninterrupted = run([])
    backup = str(tmp_path / "backup")
    saver = ks.callbacks.PreemptionCheckpoint(backup)
    stopped = run([signal_at(8, signal.SIGTERM), saver])
    assert saver.exit_status == 143
    assert (saver.position.epoch, saver.position.step) == (1, 2)
    resumed = run([ks.callbacks.PreemptionCheckpoint(backup)])
    assert not os.path.exists(backup)  # finished: the checkpoints are removed
    assert not all(np.allclose(a, b) for a, b in zip(stopped, uninterrupted))
    for after, expected in zip(resumed, uninterrupted):
        np.testing.assert_allclose(after, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("form", ["photo folder", "TFRecord folder"])
def test_the_distill_command_reads_what_pretrain_reads(tmp_path, capsys, form):
    # The one data road (issue #40): a folder's and TFRecords' crops are cut
    # from the original files, a broken file is skipped (and named).
    from keras_simclr import cli

    dataset = labelled_photos(tmp_path / "photos")
    if form == "TFRecord folder":
        records = str(tmp_path / "records")
        assert cli.main(["make-tfrecords", dataset, records, "--shards", "2"]) == 0
        dataset = records
    keras.utils.set_random_seed(0)
    teacher = ks.evaluation.student_classifier(2, 16, width=0.0625)
    teacher.save(tmp_path / "teacher.keras")
    output = tmp_path / "student.keras"
    arguments = ["distill", str(tmp_path / "teacher.keras"), "--dataset", dataset]
    arguments += ["--epochs", "2", "--batch-size", "8", "--width", "0.0625"]
    assert cli.main([*arguments, "--output", str(output)]) == 0
    printed = capsys.readouterr()
    assert "validation accuracy: teacher" in printed.out
    student = keras.models.load_model(output)
    assert student.predict(np.zeros((2, 50, 70, 3), "uint8"), verbose=0).shape == (
        2,
        2,
    )
    assert not os.path.exists(f"{output}.backup")  # removed once saved


@pytest.mark.slow  # 93 s; the in-process SIGTERM test of distill stays in the default suite
def test_the_distill_command_exits_143_on_sigterm_and_resumes(tmp_path):
    # `keras-simclr distill` checkpoints as `pretrain` does: SIGTERM writes
    # the step it stops at, the checkpoint is continued only with --resume
    # and the same settings, and the resumed run saves the student.
    import signal
    import subprocess
    import sys
    import time

    keras.utils.set_random_seed(0)
    teacher = str(tmp_path / "teacher.keras")
    ks.evaluation.student_classifier(10, 16, width=0.0625).save(teacher)
    output = str(tmp_path / "student.keras")
    arguments = [sys.executable, "-m", "keras_simclr.cli", "distill", teacher]
    arguments += ["--epochs", "3", "--width", "0.0625", "--checkpoint-every", "2"]
    arguments += ["--output", output]
    environment = dict(os.environ, KERAS_BACKEND="tensorflow", CUDA_VISIBLE_DEVICES="")
    process = subprocess.Popen(
        arguments,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.time() + 240
    while ks.callbacks.latest_checkpoint(output + ".backup") is None:
        assert process.poll() is None, process.stdout.read()[-3000:]
        assert time.time() < deadline, "no checkpoint was written"
        time.sleep(0.02)
    process.send_signal(signal.SIGTERM)
    first = process.communicate(timeout=120)[0]
    assert process.returncode == 143, first[-3000:]
    assert "keras-simclr: stopped by SIGTERM" in first and "--resume" in first
    assert not os.path.exists(output)

    def again(*extra):
        return subprocess.run(
            [*arguments, *extra], env=environment, capture_output=True, text=True
        )

    refused = again()
    assert refused.returncode == 1 and "pass --resume" in refused.stderr
    changed = again("--resume", "--epochs", "4")
    assert changed.returncode == 1 and "--epochs 3 (now 4)" in changed.stderr
    resumed = again("--resume")
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert "keras-simclr: resuming" in resumed.stdout
    assert keras.models.load_model(output).output_shape == (None, 10)
    assert not os.path.exists(output + ".backup")
