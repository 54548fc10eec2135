"""The package's shape, checked by import-linter (the contracts in ``pyproject.toml``).

Layers from the command line down to the ground words, the ways in (napari, NimbusImage,
dask) independent of each other, no import cycles at any depth, torch only under
``fewseg.sam``. The tests run ``lint-imports`` on the real tree, and on copies of it with
one forbidden import added, to show that each kind of break is reported.
"""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import fewseg

PACKAGE = Path(fewseg.__file__).parent
ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"

pytestmark = pytest.mark.skipif(not LINT_IMPORTS.exists(), reason="import-linter is not installed (test extra)")


def lint(package_root: Path) -> subprocess.CompletedProcess:
    """``lint-imports`` with the project's contracts on the package under ``package_root``."""
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(package_root)}
    return subprocess.run([str(LINT_IMPORTS), "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
                          cwd=package_root, env=env, capture_output=True, text=True, timeout=300)


def test_the_import_contracts_are_kept():
    run = lint(PACKAGE.parent)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "0 broken" in run.stdout and "BROKEN" not in run.stdout


@pytest.fixture(scope="module")
def copy_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("src")


def _with_import(root: Path, module: str, line: str) -> Path:
    """A copy of the package in a fresh folder under ``root`` with ``line`` added to ``module``."""
    dest = root / module.replace("/", "_").replace(".py", "")
    shutil.copytree(PACKAGE, dest / "fewseg", ignore=shutil.ignore_patterns("__pycache__"))
    target = dest / "fewseg" / module
    target.write_text(target.read_text() + f"\n{line}\n")
    return dest


@pytest.mark.parametrize("module, line, contract, shown", [
    # a ground word importing a way in: the layers contract
    ("objects.py", "from .cli import main", "layers", "fewseg.objects is not allowed to import fewseg.cli"),
    # the engine importing the batch loop above it
    ("classic/propose.py", "from ..batch import segment_frames", "layers", "fewseg.classic is not allowed to import fewseg.batch"),
    # one way in importing another: napari and nimbus are independent
    ("napari/widget.py", "from ..nimbus import compute", "layers", "fewseg.napari.widget -> fewseg.nimbus"),
    # a cycle inside one layer (classic.model imports classic.examples)
    ("classic/examples.py", "from .model import WeightFreeSegmenter", "acyclic", "fewseg.classic. It could be made acyclic by removing 1 dependency: - .examples -> .model"),
    # torch outside fewseg.sam
    ("classic/describe.py", "import torch", "torch", "fewseg.classic.describe -> torch"),
])
def test_an_import_against_the_layers_breaks_a_contract(copy_root, module, line, contract, shown):
    run = lint(_with_import(copy_root, module, line))
    assert run.returncode == 1, run.stdout + run.stderr
    names = {"layers": "layers: ways in over the library", "acyclic": "no import cycles",
             "torch": "torch and the SAM packages"}
    report = " ".join(run.stdout.split())  # the report wraps long contract names
    broken = report.partition("Broken contracts")[2]  # an upward import usually closes a cycle too
    assert names[contract] in broken, report
    assert shown in report, report


def test_the_napari_plugin_runs_the_librarys_loop_and_scores():
    # Not a layering rule: the widget composes nothing itself; it calls the batch loop and the scores.
    import grimp

    graph = grimp.build_graph("fewseg")
    assert graph.find_modules_directly_imported_by("fewseg.napari.widget") >= {"fewseg.batch", "fewseg.evaluate"}
