import json

import numpy as np
import pytest

from fewseg import Frame, InputError
from fewseg.render import (
    ChannelStyle,
    RenderConfig,
    default_styles,
    parse_channel_styles,
    parse_color,
    to_rgb,
)


def _two_channels(a: float, b: float, shape=(2, 3)) -> np.ndarray:
    """(2, Y, X) channels filled with a and b (absolute range 0-100 maps them to a/100, b/100)."""
    return np.stack([np.full(shape, a, np.float32), np.full(shape, b, np.float32)])


def _cfg(text: str, blend: str = "lighten") -> RenderConfig:
    return RenderConfig(styles=parse_channel_styles(text), blend=blend)


@pytest.mark.parametrize(
    "blend, expected",
    [
        ("lighten", 153),  # max(0.2, 0.6) * 255
        ("add", 204),  # (0.2 + 0.6) * 255
        ("screen", 173),  # (1 - 0.8 * 0.4) * 255 = 173.4
    ],
)
def test_blend_modes(blend, expected):
    rgb = to_rgb(_two_channels(20, 60), _cfg("white:0-100,white:0-100", blend))
    assert rgb.dtype == np.uint8 and rgb.shape == (2, 3, 3)
    assert (rgb == expected).all()


@pytest.mark.parametrize("blend", ["lighten", "add", "screen"])
def test_blends_per_colour_component(blend):
    # red 0.2 and yellow 0.6: green and blue have one contributor each (or none)
    rgb = to_rgb(_two_channels(20, 60), _cfg("red:0-100,yellow:0-100", blend))[0, 0]
    red = {"lighten": 153, "add": 204, "screen": 173}[blend]
    assert rgb.tolist() == [red, 153, 0]


def test_add_clips_at_full_colour():
    rgb = to_rgb(_two_channels(70, 80), _cfg("white:0-100,white:0-100", "add"))
    assert (rgb == 255).all()


def test_tint_scales_colour():
    rgb = to_rgb(np.full((1, 1, 1), 50, np.float32), _cfg("#FF8000:0-100"))
    assert rgb[0, 0].tolist() == [128, 64, 0]  # 0.5*255 = 127.5 -> 128; 0.5*128 = 64


def test_absolute_contrast_clips_and_rounds():
    channel = np.array([[[0, 100, 101, 150, 200, 4000]]], np.float32)
    rgb = to_rgb(channel, _cfg("white:100-200"))
    assert rgb[0, :, 0].tolist() == [0, 0, 3, 128, 255, 255]  # 1/100*255 = 2.55 -> 3


def test_percentile_contrast_uses_the_channel_percentiles():
    rng = np.random.default_rng(0)
    channel = rng.gamma(2.0, 100.0, size=(1, 50, 60)).astype(np.float32)
    lo, hi = np.percentile(channel, [2, 98])
    expected = np.rint(np.clip((channel[0] - lo) / (hi - lo), 0, 1) * 255)
    rgb = to_rgb(channel, _cfg("white:p2-p98"))
    assert np.abs(rgb[..., 0].astype(int) - expected).max() <= 1  # float32 vs float64 rounding
    assert (rgb[..., 0] == 0).mean() == pytest.approx(0.02, abs=0.002)
    assert (rgb[..., 0] == 255).mean() == pytest.approx(0.02, abs=0.002)


def test_percentile_and_absolute_differ_on_the_same_numbers():
    channel = np.arange(1001, dtype=np.float32).reshape(1, 1, -1)  # values 0..1000
    pct = to_rgb(channel, _cfg("white:p0-p10"))[0, :, 0]
    abs_ = to_rgb(channel, _cfg("white:0-10"))[0, :, 0]
    assert pct[50] == 128 and pct[100] == 255  # 10th percentile is 100
    assert abs_[5] == 128 and abs_[10] == 255


def test_invisible_channel_contributes_nothing():
    data = _two_channels(80, 40)
    shown = to_rgb(data, _cfg("off,green:0-100"))
    assert shown[0, 0].tolist() == [0, 102, 0]  # 0.4 * 255
    all_hidden = to_rgb(data, RenderConfig(styles=(ChannelStyle(visible=False),) * 2, blend="screen"))
    assert (all_hidden == 0).all()


def test_constant_channel_does_not_divide_by_zero():
    constant = np.full((1, 4, 4), 7.0, np.float32)
    assert (to_rgb(constant) == 0).all()  # percentile black == white == 7: nothing above it
    step = to_rgb(np.array([[[1.0, 5.0, 9.0]]], np.float32), _cfg("white:5-5"))
    assert step[0, :, 0].tolist() == [0, 0, 255]


