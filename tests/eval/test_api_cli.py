"""evaluate() inputs, alignment and output files; the `aebench eval` command."""

from __future__ import annotations

import csv
import json

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from aebench.cli import main
from aebench.media import write_video
from eval import METRICS, evaluate, read_metrics


def _frames(n=4, size=32, seed=0):
    rng = np.random.default_rng(seed)
    return np.stack([cv2.resize(f, (size, size)) for f in rng.integers(0, 256, (n, 4, 4, 3), dtype=np.uint8)])


def test_registry():
    assert set(METRICS) == {"psnr", "ssim", "lpips", "lmd", "sync_conf", "sync_dist"}
    assert METRICS["sync_dist"].direction == "lower" and METRICS["sync_conf"].direction == "higher"
    assert METRICS["psnr"].needs_gt and not METRICS["sync_conf"].needs_gt and METRICS["sync_conf"].needs_audio


def test_frame_counts_refused_or_truncated():
    a, b = _frames(4), _frames(5)
    with pytest.raises(ValueError, match="4 frames, ground truth 5"):
        evaluate(a, b, metrics=["psnr"], progress=False)
    with pytest.warns(UserWarning, match="truncated"):
        r = evaluate(a, b, metrics=["psnr"], progress=False, align="truncate")
    assert r.info["n_frames"] == 4 and r.info["truncated"]["to"] == 4


def test_resolution_resized_or_refused():
    pred = _frames(2, 32)
    gt = np.stack([cv2.resize(f, (64, 64), interpolation=cv2.INTER_NEAREST) for f in pred])
    r = evaluate(pred, gt, metrics=["psnr"], progress=False)
    assert r.info["gt_resized"] == {"from": [64, 64], "to": [32, 32], "interpolation": "INTER_AREA"}
    with pytest.raises(ValueError, match="aspect ratios differ"):
        evaluate(pred, np.zeros((2, 32, 48, 3), np.uint8), metrics=["psnr"], progress=False)


def test_inputs_needed():
    with pytest.raises(ValueError, match="needs ground truth"):
        evaluate(_frames(), metrics=["psnr"], progress=False)
    with pytest.raises(ValueError, match="needs audio"):
        evaluate(_frames(), metrics=["sync_conf"], progress=False)
    with pytest.raises(ValueError, match="unknown metric"):
        evaluate(_frames(), _frames(), metrics=["fid"], progress=False)


def test_frame_folder_and_outputs(tmp_path):
    gt = _frames(3)
    d = tmp_path / "frames"
    d.mkdir()
    for i, f in enumerate(gt):
        cv2.imwrite(str(d / f"{i:04d}.png"), f[:, :, ::-1])
    r = evaluate(d, gt, metrics=["psnr", "ssim"], progress=False)
    assert r.summary["ssim"] == pytest.approx(1.0)
    r.write(tmp_path / "out")
    m = read_metrics(tmp_path / "out")
    assert m["summary"]["psnr"] == float("inf")
    rows = list(csv.DictReader(open(tmp_path / "out" / "frames.csv")))
    assert len(rows) == 3 and rows[0]["psnr"] == "inf"
    assert not list((tmp_path / "out").glob("*.partial"))


def test_cli_eval_writes_both_files(tmp_path):
    gt = _frames(6, 32)
    t = np.arange(6 * 640) / 16000
    write_video(tmp_path / "gt.mp4", gt, 25, audio=(0.1 * np.sin(2 * np.pi * 300 * t)).astype(np.float32))
    blurred = np.stack([cv2.GaussianBlur(f, (0, 0), 1.5) for f in gt])
    write_video(tmp_path / "pred.mp4", blurred, 25)
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["eval", "--pred", str(tmp_path / "pred.mp4"), "--gt", str(tmp_path / "gt.mp4"),
                                    "--audio", str(tmp_path / "gt.mp4"), "--out", str(out)])
    assert res.exit_code == 0, res.output
    m = json.loads((out / "metrics.json").read_text())
    assert m["summary"]["lpips"] is None and m["summary"]["sync_conf"] is None  # no weights in the test store
    assert 0 < m["summary"]["ssim"] < 1 and m["info"]["n_frames"] == 6
    assert (out / "frames.csv").read_text().startswith("frame,psnr,ssim")
    assert "MISSING" in res.output and "aebench weights add syncnet" in res.output
    bad = CliRunner().invoke(main, ["eval", "--pred", str(tmp_path / "pred.mp4"), "--metrics", "psnr",
                                    "--out", str(out)])
    assert bad.exit_code != 0 and "needs ground truth" in bad.output


def test_cli_weights_status():
    res = CliRunner().invoke(main, ["weights", "status"])
    assert res.exit_code == 0 and "syncnet_v2.model" in res.output and "UNKNOWN" in res.output
