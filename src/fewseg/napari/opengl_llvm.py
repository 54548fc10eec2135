"""SAM in a napari that draws with software OpenGL: keep triton's LLVM out.

napari's canvas, on a machine without GPU OpenGL (Xvfb, a remote desktop, a VM), draws
with Mesa's llvmpipe, which maps the system's LLVM (``libLLVM-*.so``) into the process
when the viewer opens. torchvision's ops import ``torch._dynamo``, which imports triton
when it is installed, and loading triton's ``libtriton.so`` (an LLVM of its own, linked
in) after Mesa's LLVM crashes the whole process (a segfault, in ``triton/knobs.py``:
``from triton._C.libtriton import ...``). Importing torch first does not help (torch
alone does not load triton); importing torchvision before napari does (triton's LLVM
then comes first).

A plugin opens after the viewer, so it cannot import first. Before a SAM run
(:func:`prepare_sam`), where a foreign LLVM is already mapped and triton is not yet
loaded, triton is made unimportable for this process (``sys.modules["triton"] = None``):
torch then runs without it (it is only used to compile, which fewseg does not do) and
anything else that asks for triton gets an ImportError instead of a crash.
Nothing changes where no foreign LLVM is mapped (GPU OpenGL, or no viewer).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

#: Where the shared objects a process has mapped are listed (Linux).
MAPS = Path("/proc/self/maps")


def foreign_llvm(maps: str | None = None) -> list[str]:
    """Shared LLVM libraries mapped into this process (``libLLVM*.so``, e.g. Mesa's).

    ``maps``: the text of ``/proc/self/maps`` (read when None; [] where there is none).

    Examples
    --------
    >>> foreign_llvm("7f0-7f1 r-xp 0 08:01 12 /usr/lib/x86_64-linux-gnu/libLLVM-15.so.1\\n"
    ...              "7f2-7f3 r-xp 0 08:01 13 /usr/lib/libc.so.6\\n")
    ['/usr/lib/x86_64-linux-gnu/libLLVM-15.so.1']
    """
    if maps is None:
        try:
            maps = MAPS.read_text()
        except OSError:  # not Linux: no Mesa llvmpipe to clash with
            return []
    paths = {line.split(maxsplit=5)[-1] for line in maps.splitlines() if len(line.split(maxsplit=5)) == 6}
    return sorted(p for p in paths if Path(p).name.startswith("libLLVM"))


def prepare_sam() -> str:
    """Make a SAM run safe in this process; returns what was done ("" when nothing was).

    Call on the GUI thread before the run imports torch / torchvision. Where triton is
    installed but not loaded and another LLVM is mapped (software OpenGL), triton is made
    unimportable for this process (the module docstring says why).
    """
    if "triton" in sys.modules or importlib.util.find_spec("triton") is None:
        return ""  # loaded already (so it came first and is safe), or absent
    mapped = foreign_llvm()
    if not mapped:
        return ""
    sys.modules["triton"] = None  # `import triton` now raises ImportError; torch checks for that
    return (f"triton left out of this napari process (its LLVM would crash beside {Path(mapped[0]).name}, "
            "loaded by software OpenGL); SAM runs without it")
