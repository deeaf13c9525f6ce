"""Base of the random augmentation layers: a seed whose state is saved."""

import keras


class RandomLayer(keras.layers.Layer):
    """A layer that draws from its own `keras.random.SeedGenerator`.

    The generator's state is saved with the layer's weights (Keras does not
    save seed states by default), so a model restored from a `.keras` file or a
    `BackupAndRestore` checkpoint continues with the same augmentation draws
    as the run it was saved from. Computations run in float32.

    Args:
        seed: int or None.
        **kwargs: passed to `keras.layers.Layer`.
    """

    def __init__(self, seed=None, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, input_shape):
        self.built = True

    def save_own_variables(self, store):
        store["seed_state"] = keras.ops.convert_to_numpy(self.seed_generator.state)

    def load_own_variables(self, store):
        if "seed_state" in store:
            self.seed_generator.state.assign(store["seed_state"])

    def get_config(self):
        config = super().get_config()
        config.update({"seed": self.seed})
        return config
