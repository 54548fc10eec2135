"""Checkpoint registry, cache, download and verification (no network: a local HTTP server)."""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from fewseg import cli
from fewseg.sam import registry as weights
from fewseg.errors import FewsegError, InputError, MissingDependencyError
from fewseg.sam.registry import CHECKPOINTS, Checkpoint

OFFICIAL = {
    # name: (family, arch, filename, url, size, sha256)
    "sam1_vit_h": ("sam1", "vit_h", "sam_vit_h_4b8939.pth",
                   "https://dl.fbaipublicfiles.com/segment_anything/sam_vit_h_4b8939.pth", 2_564_550_879,
                   "a7bf3b02f3ebf1267aba913ff637d9a2d5c33d3173bb679e46d9f338c26f262e"),
    "sam1_vit_l": ("sam1", "vit_l", "sam_vit_l_0b3195.pth",
                   "https://dl.fbaipublicfiles.com/segment_anything/sam_vit_l_0b3195.pth", 1_249_524_607,
                   "3adcc4315b642a4d2101128f611684e8734c41232a17c648ed1693702a49a622"),
    "sam1_vit_b": ("sam1", "vit_b", "sam_vit_b_01ec64.pth",
                   "https://dl.fbaipublicfiles.com/segment_anything/sam_vit_b_01ec64.pth", 375_042_383,
                   "ec2df62732614e57411cdcf32a23ffdf28910380d03139ee0f4fcbe91eb8c912"),
    "sam2.1_tiny": ("sam2", "hiera_t", "sam2.1_hiera_tiny.pt",
                    "https://dl.fbaipublicfiles.com/segment_anything_2/092824/sam2.1_hiera_tiny.pt", 156_008_466,
                    "7402e0d864fa82708a20fbd15bc84245c2f26dff0eb43a4b5b93452deb34be69"),
    "sam2.1_small": ("sam2", "hiera_s", "sam2.1_hiera_small.pt",
                     "https://dl.fbaipublicfiles.com/segment_anything_2/092824/sam2.1_hiera_small.pt", 184_416_285,
                     "6d1aa6f30de5c92224f8172114de081d104bbd23dd9dc5c58996f0cad5dc4d38"),
    "sam2.1_base_plus": ("sam2", "hiera_b+", "sam2.1_hiera_base_plus.pt",
                         "https://dl.fbaipublicfiles.com/segment_anything_2/092824/sam2.1_hiera_base_plus.pt",
                         323_606_802, "a2345aede8715ab1d5d31b4a509fb160c5a4af1970f199d9054ccfb746c004c5"),
    "sam2.1_large": ("sam2", "hiera_l", "sam2.1_hiera_large.pt",
                     "https://dl.fbaipublicfiles.com/segment_anything_2/092824/sam2.1_hiera_large.pt", 898_083_611,
                     "2647878d5dfa5098f2f8649825738a9345572bae2d4350a2468587ece47dd318"),
}
SAM2_CONFIGS = {
    "sam2.1_tiny": "configs/sam2.1/sam2.1_hiera_t.yaml",
    "sam2.1_small": "configs/sam2.1/sam2.1_hiera_s.yaml",
    "sam2.1_base_plus": "configs/sam2.1/sam2.1_hiera_b+.yaml",
    "sam2.1_large": "configs/sam2.1/sam2.1_hiera_l.yaml",
}

PAYLOAD = bytes(range(256)) * 1000  # 256 kB of fake "weights"
PAYLOAD_SHA256 = hashlib.sha256(PAYLOAD).hexdigest()


# --------------------------------------------------------------------------------------
# A local HTTP server on 127.0.0.1


class _Handler(http.server.BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}
    requests: list[str] = []

    def do_GET(self):  # noqa: N802 (http.server's naming)
        self.requests.append(self.path)
        if self.path.startswith("/truncated/"):
            data = self.files[self.path[len("/truncated"):]]
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True  # the server "dies" halfway through
            return
        data = self.files.get(self.path)
        if data is None:
            self.send_error(404, "Not Found")
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):  # keep test output quiet
        pass


