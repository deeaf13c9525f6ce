"""After pretraining (#24): the encoder served by each runtime, handed to
keras-hub, and searched for neighbours."""

import os

import keras
import numpy as np
import pytest
from harness import RUNTIMES, run_saved_model

import keras_simclr as ks
from keras_simclr import cli


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    """A tiny SimCLR model (16 px) with non-trivial BatchNorm statistics."""
    import keras

    folder = tmp_path_factory.mktemp("model")
    model = ks.recipes.simclr_model(18, 0.0625, image_size=16, projection_dim=8)
    model.compile(optimizer=ks.optimizers.LARS(0.1))
    images = np.random.default_rng(0).integers(0, 256, (16, 16, 16, 3), "uint8")
    model.fit(images, batch_size=8, epochs=1, verbose=0)
    path = str(folder / "simclr.keras")
    model.save(path)
    return path, keras.models.load_model(path)


def images(count=5, seed=1):
    return np.random.default_rng(seed).integers(0, 256, (count, 16, 16, 3), "uint8")


# What each runtime says of float pixels (one rule, #34 row 5).
REFUSALS = {
    "saved_model": "uint8 images, pixels 0-255; got float",
    "onnx": r"expected: \(tensor\(uint8\)\)",
    "litert": "expected type UINT8",
    "keras": "uint8 images, pixels 0-255; got float",
}


@pytest.mark.parametrize("format", list(RUNTIMES))
def test_each_export_gives_the_keras_features_in_its_own_runtime(
    saved_model, tmp_path, capsys, format
):
    if format == "onnx":
        pytest.importorskip("tf2onnx")
    name, runtime = RUNTIMES[format]
    path, model = saved_model
    output = str(tmp_path / name)
    command = ["export", path, "--format", format, "--output", output]
    assert cli.main(command) == 0
    assert "(B, 16, 16, 3)" in capsys.readouterr().out
    batch = images()
    expected = model.predict(batch, verbose=0)
    np.testing.assert_allclose(runtime(output, batch), expected, rtol=1e-4, atol=1e-4)
    # Float pixels are refused, never cast to uint8 (0.5 -> 0, 300 -> 44):
    # images in [0, 1], 0-255 as floats, NaN, in float32 and float64.
    for floats in (
        batch / 255.0,
        batch.astype("float32"),
        np.full(batch.shape, np.nan),
    ):
        for dtype in ("float32", "float64"):
            with pytest.raises(Exception, match=REFUSALS[format]):
                runtime(output, floats.astype(dtype))
    if format in ("saved_model", "keras"):  # other integers too
        with pytest.raises(Exception, match="got int32"):
            runtime(output, batch.astype("int32"))


def test_export_checks_its_output_before_any_work(saved_model, tmp_path, capsys):
    path, _ = saved_model
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("")
    command = ["export", path, "--format", "saved_model", "--output"]
    assert cli.main([*command, str(tmp_path / "full")]) == 1
    onnx = ["export", path, "--format", "onnx", "--output", str(tmp_path / "x.txt")]
    assert cli.main(onnx) == 1
    assert "keras-simclr: error" in capsys.readouterr().err


def test_projections_are_exported_on_request(saved_model):
    _, model = saved_model
    encoder = model.serving_encoder(projections=True)
    outputs = encoder.predict(images(), verbose=0)
    features = model.predict(images(), verbose=0)
    np.testing.assert_allclose(outputs["features"], features, atol=1e-5)
    assert outputs["projections"].shape == (5, 8)


def test_a_keras_hub_preset_loads_with_keras_hubs_own_from_preset(
    saved_model, tmp_path
):
    pytest.importorskip("keras_hub")
    path, model = saved_model
    preset = str(tmp_path / "preset")
    assert cli.main(["export", path, "--format", "keras_hub", "--output", preset]) == 0
    assert sorted(os.listdir(preset)) == [
        "config.json",
        "metadata.json",
        "model.weights.h5",
    ]
    code = f"""
import numpy as np, keras_hub
import keras_simclr.hub  # registers the backbone
backbone = keras_hub.models.Backbone.from_preset({preset!r})
batch = np.random.default_rng(1).integers(0, 256, (5, 16, 16, 3), "uint8")
batch = batch.astype("float32")
np.save({str(tmp_path / "h.npy")!r}, backbone.predict(batch, verbose=0).mean(axis=(1, 2)))
classifier = keras_hub.models.ImageClassifier.from_preset({preset!r}, num_classes=3)
classifier.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
history = classifier.fit(batch, np.array([0, 1, 2, 0, 1]), epochs=1, verbose=0)
try:  # #34 row 22: another side is refused, naming the trained one
    classifier.predict(np.zeros((2, 32, 32, 3), "float32"), verbose=0)
    print("accepted")
except ValueError as error:
    print("refused", "(None, 16, 16, 3)" in str(error))
print(type(classifier).__name__, np.isfinite(history.history["loss"][0]))
"""
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-c", code],  # a fresh process: nothing cached
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split()[-4:] == [
        "refused",
        "True",
        "SimCLRImageClassifier",
        "True",
    ]
    expected = model.predict(images(), verbose=0)
    np.testing.assert_allclose(np.load(tmp_path / "h.npy"), expected, atol=1e-4)


