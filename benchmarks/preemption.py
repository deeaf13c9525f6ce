"""What a preemption costs: the time from SIGTERM to exit, and a checkpoint's.

    python benchmarks/preemption.py [--backend tensorflow|jax]
        [--configs 18:0.0625:16:8 50:1:224:8] [--steps 3]

For each `depth:width:image_size:batch`, a fresh process builds a
`SimCLRModel` (the paper's recipe, LARS) and fits random uint8 images with
`ks.callbacks.PreemptionCheckpoint(every_steps=1)` — every step writes a
checkpoint, so its cost is timed `--steps` times. After those steps this
script sends the process SIGTERM (in the middle of a step) and times the
exit: the rest of the step, the checkpoint, and the process's teardown. It
prints the step time, the checkpoint's size and write time (median), and
SIGTERM → exit, with the exit status. The user's path: the same callback
`keras-simclr pretrain` installs, on the local disk of this machine.
"""

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def child(args):
    """The training process: prints `ready` lines and a JSON result."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tempfile

    import numpy as np
    from timing import StepTimer  # benchmarks/timing.py

    import keras_simclr as ks

    depth, width, size, batch = args.config.split(":")
    depth, size, batch, width = int(depth), int(size), int(batch), float(width)
    model = ks.recipes.simclr_model(depth, width, size)
    model.compile(optimizer=ks.recipes.pretraining_optimizer(batch, 1000))
    images = np.random.default_rng(0).integers(0, 256, (batch * 50, size, size, 3))
    images = images.astype("uint8")
    folder = tempfile.mkdtemp()
    saver = ks.callbacks.PreemptionCheckpoint(os.path.join(folder, "backup"), 1)
    writes = []
    save = saver.save

    def timed_save(epoch, step):
        start = time.perf_counter()
        path = save(epoch, step)
        writes.append(time.perf_counter() - start)
        return path

    saver.save = timed_save

    timer = StepTimer(lambda count: print(f"step {count}", flush=True))
    model.fit(images, batch_size=batch, epochs=1, verbose=0, callbacks=[timer, saver])
    steps = timer.times
    size_mb = (
        sum(
            os.path.getsize(os.path.join(root, name))
            for root, _, names in os.walk(folder)
            for name in names
        )
        / 2**20
    )
    print(
        json.dumps(
            {
                "step": statistics.median(steps[1:] or steps),
                "write": statistics.median(writes[:-1] or writes),
                "size_mb": size_mb,
                "status": saver.exit_status,
            }
        ),
        flush=True,
    )
    sys.exit(saver.exit_status)


def measure(config, backend, steps):
    env = {**os.environ, "KERAS_BACKEND": backend}
    process = subprocess.Popen(
        [sys.executable, __file__, "--child", config],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    sent = None
    result = {}
    for line in process.stdout:
        if line.startswith(f"step {steps}") and sent is None:
            process.send_signal(signal.SIGTERM)
            sent = time.perf_counter()
        elif line.startswith("{"):
            result = json.loads(line)
    process.wait()
    result["exit_s"] = time.perf_counter() - sent if sent else float("nan")
    result["returncode"] = process.returncode
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--backend", default=os.environ.get("KERAS_BACKEND", "tensorflow")
    )
    parser.add_argument(
        "--configs", nargs="+", default=["18:0.0625:16:8", "50:1:224:8"]
    )
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--child")
    args = parser.parse_args()
    if args.child:
        args.config = args.child
        return child(args)
    print(
        f"backend {args.backend}; SIGTERM after {args.steps} steps (each checkpointed)"
    )
    header = (
        "ResNet depth:width:px:batch",
        "step s",
        "ckpt MB",
        "ckpt write s",
        "SIGTERM->exit s",
        "exit status",
    )
    print(" | ".join(header))
    for config in args.configs:
        r = measure(config, args.backend, args.steps)
        print(
            f"{config} | {r.get('step', float('nan')):.3f} | {r.get('size_mb', 0):.1f} | "
            f"{r.get('write', float('nan')):.3f} | {r['exit_s']:.2f} | {r['returncode']}",
            flush=True,
        )


if __name__ == "__main__":
    main()
