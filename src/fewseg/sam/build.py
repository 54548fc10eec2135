"""Build Segment Anything models (SAM1 and SAM2.1) and load their checkpoints.

:func:`load_sam` is the one loader that the CLI, the library and the tests share. It
builds the real architectures of the official packages (``segment_anything`` and
``sam2``) and loads a state dict into them strictly.

Which architecture a file gets
------------------------------
* The *name* (``"sam1_vit_b"``, ``"sam2.1_tiny"``...) says the family (SAM1 or SAM2).
* A checkpoint written by fewseg (:func:`save_tiny`) carries its own architecture,
  ``{"fewseg_arch": {...}, "model": state_dict}``; that description wins over the
  architecture the name implies. So ``load_sam("sam1_vit_b", checkpoint="tiny_sam1.pt")``
  loads a tiny SAM1. The file's family must still match the name's family.
* Any other file is an official one: SAM1 files are bare state dicts built with the
  official ``vit_h`` / ``vit_l`` / ``vit_b`` hyper-parameters; SAM2 files are
  ``{"model": state_dict}`` built from the packaged ``sam2`` config of the name.

SAM2 is built with ``apply_postprocessing=False`` (as the official automatic mask
generator notebook does): with it, single-mask prediction silently swaps in the best
multimask output when the single mask is unstable; fewseg asks for the three masks
itself and chooses among them, so it wants the raw decoder.

``import sam2`` initialises Hydra, so it is imported only when a SAM2 model is built.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from .._atomic import atomic_path
from ..errors import FewsegError, InputError, require

FAMILIES = ("sam1", "sam2")

# Official SAM1 hyper-parameters (segment_anything/build_sam.py).
_SAM1_COMMON = {
    "family": "sam1",
    "image_size": 1024,
    "patch_size": 16,
    "window_size": 14,
    "mlp_ratio": 4.0,
    "prompt_embed_dim": 256,
    "mask_in_chans": 16,
    "decoder_depth": 2,
    "decoder_mlp_dim": 2048,
    "decoder_num_heads": 8,
    "iou_head_depth": 3,
    "iou_head_hidden_dim": 256,
    "pixel_mean": [123.675, 116.28, 103.53],
    "pixel_std": [58.395, 57.12, 57.375],
}
SAM1_ARCHS = {
    "vit_h": {"encoder_embed_dim": 1280, "encoder_depth": 32, "encoder_num_heads": 16,
              "encoder_global_attn_indexes": [7, 15, 23, 31]},
    "vit_l": {"encoder_embed_dim": 1024, "encoder_depth": 24, "encoder_num_heads": 16,
              "encoder_global_attn_indexes": [5, 11, 17, 23]},
    "vit_b": {"encoder_embed_dim": 768, "encoder_depth": 12, "encoder_num_heads": 12,
              "encoder_global_attn_indexes": [2, 5, 8, 11]},
}
_SAM1_KEYS = set(_SAM1_COMMON) | set(SAM1_ARCHS["vit_b"])

# The tiny SAM1 used by tests and train_tiny: the same classes at small sizes.
TINY_SAM1 = {
    "image_size": 512,
    "encoder_embed_dim": 64,
    "encoder_depth": 2,
    "encoder_num_heads": 2,
    "encoder_global_attn_indexes": [1],
    "window_size": 8,
    "prompt_embed_dim": 64,
    "decoder_mlp_dim": 256,
    # One head: the decoder's attention then compares 32-d projections of the prompt and
    # image positional encodings (train_tiny initialises it to do exactly that).
    "decoder_num_heads": 1,
    "iou_head_hidden_dim": 64,
}

SAM2_CONFIGS = {
    "hiera_t": "configs/sam2.1/sam2.1_hiera_t.yaml",
    "hiera_s": "configs/sam2.1/sam2.1_hiera_s.yaml",
    "hiera_b+": "configs/sam2.1/sam2.1_hiera_b+.yaml",
    "hiera_l": "configs/sam2.1/sam2.1_hiera_l.yaml",
}

# The tiny SAM2: the packaged sam2.1 hiera_t config with these Hydra overrides
# (sizes only; every class is the one the official config names).
TINY_SAM2_CONFIG = SAM2_CONFIGS["hiera_t"]


def tiny_sam2_overrides(*, image_size: int = 256, embed_dim: int = 16, d_model: int = 64,
                        mem_dim: int = 16) -> dict:
    """Hydra overrides (``key -> value``) that shrink the sam2.1 hiera_t config."""
    feat = image_size // 16
    return {
        "model.image_size": image_size,
        "model.image_encoder.trunk.embed_dim": embed_dim,
        "model.image_encoder.trunk.num_heads": 1,
        "model.image_encoder.trunk.stages": [1, 1, 2, 1],
        # a q-pooling block (first of a stage) cannot be global: block 3 is 2nd of stage 3
        "model.image_encoder.trunk.global_att_blocks": [3],
        "model.image_encoder.trunk.window_spec": [8, 4, 8, 8],
        "model.image_encoder.trunk.window_pos_embed_bkg_spatial_size": [4, 4],
        "model.image_encoder.neck.d_model": d_model,
        "model.image_encoder.neck.position_encoding.num_pos_feats": d_model,
        "model.image_encoder.neck.backbone_channel_list":
            [embed_dim * 8, embed_dim * 4, embed_dim * 2, embed_dim],
        "model.memory_attention.d_model": d_model,
        "model.memory_attention.num_layers": 1,
        "model.memory_attention.layer.d_model": d_model,
        "model.memory_attention.layer.dim_feedforward": d_model,
        "model.memory_attention.layer.self_attention.embedding_dim": d_model,
        "model.memory_attention.layer.self_attention.feat_sizes": [feat, feat],
        "model.memory_attention.layer.cross_attention.embedding_dim": d_model,
        "model.memory_attention.layer.cross_attention.feat_sizes": [feat, feat],
        "model.memory_attention.layer.cross_attention.kv_in_dim": mem_dim,
        "model.memory_encoder.out_dim": mem_dim,
        "model.memory_encoder.in_dim": d_model,
        "model.memory_encoder.position_encoding.num_pos_feats": mem_dim,
        "model.memory_encoder.mask_downsampler.embed_dim": d_model,
        "model.memory_encoder.fuser.layer.dim": d_model,
        "model.memory_encoder.fuser.num_layers": 1,
    }


def prompt_heads(module):
    """``(prompt_encoder, mask_decoder)`` of an official SAM1 or SAM2 module."""
    if hasattr(module, "sam_mask_decoder"):
        return module.sam_prompt_encoder, module.sam_mask_decoder
    return module.prompt_encoder, module.mask_decoder


@dataclass(eq=False)
class SamModel:
    """A loaded SAM1 or SAM2 model and how to run it.

    Attributes
    ----------
    family : {"sam1", "sam2"}
    name : str
        The registry name it was loaded as (``"sam1_vit_b"``, ``"sam2.1_tiny"``...).
    module : torch.nn.Module
        The official model: ``segment_anything.modeling.Sam`` or
        ``sam2.modeling.sam2_base.SAM2Base``, in eval mode.
    device : torch.device
    image_size : int
        Side of the square model input (1024 for the official models).
    arch : dict
        The architecture description it was built from (JSON-able).
    checkpoint : Path or None
        The file the weights came from.

    Notes
    -----
    Precision policy: SAM1 always runs in float32 (its automatic mask generator breaks
    under bfloat16); SAM2 runs under ``torch.autocast("cuda", dtype=torch.bfloat16)`` on
    CUDA and in float32 elsewhere. :meth:`autocast` gives the right context.
    """

    family: str
    name: str
    module: Any
    device: Any
    image_size: int
    arch: dict = field(default_factory=dict)
    checkpoint: Path | None = None

    @property
    def embed_dim(self) -> int:
        """Channels of the image embedding (256 for the official models)."""
        if self.family == "sam1":
            return int(self.module.prompt_encoder.embed_dim)
        return int(self.module.hidden_dim)

    @property
    def embed_size(self) -> int:
        """Side of the (square) image-embedding grid: ``image_size // 16``."""
        return self.image_size // 16

    @property
    def low_res_size(self) -> int:
        """Side of the low-resolution mask logits: 4 x the embedding grid (256 for 1024)."""
        return 4 * self.embed_size

    def autocast(self):
        """Context manager applying the precision policy (see Notes)."""
        import torch

        if self.family == "sam2" and self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def to(self, device) -> "SamModel":
        """Move to ``device`` (anything :func:`fewseg.sam.device.pick_device` accepts)."""
        from .device import pick_device

        dev = pick_device(device) if device is None or isinstance(device, str) else device
        self.module.to(dev)
        self.device = dev
        return self


