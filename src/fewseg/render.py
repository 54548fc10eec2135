"""Channels to an RGB picture, the way NimbusImage shows a frame.

Each visible channel is contrast-stretched between a black and a white point (given as
percentiles of the channel or as absolute intensities), tinted with a colour, and the
tinted channels are combined per pixel ("lighten" = max, "add", or "screen"). The result
is ``uint8``: SAM's automatic mask generators want ``uint8`` RGB (SAM2's silently returns
no masks for float input).

Default contrast is the 0.1th to 99.9th percentile of each channel. NimbusImage's own
default is 0 to 100 (min to max), where a few hot or dead pixels stretch the range and
squash everything else into a few grey levels; clipping 0.1 % at each end ignores up to
about 1000 such pixels in a 1024 x 1024 frame, and only the brightest 0.1 % of pixels
saturate, so small bright objects keep their internal contrast.

Default colours depend on the number of channels: 1 channel white; 2 channels gray
(``#808080``) then yellow, for a transmitted-light channel plus one fluorescence channel
such as Brightfield + YFP: with "lighten" blending a full-brightness brightfield would
hide every fluorescent object dimmer than it, at half brightness the fluorescence shows
on top of it; 3 channels red, green, blue; more cycle through red, green, blue, yellow,
magenta, cyan, orange (the start of NimbusImage's palette).
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass

import numpy as np

from .errors import InputError
from .objects import Frame

__all__ = [
    "BLEND_MODES",
    "COLOR_NAMES",
    "ChannelStyle",
    "RenderConfig",
    "default_styles",
    "parse_channel_styles",
    "parse_color",
    "to_rgb",
]

BLEND_MODES = ("lighten", "add", "screen")
CONTRAST_MODES = ("percentile", "absolute")
DEFAULT_BLACK = 0.1
DEFAULT_WHITE = 99.9

#: Colour names accepted besides ``#RRGGBB`` / ``#RGB``. ``gray`` / ``grey`` is the CSS
#: grey ``#808080``: a greyscale channel at half brightness (``white`` is full).
COLOR_NAMES = {
    "white": "#FFFFFF",
    "gray": "#808080",
    "grey": "#808080",
    "red": "#FF0000",
    "green": "#00FF00",
    "blue": "#0000FF",
    "yellow": "#FFFF00",
    "magenta": "#FF00FF",
    "cyan": "#00FFFF",
    "orange": "#FF8000",
}

_PALETTE = ("red", "green", "blue", "yellow", "magenta", "cyan", "orange")
_HEX = re.compile(r"#?([0-9a-fA-F]{6}|[0-9a-fA-F]{3})")


def parse_color(color: str) -> tuple[float, float, float]:
    """RGB in ``[0, 1]`` for a colour name (see :data:`COLOR_NAMES`) or a hex code.

    Raises :class:`ValueError` naming the accepted forms.

    Examples
    --------
    >>> parse_color("#FFFF00")
    (1.0, 1.0, 0.0)
    >>> parse_color("white")
    (1.0, 1.0, 1.0)
    >>> parse_color("#f80")
    (1.0, 0.5333333333333333, 0.0)
    """
    if not isinstance(color, str):
        raise ValueError(f"colour must be a string, got {type(color).__name__}")
    text = COLOR_NAMES.get(color.strip().lower(), color.strip())
    match = _HEX.fullmatch(text)
    if match is None:
        raise ValueError(
            f"unknown colour {color!r}; expected #RRGGBB, #RGB or one of {', '.join(COLOR_NAMES)}"
        )
    digits = match.group(1)
    if len(digits) == 3:
        digits = "".join(d * 2 for d in digits)
    return tuple(int(digits[i : i + 2], 16) / 255.0 for i in (0, 2, 4))


@dataclass(frozen=True)
class ChannelStyle:
    """How one channel is shown.

    Attributes
    ----------
    color : str
        ``#RRGGBB``, ``#RGB`` or a name from :data:`COLOR_NAMES`.
    black, white : float
        Intensities mapped to 0 and to full colour. Percentiles (0-100) of the channel's
        pixels when ``mode == "percentile"``, raw intensities when ``"absolute"``.
        ``white`` must not be below ``black``; when they are equal the channel is a step
        (values above the point are full colour, the rest black).
    mode : {"percentile", "absolute"}
    visible : bool
        Invisible channels contribute nothing.

    Examples
    --------
    >>> ChannelStyle("yellow", black=1, white=99.8).rgb
    (1.0, 1.0, 0.0)
    >>> ChannelStyle("#00FF00", black=100, white=4000, mode="absolute").mode
    'absolute'
    """

    color: str = "white"
    black: float = DEFAULT_BLACK
    white: float = DEFAULT_WHITE
    mode: str = "percentile"
    visible: bool = True

    def __post_init__(self):
        parse_color(self.color)
        if self.mode not in CONTRAST_MODES:
            raise ValueError(f"contrast mode must be one of {CONTRAST_MODES}, got {self.mode!r}")
        for name in ("black", "white"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
                raise ValueError(f"{name} point must be a number, got {value!r}")
            if not math.isfinite(value):
                raise ValueError(f"{name} point must be finite, got {value!r}")
            object.__setattr__(self, name, float(value))
        if self.mode == "percentile" and not (0 <= self.black <= 100 and 0 <= self.white <= 100):
            raise ValueError(f"percentile black/white points must lie in 0-100, got {self.black:g}-{self.white:g}")
        if self.white < self.black:
            raise ValueError(f"white point {self.white:g} is below black point {self.black:g}")
        if not isinstance(self.visible, (bool, np.bool_)):
            raise ValueError(f"visible must be true or false, got {self.visible!r}")
        object.__setattr__(self, "visible", bool(self.visible))

    @property
    def rgb(self) -> tuple[float, float, float]:
        """The colour as RGB in ``[0, 1]``."""
        return parse_color(self.color)

    def limits(self, channel: np.ndarray) -> tuple[float, float]:
        """The ``(black, white)`` intensities for ``channel`` (percentiles resolved)."""
        if self.mode == "absolute":
            return self.black, self.white
        finite = channel if np.isfinite(channel).all() else channel[np.isfinite(channel)]
        if finite.size == 0:
            return 0.0, 0.0
        lo, hi = np.percentile(finite, [self.black, self.white])
        return float(lo), float(hi)


def default_styles(n_channels: int) -> tuple[ChannelStyle, ...]:
    """The styles used when a :class:`RenderConfig` names none (see the module notes).

    Examples
    --------
    >>> [s.color for s in default_styles(2)]
    ['gray', 'yellow']
    >>> [s.color for s in default_styles(3)]
    ['red', 'green', 'blue']
    """
    if n_channels == 1:
        colors = ["white"]
    elif n_channels == 2:
        colors = ["gray", "yellow"]
    else:
        colors = [_PALETTE[i % len(_PALETTE)] for i in range(n_channels)]
    return tuple(ChannelStyle(c) for c in colors)


@dataclass(frozen=True)
class RenderConfig:
    """How a frame's channels become one RGB picture.

    Attributes
    ----------
    styles : tuple of ChannelStyle, or None
        One per channel, in channel order; ``None`` picks :func:`default_styles`.
    blend : {"lighten", "add", "screen"}
        How tinted channels combine per pixel and colour component: ``lighten`` takes
        the maximum, ``add`` the sum (clipped at full colour), ``screen``
        ``1 - prod(1 - v)``.

    Examples
    --------
    >>> cfg = RenderConfig(styles=parse_channel_styles("gray,yellow:p1-p99.8"), blend="screen")
    >>> RenderConfig.from_dict(cfg.to_dict()) == cfg
    True
    """

    styles: tuple[ChannelStyle, ...] | None = None
    blend: str = "lighten"

    def __post_init__(self):
        if self.blend not in BLEND_MODES:
            raise ValueError(f"blend must be one of {BLEND_MODES}, got {self.blend!r}")
        if self.styles is not None:
            styles = tuple(self.styles)
            if not all(isinstance(s, ChannelStyle) for s in styles):
                raise ValueError("styles must be ChannelStyle objects")
            object.__setattr__(self, "styles", styles)

    def styles_for(self, n_channels: int, *, source: str = "<array>") -> tuple[ChannelStyle, ...]:
        """The styles for a frame of ``n_channels``; :class:`InputError` if they do not fit."""
        if self.styles is None:
            return default_styles(n_channels)
        if len(self.styles) != n_channels:
            raise InputError(
                source,
                f"the render settings give {len(self.styles)} channel style(s) but the frame "
                f"has {n_channels} channel(s); give one style per channel",
                field="channels",
            )
        return self.styles

    def to_dict(self) -> dict:
        """A JSON-ready dict (see :meth:`from_dict`)."""
        styles = None if self.styles is None else [asdict(s) for s in self.styles]
        return {"styles": styles, "blend": self.blend}

    @classmethod
    def from_dict(cls, data: dict, *, source: str = "render settings") -> "RenderConfig":
        """Read :meth:`to_dict` output; problems raise :class:`InputError` naming ``source``."""
        if not isinstance(data, dict):
            raise InputError(source, f"expected an object with 'styles' and 'blend', got {type(data).__name__}")
        unknown = set(data) - {"styles", "blend"}
        if unknown:
            raise InputError(source, f"unknown key(s) {sorted(unknown)}; expected 'styles' and 'blend'")
        blend = data.get("blend", "lighten")
        if blend not in BLEND_MODES:
            raise InputError(source, f"expected one of {list(BLEND_MODES)}, got {blend!r}", field="blend")
        raw = data.get("styles")
        if raw is None:
            return cls(None, blend)
        if not isinstance(raw, list):
            raise InputError(source, f"expected a list or null, got {type(raw).__name__}", field="styles")
        styles = []
        fields = {"color", "black", "white", "mode", "visible"}
        for i, item in enumerate(raw):
            where = f"styles[{i}]"
            if not isinstance(item, dict):
                raise InputError(source, f"expected an object, got {type(item).__name__}", field=where)
            extra = set(item) - fields
            if extra:
                raise InputError(source, f"unknown key(s) {sorted(extra)}; expected {sorted(fields)}", field=where)
            try:
                styles.append(ChannelStyle(**item))
            except ValueError as exc:
                raise InputError(source, str(exc), field=where) from None
        return cls(tuple(styles), blend)


_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_RANGE = re.compile(rf"\s*(p?)\s*({_NUMBER})\s*-\s*(p?)\s*({_NUMBER})\s*")


def parse_channel_styles(text: str, *, source: str = "--render") -> tuple[ChannelStyle, ...]:
    """Channel styles from a command-line text, one comma-separated entry per channel.

    Each entry is ``COLOR`` or ``COLOR:LOW-HIGH`` or ``off``:

    * ``COLOR`` is ``#RRGGBB``, ``#RGB`` or a name (white, gray, grey, red, green, blue,
      yellow, magenta, cyan, orange); ``gray`` is white at half brightness.
    * ``LOW-HIGH`` are the black and white points. A ``p`` before a number makes it a
      percentile (``p1-p99.8``); plain numbers are absolute intensities (``100-4000``).
      Both ends use the same kind. Without a range: percentiles 0.1-99.9.
    * ``off`` hides the channel (it still takes its place in the list).

    Raises :class:`InputError` (``source`` names the option) on anything else.

    Examples
    --------
    >>> a, b = parse_channel_styles("gray:p0.5-p99.5, yellow:100-4000")
    >>> (a.mode, a.black, a.white), (b.mode, b.black, b.white)
    (('percentile', 0.5, 99.5), ('absolute', 100.0, 4000.0))
    >>> [s.visible for s in parse_channel_styles("off,#00FF00")]
    [False, True]
    """
    if not isinstance(text, str) or not text.strip():
        raise InputError(source, "expected channel styles such as 'gray,yellow:p1-p99.8' (one per channel)")
    styles = []
    for i, entry in enumerate(text.split(",")):
        where = f"channel {i} ({entry.strip()!r})"
        entry = entry.strip()
        if not entry:
            raise InputError(source, "empty channel style; expected COLOR, COLOR:LOW-HIGH or off", field=f"channel {i}")
        if entry.lower() in ("off", "hide", "hidden"):
            styles.append(ChannelStyle(visible=False))
            continue
        color, sep, rng = entry.partition(":")
        try:
            parse_color(color)
        except ValueError as exc:
            raise InputError(source, str(exc), field=where) from None
        if not sep:
            styles.append(ChannelStyle(color.strip()))
            continue
        match = _RANGE.fullmatch(rng)
        if match is None:
            raise InputError(
                source,
                f"bad range {rng!r}; expected LOW-HIGH such as p1-p99.8 (percentiles) or 100-4000 (intensities)",
                field=where,
            )
        p_lo, lo, p_hi, hi = match.groups()
        if bool(p_lo) != bool(p_hi):
            raise InputError(source, f"range {rng!r} mixes a percentile and an intensity; use p on both ends or neither", field=where)
        try:
            styles.append(ChannelStyle(color.strip(), float(lo), float(hi), "percentile" if p_lo else "absolute"))
        except ValueError as exc:
            raise InputError(source, str(exc), field=where) from None
    return tuple(styles)


def to_rgb(image: Frame | np.ndarray, config: RenderConfig | None = None) -> np.ndarray:
    """Render a frame to ``(Y, X, 3)`` ``uint8`` RGB.

    Parameters
    ----------
    image : Frame or ndarray
        A :class:`Frame`, a ``(C, Y, X)`` array, or a ``(Y, X)`` array (one channel).
    config : RenderConfig, optional
        Colours, contrast and blend; default :class:`RenderConfig()`.

    Returns
    -------
    ndarray of uint8, shape (Y, X, 3)
        Each visible channel scaled to ``clip((v - black) / (white - black), 0, 1)``,
        times its colour, blended, times 255, rounded. Non-finite pixels count as 0.

    Examples
    --------
    >>> img = np.array([[[0, 50, 100]], [[100, 0, 0]]], dtype=np.float32)  # (C=2, Y=1, X=3)
    >>> cfg = RenderConfig(styles=parse_channel_styles("red:0-100,green:0-100"))
    >>> to_rgb(img, cfg)[0].tolist()
    [[0, 255, 0], [128, 0, 0], [255, 0, 0]]
    """
    config = RenderConfig() if config is None else config
    if isinstance(image, Frame):
        data, source = image.data, image.source
    else:
        data, source = np.asarray(image), "<array>"
        if data.ndim == 2:
            data = data[None]
        if data.ndim != 3:
            raise ValueError(f"expected a (C, Y, X) or (Y, X) array, got shape {data.shape}")
    styles = config.styles_for(data.shape[0], source=source)
    out = np.zeros(data.shape[1:] + (3,), dtype=np.float32)
    if config.blend == "screen":
        out += 1.0  # accumulate prod(1 - v), turned into 1 - prod at the end
    for channel, style in zip(data, styles):
        if not style.visible:
            continue
        channel = np.asarray(channel, dtype=np.float32)
        scaled = _stretch(channel, *style.limits(channel))
        for k, weight in enumerate(style.rgb):
            if weight == 0:
                continue
            tinted = scaled * np.float32(weight) if weight != 1 else scaled
            if config.blend == "lighten":
                np.maximum(out[..., k], tinted, out=out[..., k])
            elif config.blend == "add":
                out[..., k] += tinted
            else:
                out[..., k] *= 1 - tinted
    if config.blend == "screen":
        out = 1 - out
    np.clip(out, 0, 1, out=out)
    out *= 255
    return np.rint(out).astype(np.uint8)


def _stretch(channel: np.ndarray, black: float, white: float) -> np.ndarray:
    """``clip((v - black) / (white - black), 0, 1)``; a step at ``black`` when they are equal."""
    gain = 1.0 / (white - black) if white > black else math.inf
    if gain < 1e30:  # a range too narrow for float32 behaves like the step below
        offset = np.float32(min(max(black, -3e38), 3e38))
        scaled = (channel - offset) * np.float32(gain)
        np.clip(scaled, 0, 1, out=scaled)
    else:
        scaled = (channel > black).astype(np.float32)
    if not np.isfinite(scaled).all():
        scaled[~np.isfinite(scaled)] = 0
    return scaled
