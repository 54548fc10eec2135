"""The ``fewseg`` command: one module per command over the library.

* :mod:`~fewseg.cli.main`: the parser, one-line errors, ``--verbose``.
* :mod:`~fewseg.cli.segment` (``fewseg segment``), :mod:`~fewseg.cli.evaluate`
  (``fewseg evaluate``), :mod:`~fewseg.cli.demo` (``fewseg demo``),
  :mod:`~fewseg.cli.sweep` (``fewseg sweep``), :mod:`~fewseg.cli.models` (``fewseg models``).
* :mod:`~fewseg.cli.options`: the options the commands share and how they become a
  :class:`~fewseg.config.SegmentConfig`, a frame and its annotations.
"""

from .main import build_parser, main

__all__ = ["build_parser", "main"]
