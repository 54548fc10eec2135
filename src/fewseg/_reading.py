"""The one place where what a reading library raises or logs becomes an :class:`InputError`.

Every reader of a user's file (``load.py``'s TIFF and Pillow readers, the annotation
readers, and any reader added beside them) wraps its calls into the library in
:func:`library_errors`. Inside it:

* an exception of the kinds that parsing libraries raise on corrupt input (tifffile
  raises ``ZeroDivisionError`` for a width of 0, ``AssertionError`` for 0 bits per sample,
  ``zlib.error`` for a compression tag that does not match the data, ``RecursionError``
  for JSON nested too deep...) becomes ``InputError(source, "cannot read it as KIND ...")``;
* ``MemoryError`` says the file is too large for this machine's memory;
* ``ImportError`` (a codec such as ``imagecodecs`` that the file needs) names the package;
* a WARNING or ERROR the library logs (tifffile logs and goes on when a page is lost,
  when OME metadata promises more planes than are stored, when bytes are missing, and
  then returns zero-filled or fewer planes) is an error too: fewseg refuses a damaged
  file rather than segment what the library guessed.

:func:`check_memory` refuses a declared image size before anything is read.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import stat
import struct
import zlib
from typing import Iterator

from .errors import FewsegError, InputError

__all__ = ["LIBRARY_ERRORS", "available_memory", "check_input_file", "check_memory", "describe", "library_errors"]

# What tifffile, imageio / Pillow and json raise on corrupt or hostile input. RecursionError
# is a RuntimeError; OverflowError and ZeroDivisionError are ArithmeticErrors; TiffFileError
# and JSONDecodeError are ValueErrors.
LIBRARY_ERRORS = (
    ValueError, TypeError, OSError, EOFError, SyntaxError, struct.error, zlib.error, LookupError,
    ArithmeticError, AssertionError, RuntimeError, NotImplementedError,
)


def describe(exc: BaseException, *, limit: int = 200) -> str:
    """One line saying what ``exc`` was: its first line (or its type), at most ``limit`` characters."""
    if isinstance(exc, OSError) and exc.strerror:
        text = exc.strerror
    else:
        text = next((line.strip() for line in str(exc).splitlines() if line.strip()), "") or type(exc).__name__
    text = re.sub(r"<tifffile\.\w+ '[^']*'(?: @\d+)?> ", "", text)  # tifffile prefixes messages with the object
    return text if len(text) <= limit else text[: limit - 3] + "..."


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextlib.contextmanager
def library_errors(source: str, kind: str, *, loggers: tuple[str, ...] = ("tifffile",),
                   also: tuple[type[BaseException], ...] = ()) -> Iterator[None]:
    """Translate what reading ``source`` as ``kind`` raised or logged into one :class:`InputError`.

    Parameters
    ----------
    source : str
        The file, named in the message.
    kind : str
        What it was read as: ``"TIFF"``, ``"an image"``, ``"JSON"``.
    loggers : tuple of str
        Loggers of the library whose WARNING and ERROR records mean a damaged file. They
        are collected (not printed) while the block runs.
    also : tuple of exception types
        More exceptions that mean a malformed file for this library (``AttributeError``
        for readers that walk metadata without checking its types, as ome-zarr does).

    Examples
    --------
    >>> with library_errors("a.tif", "TIFF"):
    ...     1 / 0
    Traceback (most recent call last):
    fewseg.errors.InputError: a.tif: cannot read it as TIFF (corrupt, truncated or another format): division by zero
    """
    handler = _Collect()
    saved = []
    for name in loggers:
        logger = logging.getLogger(name)
        saved.append((logger, logger.propagate))
        logger.addHandler(handler)
        logger.propagate = False
    try:
        yield
    except FewsegError:
        raise
    except MemoryError:
        raise InputError(source, f"too large to read as {kind} into this machine's memory") from None
    except ImportError as exc:
        package = exc.name or describe(exc)
        raise InputError(
            source, f"cannot read it as {kind}: its encoding needs the Python package {package!r} (pip install {package})"
        ) from None
    except (*LIBRARY_ERRORS, *also) as exc:
        raise InputError(source, f"cannot read it as {kind} (corrupt, truncated or another format): {describe(exc)}") from None
    finally:
        for logger, propagate in saved:
            logger.removeHandler(handler)
            logger.propagate = propagate
        for record in handler.records:  # pass them on, for whoever listens (the CLI's --verbose)
            logging.getLogger(record.name).handle(record)
    if handler.records:
        message = describe(Exception(handler.records[0].getMessage()))
        raise InputError(source, f"damaged {kind}: {message}")


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (``MemAvailable``), or None if unknown."""
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_memory(source: str, nbytes: int, what: str) -> None:
    """Refuse to read ``nbytes`` when this machine does not have that much memory free.

    Examples
    --------
    >>> check_memory("big.tif", 2**80, "a 2^40 x 2^40 image")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    fewseg.errors.InputError: big.tif: declares a 2^40 x 2^40 image (...), more than the ... GB of memory available
    """
    free = available_memory()
    if free is not None and nbytes > free:
        raise InputError(source, f"declares {what} ({nbytes / 1e9:.3g} GB), more than the "
                                 f"{free / 1e9:.1f} GB of memory available")


def check_input_file(path: str | os.PathLike, *, expected: str = "a file") -> str:
    """``path`` as a string, once it is known to be a readable, non-empty regular file.

    A missing file, a broken or looping symbolic link, a directory, a device or pipe (which
    could block or never end) and an empty file each get their own message.
    """
    source = os.fspath(path)
    try:
        info = os.stat(source)
    except FileNotFoundError:
        broken = os.path.islink(source)
        raise InputError(source, "is a broken symbolic link (its target does not exist)" if broken else "no such file") from None
    except OSError as exc:
        raise InputError(source, f"cannot open the file ({describe(exc)})") from None
    except ValueError as exc:  # an embedded NUL byte
        raise InputError(source, f"not a usable file name ({describe(exc)})") from None
    if stat.S_ISDIR(info.st_mode):
        raise InputError(source, f"is a directory, expected {expected}")
    if not stat.S_ISREG(info.st_mode):
        raise InputError(source, f"is not a regular file (a device, pipe or socket); expected {expected}")
    if info.st_size == 0:
        raise InputError(source, f"the file is empty; expected {expected}")
    if not os.access(source, os.R_OK):
        raise InputError(source, "cannot open the file (permission denied)")
    return source
