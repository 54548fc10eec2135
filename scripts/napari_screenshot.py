"""The README's picture of the napari plugin at work: ``docs/napari.png``.

Opens the demo sample in a real napari window, docks "find objects like these", clicks
Find, waits for the objects, clicks Evaluate and saves a screenshot of the whole window.
Needs the napari extra and a display; without one, run it under Xvfb:

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python scripts/napari_screenshot.py
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / "docs" / "napari.png"))
    parser.add_argument("--size", default="1500x950", help="window size, WIDTHxHEIGHT")
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

    widget.find_button.native.click()
    while widget.running:
        app.processEvents()
        time.sleep(0.05)
    widget.evaluate_button.native.click()
    viewer.layers["evaluation"].visible = False  # the found outlines show; the scores are in the widget
    viewer.layers.selection = {viewer.layers["YFP blob outlines"]}
    # Zoom to the top-left quarter so single outlines are visible.
    camera = viewer.scene.camera if hasattr(viewer, "scene") else viewer.camera  # napari >= 0.9 / older
    camera.center = (256, 256)
    camera.zoom = camera.zoom * 2
    for _ in range(20):
        app.processEvents()
        time.sleep(0.05)
    shot = viewer.screenshot(canvas_only=False, flash=False)
    with atomic_path(args.out) as tmp:
        iio.imwrite(tmp, shot[..., :3], extension=".png")
    print(f"{widget.status.value}; {widget.metrics.value} -> {args.out}")
    viewer.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
