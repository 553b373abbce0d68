"""Audio features: window shape and centring, cache/recompute, wav2vec2 local loading and refusal."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy.io import wavfile

from aebench.data import features as F
from aebench.data.identity import Identity


def _noise(seconds: float, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 0.05, int(seconds * 16000)).astype(np.float32)


def _identity(tmp_path: Path, audio: np.ndarray, n_frames: int) -> Identity:
    """A minimal prepared identity: only what features need (meta.json + audio.wav)."""
    d = tmp_path / "idt"
    d.mkdir(exist_ok=True)
    wavfile.write(d / "audio.wav", 16000, np.round(np.clip(audio, -1, 1) * 32767).astype(np.int16))
    meta = {
        "schema": 1,
        "name": "idt",
        "fps": 25,
        "n_frames": n_frames,
        "size": [16, 16],
        "audio_rate": 16000,
        "intrinsics": [16, 8, 8],
        "near": 1,
        "far": 2,
        "frames_format": "npy",
    }
    (d / "meta.json").write_text(json.dumps(meta))
    return Identity.open(d)


def test_mfcc_shape_and_normalisation():
    f = F.extract("mfcc", _noise(1.0), n_frames=25)
    assert f.shape == (25, 16, 26) and f.dtype == np.float32
    assert np.isfinite(f).all()
    mid = f[6:19]  # windows of interior frames hold no padding
    assert np.abs(mid.reshape(-1, 26).mean(0)).max() > 5  # raw: log energy and c1 are far from 0
    norm = F.AudioNorm.of(mid)
    z = norm(mid).reshape(-1, 26)
    assert np.abs(z.mean(0)).max() < 0.5 and 0.5 < z.std() < 1.5
    back = F.AudioNorm.from_dict(json.loads(json.dumps(norm.to_dict())))  # survives a checkpoint's JSON
    np.testing.assert_allclose(back(mid), norm(mid), rtol=1e-6)


def test_window_holds_centred_steps_and_zero_padding():
    steps = np.arange(1, 101, dtype=np.float32)[:, None]  # 2 s at 50 Hz, value = index + 1
    w = F.frame_windows(steps, n_frames=50, fps=25.0)
    assert w.shape == (50, 16, 1)
    np.testing.assert_array_equal(w[10, :, 0], np.arange(12, 28) + 1)  # steps 2i-8 .. 2i+7
    np.testing.assert_array_equal(w[0, :8, 0], 0)  # before the start: zeros
    np.testing.assert_array_equal(w[49, 14:, 0], 0)  # past the end (step 100, 101): zeros
    w30 = F.frame_windows(steps, n_frames=60, fps=30.0)  # frame 30 at 1 s -> centre step 50
    assert w30[30, 8, 0] == 51


def test_impulse_lands_in_the_centre_of_its_frames_window():
    audio = np.random.default_rng(1).normal(0, 1e-4, 32000).astype(np.float32)
    audio[int(0.4 * 16000)] = 0.9  # a click at t = 0.4 s = frame 10 at 25 fps
    f = F.extract("mfcc", audio, n_frames=50)
    energy = f[..., 0]  # c0 = log energy
    assert np.unravel_index(np.argmax(energy[10]), energy[10].shape) == (8,)
    assert energy[10, 8] > energy[10, 8 - 1] + 1 and energy[10, 8] > energy[10, 8 + 1] + 1
    assert energy[12, 4] == pytest.approx(energy[10, 8])  # the same step, two frames later


def test_cache_reuse_and_recompute_on_change(tmp_path, monkeypatch):
    idt = _identity(tmp_path, _noise(2.0), n_frames=50)
    full = idt.features("mfcc")
    assert full.shape == (50, 16, 26)
    npy, side = idt.path / "features" / "mfcc.npy", idt.path / "features" / "mfcc.json"
    assert npy.exists() and json.loads(side.read_text())["n_frames"] == 50
    assert not list((idt.path / "features").glob(".*tmp"))

    calls = []
    real = F.extract
    monkeypatch.setattr(F, "extract", lambda *a, **k: calls.append(1) or real(*a, **k))
    view = Identity.open(idt.path).clip(0.4)  # 10 frames; the cache covers all frames
    np.testing.assert_array_equal(view.features("mfcc"), full[:10])
    assert calls == []  # served from the cache

    monkeypatch.setitem(F.MFCC_SETTINGS, "nfilt", 20)  # other extractor settings: recompute
    changed = Identity.open(idt.path).features("mfcc")
    assert calls == [1] and json.loads(side.read_text())["nfilt"] == 20
    assert not np.array_equal(changed, full)

    _identity(tmp_path, _noise(2.0, seed=5), n_frames=50)  # other audio: recompute
    Identity.open(idt.path).features("mfcc")
    assert calls == [1, 1]


def test_unknown_extractor_lists_valid_names():
    with pytest.raises(F.FeatureError, match="mfcc, wav2vec2"):
        F.extract("deepspeech", _noise(0.2), 5)


def test_wav2vec2_missing_weights_is_loud(tmp_path, monkeypatch):
    monkeypatch.setenv("AEBENCH_WEIGHTS", str(tmp_path))
    with pytest.raises(F.FeatureError) as err:
        F.extract("wav2vec2", _noise(0.4), 10)
    msg = str(err.value)
    assert str(tmp_path / "wav2vec2-base-960h") in msg and "config.json" in msg
    assert "aebench weights add wav2vec2 PATH" in msg
    (tmp_path / "wav2vec2-base-960h").mkdir()
    (tmp_path / "wav2vec2-base-960h" / "config.json").write_text("{}")
    with pytest.raises(F.FeatureError, match=r"lacks model\.safetensors"):
        F.extract("wav2vec2", _noise(0.4), 10)


def test_wav2vec2_from_a_tiny_local_model(tmp_path, monkeypatch):
    torch = pytest.importorskip("torch")
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    torch.manual_seed(0)
    cfg = Wav2Vec2Config(
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=37,
        conv_dim=(8,) * 7,
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
        vocab_size=12,
    )
    model = Wav2Vec2Model(cfg).eval()
    model.save_pretrained(tmp_path / "wav2vec2-base-960h")
    monkeypatch.setenv("AEBENCH_WEIGHTS", str(tmp_path))
    F._MODELS.clear()

    audio = _noise(1.0)
    f = F.extract("wav2vec2", audio, n_frames=25)
    assert f.shape == (25, 16, 32) and f.dtype == np.float32

    padded = F._prepare_audio(audio, 25, 25.0, 16000)
    x = (padded - padded.mean()) / np.sqrt(padded.var() + 1e-7)
    with torch.no_grad():
        ref = model(torch.from_numpy(x[None])).last_hidden_state[0].numpy()
    assert ref.shape[0] == 51  # (16000 + 2 * 200 - 400) / 320 + 1 steps, step k centred at k * 20 ms
    np.testing.assert_allclose(f[12], ref[16:32], rtol=1e-4, atol=1e-5)

    monkeypatch.setattr(F, "CHUNK_STEPS", 20)  # chunked: same steps, same alignment
    monkeypatch.setattr(F, "CONTEXT_STEPS", 5)
    chunked = F.extract("wav2vec2", audio, n_frames=25)
    assert chunked.shape == f.shape
    zero = np.all(f == 0, axis=-1)
    np.testing.assert_array_equal(np.all(chunked == 0, axis=-1), zero)  # same padding
    corr = np.corrcoef(chunked[~zero].ravel(), f[~zero].ravel())[0, 1]
    assert corr > 0.95, corr  # only the attention context differs
    monkeypatch.undo()
    monkeypatch.setenv("AEBENCH_WEIGHTS", str(tmp_path))

    idt = _identity(tmp_path, audio, n_frames=25)
    stored = F.extract("wav2vec2", idt._audio, n_frames=25)  # the wav is int16-quantised
    np.testing.assert_allclose(idt.features("wav2vec2"), stored, rtol=1e-4, atol=1e-5)
    assert json.loads((idt.path / "features" / "wav2vec2.json").read_text())["weights"] == "model.safetensors"
    F._MODELS.clear()


def test_mfcc_on_real_driving_audio(shared_data):
    from aebench.media import read_audio

    audio = read_audio(shared_data / "audio" / "zozo.wav", 16000)
    n = int(len(audio) / 16000 * 25)
    f = F.extract("mfcc", audio, n_frames=n)
    assert f.shape == (n, 16, 26) and np.isfinite(f).all()
    assert f[n // 2].std() > 0.3  # speech, not padding
