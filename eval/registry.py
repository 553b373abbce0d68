"""The metric registry: the one place a metric is described.

Each metric is one module under ``eval/metrics/`` that defines ``METRICS``, a list of
:class:`Metric` (usually one; metrics computed in one pass, like SyncNet's LSE-C and LSE-D,
share a module and a ``group``). The module's docstring is the recipe and its reference.
:func:`evaluate` computes from here, and tables, plots and ``aebench regress`` read labels,
directions and tolerances from here. Adding a built-in metric: one module plus one line in
:data:`MODULES`. A metric of another installed package registers through the entry-point
group ``aebench.metrics`` (``name = "package.module"``, a module defining ``METRICS`` the same
way); it is computed after the built-in ones. A metric's ``family`` names a set protocols
list by its name (``metrics: [paper, theval]``, :func:`expand`).

Importing the registry imports the metric modules, which import no torch/dlib at module
level (their compute functions do).
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: the metric modules, in the order they are computed (landmark metrics before sync, which reuses landmarks)
MODULES = (
    "aebench.eval.metrics.psnr",
    "aebench.eval.metrics.ssim",
    "aebench.eval.metrics.lpips_alex",
    "aebench.eval.metrics.lmd",
    "aebench.eval.metrics.lmd_dlib",
    "aebench.eval.metrics.lip_sync_dlib",
    "aebench.eval.metrics.silent_lip_dlib",
    "aebench.eval.metrics.lip_dyn_dlib",
    "aebench.eval.metrics.brow_dyn_dlib",
    "aebench.eval.metrics.sync",
)
#: which side of a metric is better: "target" has none by itself (THEval's dynamics metrics,
#: judged by closeness to the ground truth); regressions on it are two-sided
DIRECTIONS = {"higher": "↑", "lower": "↓", "target": "≈"}


@dataclass
class Value:
    """What a compute function returns for one metric: per-frame values (NaN = no value for
    that frame) and/or a summary, or the reason it is missing."""

    per_frame: np.ndarray | None = None
    summary: float | None = None
    missing: str | None = None


@dataclass
class Context:
    """Inputs of one evaluation, shared by every metric's compute function.

    ``pred``/``gt`` :class:`aebench.eval.frames.FrameSource` (gt None when cross-driven), read as
    streams so long videos stay within bounded memory (iterate :meth:`pairs` or
    :meth:`frames`, never hold a whole clip); ``audio`` float32 16 kHz mono or None;
    ``weights`` resolved weight records by store name; ``info`` the evaluation's record (each
    metric adds its own section); ``cache`` shared intermediate results (e.g. landmarks,
    computed once per frame per run for every landmark metric).
    """

    pred: Any
    gt: Any | None
    audio: np.ndarray | None
    fps: float
    weights: dict[str, Any] = field(default_factory=dict)
    progress: bool = False
    info: dict = field(default_factory=dict)
    cache: dict = field(default_factory=dict)
    explicit: dict[str, str] = field(default_factory=dict)  # weights files the user named (NAME -> PATH)
    source: str | None = None  # the prediction's video file when it was given as one (scored as given)

    @property
    def n(self) -> int:
        return len(self.pred)

    @property
    def hw(self) -> tuple[int, int]:
        return self.pred.hw

    def frames(self, which: str = "pred", desc: str | None = None):
        """The frames of ``pred`` or ``gt``, one at a time (with a progress bar when asked)."""
        from tqdm import tqdm

        src = self.pred if which == "pred" else self.gt
        return tqdm(src, total=len(src), desc=desc or which, unit="frame", disable=not (self.progress and desc))

    def pairs(self, desc: str | None = None):
        """(pred, gt) frame pairs, one at a time."""
        from tqdm import tqdm

        return tqdm(zip(self.pred, self.gt), total=self.n, desc=desc, unit="frame", disable=not (self.progress and desc))

    def resolve_weights(self, name: str):
        """The record of weights ``name`` (the user's file, else the verified store copy),
        recorded in ``info["weights"]``; raises ``aebench.weights.WeightsMissing`` when absent."""
        from aebench import weights as wstore

        if name not in self.weights:
            self.weights[name] = wstore.resolve(name, self.explicit.get(name))
            self.info.setdefault("weights", {})[name] = self.weights[name].to_json()
        return self.weights[name]

    def optional_weights(self, name: str):
        """The record of weights a metric can use but does not need; None when absent."""
        from aebench import weights as wstore

        try:
            return self.resolve_weights(name)
        except wstore.WeightsMissing:
            return None

    def landmarks(self, which: str) -> np.ndarray:
        """dlib 68-point landmarks (n, 68, 2) of ``pred`` or ``gt`` (NaN rows: no face), computed once."""
        key = f"dlib_landmarks_{which}"
        if key not in self.cache:
            from aebench.data.landmarks import LandmarkDetector

            self.cache[key] = LandmarkDetector().detect_many(self.frames(which, f"landmarks ({which})"))
        return self.cache[key]


Compute = Callable[[Context, list[str]], dict[str, Value]]
#: the distributions behind :meth:`Context.landmarks` (dlib and its 68-point model): a landmark metric's packages
LANDMARK_PACKAGES = ("dlib-bin", "face-recognition-models")


def parallel_map(fn: Callable, items, workers: int | None = None, ahead: int = 2) -> list:
    """``[fn(x) for x in items]`` on a thread pool, in order, holding at most ``workers * ahead``
    items at once (``items`` may stream a long video). For per-frame work in numpy/OpenCV,
    which release the GIL; ``workers`` defaults to the CPUs this process may use."""
    import os
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    workers = workers or max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
    if workers == 1:
        return [fn(x) for x in items]
    out, pending = [], deque()
    with ThreadPoolExecutor(workers) as pool:
        for x in items:
            pending.append(pool.submit(fn, x))
            if len(pending) >= workers * ahead:
                out.append(pending.popleft().result())
        out.extend(f.result() for f in pending)
    return out


@dataclass(frozen=True)
class Metric:
    name: str
    direction: str  # "higher" | "lower" | "target" (no better side; see DIRECTIONS)
    label: str  # column label in tables and plots (a labelled variant says so, e.g. "LMD (dlib)")
    tolerance: float  # absolute tolerance of `aebench regress` (a worse value beyond it fails)
    compute: Compute  # computes every metric of its group: compute(ctx, names) -> {name: Value}
    needs_gt: bool = False
    needs_audio: bool = False
    weights: tuple[str, ...] = ()  # weights-store names it needs (missing weights -> missing metric)
    optional_weights: tuple[str, ...] = ()  # weights-store names it uses when present (else a labelled variant)
    packages: tuple[str, ...] = ()  # the distributions whose code defines its numbers (versions recorded per evaluation)
    #: whether an evaluation (its ``info``) computed this metric by a labelled variant of the recipe
    #: (marked ‡ in tables); None: the metric has no variant
    variant: Callable[[dict], bool] | None = None
    variant_note: str = ""  # what the variant is, for the footnote of a table that marks it
    group: str = ""  # metrics computed in one call share a group (default: the name)
    per_frame: bool = True
    recipe: str = ""  # the module whose docstring is the recipe (set by the registry)
    family: str = ""  # a named set protocols list by its name: "paper" (the paper's metrics) | "theval" | a plugin's
    min_frames: int = 0  # what the recipe needs of a render: at least this many frames (0: nothing)
    min_face_px: int = 0  # ... and faces at least this large (the larger side of the face box, in pixels)
    needs_source: str = ""  # where those needs come from (e.g. the reference pipeline's option names)
    #: the closed interval the recipe's values lie in: evaluate, validate and regress refuse a value outside it
    #: (or not finite) as a wrong number, never print it
    value_range: tuple[float, float] = (-math.inf, math.inf)

    def check_value(self, v) -> str | None:
        """Why ``v`` cannot be a value of this metric (not a finite number in :attr:`value_range`), else None."""
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return f"{v!r} is not a number"
        if not math.isfinite(v):
            return f"{v} is not a finite number"
        lo, hi = self.value_range
        if not lo <= v <= hi:
            return f"{v:g} is outside the range of {self.label} [{lo:g}, {hi:g}]"
        return None

    @property
    def better(self) -> str:
        return DIRECTIONS[self.direction]

    @property
    def key(self) -> str:
        return self.group or self.name


#: the entry-point group of metric plugins
METRIC_GROUP = "aebench.metrics"


def _modules() -> list[tuple[str, Any]]:
    """(name, module) of the built-in metric modules, then those of installed plugins."""
    from importlib.metadata import entry_points

    mods = [(name, importlib.import_module(name)) for name in MODULES]
    for ep in sorted(entry_points(group=METRIC_GROUP), key=lambda e: e.name):
        try:
            mods.append((ep.value, ep.load()))
        except Exception as exc:  # a broken plugin must not take the built-in metrics down
            import warnings

            warnings.warn(f"metric plugin {ep.name} ({ep.value}) cannot be loaded and is left out: {exc}", stacklevel=2)
    return mods


def _load() -> dict[str, Metric]:
    out: dict[str, Metric] = {}
    for mod_name, mod in _modules():
        if not isinstance(getattr(mod, "METRICS", None), list):
            raise RuntimeError(f"metric module {mod_name} defines no METRICS list")
        for m in mod.METRICS:
            if m.name in out:
                raise RuntimeError(f"metric {m.name} registered twice ({out[m.name].recipe}, {mod_name})")
            if m.direction not in DIRECTIONS:
                raise RuntimeError(f"metric {m.name}: direction must be one of {', '.join(DIRECTIONS)}")
            out[m.name] = Metric(**{**m.__dict__, "recipe": mod_name})
    return out


METRICS: dict[str, Metric] = _load()


def families() -> dict[str, list[str]]:
    """Metric families (a named set of metrics): family -> its metrics, in registry order."""
    out: dict[str, list[str]] = {}
    for name, m in METRICS.items():
        if m.family:
            out.setdefault(m.family, []).append(name)
    return out


def expand(names: list[str]) -> list[str]:
    """Metric names, each family name replaced by its metrics (registry order, no repeats);
    a ValueError naming the known metrics and families for anything else."""
    fams = families()
    out: list[str] = []
    for n in names:
        for m in fams.get(n, [n]):
            if m not in METRICS:
                raise ValueError(f"unknown metric {m!r}; known: {', '.join(METRICS)}; families: {', '.join(fams)}")
            if m not in out:
                out.append(m)
    return out


def packages_of(names) -> tuple[str, ...]:
    """The distributions whose code defines the numbers of metrics ``names`` (registry order, no repeats)."""
    return tuple(dict.fromkeys(p for n in names if n in METRICS for p in METRICS[n].packages))


def weights_of(name: str) -> tuple[str, ...]:
    """Every weights-store name metric ``name`` reads, needed or optional."""
    m = METRICS.get(name)
    return (*m.weights, *m.optional_weights) if m else ()


def tolerances() -> dict[str, float]:
    """Regression tolerance of every metric."""
    return {n: m.tolerance for n, m in METRICS.items()}


def select(names: list[str] | None, have_gt: bool, have_audio: bool) -> list[Metric]:
    """The metrics to compute: all computable ones when ``names`` is None, else exactly
    ``names`` (an unknown name, or one whose inputs are absent, is an error)."""
    if names is None:
        return [m for m in METRICS.values() if (have_gt or not m.needs_gt) and (have_audio or not m.needs_audio)]
    out = []
    for n in names:
        if n not in METRICS:
            raise ValueError(f"unknown metric {n!r}; known: {', '.join(METRICS)}")
        m = METRICS[n]
        if m.needs_gt and not have_gt:
            no_gt = ", ".join(k for k, v in METRICS.items() if not v.needs_gt)
            raise ValueError(f"metric {n} needs ground truth (--gt); without it only {no_gt} apply")
        if m.needs_audio and not have_audio:
            raise ValueError(f"metric {n} needs audio: pass --audio WAV, or a prediction video with an audio track")
        out.append(m)
    return sorted(out, key=lambda m: list(METRICS).index(m.name))
