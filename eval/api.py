"""``evaluate``: score a prediction (against ground truth, and/or its driving audio).

A metric that cannot be computed (weights absent, no face found) is *missing*: ``None``
in ``summary`` with the reason and the fixing command in ``missing``, announced with a
warning. It is never replaced by 0 or by another network.
"""

from __future__ import annotations

import csv
import json
import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from aebench import weights as wstore
from aebench.atomic import atomic_files
from aebench.json_numbers import from_json, to_json
from aebench.provenance import peak_memory, provenance, sha256_frames
from aebench.eval.frames import align as align_frames
from aebench.eval.frames import FrameSource, load_audio
from aebench.eval.frames import pair_by_number as pair_frames_by_number
from aebench.eval.registry import METRICS, Context, packages_of, select
from aebench.media import AUDIO_RATE


@dataclass
class EvalResult:
    summary: dict[str, float | None]
    missing: dict[str, str] = field(default_factory=dict)
    frames: list[dict] = field(default_factory=list)
    info: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"summary": {k: _json_num(v) for k, v in self.summary.items()}, "missing": dict(self.missing), "info": self.info}

    def hashes(self) -> dict:
        """What this evaluation scored, as sha256: ``pred`` and ``gt`` frames, and each weights file."""
        return {**self.info.get("sha256", {}), "weights": {w: r.get("sha256") for w, r in self.info.get("weights", {}).items()}}

    def write(self, out_dir) -> None:
        """``metrics.json`` (summary, missing, info) and ``frames.csv``, both written to temporary
        files first and renamed together: a failure (a full disk) leaves neither, never a summary
        without its frames."""
        out = Path(out_dir)
        cols = ["frame"] + [m for m in METRICS if any(m in r for r in self.frames)]
        with atomic_files(out / "frames.csv", out / "metrics.json") as (frames_tmp, metrics_tmp):
            with open(frames_tmp, "w", newline="") as fh:
                w = csv.writer(fh)
                w.writerow(cols)
                for r in self.frames:
                    w.writerow([_csv_num(r.get(c)) for c in cols])
            metrics_tmp.write_text(json.dumps(self.to_json(), indent=2, allow_nan=False) + "\n")


def read_metrics(out_dir) -> dict:
    """``metrics.json`` back (``"inf"`` strings as floats); a damaged file is a ``JSONFileError``
    naming it. A value of a registered metric that fails the metric's check (not a finite number
    in its range, e.g. the infinite PSNR of a cell scored before PSNR was capped) is refused: it
    becomes missing, with the reason in ``missing``, never a number a table shows."""
    from aebench.eval.registry import METRICS
    from aebench.json_numbers import JSONFileError, read_json

    path = Path(out_dir) / "metrics.json"
    d = read_json(path, "metrics record")
    if not isinstance(d, dict) or not isinstance(d.get("summary"), dict):
        raise JSONFileError(f"metrics record {path} has no summary object; re-create it with `aebench rescore`")
    d["summary"] = {k: from_json(v) for k, v in d["summary"].items()}
    missing = d.setdefault("missing", {})
    if not isinstance(missing, dict):
        raise JSONFileError(f"metrics record {path}: missing is not an object; run the cell again")
    for name, v in d["summary"].items():
        problem = METRICS[name].check_value(v) if name in METRICS and v is not None else None
        if problem:
            d["summary"][name] = None
            missing[name] = (
                f"its stored value was refused as a wrong number ({name} = {problem}, {path}); run the cell again to score it anew"
            )
    return d


def read_frames(out_dir) -> list[dict]:
    """``frames.csv`` back as one dict per frame (empty cells: None; ``"inf"``: float)."""
    path = Path(out_dir) / "frames.csv"
    if not path.exists():
        return []
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    return [{k: (int(v) if k == "frame" else (None if v == "" else float(from_json(v)))) for k, v in r.items()} for r in rows]


def _json_num(v):
    return None if v is None else to_json(float(v))


def _csv_num(v):
    v = to_json(v)
    return "" if v is None else v


def _mean(values: np.ndarray) -> float:
    """Mean of per-frame values; NaN when there are none or one is NaN (a recipe that skips frames
    without a value computes its own summary), then refused by the metric's value check."""
    v = np.asarray(values, dtype=np.float64)
    return float(np.mean(v)) if v.size else float("nan")