def photo_folder(root, count=6):
    from PIL import Image

    os.makedirs(root)
    rng = np.random.default_rng(0)
    for index in range(count):
        base = rng.integers(0, 256, (3, 3, 3)).astype("uint8")
        image = np.kron(base, np.ones((12, 12, 1), "uint8"))  # 36 x 36 blocks
        Image.fromarray(image).save(root / f"{index}.png")
    return root


def test_neighbours_draws_the_grid_and_finds_the_query_itself(
    saved_model, tmp_path, capsys
):
    path, _ = saved_model
    folder = photo_folder(tmp_path / "photos")
    features = str(tmp_path / "features.npz")
    assert (
        cli.main(["embed", path, "--dataset", str(folder), "--output", features]) == 0
    )
    capsys.readouterr()
    with np.load(features) as saved:
        database, paths = saved["features"], [str(p) for p in saved["paths"]]
    query = str(folder / "2.png")
    # The query's own row, against the whole database: itself first, at ~1.
    indices, similarities = ks.evaluation.nearest_neighbours(
        database, database[[paths.index(query)]], k=3
    )
    assert paths[indices[0, 0]] == query and similarities[0, 0] == pytest.approx(
        1, abs=1e-5
    )
    grid = str(tmp_path / "grid.png")
    command = ["neighbours", features, "--query", query, "--k", "3"]
    assert cli.main([*command, "--tile", "32", "--output", grid]) == 0
    printed = capsys.readouterr().out
    assert printed.splitlines()[0] == f"{query}:" and printed.count("\n  ") == 3
    from PIL import Image

    # One row: the query and 3 neighbours of 32 px, 4 px padding, 6 px bars.
    assert Image.open(grid).size == (4 * 36 + 12, 32 + 6 + 4 + 4)
    # Random queries over the whole folder: one row each.
    command = ["neighbours", features, "--random", "3", "--k", "2", "--tile", "16"]
    assert cli.main([*command, "--output", grid]) == 0
    assert Image.open(grid).size[1] == 3 * (16 + 6 + 4) + 4


def test_neighbours_names_another_model_moved_photos_and_non_images(
    saved_model, tmp_path, capsys
):
    # #34 rows 11, 12 and 13.
    import shutil

    path, _ = saved_model
    folder = photo_folder(tmp_path / "photos")
    features = str(tmp_path / "features.npz")
    assert (
        cli.main(["embed", path, "--dataset", str(folder), "--output", features]) == 0
    )
    with np.load(features) as saved:
        assert len(saved["model"].item()) == 16 and int(saved["image_size"]) > 0

    def error_of(arguments):
        capsys.readouterr()
        assert cli.main(arguments) == 1
        message = capsys.readouterr().err
        assert message.count("\n") == 1, message
        return message

    grid = ["--output", str(tmp_path / "grid.png"), "--tile", "16", "--k", "2"]
    outside = str(tmp_path / "outside.png")
    shutil.copy(folder / "1.png", outside)
    other = keras.models.load_model(path)
    weight = other.encoder.weights[0]
    weight.assign(np.asarray(weight) + 1.0)
    other.save(tmp_path / "other.keras")
    query = ["neighbours", features, "--query", outside, *grid]
    message = error_of([*query, "--model", str(tmp_path / "other.keras")])
    assert "another model" in message
    assert cli.main([*query, "--model", path]) == 0  # the model that embedded
    (tmp_path / "notes.png").write_bytes(b"not a photo")
    query = ["neighbours", features, "--query", str(tmp_path / "notes.png"), *grid]
    message = error_of([*query, "--model", path])
    assert "notes.png" in message and "could not be read as photos" in message
    os.remove(folder / "3.png")
    message = error_of(["neighbours", features, "--random", "6", *grid])
    assert "no longer at their paths" in message and "3.png" in message


