"""Segment Anything checkpoints: a registry with hashes, a download cache, verification.

Every model fewseg can run is a :class:`Checkpoint` in :data:`CHECKPOINTS`, with the file's
URL, size and hash. Files are downloaded once into :func:`cache_dir` (``$FEWSEG_CACHE``, or
``pooch.os_cache("fewseg") / "checkpoints"``) by :func:`pooch.retrieve`, which checks the
registry's hash before the file takes its name, and reused.

Three ways to get a checkpoint, in order of precedence in :func:`resolve_checkpoint`:

1. an explicit local file (``checkpoint=PATH``, the CLI's ``--checkpoint``): used as given,
   never downloaded. If its size equals the registry's size it is taken to be the official
   file and its hash is checked (a damaged copy is an error); if the size differs it is
   taken to be the user's own or fine-tuned weights and accepted without a hash check.
2. the cached file, if present and its hash matches.
3. a download (only when asked: ``download=True`` or ``fewseg models download NAME``).

Otherwise a :class:`~fewseg.errors.FewsegError` says which file is missing, where to get it
and which folder to put it in.

Hashing a 2.5 GB file takes seconds, so the result is remembered in a small sidecar next to
the cached file (``<file>.sha256``, or ``<file>.xxh128`` for micro-sam's files) holding the
hash, the size and the modification time; the file is hashed again only when its size or
modification time changes. :func:`verify` always hashes again.

Environment variables
---------------------
FEWSEG_CACHE
    Folder for downloaded checkpoints (created when needed).
FEWSEG_CHECKPOINT_URL_BASE
    Download every checkpoint from ``<base>/<filename>`` instead of its registry URL: for a
    mirror on an institute's server or a shared drive (``file://`` URLs work too). The
    registry's size and hash are still checked.

Nothing here imports torch; the module is cheap to import from the command line.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import hashlib
import json
import os
import re
import shutil
import sys
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from ..errors import FewsegError, InputError, MissingDependencyError

__all__ = [
    "CHECKPOINTS",
    "Checkpoint",
    "ENV_CACHE",
    "ENV_URL_BASE",
    "VerifyResult",
    "cache_dir",
    "cache_status",
    "cached_path",
    "checkpoint_url",
    "download",
    "format_size",
    "get_checkpoint",
    "resolve_checkpoint",
    "verify",
]

ENV_CACHE = "FEWSEG_CACHE"
ENV_URL_BASE = "FEWSEG_CHECKPOINT_URL_BASE"

#: Seconds a connection attempt or one read may stall before the download fails (pooch's ``timeout``).
TIMEOUT_S = 60.0
_CHUNK = 1 << 20  # 1 MiB
_HASH_LENGTHS = {"sha256": 64, "xxh128": 32}


@dataclass(frozen=True)
class Checkpoint:
    """One downloadable Segment Anything checkpoint.

    Parameters
    ----------
    name : str
        fewseg's model name, e.g. ``"sam2.1_base_plus"``.
    family : {"sam1", "sam2"}
        Which code builds the model: ``segment-anything`` or ``sam2``.
    arch : str
        Image encoder: ``"vit_h"``, ``"vit_l"``, ``"vit_b"`` (SAM1) or ``"hiera_t"``,
        ``"hiera_s"``, ``"hiera_b+"``, ``"hiera_l"`` (SAM2).
    filename : str
        The file's name in fewseg's cache.
    url : str
        Where the file is downloaded from.
    size : int or None
        The file's size in bytes; None where no source records it.
    sha256 : str or None
        Expected SHA-256 (lowercase hex). Exactly one of ``sha256`` / ``xxh128`` is set.
    config : str or None
        SAM2: the config name inside the ``sam2`` package, e.g.
        ``"configs/sam2.1/sam2.1_hiera_b+.yaml"``. SAM1: None.
    description : str
        One line for ``fewseg models list``, with the parameter count.
    source_note : str
        Where the URL and the hash come from.
    xxh128 : str or None
        Expected XXH128 (lowercase hex), for files whose publisher records only that
        (micro-sam). Checking it needs the ``xxhash`` package.
    state_key : str or None
        None: the file is a plain ``state_dict`` that the family's official builder loads.
        Otherwise the file is what micro-sam writes: ``torch.load`` may give either the
        plain state dict or a dict holding it under this key (``{"model_state": ...,
        "decoder_state": ...}``); a loader takes ``obj[state_key]`` when that key is
        present and ``obj`` itself otherwise, then removes ``state_prefix`` from the keys.
    state_prefix : str or None
        Prefix to strip from the state dict's keys (micro-sam's training prefix ``"sam."``).
    """

    name: str
    family: str
    arch: str
    filename: str
    url: str
    size: int | None
    sha256: str | None
    config: str | None
    description: str
    source_note: str
    xxh128: str | None = None
    state_key: str | None = None
    state_prefix: str | None = None

    def __post_init__(self):
        if self.family not in ("sam1", "sam2"):
            raise ValueError(f"Checkpoint {self.name!r}: family must be 'sam1' or 'sam2', not {self.family!r}")
        if (self.sha256 is None) == (self.xxh128 is None):
            raise ValueError(f"Checkpoint {self.name!r}: give exactly one of sha256 / xxh128")
        algorithm, digest = self.hash_algorithm, self.expected_hash
        if len(digest) != _HASH_LENGTHS[algorithm] or digest.strip("0123456789abcdef"):
            raise ValueError(f"Checkpoint {self.name!r}: {algorithm} must be lowercase hex, got {digest!r}")
        if self.size is not None and self.size <= 0:
            raise ValueError(f"Checkpoint {self.name!r}: size must be positive, got {self.size}")
        if os.path.basename(self.filename) != self.filename or not self.filename:
            raise ValueError(f"Checkpoint {self.name!r}: filename must be a bare file name")

    @property
    def hash_algorithm(self) -> str:
        """``"sha256"`` or ``"xxh128"``: the algorithm the registry records for this file."""
        return "sha256" if self.sha256 is not None else "xxh128"

    @property
    def expected_hash(self) -> str:
        """The expected digest (hex) in :attr:`hash_algorithm`."""
        return self.sha256 if self.sha256 is not None else self.xxh128  # type: ignore[return-value]

    def to_json(self) -> dict:
        """The record as a JSON-ready dict (all fields plus ``hash_algorithm``)."""
        record = dataclasses.asdict(self)
        record["hash_algorithm"] = self.hash_algorithm
        return record


_SAM1_URL = "https://dl.fbaipublicfiles.com/segment_anything/"
_SAM2_URL = "https://dl.fbaipublicfiles.com/segment_anything_2/092824/"
_SAM1_NOTE = (
    "URL from Meta's segment-anything README. Meta publishes no checksum (the file-name "
    "suffix is the first 6 hex digits of the md5); the sha256 is the one micro-sam's model "
    "registry recorded (computational-cell-analytics/micro-sam, micro_sam/util.py models(), "
    "before its switch to xxh128)."
)
_SAM2_NOTE = (
    "URL from Meta's sam2 checkpoints/download_ckpts.sh (SAM 2.1 release 092824). Meta "
    "publishes no checksum; the sha256 was recorded by several independent projects, one "
    "stating it matches the Hugging Face facebook/sam2.1-hiera-* file hash."
)
_MICRO_SAM_NOTE = (
    "URL and xxh128 from micro-sam's own model registry: computational-cell-analytics/"
    "micro-sam, micro_sam/v1/util.py models() at commit df11268e9a40 (also micro_sam/util.py "
    "of v1.x), entry '{entry}' -> BioImage.IO model '{bioimageio}' version 1.2. That registry "
    "records no size and no sha256. The file is micro-sam's export of the SAM weights "
    "(load with state_key/state_prefix); its instance-segmentation decoder is a separate "
    "file that fewseg does not use."
)


def _registry(entries: Iterable[Checkpoint]) -> dict[str, Checkpoint]:
    return {entry.name: entry for entry in entries}


#: Every checkpoint fewseg knows, by name.
CHECKPOINTS: dict[str, Checkpoint] = _registry([
    Checkpoint(
        name="sam1_vit_h", family="sam1", arch="vit_h", filename="sam_vit_h_4b8939.pth",
        url=_SAM1_URL + "sam_vit_h_4b8939.pth", size=2_564_550_879,
        sha256="a7bf3b02f3ebf1267aba913ff637d9a2d5c33d3173bb679e46d9f338c26f262e", config=None,
        description="Segment Anything, ViT-H image encoder (636M parameters)", source_note=_SAM1_NOTE,
    ),
    Checkpoint(
        name="sam1_vit_l", family="sam1", arch="vit_l", filename="sam_vit_l_0b3195.pth",
        url=_SAM1_URL + "sam_vit_l_0b3195.pth", size=1_249_524_607,
        sha256="3adcc4315b642a4d2101128f611684e8734c41232a17c648ed1693702a49a622", config=None,
        description="Segment Anything, ViT-L image encoder (308M parameters)", source_note=_SAM1_NOTE,
    ),
    Checkpoint(
        name="sam1_vit_b", family="sam1", arch="vit_b", filename="sam_vit_b_01ec64.pth",
        url=_SAM1_URL + "sam_vit_b_01ec64.pth", size=375_042_383,
        sha256="ec2df62732614e57411cdcf32a23ffdf28910380d03139ee0f4fcbe91eb8c912", config=None,
        description="Segment Anything, ViT-B image encoder (91M parameters)", source_note=_SAM1_NOTE,
    ),
    Checkpoint(
        name="sam2.1_tiny", family="sam2", arch="hiera_t", filename="sam2.1_hiera_tiny.pt",
        url=_SAM2_URL + "sam2.1_hiera_tiny.pt", size=156_008_466,
        sha256="7402e0d864fa82708a20fbd15bc84245c2f26dff0eb43a4b5b93452deb34be69",
        config="configs/sam2.1/sam2.1_hiera_t.yaml",
        description="SAM 2.1, Hiera-T (38.9M parameters)", source_note=_SAM2_NOTE,
    ),
    Checkpoint(
        name="sam2.1_small", family="sam2", arch="hiera_s", filename="sam2.1_hiera_small.pt",
        url=_SAM2_URL + "sam2.1_hiera_small.pt", size=184_416_285,
        sha256="6d1aa6f30de5c92224f8172114de081d104bbd23dd9dc5c58996f0cad5dc4d38",
        config="configs/sam2.1/sam2.1_hiera_s.yaml",
        description="SAM 2.1, Hiera-S (46M parameters)", source_note=_SAM2_NOTE,
    ),
    Checkpoint(
        name="sam2.1_base_plus", family="sam2", arch="hiera_b+", filename="sam2.1_hiera_base_plus.pt",
        url=_SAM2_URL + "sam2.1_hiera_base_plus.pt", size=323_606_802,
        sha256="a2345aede8715ab1d5d31b4a509fb160c5a4af1970f199d9054ccfb746c004c5",
        config="configs/sam2.1/sam2.1_hiera_b+.yaml",
        description="SAM 2.1, Hiera-B+ (80.8M parameters)", source_note=_SAM2_NOTE,
    ),
    Checkpoint(
        name="sam2.1_large", family="sam2", arch="hiera_l", filename="sam2.1_hiera_large.pt",
        url=_SAM2_URL + "sam2.1_hiera_large.pt", size=898_083_611,
        sha256="2647878d5dfa5098f2f8649825738a9345572bae2d4350a2468587ece47dd318",
        config="configs/sam2.1/sam2.1_hiera_l.yaml",
        description="SAM 2.1, Hiera-L (224.4M parameters)", source_note=_SAM2_NOTE,
    ),
    Checkpoint(
        name="sam1_vit_b_lm", family="sam1", arch="vit_b", filename="sam1_vit_b_lm.pt",
        url="https://uk1s3.embassy.ebi.ac.uk/public-datasets/bioimage.io/diplomatic-bug/1.2/files/vit_b.pt",
        size=None, sha256=None, xxh128="fe9252a29f3f4ea53c15a06de471e186", config=None,
        description="micro-sam light-microscopy generalist, SAM ViT-B fine-tuned (91M-parameter encoder)",
        source_note=_MICRO_SAM_NOTE.format(entry="vit_b_lm", bioimageio="diplomatic-bug"),
        state_key="model_state", state_prefix="sam.",
    ),
    Checkpoint(
        name="sam1_vit_l_lm", family="sam1", arch="vit_l", filename="sam1_vit_l_lm.pt",
        url="https://uk1s3.embassy.ebi.ac.uk/public-datasets/bioimage.io/idealistic-rat/1.2/files/vit_l.pt",
        size=None, sha256=None, xxh128="017f20677997d628426dec80a8018f9d", config=None,
        description="micro-sam light-microscopy generalist, SAM ViT-L fine-tuned (308M-parameter encoder)",
        source_note=_MICRO_SAM_NOTE.format(entry="vit_l_lm", bioimageio="idealistic-rat"),
        state_key="model_state", state_prefix="sam.",
    ),
])


@dataclass(frozen=True)
class VerifyResult:
    """The outcome of hashing one checkpoint file (see :func:`verify`).

    ``status`` is ``"ok"``, ``"missing"`` (no file) or ``"mismatch"`` (size or hash differ).
    """

    name: str
    path: Path
    status: str
    algorithm: str
    expected_hash: str
    actual_hash: str | None
    expected_size: int | None
    actual_size: int | None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def describe(self) -> str:
        """One line for a person, e.g. ``"sam1_vit_b: ok (sha256 ec2df627…, 375.0 MB) /path"``."""
        if self.status == "missing":
            return f"{self.name}: missing {self.path}"
        if self.status == "ok":
            return (
                f"{self.name}: ok ({self.algorithm} {self.expected_hash[:12]}…, "
                f"{format_size(self.actual_size)}) {self.path}"
            )
        return (
            f"{self.name}: MISMATCH {self.path}: expected {self.algorithm} {self.expected_hash}"
            f" and {_size_words(self.expected_size)}, found {self.actual_hash} and "
            f"{_size_words(self.actual_size)}"
        )


# --------------------------------------------------------------------------------------
# Names, places, URLs


def get_checkpoint(name: str | Checkpoint) -> Checkpoint:
    """The registry entry called ``name`` (a :class:`Checkpoint` is returned as is).

    Raises
    ------
    InputError
        For an unknown name, with ``source="--model"``, a close match and the known names.

    Examples
    --------
    >>> get_checkpoint("sam1_vit_b").arch
    'vit_b'
    """
    if isinstance(name, Checkpoint):
        return name
    try:
        return CHECKPOINTS[name]
    except (KeyError, TypeError):
        pass
    close = difflib.get_close_matches(str(name), list(CHECKPOINTS), n=1, cutoff=0.5)
    hint = f"did you mean '{close[0]}'? " if close else ""
    raise InputError(
        "--model", f"unknown model '{name}'; {hint}known models: {', '.join(CHECKPOINTS)}"
    )


def cache_dir(override: str | os.PathLike | None = None) -> Path:
    """The folder checkpoints are downloaded to: ``override``, else ``$FEWSEG_CACHE``, else the OS cache.

    The default is ``pooch.os_cache("fewseg") / "checkpoints"`` (e.g.
    ``~/.cache/fewseg/checkpoints`` on Linux). The folder is not created here.
    """
    if override is not None:
        return Path(override).expanduser()
    from_env = os.environ.get(ENV_CACHE)
    if from_env:
        return Path(from_env).expanduser()
    import pooch  # ~70 ms; only needed for the default location

    return Path(pooch.os_cache("fewseg")) / "checkpoints"


_root = cache_dir  # for functions whose ``cache_dir`` parameter hides the function


def cached_path(name: str | Checkpoint, *, cache_dir: str | os.PathLike | None = None) -> Path:
    """Where the checkpoint's file lives (or would live) in the cache."""
    return _root(cache_dir) / get_checkpoint(name).filename


