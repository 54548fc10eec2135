"""The fewseg command line: outputs, exit codes and one-line errors."""

import json
from pathlib import Path

import numpy as np
import pytest
import tifffile

from fewseg.cli import main
from fewseg.demo import write_demo


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    paths = write_demo(tmp_path_factory.mktemp("demo"), seed=2, shape=(200, 200), n_blobs=30)
    examples = paths["annotations"].with_name("examples.json")
    examples.write_text(json.dumps(json.loads(paths["annotations"].read_text())[:10]))
    return {**paths, "examples": examples}


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize("suffix", [".geojson", ".json", ".tif"])
def test_segment_writes_each_format(demo, tmp_path, capsys, suffix):
    out = tmp_path / f"found{suffix}"
    code, stdout, _ = run(capsys, "segment", demo["frame"], "--examples", demo["examples"], "--tag", "YFP blob",
                          "-o", out, "--overlay", tmp_path / "o.png")
    assert code == 0 and out.exists() and (tmp_path / "o.png").exists()
    n = int(stdout.split()[0])
    assert 10 <= n <= 30
    if suffix == ".tif":
        assert len(np.unique(tifffile.imread(out))) - 1 == n
    elif suffix == ".json":
        data = json.loads(out.read_text())
        assert len(data) == n and data[0]["tags"] == ["YFP blob"] and data[0]["location"] == {"XY": 0, "Z": 0, "Time": 0}
    else:
        assert len(json.loads(out.read_text())["features"]) == n
    meta = json.loads((tmp_path / f"found{suffix}.fewseg.json").read_text())
    assert meta["n_objects"] == n and meta["config"]["smoothing"] == 0.3


