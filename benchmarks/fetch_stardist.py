"""Fetch stardist's 2-D nuclei image and its label mask (real data, not committed).

`pip download stardist==0.9.2 --no-deps` gives a wheel holding
`stardist/data/images/img2d.tif` (512 x 512 nuclei) and `mask2d.tif` (125 labelled
instances). The two TIFFs are extracted into DEST (default `data/stardist/`) and checked
against pinned sha256 values, so a changed upstream file cannot silently change the
benchmark.

    python benchmarks/fetch_stardist.py [DEST]
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

PACKAGE = "stardist==0.9.2"
FILES = {
    "img2d.tif": "f9ccc1571b92c861ff87e28463068b43f61bd47357ed0503f711e5cd1eb97750",
    "mask2d.tif": "59ad5e820b7982ca9d13e946fa6e7f64e2714899e00a2ae6c69aa79aad53d46f",
}


def _ok(path: Path, sha: str) -> bool:
    return path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest() == sha


def check(data: bytes, sha: str, what: str) -> None:
    """Stop with one line when ``data``'s sha256 is not the pinned ``sha``."""
    actual = hashlib.sha256(data).hexdigest()
    if actual != sha:
        raise SystemExit(f"{what}: sha256 {actual} != pinned {sha}")


def extract(files: dict[str, str], paths: dict[str, Path]) -> None:
    """Download the wheel of :data:`PACKAGE` and write each of ``files`` (name: pinned
    sha256, under `stardist/data/images/`) to ``paths[name]``, stopping with one line
    when a file's sha256 is not the pinned one."""
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", PACKAGE, "--no-deps", "--quiet", "-d", tmp],
            check=True,
        )
        (archive,) = [p for p in Path(tmp).iterdir() if p.suffix in (".whl", ".gz", ".zip")]
        if archive.suffix != ".whl":
            raise SystemExit(f"expected a wheel from pip download, got {archive.name}")
        with zipfile.ZipFile(archive) as zf:
            for name, sha in files.items():
                data = zf.read(f"stardist/data/images/{name}")
                check(data, sha, f"{archive.name}: {name}")
                part = paths[name].with_suffix(".part")
                part.write_bytes(data)
                part.replace(paths[name])


def fetch(dest: Path) -> dict[str, Path]:
    dest.mkdir(parents=True, exist_ok=True)
    paths = {name: dest / name for name in FILES}
    if all(_ok(paths[n], FILES[n]) for n in FILES):
        return paths
    extract(FILES, paths)
    return paths


if __name__ == "__main__":
    dest = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[1] / "data" / "stardist"
    for name, path in fetch(dest).items():
        print(f"{name}: {path}")