def test_the_keras_hub_snippet_of_the_docs_trains(saved_model, tmp_path):
    # #34 row 19: docs/use.md's snippet, run as written on a preset.
    pytest.importorskip("keras_hub")
    path, _ = saved_model
    preset = str(tmp_path / "simclr_preset")
    assert cli.main(["export", path, "--format", "keras_hub", "--output", preset]) == 0
    docs = os.path.join(os.path.dirname(__file__), "..", "docs", "use.md")
    blocks = open(docs).read().split("```python\n")[1:]
    (snippet,) = [b.split("```")[0] for b in blocks if "ImageClassifier" in b]
    code = (
        "import numpy as np\n"
        "rng = np.random.default_rng(0)\n"
        "images = rng.integers(0, 256, (8, 16, 16, 3)).astype('float32')\n"
        "labels = np.arange(8) % 2\n"
        + snippet.replace("epochs=10)", "epochs=10, verbose=0)")
        + "print('trains', history.history['loss'][-1] < history.history['loss'][0])\n"
    )
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split()[-2:] == ["trains", "True"]


def test_nearest_neighbours_matches_a_full_sort_in_chunks():
    rng = np.random.default_rng(0)
    database = rng.normal(size=(1000, 16)).astype("float32")
    queries = rng.normal(size=(7, 16)).astype("float32")
    indices, similarities = ks.evaluation.nearest_neighbours(
        database, queries, k=5, chunk_size=64
    )
    unit = database / np.linalg.norm(database, axis=1, keepdims=True)
    scores = (queries / np.linalg.norm(queries, axis=1, keepdims=True)) @ unit.T
    expected = np.argsort(-scores, axis=1)[:, :5]
    np.testing.assert_array_equal(indices, expected)
    np.testing.assert_allclose(
        similarities, np.take_along_axis(scores, expected, 1), atol=1e-6
    )


def test_nearest_neighbours_leaves_out_each_querys_own_row():
    # The `neighbours` command's self-exclusion, in the library (issue #32).
    rng = np.random.default_rng(1)
    database = rng.normal(size=(300, 8)).astype("float32")
    own = np.array([5, 299, -1, 64])  # -1: a query from outside the database
    queries = database[np.maximum(own, 0)] + np.array([0, 0, 1, 0])[:, None]
    indices, similarities = ks.evaluation.nearest_neighbours(
        database, queries, k=4, chunk_size=64, exclude=own
    )
    unit = database / np.linalg.norm(database, axis=1, keepdims=True)
    scores = (queries / np.linalg.norm(queries, axis=1, keepdims=True)) @ unit.T
    for row, excluded in enumerate(own):
        if excluded >= 0:
            scores[row, excluded] = -np.inf
    expected = np.argsort(-scores, axis=1)[:, :4]
    np.testing.assert_array_equal(indices, expected)
    assert not any(own[row] in indices[row] for row in range(4) if own[row] >= 0)
    np.testing.assert_allclose(
        similarities, np.take_along_axis(scores, expected, 1), atol=1e-6
    )
    with pytest.raises(ValueError, match="one per query"):
        ks.evaluation.nearest_neighbours(database, queries, exclude=[1, 2])
    with pytest.raises(ValueError, match="`k` must be an int in 1..299"):
        ks.evaluation.nearest_neighbours(database, queries, k=300, exclude=own)


def test_one_serving_encoder_for_the_model_export_and_keras_hub():
    model = ks.recipes.simclr_model(18, 0.0625, image_size=16, projection_dim=8)
    images = np.random.default_rng(0).integers(0, 256, (3, 16, 16, 3), "uint8")
    served = model.serving_encoder()
    np.testing.assert_allclose(
        served.predict(images, verbose=0), model.predict(images, verbose=0), atol=1e-5
    )
    both = model.serving_encoder(projections=True)
    assert set(both.output) == {"features", "projections"}
    # One name, model.serving_encoder(); the other spellings are deprecated
    # and give the same model.
    from keras_simclr.models import encoder

    with pytest.warns(DeprecationWarning, match="serving_encoder"):
        renamed = model.export_encoder()
    with pytest.warns(DeprecationWarning, match=r"model\.serving_encoder\(\)"):
        wrapped = ks.export.serving_encoder(model, projections=True)
    with pytest.warns(DeprecationWarning, match="build_serving_encoder"):
        built = encoder.serving_encoder(model.encoder, 16)
    for other in (renamed, built):
        assert [layer.name for layer in other.layers] == [
            layer.name for layer in served.layers
        ]
    assert set(wrapped.output) == {"features", "projections"}
    with pytest.raises(ValueError, match="takes a SimCLRModel"):
        ks.export.export_encoder(model.encoder, "x.keras", format="keras")


