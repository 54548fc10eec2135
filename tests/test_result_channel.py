"""``fewseg segment`` writing NimbusImage JSON / GeoJSON: the results carry the examples' channel.

NimbusImage draws an annotation on its channel's layer; the demo's examples are on
channel 1 (YFP), so results written on channel 0 would land on the brightfield layer.
"""

from __future__ import annotations

import json

import pytest

from fewseg.cli import main
from fewseg.demo import write_demo


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    paths = write_demo(tmp_path_factory.mktemp("demo"), seed=2, shape=(200, 200), n_blobs=30)
    examples = json.loads(paths["annotations"].read_text())[:10]
    assert {e["channel"] for e in examples} == {1}  # the demo draws its blobs on channel 1
    on_one = paths["annotations"].with_name("examples.json")
    on_one.write_text(json.dumps(examples))
    mixed = paths["annotations"].with_name("mixed.json")
    mixed.write_text(json.dumps([{**e, "channel": 2 if k < 3 else 1} for k, e in enumerate(examples)]))
    return {**paths, "examples": on_one, "mixed": mixed}


@pytest.mark.parametrize("examples, extra, expected", [
    ("examples", [], 1),  # the examples' channel
    ("mixed", [], 1),  # the channel most examples carry
    ("examples", ["--output-channel", "0"], 0),  # or the one asked for
])
def test_results_take_the_examples_channel(demo, tmp_path, capsys, examples, extra, expected):
    out = tmp_path / "found.json"
    code = main(["segment", str(demo["frame"]), "--examples", str(demo[examples]), "-o", str(out), *extra])
    capsys.readouterr()
    assert code == 0
    found = json.loads(out.read_text())
    assert len(found) > 10 and {a["channel"] for a in found} == {expected}
    assert json.loads(out.with_name("found.json.fewseg.json").read_text())["output_channel"] == expected
    geojson = tmp_path / "found.geojson"
    assert main(["segment", str(demo["frame"]), "--examples", str(demo[examples]), "-o", str(geojson), *extra]) == 0
    capsys.readouterr()
    assert {f["properties"]["channel"] for f in json.loads(geojson.read_text())["features"]} == {expected}


def test_a_negative_output_channel_is_one_line(demo, tmp_path, capsys):
    code = main(["segment", str(demo["frame"]), "--examples", str(demo["examples"]), "-o", str(tmp_path / "f.json"),
                 "--output-channel", "-1"])
    err = capsys.readouterr().err
    assert code == 2 and "--output-channel: expected a channel index (0 or more), got -1" in err
    assert not (tmp_path / "f.json").exists()