def test_evaluate_writes_metrics_and_figure(demo, tmp_path, capsys):
    code, stdout, _ = run(capsys, "evaluate", demo["frame"], "--truth", demo["annotations"], "--tag", "YFP blob",
                          "--num-train", 10, "--seed", 42, "--json", tmp_path / "m.json", "--overlay", tmp_path / "f.png")
    assert code == 0 and "| classic | 42 | 10 | 20 |" in stdout
    m = json.loads((tmp_path / "m.json").read_text())
    for key in ("precision", "recall", "f1", "mean_iou", "n_train", "n_truth", "n_pred", "n_candidates", "seed", "config"):
        assert key in m
    assert {"propose", "embed", "select", "total"} <= set(m["timings_s"])
    assert m["n_train"] == 10 and m["n_truth"] == 20 and m["config"]["method"] == "classic"
    assert (tmp_path / "f.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_evaluate_several_seeds_prints_mean(demo, capsys):
    code, stdout, _ = run(capsys, "evaluate", demo["frame"], "--truth", demo["annotations"], "--seed", "0,1")
    assert code == 0 and "mean over seeds" in stdout


def test_demo_small(tmp_path, capsys):
    code, stdout, _ = run(capsys, "demo", "--small", "--out", tmp_path)
    assert code == 0 and "F1" in stdout
    assert (tmp_path / "metrics.json").exists() and (tmp_path / "evaluation.png").exists()


@pytest.mark.parametrize(
    "case, pattern",
    [
        ("missing_image", r"nope\.tif: .*"),
        ("corrupt_image", r"bad\.tif: "),
        ("unknown_tag", r"YFP blobz"),
        ("too_few", r"needs at least --num-train \+ 1"),
        ("bad_channel", r"--channels|channel"),
        ("degenerate", r"at least 3 distinct vertices"),
        ("outside", r"outside"),
        ("empty_truth", r"empty\.json: "),
    ],
)
def test_bad_input_is_one_line_exit_2(demo, tmp_path, capsys, case, pattern):
    frame, ann = str(demo["frame"]), str(demo["annotations"])
    args = ["evaluate", frame, "--truth", ann]
    if case == "missing_image":
        args[1] = str(tmp_path / "nope.tif")
    elif case == "corrupt_image":
        bad = tmp_path / "bad.tif"
        bad.write_bytes(b"II*\x00garbage")
        args[1] = str(bad)
    elif case == "unknown_tag":
        args += ["--tag", "YFP blobz"]
    elif case == "too_few":
        args += ["--num-train", "30"]
    elif case == "bad_channel":
        args += ["--channels", "7"]
    elif case in ("degenerate", "outside", "empty_truth"):
        data = json.loads(Path(ann).read_text())
        if case == "degenerate":
            data[3]["coordinates"] = data[3]["coordinates"][:2]
        elif case == "outside":
            data[3]["coordinates"] = [{"x": x + 5000, "y": y} for x, y in ((0, 0), (10, 0), (10, 10))]
        else:
            data = []
        bad = tmp_path / ("empty.json" if case == "empty_truth" else "ann.json")
        bad.write_text(json.dumps(data))
        args[3] = str(bad)
    out = tmp_path / "metrics.json"
    code, _, err = run(capsys, *args, "--json", out)
    assert code == 2
    assert err.startswith("fewseg: error: ") and err.count("\n") == 1, err
    import re

    assert re.search(pattern, err), err
    assert not out.exists()


def test_segment_refuses_to_overwrite_its_input(demo, capsys):
    code, _, err = run(capsys, "segment", demo["frame"], "--examples", demo["annotations"], "-o", demo["annotations"])
    assert code == 2 and "overwrite an input" in err


def test_models_list_does_not_need_torch(capsys):
    code, out, _ = run(capsys, "models", "list")
    assert code == 0 and "sam1_vit_h" in out and "sam2.1_large" in out


def test_import_does_not_load_torch():
    import subprocess
    import sys

    code = "import fewseg, fewseg.classic.model, fewseg.cli, sys; fewseg.cli.build_parser(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


#: What ``fewseg segment`` on one TIFF frame (weight-free method, GeoJSON output) never
#: needs: the other methods, ways in and outputs, and the heavy packages behind them.
#: (numpy, scipy.ndimage, scikit-image's watershed, shapely and tifffile it does need.)
SEGMENT_NEVER_IMPORTS = (
    "torch", "dask", "distributed", "napari", "qtpy", "zarr", "ome_zarr", "bioio", "matplotlib", "PIL", "imageio",
    "tqdm", "asyncio", "pandas", "requests", "girder_client", "scipy.stats", "scipy.optimize", "scipy.signal",
    "scipy.interpolate", "skimage.feature", "skimage.io", "fewseg.render", "fewseg.figure", "fewseg.evaluate",
    "fewseg.demo", "fewseg.sam.registry", "fewseg.sam", "fewseg.nimbus", "fewseg.napari", "fewseg.scale.mosaic",
    "fewseg.classic.blockwise",
    "fewseg.scale.frames", "fewseg.scale.store", "fewseg.io.formats.omezarr",
)


def test_segment_imports_only_what_it_uses(demo, tmp_path):
    """The whole command, in a fresh interpreter: what it leaves in ``sys.modules``."""
    import subprocess
    import sys

    out = tmp_path / "found.geojson"
    code = ("import json, sys; from fewseg.cli import main; "
            f"status = main(['segment', {str(demo['frame'])!r}, '--examples', {str(demo['examples'])!r}, '-o', {str(out)!r}]); "
            "print(json.dumps([status, sorted(sys.modules)]))")
    run_ = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    status, modules = json.loads(run_.stdout.strip().splitlines()[-1])
    assert status == 0 and out.exists()
    assert "fewseg.classic.model" in modules and "tifffile" in modules and "shapely" in modules  # it did segment a TIFF
    loaded = sorted(m for m in modules if m in SEGMENT_NEVER_IMPORTS or m.startswith(tuple(f"{n}." for n in SEGMENT_NEVER_IMPORTS)))
    assert loaded == []


def test_segment_batch_over_z(tmp_path, capsys):
    """Fit on Z=1's examples, segment Z planes 0-2 of a ZCYX OME-TIFF; one output file."""
    from fewseg.demo import make_demo
    from fewseg.io.annotations import write_annotations
    from fewseg.objects import Location

    planes, examples = [], None
    for z in range(3):
        frame, truth = make_demo(seed=10 + z, shape=(160, 160), n_blobs=25)
        planes.append(frame.data)
        if z == 1:
            examples = truth[:10]
    image = tmp_path / "stack.ome.tif"
    tifffile.imwrite(image, np.stack(planes).astype(np.uint16), metadata={"axes": "ZCYX"})
    ex = tmp_path / "ex.json"
    write_annotations(ex, examples, shape=(160, 160), location=Location(z=1))
    out = tmp_path / "found.json"
    code, stdout, _ = run(capsys, "segment", image, "--z", 1, "--examples", ex, "--batch-z", "0-2", "-o", out)
    assert code == 0 and "in 3 frames" in stdout
    zs = {a["location"]["Z"] for a in json.loads(out.read_text())}
    assert zs == {0, 1, 2}
    meta = json.loads((tmp_path / "found.json.fewseg.json").read_text())
    assert [f["z"] for f in meta["frames"]] == [0, 1, 2]


def _stack_with_examples_on(tmp_path, counts: dict) -> tuple[Path, Path, list]:
    """A 3-plane stack of different demo frames and a NimbusImage JSON holding the first
    ``counts[z]`` truth blobs of plane ``z`` placed at Z ``z``."""
    from fewseg.io.annotations import write_annotations
    from fewseg.demo import make_demo
    from fewseg.objects import Location

    planes, truths = [], []
    for z in range(3):
        frame, truth = make_demo(seed=20 + z, shape=(160, 160), n_blobs=25)
        planes.append(frame.data)
        truths.append(truth)
    image = tmp_path / "stack.ome.tif"
    tifffile.imwrite(image, np.stack(planes).astype(np.uint16), metadata={"axes": "ZCYX"})
    items = []
    for z, n in counts.items():
        part = tmp_path / f"z{z}.json"
        write_annotations(part, truths[z][:n], shape=(160, 160), location=Location(z=z))
        items += json.loads(part.read_text())
    ex = tmp_path / "examples.json"
    ex.write_text(json.dumps(items))
    return image, ex, truths


def test_segment_learns_where_the_examples_are_drawn(tmp_path, capsys):
    # No --z: the examples' own locations count. 8 examples on Z 2, 2 on Z 0: learn from both planes.
    image, ex, truths = _stack_with_examples_on(tmp_path, {0: 2, 2: 8})
    out = tmp_path / "found.json"
    code, stdout, err = run(capsys, "segment", image, "--examples", ex, "--batch-z", "all", "-o", out)
    assert code == 0, err
    assert "warning" not in err and "from 10 examples on 2 frames" in stdout
    meta = json.loads((tmp_path / "found.json.fewseg.json").read_text())
    assert meta["fit_location"] == {"XY": 0, "Z": 2, "Time": 0} and meta["n_examples"] == 10
    assert meta["fit_locations"] == [{"XY": 0, "Z": 0, "Time": 0}, {"XY": 0, "Z": 2, "Time": 0}]
    assert meta["n_examples_not_learned_from"] == 0
    found = json.loads(out.read_text())
    assert {a["location"]["Z"] for a in found} == {0, 1, 2}
    # No example is outlined again at its own plane, the 2 on Z 0 included.
    from fewseg.io.annotations import read_annotations
    from fewseg.match import rediscovered
    from fewseg.objects import Location
    for z, n in ((0, 2), (2, 8)):
        masks = [a.to_mask((160, 160)) for a in read_annotations(out, shape=(160, 160), location=Location(z=z))]
        truth = [t.to_mask((160, 160)) for t in truths[z]]
        assert rediscovered(masks, truth[n:], (160, 160)).sum() >= 10  # the others are found there
        assert not rediscovered(masks, truth[:n], (160, 160)).any()
    # Without the locations (the same examples placed on Z 0 by --z 0) the fit is on Z 0.
    code, _, err = run(capsys, "segment", image, "--examples", ex, "--z", 0, "-o", tmp_path / "z0.json")
    assert code == 0 and "warning" not in err
    assert json.loads((tmp_path / "z0.json.fewseg.json").read_text())["n_examples"] == 2


def test_segment_refuses_examples_outside_the_file(tmp_path, capsys):
    image, ex, _ = _stack_with_examples_on(tmp_path, {2: 5})
    items = json.loads(ex.read_text())
    items[0]["location"]["Z"] = 7
    ex.write_text(json.dumps(items))
    code, _, err = run(capsys, "segment", image, "--examples", ex, "-o", tmp_path / "x.json")
    assert code == 2 and err.count("\n") == 1
    assert f"{ex}: location: an example lies at XY 0, Z 7, Time 0 (0-based), outside {image}" in err
    assert not (tmp_path / "x.json").exists()


def test_single_frame_takes_examples_wherever_the_file_places_them(tmp_path, capsys, demo):
    items = json.loads(Path(demo["examples"]).read_text())
    for a in items:
        a["location"] = {"XY": 0, "Z": 4, "Time": 2}
    ex = tmp_path / "elsewhere.json"
    ex.write_text(json.dumps(items))
    code, stdout, err = run(capsys, "segment", demo["frame"], "--examples", ex, "-o", tmp_path / "f.json")
    assert code == 0 and "warning" not in err
    assert json.loads((tmp_path / "f.json.fewseg.json").read_text())["n_examples"] == 10


def test_batch_range_errors(tmp_path, capsys, demo):
    code, _, err = run(capsys, "segment", demo["frame"], "--examples", demo["examples"], "--batch-z", "0-4",
                       "-o", tmp_path / "x.geojson")
    assert code == 2 and f"{demo['frame']}: axes: --batch-z 0-4: the file has no Z planes (read as " in err


# --------------------------------------------------------------------------- plain stacks: --axes, batch ranges


@pytest.fixture(scope="module")
def movie(tmp_path_factory):
    """A time-lapse saved as a plain 3-D TIFF (5 x 120 x 120, no axis names) and 10 examples on its first plane."""
    from fewseg.demo import make_demo
    from fewseg.io.annotations import write_annotations
    from fewseg.objects import Location

    d = tmp_path_factory.mktemp("movie")
    planes, truths = [], []
    for t in range(5):
        frame, truth = make_demo(seed=40 + t, shape=(120, 120), n_blobs=15)
        planes.append(frame.data[frame.channel_names.index("YFP")])
        truths.append(truth)
    tifffile.imwrite(d / "movie.tif", np.stack(planes).astype(np.uint16))
    write_annotations(d / "examples.json", truths[0][:10], shape=(120, 120), location=Location())
    write_annotations(d / "truth1.json", truths[1], shape=(120, 120), location=Location(time=1))
    return d / "movie.tif", d / "examples.json", d / "truth1.json"


NOTE = ("fewseg: note: read movie.tif as ZYX (5 x 120 x 120): 5 Z planes; pass --axes TYX if they are time points, "
        "--axes CYX if channels")


def test_batch_t_on_a_plain_stack_is_one_line_naming_the_file_and_axes(movie, tmp_path, capsys):
    image, ex, _ = movie
    code, stdout, err = run(capsys, "segment", image, "--examples", ex, "--t", 0, "--batch-t", "all",
                            "-o", tmp_path / "f.json")
    assert code == 2 and stdout == ""
    assert err.splitlines() == [NOTE, f"fewseg: error: {image}: axes: --batch-t all: the file has no time points "
                                      "(read as ZYX (5 x 120 x 120)); its 5 planes are Z planes: use --batch-z, or "
                                      "--axes TYX if they are time points"]
    assert not (tmp_path / "f.json").exists()


def test_axes_tyx_segments_every_time_point(movie, tmp_path, capsys):
    image, ex, _ = movie
    out = tmp_path / "f.json"
    code, stdout, err = run(capsys, "segment", image, "--examples", ex, "--axes", "TYX", "--t", 0, "--batch-t", "all",
                            "-o", out)
    assert code == 0 and err == "" and " in 5 frames from 10 examples" in stdout
    record = json.loads(out.with_name("f.json.fewseg.json").read_text())
    assert (record["axes"], record["axes_read"]) == ("TYX", "option") and "axes_note" not in record
    assert [(f["time"], f["z"]) for f in record["frames"]] == [(t, 0) for t in range(5)]
    assert {a["location"]["Time"] for a in json.loads(out.read_text())} == set(range(5))


def test_the_guess_is_said_and_recorded(movie, tmp_path, capsys):
    image, ex, _ = movie
    out = tmp_path / "f.json"
    code, stdout, err = run(capsys, "segment", image, "--examples", ex, "--z", 0, "--batch-z", "1-2", "-o", out)
    assert code == 0 and err.splitlines() == [NOTE]
    record = json.loads(out.with_name("f.json.fewseg.json").read_text())
    assert record["axes"] == "ZYX" and record["axes_read"] == "guess" and record["axes_note"] == NOTE[len("fewseg: note: "):]
    assert [(f["time"], f["z"]) for f in record["frames"]] == [(0, 1), (0, 2)]
    assert {a["location"]["Z"] for a in json.loads(out.read_text())} == {1, 2}


def test_evaluate_reads_the_plane_axes_names(movie, tmp_path, capsys):
    image, _, truth = movie
    code, _, err = run(capsys, "evaluate", image, "--truth", truth, "--t", 1, "--json", tmp_path / "m.json")
    assert code == 2 and err.splitlines() == [NOTE, f"fewseg: error: {image}: Z: the file has 5 Z planes; choose one "
                                                    "with --z (Python: z=) in 0..4"]
    code, _, err = run(capsys, "evaluate", image, "--truth", truth, "--axes", "TYX", "--t", 1, "--json", tmp_path / "m.json")
    assert code == 0 and err == ""
    assert json.loads((tmp_path / "m.json").read_text())["f1"] > 0.5  # plane 1 was read: its own truth matches


def test_small_outline_mistakes_are_repaired_with_one_warning_each(demo, tmp_path, capsys):
    items = json.loads(Path(demo["examples"]).read_text())
    items[3]["coordinates"] = [{"x": x, "y": y} for x, y in ((-0.5, 50), (6, 50), (6, 56), (-0.5, 56))]  # 0.5 px out
    items[5]["coordinates"] = [{"x": x, "y": y} for x, y in
                               ((100, 100), (120, 100), (120, 120), (100, 120), (101, 99), (99, 101))]  # a small loop
    ex = tmp_path / "examples.json"
    ex.write_text(json.dumps(items))
    code, stdout, err = run(capsys, "segment", demo["frame"], "--examples", ex, "-o", tmp_path / "f.json")
    assert code == 0 and "from 10 examples" in stdout
    assert err.splitlines() == [
        f"fewseg: warning: {ex}: annotations[3]: repaired (centre x 3, y 53): reached 0.5 px outside the 200 x 200 "
        "frame: clipped to it",
        f"fewseg: warning: {ex}: annotations[5]: repaired (centre x 110.2, y 110.1): crossed itself: made simple, 100% of "
        "its area kept"]
    items[3]["coordinates"] = [{"x": x, "y": y} for x, y in ((-20, 50), (6, 50), (6, 56), (-20, 56))]  # mostly out
    ex.write_text(json.dumps(items))
    code, _, err = run(capsys, "segment", demo["frame"], "--examples", ex, "-o", tmp_path / "g.json")
    assert code == 2 and err.splitlines()[-1].startswith(
        f"fewseg: error: {ex}: annotations[3]: polygon lies mostly outside the 200 x 200 (rows x cols) frame: vertex at "
        "x -20, y 50")
