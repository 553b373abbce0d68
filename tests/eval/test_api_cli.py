"""evaluate() inputs, alignment and output files; the `aebench eval` command."""

from __future__ import annotations

import csv
import json

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from aebench.harness.cli import main
from aebench.media import write_video
from aebench.eval import METRICS, evaluate, read_metrics


def _frames(n=4, size=32, seed=0):
    rng = np.random.default_rng(seed)
    return np.stack([cv2.resize(f, (size, size)) for f in rng.integers(0, 256, (n, 4, 4, 3), dtype=np.uint8)])


def test_registry():
    thev = {f"{m}{s}" for m in ("lip_sync_dlib", "silent_lip_dlib", "lip_dyn_dlib", "brow_dyn_dlib") for s in ("", "_close")}
    assert set(METRICS) == {"psnr", "ssim", "lpips", "lmd", "lmd_dlib", "sync_conf", "sync_dist"} | thev
    assert METRICS["sync_dist"].direction == "lower" and METRICS["sync_conf"].direction == "higher"
    assert METRICS["psnr"].needs_gt and not METRICS["sync_conf"].needs_gt and METRICS["sync_conf"].needs_audio


def test_frame_counts_refused_or_truncated():
    a, b = _frames(4), _frames(5)
    with pytest.raises(ValueError, match="4 frames, ground truth 5"):
        evaluate(a, b, metrics=["psnr"], progress=False)
    with pytest.warns(UserWarning, match="truncated"):
        r = evaluate(a, b, metrics=["psnr"], progress=False, align="truncate")
    assert r.info["n_frames"] == 4 and r.info["truncated"]["to"] == 4


def test_scored_at_the_ground_truths_resolution_refused_or_resized():
    pred = _frames(2, 32)
    gt = np.stack([cv2.resize(f, (64, 64), interpolation=cv2.INTER_NEAREST) for f in pred])
    with pytest.raises(ValueError, match="prediction is 32x32, ground truth 64x64.*--resize"):
        evaluate(pred, gt, metrics=["psnr"], progress=False)
    r = evaluate(pred, gt, metrics=["psnr"], progress=False, resize=True)
    assert r.info["pred_resized"] == {"from": [32, 32], "to": [64, 64], "interpolation": "INTER_AREA"}
    assert r.info["resolution"] == [64, 64]
    with pytest.raises(ValueError, match="aspect ratios differ"):
        evaluate(pred, np.zeros((2, 32, 48, 3), np.uint8), metrics=["psnr"], progress=False, resize=True)


def test_frame_rates_must_match(tmp_path):
    from aebench.media import write_video

    frames = _frames(6)
    write_video(tmp_path / "p30.mp4", frames, fps=30, crf=0)
    with pytest.raises(ValueError, match="prediction runs at 30 fps, ground truth at 25 fps"):
        evaluate(str(tmp_path / "p30.mp4"), frames, metrics=["psnr"], progress=False)
    assert evaluate(str(tmp_path / "p30.mp4"), frames, metrics=["psnr"], progress=False, fps=30).info["fps"] == 30
    with pytest.raises(ValueError, match="runs at 30 fps, not the given 25"):
        evaluate(str(tmp_path / "p30.mp4"), frames, metrics=["psnr"], progress=False, fps=25)


def _png_folder(d, frames, name: str):
    """Write RGB ``frames`` as PNGs named ``name.format(i=...)`` into a new folder ``d``."""
    d.mkdir()
    for i, f in enumerate(frames):
        cv2.imwrite(str(d / name.format(i=i)), f[:, :, ::-1])
    return d


def test_frame_folders_sort_numerically(tmp_path):
    from aebench.eval.frames import FrameSource

    frames = _frames(12)
    d = _png_folder(tmp_path / "unpadded", frames, "frame_{i}.png")
    source = FrameSource.of(d)
    assert np.array_equal(source.array(), frames) and source.fps == 25.0  # frame_2 before frame_10
    assert FrameSource.of(d, 30).fps == 30.0


def test_scored_psnr_of_a_render_equals_that_of_its_in_memory_frames(tmp_path):
    """NeRF renders are scored from their lossless frames, never from the H.264 mp4."""
    from aebench.media import lossless_frames_dir
    from aebench.engine.image_render import write_render

    rng = np.random.default_rng(0)
    gt = _frames(6, 32)
    rendered = np.clip(gt.astype(int) + rng.integers(-6, 7, gt.shape), 0, 255).astype(np.uint8)
    video = write_render(iter(rendered), 6, tmp_path / "render.mp4", 25.0, np.zeros(6 * 640, np.float32))
    in_memory = evaluate(rendered, gt, metrics=["psnr"], progress=False).summary["psnr"]
    scored = evaluate(str(lossless_frames_dir(video)), gt, metrics=["psnr"], progress=False).summary["psnr"]
    assert scored == in_memory
    from_mp4 = evaluate(str(video), gt, metrics=["psnr"], progress=False).summary["psnr"]
    assert abs(from_mp4 - in_memory) > 0.1  # what scoring the mp4 would have cost


def test_inputs_needed():
    with pytest.raises(ValueError, match="needs ground truth"):
        evaluate(_frames(), metrics=["psnr"], progress=False)
    with pytest.raises(ValueError, match="needs audio"):
        evaluate(_frames(), metrics=["sync_conf"], progress=False)
    with pytest.raises(ValueError, match="unknown metric"):
        evaluate(_frames(), _frames(), metrics=["fid"], progress=False)