# --------------------------------------------------------------------------- SAM1


def sam1_arch(arch: str = "vit_b", **overrides) -> dict:
    """Full SAM1 architecture description: official ``arch`` sizes, then ``overrides``."""
    if arch not in SAM1_ARCHS:
        raise ValueError(f"unknown SAM1 architecture {arch!r}; expected one of {sorted(SAM1_ARCHS)}")
    desc = {**_SAM1_COMMON, **SAM1_ARCHS[arch], **overrides}
    _check_sam1_arch(desc, "<sam1_arch>")
    return desc


def _check_sam1_arch(desc: dict, source) -> None:
    unknown = set(desc) - _SAM1_KEYS
    if unknown:
        raise InputError(source, f"unknown SAM1 architecture keys {sorted(unknown)}", field="fewseg_arch")
    missing = _SAM1_KEYS - set(desc)
    if missing:
        raise InputError(source, f"missing SAM1 architecture keys {sorted(missing)}", field="fewseg_arch")
    size, patch = desc["image_size"], desc["patch_size"]
    if patch != 16 or size % patch:
        raise InputError(source, f"image_size {size} must be a multiple of patch_size 16 "
                         f"(got patch_size {patch})", field="fewseg_arch")


def build_sam1_module(desc: dict):
    """The official ``segment_anything`` ``Sam`` for an architecture description."""
    import torch
    from segment_anything.modeling import (ImageEncoderViT, MaskDecoder, PromptEncoder, Sam,
                                           TwoWayTransformer)

    size, dim = desc["image_size"], desc["prompt_embed_dim"]
    grid = size // desc["patch_size"]
    sam = Sam(
        image_encoder=ImageEncoderViT(
            depth=desc["encoder_depth"],
            embed_dim=desc["encoder_embed_dim"],
            img_size=size,
            mlp_ratio=desc["mlp_ratio"],
            norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
            num_heads=desc["encoder_num_heads"],
            patch_size=desc["patch_size"],
            qkv_bias=True,
            use_rel_pos=True,
            global_attn_indexes=tuple(desc["encoder_global_attn_indexes"]),
            window_size=desc["window_size"],
            out_chans=dim,
        ),
        prompt_encoder=PromptEncoder(
            embed_dim=dim,
            image_embedding_size=(grid, grid),
            input_image_size=(size, size),
            mask_in_chans=desc["mask_in_chans"],
        ),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=3,
            transformer=TwoWayTransformer(
                depth=desc["decoder_depth"],
                embedding_dim=dim,
                mlp_dim=desc["decoder_mlp_dim"],
                num_heads=desc["decoder_num_heads"],
            ),
            transformer_dim=dim,
            iou_head_depth=desc["iou_head_depth"],
            iou_head_hidden_dim=desc["iou_head_hidden_dim"],
        ),
        pixel_mean=list(desc["pixel_mean"]),
        pixel_std=list(desc["pixel_std"]),
    )
    return sam.eval()


