import os

import keras
import pytest

import keras_simclr as ks
from keras_simclr import cli

TINY = [
    "--width",
    "0.0625",
    "--image-size",
    "16",
    "--batch-size",
    "64",
    "--verbose",
    "0",
]


def test_pretrain_saves_a_model_and_prints_the_probe_table(tmp_path, capsys):
    output = str(tmp_path / "model.keras")
    assert cli.main(["pretrain", "--epochs", "2", "--output", output, *TINY]) == 0
    printed = capsys.readouterr().out
    assert "SimCLR pretrained" in printed and "random initialisation" in printed
    assert os.path.exists(output) and not os.path.exists(output + ".backup")
    assert not [name for name in os.listdir(tmp_path) if ".tmp-" in name]
    model = keras.models.load_model(output)
    assert isinstance(model, ks.SimCLRModel) and model.augmentation.image_size == 16

    assert cli.main(["probe", output]) == 0
    assert "model.keras" in capsys.readouterr().out


def test_show_augmentations_writes_a_png(tmp_path, capsys):
    output = str(tmp_path / "views.png")
    assert (
        cli.main(
            ["show-augmentations", "--output", output, "--images", "3", "--views", "2"]
        )
        == 0
    )
    assert os.path.getsize(output) > 0


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["pretrain", "--batch-size", "0"], "positive integer"),
        (["pretrain", "--width", "-1"], "positive number"),
        (["pretrain", "--depth", "20"], "invalid choice"),
        (["pretrain", "--strategy", "horovod"], "invalid choice"),
    ],
)
def test_bad_arguments_are_one_line_errors(arguments, message, capsys):
    with pytest.raises(SystemExit):
        cli.main(arguments)
    assert message in capsys.readouterr().err


def test_bad_values_found_after_parsing(tmp_path):
    with pytest.raises(SystemExit, match="must end with .keras"):
        cli.main(["pretrain", "--output", str(tmp_path / "model.h5"), *TINY])
    with pytest.raises(SystemExit, match="fewer than --batch-size"):
        cli.main(
            [
                "pretrain",
                *TINY[:4],
                "--batch-size",
                "4096",
                "--output",
                str(tmp_path / "m.keras"),
            ]
        )
    with pytest.raises(SystemExit, match="no model file"):
        cli.main(["probe", str(tmp_path / "missing.keras")])
    corrupt = tmp_path / "corrupt.keras"
    corrupt.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(SystemExit, match="not a readable keras-simclr model"):
        cli.main(["probe", str(corrupt)])
