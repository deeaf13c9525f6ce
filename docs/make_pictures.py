"""Draws the pictures of the README and the docs home with the library itself.

    python docs/make_pictures.py [--model simclr.keras]

Without `--model` it first runs the main job (`keras-simclr pretrain` on
scikit-learn's digits, about a minute on 2 cores), which writes the run's
report beside the model. Writes, in docs/images/:

- augmentations.jpg: crops of scikit-learn's two sample photos (no
  download), each followed by SimCLR views (`visualize.augmentation_grid`);
- digits_map.png: t-SNE of h of the held-out digits, one colour per class
  (`visualize.embedding_map`);
- report_curves.png: the report's loss, kNN accuracy, collapse
  (`projection_std`) and learning-rate panels, as the report drew them
  (`report.read_panels`; with `--model`, none);
- digits_neighbours.png: the report's neighbours panel: four held-out
  digits and their 6 nearest held-out digits by cosine similarity of h,
  with the similarity bars (with `--model`, drawn from that model the same
  way: `evaluation.nearest_neighbours`, `visualize.neighbours_grid`).
"""

import argparse
import os
import tempfile

import numpy as np

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "images")


def sample_photo_crops(size=160, count=4):
    from sklearn.datasets import load_sample_images

    photos = load_sample_images().images  # china.jpg, flower.jpg: 427 x 640
    rng = np.random.default_rng(3)
    crops = []
    for index in range(count):
        photo = photos[index % len(photos)]
        top = rng.integers(0, photo.shape[0] - 2 * size)
        left = rng.integers(0, photo.shape[1] - 2 * size)
        crops.append(photo[top : top + 2 * size, left : left + 2 * size])
    return np.stack(crops)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a pretrained digits model (.keras)")
    args = parser.parse_args()
    import keras
    import tensorflow as tf

    import keras_simclr as ks
    from keras_simclr import cli, datasets, visualize

    os.makedirs(HERE, exist_ok=True)
    augmentation = ks.layers.SimCLRAugmentation(96, blur_rate=0.5, seed=0)
    scratch = os.path.join(tempfile.mkdtemp(), "augmentations.png")
    grid = visualize.augmentation_grid(sample_photo_crops(), augmentation, scratch)
    # Photos: a JPEG is a fifth of the PNG's size.
    with open(os.path.join(HERE, "augmentations.jpg"), "wb") as file:
        file.write(tf.io.encode_jpeg(grid, quality=85).numpy())
    path = args.model
    panels = {}
    if path is None:
        path = os.path.join(tempfile.mkdtemp(), "simclr.keras")
        assert cli.main(["pretrain", "--output", path]) == 0
        panels = ks.report.read_panels(path.removesuffix(".keras") + ".report.html")
        curves = [
            panels[name]
            for name in ("loss", "knn_accuracy", "projection_std", "learning_rate")
        ]
        white = np.full((curves[0].shape[0], 8, 3), 255, "uint8")
        rows = [
            np.concatenate([curves[0], white, curves[1]], axis=1),
            np.concatenate([curves[2], white, curves[3]], axis=1),
        ]
        gap = np.full((8, rows[0].shape[1], 3), 255, "uint8")
        figure = np.concatenate([rows[0], gap, rows[1]])
        tf.io.write_file(
            os.path.join(HERE, "report_curves.png"), tf.io.encode_png(figure)
        )
        tf.io.write_file(
            os.path.join(HERE, "digits_neighbours.png"),
            tf.io.encode_png(panels["neighbours"]),
        )
    model = keras.models.load_model(path)
    splits = datasets.digits(image_size=model.augmentation.image_size)
    images, labels = splits.validation
    visualize.embedding_map(
        model,
        (images, labels),
        os.path.join(HERE, "digits_map.png"),
        method="tsne",
        size=360,
    )
    if panels:
        print(f"wrote {HERE} (neighbours and curves from the run's report)")
        return
    features = ks.evaluation.encode_images(
        model, datasets.to_dataset(images, batch_size=256)
    )
    queries = np.random.default_rng(0).choice(len(images), 4, replace=False)
    indices, similarities = ks.evaluation.nearest_neighbours(
        features, features[queries], k=7
    )
    indices, similarities = indices[:, 1:], similarities[:, 1:]  # not itself

    def tiles(x):
        return np.kron(x, np.ones((1, 2, 2, 1), "uint8"))  # 32 -> 64 px

    visualize.neighbours_grid(
        tiles(images[queries]),
        np.stack([tiles(images[row]) for row in indices]),
        similarities,
        os.path.join(HERE, "digits_neighbours.png"),
    )
    same = (labels[indices] == labels[queries][:, None]).mean()
    print(f"wrote {HERE}: neighbours of the same class: {same:.0%}")


if __name__ == "__main__":
    main()
