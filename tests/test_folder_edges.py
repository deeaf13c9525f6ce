"""A photo folder at its edges (#22): links, hidden and empty folders, odd
types, re-written shards, remainders, and command-line outputs."""

import logging
import os

import numpy as np
import pytest
from harness import StepsPerEpoch, write

import keras_simclr as ks
from keras_simclr import cli, datasets


def photo(seed=0, shape=(30, 40, 3)):
    return np.random.default_rng(seed).integers(0, 256, shape, "uint8")


def labelled_folder(root, per_class=3):
    for name in ("cat", "dog"):
        os.makedirs(root / name, exist_ok=True)
        for index in range(per_class):
            write(root / name / f"{index}.jpg", photo(index))
    return root


def names(paths, root):
    return sorted(os.path.relpath(path, root) for path in paths)


def test_symlink_loops_end_and_links_elsewhere_are_read_once(tmp_path):
    # #34 row 1: links that leave the folder are read (round three had
    # refused them), each real file once, under the user's path.
    root = labelled_folder(tmp_path / "photos")
    outside = tmp_path / "elsewhere"
    os.makedirs(outside)
    write(outside / "linked.jpg", photo(9))
    os.symlink("..", root / "dog" / "up")  # a loop back to the root
    os.symlink(root / "cat", root / "cat" / "again")  # a loop into itself
    os.symlink("/", root / "cat" / "everything")  # an ancestor: not walked
    os.symlink(outside, root / "dog" / "out")  # a folder elsewhere
    os.symlink(root / "cat" / "0.jpg", root / "dog" / "same.jpg")  # a second name
    paths, labels, classes = datasets.list_image_files(root, labels="inferred")
    assert names(paths, root) == [
        *[f"cat/{i}.jpg" for i in range(3)],
        *[f"dog/{i}.jpg" for i in range(3)],
        "dog/out/linked.jpg",
    ]
    assert classes == ["cat", "dog"] and labels == [0, 0, 0, 1, 1, 1, 1]


def test_a_folder_of_links_to_photos_elsewhere_is_read(tmp_path):
    # #34 row 1: a split made of links into one pool of photos, and a folder
    # that is itself a link to a folder elsewhere.
    pool = tmp_path / "pool"
    os.makedirs(pool)
    for index in range(5):
        write(pool / f"{index}.jpg", photo(index))
    split = tmp_path / "split"
    os.makedirs(split)
    for index in range(5):
        os.symlink(pool / f"{index}.jpg", split / f"link{index}.jpg")
    os.symlink(pool / "0.jpg", split / "again.jpg")  # the same photo twice
    paths, _, _ = datasets.list_image_files(split)
    assert names(paths, split) == ["again.jpg", *[f"link{i}.jpg" for i in range(1, 5)]]
    linked_folder = tmp_path / "snapshot"
    os.symlink(pool, linked_folder)
    paths, _, _ = datasets.list_image_files(linked_folder)
    assert names(paths, linked_folder) == [f"{i}.jpg" for i in range(5)]
    pairs = datasets.image_files(split, 16, batch_size=5, seed=0)
    assert sum(len(views_a) for views_a, _ in pairs) == 5


def test_hidden_and_empty_folders_are_not_classes(tmp_path, caplog):
    root = labelled_folder(tmp_path)
    os.makedirs(root / ".ipynb_checkpoints")
    write(root / ".ipynb_checkpoints" / "0.jpg", photo())
    write(root / "cat" / ".hidden.jpg", photo())
    os.makedirs(root / "empty")
    with caplog.at_level(logging.WARNING, logger="keras_simclr"):
        paths, _, classes = datasets.list_image_files(root, labels="inferred")
    assert classes == ["cat", "dog"] and len(paths) == 6
    assert "empty" in caplog.text


def test_webp_is_read_and_other_image_types_are_named_once(tmp_path, caplog):
    from PIL import Image

    write(tmp_path / "a.jpg", photo())
    Image.fromarray(photo(1)).save(tmp_path / "b.webp")
    for name in ("c.tif", "d.heic"):
        (tmp_path / name).write_bytes(b"\0" * 16)
    with caplog.at_level(logging.WARNING, logger="keras_simclr"):
        paths, _, _ = datasets.list_image_files(tmp_path)
    assert names(paths, tmp_path) == ["a.jpg", "b.webp"]
    assert caplog.text.count("c.tif") == 1 and "d.heic" in caplog.text
    images = datasets.image_files(tmp_path, 16, 2, mode="evaluate")
    assert [tuple(batch.shape) for batch in images] == [(2, 16, 16, 3)]
    assert images.skipped_files() == []


