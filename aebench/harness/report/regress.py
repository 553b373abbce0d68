"""CI regression on metrics: compare a run's cells with a committed reference.

Reference file (``results/reference/smoke.json``)::

    {"protocol": "smoke", "scale": "smoke", "overrides": [...],
     "tolerances": {"psnr": 2.0},                          # optional: overrides of the registry's
     "tolerances_how": "...",                              # how they were derived (--noise-from)
     "spread": {"sd": {"psnr": 0.3}, "dof": {...}, "how": "..."},   # multi-seed references: the
                                                           # measured run-to-run noise (seed_spread)
     "cells": {"<row>|<identity>|<clip>|<iters>|<audio>|<seed>": {"psnr": 21.3, "lpips": null, ...}}}

A metric fails when it is worse than the reference by more than its tolerance, in the
metric's own direction (a metric without a better side, direction "target", when it moved
by more than its tolerance either way). Tolerances and directions come from the metric registry
(:mod:`aebench.eval.registry`); a reference may override a tolerance for its protocol. Missing values (weights absent): missing in both is not
comparable (reported, not failed); present in the reference but missing now fails, since
a metric silently disappearing is a regression too; missing in the reference but present
now is reported as new. A reference cell absent from the run fails.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from aebench.json_numbers import from_json, to_json


@dataclass
class Finding:
    cell: str
    metric: str
    reference: float | None
    current: float | None
    kind: str  # "worse" | "missing-now" | "cell-missing" | "not-comparable" | "new"

    @property
    def fails(self) -> bool:
        return self.kind in ("worse", "missing-now", "cell-missing")

    def __str__(self) -> str:
        if self.kind == "cell-missing":
            return f"{self.cell}: cell absent from the run"
        return f"{self.cell}: {self.metric} {self.kind} (reference {self.reference}, now {self.current})"


def compare(reference: dict, current: dict[str, dict]) -> list[Finding]:
    """Findings of ``current`` (cell key -> metric summary) against ``reference``."""
    from aebench.eval.registry import METRICS, tolerances as registry_tolerances

    tolerances = {**registry_tolerances(), **reference.get("tolerances", {})}
    findings = []
    for key, ref_metrics in reference["cells"].items():
        if key not in current:
            findings.append(Finding(key, "", None, None, "cell-missing"))
            continue
        now = current[key]
        for metric, ref in ref_metrics.items():
            if metric not in METRICS:
                raise ValueError(f"reference metric {metric!r} is not a known metric ({', '.join(METRICS)}); "
                                 f"regenerate the reference with --write")
            ref, cur = from_json(ref), from_json(now.get(metric))
            if ref is None and cur is None:
                findings.append(Finding(key, metric, None, None, "not-comparable"))
            elif ref is None:
                findings.append(Finding(key, metric, None, cur, "new"))
            elif cur is None:
                findings.append(Finding(key, metric, ref, None, "missing-now"))
            else:
                tol = float(tolerances[metric])
                direction = METRICS[metric].direction
                if math.isinf(ref) and math.isinf(cur) and (ref > 0) == (cur > 0):
                    continue
                worse = {"higher": cur < ref - tol, "lower": cur > ref + tol, "target": abs(cur - ref) > tol}[direction]
                if worse:
                    findings.append(Finding(key, metric, ref, cur, "worse"))
    return findings


def summaries(cell_dirs: dict[str, Path]) -> dict[str, dict]:
    """cell key -> metric summary, for finished cell directories."""
    from aebench.eval.api import read_metrics

    return {key: read_metrics(d)["summary"] for key, d in cell_dirs.items() if (d / "done").exists()}


#: a tolerance derived from a measured seed spread ``sd``: ``Z95 * sqrt(2) * sd`` is the bound the
#: difference of two single runs that differ only in their seed stays within 95% of the time
#: (each run's value carries the seed noise once), so a code change CI flags is one a reseed
#: would rarely produce
Z95 = 1.959963984540054


def seed_spread(current: dict[str, dict]) -> dict | None:
    """The run-to-run noise of a multi-seed reference: per metric, the pooled standard deviation
    between seeds within each (row, target, grid point) (:func:`aebench.harness.report.stats.pooled_sd`);
    None when no grid point has two seeds."""
    from aebench.harness.report.stats import pooled_sd

    groups: dict[str, list[dict]] = {}
    for key, summary in current.items():
        groups.setdefault(key.rsplit("|", 1)[0], []).append(summary)  # the key without its seed
    if not any(len(g) > 1 for g in groups.values()):
        return None
    metrics = list(dict.fromkeys(m for g in groups.values() for s in g for m in s))
    sd, dof = {}, {}
    for m in metrics:
        sd[m], dof[m] = pooled_sd([[from_json(s.get(m)) for s in g] for g in groups.values()])
    points = sum(len(g) > 1 for g in groups.values())
    seeds = max(len(g) for g in groups.values())
    return {"sd": sd, "dof": dof,
            "how": f"pooled sd between seeds within each of {points} (row, target) points, {seeds} seeds each"}


def tolerances_from(noise_reference: Path) -> tuple[dict, str]:
    """Regression tolerances derived from the seed spread of another reference (``Z95 * sqrt(2) * sd``
    per metric with a measured spread), and the sentence saying how."""
    ref = read_reference(noise_reference)
    spread = (ref.get("spread") or {}).get("sd") or {}
    if not spread:
        raise ValueError(f"{noise_reference} holds no measured seed spread (write it from a protocol with "
                         f"several seeds: aebench regress --write --protocol NAME)")
    tol = {m: Z95 * math.sqrt(2.0) * v for m, v in spread.items() if v is not None}
    how = (f"{Z95:.2f} x sqrt(2) x the seed standard deviation measured by {Path(noise_reference).name} "
           f"(protocol {ref['protocol']}: {ref['spread']['how']}): two single runs differing only in the seed differ "
           f"by less than this 95% of the time; metrics without a measured spread keep the registry's tolerance")
    return tol, how


def write_reference(path: Path, protocol: str, scale: str, overrides: list[str], current: dict[str, dict],
                    tolerances: dict | None = None, tolerances_how: str | None = None) -> None:
    from aebench.harness.protocol.run_store import write_json

    extra = {"tolerances": dict(tolerances)} if tolerances else {}
    if tolerances_how:
        extra["tolerances_how"] = tolerances_how
    spread = seed_spread(current)
    if spread:
        extra["spread"] = spread
    write_json(path, {"protocol": protocol, "scale": scale, "overrides": list(overrides), **extra,
                      "how_to_update": f"aebench regress --reference {path} --write",
                      "cells": {k: {m: to_json(v) for m, v in s.items()}
                                for k, s in sorted(current.items())}})


def reference_path(protocol: str) -> Path:
    """Where the committed reference of ``protocol`` lives (:func:`aebench.paths.reference_dir`)."""
    from aebench.paths import reference_dir

    return reference_dir() / f"{protocol}.json"


def read_reference(path: Path) -> dict:
    if not Path(path).exists():
        raise FileNotFoundError(f"no reference at {path}; create one with `aebench regress --reference {path} --write`")
    return json.loads(Path(path).read_text())
