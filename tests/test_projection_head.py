import keras
import numpy as np
import pytest

import keras_simclr as ks


def test_shapes_and_defaults():
    head = ks.layers.ProjectionHead()
    z = head(np.random.default_rng(0).normal(size=(4, 32)).astype("float32"))
    assert z.shape == (4, 128)
    assert [d.units for d in head.dense_layers] == [32, 128]  # hidden = input dim


@pytest.mark.parametrize("num_layers", [1, 2, 3])
def test_layer_count_and_batch_norm_placement(num_layers):
    head = ks.layers.ProjectionHead(output_dim=8, hidden_dim=16, num_layers=num_layers)
    head.build((None, 12))
    assert len(head.dense_layers) == num_layers
    assert len(head.norm_layers) == num_layers - 1
    # Hidden Dense layers drop their bias (BatchNorm's beta replaces it).
    assert [d.use_bias for d in head.dense_layers] == [False] * (num_layers - 1) + [
        True
    ]
    no_norm = ks.layers.ProjectionHead(8, 16, num_layers, use_batch_norm=False)
    no_norm.build((None, 12))
    assert no_norm.norm_layers == []
    assert all(d.use_bias for d in no_norm.dense_layers)


def test_output_has_no_relu_and_hidden_layers_do():
    head = ks.layers.ProjectionHead(output_dim=64, hidden_dim=64, num_layers=2)
    x = np.random.default_rng(1).normal(size=(32, 16)).astype("float32")
    z = keras.ops.convert_to_numpy(head(x, training=True))
    assert (z < 0).any()  # linear output
    hidden = head.dense_layers[0](x)
    hidden = keras.activations.relu(head.norm_layers[0](hidden, training=True))
    assert (keras.ops.convert_to_numpy(hidden) >= 0).all()
    expected = head.dense_layers[1](hidden)
    np.testing.assert_allclose(z, expected, rtol=1e-5, atol=1e-6)


def test_bad_arguments():
    with pytest.raises(ValueError, match="num_layers"):
        ks.layers.ProjectionHead(num_layers=0)
    with pytest.raises(ValueError, match="output_dim"):
        ks.layers.ProjectionHead(output_dim=0)


def test_serialization_round_trip(tmp_path):
    inputs = keras.Input((10,))
    outputs = ks.layers.ProjectionHead(output_dim=6, num_layers=3)(inputs)
    model = keras.Model(inputs, outputs)
    x = np.random.default_rng(2).normal(size=(5, 10)).astype("float32")
    path = tmp_path / "head.keras"
    model.save(path)
    restored = keras.models.load_model(path)
    np.testing.assert_allclose(
        restored.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6
    )
    head = restored.layers[-1]
    assert (head.output_dim, head.num_layers, head.hidden_dim) == (6, 3, None)