@pytest.fixture
def server():
    """Serve ``_Handler.files`` on 127.0.0.1; yields the base URL."""
    _Handler.files = {"/fake.bin": PAYLOAD}
    _Handler.requests = []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty cache folder set through FEWSEG_CACHE (and no URL override)."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("FEWSEG_CACHE", str(folder))
    monkeypatch.delenv("FEWSEG_CHECKPOINT_URL_BASE", raising=False)
    return folder


def fake_entry(url: str, *, name="test_fake", size=len(PAYLOAD), sha256=PAYLOAD_SHA256, **kwargs) -> Checkpoint:
    fields = dict(
        name=name, family="sam1", arch="vit_b", filename="fake.bin", url=url, size=size,
        sha256=sha256, config=None, description="a fake checkpoint for tests", source_note="tests",
    )
    fields.update(kwargs)
    return Checkpoint(**fields)


@pytest.fixture
def registered(server, monkeypatch):
    """A test-only entry in the registry, served by the local server."""
    entry = fake_entry(server + "/fake.bin")
    monkeypatch.setitem(CHECKPOINTS, entry.name, entry)
    return entry


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


# --------------------------------------------------------------------------------------
# Registry


def test_registry_has_the_official_checkpoints_with_exact_facts():
    for name, (family, arch, filename, url, size, sha256) in OFFICIAL.items():
        entry = CHECKPOINTS[name]
        assert (entry.name, entry.family, entry.arch, entry.filename, entry.url, entry.size, entry.sha256) == (
            name, family, arch, filename, url, size, sha256,
        )
        assert entry.hash_algorithm == "sha256" and entry.expected_hash == sha256
        assert entry.config == SAM2_CONFIGS.get(name)
        assert entry.state_key is None
        assert "parameters" in entry.description and entry.source_note


def test_registry_micro_sam_entries_are_complete():
    extra = set(CHECKPOINTS) - set(OFFICIAL)
    assert extra <= {"sam1_vit_b_lm", "sam1_vit_l_lm"}
    for name in extra:
        entry = CHECKPOINTS[name]
        assert entry.family == "sam1" and entry.arch == name[5:10]
        assert entry.url.startswith("https://") and entry.hash_algorithm == "xxh128"
        assert len(entry.xxh128) == 32 and entry.sha256 is None
        assert entry.state_key == "model_state" and entry.state_prefix == "sam."
        assert "micro-sam" in entry.source_note
    filenames = [entry.filename for entry in CHECKPOINTS.values()]
    assert len(set(filenames)) == len(filenames)


@pytest.mark.parametrize(
    "change",
    [{"sha256": "ABC"}, {"sha256": None}, {"xxh128": "0" * 32}, {"family": "sam3"}, {"filename": "a/b.pt"}, {"size": 0}],
)
def test_checkpoint_rejects_malformed_entries(change):
    with pytest.raises(ValueError):
        fake_entry("http://127.0.0.1/x", **change)


def test_unknown_name_is_an_input_error_with_a_close_match():
    with pytest.raises(InputError) as info:
        weights.get_checkpoint("sam1_vitb")
    assert info.value.source == "--model"
    assert "did you mean 'sam1_vit_b'" in str(info.value)
    assert "sam2.1_large" in str(info.value)


def test_cache_dir_default_and_override(monkeypatch, tmp_path):
    monkeypatch.delenv("FEWSEG_CACHE", raising=False)
    default = weights.cache_dir()
    assert default.name == "checkpoints" and default.parent.name == "fewseg"
    monkeypatch.setenv("FEWSEG_CACHE", str(tmp_path))
    assert weights.cache_dir() == tmp_path
    assert weights.cache_dir(tmp_path / "x") == tmp_path / "x"
    assert weights.cached_path("sam1_vit_b") == tmp_path / "sam_vit_b_01ec64.pth"


# --------------------------------------------------------------------------------------
# Download


def test_download_puts_a_verified_file_in_place(cache, registered):
    path = weights.download(registered.name, progress=False)
    assert path == cache / "fake.bin"
    assert path.read_bytes() == PAYLOAD
    assert leftovers(cache) == ["fake.bin", "fake.bin.sha256"]
    sidecar = json.loads((cache / "fake.bin.sha256").read_text())
    assert sidecar["hash"] == PAYLOAD_SHA256 and sidecar["size"] == len(PAYLOAD)
    assert weights.cache_status(registered.name) == "verified"

    # Present and verified: no second request, no re-hash.
    assert weights.download(registered.name, progress=True) == path
    assert weights.resolve_checkpoint(registered.name) == path
    assert _Handler.requests == ["/fake.bin"]


