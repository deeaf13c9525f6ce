"""`tfds_images` on a tensorflow-datasets dataset built here (no download)."""

import numpy as np
import pytest

from keras_simclr import datasets

tfds = pytest.importorskip("tensorflow_datasets")


class KerasSimclrTinyPhotos(tfds.core.GeneratorBasedBuilder):
    """Six JPEG photos of different sizes, two classes."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self,
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=(None, None, 3)),
                    "label": tfds.features.ClassLabel(num_classes=2),
                }
            ),
        )

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples()}

    def _generate_examples(self):
        rng = np.random.default_rng(0)
        for index in range(6):
            photo = rng.integers(0, 256, (40 + 7 * index, 30 + 5 * index, 3), "uint8")
            yield index, {"image": photo, "label": index % 2}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("tfds"))
    KerasSimclrTinyPhotos(data_dir=folder).download_and_prepare()
    return folder


def test_pretrain_pairs_are_cut_from_the_encoded_originals(data_dir):
    pairs = datasets.tfds_images(
        "keras_simclr_tiny_photos", "train", 16, 2, data_dir=data_dir, seed=0
    )
    batches = list(pairs)
    assert len(batches) == 3
    (views_a, views_b), labels = batches[0]
    assert isinstance(batches[0][0], datasets.ViewPair)
    assert views_a.shape == views_b.shape == (2, 16, 16, 3)
    assert views_a.dtype == "uint8" and labels.shape == (2,)
    assert not np.array_equal(views_a.numpy(), views_b.numpy())  # two crops
    assert pairs.skipped_files() == []


def test_evaluate_mode_reads_every_record_in_order(data_dir):
    images = datasets.tfds_images(
        "keras_simclr_tiny_photos",
        "train",
        16,
        4,
        mode="evaluate",
        data_dir=data_dir,
        label_key=None,
    )
    shapes = [tuple(batch.shape) for batch in images]
    assert shapes == [(4, 16, 16, 3), (2, 16, 16, 3)]
