import os
import stat

import pytest

from fewseg._atomic import atomic_open, atomic_path


def test_complete_or_absent(tmp_path):
    target = tmp_path / "out.txt"
    with pytest.raises(RuntimeError):
        with atomic_open(target) as f:
            f.write("half")
            raise RuntimeError("interrupted")
    assert not target.exists() and list(tmp_path.iterdir()) == []
    with atomic_open(target) as f:
        f.write("done")
    assert target.read_text() == "done"


def test_existing_file_survives_a_failed_write(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("user's")
    with pytest.raises(ValueError):
        with atomic_path(target) as tmp:
            tmp.write_text("new")
            raise ValueError
    assert target.read_text() == "user's"


def test_permissions_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        with atomic_open(tmp_path / "shared.txt") as f:
            f.write("x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "shared.txt").stat().st_mode) == 0o644


def test_committed_together_all_or_nothing(tmp_path):
    from fewseg._atomic import committed_together

    (tmp_path / "a.txt").write_text("old a")
    with pytest.raises(RuntimeError):
        with committed_together():
            with atomic_open(tmp_path / "a.txt") as f:
                f.write("new a")
            assert (tmp_path / "a.txt").read_text() == "old a"  # not moved yet
            raise RuntimeError("the second output failed")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"] and (tmp_path / "a.txt").read_text() == "old a"
    with committed_together():
        for name in ("a.txt", "b.txt"):
            with atomic_open(tmp_path / name) as f:
                f.write(f"new {name}")
    assert [(tmp_path / n).read_text() for n in ("a.txt", "b.txt")] == ["new a.txt", "new b.txt"]


def test_write_errors_are_one_input_error(tmp_path):
    from fewseg.errors import InputError

    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match=r"file/out.txt: cannot write the file: a folder in its path is a regular file"):
        with atomic_open(tmp_path / "file" / "out.txt") as f:
            f.write("x")


@pytest.mark.parametrize("make, problem", [
    (lambda d: (d / "out").mkdir() or d / "out", "is a directory"),
    (lambda d: [(d / "f").write_text("x"), d / "f" / "out"][-1], "a folder in the path is a regular file"),
    (lambda d: os.symlink("none/x", d / "l") or d / "l", "is a broken symbolic link"),
    (lambda d: os.symlink("loop", d / "loop") or d / "loop", "symbolic link loop"),
    (lambda d: d / ("x" * 300), "file systems allow at most 255"),
    (lambda d: os.link(d / "in.json", d / "hard.json") or d / "hard.json", "would overwrite an input file"),
    (lambda d: d / "." / "in.json", "would overwrite an input file"),
    (lambda d: d / "other.png", "would overwrite another output"),
])
def test_check_output_path(tmp_path, make, problem):
    from fewseg._atomic import check_output_path
    from fewseg.errors import InputError

    (tmp_path / "in.json").write_text("[]")
    path = make(tmp_path)
    with pytest.raises(InputError, match=problem):
        check_output_path(path, inputs=[tmp_path / "in.json"], others=[tmp_path / "other.png"], option="-o")
    check_output_path(tmp_path / "new" / "ok.json", inputs=[tmp_path / "in.json"], option="-o")
