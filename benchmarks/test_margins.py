"""The spread, over seeds and CPU numerics, of the default suite's accuracy
assertions: is each threshold outside it?

    python benchmarks/test_margins.py [--seeds 0 1 2 3 4]

Runs the training behind each accuracy assertion of the default suite (the
same data, models and settings as the test) once per seed
(`keras.utils.set_random_seed`), in a fresh process, with oneDNN's kernels
on and off (`TF_ENABLE_ONEDNN_OPTS`: two numerics, as two CPU models give
two), and prints min / median / max beside the test's threshold. The
comparisons of two trainings (SimCLRv2's three stages) are `-m slow` tests;
their figures are in docs/benchmarks.md.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.join(os.path.dirname(HERE), "tests")

# name: (test, threshold as the test states it, lowest allowed value)
CHECKS = {
    "fine_tune": ("test_fine_tune.py::test_fine_tune_learns_...", ">= 0.9", 0.9),
    "fine_tune_plain": (
        "test_fine_tune.py::test_fine_tune_plain_encoder_with_dataset",
        "> 0.9",
        0.9,
    ),
    "distill_agreement": (
        "test_distill.py::test_a_student_learns_its_teacher...",
        ">= 0.9",
        0.9,
    ),
    "distill_accuracy_gap": ("same: student >= teacher - 0.1", ">= -0.1", -0.1),
    "probe": ("test_evaluation.py::test_probe_is_accurate_...", "> 0.95", 0.95),
}


def child(seed):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.path.insert(0, TESTS)
    import keras
    import numpy as np
    import tensorflow as tf
    from harness import bright_or_dark, tiny_model
    from test_evaluation import identity_encoder, separable_problem

    import keras_simclr as ks

    found = {}
    keras.utils.set_random_seed(seed)
    x, y = bright_or_dark()
    result = ks.fine_tune(
        tiny_model(), (x, y), (x, y), epochs=8, learning_rate=0.05, batch_size=16
    )
    found["fine_tune"] = float(result.accuracy)

    keras.utils.set_random_seed(seed)  # (the test sets none: any seed must do)
    encoder = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(8, activation="relu")]
    )
    rng = np.random.default_rng(0)
    x = rng.normal(size=(128, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("int64")
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(32)
    result = ks.fine_tune(encoder, dataset, epochs=20, learning_rate=0.1)
    found["fine_tune_plain"] = float(result.accuracy)

    keras.utils.set_random_seed(seed)
    x, y = bright_or_dark(96)
    teacher = ks.fine_tune(tiny_model(), (x, y), epochs=6, batch_size=16).classifier
    teacher_accuracy = np.mean(np.argmax(teacher.predict(x, verbose=0), -1) == y)
    student = ks.evaluation.student_classifier(2, 16, width=0.0625)
    ks.evaluation.distill(teacher, student, x, epochs=6, batch_size=16)
    logits = student.predict(x, verbose=0)
    found["distill_agreement"] = float(
        np.mean(np.argmax(logits, -1) == np.argmax(teacher.predict(x, verbose=0), -1))
    )
    found["distill_accuracy_gap"] = float(
        np.mean(np.argmax(logits, -1) == y) - teacher_accuracy
    )

    keras.utils.set_random_seed(seed)
    x, y = separable_problem(seed=seed)
    result = ks.linear_probe(
        identity_encoder(8), (x[:400], y[:400]), (x[400:], y[400:])
    )
    found["probe"] = float(min(result.accuracy, result.train_accuracy))
    print(json.dumps(found))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--child", type=int)
    args = parser.parse_args()
    if args.child is not None:
        return child(args.child)
    values = {name: [] for name in CHECKS}
    for onednn in ("1", "0"):
        for seed in args.seeds:
            env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": onednn}
            out = subprocess.run(
                [sys.executable, __file__, "--child", str(seed)],
                env=env, capture_output=True, text=True, check=True,
            ).stdout  # fmt: skip
            for name, value in json.loads(out.strip().splitlines()[-1]).items():
                values[name].append(value)
    runs = len(args.seeds) * 2
    print(f"{runs} runs: seeds {args.seeds} x oneDNN on/off")
    print("check | test | threshold | min | median | max | margin above threshold")
    for name, (test, threshold, low) in CHECKS.items():
        got = values[name]
        print(
            f"{name} | {test} | {threshold} | {min(got):.3f} | "
            f"{statistics.median(got):.3f} | {max(got):.3f} | {min(got) - low:+.3f}"
        )


if __name__ == "__main__":
    main()
