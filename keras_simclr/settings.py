"""`PretrainingSettings` and `DistillSettings`: the one spelling of a run's
settings.

Each setting is written once, here: its name, default, type and one-line
help. The command line's `pretrain` flags are generated from these fields
(`add_arguments`), `keras-simclr pretrain` forwards them
(`from_arguments`), `workflow.pretrain` takes them, `--resume` compares the
ones marked `resumed` field by field, and the run's log prints them. Adding
a setting is adding a field here and using it where it acts.
`DistillSettings` does the same for `keras-simclr distill`.

    import keras_simclr as ks
    settings = ks.PretrainingSettings(dataset="photos/", image_size=96)
    settings.replace(epochs=100).epochs        # 100
    ks.workflow.pretrain(settings)             # or pretrain("photos/", epochs=...)

This module loads neither Keras nor TensorFlow: the command line builds its
parser from it before anything heavy is imported.
"""

import argparse
import dataclasses

from keras_simclr.choices import PRECISIONS, STRATEGIES

DEPTHS = (18, 34, 50, 101, 152)


def positive(kind):
    """An argparse type: `kind(text)`, which must be > 0."""

    def parse(text):
        value = kind(text)
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {text}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its errors
    return parse


def pair(text):
    """An argparse type: `LOW,HIGH` -> (float, float)."""
    low, _, high = text.partition(",")
    try:
        return float(low), float(high)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LOW,HIGH, got {text}") from None


def _setting(default, help, parse=None, choices=None, resumed=False, **flag):
    """A field with its command-line facts in `metadata`."""
    metadata = dict(help=help, parse=parse, choices=choices, resumed=resumed, flag=flag)
    return dataclasses.field(default=default, metadata=metadata)


DATASET_HELP = (
    "digits (embedded, default), cifar10, cifar100, stl10, an image folder, "
    "or TFRecords (a make-tfrecords folder or a glob)"
)


