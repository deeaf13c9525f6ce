"""The projection head g(·) that maps representations h to projections z."""

import keras


@keras.saving.register_keras_serializable(package="keras_simclr")
class ProjectionHead(keras.layers.Layer):
    """MLP projection head: Dense → BatchNorm → ReLU, …, Dense.

    Reference: Chen et al., 2020, Section 2.1: "a small neural network
    projection head g(·) that maps representations to the space where
    contrastive loss is applied. We use a MLP with one hidden layer to obtain
    z_i = g(h_i) = W(2) σ(W(1) h_i)". SimCLRv2 uses a deeper head
    (`num_layers=3`) and fine-tunes from its first layer.

    Every layer but the last is followed by BatchNormalization (when enabled;
    those Dense layers then have no bias, as BatchNorm's beta replaces it) and a
    ReLU; the last layer is linear.

    Args:
        output_dim: int, the size of z. Defaults to 128.
        hidden_dim: int or None, the width of the hidden layers; None uses the
            input (representation) width. Defaults to None.
        num_layers: int ≥ 1, the number of Dense layers. Defaults to 2.
        use_batch_norm: bool. Defaults to True.
        synchronized_batch_norm: bool, BatchNorm statistics over all replicas
            (SimCLR's global BN). Defaults to False.
        **kwargs: passed to `keras.layers.Layer`.

    Examples:
        >>> import numpy as np
        >>> head = ProjectionHead(output_dim=16, num_layers=3)
        >>> head(np.zeros((4, 32), "float32")).shape
        TensorShape([4, 16])
    """

    def __init__(
        self,
        output_dim=128,
        hidden_dim=None,
        num_layers=2,
        use_batch_norm=True,
        synchronized_batch_norm=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if int(num_layers) != num_layers or num_layers < 1:
            raise ValueError(f"`num_layers` must be an int ≥ 1. Received: {num_layers}")
        if output_dim < 1 or (hidden_dim is not None and hidden_dim < 1):
            raise ValueError(
                "`output_dim` and `hidden_dim` must be positive. Received: "
                f"output_dim={output_dim}, hidden_dim={hidden_dim}"
            )
        self.output_dim = output_dim
        self.hidden_dim = hidden_dim
        self.num_layers = num_layers
        self.use_batch_norm = use_batch_norm
        self.synchronized_batch_norm = synchronized_batch_norm
        self.dense_layers = []
        self.norm_layers = []

    def build(self, input_shape):
        input_dim = input_shape[-1]
        if input_dim is None:
            raise ValueError(
                "ProjectionHead needs a known representation size. Received: "
                f"input_shape={input_shape}"
            )
        hidden_dim = self.hidden_dim or input_dim
        # === Layers ===
        for index in range(self.num_layers - 1):
            dense = keras.layers.Dense(
                hidden_dim,
                use_bias=not self.use_batch_norm,
                dtype=self.dtype_policy,
                name=f"dense_{index}",
            )
            dense.build((None, input_dim if index == 0 else hidden_dim))
            self.dense_layers.append(dense)
            if self.use_batch_norm:
                norm = keras.layers.BatchNormalization(
                    synchronized=self.synchronized_batch_norm,
                    dtype=self.dtype_policy,
                    name=f"batch_norm_{index}",
                )
                norm.build((None, hidden_dim))
                self.norm_layers.append(norm)
        output = keras.layers.Dense(
            self.output_dim,
            dtype=self.dtype_policy,
            name=f"dense_{self.num_layers - 1}",
        )
        output.build((None, input_dim if self.num_layers == 1 else hidden_dim))
        self.dense_layers.append(output)

    def call(self, inputs, training=None):
        x = inputs
        for index, dense in enumerate(self.dense_layers[:-1]):
            x = dense(x)
            if self.use_batch_norm:
                x = self.norm_layers[index](x, training=training)
            x = keras.activations.relu(x)
        return self.dense_layers[-1](x)

    def first_block(self):
        """The first hidden block's layers: Dense, BatchNorm (if used), ReLU.

        SimCLRv2 fine-tunes "from the first layer of the projection head"
        (Chen et al., 2020b, Section 2); `evaluation.fine_tune` copies these.
        The Dense and BatchNorm are this head's own; the ReLU is new.
        """
        if self.num_layers < 2:
            raise ValueError(
                "The head has no hidden block to keep: it has num_layers="
                f"{self.num_layers} (fine-tuning from its first block needs >= 2)."
            )
        layers = [self.dense_layers[0]]
        if self.use_batch_norm:
            layers.append(self.norm_layers[0])
        return [*layers, keras.layers.ReLU()]

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.output_dim)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "output_dim": self.output_dim,
                "hidden_dim": self.hidden_dim,
                "num_layers": self.num_layers,
                "use_batch_norm": self.use_batch_norm,
                "synchronized_batch_norm": self.synchronized_batch_norm,
            }
        )
        return config