def checkpoint_url(name: str | Checkpoint) -> str:
    """The URL a download uses: ``$FEWSEG_CHECKPOINT_URL_BASE/<filename>`` if set, else the registry URL."""
    checkpoint = get_checkpoint(name)
    base = os.environ.get(ENV_URL_BASE)
    if base:
        return base.rstrip("/") + "/" + checkpoint.filename
    return checkpoint.url


def format_size(size: int | None) -> str:
    """Bytes as a short decimal size: ``"375.0 MB"``, ``"2.56 GB"``; ``"?"`` when unknown."""
    if size is None:
        return "?"
    if size >= 1e9:
        return f"{size / 1e9:.2f} GB"
    if size >= 1e6:
        return f"{size / 1e6:.1f} MB"
    if size >= 1e3:
        return f"{size / 1e3:.1f} kB"
    return f"{size} B"


def _size_words(size: int | None) -> str:
    return "an unrecorded size" if size is None else f"{size:,} bytes"


def _guidance(checkpoint: Checkpoint, folder: Path) -> str:
    size = f" ({format_size(checkpoint.size)})" if checkpoint.size is not None else ""
    return (
        f"Download {checkpoint_url(checkpoint)}{size} and save it as {folder / checkpoint.filename} "
        f"(to use another folder, set {ENV_CACHE}), "
        f"or run: fewseg models download {checkpoint.name}"
    )


