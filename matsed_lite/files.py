"""Writing and reading the package's files safely.

Every file the package writes goes through ``atomic_path``: the content goes to a
temporary file in the same folder, is flushed to disk, gets the mode a newly
created file would get (``0o666 & ~umask``, or the mode of the file it replaces)
and is renamed over the target. An interruption (Ctrl-C, kill -9, a full disk)
leaves either the old file or the complete new one, never a partial one.

Every ``.pt`` file a user can hand over is read by ``load_torch_file``:
``torch.load(weights_only=True)``, which unpickles tensors, numbers, strings,
lists, tuples and dicts only. A file whose pickle names anything else (such as
a ``__reduce__`` payload that would run a command) is refused, not executed.
"""
from __future__ import annotations

import json
import os
import pickle
import stat
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator


class CheckpointError(ValueError):
    """A ``.pt`` file that cannot be used: unsafe, truncated, foreign or of another kind."""


class SetupError(RuntimeError):
    """Something the user has to provide (model weights that could not be downloaded
    or read); the message says what to do."""


class MissingPackageError(ImportError):
    """An optional package is not installed; the message names the pip command."""


def _umask() -> int:
    """The process's umask (read from /proc where it exists: no global change)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def new_file_mode(path: Path) -> int:
    """The mode ``path`` keeps (if it exists) or a normal new file gets."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return 0o666 & ~_umask()


@contextmanager
def atomic_path(path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success, flush it to disk, give it
    a normal file's mode and rename it over ``path``; on any error remove it.

    Raises IsADirectoryError when ``path`` is a folder (nothing is written)."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(21, "is a folder; give a file name", str(path))
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, new_file_mode(path))
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)


def _fsync_folder(folder: Path) -> None:
    try:  # the rename itself reaches the disk (POSIX; not possible on Windows)
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_text(path, text: str) -> Path:
    """Write UTF-8 text atomically (``\\n`` line ends)."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
    return Path(path)


def write_json(path, obj: Any, **kwargs) -> Path:
    """Write ``json.dumps(obj, **kwargs)`` (indent 2 by default) atomically."""
    kwargs.setdefault("indent", 2)
    return write_text(path, json.dumps(obj, **kwargs) + "\n")


def save_torch(obj: Any, path) -> Path:
    """``torch.save`` atomically. Keep ``obj`` to tensors, numbers, strings, lists,
    tuples and dicts, so ``load_torch_file`` can read it back."""
    # torch is imported here, not at the top: the TSV writers use this module too, and
    # the synth worker processes would pay torch's start-up (about a second) for nothing.
    import torch

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
    return Path(path)


def save_figure(fig, path, **kwargs) -> Path:
    """``fig.savefig`` atomically (the format is the file's extension)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=path.suffix.lstrip(".") or "png", **kwargs)
    return path


def load_torch_file(path, map_location="cpu", what: str = "checkpoint") -> Any:
    """``torch.load(weights_only=True)``: loads data, never runs code.

    Raises FileNotFoundError for a missing file and ``CheckpointError`` (naming the
    file) for one that holds other objects, is truncated or is not a torch file."""
    path = Path(path)
    if not path.is_file():
        if path.is_dir():
            raise IsADirectoryError(21, f"is a folder, not a {what} file", str(path))
        raise FileNotFoundError(2, f"no {what} file here", str(path))
    import torch  # see save_torch: start-up of torch-free users of this module

    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        text = str(exc)
        found = [l.strip() for l in text.splitlines() if "GLOBAL" in l or "global" in l.lower()]
        if any("unsupported global" in l.lower() or "GLOBAL" in l for l in found):
            named = next((l for l in found if "GLOBAL" in l), found[0])
            raise CheckpointError(
                f"{path}: refused to load: it holds objects other than tensors, numbers and "
                f"strings, so unpickling it could run code ({named[:120]}). Use a {what} "
                f"written by matsed-lite") from None
        raise CheckpointError(f"{path}: not a torch {what} file; give one written by "
                              f"matsed-lite") from None
    except OSError:
        raise
    except (EOFError, RuntimeError, MemoryError, ValueError, TypeError, AttributeError,
            IndexError, KeyError, UnicodeDecodeError) as exc:
        kind = "truncated (an interrupted write?)" if isinstance(exc, EOFError) else \
            f"not a readable torch {what} file ({type(exc).__name__})"
        raise CheckpointError(f"{path}: {kind}; make it again or give another file") from None


def require_keys(ck: Any, keys, path, what: str) -> dict:
    """``ck`` as a dict holding ``keys``, else a ``CheckpointError`` naming the file."""
    if not isinstance(ck, dict):
        raise CheckpointError(f"{path}: not a matsed-lite {what} (holds a {type(ck).__name__})")
    missing = [k for k in keys if k not in ck]
    if missing:
        raise CheckpointError(f"{path}: not a matsed-lite {what} (no {', '.join(missing)}); "
                              f"give one written by matsed-lite")
    return ck


# What the CLI says for the operating system's own messages about a path.
_FRIENDLY = {"Is a directory": "is a folder; give a file name",
             "Not a directory": "a part of this path is a file, not a folder",
             "File exists": "exists and is not a folder; choose another path",
             "No such file or directory": "not found",
             "Permission denied": "permission denied; choose a path you may write (or read)",
             "Read-only file system": "read-only file system; choose another path",
             "No space left on device": "no space left on the disk; free some or choose another path"}


def one_line_error(exc: BaseException) -> str | None:
    """The one line the CLI prints for an expected failure: a path that cannot be read
    or written (named), memory, a truncated file, bad data or settings (their own
    message). None for anything else: a bug, which keeps its traceback."""
    if isinstance(exc, OSError):
        name = getattr(exc, "filename", None)
        if name is None:
            return str(exc)
        text = exc.strerror or str(exc)
        return f"{name}: {_FRIENDLY.get(text, text)}"
    if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":
        return "out of memory; close other programs, use a smaller --preset or fewer files at once"
    if isinstance(exc, EOFError):
        return f"a file ended early (truncated by an interrupted write?): {exc}"
    if isinstance(exc, (ValueError, SetupError, MissingPackageError)):
        return str(exc)  # DataError, AudioError, CheckpointError, bad settings, set-up
    return None
