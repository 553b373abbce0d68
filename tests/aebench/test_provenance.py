"""Provenance records are present and true: the code version (a dirty tree is flagged), the
machine, peak memory and content hashes."""

from __future__ import annotations

import hashlib
import subprocess

import numpy as np

from aebench import provenance as prov


def _git(*args, cwd):
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def test_code_version_names_the_commit_and_flags_a_dirty_tree(tmp_path):
    repo = tmp_path / "checkout"
    (repo / "pkg").mkdir(parents=True)
    (repo / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    (repo / "pkg" / "mod.py").write_text("A = 1\n")
    _git("init", "-q", cwd=repo)
    _git("-c", "user.email=a@b", "-c", "user.name=a", "commit", "-qam", "x", "--allow-empty", cwd=repo)
    _git("add", "-A", cwd=repo)
    _git("-c", "user.email=a@b", "-c", "user.name=a", "commit", "-qm", "files", cwd=repo)
    clean = prov._read_code_version(repo / "pkg")
    assert clean["source"] == "git" and clean["commit"] == _git("rev-parse", "HEAD", cwd=repo)
    assert clean["dirty"] is False and clean["changed"] == 0
    (repo / "pkg" / "mod.py").write_text("A = 2\n")
    dirty = prov._read_code_version(repo / "pkg")
    assert dirty["dirty"] is True and dirty["changed"] == 1 and dirty["commit"] == clean["commit"]


def test_outside_a_checkout_the_installed_version_is_recorded(tmp_path):
    rec = prov._read_code_version(tmp_path)
    assert rec["source"] == "installed" and rec["commit"] is None and rec["aebench"] != "absent"


def test_provenance_fields_are_true():
    import sys

    import torch

    rec = prov.provenance(packages=["lpips", "no-such-package-xyz"])
    assert rec["python"] == sys.version.split()[0]
    assert rec["packages"]["torch"] == torch.__version__.split("+")[0]
    assert rec["packages"]["numpy"] == np.__version__
    assert rec["packages"]["no-such-package-xyz"] == "absent"
    assert rec["machine"]["torch_threads"] == torch.get_num_threads()
    assert rec["machine"]["cores"] >= 1 and rec["machine"]["cpu"]
    assert (rec["machine"]["gpu"] is None) == (not torch.cuda.is_available())


def test_peak_memory_sees_an_allocation_inside_the_span():
    with prov.peak_memory() as before:
        pass
    with prov.peak_memory() as mem:
        block = np.ones(64 * 2**20 // 8)  # 64 MiB, touched
        block += 1
    del block
    assert mem.rss is not None and mem.rss > 0
    if mem.scope == "span" and before.scope == "span":  # the high-water mark was reset: the span's own peak
        assert mem.rss - before.rss > 48 * 2**20


def test_frame_hash_is_of_the_pixels():
    a = np.random.default_rng(0).integers(0, 255, (3, 8, 6, 3), dtype=np.uint8)
    h = hashlib.sha256()
    for img in a:
        h.update(repr(img.shape).encode())
        h.update(img.tobytes())
    assert prov.sha256_frames(a) == h.hexdigest() == prov.sha256_frames(list(a))
    b = a.copy()
    b[1, 2, 3, 0] ^= 1
    assert prov.sha256_frames(b) != prov.sha256_frames(a)