def test_names_that_are_not_utf8_are_named_not_fatal(tmp_path, caplog):
    write(tmp_path / "good.jpg", photo())
    bad = os.path.join(os.fsencode(tmp_path), b"caf\xe9.jpg")
    with open(bad, "wb") as file:
        file.write(open(tmp_path / "good.jpg", "rb").read())
    with caplog.at_level(logging.WARNING, logger="keras_simclr"):
        paths, _, _ = datasets.list_image_files(tmp_path)
    assert names(paths, tmp_path) == ["good.jpg"]
    assert "not valid UTF-8" in caplog.text


def test_a_remainder_of_one_image_never_reaches_training(tmp_path):
    for index in range(17):
        write(tmp_path / f"{index}.jpg", photo(index))
    pairs = datasets.image_files(tmp_path, 16, 8, seed=0, drop_remainder=False)
    model = ks.recipes.simclr_model(18, 0.0625, image_size=16, projection_dim=8)
    model.compile(optimizer=ks.optimizers.LARS(0.1))
    steps = StepsPerEpoch()
    model.fit(pairs, epochs=2, verbose=0, callbacks=[steps])
    assert steps.counts == [2, 2]  # 8 + 8; the 17th image alone is left out


def test_make_tfrecords_owns_its_output_and_pretrain_reads_it(tmp_path, capsys):
    root = labelled_folder(tmp_path / "photos", per_class=4)
    records = str(tmp_path / "records")
    assert cli.main(["make-tfrecords", str(root), records, "--shards", "4"]) == 0
    # Again with fewer shards: refused, then replaced with --overwrite.
    assert cli.main(["make-tfrecords", str(root), records, "--shards", "2"]) == 1
    assert "--overwrite" in capsys.readouterr().err
    command = ["make-tfrecords", str(root), records, "--shards", "2", "--overwrite"]
    assert cli.main(command) == 0
    assert len(os.listdir(records)) == 2
    assert cli.main(["make-tfrecords", str(root / "cat" / "0.jpg"), records]) == 1
    file_in_the_way = str(root / "cat" / "1.jpg")
    assert cli.main(["make-tfrecords", str(root), file_in_the_way]) == 1
    assert "is a file" in capsys.readouterr().err
    output = str(tmp_path / "records.keras")
    arguments = ["pretrain", "--dataset", records, "--epochs", "1", "--width", "0.0625"]
    arguments += ["--image-size", "16", "--batch-size", "4", "--output", output]
    assert cli.main([*arguments, "--verbose", "0"]) == 0
    printed = capsys.readouterr().out
    assert "SimCLR pretrained" in printed and os.path.exists(output)


def test_make_tfrecords_interrupted_leaves_no_shard_and_the_rerun_names_them(
    tmp_path, capsys
):
    # #34 row 2: a write that dies half-way leaves only `.partial` files.
    import tensorflow as tf

    root = labelled_folder(tmp_path / "photos", per_class=4)
    records = str(tmp_path / "records")
    written = []

    class Dies(tf.io.TFRecordWriter):
        def write(self, record):
            if len(written) == 5:
                raise KeyboardInterrupt  # as a kill would stop it
            written.append(record)
            super().write(record)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tf.io, "TFRecordWriter", Dies)
        with pytest.raises(KeyboardInterrupt):
            cli.main(["make-tfrecords", str(root), records, "--shards", "4"])
    assert datasets.records.shard_files(records) == []  # nothing a reader takes
    assert len(os.listdir(records)) == 4
    capsys.readouterr()
    assert cli.main(["make-tfrecords", str(root), records, "--shards", "4"]) == 1
    message = capsys.readouterr().err
    assert "4 incomplete shard(s)" in message and "--overwrite" in message
    assert "train-00000-of-00004.tfrecord.partial" in message
    command = ["make-tfrecords", str(root), records, "--shards", "4", "--overwrite"]
    assert cli.main(command) == 0
    assert sorted(os.listdir(records)) == [
        f"train-{index:05d}-of-00004.tfrecord" for index in range(4)
    ]


