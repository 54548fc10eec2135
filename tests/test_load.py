"""Tests for fewseg.io.frames: reading frames from TIFF / OME-TIFF / Pillow formats, writing OME-TIFF."""

from __future__ import annotations

import os

import imageio.v3 as iio
import numpy as np
import pytest
import tifffile

from fewseg.errors import InputError
from fewseg.io.frames import frame_axes, plane_counts, read_array, read_frame, write_frame
from fewseg.objects import Frame, Location

Y, X = 6, 7


# --------------------------------------------------------------------------- helpers


def coded_stack(shape: tuple[int, ...], dtype=np.float32) -> np.ndarray:
    """An array whose every pixel value is unique, so a wrong plane cannot pass."""
    return np.arange(int(np.prod(shape))).reshape(shape).astype(dtype)


def write_ome(path, data: np.ndarray, axes: str, names=None):
    metadata = {"axes": axes}
    if names is not None:
        metadata["Channel"] = {"Name": list(names)}
    tifffile.imwrite(path, data, metadata=metadata, photometric="minisblack")
    return path


def to_cyx(data: np.ndarray, axes: str, **picks) -> np.ndarray:
    """Reference selection: pick Z/T planes, put C first (1 channel when there is no C)."""
    for axis, value in picks.items():
        if axis in axes:
            data = np.take(data, value, axis=axes.index(axis))
            axes = axes.replace(axis, "")
    if "C" not in axes:
        data, axes = data[None], "C" + axes
    return np.moveaxis(data, axes.index("C"), 0)


def message(excinfo) -> str:
    return str(excinfo.value)


# --------------------------------------------------------------------------- TIFF axes


@pytest.mark.parametrize(
    "axes, picks",
    [
        ("YX", {}),
        ("CYX", {}),
        ("ZYX", {"Z": 2}),
        ("ZCYX", {"Z": 1}),
        ("CZYX", {"Z": 2}),
        ("TCYX", {"T": 1}),
        ("TZCYX", {"T": 1, "Z": 2}),
    ],
)
def test_ome_axes_orders_select_the_right_plane(tmp_path, axes, picks):
    sizes = {"T": 2, "Z": 3, "C": 2, "Y": Y, "X": X}
    data = coded_stack(tuple(sizes[a] for a in axes))
    path = write_ome(tmp_path / "stack.ome.tif", data, axes)

    frame = read_frame(path, z=picks.get("Z"), t=picks.get("T"))

    np.testing.assert_array_equal(frame.data, to_cyx(data, axes, **picks))
    assert frame.data.dtype == np.float32
    assert frame.location == Location(z=picks.get("Z", 0), time=picks.get("T", 0))
    assert frame.source == str(path)


def test_imagej_hyperstack_selects_z_and_t(tmp_path):
    data = coded_stack((2, 3, 2, Y, X))
    tifffile.imwrite(tmp_path / "hyper.tif", data, imagej=True, metadata={"axes": "TZCYX"})
    frame = read_frame(tmp_path / "hyper.tif", z=1, t=0)
    np.testing.assert_array_equal(frame.data, data[0, 1])


def test_tzcyx_ome_channel_names_and_selection_by_name(tmp_path):
    data = coded_stack((2, 3, 3, Y, X), np.uint16)
    path = write_ome(tmp_path / "tz.ome.tif", data, "TZCYX", names=["DAPI", "YFP", "Brightfield"])

    frame = read_frame(path, z=2, t=1, channels="YFP,Brightfield")

    assert frame.channel_names == ("YFP", "Brightfield")
    np.testing.assert_array_equal(frame.data, data[1, 2, 1:])
    assert read_frame(path, z=0, t=0).channel_names == ("DAPI", "YFP", "Brightfield")


@pytest.mark.parametrize(
    "channels, expected",
    [
        (None, [0, 1, 2]),
        ("2,0", [2, 0]),
        ("YFP, DAPI", [1, 0]),
        ([1], [1]),
        (["Brightfield", 0], [2, 0]),
        (1, [1]),
    ],
)
def test_channel_selection_forms(tmp_path, channels, expected):
    data = coded_stack((3, Y, X))
    path = write_ome(tmp_path / "c.ome.tif", data, "CYX", names=["DAPI", "YFP", "Brightfield"])
    frame = read_frame(path, channels=channels)
    np.testing.assert_array_equal(frame.data, data[expected])


