"""keras-simclr against lightly's SimCLR at equal wall-clock, on this machine.

    pip install -e ".[compare]"          # torch, torchvision, lightly (optional)
    python benchmarks/compare_lightly.py --data cifar10.npz [--minutes 10] [--seeds 3]
    # lightly in another environment (its PyTorch need not sit beside TF):
    python benchmarks/compare_lightly.py --data cifar10.npz --torch-python venv/bin/python

The same recipe for both, one system after the other, each in a fresh process:

- data: `--images` images (default 10,000) of a `.npz` with `x` (N, 32, 32, 3)
  uint8 and `y` (N,) labels (e.g. CIFAR-10's training split), drawn with
  `--seed`; `--test-images` (default 5,000) other images for the probe's test;
- encoder: ResNet-18 with the CIFAR stem (3x3 stride-1 first convolution, no
  max pooling) at `--width` (default 0.25: 16..128 channels; keras-simclr's
  `ResNetBackbone`, lightly's `ResNetGenerator`), 2-layer 128-d projection
  head (each library's own);
- augmentation: the paper's CIFAR-10 one (crop area 0.08-1, flip, colour
  jitter strength 0.5 with p 0.8, grayscale p 0.2, no blur);
- NT-Xent, temperature 0.5, batch `--batch-size` (default 256) images;
- LARS, 0.075 x sqrt(batch), momentum 0.9, weight decay 1e-6, BatchNorm and
  biases excluded, 10% linear warm-up then cosine;
- budget: `--minutes` of training wall-clock per system, everything included
  (tracing, data-loader start). Each system plans its schedule from the
  median step of a 12-step trial run (not counted): warm-up and cosine over
  the steps that fit, ending at the end of the first step past the budget;
- probe: one scikit-learn pipeline for both (standardise, then logistic
  regression, `max_iter` 1000) on the frozen encoder's features h of the
  unaugmented training images, scored on the test images.

Printed per system: epochs and steps done, wall seconds, views/s over the
whole run, views/s of the median step, and the probe's test accuracy.
Seeds: `--seed` for the split, the initialisation and the augmentation; the
two libraries' random streams differ, so `--seeds N` repeats the comparison
with seeds `seed .. seed + N - 1` and prints each system's mean, standard
deviation and range of the probe accuracy and views/s.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

TRIAL_STEPS = 12


def split(path, images, test_images, seed):
    with np.load(path) as data:
        x, y = data["x"], data["y"]
    order = np.random.default_rng(seed).permutation(len(x))
    train, test = order[:images], order[images : images + test_images]
    if len(test) < test_images:
        raise ValueError(f"{path} has {len(x)} images: fewer than requested")
    return x[train], y[train], x[test], y[test]


def plan_steps(budget_s, step_s):
    return max(1, int(budget_s / step_s))


# --------------------------------------------------------------- keras-simclr
def keras_worker(args, data):
    import keras
    import tensorflow as tf

    import keras_simclr as ks  # any order: the start-up file turned oneDNN on

    x, x_test = data["x"], data["x_test"]
    steps_per_epoch = len(x) // args.batch_size

    class Clock(keras.callbacks.Callback):
        def __init__(self, steps, deadline=None):
            super().__init__()
            self.planned, self.deadline, self.steps, self.times = steps, deadline, 0, []

        def on_train_batch_begin(self, batch, logs=None):
            self.begin = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            self.steps += 1
            self.times.append(time.perf_counter() - self.begin)
            late = self.deadline and time.perf_counter() >= self.deadline
            if late or self.steps >= self.planned:
                self.model.stop_training = True

    def run(steps, deadline=None):
        keras.utils.set_random_seed(args.seed)
        dataset = (
            tf.data.Dataset.from_tensor_slices(x)
            .shuffle(len(x), seed=args.seed)
            .batch(args.batch_size, drop_remainder=True)
            .prefetch(tf.data.AUTOTUNE)
        )
        model = ks.recipes.simclr_model(
            18, args.width, image_size=32, temperature=0.5, seed=args.seed
        )
        model.compile(
            optimizer=ks.recipes.pretraining_optimizer(args.batch_size, steps)
        )
        clock = Clock(steps, deadline)
        epochs = -(-steps // steps_per_epoch)
        model.fit(dataset, epochs=epochs, verbose=0, callbacks=[clock], shuffle=False)
        return model, clock

    _, trial = run(TRIAL_STEPS)
    steps = plan_steps(args.minutes * 60, float(np.median(trial.times[2:])))
    start = time.perf_counter()
    model, clock = run(steps, start + args.minutes * 60)
    wall = time.perf_counter() - start
    features = model.predict(x, batch_size=512, verbose=0)
    features_test = model.predict(x_test, batch_size=512, verbose=0)
    return features, features_test, clock.steps, wall, clock.times, steps


# -------------------------------------------------------------------- lightly
def lightly_worker(args, data):
    import torch
    import torchvision.transforms as T
    from lightly.loss import NTXentLoss
    from lightly.models import ResNetGenerator
    from lightly.models.modules import SimCLRProjectionHead
    from lightly.transforms import SimCLRTransform
    from lightly.utils.lars import LARS
    from lightly.utils.scheduler import CosineWarmupScheduler
    from PIL import Image

    x, x_test = data["x"], data["x_test"]
    normalize = {"mean": [0.4914, 0.4822, 0.4465], "std": [0.2470, 0.2435, 0.2616]}

    class Views(torch.utils.data.Dataset):
        transform = SimCLRTransform(
            input_size=32, cj_strength=0.5, gaussian_blur=0.0, normalize=normalize
        )

        def __len__(self):
            return len(x)

        def __getitem__(self, index):
            return self.transform(Image.fromarray(x[index]))

    class SimCLR(torch.nn.Module):
        def __init__(self):
            super().__init__()
            resnet = ResNetGenerator("resnet-18", width=args.width)
            self.backbone = torch.nn.Sequential(
                *list(resnet.children())[:-1], torch.nn.AdaptiveAvgPool2d(1)
            )
            features = int(512 * args.width)
            self.head = SimCLRProjectionHead(features, features, 128)

        def forward(self, images):
            return self.head(self.backbone(images).flatten(start_dim=1))

    def run(steps, deadline=None):
        torch.manual_seed(args.seed)
        model = SimCLR()
        decay = [p for p in model.parameters() if p.ndim > 1]
        no_decay = [p for p in model.parameters() if p.ndim <= 1]
        optimizer = LARS(
            [
                {"params": decay, "weight_decay": 1e-6},
                {"params": no_decay, "weight_decay": 0.0},
            ],
            lr=0.075 * args.batch_size**0.5,
            momentum=0.9,
        )
        scheduler = CosineWarmupScheduler(
            optimizer, warmup_epochs=max(1, steps // 10), max_epochs=steps
        )
        loader = torch.utils.data.DataLoader(
            Views(),
            batch_size=args.batch_size,
            shuffle=True,
            drop_last=True,
            num_workers=args.workers,
            persistent_workers=args.workers > 0,
            generator=torch.Generator().manual_seed(args.seed),
        )
        criterion = NTXentLoss(temperature=0.5)
        times, done = [], 0
        model.train()
        while True:
            begin = time.perf_counter()
            for views_a, views_b in loader:
                # Both views in one forward pass, as keras-simclr does.
                z = model(torch.cat([views_a, views_b]))
                loss = criterion(*z.chunk(2))
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                scheduler.step()
                done += 1
                now = time.perf_counter()
                times.append(now - begin)
                if done >= steps or (deadline and now >= deadline):
                    return model, done, times
                begin = time.perf_counter()

    _, _, trial = run(TRIAL_STEPS)
    planned = plan_steps(args.minutes * 60, float(np.median(trial[2:])))
    start = time.perf_counter()
    model, steps, times = run(planned, start + args.minutes * 60)
    wall = time.perf_counter() - start

    evaluation = T.Compose([T.ToTensor(), T.Normalize(**normalize)])

    @torch.no_grad()
    def features(images):
        model.eval()
        out = []
        for start_index in range(0, len(images), 512):
            batch = torch.stack(
                [
                    evaluation(Image.fromarray(image))
                    for image in images[start_index : start_index + 512]
                ]
            )
            out.append(model.backbone(batch).flatten(start_dim=1).numpy())
        return np.concatenate(out)

    return features(x), features(x_test), steps, wall, times, planned


# ---------------------------------------------------------------------- driver
def probe_accuracy(features, labels, features_test, labels_test):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    probe.fit(features, labels)
    return float(probe.score(features_test, labels_test))


def worker(args):
    data = np.load(args.split)
    run = keras_worker if args.worker == "keras-simclr" else lightly_worker
    features, features_test, steps, wall, times, planned = run(args, data)
    np.savez(args.out, features=features, features_test=features_test)
    with open(args.out + ".json", "w") as file:
        json.dump(
            {"steps": steps, "wall_s": wall, "steps_planned": planned, "times": times},
            file,
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help=".npz with x and y")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--test-images", type=int, default=5_000)
    parser.add_argument("--width", type=float, default=0.25)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0, help="the first seed")
    parser.add_argument("--seeds", type=int, default=1, help="seeds to run")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers")
    parser.add_argument(
        "--torch-python", default=sys.executable, help="interpreter with lightly"
    )
    parser.add_argument("--systems", nargs="+", default=["keras-simclr", "lightly"])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--split", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)

    rows = []
    for seed in range(args.seed, args.seed + args.seeds):
        rows += run_seed(args, seed)
    print(
        f"\nSimCLR at equal wall-clock ({args.minutes:g} min each), ResNet-18 "
        f"CIFAR stem x{args.width:g}, batch {args.batch_size}, {args.images} "
        f"training / {args.test_images} test images, {os.cpu_count()} CPU cores"
    )
    print(
        f"{'system':<13} | {'seed':>4} | {'steps':>5} | {'epochs':>6} | {'wall s':>6} | "
        f"{'views/s run':>11} | {'views/s step':>12} | {'probe acc':>9}"
    )
    print("-" * 89)
    for system, seed, steps, epochs, wall, run_rate, step_rate, accuracy in rows:
        print(
            f"{system:<13} | {seed:>4} | {steps:>5} | {epochs:>6.1f} | {wall:>6.0f} | "
            f"{run_rate:>11.1f} | {step_rate:>12.1f} | {accuracy:>9.1%}"
        )
    if args.seeds > 1:
        print(f"\nover {args.seeds} seeds: mean ± standard deviation (min-max)")
        for system in args.systems:
            mine = [row for row in rows if row[0] == system]
            accuracy = np.array([row[7] for row in mine]) * 100
            rate = np.array([row[5] for row in mine])
            print(
                f"{system:<13} probe {accuracy.mean():.1f} ± {accuracy.std(ddof=1):.1f}% "
                f"({accuracy.min():.1f}-{accuracy.max():.1f}), views/s "
                f"{rate.mean():.1f} ± {rate.std(ddof=1):.1f}"
            )


def run_seed(args, seed):
    """One seed: each system in a fresh process, then the same probe."""
    x, y, x_test, y_test = split(args.data, args.images, args.test_images, seed)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        split_path = os.path.join(folder, "split.npz")
        np.savez(split_path, x=x, x_test=x_test)
        for system in args.systems:
            out = os.path.join(folder, f"{system}.npz")
            python = sys.executable if system == "keras-simclr" else args.torch_python
            command = [python, os.path.abspath(__file__), "--data", args.data]
            command += ["--worker", system, "--split", split_path, "--out", out]
            for flag in ("minutes", "width", "batch_size", "workers"):
                command += [f"--{flag.replace('_', '-')}", str(getattr(args, flag))]
            command += ["--seed", str(seed)]
            environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
            subprocess.run(command, check=True, env=environment)
            with open(out + ".json") as file:
                stats = json.load(file)
            features = np.load(out)
            accuracy = probe_accuracy(
                features["features"], y, features["features_test"], y_test
            )
            views = 2 * args.batch_size
            rows.append(
                (
                    system,
                    seed,
                    stats["steps"],
                    stats["steps"] / (args.images // args.batch_size),
                    stats["wall_s"],
                    views * stats["steps"] / stats["wall_s"],
                    views / float(np.median(stats["times"])),
                    accuracy,
                )
            )
            print(f"  measured {system} seed {seed}: {rows[-1][2:]}", flush=True)
    return rows


if __name__ == "__main__":
    main()