# --------------------------------------------------------------------------- SAM2


def _sam2_overrides_list(overrides: dict, source) -> list[str]:
    """Hydra ``++key=value`` strings; only sizes under ``model.`` are accepted (a file
    must not be able to name classes for Hydra to instantiate)."""

    def plain(v):
        if isinstance(v, bool) or isinstance(v, (int, float)):
            return True
        return isinstance(v, (list, tuple)) and all(plain(x) for x in v)

    out = []
    for key, value in overrides.items():
        if not (isinstance(key, str) and key.startswith("model.") and "_target_" not in key
                and all(part.isidentifier() for part in key.split("."))):
            raise InputError(source, f"override key {key!r} is not allowed", field="fewseg_arch.overrides")
        if not plain(value):
            raise InputError(source, f"override {key!r} must be a number or a list of numbers, "
                             f"got {value!r}", field="fewseg_arch.overrides")
        text = str(list(value) if isinstance(value, tuple) else value).replace(" ", "")
        out.append(f"++{key}={text.replace('True', 'true').replace('False', 'false')}")
    return out


def build_sam2_module(desc: dict, source="<sam2 arch>"):
    """The official ``SAM2Base`` for ``{"config": packaged yaml, "overrides": {...}}``."""
    require("sam2", extra="sam", purpose="SAM2 models")
    from sam2.build_sam import build_sam2

    config = desc.get("config")
    if config not in SAM2_CONFIGS.values():
        raise InputError(source, f"unknown SAM2 config {config!r}; expected one of "
                         f"{sorted(SAM2_CONFIGS.values())}", field="fewseg_arch.config")
    overrides = _sam2_overrides_list(desc.get("overrides") or {}, source)
    module = build_sam2(config, ckpt_path=None, device="cpu", mode="eval",
                        hydra_overrides_extra=overrides, apply_postprocessing=False)
    return module.eval()


