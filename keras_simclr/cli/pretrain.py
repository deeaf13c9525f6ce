"""`pretrain`: data → recipe (`keras_simclr.recipes`) → fit → save → probe."""

import time
import warnings

from keras_simclr.cli.evaluate import probe_scores, report


def pretrain(args):
    from keras_simclr import saving

    # Before any work: an output that cannot be written fails now, not after
    # training; a second run on the same output is refused.
    saving.check_output_path(args.output)
    with saving.output_lock(args.output):
        return _pretrain(args)


def _pretrain(args):
    import shutil

    import keras
    import numpy as np

    from keras_simclr import backend, callbacks, datasets, distribute, recipes, saving

    if args.seed < 0:
        raise ValueError(f"--seed must be >= 0, got {args.seed}")
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
    splits = datasets.load(
        args.dataset, args.image_size, args.batch_size, args.seed, args.crop_area
    )
    if not args.no_probe and splits.train is not None and splits.num_classes < 2:
        raise ValueError(
            f"the end-of-run probe needs at least 2 classes; {args.dataset} has "
            f"{splits.num_classes}. Add class sub-folders, or pass --no-probe."
        )
    image_size = args.image_size or splits.image_size
    unlabeled, steps_per_epoch = datasets.pretraining_batches(
        splits, args.batch_size, args.seed
    )
    total_steps = steps_per_epoch * args.epochs
    warmup_steps = (
        None
        if args.warmup_epochs is None
        else int(args.warmup_epochs * steps_per_epoch)
    )
    overrides = {"crop_area": args.crop_area, "jitter_strength": args.jitter_strength}
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if args.blur_rate is not None:
        overrides["blur_rate"] = args.blur_rate

    def build(seed):
        return recipes.simclr_model(
            args.depth,
            args.width,
            image_size,
            temperature=args.temperature,
            # tf.distribute splits BatchNorm's batch over the replicas; on
            # JAX the step holds the global batch (global statistics).
            synchronized_batch_norm=replicas > 1 and backend.is_tensorflow(),
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
    params = sum(int(np.prod(w.shape)) for w in model.encoder.trainable_weights)
    print(
        f"keras-simclr: pretraining ResNet-{args.depth} x{args.width} "
        f"({params / 1e6:.2f} M parameters) on {args.dataset} at {image_size}px, "
        f"{args.epochs} epochs x {steps_per_epoch} steps, batch {args.batch_size}, "
        f"{replicas} replica(s), temperature {model.temperature}, "
        f"{backend.name()} backend"
    )
    start = time.time()
    with warnings.catch_warnings():
        # The command owns its process. A photo reader's size is unknown
        # until its first pass ends (files may be skipped), and Keras says
        # so at the end of epoch 1 with "Your input ran out of data": noise here.
        warnings.filterwarnings("ignore", message="Your input ran out of data")
        model.fit(
            unlabeled,
            epochs=args.epochs,
            callbacks=[
                callbacks.NaNGuard(),
                # The checkpoint is removed only once the model is saved (below).
                callbacks.AtomicBackupAndRestore(backup, delete_checkpoint=False),
            ],
            verbose=args.verbose,
            shuffle=False,  # the dataset shuffles itself; Keras warns otherwise
        )
    saving.save_model(model, args.output)
    shutil.rmtree(backup, ignore_errors=True)
    print(f"keras-simclr: trained in {time.time() - start:.0f} s; saved {args.output}")
    if args.no_probe:
        return 0
    if splits.train is None:
        print("keras-simclr: no labels (no class sub-folders): probe skipped")
        return 0
    rows = [("SimCLR pretrained", probe_scores(model, splits))]
    rows.append(("random initialisation", probe_scores(build(args.seed + 1), splits)))
    report(rows)
    return 0
