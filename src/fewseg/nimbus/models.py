"""Which SAM checkpoints a worker image holds.

A checkpoint is in the image when it is in fewseg's cache (``fewseg models download`` at
build time puts it there; ``$FEWSEG_CACHE`` moves the cache) or when the image names a
file of its own for a registry model in ``$FEWSEG_NIMBUS_CHECKPOINTS``
(``"sam1_vit_b=/weights/lab_finetuned.pt,..."``: a lab's fine-tuned weights for that
architecture).
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import FewsegError, InputError
from ..sam.registry import CHECKPOINTS, cached_path, resolve_checkpoint

ENV_CHECKPOINTS = "FEWSEG_NIMBUS_CHECKPOINTS"


def own_checkpoints() -> dict[str, Path]:
    """The image's own files named in ``$FEWSEG_NIMBUS_CHECKPOINTS``, by registry name."""
    out = {}
    for part in os.environ.get(ENV_CHECKPOINTS, "").split(","):
        name, sep, path = part.strip().partition("=")
        if not part.strip():
            continue
        if not sep or name not in CHECKPOINTS:
            raise InputError(ENV_CHECKPOINTS, f"expected 'model=path' with a model from 'fewseg models list', got {part!r}")
        out[name] = Path(path).expanduser()
    return out


def available() -> list[str]:
    """Registry names whose weights are in this image (own files first, then the cache)."""
    own = own_checkpoints()
    return [*own, *(n for n in CHECKPOINTS if n not in own and cached_path(n).is_file())]


def checkpoint_for(name: str) -> str:
    """The file to load for model ``name``; :class:`InputError` if this image does not hold it."""
    here = available()
    own = own_checkpoints()
    if name in own:
        return str(resolve_checkpoint(name, checkpoint=own[name], progress=False))
    if name not in CHECKPOINTS:
        raise InputError("Model", f"unknown model {name!r}; this worker holds: {', '.join(here) or 'none'}")
    try:
        return str(resolve_checkpoint(name, progress=False))
    except FewsegError:
        raise InputError(
            "Model",
            f"the model {name!r} is not in this worker's image; choose one of: {', '.join(here) or 'none'} "
            "(or use the classic method, which needs no model; a lab adds models with 'fewseg models download' "
            "when building the image)",
        ) from None