@pytest.mark.parametrize("bad", ["GFP", "3", [7], "0,GFP"])
def test_unknown_channel_lists_the_available_ones(tmp_path, bad):
    path = write_ome(tmp_path / "c.ome.tif", coded_stack((3, Y, X)), "CYX", names=["DAPI", "YFP", "Brightfield"])
    with pytest.raises(InputError) as excinfo:
        read_frame(path, channels=bad)
    text = message(excinfo)
    assert text.startswith(f"{path}: channels: no channel")
    assert "'DAPI'" in text and "'YFP'" in text and "'Brightfield'" in text


def test_plain_tiff_channels_are_named_by_index(tmp_path):
    data = coded_stack((2, Y, X), np.uint16)
    tifffile.imwrite(tmp_path / "plain.tif", data)  # axes 'QYX': an unlabelled leading axis
    frame = read_frame(tmp_path / "plain.tif", channels="1")
    assert frame.channel_names == ("1",)
    np.testing.assert_array_equal(frame.data[0], data[1])


# --------------------------------------------------------------------------- plain stacks and axes=


def test_a_plain_stack_of_five_planes_is_read_as_z_planes_and_says_so(tmp_path):
    data = coded_stack((5, Y, X), np.uint16)
    path = tmp_path / "movie.tif"
    tifffile.imwrite(path, data)  # no axis names: tifffile says 'QYX'
    with pytest.raises(InputError, match=r"movie\.tif: Z: the file has 5 Z planes; choose one with --z"):
        read_frame(path)  # never 5 channels
    frame = read_frame(path, z=3)
    np.testing.assert_array_equal(frame.data, data[3:4])
    assert plane_counts(path) == {"Z": 5, "T": 1}
    read = frame_axes(path)
    assert (read.axes, read.how, read.stored) == ("ZYX", "guess", "QYX")
    assert read.note() == (f"read movie.tif as ZYX (5 x {Y} x {X}): 5 Z planes; pass --axes TYX if they are time "
                           "points, --axes CYX if channels")
    assert "name the file movie.TYX.tif if they are time points" in read.note(napari=True)


def test_a_plain_stack_of_three_planes_is_read_as_channels_and_says_so(tmp_path):
    data = coded_stack((3, Y, X), np.uint16)
    tifffile.imwrite(tmp_path / "cells.tif", data, photometric="minisblack")  # 'QYX' (tifffile's default: RGB)
    np.testing.assert_array_equal(read_frame(tmp_path / "cells.tif").data, data)
    assert frame_axes(tmp_path / "cells.tif").note() == (
        f"read cells.tif as CYX (3 x {Y} x {X}): 3 channels; pass --axes ZYX if they are Z planes, --axes TYX if time points")


@pytest.mark.parametrize("axes, kwargs, expected", [
    ("TYX", {"t": 4}, lambda d: d[4:5]),
    ("tyx", {"t": 1}, lambda d: d[1:2]),
    ("CYX", {}, lambda d: d),
    ("ZYX", {"z": 2}, lambda d: d[2:3]),
    ("CXY", {}, lambda d: np.swapaxes(d, 1, 2)),
])
def test_axes_say_what_the_planes_are(tmp_path, axes, kwargs, expected):
    data = coded_stack((5, Y, X), np.uint16)
    tifffile.imwrite(tmp_path / "movie.tif", data)
    frame = read_frame(tmp_path / "movie.tif", axes=axes, **kwargs)
    np.testing.assert_array_equal(frame.data, expected(data))
    assert frame_axes(tmp_path / "movie.tif", axes=axes).note() is None  # the caller said it


def test_axes_override_a_labelled_file(tmp_path):
    data = coded_stack((3, Y, X))
    path = write_ome(tmp_path / "z.ome.tif", data, "ZYX")
    np.testing.assert_array_equal(read_frame(path, t=2, axes="TYX").data, data[2:3])
    assert frame_axes(path).how == "file" and frame_axes(path).note() is None


def test_the_file_name_gives_the_axes_and_axes_wins(tmp_path):
    data = coded_stack((5, Y, X), np.uint16)
    path = tmp_path / "movie.TYX.tif"
    tifffile.imwrite(path, data)
    assert read_frame(path, t=2).location == Location(time=2)
    np.testing.assert_array_equal(read_frame(path, t=2).data, data[2:3])
    assert frame_axes(path).note() == f"read movie.TYX.tif as TYX (5 x {Y} x {X}), as its name says"
    assert read_frame(path, axes="CYX").data.shape == (5, Y, X)
    tifffile.imwrite(tmp_path / "cells_CYX.ome.tif", data, photometric="minisblack")
    assert read_frame(tmp_path / "cells_CYX.ome.tif").data.shape == (5, Y, X)


