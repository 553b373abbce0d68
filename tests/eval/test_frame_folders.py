"""Frame folders are paired by position only when their numbering has no gap; otherwise the
user pairs them by number (``--pair-by-number``), recorded. `aebench rescore` refuses a render
that lost frames, and `aebench eval` a frame rate that is not a finite positive number."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from aebench.eval import evaluate
from aebench.harness.cli import main
from aebench.registry import REGISTERED as METHODS
from aebench.media import MediaError, PngSequence, lossless_frames_dir
from tests.aebench.harness.fake_method import NoisyGT, toy_protocol


def clip(n: int, size: int = 16) -> np.ndarray:
    """``n`` frames, each different (pairing the wrong ones costs PSNR)."""
    rng = np.random.default_rng(3)
    return rng.integers(0, 256, (n, size, size, 3)).astype(np.uint8)


def folder(d: Path, frames: np.ndarray, numbers, name: str = "{k:04d}.png") -> Path:
    """``frames[k]`` written as ``name.format(k=k)`` for each number ``k``."""
    d.mkdir()
    for k in numbers:
        cv2.imwrite(str(d / name.format(k=k)), frames[k][:, :, ::-1])
    return d


def eval_cli(*args: str):
    return CliRunner().invoke(main, ["eval", "--metrics", "psnr", *args])


@pytest.fixture
def gapped(tmp_path):
    """gt frames 0-59; the prediction lost 10 and 11 and has 60 and 61 instead (60 frames each)."""
    frames = clip(62)
    gt = folder(tmp_path / "gt", frames, range(60))
    pred = folder(tmp_path / "pred", frames, [k for k in range(62) if k not in (10, 11)])
    return pred, gt


def test_a_gap_in_a_frame_folder_is_refused_naming_it_and_the_missing_numbers(tmp_path, gapped):
    pred, gt = gapped
    res = eval_cli("--pred", str(pred), "--gt", str(gt), "--out", str(tmp_path / "out"))
    assert res.exit_code != 0 and "Traceback" not in res.output
    assert f"{pred}: frame numbers 10, 11 are missing between 0 and 61" in res.output
    assert "--pair-by-number" in res.output and not (tmp_path / "out" / "metrics.json").exists()


def test_names_without_a_number_or_with_one_twice_are_refused(tmp_path):
    frames = clip(3)
    named = tmp_path / "named"
    named.mkdir()
    for word, img in zip(("first", "second", "third"), frames):
        cv2.imwrite(str(named / f"{word}.png"), img)
    res = eval_cli("--pred", str(named), "--gt", str(named), "--out", str(tmp_path / "out"))
    assert res.exit_code != 0 and "Traceback" not in res.output and "first.png carries no frame number" in res.output
    twice = folder(tmp_path / "twice", frames, range(3), "a_{k}.png")
    cv2.imwrite(str(twice / "b_1.png"), frames[1])
    with pytest.raises(MediaError, match="a_1.png and b_1.png both carry frame number 1"):
        evaluate(twice, twice, metrics=["psnr"], progress=False)


def test_pair_by_number_pairs_the_numbers_in_both_and_records_them(tmp_path, gapped):
    pred, gt = gapped
    out = tmp_path / "out"
    res = eval_cli("--pred", str(pred), "--gt", str(gt), "--pair-by-number", "--out", str(out))
    assert res.exit_code == 0, res.output
    assert "paired by number: 58 frame pairs; only in --pred: 60-61; only in --gt: 10-11" in res.output
    m = json.loads((out / "metrics.json").read_text())
    assert m["summary"]["psnr"] == 60.0  # the same frame for every number: identical pairs
    paired = m["info"]["paired_by_number"]
    assert (paired["pairs"], paired["pred_only"], paired["gt_only"]) == (58, [60, 61], [10, 11])
    assert m["info"]["n_frames"] == 58


def test_metrics_over_time_are_missing_when_the_pairs_skip_numbers(gapped):
    pred, gt = gapped
    r = evaluate(pred, gt, metrics=["psnr", "lip_dyn_dlib"], pair_by_number=True, progress=False)
    assert r.summary["psnr"] == 60.0 and r.summary["lip_dyn_dlib"] is None
    assert "not consecutive" in r.missing["lip_dyn_dlib"]


def test_pair_by_number_needs_two_folders(tmp_path, gapped):
    pred, _ = gapped
    res = eval_cli("--pred", str(pred), "--gt", str(tmp_path / "gt.mp4"), "--pair-by-number", "--out", str(tmp_path / "o"))
    assert res.exit_code != 0 and "Traceback" not in res.output and "needs two frame folders" in res.output


@pytest.mark.parametrize("fps", ["nan", "inf", "-inf", "0"])
def test_a_frame_rate_that_is_not_a_finite_positive_number_is_refused_before_scoring(tmp_path, gapped, fps):
    _, gt = gapped
    res = eval_cli("--pred", str(gt), "--gt", str(gt), "--fps", fps, "--out", str(tmp_path / "out"))
    assert res.exit_code != 0 and "Traceback" not in res.output and "--fps" in res.output
    assert not (tmp_path / "out" / "metrics.json").exists()
    with pytest.raises(ValueError, match="fps must be a positive, finite number"):
        evaluate(gt, gt, metrics=["psnr"], fps=float(fps), progress=False)


class NoisyFrames(NoisyGT):
    """:class:`NoisyGT` that also writes the render's lossless frames, as every NeRF method does."""

    def render(self, checkpoint, identity, driving_audio, cfg, out):
        from aebench.media import read_video

        video = super().render(checkpoint, identity, driving_audio, cfg, out)
        frames = PngSequence(lossless_frames_dir(video))
        for img in read_video(video)[0]:
            frames.write(img)
        frames.commit()
        return video


@pytest.mark.parametrize("lost", ["00003.png", "00001.png"])
def test_rescore_refuses_a_cell_whose_render_lost_frames(tmp_path, monkeypatch, lost):
    """The last frame deleted (no gap left behind) or one in the middle: refused, naming the
    cell and the frame, instead of scoring the frames left against as much ground truth."""
    monkeypatch.setitem(METHODS, "noisy_gt", f"{__name__}:NoisyFrames")
    path = toy_protocol(tmp_path)
    runs = tmp_path / "store"
    runner = CliRunner()
    assert runner.invoke(main, ["run", f"protocol={path}", "--runs", str(runs)]).exit_code == 0
    cell = next(d for d in (runs / "mine").iterdir() if (d / "cell.json").is_file())
    frames = cell / "render_frames"
    assert sorted(f.name for f in frames.iterdir()) == [f"{k:05d}.png" for k in range(4)]
    ok = runner.invoke(main, ["rescore", f"protocol={path}", "--runs", str(runs)])
    assert ok.exit_code == 0, ok.output  # a complete render is scored again
    before = (cell / "metrics.json").read_text()
    (frames / lost).unlink()
    res = runner.invoke(main, ["rescore", f"protocol={path}", "--runs", str(runs)])
    assert res.exit_code != 0 and "Traceback" not in res.output
    k = int(lost.split(".")[0])
    assert f"1 render frame(s) missing from {frames} (numbers {k};" in res.output, res.output
    assert f"cell {cell.name}" in res.output and "FAILED A |" in res.output  # the cell, by id and label
    assert (cell / "metrics.json").read_text() == before  # the cell's scores are left as they were
