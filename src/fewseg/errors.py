"""Errors that fewseg reports to users as one clear line.

Every problem with a user's input is an :class:`InputError` that names the file, the
field (or place in the file) and what was expected. The CLI prints ``str(error)`` and
exits with status 2; the Python API lets it propagate.
"""

from __future__ import annotations

import os


class FewsegError(Exception):
    """Base class of the errors fewseg raises on purpose."""


class InputError(FewsegError, ValueError):
    """A user's file or argument is not what fewseg needs.

    Parameters
    ----------
    source : str or path-like
        The file (or ``"--option"`` for a command-line value) the problem is in.
    problem : str
        What is wrong and what was expected, e.g. ``"expected a list of annotations"``.
    field : str, optional
        Where in the source: a JSON path, an axis name, an annotation index.

    Examples
    --------
    >>> str(InputError("a.json", "expected a list", field="annotations[3].coordinates"))
    'a.json: annotations[3].coordinates: expected a list'
    """

    def __init__(self, source: str | os.PathLike, problem: str, *, field: str | None = None):
        self.source = os.fspath(source)
        self.field = field
        self.problem = problem
        where = f"{self.source}: {field}" if field else self.source
        super().__init__(f"{where}: {problem}")

    def __reduce__(self):  # travels intact from a worker process (fewseg.scale)
        return _rebuild_input_error, (type(self), self.source, self.problem, self.field)


def _rebuild_input_error(cls, source, problem, field):
    return cls(source, problem, field=field)


class MissingDependencyError(FewsegError, ImportError):
    """An optional library is needed for what was asked; the message says how to install it."""


def require(module: str, *, extra: str, purpose: str):
    """Import an optional module or raise :class:`MissingDependencyError` with an install hint."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"{purpose} needs the Python package '{module}', which is not installed "
            f"({exc}). Install it with: pip install 'fewseg[{extra}]'"
        ) from exc
