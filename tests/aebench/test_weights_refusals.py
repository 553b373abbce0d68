"""Weights that are not what they claim to be are refused with one line (issue 30): a junk folder
as wav2vec2, another network's state dict given with --weights, a store that cannot be written."""

from __future__ import annotations

import errno
import hashlib
import json
import shutil

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from aebench import weights as w
from aebench.harness.cli import main


@pytest.fixture(autouse=True)
def _own_weights_store(empty_store):
    """Every test sees its own empty weights store (``empty_store``, tests/conftest.py)."""
    return empty_store


def _cli(*args: str):
    res = CliRunner().invoke(main, list(args))
    assert "Traceback" not in res.output, res.output
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)  # no stray exception
    return res


def _tiny_wav2vec2_config(**over):
    from transformers import Wav2Vec2Config

    kw = dict(
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=37,
        conv_dim=(8,) * 7,
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
        vocab_size=12,
    )
    return Wav2Vec2Config(**{**kw, **over})


def _tiny_wav2vec2(folder, **over):
    from transformers import Wav2Vec2Model

    torch.manual_seed(0)
    Wav2Vec2Model(_tiny_wav2vec2_config(**over)).save_pretrained(folder)
    return folder


def _drop_weights(folder, keep: int = 1) -> None:
    """Keep only the first ``keep`` tensors of the folder's model.safetensors."""
    from safetensors.torch import load_file, save_file

    state = load_file(folder / "model.safetensors")
    save_file({k: state[k] for k in sorted(state)[:keep]}, folder / "model.safetensors", metadata={"format": "pt"})


@pytest.fixture
def tiny_wav2vec2_expected(monkeypatch):
    """The manifest's wav2vec2 entry expecting the tiny architecture (so a small folder can pass)."""
    m = json.loads(json.dumps(w.manifest()))
    m["wav2vec2"]["hf_config"].update(hidden_size=32, num_hidden_layers=1, num_attention_heads=2)
    monkeypatch.setattr(w, "manifest", lambda: m)


# ----------------------------------------------------------------------------- wav2vec2 folders
def test_a_junk_folder_is_not_wav2vec2(tmp_path, empty_store):
    """Today: "wav2vec2: verified and stored" for any folder with a config.json."""
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "notes.txt").write_text("not a model")
    res = _cli("weights", "add", "wav2vec2", str(junk))
    assert res.exit_code != 0 and f"{junk}: not a Hugging Face model folder (config.json missing)" in res.output
    (junk / "config.json").write_text("{not json")
    res = _cli("weights", "add", "wav2vec2", str(junk))
    assert res.exit_code != 0 and "config.json: not a readable model config" in res.output, res.output
    (junk / "config.json").write_text(json.dumps({"model_type": "bert"}))
    (junk / "model.safetensors").write_bytes(b"\0" * 64)
    res = _cli("weights", "add", "wav2vec2", str(junk))
    assert res.exit_code != 0 and "not a wav2vec2 model (config.json model_type='bert')" in res.output, res.output
    assert not (empty_store / "wav2vec2-base-960h").exists()


def test_a_wav2vec2_of_another_size_is_not_base_960h(tmp_path, empty_store):
    folder = _tiny_wav2vec2(tmp_path / "tiny")
    res = _cli("weights", "add", "wav2vec2", str(folder))
    assert res.exit_code != 0 and "hidden_size=32 (expected 768)" in res.output, res.output
    assert not (empty_store / "wav2vec2-base-960h").exists()


def test_junk_or_incomplete_weights_in_a_wav2vec2_folder(tmp_path, tiny_wav2vec2_expected, empty_store):
    """transformers fills weights a file lacks with random values and only logs it."""
    folder = _tiny_wav2vec2(tmp_path / "tiny")
    _drop_weights(folder)
    res = _cli("weights", "add", "wav2vec2", str(folder))
    assert res.exit_code != 0 and "the weights do not fit transformers:Wav2Vec2Model" in res.output, res.output
    assert "weights missing" in res.output
    (folder / "model.safetensors").write_bytes(b"junk" * 100)
    res = _cli("weights", "add", "wav2vec2", str(folder))
    assert res.exit_code != 0 and "cannot be loaded as transformers:Wav2Vec2Model" in res.output, res.output
    assert not (empty_store / "wav2vec2-base-960h").exists()


def test_the_expected_architecture_is_stored(tmp_path, tiny_wav2vec2_expected, empty_store):
    folder = _tiny_wav2vec2(tmp_path / "tiny")
    res = _cli("weights", "add", "wav2vec2", str(folder))
    assert res.exit_code == 0 and "verified and stored" in res.output, res.output
    assert (empty_store / "wav2vec2-base-960h" / "model.safetensors").is_file()


def test_features_refuse_a_store_folder_with_missing_weights(empty_store):
    from aebench.data import features as F

    folder = _tiny_wav2vec2(empty_store / "wav2vec2-base-960h")
    _drop_weights(folder)
    F._MODELS.clear()
    with pytest.raises(F.FeatureError, match="weights missing"):
        F.extract("wav2vec2", np.zeros(16000, np.float32), 25)
    F._MODELS.clear()