def test_damaged_shards_are_read_up_to_the_damage_and_named(tmp_path, caplog):
    # #34 row 3: a truncated shard and a shard with a corrupted record.
    root = labelled_folder(tmp_path / "photos", per_class=8)
    records = str(tmp_path / "records")
    assert cli.main(["make-tfrecords", str(root), records, "--shards", "4"]) == 0
    shards = datasets.records.shard_files(records)
    size = os.path.getsize(shards[1])
    os.truncate(shards[1], size - size // 3)  # its last record is cut
    with open(shards[2], "r+b") as file:  # a byte of its second record
        file.seek(os.path.getsize(shards[2]) // 2)
        byte = file.read(1)
        file.seek(-1, os.SEEK_CUR)
        file.write(bytes([byte[0] ^ 0xFF]))
    output = str(tmp_path / "m.keras")
    arguments = ["pretrain", "--dataset", records, "--epochs", "1", "--width"]
    arguments += [
        "0.0625",
        "--image-size",
        "16",
        "--batch-size",
        "4",
        "--output",
        output,
    ]
    with caplog.at_level(logging.WARNING, logger="keras_simclr"):
        assert cli.main([*arguments, "--verbose", "0"]) == 0
    assert f"{shards[1]} is damaged at record" in caplog.text
    assert "truncated record" in caplog.text
    assert f"{shards[2]} is damaged at record" in caplog.text
    assert os.path.exists(output)
    records_read, damaged = datasets.records.read_shards(shards)
    assert [shard for shard, _, _ in damaged] == shards[1:3]
    evaluate = datasets.tfrecord_images(shards, 16, 4, "evaluate")
    assert sum(len(batch[0]) for batch in evaluate) == len(records_read)


def test_one_class_is_refused_before_training(tmp_path, capsys):
    os.makedirs(tmp_path / "photos" / "only")
    for index in range(4):
        write(tmp_path / "photos" / "only" / f"{index}.jpg", photo(index))
    output = str(tmp_path / "one.keras")
    arguments = ["pretrain", "--dataset", str(tmp_path / "photos"), "--output", output]
    assert cli.main([*arguments, "--batch-size", "2", "--image-size", "16"]) == 1
    assert "at least 2 classes" in capsys.readouterr().err
    assert not os.path.exists(output)


@pytest.mark.parametrize("output", ["emb", "missing/features.npz", "folder/"])
def test_embed_outputs_are_checked_before_any_work(tmp_path, output, capsys):
    os.makedirs(tmp_path / "folder")
    model = tmp_path / "model.keras"
    model.write_bytes(b"not read: the output is checked first")
    arguments = ["embed", str(model), "--dataset", str(tmp_path)]
    assert cli.main([*arguments, "--output", str(tmp_path / output)]) == 1
    assert "the output" in capsys.readouterr().err


def jpeg_claiming(height, width, seed=0):
    """A small valid JPEG whose SOF header is rewritten to claim height x width."""
    import tensorflow as tf

    data = bytearray(tf.io.encode_jpeg(photo(seed, (16, 16, 3))).numpy())
    marker = data.index(b"\xff\xc0")  # SOF0: length, precision, height, width
    data[marker + 5 : marker + 9] = height.to_bytes(2, "big") + width.to_bytes(2, "big")
    return bytes(data)


def png_claiming(height, width):
    import tensorflow as tf

    data = bytearray(tf.io.encode_png(photo(0, (8, 8, 3))).numpy())
    data[16:24] = width.to_bytes(4, "big") + height.to_bytes(4, "big")
    return bytes(data)


def test_bombs_and_lying_headers_are_skipped_before_decoding(tmp_path):
    for index in range(4):
        write(tmp_path / f"{index}.jpg", photo(index))
    (tmp_path / "bomb.jpg").write_bytes(jpeg_claiming(60000, 60000))
    (tmp_path / "huge.png").write_bytes(png_claiming(23000, 23000))
    (tmp_path / "short.jpg").write_bytes(jpeg_claiming(3000, 4000))  # 12 Mpx, 600 B
    pairs = datasets.image_files(tmp_path, 16, 2, seed=0)
    assert sum(1 for _ in pairs) == 2  # the 4 photos, in 2 batches
    skipped = sorted(os.path.basename(path) for path in pairs.skipped_files())
    assert skipped == ["bomb.jpg", "huge.png", "short.jpg"]
    # The limit is the caller's: 30 x 40 photos are over 1,000 pixels.
    small = datasets.image_files(tmp_path, 16, 2, mode="evaluate", max_pixels=1000)
    assert sum(1 for _ in small) == 0 and len(small.skipped_files()) == 7


def test_a_failure_after_decoding_keeps_rows_and_names_aligned(tmp_path, monkeypatch):
    import tensorflow as tf

    from keras_simclr.datasets import crops

    for index in range(5):  # the third photo is 77 px high: its crop fails
        write(
            tmp_path / f"{index}.png", photo(index, (77 if index == 2 else 30, 40, 3))
        )
    crop = crops.crop_and_resize

    def failing_crop(image, window, image_size):
        check = tf.debugging.Assert(tf.shape(image)[0] != 77, ["injected failure"])
        with tf.control_dependencies([check]):
            return crop(image, window, image_size)

    monkeypatch.setattr(crops, "crop_and_resize", failing_crop)
    images = datasets.image_files(tmp_path, 16, 2, mode="evaluate")
    batches = [batch.numpy() for batch in images]
    rows = np.concatenate(batches)
    assert [os.path.basename(p) for p in images.skipped_files()] == ["2.png"]
    kept = [p for p in images.file_paths if p not in images.skipped_files()]
    assert len(rows) == len(kept) == 4
    for row, path in zip(rows, kept):  # each row is its file's centre crop
        reference = datasets.image_files([path], 16, 1, mode="evaluate")
        np.testing.assert_array_equal(row, next(iter(reference)).numpy()[0])


def upright_photo():
    """A smooth, asymmetric 48 x 64 photo: a bright top-left corner, a ramp."""
    rows, cols = np.mgrid[0:48, 0:64]
    image = np.stack([rows * 4, cols * 3, 255 - rows * 2], axis=-1)
    image[:16, :20] = 250
    return image.astype("uint8")


# The stored pixels whose EXIF `orientation` displays them as the upright
# photo (Pillow's exif_transpose undoes these).
STORED = {
    1: lambda x: x,
    2: lambda x: x[:, ::-1],
    3: lambda x: x[::-1, ::-1],
    4: lambda x: x[::-1],
    5: lambda x: np.transpose(x, (1, 0, 2)),
    6: lambda x: np.rot90(x, 1),  # displayed after a turn 90 degrees clockwise
    7: lambda x: x.transpose(1, 0, 2)[::-1, ::-1],  # transverse
    8: lambda x: np.rot90(x, -1),
}


def jpeg_with_orientation(path, pixels, orientation, big_endian=False):
    import io

    from PIL import Image

    buffer = io.BytesIO()
    exif = Image.Exif()
    exif[0x010F] = "Camera"  # another tag first, as cameras write
    exif[0x0112] = orientation
    exif_bytes = exif.tobytes()
    if big_endian:  # rewrite the TIFF header and entries as Motorola order
        exif_bytes = big_endian_exif(orientation)
    Image.fromarray(np.ascontiguousarray(pixels)).save(
        buffer, "JPEG", quality=95, exif=exif_bytes
    )
    path.write_bytes(buffer.getvalue())


def big_endian_exif(orientation):
    """`Exif\\0\\0` + a big-endian TIFF header with one IFD0 entry."""
    entry = (0x0112).to_bytes(2, "big") + (3).to_bytes(2, "big")  # SHORT
    entry += (1).to_bytes(4, "big") + orientation.to_bytes(2, "big") + b"\0\0"
    ifd = (1).to_bytes(2, "big") + entry + (0).to_bytes(4, "big")
    return b"Exif\0\0" + b"MM\0\x2a" + (8).to_bytes(4, "big") + ifd


def test_stored_windows_and_orient_match_pillows_exif_transpose():
    import tensorflow as tf
    from PIL import Image, ImageOps

    from keras_simclr.datasets import crops

    upright = upright_photo()
    rng = np.random.default_rng(0)
    for orientation, store in STORED.items():
        stored = np.ascontiguousarray(store(upright))
        image = Image.fromarray(stored)
        exif = image.getexif()
        exif[0x0112] = orientation
        image.info["exif"] = exif.tobytes()
        shown = np.asarray(ImageOps.exif_transpose(image))
        np.testing.assert_array_equal(shown, upright)  # STORED is right
        for _ in range(5):
            side = int(rng.integers(4, 40))
            top, left = int(rng.integers(0, 48 - side)), int(rng.integers(0, 64 - side))
            window = tf.constant([[top, left, side, side]], tf.int32)
            mapped = crops.stored_windows(window, orientation, 48, 64)[0].numpy()
            crop = stored[
                mapped[0] : mapped[0] + mapped[2], mapped[1] : mapped[1] + mapped[3]
            ]
            turned = crops.orient(tf.constant(crop), orientation).numpy()
            np.testing.assert_array_equal(
                turned, upright[top : top + side, left : left + side]
            )
            # A stack of a photo's views turns as each view does.
            stack = crops.orient(tf.constant(np.stack([crop, crop[::-1]])), orientation)
            np.testing.assert_array_equal(stack[0].numpy(), turned)
            flipped = crops.orient(tf.constant(crop[::-1]), orientation)
            np.testing.assert_array_equal(stack[1].numpy(), flipped.numpy())


def test_exif_orientation_of_a_batch_matches_pillow_file_by_file(tmp_path):
    """One vectorised parse over files of different lengths and kinds: each
    value is the one Pillow reads from that file alone (1 where none)."""
    import io

    from PIL import Image

    from keras_simclr.datasets import decode

    rng = np.random.default_rng(1)
    files = []
    for orientation in [6, 1, 8, 3, 2, 5, 7, 4]:
        side = int(rng.integers(8, 200))  # lengths differ across the batch
        pixels = rng.integers(0, 256, (side, side + 3, 3), "uint8")
        path = tmp_path / f"{orientation}.jpg"
        jpeg_with_orientation(path, pixels, orientation, big_endian=side % 2 == 0)
        files.append(path.read_bytes())
    buffer = io.BytesIO()
    Image.fromarray(upright_photo()).save(buffer, "PNG")
    files += [
        buffer.getvalue(),  # not a JPEG
        files[0][:40],  # cut inside the EXIF segment
        b"",
        (tmp_path / "1.jpg").read_bytes().replace(b"Exif\0\0", b"Exiv\0\0"),
    ]

    def pillow(data):
        try:
            return int(Image.open(io.BytesIO(data)).getexif().get(0x0112, 1))
        except Exception:  # unreadable: no orientation
            return 1

    expected = [pillow(data) for data in files]
    assert expected[:8] == [6, 1, 8, 3, 2, 5, 7, 4]
    got = decode.exif_orientation(np.array(files, dtype=object)).numpy()
    assert got.tolist() == expected
    # The same values one file at a time, and in a (2, 6) batch.
    assert [int(decode.exif_orientation(data)) for data in files] == expected
    grid = np.array(files, dtype=object).reshape(2, 6)
    assert decode.exif_orientation(grid).numpy().ravel().tolist() == expected


@pytest.mark.parametrize("on_error", ["skip", "raise"])
def test_rotated_phone_photos_are_read_upright(tmp_path, on_error):
    from keras_simclr.datasets import decode

    upright = upright_photo()
    jpeg_with_orientation(tmp_path / "0_upright.jpg", upright, 1)
    for orientation, store in STORED.items():
        jpeg_with_orientation(
            tmp_path / f"{orientation}.jpg", store(upright), orientation
        )
    jpeg_with_orientation(tmp_path / "9_motorola.jpg", STORED[6](upright), 6, True)
    encoded = (tmp_path / "9_motorola.jpg").read_bytes()
    assert int(decode.exif_orientation(encoded)) == 6
    images = datasets.image_files(
        tmp_path, 24, 16, mode="evaluate", shuffle=False, on_error=on_error
    )
    crops_ = np.concatenate([batch.numpy() for batch in images]).astype(float)
    names_ = [os.path.basename(path) for path in images.file_paths]
    reference = crops_[names_.index("0_upright.jpg")]
    for name, crop in zip(names_, crops_):
        assert np.abs(crop - reference).mean() < 3, name  # JPEG noise only
    sideways = np.rot90(reference, 1)
    assert np.abs(sideways - reference).mean() > 20  # what reading it raw gave
    # Training views are cut from the upright photo too: the full photo,
    # squeezed, has the bright corner at the top left whatever the tag.
    pairs = datasets.image_files(
        tmp_path, 24, 10, crop_area=(1.0, 1.0), aspect_ratio=(0.5, 2.0), seed=0
    )
    views = next(iter(pairs))
    for view in np.concatenate([views[0].numpy(), views[1].numpy()]):
        corner = view[:6, :6].astype(float).mean()
        assert corner > 200 and view[-6:, -6:].mean() < corner - 40


PEAK_MEMORY_WORKER = """
import resource, sys
import numpy as np
from PIL import Image
from keras_simclr import datasets

folder, side, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
Image.fromarray(np.zeros((64, 64, 3), "uint8")).save(f"{folder}/small.png")
ramp = np.linspace(0, 255, side).astype("uint8")  # compresses: a small file
Image.fromarray(np.repeat(np.tile(ramp, (side, 1))[..., None], 3, -1)).save(
    f"{folder}/big.png"
)

def peak():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # bytes

def read(name):
    images = datasets.image_files(
        [f"{folder}/{name}"], 96, 1, mode=mode, crop_area=(0.9, 1.0), seed=0
    )
    assert sum(1 for _ in images) == 1

read("small.png")  # kernels, threads and buffers: outside the measure
before = peak()
read("big.png")
print((peak() - before) / (side * side * 3))
"""


@pytest.mark.parametrize("mode", ["evaluate", "pretrain"])
def test_peak_memory_per_photo_is_bounded_by_its_decoded_size(tmp_path, mode):
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-c", PEAK_MEMORY_WORKER, str(tmp_path), "5000", mode],
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    # The decoded pixels and each view read straight from them: under 2x the decoded
    # size (a float32 copy of the crop alone is 4x).
    growth = float(result.stdout.split()[-1])
    assert growth < 2.0, growth


def test_a_folder_with_every_edge_trains_and_embeds_from_the_command_line(
    tmp_path, capsys, caplog
):
    """#22's folder: bombs, loops, a rotated photo, hidden and empty folders,
    a name that is not UTF-8 and a WebP; pretrain and embed both complete,
    each odd file is named once, rows and names stay aligned."""
    import warnings

    from PIL import Image

    root = labelled_folder(tmp_path / "photos", per_class=4)
    (root / "cat" / "bomb.jpg").write_bytes(jpeg_claiming(60000, 60000))
    (root / "dog" / "huge.png").write_bytes(png_claiming(23000, 23000))
    os.symlink("..", root / "dog" / "up")
    os.symlink(root / "cat", root / "cat" / "again")
    jpeg_with_orientation(root / "cat" / "portrait.jpg", STORED[6](upright_photo()), 6)
    os.makedirs(root / ".ipynb_checkpoints" / "cat")
    write(root / ".ipynb_checkpoints" / "cat" / "0.jpg", photo())
    os.makedirs(root / "empty")
    with open(os.path.join(os.fsencode(root / "dog"), b"caf\xe9.jpg"), "wb") as file:
        file.write((root / "dog" / "0.jpg").read_bytes())
    Image.fromarray(photo(7)).save(root / "dog" / "7.webp")
    output = str(tmp_path / "edges.keras")
    arguments = [
        "pretrain",
        "--dataset",
        str(root),
        "--epochs",
        "2",
        "--output",
        output,
    ]
    arguments += ["--width", "0.0625", "--image-size", "16", "--batch-size", "4"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with caplog.at_level(logging.WARNING, logger="keras_simclr"):
            assert cli.main([*arguments, "--verbose", "0"]) == 0
    printed = capsys.readouterr().out + caplog.text
    for odd in ("bomb.jpg", "huge.png", "caf", "empty"):
        assert printed.count(odd) == 1, (odd, printed)
    assert ".ipynb_checkpoints" not in printed
    assert not [w for w in caught if "ran out of data" in str(w.message)]

    features_path = str(tmp_path / "features.npz")
    command = ["embed", output, "--dataset", str(root), "--output", features_path]
    assert cli.main(command) == 0
    with np.load(features_path) as saved:
        features, paths = saved["features"], saved["paths"]
    kept = [f"{c}/{i}.jpg" for c in ("cat", "dog") for i in range(4)]
    assert names(paths, root) == sorted([*kept, "cat/portrait.jpg", "dog/7.webp"])
    assert len(features) == len(paths) and np.isfinite(features).all()
    # Rows follow names: each row is the features of its own file.
    import keras

    model = keras.models.load_model(output)
    for row, path in zip(features, paths):
        alone = datasets.image_files([str(path)], 16, 1, mode="evaluate")
        expected = ks.evaluation.encode_images(model, alone)[0]
        np.testing.assert_allclose(row, expected, rtol=1e-4, atol=1e-4)


def test_make_tfrecords_leaves_out_bombs_and_lying_jpegs_and_names_records_by_file(
    tmp_path, caplog
):
    # #34 row 4: the readers' header checks run at write time; a record
    # skipped when read is named by the file it was packed from.
    root = labelled_folder(tmp_path / "photos", per_class=3)
    (root / "cat" / "bomb.jpg").write_bytes(jpeg_claiming(60000, 60000))
    (root / "dog" / "huge.png").write_bytes(png_claiming(23000, 23000))
    (root / "dog" / "short.jpg").write_bytes(jpeg_claiming(3000, 4000))
    (root / "cat" / "notes.jpg").write_text("not a photo")
    (root / "cat" / "empty.png").write_bytes(b"")
    whole = (root / "dog" / "0.jpg").read_bytes()
    (root / "dog" / "cut.jpg").write_bytes(whole[: len(whole) // 2])  # header fine
    records = str(tmp_path / "records")
    with caplog.at_level(logging.WARNING, logger="keras_simclr"):
        assert cli.main(["make-tfrecords", str(root), records, "--shards", "2"]) == 0
    printed = caplog.text  # named once each, as met
    assert printed.count("not packed") == 5
    left_out = {
        os.path.relpath(line.split("not packed: ")[1].split(" (")[0], root): line
        for line in printed.splitlines()
        if "not packed" in line
    }
    assert sorted(left_out) == [
        "cat/bomb.jpg",
        "cat/empty.png",
        "cat/notes.jpg",
        "dog/huge.png",
        "dog/short.jpg",
    ]
    assert "decompression bomb" in left_out["cat/bomb.jpg"]
    assert "too short" in left_out["dog/short.jpg"]
    assert "not an image" in left_out["cat/notes.jpg"]
    shards = datasets.records.shard_files(records)
    keys = datasets.records.record_keys(shards)
    assert len(keys) == 7  # 6 photos and the cut one
    stored = sorted(key.split(" (")[1].rstrip(")") for key in keys)
    assert "dog/cut.jpg" in stored and "cat/0.jpg" in stored
    # The cut JPEG decodes nowhere: skipped when read, named by its file.
    images = datasets.tfrecord_images(shards, 16, 4, "evaluate", label_key=None)
    rows = sum(len(batch) for batch in images)
    skipped = images.skipped_files()
    assert rows == 6 and len(skipped) == 1 and skipped[0].endswith(" (dog/cut.jpg)")
    assert skipped[0] in keys


def test_embed_and_neighbours_read_what_make_tfrecords_wrote(tmp_path, capsys):
    # #34 row 20: `embed --dataset` reads what `pretrain --dataset` reads.
    root = labelled_folder(tmp_path / "photos", per_class=3)
    records = str(tmp_path / "records")
    assert cli.main(["make-tfrecords", str(root), records, "--shards", "2"]) == 0
    model = ks.recipes.simclr_model(18, 0.0625, image_size=16, projection_dim=8)
    model.save(tmp_path / "m.keras")
    model_path = str(tmp_path / "m.keras")
    for source, output in ((records, "records.npz"), (str(root), "folder.npz")):
        command = ["embed", model_path, "--dataset", source, "--output"]
        assert cli.main([*command, str(tmp_path / output)]) == 0
    with np.load(tmp_path / "records.npz") as saved:
        from_records = dict(zip(saved["paths"], saved["features"]))
    with np.load(tmp_path / "folder.npz") as saved:
        from_files = dict(zip(saved["paths"], saved["features"]))
    assert len(from_records) == len(from_files) == 6
    for key, features in from_records.items():  # each row is its photo's
        assert datasets.records.is_record_key(key)
        stored = key.split(" (")[1].rstrip(")")
        np.testing.assert_allclose(features, from_files[str(root / stored)], atol=1e-5)
    grid = str(tmp_path / "grid.png")
    command = ["neighbours", str(tmp_path / "records.npz"), "--random", "2"]
    assert cli.main([*command, "--k", "2", "--output", grid]) == 0
    assert os.path.getsize(grid) > 0
    assert ".tfrecord#" in capsys.readouterr().out
