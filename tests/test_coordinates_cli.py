"""``--coordinates``: the platform's pixel-corner origin by default, the seed's pixel centres on request."""

from __future__ import annotations

import json

import numpy as np

from fewseg.io.annotations import read_annotations, write_annotations
from fewseg.cli import main
from fewseg.demo import write_demo


def test_segment_reads_and_writes_either_convention_with_the_same_result(tmp_path):
    paths = write_demo(tmp_path, seed=5, shape=(128, 160), n_blobs=20)
    examples = read_annotations(paths["annotations"])[:8]
    corner, centre = tmp_path / "corner.json", tmp_path / "centre.json"
    write_annotations(corner, examples, shape=(128, 160))
    write_annotations(centre, examples, shape=(128, 160), coordinates="pixel-centre")
    out_corner, out_centre = tmp_path / "found_corner.json", tmp_path / "found_centre.json"

    assert main(["segment", str(paths["frame"]), "--examples", str(corner), "-o", str(out_corner)]) == 0
    assert main(["segment", str(paths["frame"]), "--examples", str(centre), "-o", str(out_centre),
                 "--coordinates", "pixel-centre"]) == 0

    a, b = json.loads(out_corner.read_text()), json.loads(out_centre.read_text())
    assert len(a) == len(b) > 0
    for p, q in zip(a, b):
        xy_corner = np.array([[v["x"], v["y"]] for v in p["coordinates"]])
        xy_centre = np.array([[v["x"], v["y"]] for v in q["coordinates"]])
        np.testing.assert_allclose(xy_corner, xy_centre + 0.5)