# --------------------------------------------------------------------------------------
# Hashing and the verification sidecar


def _new_hasher(checkpoint: Checkpoint):
    if checkpoint.hash_algorithm == "sha256":
        return hashlib.sha256()
    try:
        import xxhash
    except ImportError as exc:
        raise MissingDependencyError(
            f"checking the checkpoint '{checkpoint.name}' needs its xxh128 hash (the only hash its "
            f"publisher records), which needs the Python package 'xxhash' ({exc}). "
            "Install it with: pip install xxhash"
        ) from exc
    return xxhash.xxh128()


def _hash_file(path: Path, checkpoint: Checkpoint, *, progress: bool) -> str:
    hasher = _new_hasher(checkpoint)
    size = path.stat().st_size
    with _progress_bar(size, f"checking {path.name}", progress and size > 64 * _CHUNK) as bar:
        with open(path, "rb") as handle:
            while chunk := handle.read(_CHUNK):
                hasher.update(chunk)
                bar.update(len(chunk))
    return hasher.hexdigest()


def _sidecar(path: Path, algorithm: str) -> Path:
    return path.with_name(f"{path.name}.{algorithm}")


def _record_for_user_file(path: Path, algorithm: str, root: Path) -> Path:
    # A user's own file keeps its folder clean: its verification record lives in the cache.
    key = hashlib.sha256(os.fsencode(path.resolve())).hexdigest()[:24]
    return root / ".verified" / f"{key}.{algorithm}"


