"""`pretrain`: the command's arguments → `keras_simclr.workflow.pretrain`."""

from keras_simclr.cli.evaluate import report


def pretrain(args):
    from keras_simclr import workflow

    run = workflow.pretrain(
        args.dataset,
        output=args.output,
        image_size=args.image_size,
        depth=args.depth,
        width=args.width,
        epochs=args.epochs,
        batch_size=args.batch_size,
        temperature=args.temperature,
        learning_rate=args.learning_rate,
        lr_scaling=args.lr_scaling,
        warmup_epochs=args.warmup_epochs,
        weight_decay=args.weight_decay,
        crop_area=args.crop_area,
        jitter_strength=args.jitter_strength,
        blur_rate=args.blur_rate,
        resume=args.resume,
        strategy=args.strategy,
        input_service=args.input_service,
        input_timeout=args.input_timeout if args.input_service else None,
        tensorboard=args.tensorboard,
        mixed_precision=args.mixed_precision,
        probe=not args.no_probe,
        seed=args.seed,
        verbose=args.verbose,
    )
    if run.scores and run.writer:  # one process of a run prints
        report(run.scores)
    return 0
