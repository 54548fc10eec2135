"""The command line keeps its promise on malformed input (fixed seeds; the long run is benchmarks/fuzz.py).

For every case: exit status 2 with at most two lines on stderr and no traceback, or exit 0
for inputs that are in fact valid; no file of the user's changed; nothing left behind by a
failed run; inputs known to be wrong refused (see ``fuzz_cases.verdict``).
"""

import json
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fuzz_cases as fc

FIXED = settings(derandomize=True, database=None, deadline=None, max_examples=25,
                 suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.fixture(scope="module")
def base():
    return fc.demo_files()


@pytest.fixture
def check(tmp_path, capsys, base):
    """Run one case in-process (or as a subprocess when it could block) and assert the promise."""
    counter = iter(range(10**6))

    def run(case: fc.Case, *, subprocess: bool = False) -> fc.Outcome:
        folder = tmp_path / f"case{next(counter)}"
        if subprocess:
            case.timeout = 120
            outcome = fc.run_subprocess(case, folder, base)
        else:
            outcome = fc.run_in_process(case, folder, base, capsys)
        assert outcome.problems() == [], (case.name, outcome.status, outcome.stderr)
        return outcome

    return run


def _by_name(cases):
    return {c.name: c for c in cases}


OUTPUTS = _by_name(fc.output_cases({fc.EXAMPLES: b"[]"}))
OPTIONS = _by_name(fc.option_cases())
BLOCKING = ("fifo", "/dev/zero", "full disk")


@pytest.mark.parametrize("name", sorted(OUTPUTS))
def test_output_paths(check, name):
    case = OUTPUTS[name]
    check(case, subprocess=any(word in name for word in BLOCKING))


@pytest.mark.parametrize("name", sorted(OPTIONS))
def test_option_values(check, name):
    check(OPTIONS[name])


def test_refusal_is_one_line_naming_the_file(check, base):
    """The frame that lost its second page: refused, naming the file, in one line."""
    [case] = [c for c in fc.tiff_cases(base) if c.name == "tiff/ifd0/next=0"]
    outcome = check(case)
    assert outcome.status == 2 and outcome.stderr.count("\n") == 1
    assert outcome.stderr.startswith("fewseg: error: ") and "bad.ome.tif" in outcome.stderr


@pytest.mark.parametrize("name", ["ome/SizeC=9", "ome/SizeZ=3", "png/bomb warning", "png/bomb error", "png/0x0",
                                  "written/complex", "tiff/header/first=0", "tiff/truncated/1"])
def test_named_frame_cases(check, base, name):
    [case] = [c for c in fc.tiff_cases(base) if c.name == name]
    check(case)


IFD_FIELDS = st.sampled_from([(2, "<H"), (4, "<I"), (8, "<I"), (8, "<H")])


@FIXED
@given(page=st.integers(0, 1), entry=st.integers(0, 30), field=IFD_FIELDS,
       value=st.one_of(st.sampled_from([0, 1, 2, 3, 7, 8, 12, 16, 32, 64, 128, 255, 65535, 2**31, 2**32 - 1]),
                       st.integers(0, 2**32 - 1)))
def test_tiff_ifd_entries(check, base, page, entry, field, value):
    """One field of one IFD entry of the frame set to a value: refused cleanly or read."""
    data = base[fc.FRAME]
    ifd, entries = fc._ifds(data)[page]
    offset, fmt = field
    _, at = entries[entry % len(entries)]
    if fmt == "<H":
        value %= 65536
    mutated = fc._patch(data, at + offset, fmt, value)
    check(fc.Case("ifd", "tiff", fc.segment(frame="@m.ome.tif"), files={"m.ome.tif": mutated},
                  outputs=fc.SEGMENT_OUTPUTS))


@FIXED
@given(cut=st.integers(1, 70_000))
def test_tiff_truncated(check, base, cut):
    data = base[fc.FRAME]
    expect = fc.REFUSE if cut < len(data) else fc.ACCEPT
    check(fc.Case("truncated", "tiff", fc.segment(frame="@t.ome.tif"), files={"t.ome.tif": data[:cut]}, expect=expect,
                  outputs=fc.SEGMENT_OUTPUTS))


@FIXED
@given(flips=st.lists(st.tuples(st.integers(0, 400), st.integers(0, 255)), min_size=1, max_size=8))
def test_tiff_header_bytes(check, base, flips):
    data = bytearray(base[fc.FRAME])
    for at, value in flips:
        data[at] = value
    check(fc.Case("flipped", "tiff", fc.segment(frame="@f.ome.tif"), files={"f.ome.tif": bytes(data)},
                  outputs=fc.SEGMENT_OUTPUTS))


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)
NIMBUS_PATHS = [(0, "shape"), (0, "tags"), (0, "channel"), (0, "location"), (0, "location", "XY"), (0, "location", "Z"),
                (0, "location", "Time"), (0, "coordinates"), (0, "coordinates", 0), (0, "coordinates", 0, "x"),
                (0, "coordinates", 1, "y"), (0, "extra")]
