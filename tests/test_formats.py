"""OME-Zarr (NGFF 0.4 and 0.5) and vendor formats (through bioio) read like TIFF frames.

Files are written by the formats' own writers (ome-zarr, Zeiss's pylibCZIrw) in the test.
"""

import numpy as np
import pytest

from fewseg.errors import InputError
from fewseg.io.frames import open_plane, plane_counts, read_frame
from fewseg.objects import Location

pytest.importorskip("ome_zarr")

STACK = np.random.default_rng(0).integers(0, 4000, (2, 3, 2, 48, 56)).astype(np.uint16)  # t c z y x
NAMES = ["BF", "YFP", "DAPI"]


@pytest.fixture(scope="module", params=["0.4", "0.5"])
def zarr_image(request, tmp_path_factory):
    from fewseg.io.formats.omezarr import write_image

    path = tmp_path_factory.mktemp("zarr") / f"stack_{request.param}.ome.zarr"
    write_image(path, STACK, axes="tczyx", channel_names=NAMES, version=request.param, chunks=(1, 1, 1, 16, 16))
    return path


def test_omezarr_plane_and_channels_by_name(zarr_image):
    frame = read_frame(zarr_image, z=1, t=1, channels="DAPI,BF")
    assert frame.channel_names == ("DAPI", "BF")
    np.testing.assert_array_equal(frame.data, STACK[1, [2, 0], 1].astype(np.float32))
    assert frame.data.dtype == np.float32 and frame.location == Location(z=1, time=1)
    assert plane_counts(zarr_image) == {"Z": 2, "T": 2, "XY": 1}


def test_omezarr_resolution_level(zarr_image):
    full = read_frame(zarr_image, z=0, t=0)
    half = read_frame(zarr_image, z=0, t=0, level=1)
    assert half.data.shape == (3, 24, 28) and full.data.shape == (3, 48, 56)
    with pytest.raises(InputError, match="level 9 is out of range"):
        read_frame(zarr_image, z=0, t=0, level=9)


def test_omezarr_errors_name_the_axis_and_channel(zarr_image):
    with pytest.raises(InputError, match=r"2 Z planes; choose one with --z"):
        read_frame(zarr_image, t=0)
    with pytest.raises(InputError, match=r"--t 5 is out of range"):
        read_frame(zarr_image, z=0, t=5)
    with pytest.raises(InputError, match=r"no channel 'GFP'.*0='BF'"):
        read_frame(zarr_image, z=0, t=0, channels="GFP")


def test_omezarr_region_reads_only_what_is_asked(zarr_image):
    plane = open_plane(zarr_image, z=1, t=0, channels=[1])
    block = plane.read(rows=slice(10, 30), cols=slice(5, 50))
    np.testing.assert_array_equal(block.data[0], STACK[0, 1, 1, 10:30, 5:50])


def test_omezarr_2d_without_channel_axis(tmp_path):
    from fewseg.io.formats.omezarr import write_image

    image = STACK[0, 0, 0]
    write_image(tmp_path / "yx.ome.zarr", image, axes="yx", version="0.5", scale_factors=())
    frame = read_frame(tmp_path / "yx.ome.zarr")
    assert frame.data.shape == (1, 48, 56) and frame.channel_names == ("0",)
    np.testing.assert_array_equal(frame.data[0], image)


def test_not_an_omezarr_is_one_line(tmp_path):
    (tmp_path / "plain.zarr").mkdir()
    (tmp_path / "plain.zarr" / "zarr.json").write_text('{"zarr_format": 3, "node_type": "group", "attributes": {}}')
    with pytest.raises(InputError, match="not an OME-Zarr image"):
        read_frame(tmp_path / "plain.zarr")


def test_labels_written_into_the_image(zarr_image):
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Label, Reader

    from fewseg.io.formats.omezarr import write_labels

    labels = np.zeros((2, 2, 48, 56), np.uint32)
    labels[1, 0, 5:15, 5:15] = 7
    write_labels(zarr_image, labels, name="fewseg", axes="tzyx")
    write_labels(zarr_image, labels, name="fewseg", axes="tzyx")  # its own labels: replaced
    nodes = list(Reader(parse_url(str(zarr_image)))())
    [label] = [n for n in nodes if any(isinstance(s, Label) for s in n.specs)]
    np.testing.assert_array_equal(np.asarray(label.data[0]), labels)
    # the image is untouched
    np.testing.assert_array_equal(read_frame(zarr_image, z=1, t=1).data, STACK[1, :, 1].astype(np.float32))