def test_frame_folder_and_outputs(tmp_path):
    gt = _frames(3)
    d = _png_folder(tmp_path / "frames", gt, "{i:04d}.png")
    r = evaluate(d, gt, metrics=["psnr", "ssim"], progress=False)
    assert r.summary["ssim"] == pytest.approx(1.0)
    r.write(tmp_path / "out")
    m = read_metrics(tmp_path / "out")
    assert m["summary"]["psnr"] == 60.0
    rows = list(csv.DictReader(open(tmp_path / "out" / "frames.csv")))
    assert len(rows) == 3 and float(rows[0]["psnr"]) == 60.0
    assert not list((tmp_path / "out").glob("*.partial"))


def test_cli_eval_writes_both_files(tmp_path):
    gt = _frames(6, 32)
    t = np.arange(6 * 640) / 16000
    write_video(tmp_path / "gt.mp4", gt, 25, audio=(0.1 * np.sin(2 * np.pi * 300 * t)).astype(np.float32))
    blurred = np.stack([cv2.GaussianBlur(f, (0, 0), 1.5) for f in gt])
    write_video(tmp_path / "pred.mp4", blurred, 25)
    out = tmp_path / "out"
    res = CliRunner().invoke(
        main,
        [
            "eval",
            "--pred",
            str(tmp_path / "pred.mp4"),
            "--gt",
            str(tmp_path / "gt.mp4"),
            "--audio",
            str(tmp_path / "gt.mp4"),
            "--out",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    m = json.loads((out / "metrics.json").read_text())
    assert m["summary"]["lpips"] is None and m["summary"]["sync_conf"] is None  # no weights in the test store
    assert 0 < m["summary"]["ssim"] < 1 and m["info"]["n_frames"] == 6
    assert (out / "frames.csv").read_text().startswith("frame,psnr,ssim")
    assert "MISSING" in res.output and "aebench weights add syncnet" in res.output
    bad = CliRunner().invoke(main, ["eval", "--pred", str(tmp_path / "pred.mp4"), "--metrics", "psnr", "--out", str(out)])
    assert bad.exit_code != 0 and "needs ground truth" in bad.output


def test_cli_weights_status():
    res = CliRunner().invoke(main, ["weights", "status"])
    assert res.exit_code == 0 and "syncnet_v2.model" in res.output and "UNKNOWN" in res.output


def test_the_registry_owns_every_fact_of_a_metric(monkeypatch):
    """Label, direction, tolerance, needs and compute live in one registry entry; evaluate and
    regress read them from there, so a new metric is one module plus one registry line."""
    import importlib

    from aebench.harness.report.regress import compare
    from aebench.eval.registry import DIRECTIONS, Metric, Value

    for name, m in METRICS.items():
        assert m.direction in DIRECTIONS and m.tolerance > 0 and m.label and callable(m.compute), name
        assert importlib.import_module(m.recipe).__doc__, f"{name}: its module's docstring is the recipe"

    def mean_abs(ctx, names):
        return {"mae": Value(per_frame=np.array([np.abs(p.astype(float) - g).mean() for p, g in ctx.pairs()]))}

    monkeypatch.setitem(METRICS, "mae", Metric("mae", "lower", "MAE", tolerance=0.25, compute=mean_abs, needs_gt=True, recipe=__name__))
    r = evaluate(_frames(3), _frames(3), metrics=["mae", "psnr"], progress=False)
    assert r.summary["mae"] == 0.0 and r.frames[0]["mae"] == 0.0
    assert not [f for f in compare({"cells": {"c": {"mae": 1.0}}}, {"c": {"mae": 1.2}}) if f.fails]  # within 0.25
    assert compare({"cells": {"c": {"mae": 1.0}}}, {"c": {"mae": 1.3}})[0].kind == "worse"


def test_a_metrics_record_says_which_weights_packages_and_variant_it_has():
    """The weights a metric reads, the packages behind its numbers and its labelled variant are
    fields of its record: the manifest says nothing of who uses an entry, the tables mark a variant
    from the record, and an evaluation records only its metrics' package versions."""
    import json

    from aebench import weights as w
    from aebench.data.features import FEATURE_WEIGHTS
    from aebench.eval.registry import packages_of, weights_of

    manifest = json.loads(w.MANIFEST_PATH.read_text())
    read = {n for m in METRICS for n in weights_of(m)} | set(FEATURE_WEIGHTS.values())
    assert read == set(manifest) and not any("used_by" in e for e in manifest.values())
    assert weights_of("sync_conf") == ("syncnet", "syncnet_s3fd")
    assert METRICS["sync_dist"].variant({"sync": {"crop": "dlib"}}) and not METRICS["sync_dist"].variant({"sync": {"crop": "s3fd"}})
    assert packages_of(["psnr"]) == () and "syncnet-python" in packages_of(["sync_conf", "psnr"])
    r = evaluate(_frames(3), _frames(3), metrics=["psnr", "ssim"], progress=False)
    assert "syncnet-python" not in r.info["provenance"]["packages"]


def test_empty_clips_are_refused_not_scored_perfect():
    empty = np.zeros((0, 8, 8, 3), np.uint8)
    with pytest.raises(ValueError, match="no frames to score"):
        evaluate(empty, empty, metrics=["psnr"], progress=False)