def evaluate(
    pred,
    gt=None,
    audio=None,
    metrics=None,
    weights=None,
    progress: bool = True,
    align: str = "strict",
    resize: bool = False,
    fps: float | None = None,
    pair_by_number: bool = False,
) -> EvalResult:
    """Score ``pred`` (video path, frame folder, uint8 (n, H, W, 3) array or :class:`FrameSource`),
    streaming its frames (memory stays bounded on long videos).

    ``gt``: same kinds, or None (cross-driven: only the metrics that need no ground truth).
    ``audio``: wav/mp4 path or float32 16 kHz mono array; default the prediction video's own
    audio track. ``metrics``: names, or None for every metric computable from the inputs.
    ``weights``: ``{"syncnet": PATH, "lpips_alexnet": PATH}`` explicit files (recorded with
    their sha256, marked unofficial unless the hash is the official one). ``align``: "strict"
    refuses unequal frame counts, "truncate" trims to the shorter. ``resize``: score a
    prediction of another size after resizing it to the ground truth's (recorded); refused
    otherwise. ``fps``: the frame rate of frame folders and arrays (videos carry their own).
    ``pair_by_number``: ``pred`` and ``gt`` are frame folders whose frames are paired by the
    number in their names (only numbers in both; recorded in ``info["paired_by_number"]``),
    instead of by position, which refuses a gap in a folder's numbering.

    Every metric is described and computed by its module in the registry (:mod:`aebench.eval.registry`).
    ``info`` records what was scored (``sha256`` of the prediction's and ground truth's frames),
    the weights used (with their sha256) and ``provenance`` (code version, the computed metrics' packages'
    versions, machine, ``eval_s`` wall time and ``peak_memory``: :mod:`aebench.provenance`).
    """
    t0 = time.perf_counter()
    with peak_memory() as mem:
        result = _score(pred, gt, audio, metrics, weights, progress, align, resize, fps, pair_by_number)
    result.info["provenance"] = {
        **provenance(packages=packages_of(result.summary)),
        "eval_s": time.perf_counter() - t0,
        "peak_memory": mem.to_json(),
    }
    return result


