"""The documentation site builds with ``mkdocs build --strict``: a broken link or anchor, a
page missing from the navigation or an API name that does not resolve fails the suite.

MkDocs runs in a subprocess (its plugins' warnings are not ours to turn into errors), with
the ``mkdocs`` next to this interpreter: the ``docs`` extra, installed by ``scripts/setup``.
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MKDOCS = Path(sys.executable).with_name("mkdocs")

pytestmark = pytest.mark.skipif(not MKDOCS.exists(), reason="needs the docs extra (pip install -e '.[docs]')")


def build(root: Path, site: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "PYTHONWARNINGS": "ignore"}
    return subprocess.run([str(MKDOCS), "build", "--strict", "--site-dir", str(site)], cwd=root, env=env,
                          capture_output=True, text=True, timeout=300)


def copy_docs(dest: Path) -> None:
    """What the build reads: ``mkdocs.yml``, ``docs/`` and ``src/`` (the API reference, the CLI's help)."""
    shutil.copy2(ROOT / "mkdocs.yml", dest / "mkdocs.yml")
    shutil.copytree(ROOT / "docs", dest / "docs")
    shutil.copytree(ROOT / "src", dest / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))


def test_site_builds_strict(tmp_path):
    site = tmp_path / "site"
    done = build(ROOT, site)
    assert done.returncode == 0, done.stdout + done.stderr
    for page in ("index.html", "getting-started/index.html", "cli/index.html", "performance/index.html",
                 "architecture/index.html", "reference/classic-model/index.html", "napari.png"):
        assert (site / page).is_file(), page
    # the API reference is generated from the docstrings, the CLI's options from its --help
    assert 'id="fewseg.classic.model.WeightFreeSegmenter"' in (site / "reference/classic-model/index.html").read_text()
    assert "usage: fewseg segment" in (site / "cli/index.html").read_text()
    # the README's links into the site: each page exists, each anchor is a heading there
    for link in re.findall(r"\]\(docs/([^)]+)\)", (ROOT / "README.md").read_text()):
        name, _, anchor = link.partition("#")
        if not name.endswith(".md"):
            assert (ROOT / "docs" / name).is_file(), link
            continue
        stem = name.removesuffix(".md").removesuffix("index")
        html = (site / stem / "index.html").read_text()
        assert not anchor or f'id="{anchor}"' in html, link


def test_a_broken_link_fails_the_strict_build(tmp_path):
    root = tmp_path / "copy"
    root.mkdir()
    copy_docs(root)
    page = root / "docs" / "getting-started.md"
    page.write_text(page.read_text() + "\nSee [a page that is not there](no-such-page.md).\n")
    done = build(root, tmp_path / "site")
    assert done.returncode != 0
    assert "no-such-page.md" in done.stdout + done.stderr