def test_download_with_wrong_hash_keeps_nothing(cache, server):
    entry = fake_entry(server + "/fake.bin", sha256="0" * 64)
    with pytest.raises(FewsegError) as info:
        weights.download(entry, progress=False)
    message = str(info.value)
    assert "sha256" in message and PAYLOAD_SHA256 in message and "0" * 64 in message
    assert str(cache) in message and entry.url in message
    assert leftovers(cache) == []


def test_server_dying_mid_transfer_keeps_nothing(cache, server):
    entry = fake_entry(server + "/truncated/fake.bin")
    with pytest.raises(FewsegError, match="stopped after|IncompleteRead|received"):
        weights.download(entry, progress=False)
    assert leftovers(cache) == []


def test_truncated_transfer_without_registry_size_is_caught(cache, server):
    entry = fake_entry(server + "/truncated/fake.bin", size=None)
    with pytest.raises(FewsegError, match="stopped after|IncompleteRead"):
        weights.download(entry, progress=False)
    assert leftovers(cache) == []


def test_http_404_keeps_nothing(cache, server):
    entry = fake_entry(server + "/missing.bin")
    with pytest.raises(FewsegError) as info:
        weights.download(entry, progress=False)
    assert "HTTP 404" in str(info.value)
    assert "fewseg models download test_fake" in str(info.value)
    assert leftovers(cache) == []


def test_unreachable_server_is_a_clear_error(cache):
    with socket.socket() as sock:  # a port on 127.0.0.1 that nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    entry = fake_entry(f"http://127.0.0.1:{port}/fake.bin")
    with pytest.raises(FewsegError, match="could not download") as info:
        weights.download(entry, progress=False)
    assert str(cache) in str(info.value)
    assert leftovers(cache) == []


def test_size_announced_by_server_must_match_the_registry(cache, server):
    entry = fake_entry(server + "/fake.bin", size=len(PAYLOAD) + 1)
    with pytest.raises(FewsegError, match="the server offers"):
        weights.download(entry, progress=False)
    assert leftovers(cache) == []


def test_url_base_override_for_a_mirror(cache, server, monkeypatch):
    monkeypatch.setenv("FEWSEG_CHECKPOINT_URL_BASE", server + "/mirror/")
    assert weights.checkpoint_url("sam1_vit_b") == server + "/mirror/sam_vit_b_01ec64.pth"
    _Handler.files["/mirror/sam_vit_b_01ec64.pth"] = PAYLOAD  # not the real file
    with pytest.raises(FewsegError, match="the server offers 256,000 bytes"):
        weights.download("sam1_vit_b", progress=False)
    assert _Handler.requests == ["/mirror/sam_vit_b_01ec64.pth"]
    assert leftovers(cache) == []


def test_file_url_base_for_a_mirror_on_a_shared_drive(cache, registered, monkeypatch, tmp_path):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "fake.bin").write_bytes(PAYLOAD)
    monkeypatch.setenv("FEWSEG_CHECKPOINT_URL_BASE", mirror.as_uri())
    path = weights.download(registered.name, progress=False)
    assert path.read_bytes() == PAYLOAD and weights.cache_status(registered.name) == "verified"
    assert _Handler.requests == []

    (mirror / "fake.bin").write_bytes(PAYLOAD[:-1])  # another file: refused before copying
    other = tmp_path / "other_cache"
    with pytest.raises(FewsegError, match="the mirror offers 255,999 bytes") as info:
        weights.download(registered.name, progress=False, cache_dir=other)
    assert mirror.as_uri() + "/fake.bin" in str(info.value)
    assert leftovers(other) == []