GEOJSON_PATHS = [("features",), ("features", 0), ("features", 0, "geometry"), ("features", 0, "geometry", "type"),
                 ("features", 0, "geometry", "coordinates"), ("features", 0, "geometry", "coordinates", 0),
                 ("features", 0, "geometry", "coordinates", 0, 0), ("features", 0, "geometry", "coordinates", 0, 0, 1),
                 ("features", 0, "properties"), ("features", 0, "properties", "tags"),
                 ("features", 0, "properties", "classification"), ("features", 0, "properties", "location"),
                 ("features", 0, "properties", "channel")]


def _raw(value) -> str:
    return json.dumps(value)  # NaN / Infinity as Python writes them (JSON has neither)


@FIXED
@given(path=st.sampled_from(NIMBUS_PATHS), value=JSON_VALUES)
def test_nimbus_fields(check, base, path, value):
    """Any JSON value at any field of the first NimbusImage example: refused cleanly, or read."""
    doc = json.loads(base[fc.EXAMPLES])
    expect = fc.EITHER
    if path == (0, "shape") and not isinstance(value, str):
        expect = fc.REFUSE
    check(fc.Case("nimbus", "json", fc.segment(), files={fc.EXAMPLES: fc._with_raw(doc, path, _raw(value))},
                  expect=expect, outputs=fc.SEGMENT_OUTPUTS))


@FIXED
@given(path=st.sampled_from(GEOJSON_PATHS), value=JSON_VALUES)
def test_geojson_fields(check, base, path, value):
    doc = json.loads(base["ex.geojson"])
    expect = fc.EITHER
    if path[-1] == "type" and value not in ("Point", "MultiPoint", "LineString", "MultiLineString", "GeometryCollection",
                                            "Polygon", "MultiPolygon"):
        expect = fc.REFUSE
    check(fc.Case("geojson", "json", fc.segment(examples="@ex.geojson"),
                  files={"ex.geojson": fc._with_raw(doc, path, _raw(value))}, expect=expect, outputs=fc.SEGMENT_OUTPUTS))


@pytest.mark.parametrize("label", ["deep", "5000 digits", "1e400", "-1e400", "NaN", "2^64", "point"])
@pytest.mark.parametrize("field", ["shape", "coordinates[0].x", "channel", "location.Z"])
def test_extreme_json_values(check, base, field, label):
    [case] = [c for c in fc.json_cases(base) if c.name == f"nimbus/{field}={label}"]
    check(case)


@pytest.mark.parametrize("label", ["deep", "5000-digit", "1e400", "utf-16", "NUL", "binary", "truncated 50%"])
def test_broken_documents(check, base, label):
    [case] = [c for c in fc.json_cases(base) if c.name == f"document/{label}"]
    check(case)


@pytest.mark.parametrize("name", ["valid/segment", "valid/label examples", "valid/evaluate"])
def test_valid_inputs_are_accepted(check, base, name):
    [case] = [c for c in fc.valid_cases(base) if c.name == name]
    outcome = check(case)
    assert outcome.status == 0


