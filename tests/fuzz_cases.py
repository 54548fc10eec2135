"""Malformed inputs for the ``fewseg`` command line, and the promise each run must keep.

Shared by ``tests/test_fuzz.py`` (a fixed-seed part that runs in CI) and
``benchmarks/fuzz.py`` (the long run). A :class:`Case` is a command line on a small
demo case (a 96 x 96 two-channel OME-TIFF with 10 blobs, examples and truth as
NimbusImage JSON and GeoJSON) with some of its files replaced or added. :func:`verdict`
checks one run against the promise:

* exit status 2 with at most two lines on stderr and no traceback (a refusal), or exit 0
  (for inputs that are in fact valid) -- never another status, a traceback or a hang;
* no file of the user's changed (hashed before and after; a file the command was asked
  to write may change only when the command succeeds);
* no output left behind by a run that failed;
* an input known to be wrong is refused, an input known to be right is accepted.

Generators: :func:`tiff_cases` (header and IFD entries of the OME-TIFF mutated,
truncations, OME-XML that disagrees with the pixels, odd pixel types), :func:`json_cases`
(every field of both annotation formats with wrong types and extreme values, broken
documents), :func:`output_cases` (output paths that are directories, under files, broken
or looping links, too long, inputs, each other, a full disk), :func:`option_cases`
(option values), :func:`random_tiff_cases` (bytes flipped with a fixed seed),
:func:`hang_cases` (many examples: the fit's cost), :func:`zarr_cases` (OME-Zarr frames with
broken metadata, arrays, chunks and axes), :func:`click_cases` (clicks as CSV tables and
GeoJSON Points with bad headers and values).
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import random
import struct
import zlib
from pathlib import Path
from typing import Callable

import numpy as np

FRAME = "frame.ome.tif"
EXAMPLES = "ex.json"
TRUTH = "truth.json"
NEGATIVES = "neg.json"
SHAPE = (96, 96)
N_BLOBS = 10
N_TRAIN = 5

REFUSE, ACCEPT, EITHER = "refuse", "accept", "either"


@dataclasses.dataclass
class Case:
    """One run of ``fewseg``: ``argv`` with ``@name`` standing for the file ``name`` in the run's folder.

    ``files`` replace or add files (bytes); ``setup(folder)`` makes what bytes cannot (links,
    folders, pipes). ``outputs`` are the files the command is asked to write (they may change
    when it succeeds). ``expect`` is REFUSE, ACCEPT or EITHER. ``fsize`` limits the size of
    any file written (RLIMIT_FSIZE: a full disk).
    """

    name: str
    group: str
    argv: list[str]
    files: dict[str, bytes] = dataclasses.field(default_factory=dict)
    setup: Callable[[Path], None] | None = None
    expect: str = EITHER
    outputs: tuple[str, ...] = ()
    fsize: int | None = None
    timeout: float = 60.0

    def args(self, folder: Path) -> list[str]:
        return [str(folder / a[1:]) if a.startswith("@") else a for a in self.argv]


# --------------------------------------------------------------------------- the demo case


def demo_files() -> dict[str, bytes]:
    """The base files every case starts from: frame, examples and truth in both JSON formats."""
    import tempfile

    from fewseg.io.annotations import write_annotations
    from fewseg.demo import make_demo
    from fewseg.io.frames import write_frame

    frame, truth = make_demo(seed=3, shape=SHAPE, n_blobs=N_BLOBS)
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        write_frame(d / FRAME, frame)
        write_annotations(d / EXAMPLES, truth[:N_TRAIN], shape=SHAPE, tags=["YFP blob"])
        write_annotations(d / TRUTH, truth, shape=SHAPE, tags=["YFP blob"])
        write_annotations(d / "ex.geojson", truth[:N_TRAIN], shape=SHAPE, tags=["YFP blob"])
        write_annotations(d / "labels.tif", truth[:N_TRAIN], shape=SHAPE)
        write_annotations(d / NEGATIVES, truth[N_TRAIN : N_TRAIN + 2], shape=SHAPE, tags=["not"])
        write_annotations(d / "neg.geojson", truth[N_TRAIN : N_TRAIN + 2], shape=SHAPE, tags=["not"])
        write_annotations(d / "neg.tif", truth[N_TRAIN : N_TRAIN + 2], shape=SHAPE)
        return {p.name: p.read_bytes() for p in d.iterdir()}


def segment(*extra: str, frame: str = "@" + FRAME, examples: str = "@" + EXAMPLES, out: str = "@out.geojson",
            overlay: str | None = "@ov.png") -> list[str]:
    argv = ["segment", frame, "--examples", examples, "-o", out]
    if overlay:
        argv += ["--overlay", overlay]
    return argv + list(extra)


def evaluate(*extra: str, frame: str = "@" + FRAME, truth: str = "@" + TRUTH, json_out: str = "@m.json") -> list[str]:
    return ["evaluate", frame, "--truth", truth, "--num-train", str(N_TRAIN), "--json", json_out] + list(extra)


SEGMENT_OUTPUTS = ("out.geojson", "out.geojson.fewseg.json", "ov.png")


# --------------------------------------------------------------------------- running and judging


def snapshot(folder: Path) -> dict[str, tuple]:
    """Every entry under ``folder``: a file's hash, a link's target, a folder."""
    state = {}
    for root, dirs, files in os.walk(folder, followlinks=False):
        for name in dirs + files:
            path = Path(root) / name
            rel = str(path.relative_to(folder))
            if path.is_symlink():
                state[rel] = ("link", os.readlink(path))
            elif path.is_dir():
                state[rel] = ("dir",)
            elif path.is_file():
                state[rel] = ("file", hashlib.sha256(path.read_bytes()).hexdigest())
            else:
                state[rel] = ("other",)
    return state


def prepare(case: Case, folder: Path, base: dict[str, bytes]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in {**base, **case.files}.items():
        if data is None:  # a file the case removes
            continue
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    if case.setup is not None:
        case.setup(folder)


@dataclasses.dataclass
class Outcome:
    case: Case
    status: int | None  # None: killed after the timeout
    stdout: str
    stderr: str
    seconds: float
    before: dict
    after: dict

    def problems(self) -> list[str]:
        return verdict(self)


#: Lines fewseg prints on purpose beside a result or a refusal.
SAID = ("fewseg: note: read ", "fewseg: warning: ")


def verdict(outcome: Outcome) -> list[str]:
    """What in this run broke the promise (empty when it kept it)."""
    case, status, err = outcome.case, outcome.status, outcome.stderr
    problems = []
    if status is None:
        return ["hang"]
    # fewseg's own notes and warnings (how a plain stack was read, an outline repaired) are
    # what it promises to say; anything else on stderr is noise or a refusal's line
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith(SAID)]
    if "Traceback (most recent call last)" in err or status not in (0, 2):
        problems.append("traceback")
    if status == 2 and len(lines) > 2:
        problems.append("refusal over two lines")
    if status == 2 and not any("error:" in line for line in lines):
        problems.append("refusal without a message")
    if status == 0 and lines:
        problems.append("noisy success")
    allowed = set(case.outputs) if status == 0 else set()
    changed = [name for name, state in outcome.before.items()
               if name not in allowed and outcome.after.get(name) != state]
    if changed:
        problems.append("user file changed")
    if status != 0:
        new = [name for name, state in outcome.after.items() if name not in outcome.before and state[0] != "dir"]
        if new:
            problems.append("output left on failure")
    if case.expect == REFUSE and status == 0:
        problems.append("wrongly accepted")
    if case.expect == ACCEPT and status == 2:
        problems.append("wrongly refused")
    return problems


def run_in_process(case: Case, folder: Path, base: dict[str, bytes], capsys) -> Outcome:
    """Run ``fewseg.cli.main`` in this process (pytest's ``capsys`` captures its output)."""
    import time

    from fewseg.cli import main

    prepare(case, folder, base)
    before = snapshot(folder)
    capsys.readouterr()
    t0 = time.perf_counter()
    try:
        status = main(case.args(folder))
    except SystemExit as exc:  # an older fewseg lets argparse exit
        status = exc.code if isinstance(exc.code, int) else 2
    seconds = time.perf_counter() - t0
    captured = capsys.readouterr()
    return Outcome(case, status, captured.out, captured.err, seconds, before, snapshot(folder))


def run_forked(case: Case, folder: Path, base: dict[str, bytes]) -> Outcome:
    """Run ``fewseg.cli.main`` in a forked child (own stdout / stderr, a timeout, limits).

    The child behaves as the ``fewseg`` executable would: an exception escaping ``main``
    prints its traceback and exits 1.
    """
    import resource
    import signal
    import time
    import traceback

    prepare(case, folder, base)
    before = snapshot(folder)
    out_path, err_path = folder.parent / f"{folder.name}.stdout", folder.parent / f"{folder.name}.stderr"
    t0 = time.perf_counter()
    pid = os.fork()
    if pid == 0:  # the child
        status = 1
        try:
            os.chdir(folder)
            for fd, path in ((1, out_path), (2, err_path)):
                handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                os.dup2(handle, fd)
                os.close(handle)
            if case.fsize is not None:
                signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
                resource.setrlimit(resource.RLIMIT_FSIZE, (case.fsize, resource.RLIM_INFINITY))
            import sys

            from fewseg.cli import main

            try:
                status = main(case.args(folder))
            except SystemExit as exc:
                status = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
                if not isinstance(exc.code, (int, type(None))):
                    print(exc.code, file=sys.stderr)
            except BaseException:
                traceback.print_exc()
                status = 1
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(status if isinstance(status, int) else 1)
    status = None
    deadline = t0 + case.timeout
    while True:
        done, code = os.waitpid(pid, os.WNOHANG)
        if done:
            status = os.waitstatus_to_exitcode(code)
            break
        if time.perf_counter() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            break
        time.sleep(0.02)
    seconds = time.perf_counter() - t0
    stdout = out_path.read_text(errors="replace") if out_path.exists() else ""
    stderr = err_path.read_text(errors="replace") if err_path.exists() else ""
    for path in (out_path, err_path):
        path.unlink(missing_ok=True)
    return Outcome(case, status, stdout, stderr, seconds, before, snapshot(folder))


# --------------------------------------------------------------------------- TIFF


def _ifds(data: bytes) -> list[tuple[int, list[tuple[int, int]]]]:
    """``[(ifd offset, [(tag, entry offset), ...]), ...]`` of a little-endian classic TIFF."""
    ifds, offset, seen = [], struct.unpack_from("<I", data, 4)[0], set()
    while offset and offset not in seen and offset + 2 <= len(data):
        seen.add(offset)
        n = struct.unpack_from("<H", data, offset)[0]
        entries = [(struct.unpack_from("<H", data, offset + 2 + 12 * i)[0], offset + 2 + 12 * i) for i in range(n)]
        ifds.append((offset, entries))
        offset = struct.unpack_from("<I", data, offset + 2 + 12 * n)[0]
    return ifds


def _patch(data: bytes, offset: int, fmt: str, value) -> bytes:
    out = bytearray(data)
    struct.pack_into(fmt, out, offset, value)
    return bytes(out)


# Values tried for the value field of each tag (the first two IFDs).
TAG_VALUES = {
    256: ("ImageWidth", (0, 1, 65535, 2**32 - 1)),
    257: ("ImageLength", (0, 1, 65535, 2**32 - 1)),
    258: ("BitsPerSample", (0, 1, 3, 12, 24, 64, 128)),
    259: ("Compression", (0, 2, 5, 7, 8, 32773, 34712, 50000)),
    262: ("Photometric", (2, 3, 4, 99)),
    273: ("StripOffsets", (0, 7, 2**31, 2**32 - 1)),
    277: ("SamplesPerPixel", (0, 2, 3, 100)),
    278: ("RowsPerStrip", (0, 1, 2**32 - 1)),
    279: ("StripByteCounts", (0, 1, 2**31)),
    284: ("PlanarConfiguration", (0, 2, 3)),
    339: ("SampleFormat", (0, 2, 3, 4, 5, 6)),
    270: ("ImageDescription", (0, 2**32 - 1)),
}


def tiff_cases(base: dict[str, bytes]) -> list[Case]:
    """Header and IFD mutations, truncations, OME-XML and pixel-type variants of the frame."""
    data = base[FRAME]
    cases: list[Case] = []

    def add(name, frame_bytes, expect=EITHER, *, suffix=".ome.tif", argv=None):
        fname = "bad" + suffix
        cases.append(Case(f"tiff/{name}", "tiff", argv or segment(frame="@" + fname),
                          files={fname: frame_bytes}, expect=expect, outputs=SEGMENT_OUTPUTS))

    ifds = _ifds(data)
    for page, (ifd, entries) in enumerate(ifds[:2]):
        for tag, entry in entries:
            if tag in TAG_VALUES:
                label, values = TAG_VALUES[tag]
                fmt = "<H" if struct.unpack_from("<H", data, entry + 2)[0] == 3 and tag not in (273, 279, 270) else "<I"
                for value in values:
                    add(f"ifd{page}/{label}={value}", _patch(data, entry + 8, fmt, value))
            for field, offset, fmt, values in (("type", 2, "<H", (0, 13, 99)), ("count", 4, "<I", (0, 2**32 - 1))):
                for value in values:
                    add(f"ifd{page}/tag{tag}.{field}={value}", _patch(data, entry + offset, fmt, value))
        for n in (0, 1, 65535):
            add(f"ifd{page}/entries={n}", _patch(data, ifd, "<H", n))
        next_at = ifd + 2 + 12 * len(entries)
        for label, value in (("0", 0), ("self", ifd), ("first", ifds[0][0]), ("eof", len(data) + 100), ("odd", 3)):
            # a second page lost (next IFD 0) must be refused, not read as a one-channel frame
            expect = REFUSE if page == 0 and label in ("0", "eof", "odd") else EITHER
            add(f"ifd{page}/next={label}", _patch(data, next_at, "<I", value), expect)
    for label, patch in (("byteorder", lambda d: b"XX" + d[2:]), ("bigendian", lambda d: b"MM" + d[2:]),
                         ("magic=43", lambda d: _patch(d, 2, "<H", 43)), ("magic=0", lambda d: _patch(d, 2, "<H", 0)),
                         ("first=0", lambda d: _patch(d, 4, "<I", 0)), ("first=1", lambda d: _patch(d, 4, "<I", 1)),
                         ("first=eof", lambda d: _patch(d, 4, "<I", len(d))),
                         ("first=max", lambda d: _patch(d, 4, "<I", 2**32 - 1))):
        add(f"header/{label}", patch(data), REFUSE)
    # truncations: everything lost after some byte (the second page at least partly lost: refuse)
    second = ifds[1][0] if len(ifds) > 1 else len(data) // 2
    cuts = sorted({1, 4, 7, 8, 12, 100, ifds[0][0] + 20, second - 1, second, second + 10, second + 200,
                   len(data) - 1000, len(data) - 1, *(len(data) * k // 20 for k in range(1, 20))})
    for cut in cuts:
        add(f"truncated/{cut}", data[:cut], REFUSE)
    cases.extend(_ome_cases())
    cases.extend(_written_tiff_cases())
    cases.extend(_png_cases(base))
    return cases


def _demo_pixels() -> tuple[np.ndarray, list[str]]:
    from fewseg.demo import make_demo

    frame, _ = make_demo(seed=3, shape=SHAPE, n_blobs=N_BLOBS)
    return frame.data.astype(np.uint16), list(frame.channel_names)


def _ome_xml(size_c=2, size_z=1, size_t=1, size_x=SHAPE[1], size_y=SHAPE[0], order="XYCZT", kind="uint16",
             channels=2, tiffdata=True) -> str:
    chans = "".join(f'<Channel ID="Channel:0:{i}" Name="c{i}" SamplesPerPixel="1"/>' for i in range(channels))
    td = "<TiffData/>" if tiffdata else ""
    return ('<?xml version="1.0" encoding="UTF-8"?><OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06">'
            f'<Image ID="Image:0"><Pixels ID="Pixels:0" DimensionOrder="{order}" Type="{kind}" SizeX="{size_x}" '
            f'SizeY="{size_y}" SizeC="{size_c}" SizeZ="{size_z}" SizeT="{size_t}">{chans}{td}</Pixels></Image></OME>')


def _tiff_bytes(array, **kwargs) -> bytes:
    import tifffile

    buffer = io.BytesIO()
    tifffile.imwrite(buffer, array, **kwargs)
    return buffer.getvalue()


def _ome_cases() -> list[Case]:
    """OME-XML that says something else than the pages hold."""
    pixels, _ = _demo_pixels()
    variants = [
        ("SizeC=9", _ome_xml(size_c=9), REFUSE),
        ("SizeC=3", _ome_xml(size_c=3), REFUSE),
        ("SizeZ=3", _ome_xml(size_z=3), REFUSE),
        ("SizeT=2", _ome_xml(size_t=2), REFUSE),
        ("SizeC=1", _ome_xml(size_c=1, channels=1), EITHER),
        ("SizeC=0", _ome_xml(size_c=0), EITHER),
        ("SizeX=0", _ome_xml(size_x=0), EITHER),
        ("SizeX=big", _ome_xml(size_x=10**9), EITHER),
        ("SizeY=-1", _ome_xml(size_y=-1), EITHER),
        ("order=bad", _ome_xml(order="XYZZZ"), EITHER),
        ("type=bit", _ome_xml(kind="bit"), EITHER),
        ("type=complex", _ome_xml(kind="complex"), EITHER),
        ("channels=5", _ome_xml(channels=5), EITHER),
        ("no TiffData", _ome_xml(tiffdata=False), EITHER),
        ("malformed", _ome_xml()[:150], EITHER),
        ("not OME", "<?xml version='1.0'?><foo/>", EITHER),
        ("valid", _ome_xml(), ACCEPT),
    ]
    return [Case(f"ome/{name}", "tiff", segment(frame="@bad.ome.tif"), expect=expect, outputs=SEGMENT_OUTPUTS,
                 files={"bad.ome.tif": _tiff_bytes(pixels, description=xml, metadata=None, photometric="minisblack")})
            for name, xml, expect in variants]


def _written_tiff_cases() -> list[Case]:
    """Well-formed TIFFs of unusual kinds, written with tifffile."""
    pixels, _ = _demo_pixels()
    one = pixels[1]
    arrays = [
        ("float nan", np.where(one > 200, np.nan, one).astype(np.float32), {}, REFUSE),
        ("float inf", np.where(one > 200, np.inf, one).astype(np.float32), {}, REFUSE),
        ("one inf pixel", np.where(np.arange(one.size).reshape(one.shape) == 7, np.inf, one).astype(np.float32), {},
         REFUSE),
        ("float64", one.astype(np.float64), {}, ACCEPT),
        ("int8", (one // 256).astype(np.int8), {}, ACCEPT),
        ("bool", one > 200, {}, EITHER),
        ("constant", np.zeros_like(one), {}, EITHER),
        ("complex", one.astype(np.complex64), {}, REFUSE),
        ("1x1", one[:1, :1], {}, REFUSE),  # the examples lie outside a 1 x 1 frame
        ("1 row", one[:1], {}, REFUSE),
        ("rgb", np.stack([one // 256] * 3, -1).astype(np.uint8), {"photometric": "rgb"}, ACCEPT),
        ("ZCYX no --z", np.stack([pixels] * 3), {"metadata": {"axes": "ZCYX"}}, REFUSE),
        ("TZCYX", np.stack([np.stack([pixels] * 2)] * 2), {"metadata": {"axes": "TZCYX"}}, REFUSE),
        ("Q axis 5", np.stack([one] * 5), {"metadata": None}, ACCEPT),
        ("compressed zlib", pixels, {"compression": "zlib"}, ACCEPT),
        ("tiled", np.pad(pixels, ((0, 0), (0, 32), (0, 32))), {"tile": (32, 32)}, ACCEPT),
    ]
    return [Case(f"written/{name}", "tiff", segment(frame="@w.tif"), expect=expect, outputs=SEGMENT_OUTPUTS,
                 files={"w.tif": _tiff_bytes(array, **kwargs)})
            for name, array, kwargs, expect in arrays]


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def _png(width: int, height: int, rows: bytes, *, depth=8, color=0) -> bytes:
    header = struct.pack(">IIBBBBB", width, height, depth, color, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", zlib.compress(rows, 9))
            + _png_chunk(b"IEND", b""))


def _png_cases(base: dict[str, bytes]) -> list[Case]:
    pixels, _ = _demo_pixels()
    gray = (pixels[1] // max(1, int(pixels[1].max()) // 255 + 1)).astype(np.uint8)
    good = _png(SHAPE[1], SHAPE[0], b"".join(b"\x00" + row.tobytes() for row in gray))
    bomb_side = 12_000  # 144 M pixels: above Pillow's warning limit, under its error limit
    bomb = _png(bomb_side, bomb_side, b"")  # declares 144 M pixels, holds none
    big = _png(20_000, 20_000, b"")  # above Pillow's error limit
    return [
        Case("png/valid", "tiff", segment(frame="@f.png"), files={"f.png": good}, expect=ACCEPT, outputs=SEGMENT_OUTPUTS),
        Case("png/truncated", "tiff", segment(frame="@f.png"), files={"f.png": good[: len(good) // 2]}, expect=REFUSE),
        Case("png/0x0", "tiff", segment(frame="@f.png"), files={"f.png": _png(0, 0, b"")}, expect=REFUSE),
        Case("png/bomb warning", "tiff", segment(frame="@f.png"), files={"f.png": bomb}, expect=REFUSE),
        Case("png/bomb error", "tiff", segment(frame="@f.png"), files={"f.png": big}, expect=REFUSE),
        Case("png/bad crc", "tiff", segment(frame="@f.png"), files={"f.png": good[:20] + b"\xff" + good[21:]}, expect=REFUSE),
        Case("png/named .tif", "tiff", segment(frame="@f.tif"), files={"f.tif": good}, expect=EITHER, outputs=SEGMENT_OUTPUTS),
        Case("png/tiff named .png", "tiff", segment(frame="@f.png"), files={"f.png": base[FRAME]}, expect=EITHER,
             outputs=SEGMENT_OUTPUTS),
        Case("jpeg/garbage", "tiff", segment(frame="@f.jpg"), files={"f.jpg": b"\xff\xd8\xff\xe0" + b"\x00" * 50},
             expect=REFUSE),
        Case("frame/text", "tiff", segment(frame="@f.tif"), files={"f.tif": b"hello"}, expect=REFUSE),
    ]


def random_tiff_cases(base: dict[str, bytes], *, n: int, seed: int) -> list[Case]:
    """``n`` copies of the frame with 1 to 8 bytes set at random in its IFDs and header (fixed seed)."""
    data = base[FRAME]
    rng = random.Random(seed)
    hot = [range(0, 8)] + [range(ifd, ifd + 2 + 12 * len(entries) + 4) for ifd, entries in _ifds(data)]
    places = [i for r in hot for i in r]
    cases = []
    for k in range(n):
        out = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            out[rng.choice(places)] = rng.randrange(256)
        cases.append(Case(f"random-tiff/{seed}-{k}", "tiff", segment(frame="@r.ome.tif"), files={"r.ome.tif": bytes(out)},
                          outputs=SEGMENT_OUTPUTS))
    return cases


# --------------------------------------------------------------------------- JSON

# Raw JSON text for values; some (1e400, NaN, a 5000-digit integer) Python's json.dumps cannot write.
VALUES = {
    "null": "null", "true": "true", "zero": "0", "minus one": "-1", "half": "1.5", "2^31": str(2**31),
    "2^64": str(2**64), "1e400": "1e400", "-1e400": "-1e400", "1e308": "1e308", "400 digits": "9" * 400,
    "5000 digits": "9" * 5000, "NaN": "NaN", "Infinity": "Infinity", "empty string": '""', "string": '"abc"',
    "polygon": '"polygon"', "point": '"point"', "empty list": "[]", "list": "[1, 2]", "empty object": "{}",
    "object": '{"a": 1}', "deep": "[" * 5000 + "]" * 5000,
}
_SENTINEL = "__FUZZ_VALUE__"


def _set(doc, path: tuple, value):
    """A copy of ``doc`` with ``path`` set to ``value`` (a key missing from a dict is added)."""
    doc = json.loads(json.dumps(doc))
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return doc


def _with_raw(doc, path: tuple, raw: str) -> bytes:
    return json.dumps(_set(doc, path, _SENTINEL)).replace(json.dumps(_SENTINEL), raw).encode()


def _nimbus_expect(field: str, value: str) -> str:
    """Whether a NimbusImage annotation with ``field`` set to ``value`` (first example) is valid."""
    numeric_ok = value in ("zero", "minus one", "half", "2^31", "2^64", "1e308")
    if field == "shape" and value == "point":
        return REFUSE  # a click with a polygon's many coordinates: "expected one point"
    ok = {
        "shape": ("polygon", "string", "empty string"),
        "tags": ("null", "empty list"),
        "channel": ("null", "zero"),
        "location": ("null", "empty object", "object"),
        "location.XY": ("zero",), "location.Z": ("zero",), "location.Time": ("zero",),
    }
    if field in ok:
        return ACCEPT if value in ok[field] else REFUSE
    if field.endswith((".x", ".y")):
        return EITHER if numeric_ok else REFUSE
    return REFUSE  # coordinates, a point


_GEOJSON_NUMBERS = ("geometry.coordinates[0][0][0]", "geometry.coordinates[0][0][1]")


def _geojson_expect(field: str, value: str) -> str:
    """Whether a GeoJSON Feature with ``field`` set to ``value`` (first example) is valid."""
    if value in ("5000 digits", "deep"):
        return REFUSE
    if field in ("id", "type"):  # any id; the first item's type only decides how a list is read
        return ACCEPT if field == "id" else EITHER
    if field in _GEOJSON_NUMBERS:
        return EITHER if value in ("zero", "minus one", "half", "2^31", "2^64", "1e308") else REFUSE
    ok = {
        "geometry": ("null",),  # a Feature without geometry is skipped
        "properties": ("null", "empty object", "object"),
        "properties.tags": ("null", "empty list"),
        "properties.channel": ("null", "zero"),
        "properties.location": ("null", "empty object", "object"),
    }
    if field == "properties.classification":  # read only when there are no "tags" (there are)
        return EITHER
    return ACCEPT if value in ok.get(field, ()) else REFUSE


def json_cases(base: dict[str, bytes]) -> list[Case]:
    """Every field of both formats set to every value of :data:`VALUES`; broken documents."""
    cases = []
    nimbus = json.loads(base[EXAMPLES])
    fields = {
        "shape": (0, "shape"), "tags": (0, "tags"), "channel": (0, "channel"), "location": (0, "location"),
        "location.XY": (0, "location", "XY"), "location.Z": (0, "location", "Z"),
        "location.Time": (0, "location", "Time"), "coordinates": (0, "coordinates"),
        "coordinates[0]": (0, "coordinates", 0), "coordinates[0].x": (0, "coordinates", 0, "x"),
        "coordinates[0].y": (0, "coordinates", 0, "y"),
    }
    for field, path in fields.items():
        for label, raw in VALUES.items():
            expect = REFUSE if label in ("5000 digits", "deep") else _nimbus_expect(field, label)
            cases.append(Case(f"nimbus/{field}={label}", "json", segment(), files={EXAMPLES: _with_raw(nimbus, path, raw)},
                              expect=expect, outputs=SEGMENT_OUTPUTS))
    geo = json.loads(base["ex.geojson"])
    feature_fields = {
        "type": ("features", 0, "type"), "geometry": ("features", 0, "geometry"),
        "geometry.type": ("features", 0, "geometry", "type"),
        "geometry.coordinates": ("features", 0, "geometry", "coordinates"),
        "geometry.coordinates[0]": ("features", 0, "geometry", "coordinates", 0),
        "geometry.coordinates[0][0]": ("features", 0, "geometry", "coordinates", 0, 0),
        "geometry.coordinates[0][0][0]": ("features", 0, "geometry", "coordinates", 0, 0, 0),
        "geometry.coordinates[0][0][1]": ("features", 0, "geometry", "coordinates", 0, 0, 1),
        "properties": ("features", 0, "properties"), "properties.tags": ("features", 0, "properties", "tags"),
        "properties.channel": ("features", 0, "properties", "channel"),
        "properties.location": ("features", 0, "properties", "location"),
        "properties.classification": ("features", 0, "properties", "classification"), "id": ("features", 0, "id"),
        "features": ("features",),
    }
    for field, path in feature_fields.items():
        for label, raw in VALUES.items():
            expect = _geojson_expect(field, label)
            cases.append(Case(f"geojson/{field}={label}", "json", segment(examples="@ex.geojson"),
                              files={"ex.geojson": _with_raw(geo, path, raw)}, expect=expect, outputs=SEGMENT_OUTPUTS))
    text = base[EXAMPLES]
    documents = {
        "number": b"5", "string": b'"x"', "null": b"null", "empty object": b"{}", "empty list": b"[]",
        "annotations 5": b'{"annotations": 5}', "FeatureCollection no features": b'{"type": "FeatureCollection"}',
        "features null": b'{"type": "FeatureCollection", "features": null}', "deep": b"[" * 5000 + b"]" * 5000,
        "5000-digit": b"9" * 5000, "1e400": b"1e400", "NaN": b"NaN", "utf-16": text.decode().encode("utf-16"),
        "latin-1": "[{\"tags\": [\"é\"]}]".encode("latin-1"), "NUL": text[:50] + b"\x00" + text[51:],
        "trailing garbage": text + b"}}", "whitespace": b"   \n ", "binary": bytes(range(256)),
        "FeatureCollection in list": b"[" + base["ex.geojson"] + b"]",
    }
    for label, data in documents.items():
        cases.append(Case(f"document/{label}", "json", segment(), files={EXAMPLES: data}, expect=REFUSE))
    documents_ok = {"BOM": b"\xef\xbb\xbf" + text, "annotations object": b'{"annotations": ' + text + b"}",
                    "Feature list": json.dumps(geo["features"]).encode(), "pretty": json.dumps(json.loads(text), indent=4).encode()}
    for label, data in documents_ok.items():
        cases.append(Case(f"document/{label}", "json", segment(), files={EXAMPLES: data}, expect=ACCEPT,
                          outputs=SEGMENT_OUTPUTS))
    for k in range(1, 10):
        cut = len(text) * k // 10
        cases.append(Case(f"document/truncated {k}0%", "json", segment(), files={EXAMPLES: text[:cut]}, expect=REFUSE))
    # the truth of evaluate gets a few of the same
    for label in ("deep", "5000-digit", "1e400"):
        cases.append(Case(f"truth/{label}", "json", evaluate(), files={TRUTH: documents[label]}, expect=REFUSE))
    truth = json.loads(base[TRUTH])
    for label in ("1e400", "2^64", "5000 digits", "NaN"):
        cases.append(Case(f"truth/x={label}", "json", evaluate(), files={TRUTH: _with_raw(truth, (3, "coordinates", 0, "x"), VALUES[label])},
                          expect=REFUSE))
    return cases


# --------------------------------------------------------------------------- output paths


def _link(name: str, target: str) -> Callable[[Path], None]:
    return lambda d: os.symlink(target, d / name)


def _hardlink(name: str, target: str) -> Callable[[Path], None]:
    return lambda d: os.link(d / target, d / name)


def _mkdir(name: str) -> Callable[[Path], None]:
    return lambda d: (d / name).mkdir(parents=True)


def _fifo(name: str) -> Callable[[Path], None]:
    return lambda d: os.mkfifo(d / name)


def output_cases(base: dict[str, bytes]) -> list[Case]:
    long_name = "x" * 300 + ".geojson"
    deep = "/".join(["d" * 200] * 25) + "/out.geojson"
    seg = [
        ("-o existing dir", segment(out="@dir.geojson"), _mkdir("dir.geojson"), REFUSE),
        ("-o under a file", segment(out="@" + FRAME + "/x.geojson"), None, REFUSE),
        ("-o dangling link", segment(out="@link.geojson"), _link("link.geojson", "nowhere/none.geojson"), REFUSE),
        ("-o link loop", segment(out="@loop.geojson"), _link("loop.geojson", "loop.geojson"), REFUSE),
        ("-o under a link loop", segment(out="@loopdir/out.geojson"), _link("loopdir", "loopdir"), REFUSE),
        ("-o 300-char name", segment(out="@" + long_name), None, REFUSE),
        ("-o 5000-char path", segment(out="@" + deep), None, REFUSE),
        ("-o the frame", segment(out="@" + FRAME.replace(".ome.tif", ".ome.tif")), None, REFUSE),
        ("-o the examples", segment(out="@" + EXAMPLES), None, REFUSE),
        ("-o hard link to examples", segment(out="@hl.json"), _hardlink("hl.json", EXAMPLES), REFUSE),
        ("-o link to the frame", segment(out="@lf.tif"), _link("lf.tif", FRAME), REFUSE),
        ("-o ./ spelling of examples", segment(out="@./" + EXAMPLES), None, REFUSE),
        ("-o a fifo", segment(out="@fifo.geojson"), _fifo("fifo.geojson"), REFUSE),
        ("-o /dev/null", segment(out="/dev/null"), None, REFUSE),
        ("-o empty", segment(out=""), None, REFUSE),
        ("-o .", segment(out="@."), None, REFUSE),
        ("-o unknown suffix", segment(out="@out.txt"), None, REFUSE),
        ("--overlay the frame", segment(overlay="@" + FRAME), None, REFUSE),
        ("--overlay the examples", segment(overlay="@" + EXAMPLES), None, REFUSE),
        ("--overlay link to frame", segment(overlay="@lf.png"), _link("lf.png", FRAME), REFUSE),
        ("--overlay same as -o", segment(out="@o.png", overlay="@o.png"), None, REFUSE),
        ("--overlay existing dir", segment(overlay="@d.png"), _mkdir("d.png"), REFUSE),
        ("--overlay under a file", segment(overlay="@" + EXAMPLES + "/o.png"), None, REFUSE),
        ("--overlay dangling link", segment(overlay="@l.png"), _link("l.png", "none/x.png"), REFUSE),
        ("--overlay 300-char", segment(overlay="@" + "y" * 300 + ".png"), None, REFUSE),
        ("side file is the examples", segment(examples="@out.geojson.fewseg.json"), None, REFUSE),
        ("frame link loop", segment(frame="@floop.tif"), _link("floop.tif", "floop.tif"), REFUSE),
        ("examples link loop", segment(examples="@eloop.json"), _link("eloop.json", "eloop.json"), REFUSE),
        ("frame is a dir", segment(frame="@fd.tif"), _mkdir("fd.tif"), REFUSE),
        ("frame is a fifo", segment(frame="@ff.tif"), _fifo("ff.tif"), REFUSE),
        ("examples is a fifo", segment(examples="@ef.json"), _fifo("ef.json"), REFUSE),
        ("frame /dev/zero", segment(frame="/dev/zero"), None, REFUSE),
        ("frame missing", segment(frame="@none.tif"), None, REFUSE),
        ("examples missing", segment(examples="@none.json"), None, REFUSE),
        ("frame dangling link", segment(frame="@fl.tif"), _link("fl.tif", "none.tif"), REFUSE),
    ]
    cases = [Case(f"output/segment {name}", "output", argv, setup=setup, expect=expect, outputs=SEGMENT_OUTPUTS)
             for name, argv, setup, expect in seg]
    if base.get(EXAMPLES):
        cases.append(Case("output/examples named like the side file", "output",
                          segment(examples="@out.geojson.fewseg.json"), files={"out.geojson.fewseg.json": base[EXAMPLES]},
                          expect=REFUSE, outputs=SEGMENT_OUTPUTS))
    ev = [
        ("--json the truth", evaluate(json_out="@" + TRUTH), None, REFUSE),
        ("--json the frame", evaluate(json_out="@" + FRAME), None, REFUSE),
        ("--json existing dir", evaluate(json_out="@jd"), _mkdir("jd"), REFUSE),
        ("--json under a file", evaluate(json_out="@" + TRUTH + "/m.json"), None, REFUSE),
        ("--json dangling link", evaluate(json_out="@jl.json"), _link("jl.json", "none/m.json"), REFUSE),
        ("--json link loop", evaluate(json_out="@jloop.json"), _link("jloop.json", "jloop.json"), REFUSE),
        ("--json 300-char", evaluate(json_out="@" + "z" * 300 + ".json"), None, REFUSE),
        ("--overlay the truth", evaluate("--overlay", "@" + TRUTH), None, REFUSE),
        ("--overlay same as --json", evaluate("--overlay", "@m.json"), None, REFUSE),
        ("--overlay under a file", evaluate("--overlay", "@" + FRAME + "/f.png"), None, REFUSE),
    ]
    cases += [Case(f"output/evaluate {name}", "output", argv, setup=setup, expect=expect, outputs=("m.json", "f.png"))
              for name, argv, setup, expect in ev]
    # a full disk: every write beyond 2,000 bytes fails (RLIMIT_FSIZE)
    cases += [
        Case("output/segment full disk", "output", segment(), expect=REFUSE, outputs=SEGMENT_OUTPUTS, fsize=2000),
        Case("output/evaluate full disk", "output", evaluate("--overlay", "@f.png"), expect=REFUSE,
             outputs=("m.json", "f.png"), fsize=2000),
        Case("output/demo full disk", "output", ["demo", "--small", "--out", "@demo"], expect=REFUSE, fsize=2000),
    ]
    # valid: nested new folder, an existing result replaced, links to a plain file, odd names
    cases += [
        Case("valid/-o in new folders", "valid", segment(out="@a/b/c/out.geojson"), expect=ACCEPT,
             outputs=SEGMENT_OUTPUTS + ("a/b/c/out.geojson", "a/b/c/out.geojson.fewseg.json", "a", "a/b", "a/b/c")),
        Case("valid/-o replaces an old result", "valid", segment(), files={"out.geojson": b"old"}, expect=ACCEPT,
             outputs=SEGMENT_OUTPUTS),
        Case("valid/odd names", "valid", segment(out="@ré sult (1).geojson", overlay="@o v.png"), expect=ACCEPT,
             outputs=("ré sult (1).geojson", "ré sult (1).geojson.fewseg.json", "o v.png")),
    ]
    return cases


# --------------------------------------------------------------------------- options


def option_cases() -> list[Case]:
    seg_refuse = [
        ("--smoothing", "nan"), ("--smoothing", "inf"), ("--smoothing", "-inf"), ("--smoothing", "-1"),
        ("--smoothing", "x"), ("--similarity", "nan"), ("--similarity", "inf"), ("--similarity", "-inf"),
        ("--iou", "nan"), ("--iou", "0"), ("--iou", "1.5"), ("--iou", "inf"), ("--min-area", "-1"),
        ("--min-area", "1.5"), ("--max-area", "-5"), ("--max-area", "5"), ("--z", "-1"), ("--z", "1"), ("--z", "abc"),
        ("--z", "1e400"), ("--z", "0"), ("--t", "3"), ("--t", ""), ("--xy", "x"), ("--channels", ""), ("--channels", ","),
        ("--channels", "7"), ("--channels", "-1"), ("--channels", "nope"), ("--tag", ""), ("--tag", "nope"),
        ("--method", "x"), ("--blend", "x"), ("--batch-z", "x"), ("--batch-z", "5-1"), ("--batch-z", "0-9"),
        ("--batch-t", "all,x"), ("--batch-z", "all"), ("--batch-t", "all"), ("--batch-xy", "all"),
        ("--axes", ""), ("--axes", "TYQ"), ("--axes", "TTYX"), ("--axes", "TZ"), ("--axes", "TCYX"), ("--axes", "T,YX"),
        ("--points-per-side", "0"), ("--max-tiles", "0"), ("--decode-window", "-1"),
        ("--target-occupancy", "nan"), ("--pred-iou-thresh", "nan"), ("--stability-score-thresh", "inf"),
        ("--render", "garbage"), ("--render", "gray:p200-p300"), ("--render", ":"), ("--render", "red:5-1"),
        ("--render", "nocolour:p1-p99"), ("--foo", "1"), ("--examples", ""),
    ]
    seg_accept = [
        ("--smoothing", "0"), ("--similarity", "0.5"), ("--iou", "1"), ("--channels", "YFP"),
        ("--channels", "Brightfield,YFP"), ("--channels", "1"), ("--tag", "YFP blob"), ("--batch-z", "0"),
        ("--axes", "CYX"), ("--axes", "cyx"),
("--render", "gray:p1-p99,yellow:p1-p99.8"), ("--blend", "add"), ("--verbose", None),
        ("--output-tag", "found"), ("--keep-examples", None),
    ]
    seg_either = [("--similarity", "1e308"), ("--min-area", str(10**20)), ("--smoothing", "1e308"), ("--xy", "-1"),
                  ("--channels", "0,0"), ("--max-area", "0"), ("--output-tag", "")]
    cases = []
    for expect, items in ((REFUSE, seg_refuse), (ACCEPT, seg_accept), (EITHER, seg_either)):
        for option, value in items:
            extra = [option] if value is None else [option, value]
            cases.append(Case(f"option/segment {option} {value!r}", "option", segment(*extra), expect=expect,
                              outputs=SEGMENT_OUTPUTS))
    ev_refuse = [("--seed", ""), ("--seed", ","), ("--seed", "a"), ("--seed", "1.5"), ("--num-train", "0"),
                 ("--num-train", "-1"), ("--num-train", "1000"), ("--num-train", str(10**30)), ("--iou", "nan")]
    ev_accept = [("--seed", "0,1"), ("--seed", "-1"), ("--seed", "99999999999999999999999"), ("--seed", " 3 , 4 ")]
    for expect, items in ((REFUSE, ev_refuse), (ACCEPT, ev_accept)):
        for option, value in items:
            cases.append(Case(f"option/evaluate {option} {value!r}", "option", evaluate(option, value), expect=expect,
                              outputs=("m.json",)))
    commands = [
        ("no command", [], REFUSE), ("unknown command", ["segmnt"], REFUSE), ("segment no args", ["segment"], REFUSE),
        ("segment no examples", ["segment", "@" + FRAME], REFUSE),
        ("evaluate no truth", ["evaluate", "@" + FRAME], REFUSE),
        ("models no sub-command", ["models"], REFUSE),
        ("models download unknown", ["models", "download", "nope"], REFUSE),
        ("models verify unknown", ["models", "verify", "nope"], REFUSE),
        ("sweep bad --pts", ["sweep", "@" + FRAME, "--truth", "@" + TRUTH, "--models", "sam1_vit_b", "--pts", "x",
                             "--out", "@sw"], REFUSE),
        ("sweep empty --models", ["sweep", "@" + FRAME, "--truth", "@" + TRUTH, "--models", ",", "--out", "@sw"], REFUSE),
        ("sweep --out a dir", ["sweep", "@" + FRAME, "--truth", "@" + TRUTH, "--models", "sam1_vit_b", "--out", "@swd"],
         REFUSE),
        ("sweep --seed ''", ["sweep", "@" + FRAME, "--truth", "@" + TRUTH, "--models", "sam1_vit_b", "--seed", "",
                             "--out", "@sw"], REFUSE),
        ("demo --out a file", ["demo", "--small", "--out", "@" + EXAMPLES], REFUSE),
        ("demo --seed ''", ["demo", "--small", "--seed", "", "--out", "@demo"], REFUSE),
    ]
    negatives = [  # "not these": every format, the tag filter, one line for each bad input
        ("segment --negatives", segment("--negatives", "@" + NEGATIVES), ACCEPT),
        ("segment --negatives --negative-tag", segment("--negatives", "@" + NEGATIVES, "--negative-tag", "not"), ACCEPT),
        ("segment --negatives geojson", segment("--negatives", "@neg.geojson"), ACCEPT),
        ("segment --negatives clicks csv", segment("--negatives", "@neg.csv"), ACCEPT),
        ("segment --negatives label image", segment("--negatives", "@neg.tif"), ACCEPT),
        ("segment --negatives the examples", segment("--negatives", "@" + EXAMPLES), REFUSE),
        ("segment --negative-tag absent", segment("--negatives", "@" + NEGATIVES, "--negative-tag", "nope"), REFUSE),
        ("segment --negative-tag alone", segment("--negative-tag", "not"), REFUSE),
        ("segment --negatives missing", segment("--negatives", "@none.json"), REFUSE),
        ("segment --negatives outside", segment("--negatives", "@far.csv"), REFUSE),
        ("segment --negatives empty", segment("--negatives", "@empty.json"), REFUSE),
        ("segment -o the negatives", segment("--negatives", "@" + NEGATIVES, out="@" + NEGATIVES), REFUSE),
        ("segment --negatives --block", segment("--negatives", "@" + NEGATIVES, "--block", "64", overlay=None), REFUSE),
        ("evaluate --negatives", evaluate("--negatives", "@neg.csv", "--seed", "0"), EITHER),
        ("evaluate --negative-tag absent", evaluate("--negatives", "@" + NEGATIVES, "--negative-tag", "x"), REFUSE),
    ]
    negative_files = {"neg.csv": b"x,y\n2.5,2.5\n", "far.csv": b"x,y\n500,500\n", "empty.json": b"[]"}
    for name, argv, expect in negatives:
        cases.append(Case(f"option/{name}", "option", argv, files=negative_files, expect=expect,
                          outputs=SEGMENT_OUTPUTS if argv[0] == "segment" else ("m.json",)))
    for name, argv, expect in commands:
        setup = _mkdir("swd.md") if name == "sweep --out a dir" else None
        cases.append(Case(f"command/{name}", "option", argv, setup=setup, expect=expect,
                          outputs=("sw.md", "sw.csv")))
    return cases


def checkpoint_cases() -> list[Case]:
    """SAM's --checkpoint that is not a checkpoint (imports torch: slower)."""
    return [
        Case("option/--checkpoint text file", "option", segment("--method", "fast", "--checkpoint", "@" + EXAMPLES),
             expect=REFUSE, outputs=SEGMENT_OUTPUTS),
        Case("option/--checkpoint missing", "option", segment("--method", "seed", "--checkpoint", "@none.pt"),
             expect=REFUSE, outputs=SEGMENT_OUTPUTS),
        Case("option/--checkpoint garbage", "option", segment("--method", "fast", "--checkpoint", "@g.pt"),
             files={"g.pt": b"PK\x03\x04" + bytes(200)}, expect=REFUSE, outputs=SEGMENT_OUTPUTS),
    ]


def valid_cases(base: dict[str, bytes]) -> list[Case]:
    return [
        Case("valid/segment", "valid", segment(), expect=ACCEPT, outputs=SEGMENT_OUTPUTS),
        Case("valid/segment .json", "valid", segment(out="@out.json"), expect=ACCEPT,
             outputs=("out.json", "out.json.fewseg.json", "ov.png")),
        Case("valid/segment .tif", "valid", segment(out="@out.tif"), expect=ACCEPT,
             outputs=("out.tif", "out.tif.fewseg.json", "ov.png")),
        Case("valid/geojson examples", "valid", segment(examples="@ex.geojson"), expect=ACCEPT, outputs=SEGMENT_OUTPUTS),
        Case("valid/label examples", "valid", segment(examples="@labels.tif"), expect=ACCEPT, outputs=SEGMENT_OUTPUTS),
        Case("valid/evaluate", "valid", evaluate("--overlay", "@f.png"), expect=ACCEPT, outputs=("m.json", "f.png")),
    ]


# --------------------------------------------------------------------------- hangs (issue 12 bounds the fit)


def hang_cases() -> list[Case]:
    """Many examples at once: every object of a frame given as an example (the fit's cost)."""
    cases = []
    for n, shape in ((400, (512, 512)), (1024, (1022, 1024))):
        def setup(d: Path, n=n, shape=shape):
            from fewseg.io.annotations import write_annotations
            from fewseg.demo import make_demo
            from fewseg.io.frames import write_frame

            frame, truth = make_demo(seed=5, shape=shape, n_blobs=n)
            write_frame(d / "big.ome.tif", frame)
            write_annotations(d / "all.json", truth, shape=shape, tags=["YFP blob"])

        cases.append(Case(f"hang/{n} examples", "hang", segment(frame="@big.ome.tif", examples="@all.json"),
                          setup=setup, expect=ACCEPT, outputs=SEGMENT_OUTPUTS))
    # Absurd counts (issue 18): over a minute each before; now one line (too many examples) within seconds.
    cases.append(Case("hang/65536 label-image examples", "hang", segment(frame="@big.ome.tif", examples="@labels.tif"),
                      setup=_absurd_labels, expect=REFUSE, outputs=SEGMENT_OUTPUTS))
    cases.append(Case("hang/210000 tiny polygons", "hang", segment(frame="@big.ome.tif", examples="@tiny.geojson"),
                      setup=_absurd_polygons, expect=REFUSE, outputs=SEGMENT_OUTPUTS))
    return cases


def _absurd_frame(d: Path) -> None:
    from fewseg.demo import make_demo
    from fewseg.io.frames import write_frame

    write_frame(d / "big.ome.tif", make_demo(seed=5, shape=(1024, 1024), n_blobs=400)[0])


def _absurd_labels(d: Path) -> None:
    """65,536 labels of 4 x 4 pixels tiling a 1024 x 1024 frame."""
    import tifffile

    _absurd_frame(d)
    rows = np.arange(1024) // 4
    tifffile.imwrite(d / "labels.tif", (rows[:, None] * 256 + rows[None, :] + 1).astype(np.uint32))


def _absurd_polygons(d: Path) -> None:
    """210,000 polygons of 1.5 x 1.5 pixels, every one tagged as the examples are."""
    _absurd_frame(d)
    features = []
    for k in range(210_000):
        r, c = divmod(k, 511)
        x, y = 2 * c + 0.5, 2 * r + 0.5
        ring = [[x, y], [x + 1.5, y], [x + 1.5, y + 1.5], [x, y + 1.5], [x, y]]
        features.append({"type": "Feature", "properties": {"tags": ["YFP blob"]},
                         "geometry": {"type": "Polygon", "coordinates": [ring]}})
    (d / "tiny.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": features}))


# --------------------------------------------------------------------------- OME-Zarr frames


ZARR = "img.zarr"


def zarr_files(version: str) -> dict[str, bytes]:
    """The demo frame as an OME-Zarr image (NGFF ``version`` 0.4 on Zarr v2, 0.5 on v3): ``{path: bytes}``."""
    import tempfile

    from fewseg.io.formats.omezarr import write_image

    pixels, names = _demo_pixels()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / ZARR
        write_image(root, pixels, axes="cyx", channel_names=names, version=version, chunks=(1, 48, 48),
                    scale_factors=(2,))
        return {str(f.relative_to(tmp)): f.read_bytes() for f in sorted(root.rglob("*")) if f.is_file()}


def _json_edit(data: bytes, edit) -> bytes:
    doc = json.loads(data)
    edit(doc)
    return json.dumps(doc).encode()


def zarr_cases(base: dict[str, bytes]) -> list[Case]:
    """OME-Zarr frames with broken group / array metadata, missing arrays and chunks, wrong axes."""
    cases = []
    for version in ("0.4", "0.5"):
        files = zarr_files(version)
        v3 = version == "0.5"
        group = f"{ZARR}/zarr.json" if v3 else f"{ZARR}/.zattrs"
        array = f"{ZARR}/s0/zarr.json" if v3 else f"{ZARR}/s0/.zarray"
        chunks = sorted(n for n in files if n.startswith(f"{ZARR}/s0/") and not n.endswith(("zarr.json", ".zarray", ".zattrs")))

        def ome(doc):  # where the NGFF metadata sits in the group's document
            return doc["attributes"]["ome"] if v3 else doc

        def add(name, changed, expect=REFUSE):
            cases.append(Case(f"zarr{version}/{name}", "zarr", segment(frame="@" + ZARR), files={**files, **changed},
                              expect=expect, outputs=SEGMENT_OUTPUTS))

        add("valid", {}, ACCEPT)
        g, a = files[group], files[array]
        for label, data in (("garbage", b"\x00\xff garbage"), ("truncated", g[: len(g) // 2]), ("empty", b""),
                            ("list", b"[]"), ("deep", b"[" * 5000 + b"]" * 5000), ("NaN", b"NaN"),
                            ("utf-16", g.decode().encode("utf-16"))):
            add(f"group metadata={label}", {group: data}, EITHER if label == "utf-16" else REFUSE)  # JSON may be UTF-16
        edits = {
            "multiscales=5": lambda d: ome(d).__setitem__("multiscales", 5),
            "multiscales=[]": lambda d: ome(d).__setitem__("multiscales", []),
            "multiscales=[{}]": lambda d: ome(d).__setitem__("multiscales", [{}]),
            "multiscales missing": lambda d: ome(d).pop("multiscales"),
            "datasets=[]": lambda d: ome(d)["multiscales"][0].__setitem__("datasets", []),
            "datasets path missing": lambda d: ome(d)["multiscales"][0]["datasets"][0].pop("path"),
            "datasets path=nope": lambda d: ome(d)["multiscales"][0]["datasets"][0].__setitem__("path", "nope"),
            "datasets path=../..": lambda d: ome(d)["multiscales"][0]["datasets"][0].__setitem__("path", "../.."),
            "datasets path=5": lambda d: ome(d)["multiscales"][0]["datasets"][0].__setitem__("path", 5),
            "axes=7": lambda d: ome(d)["multiscales"][0].__setitem__("axes", 7),
            "axes too few": lambda d: ome(d)["multiscales"][0].__setitem__("axes", ome(d)["multiscales"][0]["axes"][1:]),
            "axes no x": lambda d: ome(d)["multiscales"][0]["axes"][-1].__setitem__("name", "q"),
            "axes twice y": lambda d: ome(d)["multiscales"][0]["axes"][-1].__setitem__("name", "y"),
            "axes name=5": lambda d: ome(d)["multiscales"][0]["axes"][0].__setitem__("name", 5),
            "axes type=space for c": lambda d: ome(d)["multiscales"][0]["axes"][0].__setitem__("type", "space"),
            "scale=NaN": lambda d: ome(d)["multiscales"][0]["datasets"][0]["coordinateTransformations"][0].__setitem__(
                "scale", [float("nan")] * 3),
            "transformations=[]": lambda d: ome(d)["multiscales"][0]["datasets"][0].__setitem__(
                "coordinateTransformations", []),
            "omero=5": lambda d: ome(d).__setitem__("omero", 5),
            "omero channels=5": lambda d: ome(d)["omero"].__setitem__("channels", 5),
            "channel label=[]": lambda d: ome(d)["omero"]["channels"][0].__setitem__("label", []),
            "version=9.9": lambda d: ome(d).__setitem__("version", "9.9") if v3 else
            ome(d)["multiscales"][0].__setitem__("version", "9.9"),
        }
        for label, edit in edits.items():
            expect = EITHER if label.startswith(("omero", "channel label", "version", "scale", "transformations",
                                                 "axes type")) else REFUSE
            add(label, {group: _json_edit(g, edit)}, expect)
        for label, data in (("garbage", b"garbage"), ("truncated", a[: len(a) // 2]), ("list", b"[]")):
            add(f"array metadata={label}", {array: data})
        shape_key = "shape"
        for label, value in (("shape=[0,0,0]", [0, 0, 0]), ("shape=[2,96]", [2, 96]), ("shape=huge", [2, 2**40, 2**40]),
                             ("shape=-1", [2, -1, 96]), ("shape=text", "big")):
            add(f"array {label}", {array: _json_edit(a, lambda d, v=value: d.__setitem__(shape_key, v))})
        for label, key, value in (("dtype=unknown", "data_type" if v3 else "dtype", "<x9"),
                                  ("dtype=5", "data_type" if v3 else "dtype", 5),
                                  ("chunks=0", None, 0), ("fill=text", "fill_value", "abc")):
            def edit(d, key=key, value=value):
                if key is None:  # the chunk grid
                    if v3:
                        d["chunk_grid"]["configuration"]["chunk_shape"] = [value] * 3
                    else:
                        d["chunks"] = [value] * 3
                else:
                    d[key] = value
            add(f"array {label}", {array: _json_edit(a, edit)}, EITHER if label == "fill=text" else REFUSE)
        add("array metadata missing", {array: None})
        add("level 0 missing", {n: None for n in files if n.startswith(f"{ZARR}/s0/")})
        add("chunk garbage", {chunks[0]: b"garbage" * 5})
        add("chunk truncated", {chunks[0]: files[chunks[0]][: len(files[chunks[0]]) // 2]})
        add("chunk empty", {chunks[0]: b""})
        add("chunk missing", {chunks[0]: None}, EITHER)  # Zarr: a missing chunk is the fill value
        add("group is a file", {n: None for n in files} | {ZARR: files[group]}, REFUSE)
    return cases


# --------------------------------------------------------------------------- clicks as examples (CSV, GeoJSON points)


def _click_points(base: dict[str, bytes]) -> list[tuple[float, float]]:
    """The centres (x, y, pixel-corner origin) of the demo examples."""
    return [(float(np.mean([c["x"] for c in a["coordinates"]])), float(np.mean([c["y"] for c in a["coordinates"]])))
            for a in json.loads(base[EXAMPLES])]


def click_cases(base: dict[str, bytes]) -> list[Case]:
    """Clicks as examples: CSV tables with bad headers, values and encodings; GeoJSON Points with bad positions."""
    cases = []
    points = _click_points(base)
    rows = [f"{x:.2f},{y:.2f}" for x, y in points]

    def csv_case(name, text, expect=REFUSE):
        data = text if isinstance(text, bytes) else text.encode()
        cases.append(Case(f"csv/{name}", "clicks", segment(examples="@clicks.csv"), files={"clicks.csv": data},
                          expect=expect, outputs=SEGMENT_OUTPUTS))

    csv_case("valid", "x,y\n" + "\n".join(rows) + "\n", ACCEPT)
    csv_case("valid row,col", "row,col\n" + "\n".join(f"{y - 0.5:.2f},{x - 0.5:.2f}" for x, y in points), ACCEPT)
    csv_case("valid extra column", "id,x,y,note\n" + "\n".join(f"{k},{r},n" for k, r in enumerate(rows)), ACCEPT)
    csv_case("valid BOM", b"\xef\xbb\xbf" + ("x,y\n" + "\n".join(rows)).encode(), ACCEPT)
    for label, header in (("none", ""), ("x only", "x"), ("a,b", "a,b"), ("numbers", "1,2"), ("row,x", "row,x"),
                          ("semicolons", "x;y")):
        csv_case(f"header {label}", header + "\n" + "\n".join(rows))
    csv_case("header only", "x,y\n", EITHER)
    for label, value in (("NaN", "nan"), ("inf", "inf"), ("-inf", "-inf"), ("text", "abc"), ("empty", ""),
                         ("1e400", "1e400"), ("5000 digits", "9" * 5000), ("outside", "1000"), ("negative", "-50"),
                         ("0x10", "0x10"), ("comma decimal", '"3,5"')):
        for column in ("x", "y"):
            first = f"{value},{points[0][1]:.2f}" if column == "x" else f"{points[0][0]:.2f},{value}"
            csv_case(f"{column}={label}", "x,y\n" + "\n".join([first] + rows[1:]))
        first_rc = f"{value},{points[0][0]:.2f}"
        csv_case(f"row={label}", "row,col\n" + "\n".join([first_rc] + [f"{y:.2f},{x:.2f}" for x, y in points[1:]]))
    csv_case("short row", "x,y\n" + "\n".join(["5"] + rows[1:]))
    csv_case("NUL", b"x,y\n" + rows[0].encode() + b"\x00\n" + "\n".join(rows[1:]).encode())
    csv_case("field over 128 kB", "x,y\n" + '"' + "1" * 200_000 + '",5\n' + "\n".join(rows))
    csv_case("utf-16", ("x,y\n" + "\n".join(rows)).encode("utf-16"))
    csv_case("binary", bytes(range(256)))
    csv_case("unclosed quote", 'x,y\n"' + "\n".join(rows))

    geo = json.loads(base["ex.geojson"])
    features = [{"type": "Feature", "geometry": {"type": "Point", "coordinates": [x, y]},
                 "properties": {"tags": ["YFP blob"]}} for x, y in points]
    clicks = {"type": "FeatureCollection", "features": features}

    def point_case(name, doc, expect=REFUSE):
        cases.append(Case(f"points/{name}", "clicks", segment(examples="@clicks.geojson"),
                          files={"clicks.geojson": doc if isinstance(doc, bytes) else json.dumps(doc).encode()},
                          expect=expect, outputs=SEGMENT_OUTPUTS))

    point_case("valid", clicks, ACCEPT)
    point_case("valid MultiPoint", {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "MultiPoint", "coordinates": [list(p) for p in points]},
         "properties": {}}]}, ACCEPT)
    for label, raw in VALUES.items():
        expect = EITHER if label in ("half", "zero") else REFUSE  # x = 0: the frame's left edge
        point_case(f"coordinates={label}", _with_raw(clicks, ("features", 0, "geometry", "coordinates"), raw),
                   EITHER if label == "list" else REFUSE)  # [1, 2]: a click inside
        point_case(f"x={label}", _with_raw(clicks, ("features", 0, "geometry", "coordinates", 0), raw), expect)
    point_case("one number", _with_raw(clicks, ("features", 0, "geometry", "coordinates"), "[5]"))
    point_case("three numbers", _with_raw(clicks, ("features", 0, "geometry", "coordinates"), "[5, 5, 5]"), EITHER)
    point_case("nested", _with_raw(clicks, ("features", 0, "geometry", "coordinates"), "[[5, 5]]"))
    point_case("MultiPoint of numbers", {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "MultiPoint", "coordinates": [1, 2]}, "properties": {}}]})
    point_case("MultiPoint empty", {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "MultiPoint", "coordinates": []}, "properties": {}}]})
    point_case("points and polygons", {"type": "FeatureCollection", "features": features + geo["features"]}, EITHER)
    return cases


def all_cases(base: dict[str, bytes], *, n_random: int = 150, seed: int = 0, hangs: bool = True) -> list[Case]:
    cases = (valid_cases(base) + tiff_cases(base) + json_cases(base) + output_cases(base) + option_cases()
             + checkpoint_cases() + random_tiff_cases(base, n=n_random, seed=seed) + zarr_cases(base)
             + click_cases(base))
    return cases + (hang_cases() if hangs else [])


def run_subprocess(case: Case, folder: Path, base: dict[str, bytes]) -> Outcome:
    """Run the ``fewseg`` command in a new Python process, as a user would."""
    import resource
    import signal
    import subprocess
    import sys
    import time

    prepare(case, folder, base)
    before = snapshot(folder)

    def limits():
        if case.fsize is not None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (case.fsize, resource.RLIM_INFINITY))

    t0 = time.perf_counter()
    try:
        done = subprocess.run([sys.executable, "-m", "fewseg.cli", *case.args(folder)], cwd=folder, capture_output=True,
                              text=True, timeout=case.timeout, preexec_fn=limits, stdin=subprocess.DEVNULL)
        status, stdout, stderr = done.returncode, done.stdout, done.stderr
    except subprocess.TimeoutExpired as exc:
        status, stdout, stderr = None, str(exc.stdout or ""), str(exc.stderr or "")
    return Outcome(case, status, stdout, stderr, time.perf_counter() - t0, before, snapshot(folder))