def _read_record(record: Path, path: Path, algorithm: str) -> str | None:
    """The remembered hash of ``path``, if the record matches its current size and mtime."""
    try:
        data = json.loads(record.read_text(encoding="utf-8"))
        stat = path.stat()
        if (
            data.get("algorithm") == algorithm
            and data.get("size") == stat.st_size
            and data.get("mtime_ns") == stat.st_mtime_ns
            and isinstance(data.get("hash"), str)
        ):
            return data["hash"]
    except (OSError, ValueError, AttributeError):
        pass
    return None


def _write_record(record: Path, path: Path, algorithm: str, digest: str) -> None:
    """Remember ``digest`` for ``path``; a cache that cannot be written is only slower."""
    from .._atomic import atomic_open

    try:
        stat = path.stat()
        data = {
            "algorithm": algorithm,
            "hash": digest,
            "size": stat.st_size,
            "mtime_ns": stat.st_mtime_ns,
            "path": str(path.resolve()),
        }
        with atomic_open(record, "w", encoding="utf-8") as handle:
            json.dump(data, handle)
    except OSError:
        pass


def _known_hash(path: Path, checkpoint: Checkpoint, record: Path, *, progress: bool) -> str:
    """The hash of ``path``: from its record when still valid, else computed and recorded."""
    algorithm = checkpoint.hash_algorithm
    digest = _read_record(record, path, algorithm)
    if digest is None:
        digest = _hash_file(path, checkpoint, progress=progress)
        _write_record(record, path, algorithm, digest)
    return digest