class _Settings:
    """What every settings dataclass here shares: copies, the parsed
    command line, the resumed subset and the flags that give it."""

    def replace(self, **changes):
        """A copy with `changes` (unknown names raise `TypeError`)."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_arguments(cls, args):
        """The settings of a parsed `argparse.Namespace` (from
        `add_arguments`)."""
        names = [field.name for field in dataclasses.fields(cls)]
        return cls(**{name: getattr(args, name) for name in names})

    def resumed(self, **resolved):
        """The settings a checkpoint must share, as JSON values; `resolved`
        replaces defaults that the run resolved (e.g. the image size)."""
        values = {
            field.name: resolved.get(field.name, getattr(self, field.name))
            for field in dataclasses.fields(self)
            if field.metadata["resumed"]
        }
        return {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}

    def describe(self):
        """The command-line flags that give these settings from the defaults.

        Examples:
            >>> PretrainingSettings(epochs=3, crop_area=(0.2, 0.9), probe=False).describe()
            '--epochs 3 --crop-area 0.2,0.9 --no-probe'
            >>> PretrainingSettings().describe()
            '(defaults)'
        """
        changed = []
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if value == field.default or field.default is dataclasses.MISSING:
                continue
            if isinstance(value, bool):  # a switch: its flag alone says it
                changed.append(flag_name(field))
            elif isinstance(value, tuple):
                changed.append(f"{flag_name(field)} {','.join(map(str, value))}")
            else:
                changed.append(f"{flag_name(field)} {value}")
        return " ".join(changed) or "(defaults)"


@dataclasses.dataclass(frozen=True)
class PretrainingSettings(_Settings):
    """Every setting of a pretraining run (`keras-simclr pretrain`).

    The defaults are the command line's. `None` means "the paper's value
    for this data" where the help says so. Fields marked resumed in their
    metadata rebuild the model or its schedule: a run resumed from a
    checkpoint must have the same ones.
    """

    dataset: str = _setting("digits", DATASET_HELP, resumed=True)
    output: str = _setting("simclr.keras", "where to save the model (.keras)")
    image_size: int | None = _setting(
        None, "view side (default: dataset's)", positive(int), resumed=True
    )
    depth: int = _setting(18, "ResNet depth", int, DEPTHS, resumed=True)
    width: float = _setting(0.25, "ResNet width", positive(float), resumed=True)
    epochs: int = _setting(12, "epochs", positive(int), resumed=True)
    batch_size: int = _setting(128, "global, in images", positive(int), resumed=True)
    temperature: float | None = _setting(
        None, "default 0.5 < 64 px, else 0.1", positive(float), resumed=True
    )
    learning_rate: float | None = _setting(
        None, "base rate before scaling", positive(float), resumed=True
    )
    lr_scaling: str = _setting(
        "sqrt",
        "sqrt: 0.075 x sqrt(B); linear: 0.3 x B / 256",
        choices=("linear", "sqrt"),
        resumed=True,
    )
    warmup_epochs: float | None = _setting(
        None, "default: 10%% of --epochs", float, resumed=True
    )
    weight_decay: float = _setting(1e-6, "LARS weight decay", float, resumed=True)
    chunk_size: int | None = _setting(
        None,
        "images per device per encoder pass: the whole batch's loss in the "
        "memory of a chunk (gradient caching; default: one pass)",
        positive(int),
        resumed=True,
        metavar="C",
    )
    crop_area: tuple = _setting(
        (0.08, 1.0), "LOW,HIGH", pair, resumed=True, metavar="LOW,HIGH"
    )
    jitter_strength: float | None = _setting(
        None, "default 0.5 < 64 px, else 1.0", float, resumed=True
    )
    blur_rate: float | None = _setting(
        None, "default 0 < 64 px, else 0.5", float, resumed=True
    )
    resume: bool = _setting(False, "continue from OUTPUT.backup/", action="store_true")
    checkpoint_every: int = _setting(
        500,
        "also checkpoint every N steps of an epoch, so that a kill -9 loses at "
        "most N steps (SIGTERM/SIGINT checkpoint the step they stop at; "
        "default 500)",
        positive(int),
        metavar="N",
    )
    strategy: str = _setting("default", "tf.distribute / JAX", choices=STRATEGIES)
    input_service: str | None = _setting(
        None,
        "decode the photos on this tf.data service's input workers",
        metavar="grpc://HOST:PORT",
    )
    input_timeout: float | None = _setting(
        600.0,
        "with --input-service: stop (resumable) after this long without a "
        "batch, e.g. an input worker lost for good (default 600)",
        positive(float),
        metavar="SECONDS",
    )
    tensorboard: str | None = _setting(
        None, "TensorBoard logs of the run", metavar="DIR"
    )
    mixed_precision: str = _setting(
        "float32", "Keras's global dtype policy", choices=PRECISIONS
    )
    probe: bool = _setting(
        True, "skip the final probe", action="store_false", flag="--no-probe"
    )
    seed: int = _setting(0, "Keras's seed, shuffling, crops (>= 0)", int)
    verbose: int = _setting(1, "fit's progress", int, (0, 1, 2))

    def __post_init__(self):
        if self.seed < 0:
            raise ValueError(f"`seed` (--seed) must be >= 0. Received: {self.seed}")
        if self.mixed_precision not in PRECISIONS:
            raise ValueError(
                f"`mixed_precision` must be one of {PRECISIONS}. Received: "
                f"{self.mixed_precision!r}"
            )
        if self.batch_size < 2:
            raise ValueError(
                f"`batch_size` (--batch-size) {self.batch_size} must be >= 2 "
                "(NT-Xent needs negatives)."
            )
        object.__setattr__(self, "crop_area", tuple(self.crop_area))


def fields(settings_class=None):
    return dataclasses.fields(settings_class or PretrainingSettings)


def flag_name(field):
    """`batch_size` -> `--batch-size` (or the field's own flag)."""
    return field.metadata["flag"].get("flag") or "--" + field.name.replace("_", "-")


def add_arguments(parser, settings_class=None):
    """Adds one flag per field of `settings_class` (default
    `PretrainingSettings`) to `parser`, with the field's default, type,
    choices and help; a field without a default is a positional argument."""
    for field in fields(settings_class):
        meta = field.metadata
        options = {k: v for k, v in meta["flag"].items() if k != "flag"}
        options["help"] = meta["help"]
        if field.default is dataclasses.MISSING:  # positional
            parser.add_argument(field.name, **options)
            continue
        options.update(dest=field.name, default=field.default)
        if "action" not in options:
            if meta["parse"] is not None:
                options["type"] = meta["parse"]
            if meta["choices"] is not None:
                options["choices"] = meta["choices"]
        parser.add_argument(flag_name(field), **options)
    return parser


@dataclasses.dataclass(frozen=True)
class DistillSettings(_Settings):
    """Every setting of `keras-simclr distill` (SimCLRv2's stage 3).

    `teacher` is the command's positional argument; the rest are flags
    with the command line's defaults. A resumed run must share the fields
    marked resumed (all but `output`, `resume` and `checkpoint_every`).

    Examples:
        >>> DistillSettings("teacher.keras", epochs=3).describe()
        '--epochs 3'
    """

    teacher: str = _setting(
        dataclasses.MISSING, "a fine-tuned classifier (.keras)", resumed=True
    )
    dataset: str = _setting("digits", DATASET_HELP, resumed=True)
    output: str = _setting("student.keras", "where to save the student (.keras)")
    depth: int = _setting(18, "the student's ResNet depth", int, DEPTHS, resumed=True)
    width: float = _setting(
        0.25, "the student's ResNet width", positive(float), resumed=True
    )
    epochs: int = _setting(10, "epochs", positive(int), resumed=True)
    batch_size: int = _setting(64, "global, in images", positive(int), resumed=True)
    temperature: float = _setting(
        1.0, "of the teacher's and student's softmax", positive(float), resumed=True
    )
    learning_rate: float = _setting(
        0.05, "SGD's (Nesterov)", positive(float), resumed=True
    )
    seed: int = _setting(0, "Keras's seed, shuffling, crops", int, resumed=True)
    resume: bool = _setting(False, "continue from OUTPUT.backup/", action="store_true")
    checkpoint_every: int = _setting(
        500,
        "also checkpoint every N steps (SIGTERM/SIGINT checkpoint the step "
        "they stop at)",
        positive(int),
        metavar="N",
    )


__all__ = [
    "DistillSettings",
    "PretrainingSettings",
    "add_arguments",
    "pair",
    "positive",
]
