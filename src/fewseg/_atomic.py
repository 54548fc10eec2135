"""Atomic file output: a result file is either complete or absent, never half-written.

Every file fewseg writes goes through :func:`atomic_path` (or :func:`atomic_open`). A
command that writes several files (the result, its ``.fewseg.json`` side file, an
overlay) checks every name first with :func:`check_output_path` and writes them inside
:func:`committed_together`, so that either all of them appear or none does. A write
that fails (a full disk, a name the file system refuses) is one :class:`InputError`
naming the file.
"""

from __future__ import annotations

import contextlib
import contextvars
import errno
import os
import stat
import tempfile
from pathlib import Path
from typing import IO, Iterator, Sequence

from .errors import InputError

__all__ = ["atomic_open", "atomic_path", "check_output_path", "committed_together"]

# Inside committed_together: the (temporary, final) pairs waiting to be moved into place.
_PENDING: contextvars.ContextVar[list | None] = contextvars.ContextVar("fewseg_pending_outputs", default=None)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it onto ``path`` only on success.

    The temporary file lives in the same directory, so the final ``os.replace`` is atomic
    on POSIX and Windows. On any exception the temporary file is removed and ``path``
    is untouched. Inside :func:`committed_together` the move waits for the group.
    An operating-system error while writing (no space left, file too large, a name the
    file system refuses) becomes an :class:`InputError` naming ``path``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> with atomic_path(d / "out.txt") as tmp:
    ...     _ = tmp.write_text("done")
    >>> (d / "out.txt").read_text()
    'done'
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name[:200]}.", suffix=".part", dir=path.parent)
        os.close(fd)
    except OSError as exc:
        raise _write_error(path, exc) from None
    tmp = Path(tmp_name)
    # mkstemp makes the file owner-only (0600); give it the permissions a plain open()
    # would (0666 less the umask), so results can be shared like any other file.
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.chmod(tmp, 0o666 & ~umask)
        yield tmp
        pending = _PENDING.get()
        if pending is None:
            os.replace(tmp, path)
        else:
            pending.append((tmp, path))
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise _write_error(path, exc) from None
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", **kwargs) -> Iterator[IO]:
    """Open a file for writing atomically (see :func:`atomic_path`)."""
    if not any(m in mode for m in "wx"):
        raise ValueError(f"atomic_open writes files; got mode {mode!r}")
    with atomic_path(path) as tmp:
        with open(tmp, mode, **kwargs) as handle:
            yield handle


@contextlib.contextmanager
def committed_together() -> Iterator[None]:
    """Write several files as one: each :func:`atomic_path` inside waits, all move at the end.

    If anything inside raises, every file written so far is discarded and no target is
    touched.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> try:
    ...     with committed_together():
    ...         with atomic_open(d / "a.txt") as f:
    ...             _ = f.write("a")
    ...         raise RuntimeError("the second file failed")
    ... except RuntimeError:
    ...     pass
    >>> sorted(p.name for p in d.iterdir())
    []
    """
    pending: list = []
    token = _PENDING.set(pending)
    try:
        yield
    except BaseException:
        for tmp, _ in pending:
            with contextlib.suppress(OSError):
                tmp.unlink()
        raise
    finally:
        _PENDING.reset(token)
    moved = 0
    try:
        for tmp, path in pending:
            os.replace(tmp, path)
            moved += 1
    except OSError as exc:
        for tmp, _ in pending[moved:]:
            with contextlib.suppress(OSError):
                tmp.unlink()
        raise _write_error(pending[moved][1], exc) from None


def _write_error(path: Path, exc: OSError) -> InputError:
    reason = exc.strerror or str(exc) or type(exc).__name__
    with contextlib.suppress(OSError):
        if any(parent.exists() and not parent.is_dir() for parent in path.parents):
            reason = "a folder in its path is a regular file"
    if exc.errno == errno.EFBIG:
        reason += " (the file size limit was reached)"
    return InputError(str(path), f"cannot write the file: {reason}")


