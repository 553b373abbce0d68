import json

import numpy as np
import pytest
from omegaconf import OmegaConf

from aebench.config import load_config
from aebench.data import Identity
from aebench.media import read_video, write_video
from aebench.baselines.external import External, ExternalError

FPS = 25
RATE = 16000


def _identity(root, name="anna"):
    path = root / "ids" / name
    path.mkdir(parents=True)
    (path / "meta.json").write_text(
        json.dumps({"schema": 1, "name": name, "n_frames": 20, "fps": FPS, "size": [16, 16], "audio_rate": RATE})
    )
    return Identity.open(path)


def _video(path, n, fps=FPS):
    frames = [np.full((16, 16, 3), 10 * i, np.uint8) for i in range(n)]
    write_video(path, frames, fps=fps, audio=np.zeros(int(n / fps * RATE), np.float32))


def _cfg(root, **kw):
    cfg = load_config([f"external.root={root}"])
    for k, v in kw.items():
        OmegaConf.update(cfg, k, v)
    return cfg


def test_expected_frames(tmp_path):
    ident = _identity(tmp_path)
    assert ident.frames_for_audio(16000) == 25 and ident.frames_for_audio(10 * 640) == 10
    assert ident.frames_for_audio(16000, cap=7) == 7 and ident.samples_for_frames(10) == 6400
    with pytest.raises(ValueError, match="shorter than one frame"):
        ident.frames_for_audio(100)


def test_single_file_layout_is_scored_exactly_as_given(tmp_path):
    from aebench.harness.protocol.runner import scored_frames

    ident = _identity(tmp_path)
    renders = tmp_path / "renders"
    renders.mkdir()
    _video(renders / "anna.mp4", 11)
    method = External()
    cfg = _cfg(renders)
    assert method.pretrain([ident], cfg, tmp_path / "run") is None
    ckpt = method.finetune(ident, ident, None, cfg, tmp_path / "run")
    audio = np.zeros(10 * 640, np.float32)  # 10 frames at 25 fps: one extra frame is within tolerance
    out = method.render(ckpt, ident, audio, cfg, tmp_path / "out.mp4")
    assert out.read_bytes() == (renders / "anna.mp4").read_bytes()  # never re-encoded
    frames, n, _ = scored_frames(out, ident, audio)
    original, fps = read_video(renders / "anna.mp4")
    assert n == 10 and np.array_equal(frames.array(), original[:10]) and fps == pytest.approx(FPS)  # decoded, cut
    out2 = method.render(ckpt, ident, np.zeros(11 * 640, np.float32), cfg, tmp_path / "out2.mp4")
    assert out2.read_bytes() == (renders / "anna.mp4").read_bytes()


def test_rejects_mismatched_frame_count_clearly(tmp_path):
    ident = _identity(tmp_path)
    renders = tmp_path / "renders"
    renders.mkdir()
    _video(renders / "anna.mp4", 14)
    method = External()
    cfg = _cfg(renders)
    ckpt = method.finetune(ident, ident, None, cfg, tmp_path / "run")
    with pytest.raises(ExternalError, match=r"has 14 frames but the driving audio .* needs 10"):
        method.render(ckpt, ident, np.zeros(10 * 640, np.float32), cfg, tmp_path / "out.mp4")
    assert not (tmp_path / "out.mp4").exists()


def test_folder_layout_picks_audio_and_checks_fps(tmp_path):
    ident = _identity(tmp_path)
    folder = tmp_path / "renders" / "anna"
    folder.mkdir(parents=True)
    _video(folder / "self.mp4", 8)
    _video(folder / "zozo.mp4", 12)
    _video(folder / "fast.mp4", 12, fps=30)
    method = External()
    ckpt = method.finetune(ident, ident, None, _cfg(tmp_path / "renders"), tmp_path / "run")
    out = method.render(
        ckpt, ident, np.zeros(12 * 640, np.float32), _cfg(tmp_path / "renders", **{"external.audio": "zozo"}), tmp_path / "z.mp4"
    )
    assert len(read_video(out)[0]) == 12
    with pytest.raises(ExternalError, match="not 'nope'"):
        method.render(
            ckpt, ident, np.zeros(8 * 640, np.float32), _cfg(tmp_path / "renders", **{"external.audio": "nope"}), tmp_path / "n.mp4"
        )
    with pytest.raises(ExternalError, match="30 fps"):
        method.render(
            ckpt, ident, np.zeros(12 * 640, np.float32), _cfg(tmp_path / "renders", **{"external.audio": "fast"}), tmp_path / "f.mp4"
        )


def test_missing_identity_and_root(tmp_path):
    ident = _identity(tmp_path)
    (tmp_path / "renders").mkdir()
    with pytest.raises(ExternalError, match="no render of identity 'anna'"):
        External().finetune(ident, ident, None, _cfg(tmp_path / "renders"), tmp_path / "run")
    with pytest.raises(ExternalError, match="not a folder"):
        External().finetune(ident, ident, None, _cfg(tmp_path / "nowhere"), tmp_path / "run")
