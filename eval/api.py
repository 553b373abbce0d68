"""``evaluate``: score a prediction (against ground truth, and/or its driving audio).

A metric that cannot be computed (weights absent, no face found) is *missing*: ``None``
in ``summary`` with the reason and the fixing command in ``missing``, announced with a
warning. It is never replaced by 0 or by another network.
"""

from __future__ import annotations

import csv
import json
import math
import os
import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from eval import weights as wstore
from eval.frames import align as align_frames
from eval.frames import load_audio, load_frames
from eval.registry import METRICS, select


@dataclass
class EvalResult:
    summary: dict[str, float | None]
    missing: dict[str, str] = field(default_factory=dict)
    frames: list[dict] = field(default_factory=list)
    info: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"summary": {k: _json_num(v) for k, v in self.summary.items()},
                "missing": dict(self.missing), "info": self.info}

    def write(self, out_dir) -> None:
        """``metrics.json`` (summary, missing, info) and ``frames.csv``, each written then renamed."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        tmp = out / "metrics.json.partial"
        tmp.write_text(json.dumps(self.to_json(), indent=2, allow_nan=False) + "\n")
        os.replace(tmp, out / "metrics.json")
        cols = ["frame"] + [m for m in METRICS if any(m in r for r in self.frames)]
        tmp = out / "frames.csv.partial"
        with open(tmp, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(cols)
            for r in self.frames:
                w.writerow([_csv_num(r.get(c)) for c in cols])
        os.replace(tmp, out / "frames.csv")


def read_metrics(out_dir) -> dict:
    """``metrics.json`` back, with ``"inf"`` strings turned into floats."""
    d = json.loads((Path(out_dir) / "metrics.json").read_text())
    d["summary"] = {k: (float(v) if isinstance(v, str) else v) for k, v in d["summary"].items()}
    return d


def _json_num(v):
    if v is None:
        return None
    v = float(v)
    return ("inf" if v > 0 else "-inf") if math.isinf(v) else v


def _csv_num(v):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, float) and math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return v


def _mean(values: np.ndarray) -> float:
    v = np.asarray(values, dtype=np.float64)
    return float("inf") if np.isinf(v).all() else float(np.mean(v))


def evaluate(pred, gt=None, audio=None, metrics=None, weights=None, progress: bool = True,
             align: str = "strict") -> EvalResult:
    """Score ``pred`` (video path, frame folder or uint8 (n, H, W, 3) array).

    ``gt``: same kinds, or None (cross-driven: only the sync metrics). ``audio``: wav/mp4
    path or float32 16 kHz mono array; default the prediction video's own audio track.
    ``metrics``: names, or None for every metric computable from the given inputs.
    ``weights``: ``{"syncnet": PATH, "lpips_alexnet": PATH}`` explicit files (recorded
    with their sha256, marked unofficial unless the hash is the official one).
    ``align``: "strict" refuses unequal frame counts, "truncate" trims to the shorter.
    """
    from tqdm import tqdm

    weights = dict(weights or {})
    unknown = set(weights) - set(wstore.manifest())
    if unknown:
        raise ValueError(f"unknown weights {sorted(unknown)}; known: {', '.join(wstore.manifest())}")
    pred_frames, fps = load_frames(pred)
    audio16k, audio_src = load_audio(audio, pred)
    chosen = select(list(metrics) if metrics is not None else None, gt is not None, audio16k is not None)
    info: dict = {"n_frames": int(len(pred_frames)), "resolution": [int(pred_frames.shape[2]), int(pred_frames.shape[1])],
                  "fps": float(fps), "audio": audio_src, "metrics": [m.name for m in chosen],
                  "recipes": {m.name: m.recipe for m in chosen}, "weights": {}, "versions": _versions()}
    gt_frames = None
    if gt is not None and any(m.needs_gt for m in chosen):
        gt_frames, _ = load_frames(gt)
        pred_frames, gt_frames, ainfo = align_frames(pred_frames, gt_frames, align)
        info.update(ainfo)
        info["n_frames"] = int(len(pred_frames))
    n = len(pred_frames)
    per_frame: dict[str, np.ndarray] = {}
    summary: dict[str, float | None] = {}
    missing: dict[str, str] = {}
    names = {m.name for m in chosen}
    bar = lambda it, desc: tqdm(it, desc=desc, total=n, disable=not progress, unit="frame")  # noqa: E731

    if "psnr" in names:
        from eval.image_metrics import psnr_frame

        per_frame["psnr"] = np.array([psnr_frame(p, g) for p, g in bar(zip(pred_frames, gt_frames), "psnr")])
    if "ssim" in names:
        from eval.image_metrics import ssim_frame

        per_frame["ssim"] = np.array([ssim_frame(p, g) for p, g in bar(zip(pred_frames, gt_frames), "ssim")])
    if "lpips" in names:
        try:
            rec = wstore.resolve("lpips_alexnet", weights.get("lpips_alexnet"))
            from eval.lpips_metric import lpips_frames

            model = _model("lpips", rec.path, rec.sha256)
            info["weights"]["lpips_alexnet"] = rec.to_json()
            vals = [lpips_frames(model, pred_frames[s:s + 4], gt_frames[s:s + 4])
                    for s in tqdm(range(0, n, 4), desc="lpips", disable=not progress, unit="batch")]
            per_frame["lpips"] = np.concatenate(vals)
        except wstore.WeightsMissing as exc:
            missing["lpips"] = f"{exc}. Fix: {exc.fix}"
    sync_rec = None
    sync_wanted = [m for m in ("sync_conf", "sync_dist") if m in names]
    if sync_wanted:  # weights first: no landmark pass for a metric that will be missing anyway
        try:
            sync_rec = wstore.resolve("syncnet", weights.get("syncnet"))
        except wstore.WeightsMissing as exc:
            missing.update({m: f"{exc}. Fix: {exc.fix}" for m in sync_wanted})
    pred_lm = None
    if "lmd" in names or sync_rec is not None:
        from aebench.data.landmarks import LandmarkDetector

        pred_lm = LandmarkDetector().detect_many(pred_frames, progress=progress, desc="landmarks (pred)")
    if "lmd" in names:
        _lmd(pred_lm, gt_frames, progress, per_frame, summary, missing, info)
    if sync_rec is not None:
        _sync(pred_frames, fps, pred_lm, audio16k, sync_rec, sync_wanted, summary, missing, info, progress)

    for m in chosen:
        if m.name in missing:
            summary[m.name] = None
            warnings.warn(f"METRIC MISSING: {m.name}: {missing[m.name]}", stacklevel=2)
        elif m.name in per_frame and m.name not in summary:
            summary[m.name] = _mean(per_frame[m.name])
    summary = {m.name: summary.get(m.name) for m in chosen}
    rows = []
    for i in range(n):
        row: dict = {"frame": i}
        for k, v in per_frame.items():
            x = float(v[i])
            row[k] = None if math.isnan(x) else x
        rows.append(row)
    return EvalResult(summary, missing, rows, info)


def _lmd(pred_lm, gt_frames, progress, per_frame, summary, missing, info) -> None:
    from aebench.data.landmarks import LandmarkDetector
    from eval.lmd import lmd_frames

    gt_lm = LandmarkDetector().detect_many(gt_frames, progress=progress, desc="landmarks (gt)")
    vals = lmd_frames(pred_lm, gt_lm)
    ok = ~np.isnan(vals)
    info["lmd"] = {"resolution": info["resolution"], "units": "pixels of the evaluated resolution",
                   "frames_without_face": int((~ok).sum()),
                   "pred_without_face": int(np.isnan(pred_lm).any(axis=(1, 2)).sum()),
                   "gt_without_face": int(np.isnan(gt_lm).any(axis=(1, 2)).sum())}
    if ok.any():
        per_frame["lmd"] = vals
        summary["lmd"] = float(vals[ok].mean())
    else:
        missing["lmd"] = "dlib found no face in both prediction and ground truth in any frame"


def _versions() -> dict[str, str]:
    """Versions of the packages whose code defines the numbers."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("scikit-image", "lpips", "syncnet-python", "python-speech-features", "dlib-bin", "torch"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "absent"
    return out