def cache_status(name: str | Checkpoint, *, cache_dir: str | os.PathLike | None = None) -> str:
    """What the cache holds for ``name``, without hashing anything.

    Returns ``"missing"``, ``"verified"`` (a valid sidecar says the hash matches),
    ``"mismatch"`` (a valid sidecar says it does not) or ``"unverified"`` (present, not yet
    hashed, or changed since).
    """
    checkpoint = get_checkpoint(name)
    path = cached_path(checkpoint, cache_dir=cache_dir)
    if not path.is_file():
        return "missing"
    digest = _read_record(_sidecar(path, checkpoint.hash_algorithm), path, checkpoint.hash_algorithm)
    if digest is None:
        return "unverified"
    return "verified" if _matches(checkpoint, path, digest) else "mismatch"


def _matches(checkpoint: Checkpoint, path: Path, digest: str) -> bool:
    size_ok = checkpoint.size is None or path.stat().st_size == checkpoint.size
    return size_ok and digest == checkpoint.expected_hash


# --------------------------------------------------------------------------------------
# Resolving and downloading


def resolve_checkpoint(
    name: str | Checkpoint,
    *,
    checkpoint: str | os.PathLike | None = None,
    download: bool = False,
    progress: bool = True,
    cache_dir: str | os.PathLike | None = None,
) -> Path:
    """The path of a usable checkpoint file for the model ``name``.

    Parameters
    ----------
    name : str or Checkpoint
        A name from :data:`CHECKPOINTS` (the model's architecture comes from it).
    checkpoint : path-like, optional
        A local file to use instead of the cache; never downloaded or copied. If its size
        equals the registry's size it is checked against the registry hash (a copy of the
        official file that is damaged is an error). If the size differs (or the registry
        records none) it is taken to be the user's own / fine-tuned weights for the same
        architecture and accepted as it is.
    download : bool
        Download the file into the cache when it is missing (or damaged) there.
    progress : bool
        Show progress bars (only on a terminal).
    cache_dir : path-like, optional
        Use this folder instead of :func:`cache_dir`.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    InputError
        Unknown name; ``checkpoint`` missing, not a file, or a damaged official copy.
    FewsegError
        The file is not in the cache (and ``download`` is False), the cached file is
        damaged, or the download failed. The message names the file, its URL, the folder
        to put it in and the ``fewseg models download`` command.
    """
    entry = get_checkpoint(name)
    root = _root(cache_dir)
    if checkpoint is not None:
        return _check_user_file(entry, Path(checkpoint).expanduser(), root, progress=progress)

    path = root / entry.filename
    if path.is_file():
        try:
            digest = _known_hash(path, entry, _sidecar(path, entry.hash_algorithm), progress=progress)
        except OSError as exc:
            raise FewsegError(f"cannot read the cached checkpoint {path}: {exc}") from exc
        if _matches(entry, path, digest):
            return path
        if not download:
            raise FewsegError(
                f"the cached checkpoint {path} for '{entry.name}' is damaged or incomplete: expected "
                f"{entry.hash_algorithm} {entry.expected_hash} and {_size_words(entry.size)}, found "
                f"{digest} and {_size_words(path.stat().st_size)}. Delete it and download it again: "
                + _guidance(entry, root)
            )
    elif not download:
        raise FewsegError(
            f"the checkpoint for model '{entry.name}' is not in the cache (looked for {path}). "
            + _guidance(entry, root)
        )
    return _download(entry, root, progress=progress)