# ----------------------------------------------------------------------------- explicit --weights files
def test_another_networks_state_dict_is_refused(syncnet_file, tmp_path):
    with pytest.raises(w.WeightsError, match="is not a state dict of torchvision.models:AlexNet") as err:
        w.resolve("lpips_alexnet", syncnet_file)
    assert "\n" not in str(err.value) and str(syncnet_file) in str(err.value)
    rand = tmp_path / "rand.pth"
    torch.save({"a": torch.zeros(3)}, rand)
    for name in ("syncnet", "face_alignment_2dfan4", "face_alignment_s3fd", "lpips_alexnet"):
        with pytest.raises(w.WeightsError, match=f"--weights {name}: .*is not a state dict of"):
            w.resolve(name, rand)
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"\x80junk" * 10)
    with pytest.raises(w.WeightsError, match="cannot be read as torch weights") as err:
        w.resolve("syncnet", junk)
    assert "\n" not in str(err.value)


def test_the_networks_own_layout_is_accepted(syncnet_file, tmp_path):
    import torchvision

    assert w.resolve("syncnet", syncnet_file).official is False
    features = {k: v for k, v in torchvision.models.alexnet().state_dict().items() if k.startswith("features.")}
    torch.save(features, tmp_path / "alex.pth")  # LPIPS uses AlexNet's feature layers only
    assert w.resolve("lpips_alexnet", tmp_path / "alex.pth").verification == "explicit file"


@pytest.fixture(scope="module")
def talking_clip(tmp_path_factory):
    from aebench.media import write_video

    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (32, 32, 3), dtype=np.uint8) for _ in range(4)]
    audio = (0.1 * np.sin(np.arange(6400) / 7)).astype(np.float32)
    return write_video(tmp_path_factory.mktemp("eval") / "clip.mp4", frames, audio=audio)


def test_eval_with_wrong_weights_is_a_one_line_error(talking_clip, syncnet_file, tmp_path):
    """Today: a KeyError from the LPIPS builder, a RuntimeError listing missing keys for SyncNet."""
    clip = str(talking_clip)
    res = _cli(
        "eval",
        "--pred",
        clip,
        "--gt",
        clip,
        "--metrics",
        "lpips",
        "--weights",
        f"lpips_alexnet={syncnet_file}",
        "--out",
        str(tmp_path / "a"),
    )
    assert res.exit_code != 0 and "is not a state dict of torchvision.models:AlexNet" in res.output, res.output
    rand = tmp_path / "rand.pth"
    torch.save({"a": torch.zeros(3), "b": torch.ones(2)}, rand)
    res = _cli("eval", "--pred", clip, "--metrics", "sync_conf", "--weights", f"syncnet={rand}", "--out", str(tmp_path / "b"))
    assert res.exit_code != 0 and "is not a state dict of syncnet_python:SyncNetModel" in res.output, res.output
    assert "2 unexpected keys (e.g. a)" in res.output


# ----------------------------------------------------------------------------- a store that cannot be written
@pytest.fixture
def tiny_entry(tmp_path, monkeypatch):
    """A manifest entry 'tiny' whose official file is a small state dict."""
    f = tmp_path / "tiny.pth"
    torch.save({"a": torch.arange(3.0)}, f)
    m = dict(w.manifest())
    m["tiny"] = {
        "file": "tiny_official.pth",
        "sha256": hashlib.sha256(f.read_bytes()).hexdigest(),
        "url": "https://127.0.0.1:9/tiny.pth",
        "licence": "test",
        "kind": "torch",
    }
    monkeypatch.setattr(w, "manifest", lambda: m)
    return f


@pytest.mark.parametrize("code", [errno.EROFS, errno.ENOSPC, errno.EACCES])
def test_add_into_a_store_that_cannot_be_written(tiny_entry, empty_store, monkeypatch, code):
    def fail(src, dst, *a, **k):
        with open(dst, "wb") as fh:  # half a copy, then the error
            fh.write(b"half")
        raise OSError(
            code,
            {errno.EROFS: "Read-only file system", errno.ENOSPC: "No space left on device", errno.EACCES: "Permission denied"}[code],
            str(dst),
        )

    monkeypatch.setattr(shutil, "copyfile", fail)
    res = _cli("weights", "add", "tiny", str(tiny_entry))
    assert res.exit_code != 0 and f"{empty_store}: the weights store cannot be written" in res.output, res.output
    assert list(empty_store.iterdir()) == []  # no half-written copy


def test_add_into_a_store_that_is_a_file(tiny_entry, tmp_path, monkeypatch):
    (tmp_path / "store_file").write_text("")
    monkeypatch.setenv("AEBENCH_WEIGHTS", str(tmp_path / "store_file"))
    res = _cli("weights", "add", "tiny", str(tiny_entry))
    assert res.exit_code != 0 and f"{tmp_path / 'store_file'}: the weights store cannot be written" in res.output
