"""Peak memory and step time against batch size: one pass vs gradient caching.

    python benchmarks/large_batch.py [--backend tensorflow|jax|torch]
        [--depth 18] [--width 0.25] [--image-size 32]
        [--batches 256 512 1024 2048 4096] [--chunk-size 256] [--steps 3]
        [--one-pass-up-to 4096]

Each measurement runs in a fresh process (peak memory is per process): a
`SimCLRModel` of the given ResNet (default head, LARS, augmentation in the
step) trains `--steps` steps (after one compiling step) on random uint8
images, one pass (`chunk_size=None`) and in chunks (`chunk_size=C`). It
prints the peak resident memory of the process (host RAM: on CPU the
activations live there), the peak device memory where a GPU is used, and
the median step time. `--one-pass-up-to` skips one-pass runs above a batch
(those that would not fit); a run that dies for lack of memory prints OOM.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def measure(args):
    """One configuration in this process: prints a JSON line."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import resource

    import keras
    import numpy as np
    import tensorflow as tf
    from timing import StepTimer

    import keras_simclr as ks  # noqa: I001  (first: oneDNN before TensorFlow loads)

    if args.mixed_precision:
        keras.mixed_precision.set_global_policy(args.mixed_precision)
    size = args.image_size
    encoder = ks.models.ResNetBackbone(
        args.depth, args.width, cifar_stem=size < 64, input_shape=(size, size, 3)
    )
    model = ks.SimCLRModel(encoder, temperature=0.5, chunk_size=args.chunk or None)
    model.compile(optimizer=ks.optimizers.LARS(0.3))
    batch, steps = args.batch, args.steps + 1
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (batch, size, size, 3), dtype="uint8")
    dataset = tf.data.Dataset.from_tensors(image).repeat(steps)
    idle = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # GiB
    timer = StepTimer()
    model.fit(dataset, epochs=1, verbose=0, callbacks=[timer])
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(
        json.dumps(
            {
                "peak_gib": peak,
                "before_fit_gib": idle,
                "device_gib": device_peak_gib(),
                "step_s": statistics.median(timer.times[1:]),
            }
        )
    )


def device_peak_gib():
    """Peak accelerator memory of this process, or None on CPU."""
    import keras

    backend = keras.backend.backend()
    try:
        if backend == "tensorflow":
            import tensorflow as tf

            if not tf.config.list_physical_devices("GPU"):
                return None
            return tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**30
        if backend == "jax":
            import jax

            device = jax.devices()[0]
            if device.platform == "cpu":
                return None
            return device.memory_stats()["peak_bytes_in_use"] / 2**30
        if backend == "torch":
            import torch

            if not torch.cuda.is_available():
                return None
            return torch.cuda.max_memory_allocated() / 2**30
    except (KeyError, RuntimeError, ValueError):
        return None
    return None


def run_one(args, batch, chunk):
    command = [sys.executable, os.path.abspath(__file__), "--measure"]
    command += ["--backend", args.backend, "--depth", str(args.depth)]
    command += ["--width", str(args.width), "--image-size", str(args.image_size)]
    command += ["--batch", str(batch), "--chunk", str(chunk or 0)]
    command += ["--steps", str(args.steps)]
    if args.mixed_precision:
        command += ["--mixed-precision", args.mixed_precision]
    environment = dict(os.environ, KERAS_BACKEND=args.backend)
    environment["PYTHONPATH"] = os.pathsep.join(
        [HERE, environment.get("PYTHONPATH", "")]
    )
    result = subprocess.run(command, env=environment, capture_output=True, text=True)
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    if result.returncode != 0 or not lines:
        # Killed by the kernel's OOM killer (-9) or a backend's own OOM error.
        memory = result.returncode in (-9, 137) or "memory" in result.stderr.lower()
        if not memory:
            sys.stderr.write(result.stderr[-3000:])
        return "OOM" if memory else "failed"
    return json.loads(lines[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--backend", default=os.environ.get("KERAS_BACKEND", "tensorflow")
    )
    parser.add_argument("--depth", type=int, default=18)
    parser.add_argument("--width", type=float, default=0.25)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument(
        "--batches", type=int, nargs="+", default=[256, 512, 1024, 2048, 4096]
    )
    parser.add_argument("--chunk-size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--one-pass-up-to", type=int, default=None)
    parser.add_argument("--mixed-precision", default=None)
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--chunk", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        return measure(args)
    rows = []
    for batch in args.batches:
        for chunk in (None, args.chunk_size):
            if chunk is None and args.one_pass_up_to and batch > args.one_pass_up_to:
                rows.append((batch, "one pass", "skipped"))
                continue
            if chunk is not None and chunk >= batch:
                continue  # one chunk is one pass
            result = run_one(args, batch, chunk)
            label = "one pass" if chunk is None else f"chunks of {chunk}"
            rows.append((batch, label, result))
            print(f"  measured batch {batch}, {label}: {result}", flush=True)
    print(
        f"\nSimCLR step memory, {args.backend} backend, ResNet-{args.depth} "
        f"x{args.width}, {args.image_size} px, {os.cpu_count()} CPU cores, "
        f"policy {args.mixed_precision or 'float32'}; peak RSS of the process "
        f"(host), device peak where a GPU trains, median of {args.steps} steps"
    )
    print(
        f"{'batch':>6} | {'views':>6} | {'mode':>15} | {'peak RSS GiB':>12} | "
        f"{'fit adds GiB':>12} | {'device GiB':>10} | {'step s':>7} | "
        f"{'vs one pass':>11}"
    )
    print("-" * 100)
    one_pass = {}
    for batch, label, result in rows:
        if not isinstance(result, dict):
            print(f"{batch:>6} | {2 * batch:>6} | {label:>15} | {result:>12} |")
            continue
        if label == "one pass":
            one_pass[batch] = result
        base = one_pass.get(batch)
        ratio = (
            f"{result['peak_gib'] / base['peak_gib']:.2f}x mem "
            f"{result['step_s'] / base['step_s']:.2f}x time"
            if base and label != "one pass"
            else ""
        )
        device = result["device_gib"]
        print(
            f"{batch:>6} | {2 * batch:>6} | {label:>15} | {result['peak_gib']:>12.2f} | "
            f"{result['peak_gib'] - result['before_fit_gib']:>12.2f} | "
            f"{'-' if device is None else f'{device:.2f}':>10} | "
            f"{result['step_s']:>7.2f} | {ratio}"
        )


if __name__ == "__main__":
    main()
