"""Choose the torch device SAM runs on."""

from __future__ import annotations

from ..errors import InputError


def _mps_available(torch) -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def pick_device(requested: str | None = None):
    """The :class:`torch.device` to run on.

    Parameters
    ----------
    requested : str or None
        ``None`` or ``"auto"``: CUDA if available, else Apple MPS, else the CPU.
        Anything else (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``) is used as given
        and must be available.

    Raises
    ------
    InputError
        With ``source="--device"`` when the device is not a torch device name or is not
        available on this machine.

    Examples
    --------
    >>> pick_device("cpu")
    device(type='cpu')
    """
    import torch

    if requested is None or str(requested).strip().lower() in ("", "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available(torch):
            return torch.device("mps")
        return torch.device("cpu")

    text = str(requested).strip().lower()
    try:
        device = torch.device(text)
    except (RuntimeError, ValueError) as exc:
        raise InputError("--device", f"{requested!r} is not a device name "
                         "(expected auto, cpu, cuda, cuda:N or mps)") from exc
    if device.type == "cpu":
        return device
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError("--device", f"{requested!r} was asked for but CUDA is not available "
                             "(torch was built without CUDA or no GPU is visible); use --device cpu")
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise InputError("--device", f"{requested!r} was asked for but only {count} CUDA "
                             f"device(s) are visible (cuda:0..cuda:{count - 1})")
        return device
    if device.type == "mps":
        if not _mps_available(torch):
            raise InputError("--device", f"{requested!r} was asked for but Apple MPS is not "
                             "available on this machine; use --device cpu")
        return device
    raise InputError("--device", f"{requested!r} is not supported (expected auto, cpu, cuda, "
                     "cuda:N or mps)")
