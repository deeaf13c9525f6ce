"""SimCLR training-step throughput (views/s) on this machine.

    python benchmarks/train_step.py [--batch-size 256] [--steps 6] [--widths 1 0.25]
                                    [--backend tensorflow|jax|torch]

ResNet-18 with the CIFAR stem on 32×32 images, default projection head, LARS,
augmentation inside the step; each step processes 2 × batch views. Reports the
median over steady-state steps (the first, tracing, steps are dropped), with
and without XLA (`jit_compile`). Pass `--mixed-precision mixed_bfloat16` on
accelerators. `--backend` picks the Keras backend (JAX always compiles the
step with XLA; PyTorch never does here).
"""

import argparse
import os
import statistics
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
if "--backend" in sys.argv:  # before Keras loads
    os.environ["KERAS_BACKEND"] = sys.argv[sys.argv.index("--backend") + 1]

import keras_simclr as ks  # noqa: E402, I001  (first: oneDNN before TensorFlow loads)

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from timing import StepTimer  # noqa: E402  (benchmarks/timing.py)


def views_per_second(width, batch_size, steps, jit_compile, warmup=2):
    keras.backend.clear_session()
    encoder = ks.models.ResNetBackbone(
        18, width, cifar_stem=True, input_shape=(32, 32, 3)
    )
    model = ks.SimCLRModel(encoder, temperature=0.5)
    model.compile(optimizer=ks.optimizers.LARS(1.0), jit_compile=jit_compile)
    images = np.random.default_rng(0).integers(
        0, 256, (batch_size * (steps + warmup), 32, 32, 3), dtype="uint8"
    )
    dataset = tf.data.Dataset.from_tensor_slices(images).batch(batch_size).prefetch(2)
    timer = StepTimer()
    model.fit(dataset, epochs=1, verbose=0, callbacks=[timer])
    steady = timer.times[warmup:]
    return 2 * batch_size / statistics.median(steady)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--widths", type=float, nargs="+", default=[1.0, 0.25])
    parser.add_argument("--mixed-precision", default=None)
    parser.add_argument("--xla", choices=("both", "off", "on"), default="both")
    parser.add_argument("--backend", default=keras.backend.backend())
    args = parser.parse_args()
    if args.backend == "jax":
        args.xla = "on"  # a JAX step is always compiled
    elif args.backend == "torch":
        args.xla = "off"
    if args.mixed_precision:
        keras.mixed_precision.set_global_policy(args.mixed_precision)
    devices = [d.device_type for d in tf.config.list_physical_devices()]
    rows = []
    for width in args.widths:
        for jit_compile in {"both": (False, True), "off": (False,), "on": (True,)}[
            args.xla
        ]:
            rate = views_per_second(width, args.batch_size, args.steps, jit_compile)
            rows.append((width, jit_compile, rate))
            print(
                f"  measured width {width} XLA {jit_compile}: {rate:.1f} views/s",
                flush=True,
            )
    print(
        f"\nSimCLR train step, {keras.backend.backend()} backend, ResNet-18 CIFAR stem, batch {args.batch_size} ({2 * args.batch_size} views), devices {sorted(set(devices))}, {os.cpu_count()} CPU cores, policy {keras.mixed_precision.global_policy().name}"
    )
    print(f"{'width':>6} | {'XLA':>5} | {'views/s':>9}")
    print("-" * 27)
    for width, jit_compile, rate in rows:
        print(f"{width:>6} | {str(jit_compile):>5} | {rate:>9.1f}")


if __name__ == "__main__":
    main()
