"""The `keras-simclr` command line: parse, build from `recipes`, fit, report.

keras-simclr pretrain                       # embedded digits, ~2 min on 2 CPU cores
keras-simclr pretrain --dataset cifar10 --depth 18 --epochs 100
keras-simclr probe simclr.keras --dataset digits
keras-simclr show-augmentations --output views.png
"""

import argparse
import os
import sys
import time

# Literal copies (checked by tests/test_cli.py): parsing must not import TF.
STRATEGIES = ("default", "mirrored", "multi-worker", "tpu")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")


def _positive(kind):
    def parse(text):
        value = kind(text)
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {text}")
        return value

    return parse


def _pair(text):
    low, _, high = text.partition(",")
    try:
        return float(low), float(high)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LOW,HIGH, got {text}") from None


def build_parser():
    parser = argparse.ArgumentParser(
        prog="keras-simclr",
        description="SimCLR self-supervised pretraining and evaluation (Keras 3).",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    dataset_help = "digits (embedded, default), cifar10, cifar100, stl10 or a folder"

    run = commands.add_parser("pretrain", help="pretrain, save, probe an encoder")
    add = run.add_argument
    add("--dataset", default="digits", help=dataset_help)
    add("--image-size", type=_positive(int), help="view side (default: dataset's)")
    add("--depth", type=int, default=18, choices=(18, 34, 50, 101, 152))
    add("--width", type=_positive(float), default=0.25, help="ResNet width")
    add("--epochs", type=_positive(int), default=12)
    add("--batch-size", type=_positive(int), default=128, help="global, in images")
    add("--temperature", type=_positive(float), help="default 0.5 < 64 px, else 0.1")
    add("--learning-rate", type=_positive(float), help="base rate before scaling")
    add("--lr-scaling", choices=("linear", "sqrt"), default="sqrt")
    add("--warmup-epochs", type=float, help="default: 10%% of --epochs")
    add("--weight-decay", type=float, default=1e-6)
    add("--crop-area", type=_pair, default=(0.08, 1.0), help="LOW,HIGH")
    add("--jitter-strength", type=float, help="default 0.5 < 64 px, else 1.0")
    add("--blur-rate", type=float, help="default 0 < 64 px, else 0.5")
    add("--output", default="simclr.keras", help="where to save the model (.keras)")
    add("--resume", action="store_true", help="continue from OUTPUT.backup/")
    add("--strategy", choices=STRATEGIES, default="default")
    add("--mixed-precision", choices=PRECISIONS, default="float32")
    add("--no-probe", action="store_true", help="skip the final probe")
    add("--seed", type=int, default=0)
    add("--verbose", type=int, default=1, choices=(0, 1, 2))

    probe = commands.add_parser("probe", help="linear probe and kNN of a saved model")
    probe.add_argument("model", help="a saved SimCLR model (.keras)")
    probe.add_argument("--dataset", default="digits", help=dataset_help)
    probe.add_argument("--image-size", type=_positive(int))
    probe.add_argument("--seed", type=int, default=0)

    show = commands.add_parser("show-augmentations", help="PNG grid of views")
    show.add_argument("--dataset", default="digits", help=dataset_help)
    show.add_argument("--image-size", type=_positive(int))
    show.add_argument("--images", type=_positive(int), default=8)
    show.add_argument("--views", type=_positive(int), default=4)
    show.add_argument("--output", default="augmentations.png")
    show.add_argument("--seed", type=int, default=0)
    return parser


def _report(rows):
    print(f"\n{'encoder':<24} | {'linear probe':>12} | {'kNN':>6}")
    print("-" * 49)
    for label, scores in rows:
        print(f"{label:<24} | {scores.linear:>12.1%} | {scores.knn:>6.1%}")


def _probe(model, splits):
    from keras_simclr.evaluation import evaluate_representation

    k = min(200, 20 * splits.num_classes)
    return evaluate_representation(model, splits.train, splits.validation, k=k)


def pretrain(args):
    import keras

    from keras_simclr import callbacks, datasets, distribute, recipes, saving

    if not args.output.endswith(".keras"):
        raise ValueError(f"--output must end with .keras, got {args.output!r}")
    keras.utils.set_random_seed(args.seed)
    if args.mixed_precision != "float32":
        keras.mixed_precision.set_global_policy(args.mixed_precision)
    strategy = distribute.make_strategy(args.strategy)
    replicas = strategy.num_replicas_in_sync
    if args.batch_size < 2 or args.batch_size % replicas:
        raise ValueError(
            f"--batch-size {args.batch_size} must be >= 2 (NT-Xent needs "
            f"negatives) and divisible by the {replicas} replicas."
        )
    splits = datasets.load(args.dataset, args.image_size, args.batch_size, args.seed)
    image_size = args.image_size or splits.image_size
    unlabeled, steps_per_epoch = datasets.pretraining_batches(
        splits, args.batch_size, args.seed
    )
    total_steps = steps_per_epoch * args.epochs
    warmup = None if args.warmup_epochs is None else args.warmup_epochs
    warmup_steps = None if warmup is None else int(warmup * steps_per_epoch)
    overrides = {"crop_area": args.crop_area}
    if args.jitter_strength is not None:
        overrides["jitter_strength"] = args.jitter_strength
    if args.blur_rate is not None:
        overrides["blur_rate"] = args.blur_rate

    def build(seed):
        return recipes.simclr_model(
            args.depth,
            args.width,
            image_size,
            temperature=args.temperature,
            synchronized_batch_norm=replicas > 1,
            seed=seed,
            **overrides,
        )

    with strategy.scope():
        model = build(args.seed)
        optimizer = recipes.pretraining_optimizer(
            args.batch_size,
            total_steps,
            warmup_steps,
            args.learning_rate,
            args.lr_scaling,
            args.weight_decay,
        )
        model.compile(optimizer=optimizer)
    backup = f"{args.output}.backup"
    found = callbacks.latest_checkpoint(backup)
    if found and not args.resume:
        raise ValueError(
            f"{backup}/ holds the checkpoint of an interrupted run (after epoch "
            f"{found[0]}); pass --resume to continue it, or delete the folder."
        )
    if args.resume:
        print(
            f"keras-simclr: resuming after epoch {found[0]} from {found[1]}"
            if found
            else f"keras-simclr: --resume: no checkpoint in {backup}/, starting afresh"
        )
    params = sum(int(w.numpy().size) for w in model.encoder.trainable_weights)
    print(
        f"keras-simclr: pretraining ResNet-{args.depth} x{args.width} "
        f"({params / 1e6:.2f} M parameters) on {args.dataset} at {image_size}px, "
        f"{args.epochs} epochs x {steps_per_epoch} steps, batch {args.batch_size}, "
        f"{replicas} replica(s), temperature {model.temperature}"
    )
    start = time.time()
    model.fit(
        unlabeled,
        epochs=args.epochs,
        callbacks=[
            callbacks.NaNGuard(),
            callbacks.AtomicBackupAndRestore(backup, delete_checkpoint=True),
        ],
        verbose=args.verbose,
        shuffle=False,  # the dataset shuffles itself; Keras warns otherwise
    )
    saving.save_model(model, args.output)
    print(f"keras-simclr: trained in {time.time() - start:.0f} s; saved {args.output}")
    if args.no_probe:
        return 0
    if splits.train is None:
        print("keras-simclr: no labels (no class sub-folders): probe skipped")
        return 0
    rows = [("SimCLR pretrained", _probe(model, splits))]
    rows.append(("random initialisation", _probe(build(args.seed + 1), splits)))
    _report(rows)
    return 0


def probe(args):
    import keras

    from keras_simclr import datasets

    if not os.path.isfile(args.model):
        raise ValueError(f"no model file at {args.model!r}")
    try:
        model = keras.models.load_model(args.model)
    except Exception as error:
        raise ValueError(
            f"{args.model!r} is not a readable keras-simclr model ({error})."
        ) from error
    if not callable(getattr(model, "feature_extractor", None)):
        raise ValueError(
            f"{args.model!r} holds a {type(model).__name__}, not a SimCLRModel."
        )
    size = args.image_size or model.augmentation.image_size
    splits = datasets.load(args.dataset, size, seed=args.seed)
    if splits.train is None:
        raise ValueError("the probe needs labelled data (class sub-folders).")
    _report([(os.path.basename(args.model), _probe(model, splits))])
    return 0


def show_augmentations(args):
    from keras_simclr import datasets, recipes, visualize

    splits = datasets.load(args.dataset, args.image_size, seed=args.seed)
    augmentation = recipes.augmentation(args.image_size or splits.image_size, args.seed)
    images = datasets.first_images(splits.unlabeled, args.images)
    visualize.augmentation_grid(images, augmentation, args.output, views=args.views)
    print(f"keras-simclr: wrote {args.output}")
    return 0


def main(argv=None):
    args = build_parser().parse_args(argv)
    # The command line is a program: it may quieten TensorFlow's C++ logs.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras_simclr  # noqa: F401  (sets the TensorFlow backend first)

    handlers = {
        "pretrain": pretrain,
        "probe": probe,
        "show-augmentations": show_augmentations,
    }
    try:
        return handlers[args.command](args)
    except (ValueError, FileNotFoundError, FloatingPointError) as error:
        print(f"keras-simclr: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
