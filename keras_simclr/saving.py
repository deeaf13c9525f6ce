"""Writing files and folders so that a crash never leaves one half-written."""

import contextlib
import os
import shutil
import tempfile

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


@contextlib.contextmanager
def scratch_path(name):
    """A path named `name` in a temporary folder, removed after the block.

    Where the processes of a run must all save (a multi-process JAX run
    reads the weights with a collective; so do multi-worker strategies), the
    processes that do not write the output save here.
    """
    with tempfile.TemporaryDirectory(prefix="keras-simclr-") as folder:
        yield os.path.join(folder, name)


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


# Longest file name most file systems take (ext4, APFS, NTFS: 255 bytes).
MAX_NAME_BYTES = 255


def check_output_path(path, suffix=".keras"):
    """Raises `ValueError` now for a path that could not be written later.

    Checked before the work starts, so that a run does not fail after hours
    of it: the suffix, a folder in the way, a name too long for the file
    system (with room for the temporary name), and a folder that is missing
    or cannot be written (tried with a real file).

    Args:
        path: the output file.
        suffix: the suffix it must end with (".keras", ".npz").
    """
    path = os.fspath(path)
    if path.endswith(os.sep) or os.path.isdir(path):
        raise ValueError(f"the output {path!r} is a folder; give a file name")
    if not path.endswith(suffix):
        raise ValueError(f"the output must end with {suffix}, got {path!r}")
    if os.path.isdir(path):
        raise ValueError(f"the output {path!r} is a folder; give a file name")
    folder, name = os.path.split(os.path.abspath(path))
    longest = len(f"{PARTIAL_PREFIX}{os.getpid()}-{name}.keras".encode())
    if longest > MAX_NAME_BYTES:
        raise ValueError(
            f"the output file name is too long ({len(name.encode())} bytes; at most "
            f"{MAX_NAME_BYTES - longest + len(name.encode())} here)"
        )
    if not os.path.isdir(folder):
        raise ValueError(f"the output folder {folder!r} does not exist")
    probe = os.path.join(folder, f"{PARTIAL_PREFIX}{os.getpid()}-write-test")
    try:
        with open(probe, "w"):
            pass
        os.remove(probe)
    except OSError as error:
        raise ValueError(
            f"cannot write to the output folder {folder!r} ({error.strerror})"
        ) from None


@contextlib.contextmanager
def output_lock(path):
    """Refuses a second run writing the same output at the same time.

    Holds an exclusive `flock` on `PATH.lock` for the duration of the block;
    the operating system releases it when the process ends, even on `kill
    -9`, so a stale lock never blocks a later run. (No lock where `fcntl` is
    missing, e.g. Windows.)
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    lock_path = f"{os.fspath(path)}.lock"
    with open(lock_path, "a+") as file:
        try:
            fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            file.seek(0)
            owner = file.read().strip() or "another process"
            raise ValueError(
                f"another run (pid {owner}) is writing {os.fspath(path)!r}; wait "
                "for it to finish or choose another --output"
            ) from None
        file.seek(0)
        file.truncate()
        file.write(str(os.getpid()))
        file.flush()
        try:
            yield
        finally:
            _remove(lock_path)