def _check_user_file(entry: Checkpoint, path: Path, root: Path, *, progress: bool) -> Path:
    if not path.exists():
        raise InputError(path, "checkpoint file not found")
    if not path.is_file():
        raise InputError(path, "expected a checkpoint file, found a folder or something else")
    if entry.size is None or path.stat().st_size != entry.size:
        return path  # the user's own weights: nothing to compare them with
    try:
        digest = _known_hash(path, entry, _record_for_user_file(path, entry.hash_algorithm, root), progress=progress)
    except OSError as exc:
        raise InputError(path, f"cannot read the checkpoint file: {exc}") from exc
    if digest != entry.expected_hash:
        raise InputError(
            path,
            f"has the size of the official '{entry.name}' file ({entry.filename}) but not its "
            f"{entry.hash_algorithm} (expected {entry.expected_hash}, found {digest}): the copy is "
            f"damaged; download it again from {checkpoint_url(entry)}",
        )
    return path


def download(
    name: str | Checkpoint,
    *,
    progress: bool = True,
    cache_dir: str | os.PathLike | None = None,
) -> Path:
    """Download the checkpoint ``name`` into the cache (once) and return its path.

    A cached file whose hash matches is not downloaded again; a damaged one is replaced.
    The download itself is :func:`pooch.retrieve`'s: the data go to a temporary file in
    the cache folder, which is moved into place only when its hash matches the registry,
    so a file with the final name is always complete; on any failure (network, HTTP
    status, size, hash, interruption) the temporary file is removed.

    Raises
    ------
    FewsegError
        With the reason and the "get it from ... put it in ..." guidance.
    MissingDependencyError
        An xxh128-hashed file (micro-sam's) and the ``xxhash`` package is missing.
    """
    entry = get_checkpoint(name)
    return resolve_checkpoint(entry, download=True, progress=progress, cache_dir=cache_dir)


