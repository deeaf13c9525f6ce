"""What resuming a TFRecord reader mid-epoch costs: the seek against the cut.

    python benchmarks/record_seek.py [--files 300] [--folder YOUR_PHOTOS]
        [--repeat 30] [--shards 8]
        [--image-size 224] [--batch-size 32] [--window 1000] [--left-out 2]

Writes `--files` JPEGs shaped like a real photo collection
(`input_pipeline.make_photos`; or `--folder`'s), `--repeat` times over, into `--shards`
TFRecord shards (`write_tfrecords`), then times a `tfrecord_images` reader
in "pretrain" mode, its records shuffled in windows of `--window` (the
reader's `shuffle_buffer`; 10,000 by default, more than this folder holds:
here several windows, so that the middle of the epoch lies windows in):

- one pass cut into view pairs (records/s: what training reads);
- from a resumed run's place in the middle of the epoch, the seconds to the
  first batch: `RecordOrder` reads, without decoding, the records before
  the place, then cuts;
- the same from the epoch's start (the reader's own start-up);
- the same middle with `--left-out` records named as undecodable (the
  place is then found by reading the epoch's keys once more).

The seek's own cost is the middle's first batch minus the start's (medians
of 3). Prints one table. Not measured: a remote file system, where reading is slower.
"""

import argparse
import os
import statistics
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras_simclr as ks  # noqa: E402, I001  (first: oneDNN on)
from keras_simclr.datasets.records import record_keys  # noqa: E402

from input_pipeline import photo_paths  # noqa: E402  (benchmarks/)


def first_batch_s(data, epoch, step, state, times=3):
    """Seconds from `seek` to the first batch of a new iterator (median)."""
    seconds = []
    for _ in range(times):
        start = time.perf_counter()
        data.seek(epoch, step, state)
        next(iter(data.dataset))
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=300)
    parser.add_argument("--folder", default=None, help="your own photos (read only)")
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--shards", type=int, default=8)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--window", type=int, default=1000)
    parser.add_argument("--left-out", type=int, default=2)
    args = parser.parse_args()
    paths = photo_paths(args.folder, args.files)[1] * args.repeat
    shards = ks.datasets.write_tfrecords(
        paths, tempfile.mkdtemp(), shards=args.shards, labels=None
    )
    size_mb = sum(os.path.getsize(name) for name in shards) / 2**20
    reader = ks.datasets.tfrecord_images(
        shards,
        args.image_size,
        args.batch_size,
        label_key=None,
        seed=1,
        shuffle_buffer=args.window,
    )
    data = ks.datasets.pretraining_data(reader)
    start = time.perf_counter()
    steps = sum(1 for _ in data.dataset)  # epoch 0, cut in full
    cut_s = time.perf_counter() - start
    records = steps * args.batch_size
    middle = steps // 2
    state = data.position_state()
    at_start = first_batch_s(data, 0, 0, state)
    at_middle = first_batch_s(data, 0, middle, state)
    keys = record_keys(shards)
    state_left_out = {**state, "skipped": keys[: args.left_out]}
    left_out = first_batch_s(data, 0, middle, state_left_out)
    print(
        f"{len(paths)} records ({size_mb:.0f} MB) in {len(shards)} shards, "
        f"windows of {args.window}, {args.image_size} px, batch {args.batch_size}, "
        f"{os.cpu_count()} cores"
    )
    print(" | ".join(("measure", "seconds", "records/s")))
    print(f"one pass, cut | {cut_s:.2f} | {records / cut_s:.0f}")
    print(f"first batch at the epoch's start | {at_start:.2f} | -")
    skipped = middle * args.batch_size
    seek = at_middle - at_start
    print(
        f"first batch at step {middle} ({skipped} records read, not cut) | "
        f"{at_middle:.2f} | {rate(skipped, seek)}"
    )
    print(
        f"the same, {args.left_out} records left out (keys read first) | "
        f"{left_out:.2f} | {rate(skipped, left_out - at_start)}"
    )


def rate(records, seconds):
    """Records per second of a seek, or "-" when it is within the noise."""
    return f"{records / seconds:.0f} (seek only)" if seconds > 0.05 else "- (no cost)"


if __name__ == "__main__":
    main()
