"""`probe` and `embed`: evaluate a saved model; the probe table."""

import os


def report(rows):
    print(f"\n{'encoder':<24} | {'linear probe':>12} | {'kNN':>6}")
    print("-" * 49)
    for label, scores in rows:
        print(f"{label:<24} | {scores.linear:>12.1%} | {scores.knn:>6.1%}")


def load_model(path):
    import keras

    import keras_simclr  # noqa: F401  (registers the classes)

    if not os.path.isfile(path):
        raise ValueError(f"no model file at {path!r}")
    try:
        model = keras.models.load_model(path)
    except Exception as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise ValueError(
            f"{path!r} is not a readable keras-simclr model ({type(error).__name__}: "
            f"{first_line})."
        ) from None
    if not isinstance(model, keras_simclr.SimCLRModel):
        raise ValueError(f"{path!r} holds a {type(model).__name__}, not a SimCLRModel.")
    return model


def fingerprint(model):
    """A short hash of the encoder's weights: which model made a features
    file (`embed` records it; `neighbours --model` compares it)."""
    import hashlib

    import numpy as np

    digest = hashlib.sha256()
    for weight in model.encoder.weights:
        digest.update(np.ascontiguousarray(np.asarray(weight)).tobytes())
    return digest.hexdigest()[:16]


def probe(args):
    from keras_simclr import datasets

    model = load_model(args.model)
    size = args.image_size or model.augmentation.image_size
    splits = datasets.load(args.dataset, size, seed=args.seed)
    if splits.train is None:
        raise ValueError("the probe needs labelled data (class sub-folders).")
    from keras_simclr.workflow import probe_scores

    report([(os.path.basename(args.model), probe_scores(model, splits))])
    return 0


def distill(args):
    """A student (`student_classifier`) distilled from a saved classifier
    on the dataset's images (their labels, where it has some, only score it).

    Checkpointed as `pretrain` is (`OUTPUT.backup/`, every
    `--checkpoint-every` steps and at a SIGTERM or SIGINT), with the same
    resume policy (`resuming.resume_checkpoint`)."""
    import shutil

    import keras
    import numpy as np

    from keras_simclr import callbacks, datasets, evaluation, resuming, saving
    from keras_simclr.settings import DistillSettings

    saving.check_output_path(args.output)
    if not os.path.isfile(args.teacher):
        raise ValueError(f"no teacher model at {args.teacher!r}")
    teacher = keras.models.load_model(args.teacher)
    classes = teacher.output_shape[-1]
    size = getattr(teacher.layers[0], "image_size", None)
    if not isinstance(classes, int) or size is None:
        raise ValueError(
            f"{args.teacher!r} is not a classifier of images to logits from "
            "`fine_tune` (its first layer sets the image size)."
        )
    # What `pretrain --dataset` reads, the same way: arrays, a photo folder
    # or TFRecords (their crops cut from the original files).
    splits = datasets.load(args.dataset, size, args.batch_size, seed=args.seed)
    backup = resuming.backup_folder(args.output)
    settings = DistillSettings.from_arguments(args)  # the resumed ones: checked
    resuming.resume_checkpoint(backup, settings.resumed(), args.resume)
    saver = callbacks.PreemptionCheckpoint(
        backup, every_steps=args.checkpoint_every, delete_checkpoint=False
    )
    keras.utils.set_random_seed(args.seed)
    student = evaluation.student_classifier(classes, size, args.depth, args.width)
    evaluation.distill(
        teacher,
        student,
        splits.unlabeled,
        temperature=args.temperature,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        seed=args.seed,
        verbose=1,
        callbacks=[saver],
    )
    resuming.raise_if_preempted(saver)
    saving.save_model(student, args.output)
    shutil.rmtree(backup, ignore_errors=True)  # once the student is saved
    print(f"keras-simclr: saved the student to {args.output}")
    if splits.validation is not None:
        rows = []
        validation = evaluation.features.as_labelled_dataset(splits.validation)
        labels = np.concatenate([y for _, y in validation.as_numpy_iterator()])
        images = validation.map(lambda batch, _: batch)
        for name, model in (("teacher", teacher), ("student", student)):
            logits = evaluation.encode_images(model, images)  # one compiled step
            rows.append(f"{name} {np.mean(np.argmax(logits, -1) == labels):.1%}")
        print("keras-simclr: validation accuracy: " + ", ".join(rows))
    return 0


def embed(args):
    import numpy as np

    from keras_simclr import backend, datasets, distribute, evaluation, saving

    # First: a multi-process JAX run must be joined before any computation.
    # Every process embeds every file (in order); one writes the file.
    writer = backend.current().is_writer(distribute.make_strategy(args.strategy))
    if writer:  # before any work: the file written is exactly the one named
        saving.check_output_path(args.output, suffix=".npz")
    model = load_model(args.model)
    size = args.image_size or model.augmentation.image_size
    # What `pretrain --dataset` reads: a photo folder (or glob), or the
    # TFRecords `make-tfrecords` wrote (rows named by `record_key`).
    shards = datasets.catalog.tfrecord_files(args.dataset)
    if shards:
        images = datasets.tfrecord_images(
            shards, size, args.batch_size, mode="evaluate", label_key=None
        )
        names = datasets.records.record_keys(shards)
    else:
        images = datasets.image_files(
            args.dataset, size, args.batch_size, mode="evaluate"
        )
        names = images.file_paths
    features = evaluation.encode_images(model, images)
    skipped = set(images.skipped_files())
    paths = [path for path in names if path not in skipped]
    if len(paths) != len(features):  # never write rows under the wrong names
        raise ValueError(
            f"{len(features)} feature rows for {len(paths)} files read: the rows "
            "cannot be matched to their files; nothing was written."
        )
    if not writer:
        return 0
    np.savez(
        args.output,
        features=features,
        paths=np.array(paths),
        model=np.array(fingerprint(model)),
        image_size=np.array(size),
    )
    print(
        f"keras-simclr: wrote {features.shape} features of {len(paths)} files to {args.output}"
    )
    if skipped:
        print(
            f"keras-simclr: skipped {len(skipped)} undecodable file(s): {sorted(skipped)}"
        )
    return 0