def test_non_finite_pixels_are_black_and_do_not_warn():
    channel = np.array([[[0.0, np.nan, 50.0, np.inf, 100.0]]], np.float32)
    rgb = to_rgb(channel, _cfg("white:p0-p100"))
    assert rgb[0, :, 0].tolist() == [0, 0, 128, 255, 255]


def test_frame_input_defaults_and_two_dimensional_arrays():
    frame = Frame.from_array(np.random.default_rng(1).random((2, 8, 9)), channel_names=("Brightfield", "YFP"))
    rgb = to_rgb(frame)
    assert rgb.shape == (8, 9, 3) and rgb.dtype == np.uint8
    assert rgb[..., 2].max() <= 128  # brightfield grey at half brightness, YFP has no blue
    assert to_rgb(np.ones((5, 6))).shape == (5, 6, 3)


def test_style_count_must_match_channels():
    frame = Frame.from_array(np.zeros((3, 4, 4)), source="cells.tif")
    with pytest.raises(InputError, match="cells.tif: channels: .*2 channel style.*3 channel"):
        to_rgb(frame, _cfg("gray,yellow"))


def test_default_styles_by_channel_count():
    assert [s.color for s in default_styles(1)] == ["white"]
    assert [s.color for s in default_styles(2)] == ["gray", "yellow"]
    assert [s.color for s in default_styles(3)] == ["red", "green", "blue"]
    five = default_styles(9)
    assert [s.color for s in five][:7] == ["red", "green", "blue", "yellow", "magenta", "cyan", "orange"]
    assert all(s.mode == "percentile" and (s.black, s.white) == (0.1, 99.9) for s in five)


def test_parse_colours():
    assert parse_color("#ffff00") == (1.0, 1.0, 0.0)
    assert parse_color("FF0000") == (1.0, 0.0, 0.0)
    assert parse_color(" Yellow ") == (1.0, 1.0, 0.0)
    assert parse_color("gray") == pytest.approx((128 / 255,) * 3)
    with pytest.raises(ValueError, match="unknown colour 'purple'"):
        parse_color("purple")


def test_parse_channel_styles_syntax():
    a, b, c, d = parse_channel_styles(" gray:p0.5-p99.5 , yellow:p1-p99.8,#00FF00:100-4000, off")
    assert (a.color, a.mode, a.black, a.white) == ("gray", "percentile", 0.5, 99.5)
    assert (b.color, b.mode, b.black, b.white) == ("yellow", "percentile", 1.0, 99.8)
    assert (c.color, c.mode, c.black, c.white) == ("#00FF00", "absolute", 100.0, 4000.0)
    assert not d.visible and a.visible
    (e,) = parse_channel_styles("red")
    assert (e.mode, e.black, e.white) == ("percentile", 0.1, 99.9)
    (f,) = parse_channel_styles("white:-50--10")
    assert (f.black, f.white) == (-50.0, -10.0)
    (g,) = parse_channel_styles("white:1e2-2.5E3")
    assert (g.black, g.white) == (100.0, 2500.0)


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "expected channel styles"),
        ("   ", "expected channel styles"),
        ("purple", "unknown colour 'purple'"),
        ("red:1-", "bad range"),
        ("red:low-high", "bad range"),
        ("red:p1-99", "mixes a percentile and an intensity"),
        ("red:p1-p200", "0-100"),
        ("red:90-10", "below black point"),
        ("red,,blue", "empty channel style"),
        ("#12345:0-1", "unknown colour"),
    ],
)
def test_parse_channel_styles_errors(text, message):
    with pytest.raises(InputError, match=message) as info:
        parse_channel_styles(text)
    assert info.value.source == "--render"
    assert str(info.value).startswith("--render")


def test_channel_style_validation():
    with pytest.raises(ValueError, match="contrast mode"):
        ChannelStyle(mode="log")
    with pytest.raises(ValueError, match="finite"):
        ChannelStyle(black=float("nan"))
    with pytest.raises(ValueError, match="blend"):
        RenderConfig(blend="multiply")


def test_render_config_json_round_trip():
    cfg = RenderConfig(styles=parse_channel_styles("gray,yellow:100-4000,off"), blend="screen")
    back = RenderConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert back == cfg
    assert RenderConfig.from_dict(RenderConfig().to_dict()) == RenderConfig()


@pytest.mark.parametrize(
    "data, message",
    [
        ([], "expected an object"),
        ({"blend": "multiply"}, "blend: expected one of"),
        ({"styles": "gray"}, "styles: expected a list"),
        ({"styles": [{"color": "gray", "gamma": 2}]}, r"styles\[0\]: unknown key"),
        ({"styles": [{"color": "nope"}]}, r"styles\[0\]: unknown colour"),
        ({"colour": []}, "unknown key"),
    ],
)
def test_render_config_from_dict_errors(data, message):
    with pytest.raises(InputError, match=message):
        RenderConfig.from_dict(data, source="run.json")
