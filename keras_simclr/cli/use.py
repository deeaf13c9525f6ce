"""`export` and `neighbours`: what users do with a pretrained encoder."""

import os


def export(args):
    from keras_simclr.cli.evaluate import load_model
    from keras_simclr.export import check_output, export_encoder

    check_output(args.output, args.format)  # before loading the model
    model = load_model(args.model)
    try:
        export_encoder(model, args.output, args.format, projections=args.projections)
    except ImportError as error:
        raise ValueError(str(error)) from None
    size = model.augmentation.image_size
    print(
        f"keras-simclr: wrote the encoder ({args.format}) to {args.output}: images "
        f"(B, {size}, {size}, 3) in {tuple(model.augmentation.value_range)} -> h"
    )
    return 0


def neighbours(args):
    import numpy as np

    from keras_simclr import saving, visualize
    from keras_simclr.evaluation.neighbours import nearest_neighbours

    if not os.path.isfile(args.features):
        raise ValueError(f"no features file at {args.features!r} (see `embed`).")
    with np.load(args.features) as saved:
        if "features" not in saved or "paths" not in saved:
            raise ValueError(f"{args.features!r} is not an `embed` output.")
        features, paths = saved["features"], [str(p) for p in saved["paths"]]
        made_by = {
            key: saved[key].item() for key in ("model", "image_size") if key in saved
        }
    broken = np.flatnonzero(~np.isfinite(features).all(axis=1))
    if broken.size:
        names = [paths[index] for index in broken[:5]]
        raise ValueError(
            f"{broken.size} photo(s) of {args.features!r} have NaN or inf "
            f"features ({', '.join(names)}{' ...' if broken.size > 5 else ''}): "
            "embed them again."
        )
    k = min(args.k, len(paths) - 1)
    if k < 1:
        raise ValueError("the features file holds fewer than 2 photos.")
    if args.query:
        queries = [_query_row(args, paths, features, made_by)]
    else:
        rng = np.random.default_rng(args.seed)
        queries = list(rng.choice(len(paths), min(args.random, len(paths)), False))
    saving.check_output_path(args.output, suffix=".png")
    query_features = np.stack(
        [features[q] if isinstance(q, (int, np.integer)) else q for q in queries]
    )
    # A query taken from the database must not find itself.
    own_rows = [int(q) if isinstance(q, (int, np.integer)) else -1 for q in queries]
    indices, similarities = nearest_neighbours(
        features, query_features, k, exclude=own_rows
    )
    query_paths = [paths[q] if q >= 0 else args.query for q in own_rows]
    shown = [*query_paths, *[paths[i] for i in indices.reshape(-1)]]
    missing = sorted({path for path in shown if not _still_there(path)})
    if missing:
        raise ValueError(
            f"{len(missing)} photo(s) of {args.features!r} are no longer at their "
            f"paths ({', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}): "
            "embed the folder again."
        )
    tiles = visualize.photo_tiles(shown, args.tile)
    query_tiles = tiles[: len(queries)]
    neighbour_tiles = tiles[len(queries) :].reshape(len(queries), k, *tiles.shape[1:])
    visualize.neighbours_grid(query_tiles, neighbour_tiles, similarities, args.output)
    for query_path, row_index, row_similarity in zip(
        query_paths, indices, similarities
    ):
        print(f"{query_path}:")
        for index, similarity in zip(row_index, row_similarity):
            print(f"  {similarity:6.3f}  {paths[index]}")
    print(f"keras-simclr: wrote {args.output}")
    return 0


def _still_there(path):
    """A photo's file, or a record's shard, is where `embed` read it."""
    from keras_simclr.datasets import records

    if records.is_record_key(path):
        return os.path.isfile(records.RECORD_KEY.match(path).group(1))
    return os.path.isfile(path)


def _query_row(args, paths, features, made_by):
    """The query's database row, or its features from `--model` (the model
    and image size `embed` recorded, when it did, must match)."""
    from keras_simclr import datasets, evaluation

    query = os.path.abspath(args.query)
    for index, path in enumerate(paths):
        if os.path.abspath(path) == query:
            return index
    if not args.model:
        raise ValueError(
            f"{args.query!r} is not among the embedded photos: pass --model "
            "MODEL.keras to embed it."
        )
    from keras_simclr.cli.evaluate import fingerprint, load_model

    if not os.path.isfile(args.query):
        raise ValueError(f"no photo at --query {args.query!r}.")
    model = load_model(args.model)
    if "model" in made_by and made_by["model"] != fingerprint(model):
        raise ValueError(
            f"{args.features!r} was embedded by another model than {args.model!r}: "
            "its neighbours would be meaningless. Pass the model that ran `embed`, "
            "or embed the photos again with this one."
        )
    size = int(made_by.get("image_size", model.augmentation.image_size))
    images = datasets.image_files([args.query], size, 1, mode="evaluate")
    row = evaluation.encode_images(model, images)  # names a file it skips
    if row.shape[1] != features.shape[1]:
        raise ValueError("the model's features do not match the file's.")
    return row[0]