def _download(entry: Checkpoint, root: Path, *, progress: bool) -> Path:
    _new_hasher(entry)  # fail on a missing xxhash before any byte is fetched
    import pooch  # ~70 ms, and requests with it: only when downloading
    import requests

    dest = root / entry.filename
    url = checkpoint_url(entry)

    def failure(reason: str) -> FewsegError:
        return FewsegError(
            f"could not download the checkpoint for '{entry.name}' from {url}: {reason}. "
            + _guidance(entry, root)
        )

    def check_offered(size: int | None, *, who: str = "the server") -> None:
        if entry.size is not None and size is not None and size != entry.size:
            raise failure(f"{who} offers {size:,} bytes, the registry expects {entry.size:,} (a different file)")

    try:
        root.mkdir(parents=True, exist_ok=True)
        dest.unlink(missing_ok=True)  # known to be damaged if there: pooch would hash it again
    except OSError as exc:
        raise failure(f"cannot create the cache folder or remove the damaged file ({exc})") from exc
    if entry.size is not None:
        free = shutil.disk_usage(root).free
        if free < entry.size:
            raise failure(f"only {format_size(free)} free in {root}, the file needs {format_size(entry.size)}")

    logger = pooch.get_logger()
    level = logger.level
    logger.setLevel("WARNING")  # pooch says "Downloading data from ..." on stderr otherwise
    try:
        pooch.retrieve(
            url, known_hash=f"{entry.hash_algorithm}:{entry.expected_hash}", fname=entry.filename,
            path=root, downloader=_downloader(url, check_offered, progress=progress),
        )
    except requests.HTTPError as exc:
        raise failure(f"HTTP {exc.response.status_code} {exc.response.reason}") from exc
    except ValueError as exc:  # pooch's hash mismatch (the file is already deleted)
        found = re.search(r"but got (\w+)", str(exc))
        if found is None:
            raise failure(str(exc)) from exc
        raise failure(
            f"the downloaded file's {entry.hash_algorithm} is {found[1]}, expected "
            f"{entry.expected_hash}; nothing was kept"
        ) from exc
    except OSError as exc:  # requests' errors are OSErrors too: connection, timeout, broken transfer
        raise failure(_reason(exc)) from exc
    finally:
        logger.setLevel(level)
    _write_record(_sidecar(dest, entry.hash_algorithm), dest, entry.hash_algorithm, entry.expected_hash)
    return dest


def _downloader(url: str, check_offered, *, progress: bool):
    """A pooch downloader for ``url`` that refuses a file of another size before reading it."""
    if urllib.parse.urlsplit(url).scheme == "file":  # pooch has no file:// downloader
        return functools.partial(_copy_file_url, check_offered=check_offered)

    def on_response(response, *args, **kwargs):  # a requests hook: headers read, body not yet
        if not response.ok:
            response.close()  # raise_for_status reports it; nothing to read
        elif response.status_code == 200:
            length = response.headers.get("Content-Length")
            try:
                check_offered(int(length) if length is not None else None)
            except FewsegError:
                response.close()
                raise

    import pooch

    from .. import __version__

    return pooch.HTTPDownloader(
        progressbar=progress and sys.stderr is not None and sys.stderr.isatty(),
        chunk_size=_CHUNK, timeout=TIMEOUT_S,
        headers={"User-Agent": f"fewseg/{__version__} pooch/{pooch.__version__}"},
        hooks={"response": on_response},
    )


