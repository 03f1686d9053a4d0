"""Pretrained model registry: pooch download from a local HTTP server on 127.0.0.1, sha256
checks, offline cache hits, mirror override, corrupted files, the embedded default."""

import functools
import http.server
import json
import socket
import threading

import pytest

import xgenfill
from xgenfill import zoo
from xgenfill.cli import main
from xgenfill.errors import OfflineError, WeightsError
from xgenfill.hashing import sha256_file

from .conftest import TINY, make_chl


class _Handler(http.server.SimpleHTTPRequestHandler):
    requests: list[str] = []

    def log_message(self, *args):  # keep test output quiet
        pass

    def do_GET(self):  # noqa: N802
        type(self).requests.append(self.path)
        super().do_GET()


@pytest.fixture
def server(tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    _Handler.requests = []
    handler = functools.partial(_Handler, directory=str(served))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{httpd.server_address[1]}/", _Handler.requests
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def registry(server, tmp_path, monkeypatch):
    """A registry with one small model served by the local server; cache in tmp_path."""
    served, url, requests = server
    model = xgenfill.train(make_chl(nt=20), model="vae", max_steps=2, progress=False, **TINY)
    model.save(served / "tiny-v1")
    files = {f: sha256_file(served / f) for f in ("tiny-v1.safetensors", "tiny-v1.json")}
    reg = json.loads((zoo.resources.files("xgenfill") / "registry.json").read_text())
    reg["base_url"] = url
    reg["models"]["tiny-v1"] = {"kind": "vae", "variable": "chl", "files": files,
                                "size": 1000, "embedded": False, "card": {"summary": "test"}}
    monkeypatch.setattr(zoo, "_registry", lambda: reg)
    monkeypatch.setenv("XGENFILL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("XGENFILL_OFFLINE", raising=False)
    monkeypatch.delenv("XGENFILL_BASE_URL", raising=False)
    return reg, served, url, requests


def _block_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("network blocked by the test")

    monkeypatch.setattr(socket.socket, "connect", refuse)


def test_download_hash_check_then_offline_cache_hit(registry, monkeypatch, tmp_path):
    reg, served, url, requests = registry
    model = zoo.load("tiny-v1", progress=False)
    assert sorted(requests) == ["/tiny-v1.json", "/tiny-v1.safetensors"]
    assert (tmp_path / "cache" / "tiny-v1.safetensors").exists()
    assert model.weights_hash == "sha256:" + reg["models"]["tiny-v1"]["files"][
        "tiny-v1.safetensors"]
    _block_network(monkeypatch)
    again = zoo.load("tiny-v1", progress=False)  # cache hit: no network needed
    assert len(requests) == 2
    out = xgenfill.inpaint(make_chl(nt=6), model="tiny-v1")
    assert "sha256:" in out.attrs["history"]
    assert again.weights_hash == model.weights_hash
    row = next(r for r in xgenfill.models() if r["name"] == "tiny-v1")
    assert row["cached"] and row["size_mb"] == 0.0


def test_hash_mismatch_is_refused(registry):
    reg, served, url, requests = registry
    (served / "tiny-v1.safetensors").write_bytes(b"not the registered file")
    with pytest.raises(WeightsError, match="sha256"):
        zoo.load("tiny-v1", progress=False)


def test_offline_with_empty_cache_is_a_clear_error(registry, monkeypatch):
    monkeypatch.setenv("XGENFILL_OFFLINE", "1")
    with pytest.raises(OfflineError) as err:
        zoo.load("tiny-v1", progress=False)
    msg = str(err.value)
    assert "XGENFILL_CACHE_DIR" in msg and "xgenfill models download" in msg
    assert registry[3] == []  # nothing was requested


def test_no_network_is_a_clear_error(registry, monkeypatch):
    _block_network(monkeypatch)
    with pytest.raises(OfflineError, match="could not download"):
        zoo.load("tiny-v1", progress=False)


def test_mirror_override_rewrites_every_url(registry, monkeypatch):
    reg, served, url, requests = registry
    reg["base_url"] = "http://127.0.0.1:9/unreachable/"  # the registry's own host is down
    monkeypatch.setenv("XGENFILL_BASE_URL", url)
    zoo.load("tiny-v1", progress=False)
    assert sorted(requests) == ["/tiny-v1.json", "/tiny-v1.safetensors"]


def test_corrupted_cache_is_downloaded_again_once(registry, tmp_path):
    reg, served, url, requests = registry
    zoo.load("tiny-v1", progress=False)
    cached = tmp_path / "cache" / "tiny-v1.safetensors"
    cached.write_bytes(cached.read_bytes()[:100])  # truncated
    model = zoo.load("tiny-v1", progress=False)
    assert requests.count("/tiny-v1.safetensors") == 2
    assert model.weights_hash.endswith(reg["models"]["tiny-v1"]["files"]["tiny-v1.safetensors"])


def test_cli_models_commands(registry, capsys, tmp_path):
    assert main(["models", "cache-dir"]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "cache")
    assert main(["models", "download", "tiny-v1", "--quiet"]) == 0
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert "tiny-v1" in out and "cached" in out and "embedded" in out
    assert main(["models", "download", "nope"]) == 2


def test_registry_files_are_hashed_and_embedded_files_match():
    reg = json.loads((zoo.resources.files("xgenfill") / "registry.json").read_text())
    for kind in ("diffusion", "vae"):  # every family works offline, with its own weights
        for family in ("chl", "sst"):
            name = reg["embedded_defaults"][kind][family]
            assert reg["models"][name]["embedded"] and reg["models"][name]["variable"] == family
            assert reg["models"][name]["kind"] == kind
    for name, entry in reg["models"].items():
        assert entry["files"] and all(len(h) == 64 for h in entry["files"].values()), name
        card = entry["card"]
        for key in ("variable", "units", "transform", "training_data", "licence",
                    "failure_modes", "training_command"):
            assert card.get(key), (name, key)
        if entry["embedded"]:
            for f, h in entry["files"].items():
                assert sha256_file(zoo._embedded_dir() / f) == h
            assert entry["size"] < 4e6  # a few MB at most


def test_embedded_default_loads_without_cache_or_network(monkeypatch, tmp_path):
    monkeypatch.setenv("XGENFILL_CACHE_DIR", str(tmp_path))
    _block_network(monkeypatch)
    model = zoo.default_model("diffusion", "chl")
    assert model.kind == "diffusion" and model.nfe() <= 20
    sst = zoo.default_model("vae", "sst")  # the embedded SST model, not the chl one
    assert sst.kind == "vae" and sst.meta["variable"] == "sst"
    assert sst.meta["transform"] == "identity"


def test_file_mirror_is_not_reported_as_a_hash_failure(registry, monkeypatch):
    reg, served, url, requests = registry
    monkeypatch.setenv("XGENFILL_BASE_URL", served.as_uri())
    with pytest.raises(OfflineError, match="file:// URLs: copy the files into XGENFILL_CACHE"):
        zoo.load("tiny-v1")
