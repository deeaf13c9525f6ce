"""Which image files a folder holds: a walk that ends, reads each real file
once, and says what it left out.

A real photo folder holds more than photos: hidden folders
(`.ipynb_checkpoints/`, `.git/`), symbolic links (some in loops, some
pointing elsewhere), empty class folders, names that are not UTF-8, and
images TensorFlow cannot decode (TIFF, HEIC, AVIF). The walk here:

- follows symbolic links, to files and folders inside the folder or
  elsewhere (dataset splits made of links into one pool of photos, caches
  that link files into a snapshot), and reads each real file once (by its
  real path), named by the path under the folder; loops end: a folder
  already walked, or one that holds the folder itself (a link to an
  ancestor), is not entered;
- skips names that start with "." (hidden files and folders);
- keeps the files TensorFlow decodes (`IMAGE_EXTENSIONS`) and names, once,
  the image files it cannot decode and the names it cannot read as UTF-8;
- makes classes only of sub-folders that hold at least one image.
"""

import glob
import logging
import os

LOGGER = logging.getLogger("keras_simclr")

# What `tf.io.decode_image` decodes (TensorFlow 2.21: WebP too).
IMAGE_EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png", ".webp")
# Images it does not decode: left out, and named once.
OTHER_IMAGE_EXTENSIONS = (
    ".avif",
    ".cr2",
    ".dng",
    ".heic",
    ".heif",
    ".jp2",
    ".jxl",
    ".nef",
    ".tif",
    ".tiff",
)


def list_image_files(source, labels=None):
    """The image files of `source` and their labels, in a stable order.

    Args:
        source: a folder (searched recursively), a glob pattern, or a list of
            paths.
        labels: None; "inferred" (one sub-folder of a folder `source` per
            class, classes sorted by name, files directly under it ignored);
            or a list of ints, one per file of a list `source`.

    Returns:
        `(paths, labels or None, class_names or None)`.

    Examples:
        >>> import os, tempfile
        >>> root = tempfile.mkdtemp()
        >>> for name in ("cat/1.jpg", "dog/2.png", "dog/notes.txt", ".cache/3.jpg"):
        ...     os.makedirs(os.path.dirname(os.path.join(root, name)), exist_ok=True)
        ...     open(os.path.join(root, name), "w").close()
        >>> paths, labels, classes = list_image_files(root, labels="inferred")
        >>> [os.path.relpath(p, root) for p in paths], labels, classes
        (['cat/1.jpg', 'dog/2.png'], [0, 1], ['cat', 'dog'])
    """
    if isinstance(source, (str, os.PathLike)):
        source = os.fspath(source)
        if os.path.isdir(source):
            if labels == "inferred":
                return _labelled_folder(source)
            paths = images_under(source)
        elif os.path.isfile(source):
            paths = [source]
        else:
            paths = sorted(p for p in glob.glob(source, recursive=True) if _is_image(p))
        if not paths:
            raise ValueError(
                f"No image files ({', '.join(IMAGE_EXTENSIONS)}) found at {source!r}."
            )
    else:
        paths = [os.fspath(path) for path in source]
        if not paths:
            raise ValueError("`source` is an empty list of files.")
    if labels is None:
        return paths, None, None
    if labels == "inferred":
        raise ValueError(
            "labels='inferred' needs a folder with one sub-folder per class. "
            f"Received: source={source!r}"
        )
    labels = [int(label) for label in labels]
    if len(labels) != len(paths):
        raise ValueError(
            f"`labels` has {len(labels)} entries for {len(paths)} files; give one "
            "label per file."
        )
    return paths, labels, None


def _is_image(path):
    return path.lower().endswith(IMAGE_EXTENSIONS) and os.path.isfile(path)


def _inside(path, root):
    """Whether `path` is `root` or below it (real, absolute paths; `/` too)."""
    return os.path.commonpath([path, root]) == root


def _readable_name(path):
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def images_under(folder, report=True, seen_files=None):
    """Image files under `folder`, sorted, each real file once (see module).

    Args:
        folder: the folder to walk.
        report: log what was left out (other image types, unreadable names).
        seen_files: a set of real paths already read (shared by the class
            folders of one dataset, so a file linked into two classes is
            read once); filled in place.
    """
    root = os.path.realpath(folder)
    seen_folders = set()
    seen_files = set() if seen_files is None else seen_files
    found, other_types, unreadable = [], [], []
    for current, folders, files in os.walk(folder, followlinks=True):
        real = os.path.realpath(current)
        if real in seen_folders or (real != root and _inside(root, real)):
            folders[:] = []  # a loop: walked already, or holds the folder itself
            continue
        seen_folders.add(real)
        folders[:] = sorted(name for name in folders if not name.startswith("."))
        for name in sorted(files):
            path = os.path.join(current, name)
            if name.startswith("."):
                continue
            lowered = name.lower()
            if lowered.endswith(OTHER_IMAGE_EXTENSIONS):
                other_types.append(path)
                continue
            if not lowered.endswith(IMAGE_EXTENSIONS):
                continue
            if not _readable_name(path):
                unreadable.append(path)
                continue
            target = os.path.realpath(path)
            if target in seen_files:
                continue
            if os.path.isfile(target):
                seen_files.add(target)
                found.append(path)
    if report:
        _report_left_out(other_types, unreadable)
    return found


def _report_left_out(other_types, unreadable):
    if other_types:
        LOGGER.warning(
            "keras-simclr: %d image file(s) of a type TensorFlow cannot decode "
            "(TIFF, HEIC, AVIF, RAW...) were left out; convert them to JPEG or "
            "PNG to use them: %s",
            len(other_types),
            ", ".join(other_types[:20]) + (" ..." if len(other_types) > 20 else ""),
        )
    if unreadable:
        LOGGER.warning(
            "keras-simclr: %d file(s) whose names are not valid UTF-8 were left "
            "out; rename them: %s",
            len(unreadable),
            ", ".join(ascii(path) for path in unreadable[:20]),
        )


def _labelled_folder(folder):
    candidates = sorted(
        entry.name
        for entry in os.scandir(folder)
        if entry.is_dir() and not entry.name.startswith(".")
    )
    class_names, paths, labels, empty = [], [], [], []
    seen_files = set()  # a file linked into two classes is read once
    for name in candidates:
        members = images_under(os.path.join(folder, name), seen_files=seen_files)
        if not members:
            empty.append(name)
            continue
        labels.extend([len(class_names)] * len(members))
        class_names.append(name)
        paths.extend(members)
    if empty:
        LOGGER.warning(
            "keras-simclr: sub-folder(s) with no image file are not classes: %s",
            ", ".join(empty),
        )
    if not paths:
        raise ValueError(
            f"No image files in class sub-folders of {folder!r} (labels='inferred' "
            "reads FOLDER/CLASS/*.jpg)."
        )
    return paths, labels, class_names