def test_two_unlabelled_axes_ask_for_axes(tmp_path):
    data = coded_stack((2, 3, Y, X), np.uint16)
    tifffile.imwrite(tmp_path / "hyper.tif", data, photometric="minisblack")  # 'QQYX'
    with pytest.raises(InputError) as excinfo:
        read_frame(tmp_path / "hyper.tif")
    assert message(excinfo) == (f"{tmp_path / 'hyper.tif'}: axes: cannot tell what axis Q (size 2), Q (size 3) is in "
                                f"axes QQYX of shape 2 x 3 x {Y} x {X}; give the axes with --axes (Python: axes=), "
                                "e.g. --axes TCYX")
    frame = read_frame(tmp_path / "hyper.tif", axes="TCYX", t=1)
    np.testing.assert_array_equal(frame.data, data[1])


@pytest.mark.parametrize("axes, expected", [
    ("TYQ", "--axes: unknown axis letter 'Q' in 'TYQ'; use T (time), Z, C (channels), Y and X"),
    ("TTYX", "--axes: 'T' appears twice in 'TTYX'; name each axis once, e.g. TYX"),
    ("TZ", "--axes: 'TZ' has no Y or X; the image plane is Y and X (e.g. TYX, CYX)"),
    ("ZY", "--axes: 'ZY' has no X; the image plane is Y and X (e.g. TYX, CYX)"),
    ("", "--axes: expected axis letters such as TYX, ZYX, CYX or TCYX"),
    ("TCYX", "{path}: axes: --axes TCYX names 4 axes; the file has 3: QYX of shape 5 x 6 x 7"),
    ("YX", "{path}: axes: --axes YX names 2 axes; the file has 3: QYX of shape 5 x 6 x 7"),
])
def test_bad_axes_are_one_line_each(tmp_path, axes, expected):
    path = tmp_path / "movie.tif"
    tifffile.imwrite(path, coded_stack((5, Y, X), np.uint16))
    for call in (lambda: read_frame(path, axes=axes), lambda: plane_counts(path, axes=axes)):
        with pytest.raises(InputError) as excinfo:
            call()
        assert message(excinfo) == expected.format(path=path)


def test_axes_of_a_png_are_yx_or_yxc(tmp_path):
    iio.imwrite(tmp_path / "gray.png", np.zeros((Y, X), np.uint8))
    iio.imwrite(tmp_path / "rgb.png", np.zeros((Y, X, 3), np.uint8))
    assert read_frame(tmp_path / "gray.png", axes="YX").data.shape == (1, Y, X)
    assert read_frame(tmp_path / "rgb.png", axes="YXC").data.shape == (3, Y, X)
    with pytest.raises(InputError, match=r"gray\.png: axes: --axes TYX: this image is YX \(gray\)$"):
        read_frame(tmp_path / "gray.png", axes="TYX")


def test_planar_rgb_samples_count_as_channels(tmp_path):
    data = coded_stack((3, Y, X), np.uint16)
    tifffile.imwrite(tmp_path / "planar.tif", data, photometric="rgb", planarconfig="separate")  # axes 'SYX'
    np.testing.assert_array_equal(read_frame(tmp_path / "planar.tif").data, data)


def test_rgb_tiff_gives_three_channels(tmp_path):
    rgb = coded_stack((Y, X, 3), np.uint8)
    tifffile.imwrite(tmp_path / "rgb.tif", rgb, photometric="rgb")
    frame = read_frame(tmp_path / "rgb.tif")
    np.testing.assert_array_equal(frame.data, np.moveaxis(rgb, 2, 0))
    assert frame.channel_names == ("0", "1", "2")


@pytest.mark.parametrize(
    "data, axes",
    [
        (np.zeros((3, 2, Y, X), np.uint16), None),  # 'QQYX': two unlabelled axes
        (np.zeros((3, 2, Y, X), np.uint16), "QCYX"),  # unlabelled axis beside C
    ],
)
def test_ambiguous_axes_are_refused(tmp_path, data, axes):
    path = tmp_path / "ambiguous.tif"
    tifffile.imwrite(path, data, metadata={"axes": axes} if axes else {})
    with pytest.raises(InputError) as excinfo:
        read_frame(path)
    assert message(excinfo).startswith(f"{path}: axes: cannot tell what axis Q (size 3)")


# --------------------------------------------------------------------------- Z / T errors


