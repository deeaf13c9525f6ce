"""The `keras-simclr` command line: pretrain, probe, show-augmentations.

keras-simclr pretrain                       # embedded digits, ~2 min on 2 CPU cores
keras-simclr pretrain --dataset cifar10 --depth 18 --epochs 100
keras-simclr probe simclr.keras --dataset digits
keras-simclr show-augmentations --output views.png
"""

import argparse
import os
import sys
import time

STRATEGIES = ("default", "mirrored", "multi-worker", "tpu")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")


def _positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _positive_float(text):
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def build_parser():
    parser = argparse.ArgumentParser(
        prog="keras-simclr",
        description="SimCLR self-supervised pretraining and evaluation (Keras 3).",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    pretrain = commands.add_parser(
        "pretrain", help="pretrain an encoder, save it, probe it"
    )
    pretrain.add_argument(
        "--dataset",
        default="digits",
        help="digits (embedded, default), cifar10, cifar100, stl10, or an image folder",
    )
    pretrain.add_argument(
        "--image-size",
        type=_positive_int,
        default=None,
        help="view size (default: the dataset's)",
    )
    pretrain.add_argument(
        "--depth", type=int, default=18, choices=(18, 34, 50, 101, 152)
    )
    pretrain.add_argument(
        "--width",
        type=_positive_float,
        default=0.25,
        help="ResNet width multiplier (default 0.25)",
    )
    pretrain.add_argument("--epochs", type=_positive_int, default=12)
    pretrain.add_argument(
        "--batch-size",
        type=_positive_int,
        default=128,
        help="global batch size (images)",
    )
    pretrain.add_argument("--temperature", type=_positive_float, default=0.5)
    pretrain.add_argument(
        "--learning-rate",
        type=_positive_float,
        default=None,
        help="base rate before batch scaling (default 0.3 linear, 0.075 sqrt)",
    )
    pretrain.add_argument("--lr-scaling", choices=("linear", "sqrt"), default="sqrt")
    pretrain.add_argument(
        "--warmup-epochs",
        type=float,
        default=None,
        help="default: 10%% of --epochs (SimCLR: 10 of 100+)",
    )
    pretrain.add_argument("--weight-decay", type=float, default=1e-6)
    pretrain.add_argument(
        "--output", default="simclr.keras", help="where to save the model (.keras)"
    )
    pretrain.add_argument(
        "--resume",
        action="store_true",
        help="continue an interrupted run from its last epoch checkpoint (OUTPUT.backup/)",
    )
    pretrain.add_argument("--strategy", choices=STRATEGIES, default="default")
    pretrain.add_argument("--mixed-precision", choices=PRECISIONS, default="float32")
    pretrain.add_argument(
        "--no-probe", action="store_true", help="skip the final linear probe and kNN"
    )
    pretrain.add_argument("--seed", type=int, default=0)
    pretrain.add_argument("--verbose", type=int, default=1, choices=(0, 1, 2))

    probe = commands.add_parser("probe", help="linear probe and kNN of a saved model")
    probe.add_argument("model", help="a saved SimCLR model (.keras)")
    probe.add_argument("--dataset", default="digits")
    probe.add_argument("--image-size", type=_positive_int, default=None)
    probe.add_argument("--seed", type=int, default=0)

    show = commands.add_parser(
        "show-augmentations", help="write a PNG grid of augmented views"
    )
    show.add_argument("--dataset", default="digits")
    show.add_argument("--image-size", type=_positive_int, default=None)
    show.add_argument("--images", type=_positive_int, default=8)
    show.add_argument("--views", type=_positive_int, default=4)
    show.add_argument("--output", default="augmentations.png")
    show.add_argument("--seed", type=int, default=0)
    return parser


def make_strategy(name):
    import tensorflow as tf

    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi-worker":
        if "TF_CONFIG" not in os.environ:
            raise SystemExit(
                "error: --strategy multi-worker needs the TF_CONFIG environment variable (see docs)."
            )
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "tpu":
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    return tf.distribute.get_strategy()


def _first_images(unlabeled, count):
    import numpy as np

    if isinstance(unlabeled, np.ndarray):
        return unlabeled[:count]
    return next(iter(unlabeled.unbatch().batch(count))).numpy()


def _probe_report(model, splits, label):
    import keras_simclr as ks

    result = ks.linear_probe(model, splits.train, splits.validation)
    knn = ks.knn_accuracy(
        model, splits.train, splits.validation, k=min(200, 20 * splits.num_classes)
    )
    return label, result.accuracy, knn


def _print_table(rows):
    print(f"\n{'encoder':<24} | {'linear probe':>12} | {'kNN':>6}")
    print("-" * 49)
    for label, linear, knn in rows:
        print(f"{label:<24} | {linear:>12.1%} | {knn:>6.1%}")


def save_atomically(model, path):
    """Writes `path` through a temporary file and a rename: never half-written."""
    temporary = f"{path}.tmp-{os.getpid()}.keras"
    model.save(temporary)
    os.replace(temporary, path)


def pretrain(args):
    import keras

    import keras_simclr as ks
    from keras_simclr import datasets

    if not args.output.endswith(".keras"):
        raise SystemExit(f"error: --output must end with .keras, got {args.output!r}")
    keras.utils.set_random_seed(args.seed)
    if args.mixed_precision != "float32":
        keras.mixed_precision.set_global_policy(args.mixed_precision)
    splits = datasets.load(args.dataset, args.image_size, args.batch_size, args.seed)
    image_size = args.image_size or splits.image_size
    if args.batch_size < 2:
        raise SystemExit("error: --batch-size must be >= 2: NT-Xent needs negatives.")
    strategy = make_strategy(args.strategy)
    replicas = strategy.num_replicas_in_sync
    if args.batch_size % replicas:
        raise SystemExit(
            f"error: --batch-size {args.batch_size} is not divisible by the {replicas} replicas."
        )
    if hasattr(splits.unlabeled, "shape"):
        if len(splits.unlabeled) < args.batch_size:
            raise SystemExit(
                f"error: the dataset has {len(splits.unlabeled)} images, fewer than --batch-size {args.batch_size}."
            )
        unlabeled = datasets.to_dataset(
            splits.unlabeled,
            batch_size=args.batch_size,
            shuffle=True,
            drop_remainder=True,
            seed=args.seed,
        )
        steps_per_epoch = len(splits.unlabeled) // args.batch_size
    else:
        unlabeled = splits.unlabeled
        steps_per_epoch = int(unlabeled.cardinality().numpy())
        if steps_per_epoch < 1:
            raise SystemExit(
                "error: the dataset yields no full batch (empty, or unknown size)."
            )
    total_steps = steps_per_epoch * args.epochs
    warmup_epochs = (
        args.warmup_epochs if args.warmup_epochs is not None else 0.1 * args.epochs
    )
    base_rate = args.learning_rate or (0.3 if args.lr_scaling == "linear" else 0.075)
    peak = ks.optimizers.scaled_learning_rate(
        base_rate, args.batch_size, args.lr_scaling
    )

    def build(seed_offset=0):
        encoder = ks.models.ResNetBackbone(
            args.depth,
            args.width,
            cifar_stem=image_size <= 64,
            input_shape=(image_size, image_size, 3),
            synchronized_batch_norm=replicas > 1,
        )
        head = ks.layers.ProjectionHead(128, synchronized_batch_norm=replicas > 1)
        augmentation = ks.simclr_model.default_augmentation(
            image_size, seed=args.seed + seed_offset
        )
        return ks.SimCLRModel(encoder, head, augmentation, temperature=args.temperature)

    with strategy.scope():
        model = build()
        schedule = ks.optimizers.WarmupCosineDecay(
            peak, total_steps, int(warmup_epochs * steps_per_epoch)
        )
        model.compile(
            optimizer=ks.optimizers.LARS(schedule, weight_decay=args.weight_decay)
        )
    backup = f"{args.output}.backup"
    found = ks.callbacks.latest_checkpoint(backup)
    if found and not args.resume:
        raise SystemExit(
            f"error: {backup}/ holds the checkpoint of an interrupted run (after "
            f"epoch {found[0]}); pass --resume to continue it, or delete the folder."
        )
    if args.resume:
        print(
            f"keras-simclr: resuming after epoch {found[0]} from {found[1]}"
            if found
            else f"keras-simclr: --resume: no checkpoint in {backup}/, starting afresh"
        )
    callbacks = [
        ks.callbacks.NaNGuard(),
        ks.callbacks.AtomicBackupAndRestore(backup, delete_checkpoint=True),
    ]
    params = sum(int(w.numpy().size) for w in model.encoder.trainable_weights)
    print(
        f"keras-simclr: pretraining ResNet-{args.depth} x{args.width} ({params / 1e6:.2f} M "
        f"parameters) on {args.dataset} at {image_size}px, {args.epochs} epochs x "
        f"{steps_per_epoch} steps, batch {args.batch_size}, {replicas} replica(s), "
        f"peak LARS rate {peak:.3f}"
    )
    start = time.time()
    history = model.fit(
        unlabeled,
        epochs=args.epochs,
        callbacks=callbacks,
        verbose=args.verbose,
        shuffle=False,  # the dataset shuffles itself; Keras warns otherwise
    )
    losses = history.history.get("loss", [])
    if losses and not all(map(lambda value: value == value, losses)):
        raise SystemExit(
            "error: the loss became NaN; training stopped. Lower --learning-rate, "
            "or train in float32 instead of --mixed-precision."
        )
    save_atomically(model, args.output)
    print(f"keras-simclr: trained in {time.time() - start:.0f} s; saved {args.output}")
    if args.no_probe or splits.train is None:
        return 0
    random_model = build(seed_offset=1)
    rows = [
        _probe_report(model, splits, "SimCLR pretrained"),
        _probe_report(random_model, splits, "random initialisation"),
    ]
    _print_table(rows)
    return 0


def probe(args):
    import keras

    import keras_simclr as ks  # noqa: F401  (registers the classes)
    from keras_simclr import datasets

    if not os.path.isfile(args.model):
        raise SystemExit(f"error: no model file at {args.model!r}")
    try:
        model = keras.models.load_model(args.model)
    except Exception as error:
        raise SystemExit(
            f"error: {args.model!r} is not a readable keras-simclr model ({error})."
        ) from error
    splits = datasets.load(
        args.dataset, args.image_size or model.augmentation.image_size, seed=args.seed
    )
    if splits.train is None:
        raise SystemExit("error: the probe needs labelled data (class sub-folders).")
    _print_table([_probe_report(model, splits, os.path.basename(args.model))])
    return 0


def show_augmentations(args):
    import keras_simclr as ks
    from keras_simclr import datasets

    splits = datasets.load(args.dataset, args.image_size, seed=args.seed)
    image_size = args.image_size or splits.image_size
    augmentation = ks.simclr_model.default_augmentation(image_size, seed=args.seed)
    ks.visualize.augmentation_grid(
        _first_images(splits.unlabeled, args.images),
        augmentation,
        args.output,
        views=args.views,
    )
    print(f"keras-simclr: wrote {args.output}")
    return 0


def main(argv=None):
    args = build_parser().parse_args(argv)
    import keras_simclr  # noqa: F401  (sets the TensorFlow backend first)

    handlers = {
        "pretrain": pretrain,
        "probe": probe,
        "show-augmentations": show_augmentations,
    }
    return handlers[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
