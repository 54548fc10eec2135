"""fewseg._reading: what reading libraries raise or log becomes one InputError."""

import logging
import zlib

import pytest

from fewseg._reading import check_input_file, check_memory, library_errors
from fewseg.errors import InputError


@pytest.mark.parametrize("exc, expected", [
    (ZeroDivisionError("division by zero"), "corrupt, truncated or another format): division by zero"),
    (AssertionError(), "AssertionError"),
    (zlib.error("Error -3 while decompressing data"), "Error -3"),
    (RecursionError("maximum recursion depth exceeded"), "maximum recursion depth"),
    (MemoryError(), "too large to read as TIFF into this machine's memory"),
    (ModuleNotFoundError("No module named 'imagecodecs'", name="imagecodecs"), "pip install imagecodecs"),
    (ValueError("first line\nsecond line"), "first line"),
])
def test_library_errors_become_one_line(exc, expected):
    with pytest.raises(InputError) as info:
        with library_errors("a.tif", "TIFF"):
            raise exc
    assert str(info.value).startswith("a.tif: ") and expected in str(info.value) and "\n" not in str(info.value)


def test_a_logged_warning_refuses_the_file():
    with pytest.raises(InputError, match=r"a.tif: damaged TIFF: OME series is missing 7 frames"):
        with library_errors("a.tif", "TIFF"):
            logging.getLogger("tifffile").warning("<tifffile.TiffFile 'a.tif'> OME series is missing 7 frames")


def test_fewseg_errors_pass_through():
    with pytest.raises(InputError, match="^b.json: mine$"):
        with library_errors("a.tif", "TIFF"):
            raise InputError("b.json", "mine")


def test_check_memory():
    check_memory("small.tif", 1000, "an image")
    with pytest.raises(InputError, match="more than the .* GB of memory available"):
        check_memory("big.tif", 2**70, "an image of 2^35 x 2^35")


def test_check_input_file(tmp_path):
    (tmp_path / "empty.tif").write_bytes(b"")
    (tmp_path / "d.tif").mkdir()
    (tmp_path / "loop.tif").symlink_to("loop.tif")
    (tmp_path / "broken.tif").symlink_to("none.tif")
    for name, problem in (("empty.tif", "the file is empty"), ("d.tif", "is a directory"),
                          ("loop.tif", "cannot open the file"), ("broken.tif", "broken symbolic link"),
                          ("none.tif", "no such file")):
        with pytest.raises(InputError, match=problem):
            check_input_file(tmp_path / name)
    with pytest.raises(InputError, match="not a regular file"):
        check_input_file("/dev/zero")
