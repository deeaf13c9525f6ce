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


def embed(args):
    import numpy as np

    from keras_simclr import backend, datasets, distribute, evaluation, saving

    # First: a multi-process JAX run must be joined before any computation.
    # Every process embeds every file (in order); one writes the file.
    writer = backend.current().is_writer(distribute.make_strategy(args.strategy))
    if writer:  # before any work: the file written is exactly the one named
        saving.check_output_path(args.output, suffix=".npz")
    model = load_model(args.model)
    images = datasets.image_files(
        args.dataset,
        args.image_size or model.augmentation.image_size,
        args.batch_size,
        mode="evaluate",
    )
    features = evaluation.encode_images(model, images)
    skipped = set(images.skipped_files())
    paths = [path for path in images.file_paths if path not in skipped]
    if len(paths) != len(features):  # never write rows under the wrong names
        raise ValueError(
            f"{len(features)} feature rows for {len(paths)} files read: the rows "
            "cannot be matched to their files; nothing was written."
        )
    if not writer:
        return 0
    size = args.image_size or model.augmentation.image_size
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
