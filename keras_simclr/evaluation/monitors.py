"""Evaluation during training: a kNN accuracy in `fit`'s logs
(`KNNMonitor`) and the features for TensorBoard's projector
(`EmbeddingProjector`). Both are `ks.callbacks` names too."""

import os

import keras

from keras_simclr import backend
from keras_simclr.checkpoints import stopped_by_signal
from keras_simclr.evaluation.knn import knn_accuracy
from keras_simclr.evaluation.projector import labelled_sample, write_projector


class KNNMonitor(keras.callbacks.Callback):
    """Adds `knn_accuracy` (a weighted kNN on the frozen features h) to
    `fit`'s logs every `every` epochs.

    What self-supervised runs watch (solo-learn and lightly do the same):
    whether the representation is getting useful. It is
    `evaluation.knn_accuracy(model, train_data, validation_data, k)`,
    computed at the end of the epoch on a labelled subset (a few thousand
    images keep it cheap) and written into the epoch's logs, so `History`,
    TensorBoard and the other callbacks after it see it.

    Args:
        train_data: the labelled memory bank: `(images, labels)` arrays or a
            dataset of `(images, labels)` batches.
        validation_data: the labelled queries, the same forms.
        every: int, epochs between two measures. Defaults to 1.
        k: neighbours (at most the memory bank's size). Defaults to 200.

    Examples:
        >>> import numpy as np
        >>> monitor = KNNMonitor((np.zeros((4, 8, 8, 3)), np.arange(4)),
        ...                      (np.zeros((2, 8, 8, 3)), np.arange(2)), every=2)
        >>> logs = {}
        >>> monitor.on_epoch_end(0, logs)  # epoch 1 of every 2: not measured
        >>> logs
        {}
    """

    def __init__(self, train_data, validation_data, every=1, k=200):
        super().__init__()
        if int(every) != every or every < 1:
            raise ValueError(f"`every` must be a positive int. Received: {every!r}")
        self.train_data = train_data
        self.validation_data = validation_data
        self.every = int(every)
        self.k = int(k)

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every or logs is None or stopped_by_signal(self.model):
            return  # (a run stopped by a signal has seconds to save, not to probe)
        logs["knn_accuracy"] = knn_accuracy(  # k at most the bank's size
            self.model, self.train_data, self.validation_data, k=self.k
        )


class EmbeddingProjector(keras.callbacks.Callback):
    """Writes the features h of a labelled sample for TensorBoard's
    embedding projector when training ends (and every `every` epochs).

    Keras 3's `TensorBoard` callback has no `embeddings_freq`; this writes
    the projector's files (`evaluation.projector.write_projector`:
    features, labels, a sprite of the images) into `log_dir`, the folder
    given to `keras.callbacks.TensorBoard`, so `tensorboard --logdir
    LOG_DIR` shows them in its Projector tab. Every process computes the
    features (a collective in a multi-process run); the writing process
    (`is_writer`) writes.

    Args:
        data: `(images, labels)` or a dataset of such batches (e.g. the
            validation split).
        log_dir: the TensorBoard log folder.
        count: images shown at most. Defaults to 500.
        every: None (at the end only), or int epochs between two writes.

    Examples:
        >>> import os, tempfile, numpy as np
        >>> import keras_simclr as ks
        >>> model = ks.recipes.simclr_model(18, 0.0625, image_size=16)
        >>> images = np.random.randint(0, 256, (6, 16, 16, 3), dtype="uint8")
        >>> projector = EmbeddingProjector((images, np.arange(6) % 2), tempfile.mkdtemp())
        >>> projector.set_model(model)
        >>> projector.on_train_end()
        >>> sorted(os.listdir(projector.log_dir))
        ['features.tsv', 'metadata.tsv', 'projector_config.pbtxt', 'sprite.png']
    """

    def __init__(self, data, log_dir, count=500, every=None):
        super().__init__()
        if every is not None and (int(every) != every or every < 1):
            raise ValueError(f"`every` must be a positive int. Received: {every!r}")
        self.data = data
        self.log_dir = os.fspath(log_dir)
        self.count = int(count)
        self.every = every

    def on_epoch_end(self, epoch, logs=None):
        if (
            self.every
            and (epoch + 1) % self.every == 0
            and not stopped_by_signal(self.model)
        ):
            self.write()

    def on_train_end(self, logs=None):
        if not stopped_by_signal(self.model):
            self.write()

    def write(self):
        """Computes the sample's features now and writes the files."""
        _, labels, features, tiles = labelled_sample(self.model, self.data, self.count)
        strategy = getattr(self.model, "distribute_strategy", None)
        if backend.current().is_writer(strategy):
            write_projector(self.log_dir, features, labels, tiles)


__all__ = ["EmbeddingProjector", "KNNMonitor"]
