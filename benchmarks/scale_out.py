"""Beyond one process: throughput per process, and the trainer's CPU with
the input service.

    python benchmarks/scale_out.py [--backends tensorflow jax] [--photos 256]
        [--image-size 96] [--batch-size 32] [--steps 20]

For each backend, `fit` on pairs cut from a folder of photo-like JPEGs
(long side mostly 300-600 px, some to 2,000; `gpu_train.write_photos`):

- "1 process": one trainer process, the photos decoded in it;
- "2 processes": the same global batch over two processes of one run
  (`--strategy multi-worker`: Keras's variables on JAX, `TF_CONFIG` on
  TensorFlow), each decoding its share of the files: images/s per process
  and for the run;
- "input service": one trainer, the photos decoded by one `input-worker`
  process (`keras-simclr input-service` + `input-worker`, tf.data service).

Each row gives images/s (median over the steady steps) and the trainer
process's CPU seconds per batch over the steady steps (user + system,
`resource.getrusage`; compiling left out), which drops when decoding moves
off the trainer. On one machine every
process shares its cores: the rows show how the work is split, not how it
scales on separate hosts (see docs/benchmarks.md).
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

from processes import environment, free_port, json_results, start_run

HERE = os.path.dirname(os.path.abspath(__file__))


def trainer(args):
    """One trainer process: fit, then one JSON line of its figures."""
    import keras

    import keras_simclr as ks

    class BatchEnds(keras.callbacks.Callback):
        """Times between batch ends: the step and the wait for its input."""

        ends, cpu = [], []

        def on_train_batch_end(self, batch, logs=None):
            self.ends.append(time.perf_counter())
            usage = resource.getrusage(resource.RUSAGE_SELF)
            self.cpu.append(usage.ru_utime + usage.ru_stime)

    strategy = ks.distribute.make_strategy(args.strategy)  # first (JAX)
    processes, _ = ks.backend.current().process_share()
    keras.utils.set_random_seed(0)
    with strategy.scope():
        model = ks.recipes.simclr_model(18, 0.25, image_size=args.image_size)
        model.compile(optimizer=ks.optimizers.LARS(0.1))
    reader = ks.datasets.image_files(
        args.folder,
        args.image_size,
        args.batch_size // processes,
        input_service=args.input_service,
    )
    data = ks.datasets.pretraining_data(
        reader, batch_size=args.batch_size, steps_per_epoch=args.steps
    )
    timer = BatchEnds()
    model.fit(data.dataset.repeat(), epochs=1, steps_per_epoch=args.steps,
              verbose=0, callbacks=[timer])  # fmt: skip
    steady = [b - a for a, b in zip(timer.ends, timer.ends[1:])][args.warmup :]
    # The steady steps' CPU (compiling and tracing left out).
    seconds = timer.cpu[-1] - timer.cpu[args.warmup]
    print(json.dumps({
        "images_per_s": (args.batch_size // processes) / statistics.median(steady),
        "cpu_per_batch": seconds / (len(timer.cpu) - 1 - args.warmup),
    }), flush=True)  # fmt: skip


def run_trainers(args, backend, processes=1, input_service=None):
    command = [sys.executable, __file__, "--as-trainer", args.folder,
               "--image-size", str(args.image_size), "--batch-size",
               str(args.batch_size), "--steps", str(args.steps)]  # fmt: skip
    if processes > 1:
        command += ["--strategy", "multi-worker"]
    if input_service:
        command += ["--input-service", input_service]
    return json_results(start_run(command, backend, processes))


def with_input_service(args, backend):
    """A dispatcher and one input worker in their own processes."""
    port = free_port()
    cli = [sys.executable, "-m", "keras_simclr.cli"]
    helpers = [subprocess.Popen(
        cli + ["input-service", "--port", str(port)], env=environment(backend),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )]  # fmt: skip
    time.sleep(3)
    helpers.append(subprocess.Popen(
        cli + ["input-worker", "--dispatcher", f"localhost:{port}", "--host",
               "localhost"], env=environment(backend),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    ))  # fmt: skip
    try:
        return run_trainers(args, backend, input_service=f"grpc://localhost:{port}")
    finally:
        for helper in helpers:
            helper.kill()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--as-trainer", dest="folder_of_trainer", default=None)
    parser.add_argument("--backends", nargs="+", default=["tensorflow", "jax"])
    parser.add_argument("--photos", type=int, default=256)
    parser.add_argument("--image-size", type=int, default=96)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--strategy", default="default")
    parser.add_argument("--input-service", default=None)
    args = parser.parse_args()
    if args.folder_of_trainer:
        args.folder = args.folder_of_trainer
        return trainer(args)
    sys.path.insert(0, HERE)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from gpu_train import write_photos

    rows = []
    with tempfile.TemporaryDirectory() as folder:
        write_photos(folder, args.photos)
        args.folder = folder
        for backend in args.backends:
            (alone,) = run_trainers(args, backend)
            pair = run_trainers(args, backend, processes=2)
            (served,) = with_input_service(args, backend)
            rows += [
                (backend, "1 process", alone["images_per_s"], alone["images_per_s"],
                 alone["cpu_per_batch"]),
                (backend, "2 processes",
                 statistics.mean(result["images_per_s"] for result in pair),
                 sum(result["images_per_s"] for result in pair),
                 statistics.mean(result["cpu_per_batch"] for result in pair)),
                (backend, "input service", served["images_per_s"],
                 served["images_per_s"], served["cpu_per_batch"]),
            ]  # fmt: skip
    print(
        f"\nfit on {args.photos} photo-like JPEGs, ResNet-18 x0.25, "
        f"{args.image_size} px, global batch {args.batch_size}, {args.steps} steps "
        f"({args.warmup} dropped), {os.cpu_count()} CPU cores"
    )
    print(f"{'backend':<10} | {'set-up':<13} | {'images/s per process':>20} | "
          f"{'images/s, run':>13} | {'trainer CPU s/batch':>19}")  # fmt: skip
    print("-" * 88)
    for backend, setup, per_process, run, cpu in rows:
        print(f"{backend:<10} | {setup:<13} | {per_process:>20.1f} | {run:>13.1f} | "
              f"{cpu:>19.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