# --------------------------------------------------------------------------- loading


def _official_state(obj, entry, path: Path):
    """The state dict inside an official (non-fewseg) file: SAM1 files are bare state
    dicts, SAM2 files ``{"model": state_dict}``, micro-sam files hold it under
    ``entry.state_key`` with ``entry.state_prefix`` on every key."""
    if entry.family == "sam2":
        if not (isinstance(obj, dict) and "model" in obj):
            raise InputError(path, "is not a SAM2 checkpoint (expected a dict with a 'model' entry)")
        return obj["model"]
    state_key = getattr(entry, "state_key", None)
    prefix = getattr(entry, "state_prefix", None)
    if isinstance(obj, dict) and state_key and state_key in obj:
        obj = obj[state_key]
    elif isinstance(obj, dict) and "model" in obj and isinstance(obj["model"], dict):
        obj = obj["model"]  # a SAM1 state dict re-saved the SAM2 way
    if isinstance(obj, dict) and prefix:
        obj = {(k[len(prefix):] if isinstance(k, str) and k.startswith(prefix) else k): v
               for k, v in obj.items()}
    return obj


def _read(path: Path):
    import pickle

    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as exc:
        from .._reading import describe

        raise InputError(path, f"cannot be read as a torch checkpoint ({describe(exc)})") from exc


def _load_state(module, state, path: Path, what: str) -> None:
    """``load_state_dict`` strictly, with a message that names the file and what is off."""
    if not isinstance(state, dict):
        raise InputError(path, f"expected a state dict for {what}, found {type(state).__name__}")
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [f"{k} {tuple(state[k].shape)} != {tuple(own[k].shape)}" for k in own
             if k in state and hasattr(state[k], "shape") and tuple(state[k].shape) != tuple(own[k].shape)]

    def few(keys):
        return ", ".join(keys[:3]) + (f" and {len(keys) - 3} more" if len(keys) > 3 else "")

    parts = []
    if missing:
        parts.append(f"{len(missing)} weights missing ({few(missing)})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected weights ({few(unexpected)})")
    if wrong:
        parts.append(f"{len(wrong)} weights of the wrong shape ({few(wrong)})")
    if parts:
        raise InputError(path, f"is not a {what} checkpoint: " + "; ".join(parts))
    module.load_state_dict(state, strict=True)


def build_from_arch(desc: dict, source="<arch>"):
    """Build a random-weight official module from an architecture description."""
    family = desc.get("family") if isinstance(desc, dict) else None
    if family == "sam1":
        desc = {**_SAM1_COMMON, **desc}
        _check_sam1_arch(desc, source)
        return build_sam1_module(desc), desc
    if family == "sam2":
        return build_sam2_module(desc, source), desc
    raise InputError(source, f"architecture family must be one of {FAMILIES}, got {family!r}",
                     field="fewseg_arch.family")


def _image_size(module, family: str) -> int:
    return int(module.image_encoder.img_size if family == "sam1" else module.image_size)