def _copy_file_url(url: str, output_file: str, _pooch, *, check_offered) -> None:
    source = urllib.request.url2pathname(urllib.parse.urlsplit(url).path)
    check_offered(os.path.getsize(source), who="the mirror")
    shutil.copyfile(source, output_file)


def _reason(exc: BaseException) -> str:
    """The innermost cause of a requests / urllib3 error, in a few words."""
    for _ in range(8):  # requests -> urllib3 (.reason, a cause, the last argument) -> the socket's error
        inner = getattr(exc, "reason", None)
        if not isinstance(inner, BaseException):
            inner = exc.__cause__ or exc.__context__ or (exc.args[-1] if exc.args else None)
        if not isinstance(inner, BaseException):
            break
        exc = inner
    partial, expected = getattr(exc, "partial", None), getattr(exc, "expected", None)
    if isinstance(partial, int) and isinstance(expected, int):  # urllib3's IncompleteRead
        return f"the transfer stopped after {partial:,} of {partial + expected:,} bytes"
    return f"{type(exc).__name__}: {exc}"


def _progress_bar(total: int | None, desc: str, enabled: bool):
    """A tqdm byte counter on stderr, shown only when ``enabled`` and stderr is a terminal."""
    from tqdm.auto import tqdm

    return tqdm(
        total=total, desc=desc, unit="B", unit_scale=True, unit_divisor=1024,
        file=sys.stderr, leave=False, disable=None if enabled else True,
    )


# --------------------------------------------------------------------------------------
# Verification


def verify(
    name: str | Checkpoint | None = None,
    *,
    path: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    progress: bool = False,
) -> list[VerifyResult]:
    """Hash checkpoint files and compare them with the registry.

    Parameters
    ----------
    name : str or Checkpoint, optional
        The model to check. None: every registry entry whose file is in the cache.
    path : path-like, optional
        Check this file (e.g. a copy outside the cache) against ``name``'s entry.
    cache_dir : path-like, optional
        Use this folder instead of :func:`cache_dir`.
    progress : bool
        Show a progress bar while hashing (terminal only).

    Returns
    -------
    list of VerifyResult
        One per file checked: ``"ok"``, ``"missing"`` or ``"mismatch"`` with the expected and
        actual hash and size. Files are always hashed again (the sidecar is refreshed).
    """
    root = _root(cache_dir)
    if path is not None:
        if name is None:
            raise InputError("--model", "verifying a file by its path needs the model name to compare it with")
        entry = get_checkpoint(name)
        return [_verify_file(entry, Path(path).expanduser(), None, progress=progress)]
    if name is not None:
        entry = get_checkpoint(name)
        file = root / entry.filename
        return [_verify_file(entry, file, _sidecar(file, entry.hash_algorithm), progress=progress)]
    results = []
    for entry in CHECKPOINTS.values():
        file = root / entry.filename
        if file.is_file():
            results.append(_verify_file(entry, file, _sidecar(file, entry.hash_algorithm), progress=progress))
    return results


def _verify_file(entry: Checkpoint, file: Path, record: Path | None, *, progress: bool) -> VerifyResult:
    common = dict(
        name=entry.name, path=file, algorithm=entry.hash_algorithm,
        expected_hash=entry.expected_hash, expected_size=entry.size,
    )
    if not file.is_file():
        return VerifyResult(status="missing", actual_hash=None, actual_size=None, **common)
    digest = _hash_file(file, entry, progress=progress)
    if record is not None:
        _write_record(record, file, entry.hash_algorithm, digest)
    status = "ok" if _matches(entry, file, digest) else "mismatch"
    return VerifyResult(status=status, actual_hash=digest, actual_size=file.stat().st_size, **common)