def test_damaged_cached_file_is_reported_and_replaced_on_download(cache, registered):
    cache.mkdir()
    (cache / "fake.bin").write_bytes(PAYLOAD[:-1] + b"x")
    with pytest.raises(FewsegError, match="damaged") as info:
        weights.resolve_checkpoint(registered.name)
    assert registered.url in str(info.value)
    assert weights.cache_status(registered.name) == "mismatch"
    path = weights.resolve_checkpoint(registered.name, download=True, progress=False)
    assert path.read_bytes() == PAYLOAD
    assert weights.cache_status(registered.name) == "verified"


def test_sidecar_avoids_hashing_again_until_the_file_changes(cache, registered, monkeypatch):
    cache.mkdir()
    path = cache / "fake.bin"
    path.write_bytes(PAYLOAD)  # put there by hand: not yet hashed
    assert weights.cache_status(registered.name) == "unverified"
    calls = []
    real = weights._hash_file
    monkeypatch.setattr(weights, "_hash_file", lambda *a, **k: calls.append(1) or real(*a, **k))
    assert weights.resolve_checkpoint(registered.name) == path
    assert weights.resolve_checkpoint(registered.name) == path
    assert len(calls) == 1
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    assert weights.resolve_checkpoint(registered.name) == path
    assert len(calls) == 2
    assert _Handler.requests == []


# --------------------------------------------------------------------------------------
# Offline guidance and local files


def test_missing_checkpoint_without_download_says_how_to_get_it(cache):
    with pytest.raises(FewsegError) as info:
        weights.resolve_checkpoint("sam1_vit_b")
    message = str(info.value)
    assert "\n" not in message
    assert "sam_vit_b_01ec64.pth" in message
    assert "https://dl.fbaipublicfiles.com/segment_anything/sam_vit_b_01ec64.pth" in message
    assert str(cache) in message
    assert "FEWSEG_CACHE" in message
    assert "fewseg models download sam1_vit_b" in message
    assert leftovers(cache) == []


def test_local_checkpoint_path(tmp_path, cache, registered, monkeypatch):
    with pytest.raises(InputError) as info:
        weights.resolve_checkpoint(registered.name, checkpoint=tmp_path / "nope.pt")
    assert str(tmp_path / "nope.pt") in str(info.value)
    with pytest.raises(InputError, match="expected a checkpoint file"):
        weights.resolve_checkpoint(registered.name, checkpoint=tmp_path)

    # The official file (same size): hash-checked, then remembered.
    official = tmp_path / "copy.bin"
    official.write_bytes(PAYLOAD)
    assert weights.resolve_checkpoint(registered.name, checkpoint=official) == official
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "copy.bin"]  # user folder untouched

    damaged = tmp_path / "damaged.bin"
    damaged.write_bytes(PAYLOAD[:-1] + b"x")
    with pytest.raises(InputError, match="damaged") as info:
        weights.resolve_checkpoint(registered.name, checkpoint=damaged)
    assert info.value.source == str(damaged)

    # A fine-tuned file (other size): accepted as it is, never hashed or downloaded.
    monkeypatch.setattr(weights, "_hash_file", lambda *a, **k: pytest.fail("hashed a user's own file"))
    own = tmp_path / "finetuned.pt"
    own.write_bytes(b"my weights")
    assert weights.resolve_checkpoint(registered.name, checkpoint=str(own), download=True) == own
    assert _Handler.requests == []


# --------------------------------------------------------------------------------------
# Verify


def test_verify_ok_mismatch_missing(cache, registered, monkeypatch, tmp_path):
    assert weights.verify() == []
    [missing] = weights.verify(registered.name)
    assert missing.status == "missing" and not missing.ok and "missing" in missing.describe()

    weights.download(registered.name, progress=False)
    [ok] = weights.verify(registered.name)
    assert ok.ok and ok.actual_hash == PAYLOAD_SHA256 and ok.actual_size == len(PAYLOAD)
    assert [r.name for r in weights.verify()] == [registered.name]

    (cache / "fake.bin").write_bytes(b"rotten")
    [bad] = weights.verify()
    assert bad.status == "mismatch"
    assert bad.expected_hash == PAYLOAD_SHA256 and bad.actual_hash == hashlib.sha256(b"rotten").hexdigest()
    assert bad.expected_size == len(PAYLOAD) and bad.actual_size == 6
    assert "MISMATCH" in bad.describe() and PAYLOAD_SHA256 in bad.describe()

    other = tmp_path / "elsewhere.bin"
    other.write_bytes(PAYLOAD)
    [by_path] = weights.verify(registered.name, path=other)
    assert by_path.ok and by_path.path == other
    with pytest.raises(InputError):
        weights.verify(path=other)