@pytest.mark.parametrize(
    "axes, kwargs, expected",
    [
        ("ZYX", {}, "Z: the file has 3 Z planes; choose one with --z (Python: z=) in 0..2"),
        ("ZYX", {"z": 3}, "Z: --z 3 is out of range: the file has 3 Z planes (0..2)"),
        ("ZYX", {"z": -1}, "Z: --z -1 is out of range"),
        ("TZYX", {"z": 0}, "T: the file has 2 time points; choose one with --t"),
        ("TZYX", {"z": 0, "t": 5}, "T: --t 5 is out of range: the file has 2 time points (0..1)"),
        ("YX", {"z": 1}, "Z: the image has no Z axis (a single plane); --z must be 0 or omitted, got 1"),
        ("YX", {"t": 2}, "T: the image has no T axis"),
    ],
)
def test_plane_selection_errors_name_axis_size_and_option(tmp_path, axes, kwargs, expected):
    sizes = {"T": 2, "Z": 3, "Y": Y, "X": X}
    path = write_ome(tmp_path / "zt.ome.tif", coded_stack(tuple(sizes[a] for a in axes)), axes)
    with pytest.raises(InputError) as excinfo:
        read_frame(path, **kwargs)
    assert message(excinfo).startswith(f"{path}: {expected}")


def test_index_zero_is_fine_without_the_axis(tmp_path):
    path = write_ome(tmp_path / "yx.ome.tif", coded_stack((Y, X)), "YX")
    assert read_frame(path, z=0, t=0).data.shape == (1, Y, X)


# --------------------------------------------------------------------------- dtypes


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16, np.int32, np.uint32, np.float32, np.float64, bool])
def test_dtypes_become_unscaled_float32(tmp_path, dtype):
    data = (coded_stack((Y, X)) % 2 if dtype is bool else coded_stack((Y, X)) * 3).astype(dtype)
    tifffile.imwrite(tmp_path / "d.tif", data)
    frame = read_frame(tmp_path / "d.tif")
    assert frame.data.dtype == np.float32
    np.testing.assert_array_equal(frame.data[0], data.astype(np.float32))


def test_complex_pixels_are_refused(tmp_path):
    path = tmp_path / "complex.tif"
    tifffile.imwrite(path, np.zeros((Y, X), np.complex64))
    with pytest.raises(InputError) as excinfo:
        read_frame(path)
    assert message(excinfo).startswith(f"{path}: dtype: unsupported pixel type complex64")


# --------------------------------------------------------------------------- PNG / JPEG


@pytest.mark.parametrize(
    "shape, dtype, n_channels",
    [
        ((Y, X), np.uint8, 1),
        ((Y, X), np.uint16, 1),
        ((Y, X, 2), np.uint8, 1),  # gray + alpha
        ((Y, X, 3), np.uint8, 3),
        ((Y, X, 4), np.uint8, 3),  # RGBA: alpha dropped
    ],
)
def test_png_channels(tmp_path, shape, dtype, n_channels):
    image = (coded_stack(shape) % 250).astype(dtype)
    iio.imwrite(tmp_path / "img.png", image)
    frame = read_frame(tmp_path / "img.png")
    expected = image if image.ndim == 2 else np.moveaxis(image, 2, 0)[:n_channels]
    np.testing.assert_array_equal(frame.data.reshape(n_channels, Y, X), np.reshape(expected, (n_channels, Y, X)))
    assert frame.channel_names == tuple(str(i) for i in range(n_channels))


def test_jpeg_rgb(tmp_path):
    image = np.full((16, 16, 3), (200, 100, 50), np.uint8)
    iio.imwrite(tmp_path / "img.jpg", image)
    frame = read_frame(tmp_path / "img.jpg", channels="0,2")
    assert frame.data.shape == (2, 16, 16)
    np.testing.assert_allclose(frame.data[:, 8, 8], [200, 50], atol=4)


def test_png_has_no_z(tmp_path):
    iio.imwrite(tmp_path / "img.png", np.zeros((Y, X), np.uint8))
    with pytest.raises(InputError, match=r"img\.png: Z: the image has no Z axis"):
        read_frame(tmp_path / "img.png", z=2)


# --------------------------------------------------------------------------- bad files


def _truncated_tiff(path):
    tifffile.imwrite(path, coded_stack((64, 64), np.uint16))
    data = path.read_bytes()
    path.write_bytes(data[:-1000])  # header and IFD intact, pixel data cut short


