"""Atomic writes: an output file is either absent, its earlier version, or complete.

A file is written to a temporary name beside its target, flushed to disk, then put in place in
one step: with ``force`` by ``os.replace`` (any earlier file is swapped out whole), without it by
``os.link`` (an atomic exclusive create: of two writers racing for the same new name exactly one
wins, the other gets :class:`FileExistsError` and its output is discarded). The temporary name is
``.NAME.PID.XXXXXXXX.tmp``; one left behind by a process that was killed mid-write is removed by
the next write to the same target (only names of this pattern whose process no longer runs).
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


def remove_stale_temporaries(target: Path) -> list[Path]:
    """Remove temporaries of :func:`atomic_write` for ``target`` whose writer is gone."""
    pattern = re.compile(rf"^\.{re.escape(target.name)}\.(\d+)\.[A-Za-z0-9_]+\.tmp$")
    removed = []
    with contextlib.suppress(OSError):
        for entry in os.scandir(target.parent):
            m = pattern.match(entry.name)
            if m and not _pid_alive(int(m.group(1))):
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
                    removed.append(Path(entry.path))
    return removed


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], *, force: bool = False,
                 mode: str = "wb") -> Iterator[Any]:
    """Open a temporary file beside ``path``; on success put it in place atomically.

    Parameters
    ----------
    path : path-like
        The file to write. Its folder is created if missing.
    force : bool
        Replace an existing file. Without it an existing ``path`` raises
        :class:`FileExistsError` (before anything is written, and again at the end if another
        process created it meanwhile: exactly one of two racing writers wins).
    mode : {"wb", "w"}
        Binary or text.

    A failure inside the block (an exception, or the process being killed) leaves any earlier
    file at ``path`` untouched and no partial file under its name.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> with atomic_write(folder / "a.txt", mode="w") as fh:
    ...     _ = fh.write("hello")
    >>> (folder / "a.txt").read_text()
    'hello'
    >>> try:
    ...     with atomic_write(folder / "a.txt", mode="w") as fh:
    ...         _ = fh.write("again")
    ... except FileExistsError as exc:
    ...     print("refused")
    refused
    """
    target = Path(path)
    if mode not in ("wb", "w"):
        raise ValueError(f"mode must be 'wb' or 'w'; got {mode!r}")
    if not force and target.exists():
        raise FileExistsError(errno.EEXIST, "file exists", str(target))
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(target)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.{os.getpid()}.", suffix=".tmp",
                               dir=target.parent)
    # mkstemp creates 0600; give the file the permissions a plain open() would (umask applied)
    os.chmod(tmp, 0o666 & ~_umask())
    try:
        with os.fdopen(fd, mode) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        if force:
            os.replace(tmp, target)
        else:
            _link_exclusive(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _link_exclusive(tmp: str, target: Path) -> None:
    """Create ``target`` from ``tmp`` only if it does not exist (atomic), else FileExistsError."""
    try:
        os.link(tmp, target)
    except FileExistsError:
        raise FileExistsError(errno.EEXIST, "file exists", str(target)) from None
    except OSError as exc:  # a file system without hard links: fall back to check-then-rename
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV,
                             errno.EMLINK):
            raise
        if target.exists():
            raise FileExistsError(errno.EEXIST, "file exists", str(target)) from None
        os.replace(tmp, target)