def _score(pred, gt, audio, metrics, weights, progress, align, resize, fps, pair_by_number=False) -> EvalResult:
    weights = dict(weights or {})
    unknown = set(weights) - set(wstore.manifest())
    if unknown:
        raise ValueError(f"unknown weights {sorted(unknown)}; known: {', '.join(wstore.manifest())}")
    check_fps(fps)
    paired = None  # the record of frames paired by number, when asked
    if pair_by_number:
        pred_src, paired_gt, paired = pair_frames_by_number(pred, gt, fps)
    else:
        pred_src = FrameSource.of(pred, fps)
    audio16k, audio_src = load_audio(audio, pred)
    chosen = select(list(metrics) if metrics is not None else None, gt is not None, audio16k is not None)
    info: dict = {
        "n_frames": len(pred_src),
        "resolution": [int(pred_src.hw[1]), int(pred_src.hw[0])],
        "fps": pred_src.fps,
        "audio": audio_src,
        "metrics": [m.name for m in chosen],
        "recipes": {m.name: m.recipe for m in chosen},
        "weights": {},
    }
    if paired is not None:
        info["paired_by_number"] = paired
    n_given = len(pred_src)
    short_audio = None  # why the audio metrics cannot be computed, when the audio ends before the video
    if audio16k is not None and any(m.needs_audio for m in chosen):
        covered = int(np.floor(len(audio16k) / AUDIO_RATE * pred_src.fps + 1e-6))  # whole frames the audio covers
        if covered < len(pred_src) - 1:  # one frame of slack (a render's last frame may outlast its audio)
            why = (
                f"the audio ({len(audio16k) / AUDIO_RATE:.2f} s) ends before the prediction "
                f"({len(pred_src) / pred_src.fps:.2f} s, {len(pred_src)} frames): its last frames would be scored as silence"
            )
            if align == "truncate" and covered > 0:
                pred_src = pred_src.limit(covered)
                info["truncated_to_audio"] = {"pred": n_given, "to": covered, "why": why}
                warnings.warn(f"{why}; scoring the {covered} frames the audio covers", stacklevel=2)
            else:
                short_audio = why + (
                    f"; pass align='truncate' (CLI --align truncate) to score only the {covered} frames the audio covers"
                    if covered > 0
                    else ""
                )
                info["audio_too_short"] = short_audio
    info["n_frames"] = len(pred_src)
    gt_src = None
    if gt is not None and any(m.needs_gt for m in chosen):
        gt_given = paired_gt if paired is not None else FrameSource.of(gt, fps)
        pred_src, gt_src, ainfo = align_frames(pred_src, gt_given, align, resize=resize)
        info.update(ainfo)
        info["n_frames"] = len(pred_src)
        info["resolution"] = [int(gt_src.hw[1]), int(gt_src.hw[0])]
    info["sha256"] = {
        which: (sha256_frames(src) if src is not None else None)  # what was scored, pixel for pixel
        for which, src in (("pred", pred_src), ("gt", gt_src))
    }
    for which, src in (("pred", pred_src), ("gt", gt_src)):
        if src is not None and src.notes:  # e.g. damaged last frames of a truncated file, dropped
            info[f"{which}_source"] = dict(src.notes)
    # a video file is scored as given (sync's reference pipeline reads the file) unless it was cut
    source = str(pred) if isinstance(pred, (str, Path)) and Path(pred).is_file() and len(pred_src) == n_given else None
    ctx = Context(pred=pred_src, gt=gt_src, audio=audio16k, fps=pred_src.fps, progress=progress, info=info, explicit=weights, source=source)
    per_frame: dict[str, np.ndarray] = {}
    summary: dict[str, float | None] = {}
    missing: dict[str, str] = {}
    groups: dict[str, list] = {}
    for m in chosen:
        groups.setdefault(m.key, []).append(m)
    for members in groups.values():
        names = [m.name for m in members]
        if short_audio and any(m.needs_audio for m in members):
            missing.update({n: short_audio for n in names})
            continue
        not_in_time = _not_a_continuous_clip(members, paired)
        if not_in_time:
            missing.update({n: not_in_time for n in names})
            continue
        try:  # weights first: no expensive pass for a metric that will be missing anyway
            for wname in dict.fromkeys(w for m in members for w in m.weights):
                ctx.resolve_weights(wname)
        except wstore.WeightsMissing as exc:
            missing.update({n: f"{exc}. Fix: {exc.fix}" for n in names})
            continue
        for name, value in members[0].compute(ctx, names).items():
            if value.per_frame is not None:
                per_frame[name] = np.asarray(value.per_frame, dtype=np.float64)
            if value.missing is not None:
                missing[name] = value.missing
            elif value.summary is not None:
                summary[name] = float(value.summary)
            elif value.per_frame is not None:
                summary[name] = _mean(per_frame[name])
    for m in chosen:
        problem = (
            None
            if m.name in missing
            else (
                _frame_problem(m, per_frame.get(m.name))
                or (m.check_value(summary[m.name]) if summary.get(m.name) is not None else "no value and no reason")
            )
        )
        if problem:  # a wrong number is worse than a missing one
            missing[m.name] = f"its recipe gave a value that cannot be right ({problem}); refused, not reported"
        if m.name in missing:
            summary[m.name] = None
            per_frame.pop(m.name, None)  # nor its frames
            warnings.warn(f"METRIC MISSING: {m.name}: {missing[m.name]}", stacklevel=2)
    summary = {m.name: summary.get(m.name) for m in chosen}
    rows = []
    for i in range(ctx.n):
        row: dict = {"frame": i}
        for k, v in per_frame.items():
            x = float(v[i])
            row[k] = None if math.isnan(x) else x
        rows.append(row)
    return EvalResult(summary, missing, rows, info)


def _frame_problem(metric, values: np.ndarray | None) -> str | None:
    """Why ``metric``'s per-frame values cannot be right (the first that is infinite or out of
    its range, NaN being "no value for that frame"), else None."""
    if values is None:
        return None
    for i, v in enumerate(np.asarray(values, dtype=np.float64)):
        problem = None if math.isnan(v) else metric.check_value(float(v))
        if problem:
            return f"frame {i}: {problem}"
    return None


def check_fps(fps) -> None:
    """Refuse a frame rate that is not a positive finite number, before any frame is read (a NaN
    rate would be compared, recorded and written only after the whole scoring)."""
    if fps is None:
        return
    try:
        ok = math.isfinite(float(fps)) and float(fps) > 0
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"fps must be a positive, finite number of frames per second, got {fps!r}")


def _not_a_continuous_clip(members, paired: dict | None) -> str | None:
    """Why metrics over time cannot be computed on frames paired by number, else None: pairs
    with gaps would join moments that are not neighbours, and the audio starts at the
    prediction's first frame, so audio metrics also need the pairs to start there."""
    if paired is None:
        return None
    over_time = any(m.needs_audio or not m.per_frame for m in members)
    if over_time and not paired["consecutive"]:
        return (
            "the frames paired by number are not consecutive (pred_only/gt_only in info['paired_by_number']): "
            "a metric over time would join moments that are not neighbours"
        )
    if any(m.needs_audio for m in members) and not paired["from_pred_start"]:
        return (
            "the frames paired by number do not start at the prediction's first frame, where the audio starts: "
            "the audio would be scored against other moments"
        )
    return None