def _truncated_png(path):
    iio.imwrite(path, coded_stack((32, 32), np.uint8))
    path.write_bytes(path.read_bytes()[:40])


CORRUPT = {
    "empty.tif": (lambda p: p.write_bytes(b""), "the file is empty"),
    "empty.png": (lambda p: p.write_bytes(b""), "the file is empty"),
    "random.tif": (lambda p: p.write_bytes(np.random.default_rng(0).bytes(500)), "cannot read it as TIFF"),
    "random.png": (lambda p: p.write_bytes(np.random.default_rng(0).bytes(500)), "cannot read it as an image"),
    "text.jpg": (lambda p: p.write_text("not an image"), "cannot read it as an image"),
    "truncated.tif": (_truncated_tiff, "cannot read it as TIFF"),
    "truncated.png": (_truncated_png, "cannot read it as an image"),
    "missing.tif": (lambda p: None, "no such file"),
    "folder.tif": (lambda p: p.mkdir(), "is a directory"),
}


@pytest.mark.parametrize("name", sorted(CORRUPT))
def test_unreadable_files_give_one_line_errors(tmp_path, name):
    make, reason = CORRUPT[name]
    path = tmp_path / name
    make(path)
    with pytest.raises(InputError) as excinfo:
        read_frame(path)
    text = message(excinfo)
    assert text.startswith(f"{path}: {reason}")
    assert "\n" not in text


def test_tiff_content_with_another_suffix_is_read_as_tiff(tmp_path):
    data = coded_stack((2, Y, X))
    write_ome(tmp_path / "frame.ome.tif", data, "CYX", names=["a", "b"]).rename(tmp_path / "frame.dat")
    assert read_frame(tmp_path / "frame.dat").channel_names == ("a", "b")


# --------------------------------------------------------------------------- location, read_array


def test_location_argument_wins(tmp_path):
    path = write_ome(tmp_path / "z.ome.tif", coded_stack((3, Y, X)), "ZYX")
    assert read_frame(path, z=1, location=Location(xy=4, z=9, time=2)).location == Location(xy=4, z=9, time=2)


def test_read_array_keeps_dtype_and_axes(tmp_path):
    data = coded_stack((Y, X), np.uint32) + 70000
    tifffile.imwrite(tmp_path / "labels.tif", data)
    array, axes = read_array(tmp_path / "labels.tif")
    assert axes == "YX" and array.dtype == np.uint32
    np.testing.assert_array_equal(array, data)


# --------------------------------------------------------------------------- write_frame


@pytest.mark.parametrize(
    "values, stored",
    [
        (coded_stack((2, Y, X)), np.uint8),
        (coded_stack((2, Y, X)) * 100, np.uint16),
        (coded_stack((2, Y, X)) - 50, np.int16),
        (coded_stack((2, Y, X)) * 1e6, np.uint32),
        (coded_stack((2, Y, X)) + 0.5, np.float32),
    ],
)
def test_write_frame_round_trip(tmp_path, values, stored):
    frame = Frame(values.astype(np.float32), channel_names=("YFP", "Brightfield"))
    path = tmp_path / "out" / "frame.ome.tif"

    write_frame(path, frame)

    back = read_frame(path)
    np.testing.assert_array_equal(back.data, frame.data)
    assert back.channel_names == ("YFP", "Brightfield")
    with tifffile.TiffFile(path) as tif:
        assert tif.is_ome and tif.series[0].axes == "CYX" and tif.series[0].dtype == stored
    assert os.listdir(path.parent) == ["frame.ome.tif"]  # no temporary file left behind


def test_write_frame_three_uint8_channels_stay_channels(tmp_path):
    frame = Frame(coded_stack((3, Y, X)) % 200)
    write_frame(tmp_path / "f.tif", frame)
    assert read_frame(tmp_path / "f.tif").data.shape == (3, Y, X)


def test_write_frame_refuses_other_formats(tmp_path):
    with pytest.raises(InputError, match=r"frame\.png: write_frame writes OME-TIFF"):
        write_frame(tmp_path / "frame.png", Frame(coded_stack((1, Y, X))))
    assert not any(tmp_path.iterdir())


def test_multi_frame_gif_is_refused(tmp_path):
    frames = np.stack([np.zeros((Y, X, 3), np.uint8), np.full((Y, X, 3), 255, np.uint8)])
    iio.imwrite(tmp_path / "movie.gif", frames, plugin="pillow")
    with pytest.raises(InputError, match=r"movie\.gif: the file holds 2 images; expected one frame"):
        read_frame(tmp_path / "movie.gif")
