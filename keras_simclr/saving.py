"""Writing files and folders so that a crash never leaves one half-written."""

import contextlib
import os
import shutil

# Temporary names start with this; `remove_partial_writes` clears leftovers.
PARTIAL_PREFIX = ".partial-"


@contextlib.contextmanager
def atomic_path(path, suffix=""):
    """Yields a temporary path beside `path`, renamed to `path` on success.

    Write the file or folder to the yielded path; when the block ends without
    an exception it replaces `path` with one `os.replace` (atomic on POSIX for
    files; an existing folder at `path` is removed first). On an error the
    temporary is removed and `path` is untouched. A process killed inside
    the block leaves only a `.partial-*` name, which readers ignore.

    Args:
        path: the final file or folder.
        suffix: appended to the temporary name (`".keras"`: Keras checks it).

    Examples:
        >>> import os, tempfile
        >>> target = os.path.join(tempfile.mkdtemp(), "notes.txt")
        >>> with atomic_path(target) as temporary:
        ...     with open(temporary, "w") as file:
        ...         _ = file.write("done")
        >>> open(target).read()
        'done'
    """
    path = os.fspath(path)
    folder, name = os.path.split(os.path.abspath(path))
    temporary = os.path.join(folder, f"{PARTIAL_PREFIX}{os.getpid()}-{name}{suffix}")
    _remove(temporary)
    try:
        yield temporary
        if os.path.isdir(temporary) and os.path.isdir(path):
            shutil.rmtree(path)
        os.replace(temporary, path)
    except Exception:
        # (An interrupt or a kill leaves the `.partial-*` name; readers skip
        # it and `remove_partial_writes` clears it on the next run.)
        _remove(temporary)
        raise


def save_model(model, path):
    """`model.save(path)` through `atomic_path`: never a half-written `.keras`."""
    with atomic_path(path, suffix=".keras") as temporary:
        model.save(temporary)


def remove_partial_writes(folder):
    """Removes leftovers of interrupted `atomic_path` writes in `folder`."""
    if not os.path.isdir(folder):
        return
    for name in os.listdir(folder):
        if name.startswith(PARTIAL_PREFIX):
            _remove(os.path.join(folder, name))


def _remove(path):
    if os.path.isdir(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        os.remove(path)