def test_python_export_checks_its_output_as_the_command_line_does(tmp_path):
    model = ks.recipes.simclr_model(18, 0.0625, image_size=16, projection_dim=8)
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not an empty folder"):
        ks.export.export_encoder(model, busy, format="saved_model")
    assert os.listdir(busy) == ["notes.txt"]
    with pytest.raises(ValueError, match="must end with .tflite"):
        ks.export.export_encoder(model, tmp_path / "encoder.onnx", format="litert")
    with pytest.raises(ValueError, match="does not exist"):
        ks.export.export_encoder(model, tmp_path / "no" / "sm", format="saved_model")


def test_nan_features_are_refused_naming_their_rows_and_files(tmp_path):
    # #34 row 14: a NaN row was never found, a NaN query found arbitrary rows,
    # and the command line said "cannot convert float NaN to integer".
    database = np.eye(4, dtype="float32")
    broken = database.copy()
    broken[2, 1] = np.nan
    with pytest.raises(ValueError, match=r"row\(s\) of `database`.*\[2\]"):
        ks.evaluation.nearest_neighbours(broken, database[:1], k=2)
    with pytest.raises(ValueError, match=r"row\(s\) of `queries`.*\[0\]"):
        ks.evaluation.nearest_neighbours(database, broken[2:3], k=2)
    features = tmp_path / "features.npz"
    paths = np.array([f"photo{index}.jpg" for index in range(4)])
    np.savez(features, features=broken, paths=paths)
    from keras_simclr.cli import use

    for query in (["--random", "2"], ["--query", "photo2.jpg"]):
        with pytest.raises(ValueError, match="photo2.jpg.*embed them again"):
            use.neighbours(
                cli.build_parser().parse_args(
                    ["neighbours", str(features), *query, "--output", "x.png"]
                )
            )


def test_a_missing_preset_folder_is_named(saved_model, tmp_path):
    # #34 row 23: keras-hub answers a missing folder with its list of preset
    # kinds; keras-simclr's classes name the folder.
    pytest.importorskip("keras_hub")
    from keras_simclr import hub

    missing = str(tmp_path / "no_such_preset")
    for cls in (hub.SimCLRBackbone, hub.SimCLRImageClassifier):
        with pytest.raises(ValueError, match="no preset folder at .*no_such_preset"):
            cls.from_preset(missing)
    path, model = saved_model
    preset = str(tmp_path / "preset")
    ks.export.export_encoder(model, preset, format="keras_hub")
    backbone = hub.SimCLRBackbone.from_preset(preset)
    h = backbone.predict(images().astype("float32"), verbose=0).mean(axis=(1, 2))
    np.testing.assert_allclose(h, model.predict(images(), verbose=0), atol=1e-4)


def test_a_float_range_model_takes_floats_and_refuses_integers(tmp_path):
    # #34 row 5, the other side of the rule: a model trained on [0, 1]
    # floats serves float32 (float64 and float16 carry the same values) and
    # refuses uint8 (0-255 pixels would be read as far out of its range).
    augmentation = ks.layers.SimCLRAugmentation(16, value_range=(0, 1), seed=0)
    model = ks.recipes.simclr_model(18, 0.0625, image_size=16, projection_dim=8)
    model = ks.SimCLRModel(model.encoder, model.projection_head, augmentation)
    floats = images().astype("float32") / 255
    expected = model.predict(floats, verbose=0)
    output = str(tmp_path / "served")
    ks.export.export_encoder(model, output, format="saved_model")
    for dtype in ("float32", "float64"):
        served = run_saved_model(output, floats.astype(dtype))
        np.testing.assert_allclose(served, expected, rtol=1e-4, atol=1e-4)
    with pytest.raises(Exception, match="float pixels in its value_range; got uint8"):
        run_saved_model(output, images())
    with pytest.raises(TypeError, match="got uint8"):
        model.serving_encoder().predict(images(), verbose=0)