def check_output_path(path: str | os.PathLike, *, inputs: Sequence[str | os.PathLike | None] = (),
                      others: Sequence[str | os.PathLike | None] = (), option: str | None = None) -> Path:
    """Check before any work that ``path`` can be written and overwrites nothing it must not.

    Parameters
    ----------
    path : path-like
        An output file. It may exist (a regular file, replaced atomically); a missing
        parent folder is created when it is written.
    inputs : sequence of path-like
        The command's input files: ``path`` must not be any of them (compared by the
        file they are, so another spelling, a symbolic link or a hard link is caught).
    others : sequence of path-like
        The command's other outputs: ``path`` must differ from each.
    option : str, optional
        The option that named ``path`` (``"--overlay"``), for the message.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    InputError
        ``path`` is a directory, a device or a broken or looping symbolic link; it lies under
        a regular file; a name in it is too long; it is an input or another output.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> check_output_path(d, option="-o")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    fewseg.errors.InputError: ...: -o: is a directory; expected a file name to write
    """
    path = Path(path)
    where = str(path)

    def refuse(problem: str):
        raise InputError(where, problem, field=option)

    try:
        os.fspath(path).encode("utf-8")
        if "\0" in os.fspath(path):
            refuse("the name holds a NUL byte")
    except UnicodeEncodeError:
        refuse("the name is not valid text")
    if not path.name or path.name in (".", ".."):
        refuse("expected a file name to write")
    for part in path.parts:
        if len(os.fsencode(part)) > 255:
            refuse(f"a name in it is {len(os.fsencode(part))} bytes long; file systems allow at most 255")
    if len(os.fsencode(os.path.abspath(path))) >= 4096:
        refuse("the path is longer than the 4096 bytes file systems allow")
    info = _stat(path, refuse, "is")
    if info is not None:
        if stat.S_ISDIR(info.st_mode):
            refuse("is a directory; expected a file name to write")
        if not stat.S_ISREG(info.st_mode):
            refuse("is not a regular file (a device, pipe or socket); expected a file name to write")
    else:
        _check_parent(path, refuse)
    for kind, names in (("an input file", inputs), ("another output", others)):
        for other in names:
            if other is not None and _same_file(path, Path(other), info):
                refuse(f"would overwrite {kind} ({other}); choose another name")
    return path


def _check_parent(path: Path, refuse) -> None:
    """The first existing folder above ``path`` must be a folder (not a file) we can write in."""
    parent = path.parent if str(path.parent) else Path(".")
    while (info := _stat(parent, refuse, f"the folder {str(parent)!r} is")) is None:
        if parent == parent.parent:
            return
        parent = parent.parent
    if not stat.S_ISDIR(info.st_mode):
        refuse(f"{str(parent)!r} is a regular file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        refuse(f"the folder {str(parent)!r} is not writable")


def _stat(path: Path, refuse, subject: str):
    """``os.stat(path)``, None when nothing is there; a broken or looping link is refused."""
    try:
        return os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            refuse(f"{subject} a broken symbolic link (to {os.readlink(path)!r}); remove it or choose another name")
        return None
    except NotADirectoryError:
        refuse("a folder in the path is a regular file")
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            refuse(f"{subject} a symbolic link loop (or lies under one)")
        refuse(f"cannot use this name ({exc.strerror or exc})")


def _same_file(path: Path, other: Path, info) -> bool:
    """Whether ``path`` (``info``: its stat, or None when absent) names the same file as ``other``."""
    try:
        other_info = os.stat(other)
    except (OSError, ValueError):
        other_info = None
    if info is not None and other_info is not None:
        return (info.st_dev, info.st_ino) == (other_info.st_dev, other_info.st_ino)
    try:
        return os.path.realpath(path) == os.path.realpath(other)
    except (OSError, ValueError):
        return False