def load_sam(name: str, *, checkpoint=None, device=None, download: bool = False) -> SamModel:
    """Load a SAM1 or SAM2 model by registry name.

    Parameters
    ----------
    name : str
        ``"sam1_vit_h"``, ``"sam1_vit_l"``, ``"sam1_vit_b"``, ``"sam2.1_tiny"``,
        ``"sam2.1_small"``, ``"sam2.1_base_plus"``, ``"sam2.1_large"`` (or any name in
        ``fewseg.sam.registry.CHECKPOINTS``). The name fixes the family.
    checkpoint : path-like, optional
        A local file to use instead of the cached download. A file written by
        :func:`save_tiny` carries its own (small) architecture, which wins.
    device : str or torch.device, optional
        ``None`` / ``"auto"`` picks CUDA, then MPS, then the CPU.
    download : bool
        Passed to ``fewseg.sam.registry.resolve_checkpoint``: fetch the file if not cached.

    Returns
    -------
    SamModel
        In eval mode, float32, on ``device``.

    Examples
    --------
    >>> model = load_sam("sam1_vit_b", checkpoint="tests/data/tiny_sam1.pt", device="cpu")
    >>> model.family, model.image_size
    ('sam1', 512)
    """
    from .device import pick_device

    require("torch", extra="sam", purpose="Segment Anything models")
    from .registry import get_checkpoint, resolve_checkpoint

    entry = get_checkpoint(name)
    family = entry.family
    if family == "sam1":
        require("segment_anything", extra="sam", purpose="SAM1 models")
    else:
        require("sam2", extra="sam", purpose="SAM2 models")
    dev = pick_device(device) if device is None or isinstance(device, str) else device
    path = Path(resolve_checkpoint(entry, checkpoint=checkpoint, download=download))
    obj = _read(path)

    if isinstance(obj, dict) and "fewseg_arch" in obj:
        desc = obj["fewseg_arch"]
        if not isinstance(desc, dict) or desc.get("family") != family:
            got = desc.get("family") if isinstance(desc, dict) else desc
            raise InputError(path, f"holds a {got} model but {name!r} is a {family} model",
                             field="fewseg_arch.family")
        module, desc = build_from_arch(desc, path)
        state = obj.get("model")
        what = f"fewseg tiny {family}"
    else:
        if family == "sam1":
            desc = sam1_arch(entry.arch)
            module = build_sam1_module(desc)
        else:
            desc = {"family": "sam2", "config": entry.config, "overrides": {}}
            module = build_sam2_module(desc, path)
        state = _official_state(obj, entry, path)
        what = f"{'SAM1' if family == 'sam1' else 'SAM2'} {entry.arch}"
    _load_state(module, state, path, what)
    module.eval().to(dev)
    return SamModel(family=family, name=name, module=module, device=dev,
                    image_size=_image_size(module, family), arch=desc, checkpoint=path)


# --------------------------------------------------------------------------- tiny models


def build_tiny_sam1(seed: int = 0, **sizes) -> SamModel:
    """A random-weight SAM1 of the official classes at small sizes (:data:`TINY_SAM1`).

    ``sizes`` override entries of the description (e.g. ``image_size=256``). The same
    ``seed`` gives the same weights. Used by tests and :mod:`fewseg.sam.train_tiny`.
    """
    import torch

    desc = sam1_arch("vit_b", **{**TINY_SAM1, **sizes})
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        module = build_sam1_module(desc)
        # The official init leaves the position embedding at zero; give it some structure
        # so that random-weight tests exercise it.
        with torch.no_grad():
            module.image_encoder.pos_embed.normal_(0.0, 0.02)
    return SamModel("sam1", "tiny_sam1", module, torch.device("cpu"), desc["image_size"], desc)


def build_tiny_sam2(seed: int = 0, **sizes) -> SamModel:
    """A random-weight SAM2.1 (hiera_t config shrunk by :func:`tiny_sam2_overrides`)."""
    import torch

    desc = {"family": "sam2", "config": TINY_SAM2_CONFIG, "overrides": tiny_sam2_overrides(**sizes)}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        module = build_sam2_module(desc)
    return SamModel("sam2", "tiny_sam2", module, torch.device("cpu"), int(module.image_size), desc)


def save_tiny(path, model_arch: dict, state_dict: dict, *, note: dict | None = None,
              half: bool = True) -> Path:
    """Write ``{"fewseg_arch": model_arch, "model": state_dict, "note": note}``.

    Floating-point tensors are stored as float16 when ``half`` (loading restores
    float32: the model is built in float32 and ``load_state_dict`` copies into it).
    """
    import torch

    if model_arch.get("family") not in FAMILIES:
        raise FewsegError(f"model_arch must have family in {FAMILIES}")
    state = {}
    for key, value in state_dict.items():
        value = value.detach().cpu()
        if half and value.is_floating_point():
            value = value.half()
        state[key] = value.contiguous().clone()
    # Plain JSON types only, so that torch.load(weights_only=True) reads the file back.
    arch = json.loads(json.dumps(dict(model_arch)))
    note = json.loads(json.dumps(dict(note or {}), default=str))
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save({"fewseg_arch": arch, "model": state, "note": note}, tmp)
    return path
