"""The `keras-simclr` command line: parse, build from `recipes`, fit, report.

keras-simclr pretrain                       # embedded digits, ~2 min on 2 CPU cores
keras-simclr pretrain --dataset PHOTOS/ --image-size 96 --depth 50
keras-simclr probe simclr.keras --dataset digits
keras-simclr embed simclr.keras --dataset PHOTOS/ --output features.npz
keras-simclr make-tfrecords PHOTOS/ records/ --shards 64
keras-simclr show-augmentations --output views.png

Each command parses its arguments and calls the library: `pretrain` is
`keras_simclr.workflow.pretrain`.
"""

import argparse
import os
import sys

# Parsing must not import TensorFlow: the choices come from a module that
# loads nothing.
from keras_simclr.choices import EXPORT_FORMATS, STRATEGIES
from keras_simclr.settings import (
    DATASET_HELP,
    DistillSettings,
    add_arguments,
    positive,
)


def build_parser():
    parser = argparse.ArgumentParser(
        prog="keras-simclr",
        description="SimCLR self-supervised pretraining and evaluation (Keras 3).",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    dataset_help = DATASET_HELP

    # Generated from `PretrainingSettings`: each flag's default, type and
    # help are written once, on its field.
    add_arguments(
        commands.add_parser("pretrain", help="pretrain, save, probe an encoder")
    )

    probe = commands.add_parser("probe", help="linear probe and kNN of a saved model")
    probe.add_argument("model", help="a saved SimCLR model (.keras)")
    probe.add_argument("--dataset", default="digits", help=dataset_help)
    probe.add_argument("--image-size", type=positive(int))
    probe.add_argument("--seed", type=int, default=0)

    embed = commands.add_parser("embed", help="write features h of image files")
    embed.add_argument("model", help="a saved SimCLR model (.keras)")
    embed.add_argument("--dataset", required=True, help="folder, glob or file")
    embed.add_argument("--output", default="features.npz")
    embed.add_argument("--image-size", type=positive(int))
    embed.add_argument("--batch-size", type=positive(int), default=128)
    embed.add_argument(
        "--strategy",
        choices=STRATEGIES,
        default="default",
        help="multi-worker: run on every process of a run; one writes",
    )

    records = commands.add_parser("make-tfrecords", help="pack a folder as shards")
    records.add_argument("folder", help="images, in class sub-folders for labels")
    records.add_argument("output_dir")
    records.add_argument("--shards", type=positive(int), default=8)
    records.add_argument(
        "--overwrite", action="store_true", help="replace the shards of a former run"
    )

    export = commands.add_parser("export", help="write the encoder for serving")
    export.add_argument("model", help="a saved SimCLR model (.keras)")
    export.add_argument(
        "--format",
        required=True,
        choices=EXPORT_FORMATS,
    )
    export.add_argument("--output", required=True, help="file or folder to write")
    export.add_argument(
        "--projections", action="store_true", help="also output z (not keras_hub)"
    )

    near = commands.add_parser(
        "neighbours", help="PNG grid of a photo's nearest photos (cosine of h)"
    )
    near.add_argument("features", help="an `embed` output (.npz)")
    near.add_argument("--query", help="a photo (default: --random photos)")
    near.add_argument("--random", type=positive(int), default=4, help="queries")
    near.add_argument("--k", type=positive(int), default=8)
    near.add_argument("--model", help="to embed a --query not in FEATURES")
    near.add_argument("--output", default="neighbours.png")
    near.add_argument("--tile", type=positive(int), default=96, help="pixels")
    near.add_argument("--seed", type=int, default=0)

    student = commands.add_parser(
        "distill", help="SimCLRv2 stage 3: a student from a fine-tuned teacher"
    )
    add_arguments(student, DistillSettings)  # generated, as pretrain's

    service = commands.add_parser(
        "input-service", help="a tf.data service dispatcher for input workers"
    )
    service.add_argument("--port", type=positive(int), required=True)
    service.add_argument(
        "--worker-timeout",
        type=positive(float),
        default=10.0,
        help="seconds before a silent worker is dropped",
    )
    worker = commands.add_parser(
        "input-worker", help="decode photos for the trainers (tf.data service)"
    )
    worker.add_argument("--dispatcher", required=True, help="HOST:PORT")
    worker.add_argument("--port", type=int, default=0, help="0: a free port")
    worker.add_argument(
        "--host", help="the name trainers reach this host by (default: its name)"
    )

    show = commands.add_parser("show-augmentations", help="PNG grid of views")
    show.add_argument("--dataset", default="digits", help=dataset_help)
    show.add_argument("--image-size", type=positive(int))
    show.add_argument("--images", type=positive(int), default=8)
    show.add_argument("--views", type=positive(int), default=4)
    show.add_argument("--output", default="augmentations.png")
    show.add_argument("--seed", type=int, default=0)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    # The command line is a program: it may quieten TensorFlow's C++ logs.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras_simclr

    keras_simclr.load_all()  # the console script defers it past parsing
    from keras_simclr.cli import evaluate, files, pretrain, service, use

    handlers = {
        "pretrain": pretrain.pretrain,
        "probe": evaluate.probe,
        "embed": evaluate.embed,
        "make-tfrecords": files.make_tfrecords,
        "export": use.export,
        "neighbours": use.neighbours,
        "show-augmentations": files.show_augmentations,
        "distill": evaluate.distill,
        "input-service": service.input_service,
        "input-worker": service.input_worker,
    }
    try:
        return handlers[args.command](args)
    except keras_simclr.callbacks.Preempted as stopped:
        # Schedulers read the status: 143 (SIGTERM) / 130 (SIGINT), as a
        # shell reports a process those signals ended; Slurm requeues on it.
        print(f"keras-simclr: {stopped}", file=sys.stderr, flush=True)
        return stopped.exit_status
    except (ValueError, FileNotFoundError, FloatingPointError) as error:
        print(f"keras-simclr: error: {error}", file=sys.stderr)
        return 1
    except keras_simclr.distribute.LostProcessError as error:
        print(f"keras-simclr: error: {error}", file=sys.stderr, flush=True)
        sys.stdout.flush()
        # Now, without JAX's shutdown barrier: with a peer gone it would
        # abort this process with a C++ stack trace after the message.
        os._exit(1)
