"""The README's picture of the napari plugin at work, after corrections: ``docs/napari.png``.

Opens the demo sample in a real napari window, docks "find objects like these", clicks
Find, then ``--rounds`` rounds of a user's corrections (``--corrections`` false results
rejected through the widget, as many missed objects clicked; chosen as the engine's
correction curve chooses them for the sample's split, as ``benchmarks/napari_loop.py``
does), Find after each, Evaluate, and saves a screenshot of the whole window zoomed on
the rejected results. ``--rounds 0``: the first Find only.
Needs the napari extra and a display; without one, run it under Xvfb:

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python scripts/napari_screenshot.py
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / "docs" / "napari.png"))
    parser.add_argument("--size", default="1500x950", help="window size, WIDTHxHEIGHT")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--corrections", type=int, default=5)
    args = parser.parse_args(argv)

    import imageio.v3 as iio
    import napari
    from qtpy.QtWidgets import QApplication

    from fewseg._atomic import atomic_path

    viewer = napari.Viewer(show=True, title="fewseg in napari")
    width, height = (int(v) for v in args.size.split("x"))
    viewer.window._qt_window.resize(width, height)
    viewer.open_sample("fewseg", "demo")
    _, widget = viewer.window.add_plugin_dock_widget("fewseg", "find objects like these")
    app = QApplication.instance()

    curve = []
    if args.rounds:
        from fewseg.config import SegmentConfig
        from fewseg.demo import make_demo
        from fewseg.evaluate import correction_curve

        frame, blobs = make_demo(seed=0)
        curve = correction_curve(frame, blobs, config=SegmentConfig(), num_train=10, seed=42, rounds=args.rounds,
                                 corrections=args.corrections)
    f1 = []
    for k in range(args.rounds + 1):
        if k:
            widget.loop.correct(rejected=curve[k].metrics["rejected"], clicked=curve[k].metrics["clicked"])
        widget.find_button.native.click()
        while widget.running:
            app.processEvents()
            time.sleep(0.05)
        f1.append(widget._evaluate().f1)  # what the Evaluate button shows
    viewer.layers["evaluation"].visible = False  # the found outlines show; the scores are in the widget
    viewer.layers.selection = {viewer.layers["YFP blob outlines"]}
    # Zoom on a quarter of the frame, around the rejected results, so single outlines are visible.
    camera = viewer.scene.camera if hasattr(viewer, "scene") else viewer.camera  # napari >= 0.9 / older
    rejected = [p for ev in curve[1:] for p in ev.metrics["rejected"]]
    centre = np.median(np.array(rejected), axis=0) if rejected else np.array([256.0, 256.0])
    camera.center = tuple(np.clip(centre, 128, 384))
    camera.zoom = camera.zoom * 2
    for _ in range(20):
        app.processEvents()
        time.sleep(0.05)
    shot = viewer.screenshot(canvas_only=False, flash=False)
    with atomic_path(args.out) as tmp:
        iio.imwrite(tmp, shot[..., :3], extension=".png")
    rounds = " -> ".join(f"{v:.3f}" for v in f1)
    print(f"F1 by round {rounds}; {widget.status.value}; {widget.metrics.value} -> {args.out}")
    viewer.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
