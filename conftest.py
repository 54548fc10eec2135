"""Collection rules for the whole suite (tests/ and the doctests under src/)."""

import importlib.util

# The napari plugin's modules import napari / magicgui at the top; without the
# `napari` extra their doctests cannot be collected (tests/test_napari.py skips itself).
collect_ignore_glob = []
if any(importlib.util.find_spec(m) is None for m in ("napari", "magicgui")):
    collect_ignore_glob.append("src/fewseg/napari/*.py")