def test_labels_of_someone_else_are_not_overwritten(tmp_path):
    import zarr
    from ome_zarr.format import FormatV05
    from ome_zarr.writer import write_labels as ome_write_labels

    from fewseg.io.formats.omezarr import write_image, write_labels

    path = tmp_path / "img.ome.zarr"
    write_image(path, STACK[0, :, 0], axes="cyx", version="0.5", scale_factors=())
    ome_write_labels(np.ones((48, 56), np.uint8), zarr.open_group(str(path), mode="r+"), name="cells", axes="yx",
                     fmt=FormatV05(), scaler=None, scale_factors=())
    with pytest.raises(InputError, match="not written by fewseg"):
        write_labels(path, np.zeros((48, 56), np.uint32), name="cells", axes="yx")
    write_labels(path, np.zeros((48, 56), np.uint32), name="fewseg", axes="yx")
    assert sorted(p.name for p in (path / "labels").iterdir() if not p.name.startswith(("zarr", "."))) == ["cells", "fewseg"]


# --------------------------------------------------------------------------- vendor formats


@pytest.fixture(scope="module")
def czi_file(tmp_path_factory):
    """A real CZI written by Zeiss's libCZI (pylibCZIrw), with named channels."""
    pyczi = pytest.importorskip("pylibCZIrw.czi")
    path = tmp_path_factory.mktemp("czi") / "stack.czi"
    with pyczi.create_czi(str(path), exist_ok=True) as czi:
        for t in range(2):
            for z in range(2):
                for c in range(2):
                    czi.write(STACK[t, c, z][..., None], plane={"T": t, "Z": z, "C": c}, location=(0, 0))
        czi.write_metadata(document_name="fewseg test", channel_names={0: "BF", 1: "YFP"})
    return path


def test_czi_through_bioio(czi_file):
    pytest.importorskip("bioio_czi")
    frame = read_frame(czi_file, z=1, t=1, channels="YFP")
    assert frame.channel_names == ("YFP",)
    np.testing.assert_array_equal(frame.data[0], STACK[1, 1, 1].astype(np.float32))
    assert plane_counts(czi_file) == {"Z": 2, "T": 2, "XY": 1}
    with pytest.raises(InputError, match=r"--xy 3 is out of range"):
        read_frame(czi_file, z=0, t=0, location=Location(xy=3))


def test_ome_tiff_through_bioio_matches_fewseg_reader(tmp_path):
    """The bioio path (here forced to its OME-TIFF plugin) selects planes and channels
    exactly as fewseg's own TIFF reader does."""
    import tifffile

    from fewseg.io.formats.vendor import open_vendor

    reader = pytest.importorskip("bioio_ome_tiff").Reader
    path = tmp_path / "stack.ome.tif"
    tifffile.imwrite(path, STACK, ome=True, metadata={"axes": "TCZYX", "Channel": {"Name": NAMES}})
    from fewseg.io.frames import PlaneSelection

    plane = PlaneSelection(open_vendor(str(path), reader=reader), z=1, t=0, xy=0, channels="YFP,DAPI")
    ours = read_frame(path, z=1, t=0, channels="YFP,DAPI")
    theirs = plane.read()
    assert theirs.channel_names == ours.channel_names == ("YFP", "DAPI")
    np.testing.assert_array_equal(theirs.data, ours.data)


def test_missing_vendor_file_and_unknown_format(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_frame(tmp_path / "absent.nd2")
    bad = tmp_path / "broken.nd2"
    bad.write_bytes(b"not an nd2 file at all" * 10)
    with pytest.raises(InputError, match="broken.nd2: cannot read it through bioio"):
        read_frame(bad)


def test_tiff_regions(tmp_path):
    import tifffile

    from fewseg.io.formats import open_source

    path = tmp_path / "big.ome.tif"
    tifffile.imwrite(path, STACK[0, :2, 0], ome=True, tile=(16, 16), metadata={"axes": "CYX", "Channel": {"Name": NAMES[:2]}})
    source = open_source(path)
    assert source.channel_names == ("BF", "YFP") and source.shape == (48, 56)
    np.testing.assert_array_equal(source.read(channels=[1], rows=slice(3, 40), cols=slice(20, 56))[0],
                                  STACK[0, 1, 0, 3:40, 20:56])
