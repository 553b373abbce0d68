"""The weights store: missing, verified add, hash mismatch, unsafe pickles, explicit files."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch

from aebench import weights as w
from aebench.eval import evaluate


@pytest.fixture(autouse=True)
def _own_weights_store(empty_store):
    """Every test sees its own empty weights store (``empty_store``, tests/conftest.py)."""
    return empty_store


class NotAWeight:
    """A custom class: unpickling it needs code, so weights_only loading must refuse it."""

    def __init__(self):
        self.x = 1


@pytest.fixture
def fake_entry(tmp_path, monkeypatch):
    """A manifest entry 'tiny' whose official file is a small real state dict."""
    f = tmp_path / "tiny.pth"
    torch.save({"a": torch.arange(3.0)}, f)
    digest = hashlib.sha256(f.read_bytes()).hexdigest()
    m = dict(w.manifest())
    m["tiny"] = {"file": "tiny_official.pth", "sha256": digest, "url": "https://127.0.0.1:9/tiny.pth", "licence": "test", "kind": "torch"}
    monkeypatch.setattr(w, "manifest", lambda: m)
    return f, digest


def test_manifest_is_complete():
    m = json.loads(w.MANIFEST_PATH.read_text())
    assert {"syncnet", "lpips_alexnet", "wav2vec2", "face_alignment_s3fd", "face_alignment_2dfan4"} <= set(m)
    assert m["wav2vec2"]["file"] == "wav2vec2-base-960h"
    assert m["lpips_alexnet"]["sha256"].startswith("7be5be79")  # torchvision names carry the hash prefix
    for e in m.values():
        assert e["url"] and e["licence"] and e["file"]
        assert e["sha256"] is None or len(e["sha256"]) == 64


def test_missing_is_reported_with_fix():
    with pytest.raises(w.WeightsMissing) as exc:
        w.resolve("syncnet")
    assert "aebench weights add syncnet" in exc.value.fix
    rows = {r["name"]: r for r in w.status()}
    assert rows["syncnet"]["present"] is False and "aebench weights add syncnet" in rows["syncnet"]["fix"]
    assert rows["wav2vec2"]["sha256"] == "UNKNOWN"


def test_add_verifies_and_stores(fake_entry, empty_store):
    f, digest = fake_entry
    dst = w.add("tiny", f)
    assert dst == empty_store / "tiny_official.pth" and dst.exists()
    rec = w.resolve("tiny")
    assert rec.official and rec.sha256 == digest and rec.verification == "sha256"
    assert torch.equal(w.load_state_dict(rec.path)["a"], torch.arange(3.0))
    assert {r["name"]: r for r in w.status()}["tiny"]["verified"] == "yes (sha256)"


def test_sha256_mismatch_refused(fake_entry, tmp_path, empty_store):
    other = tmp_path / "other.pth"
    torch.save({"a": torch.zeros(3)}, other)
    with pytest.raises(w.WeightsError, match="does not match"):
        w.add("tiny", other)
    (empty_store / "tiny_official.pth").write_bytes(other.read_bytes())  # a tampered store copy
    with pytest.raises(w.WeightsError, match="does not match"):
        w.resolve("tiny")
    assert {r["name"]: r for r in w.status()}["tiny"]["verified"] == "MISMATCH"


def test_code_running_pickle_refused(tmp_path):
    f = tmp_path / "evil.pth"
    torch.save({"obj": NotAWeight()}, f)
    with pytest.raises(w.WeightsError, match="code-running pickle"):
        w.load_state_dict(f)
    g = tmp_path / "module.pth"
    torch.save(torch.nn.Linear(2, 2), g)  # a whole pickled module, as some syncnet copies are
    with pytest.raises(w.WeightsError, match="state_dict"):
        w.load_state_dict(g)


def test_legacy_format_state_dict_loads(syncnet_file):
    sd = w.load_state_dict(syncnet_file)
    assert "netcnnaud.0.weight" in sd


def test_explicit_file_is_unofficial(syncnet_file):
    rec = w.resolve("syncnet", syncnet_file)
    assert not rec.official and rec.verification == "explicit file"
    assert rec.sha256 == hashlib.sha256(syncnet_file.read_bytes()).hexdigest()


def test_fetch_fails_clearly_offline(fake_entry):
    with pytest.raises(w.WeightsError, match="aebench weights add tiny"):
        w.fetch("tiny", timeout=2)


def test_sync_missing_without_weights():
    frames = np.zeros((8, 32, 32, 3), np.uint8)
    with pytest.warns(UserWarning, match="METRIC MISSING: sync_conf"):
        r = evaluate(frames, audio=np.zeros(8 * 640, np.float32), metrics=["sync_conf", "sync_dist"], progress=False)
    assert set(r.summary) == {"sync_conf", "sync_dist"}
    assert r.summary["sync_conf"] is None and r.summary["sync_dist"] is None
    assert "aebench weights add syncnet" in r.missing["sync_dist"]


def test_every_manifest_url_is_https():
    assert all(e["url"].startswith("https://") for e in w.manifest().values()), {
        n: e["url"] for n, e in w.manifest().items() if not e["url"].startswith("https://")
    }


def test_fetch_refuses_plain_http_and_downgrading_redirects(fake_entry, monkeypatch):
    import urllib.request

    m = dict(w.manifest())
    m["tiny"] = {**m["tiny"], "url": "http://127.0.0.1:9/tiny.pth"}
    monkeypatch.setattr(w, "manifest", lambda: m)
    with pytest.raises(w.WeightsError, match="not https"):
        w.fetch("tiny", timeout=2)
    req = urllib.request.Request("https://example.org/tiny.pth")
    with pytest.raises(w.WeightsError, match="https only"):
        w._NoDowngrade().redirect_request(req, None, 302, "Found", {}, "http://example.org/tiny.pth")
    assert w._NoDowngrade().redirect_request(req, None, 302, "Found", {}, "https://mirror.example.org/t.pth") is not None


def test_fetch_refuses_a_file_without_a_known_hash_unless_allowed():
    assert not w.verified_by_hash("syncnet_s3fd")
    with pytest.raises(w.WeightsError, match="--allow-unverified"):
        w.fetch("syncnet_s3fd", timeout=2)
    with pytest.raises(w.WeightsError, match="cannot download syncnet_s3fd"):  # allowed: it tries (offline here)
        w.fetch("syncnet_s3fd", timeout=2, allow_unverified=True)


def test_a_file_for_a_network_must_fit_it(tmp_path):
    """Without a known hash, the state dict must be exactly the named network's: a random
    3-tensor dict is not S3FD."""
    f = tmp_path / "sfd_face.pth"
    torch.save({"a": torch.zeros(3), "b": torch.zeros(2), "c": torch.zeros(1)}, f)
    with pytest.raises(w.WeightsError, match="is not a state dict of syncnet_python.detectors.s3fd.nets:S3FDNet"):
        w.add("syncnet_s3fd", f)
    assert not w.store_path("syncnet_s3fd").exists()
    from syncnet_python.detectors.s3fd.nets import S3FDNet

    torch.save(S3FDNet(device="cpu").state_dict(), f)
    assert w.add("syncnet_s3fd", f).exists()  # the real architecture (random weights) is accepted
