"""The worker's fields and the choices read from them (no server needed)."""

from __future__ import annotations


import pytest

from fewseg.config import SegmentConfig
from fewseg.errors import InputError
from fewseg.batch import fit_location
from fewseg.nimbus.compute import batch_locations
from fewseg.nimbus.interface import NUMBERS, choices, fields
from fewseg.objects import Location


def test_defaults_are_the_command_lines():
    chosen = choices({"Training tags": ["blob"]})
    assert chosen.config == SegmentConfig()
    assert chosen.training_tags == ("blob",)
    declared = fields(["sam1_vit_b"], default_model="sam1_vit_b")
    for name, (key, default, lo, hi, *_rest) in NUMBERS.items():
        assert declared[name]["default"] == default and declared[name]["min"] == lo and declared[name]["max"] == hi
        assert default == (getattr(SegmentConfig(), key) or 0)


def test_not_these_tags_are_read_and_may_not_be_training_tags():
    chosen = choices({"Training tags": ["blob"], "Not these tags": ["debris", " "]})
    assert chosen.training_tags == ("blob",) and chosen.negative_tags == ("debris",)
    assert choices({"Training tags": ["blob"]}).negative_tags == ()
    with pytest.raises(InputError, match="Not these tags: 'blob' is also a training tag"):
        choices({"Training tags": ["blob"], "Not these tags": "blob"})


def test_values_become_the_config():
    chosen = choices({"Training tags": ["a", " "], "Method": "fast", "Model": "sam2.1_tiny", "Similarity": 0.7,
                      "Minimum area": "12", "Batch Z": "1-3", "Max tiles": 2, "Boundary": "learned"})
    assert chosen.training_tags == ("a",)
    assert (chosen.config.method, chosen.config.model, chosen.config.similarity) == ("fast", "sam2.1_tiny", 0.7)
    assert chosen.config.min_area == 12 and isinstance(chosen.config.min_area, int) and chosen.config.max_tiles == 2
    assert chosen.batch_z == "1-3" and chosen.config.boundary == "level"  # fast: SAM draws the outlines
    assert choices({"Boundary": "learned"}).config.boundary == "learned"
    declared = fields(["sam1_vit_b"], default_model="sam1_vit_b")
    assert declared["Boundary"]["items"] == ["level", "learned"] and declared["Boundary"]["default"] == "level"
    orders = [f["displayOrder"] for f in declared.values()]
    assert len(set(orders)) == len(orders)  # each field its own place in the form


@pytest.mark.parametrize("values, expected", [
    ({"Method": "magic"}, "Method: expected one of classic, seed, fast"),
    ({"Boundary": "sharp"}, "Boundary: expected one of level, learned"),
    ({"Smoothing": "lots"}, "Smoothing: expected a number"),
    ({"IoU": 2}, "IoU: expected a value in 0.01..1"),
    ({"Training tags": "blob", "Batch XY": ["1"]}, "Batch XY: expected text"),
])
def test_bad_values_name_the_field(values, expected):
    with pytest.raises(InputError, match=expected):
        choices(values)


def test_batch_is_one_based_and_empty_means_the_current_tile():
    sizes = {"XY": 3, "Z": 4, "Time": 2}
    chosen = choices({"Batch XY": "all", "Batch Z": "2, 4", "Batch Time": ""})
    locations = batch_locations(chosen, sizes, Location(xy=1, z=0, time=1))
    assert locations == [Location(xy=xy, z=z, time=1) for z in (1, 3) for xy in (0, 1, 2)]
    with pytest.raises(InputError, match="Batch Z: range '0-1' is outside 1-4"):
        batch_locations(choices({"Batch Z": "0-1"}), sizes, Location())


def test_fit_location_has_the_most_examples_and_the_tile_wins_a_tie():
    a, b, c = Location(z=0), Location(z=1), Location(z=2)
    assert fit_location({a: [0] * 3, b: [0] * 5}, current=a) == b
    assert fit_location({a: [0] * 5, b: [0] * 5, c: [0]}, current=b) == b
    assert fit_location({b: [0] * 5, a: [0] * 5}, current=c) == a  # else the first in time, Z, XY order


@pytest.mark.parametrize("name, gpu", [("Dockerfile", "false"), ("Dockerfile.cuda", "true")])
def test_worker_images_carry_the_platforms_labels(name, gpu):
    import re
    from pathlib import Path

    text = (Path(__file__).parents[1] / "docker" / "nimbus" / name).read_text()
    labels = dict(re.findall(r'(\w+)="([^"]*)"', text.split("LABEL", 1)[1].split("ENTRYPOINT")[0]))
    assert {"isUPennContrastWorker", "isAnnotationWorker", "interfaceName", "interfaceCategory", "description",
            "annotationShape", "isGPUWorker", "defaultToolName"} <= set(labels)
    assert labels["annotationShape"] == "polygon" and labels["isGPUWorker"] == gpu
    assert 'ENTRYPOINT ["fewseg-nimbus-worker"]' in text and "pip install --no-cache-dir '.[nimbus,sam]'" in text


def test_evaluate_needs_truth_unless_the_image_is_a_dataset(tmp_path, capsys, monkeypatch):
    from fewseg.cli import main
    from fewseg.demo import write_demo

    paths = write_demo(tmp_path, seed=1, shape=(64, 64), n_blobs=5)
    assert main(["evaluate", str(paths["frame"])]) == 2
    assert "--truth: required" in capsys.readouterr().err
    for name in ("NI_TOKEN", "NI_API_KEY", "NI_API_URL"):
        monkeypatch.delenv(name, raising=False)
    assert main(["evaluate", "nimbus:0123456789abcdef01234567", "--tag", "x"]) == 2
    assert "--api-url: a NimbusImage dataset needs the server's API URL" in capsys.readouterr().err
    assert main(["evaluate", "nimbus:0123456789abcdef01234567", "--api-url", "http://127.0.0.1:9/api/v1"]) == 2
    assert "NI_TOKEN: set NI_TOKEN" in capsys.readouterr().err
    assert main(["segment", "nimbus:0123456789abcdef01234567", "--examples", "e.json"]) == 2
    assert "use the fewseg worker there" in capsys.readouterr().err