# --------------------------------------------------------------------------------------
# xxh128 (micro-sam's files)


def test_xxh128_entry_downloads_and_verifies(cache, server):
    xxhash = pytest.importorskip("xxhash")
    entry = fake_entry(server + "/fake.bin", sha256=None, xxh128=xxhash.xxh128(PAYLOAD).hexdigest())
    path = weights.download(entry, progress=False)
    assert leftovers(cache) == ["fake.bin", "fake.bin.xxh128"]
    [result] = weights.verify(entry, path=path)
    assert result.ok and result.algorithm == "xxh128"


def test_xxh128_without_xxhash_fails_before_downloading(cache, server, monkeypatch):
    monkeypatch.setitem(sys.modules, "xxhash", None)  # makes `import xxhash` fail
    entry = fake_entry(server + "/fake.bin", sha256=None, xxh128="0" * 32)
    with pytest.raises(MissingDependencyError, match="pip install xxhash"):
        weights.download(entry, progress=False)
    assert _Handler.requests == []
    assert leftovers(cache) == []


# --------------------------------------------------------------------------------------
# CLI


def test_cli_models_list(cache, capsys):
    assert cli.main(["models", "list"]) == 0
    out = capsys.readouterr().out
    for name, (*_, sha256) in OFFICIAL.items():
        assert name in out
        assert sha256[:12] + "…" in out
    for name in CHECKPOINTS:
        assert name in out
    assert "2.56 GB" in out and "375.0 MB" in out and str(cache) in out

    assert cli.main(["models", "list", "--json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in records] == list(CHECKPOINTS)
    assert records[0]["sha256"] == OFFICIAL["sam1_vit_h"][-1]
    assert all(r["cached"] == "missing" for r in records)


def test_cli_download_and_verify_exit_codes(tmp_path, cache, registered, capsys):
    other = tmp_path / "other_cache"
    assert cli.main(["models", "download", registered.name, "--cache-dir", str(other), "--no-progress"]) == 0
    assert f"{registered.name}: ok" in capsys.readouterr().out
    assert (other / "fake.bin").read_bytes() == PAYLOAD
    assert leftovers(cache) == []

    assert cli.main(["models", "download", registered.name, "--cache-dir", str(other)]) == 0
    assert "already in the cache" in capsys.readouterr().out
    assert _Handler.requests == ["/fake.bin"]

    assert cli.main(["models", "verify", "--cache-dir", str(other)]) == 0
    assert f"{registered.name}: ok" in capsys.readouterr().out
    assert cli.main(["models", "verify", "sam1_vit_b", "--cache-dir", str(other)]) == 0
    assert "sam1_vit_b: missing" in capsys.readouterr().out

    (other / "fake.bin").write_bytes(b"rotten")
    assert cli.main(["models", "verify", "--cache-dir", str(other)]) == 1
    assert "MISMATCH" in capsys.readouterr().out
    assert cli.main(["models", "list", "--cache-dir", str(other)]) == 0
    assert "DAMAGED" in capsys.readouterr().out

    assert cli.main(["models", "verify", "sam1_vitb"]) == 2
    assert "did you mean 'sam1_vit_b'" in capsys.readouterr().err


def test_cli_download_failure_is_one_line_and_exit_2(cache, server, monkeypatch, capsys):
    monkeypatch.setitem(CHECKPOINTS, "test_missing", fake_entry(server + "/missing.bin", name="test_missing"))
    assert cli.main(["models", "download", "test_missing", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("fewseg: error:") and "HTTP 404" in err
    assert leftovers(cache) == []


def test_parsing_does_not_import_torch():
    code = (
        "import sys, fewseg.cli as c; p = c.build_parser(); p.parse_args(['models', 'list']); "
        "import fewseg.sam.registry; assert 'torch' not in sys.modules, 'torch imported'"
    )
    src = str(Path(__file__).resolve().parents[1] / "src")
    env = dict(os.environ, PYTHONPATH=src)
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=60)
