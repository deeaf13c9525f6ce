"""`make-tfrecords` and `show-augmentations`."""

import os


def make_tfrecords(args):
    from keras_simclr import datasets

    if not os.path.isdir(args.folder):
        raise ValueError(f"no image folder at {args.folder!r}")
    files = datasets.write_tfrecords(
        args.folder, args.output_dir, args.shards, overwrite=args.overwrite
    )
    # Each file left out was named once as it was met (the library's warning).
    print(f"keras-simclr: wrote {len(files)} TFRecord shard(s) to {args.output_dir}")
    return 0


def show_augmentations(args):
    from keras_simclr import datasets, recipes, visualize

    splits = datasets.load(args.dataset, args.image_size, seed=args.seed)
    augmentation = recipes.augmentation(args.image_size or splits.image_size, args.seed)
    images = datasets.first_images(splits.unlabeled, args.images)
    visualize.augmentation_grid(images, augmentation, args.output, views=args.views)
    print(f"keras-simclr: wrote {args.output}")
    return 0