@lru_cache(maxsize=4)
def _model(kind: str, path: str, sha256: str):
    """Networks built once per weights file (keyed by its hash) and reused across calls."""
    state = wstore.load_state_dict(path)
    if kind == "lpips":
        from eval.lpips_metric import build_lpips

        return build_lpips(state)
    from eval.sync import load_syncnet

    return load_syncnet(state)


def _sync(frames, fps, landmarks, audio16k, rec, wanted, summary, missing, info, progress=False) -> None:
    from eval import sync

    has_face = ~np.isnan(landmarks).any(axis=(1, 2))
    info["sync"] = {"frames_without_face": int((~has_face).sum()), "fps_in": float(fps),
                    "face_crop": "dlib-landmark box, S3FD-style crop (crop scale 0.4), 224x224"}
    if has_face.mean() < 0.5:
        for m in wanted:
            missing[m] = f"dlib found a face in only {int(has_face.sum())}/{len(has_face)} frames (need half)"
        return
    model = _model("syncnet", rec.path, rec.sha256)
    info["weights"]["syncnet"] = rec.to_json()
    boxes = sync.fill_missing(sync.boxes_from_landmarks(landmarks))
    crops = sync.crop_faces(frames, boxes)
    crops = sync.resample_to_25fps(crops, fps)
    try:
        offset, conf, dist = sync.sync_scores(crops, audio16k, model, progress=progress)
    except ValueError as exc:
        for m in wanted:
            missing[m] = str(exc)
        return
    info["sync"]["offset"] = offset
    info["sync"]["n_frames_25fps"] = int(len(crops))
    if "sync_conf" in wanted:
        summary["sync_conf"] = conf
    if "sync_dist" in wanted:
        summary["sync_dist"] = dist