def test_as_a_subprocess_argparse_error_is_one_line(check):
    outcome = check(fc.Case("argparse", "option", fc.segment("--smoothing", "x"), expect=fc.REFUSE), subprocess=True)
    assert outcome.stderr.count("\n") == 1 and "--smoothing" in outcome.stderr and "usage:" not in outcome.stderr


def test_as_a_subprocess_damaged_tiff_is_one_line(check, base):
    data = base[fc.FRAME]
    ifd, entries = fc._ifds(data)[0]
    cut = fc._patch(data, ifd + 2 + 12 * len(entries), "<I", 0)  # the second page's IFD no longer linked
    outcome = check(fc.Case("lost page", "tiff", fc.segment(frame="@l.ome.tif"), files={"l.ome.tif": cut},
                            expect=fc.REFUSE), subprocess=True)
    assert outcome.stderr.count("\n") == 1 and "l.ome.tif" in outcome.stderr


def test_verbose_shows_the_detail(tmp_path, capsys, base):
    """--verbose adds what the libraries logged and the traceback; the one line still comes last."""
    data = base[fc.FRAME]
    ifd, entries = fc._ifds(data)[0]
    cut = fc._patch(data, ifd + 2 + 12 * len(entries), "<I", 0)
    case = fc.Case("lost page verbose", "tiff", fc.segment("--verbose", frame="@l.ome.tif"), files={"l.ome.tif": cut})
    outcome = fc.run_in_process(case, tmp_path / "v", base, capsys)
    lines = outcome.stderr.splitlines()
    assert outcome.status == 2 and lines[-1].startswith("fewseg: error: ") and "l.ome.tif" in lines[-1]
    assert any(line.startswith("fewseg: note: tifffile") for line in lines), outcome.stderr
    assert "Traceback (most recent call last)" in outcome.stderr


def test_sizes_are_checked_before_reading(check, base):
    """A frame declaring 2^32 - 1 columns is refused before reading (no MemoryError)."""
    data = base[fc.FRAME]
    ifd, entries = fc._ifds(data)[0]
    [(_, at)] = [(tag, at) for tag, at in entries if tag == 256]
    kind = struct.unpack_from("<H", data, at + 2)[0]
    wide = fc._patch(data, at + 8, "<H" if kind == 3 else "<I", 65535 if kind == 3 else 2**32 - 1)
    outcome = check(fc.Case("wide", "tiff", fc.segment(frame="@w.ome.tif"), files={"w.ome.tif": wide},
                            expect=fc.REFUSE))
    assert outcome.status == 2


# --------------------------------------------------------------------------- the readers added since (issue 13, part 3)

ZARR_CASES = ["zarr0.4/valid", "zarr0.5/valid", "zarr0.4/group metadata=truncated", "zarr0.5/group metadata=NaN",
              "zarr0.5/multiscales=[{}]", "zarr0.4/datasets path=nope", "zarr0.5/axes no x", "zarr0.4/axes name=5",
              "zarr0.5/axes twice y", "zarr0.5/array metadata=list", "zarr0.4/array shape=huge",
              "zarr0.5/level 0 missing", "zarr0.4/chunk garbage", "zarr0.5/chunk garbage"]


CLICK_CASES = ["csv/valid", "csv/valid row,col", "csv/header a,b", "csv/x=NaN", "csv/row=NaN", "csv/x=outside",
               "csv/NUL", "csv/field over 128 kB", "points/valid", "points/x=NaN", "points/coordinates=deep",
               "points/MultiPoint of numbers"]


@pytest.fixture(scope="module")
def new_reader_cases(base):
    return _by_name(fc.zarr_cases(base) + fc.click_cases(base))


@pytest.mark.parametrize("name", ZARR_CASES + CLICK_CASES)
def test_newer_readers(check, new_reader_cases, name):
    """A broken OME-Zarr frame (metadata, arrays, chunks, axes; NGFF 0.4 and 0.5), clicks in a CSV
    table or as GeoJSON Points with bad headers and values: refused in one line naming the file, or read."""
    outcome = check(new_reader_cases[name])
    if not name.endswith("valid") and "valid " not in name:
        assert outcome.status == 2
        assert any(f in outcome.stderr for f in ("img.zarr", "clicks.csv", "clicks.geojson")), outcome.stderr
