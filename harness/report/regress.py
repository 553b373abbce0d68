"""CI regression on metrics: compare a run's cells with a committed reference.

Reference file (``results/reference/smoke.json``)::

    {"protocol": "smoke", "scale": "smoke", "overrides": [...],
     "tolerances": {"psnr": 2.0},                          # optional: overrides of the registry's
     "tolerances_how": "...",                              # how they were derived (--noise-from)
     "spread": {"sd": {"psnr": 0.3}, "dof": {...}, "how": "..."},   # multi-seed references: the
                                                           # measured run-to-run noise (seed_spread)
     "cells": {"<row>|<identity>|<clip>|<iters>|<audio>|<seed>": {"psnr": 21.3, "lpips": null, ...}}}

A metric fails when it moved from the reference by more than its tolerance, in either direction:
an unexplained improvement is a change of the numbers too (after a deliberate one, regenerate the
reference with ``--write``); :class:`Finding` says which way (``worse`` or ``better``, judged by
the metric's direction; a metric without a better side, direction "target", ``changed``).
Tolerances and directions come from the metric registry (:mod:`aebench.eval.registry`); a
reference may override a tolerance for its protocol. Missing values (weights absent): missing in
both is not comparable (reported, not failed); present in the reference but missing now fails,
since a metric silently disappearing is a regression too; missing in the reference but present
now is reported as new. A reference cell absent from the run fails.

A check must compare something: a reference without cells, a reference value or tolerance that
is not a finite number (NaN, a string), a tolerance that is not positive, and a current value
that is not a finite number each raise :class:`BadReference` or fail, naming the cell and
metric; "N cells within tolerance" counts the cells that were compared.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from aebench.json_numbers import from_json, to_json


class BadReference(ValueError):
    """A reference file that cannot be compared with (the message names the field)."""


#: finding kinds that fail the check
FAILING = ("worse", "better", "changed", "missing-now", "cell-missing", "not-a-number")


@dataclass
class Finding:
    cell: str
    metric: str
    reference: float | None
    current: float | None
    kind: str  # "within" | "worse" | "better" | "changed" | "missing-now" | "cell-missing" | "not-a-number"
    #           | "not-comparable" | "new"
    tolerance: float | None = None

    @property
    def fails(self) -> bool:
        return self.kind in FAILING

    @property
    def deviation(self) -> float | None:
        """current - reference, where both are finite numbers."""
        if not (_number(self.reference) and _number(self.current)):
            return None
        return self.current - self.reference

    def __str__(self) -> str:
        if self.kind == "cell-missing":
            return f"{self.cell}: cell absent from the run"
        if self.kind == "not-a-number":
            return f"{self.cell}: {self.metric} is {self.current!r} in the run, not a finite number"
        if self.kind in ("worse", "better", "changed"):
            why = " (an unexplained improvement is a change too; after a deliberate one: --write)" if self.kind == "better" else ""
            return (
                f"{self.cell}: {self.metric} {self.kind} beyond its tolerance: reference {self.reference:.6g}, "
                f"now {self.current:.6g}, deviation {self.deviation:+.4g}, tolerance {self.tolerance:.4g}{why}"
            )
        return f"{self.cell}: {self.metric} {self.kind} (reference {self.reference}, now {self.current})"


def _number(v) -> bool:
    """A finite int or float (not a bool, NaN or an infinity)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def checked_tolerances(reference: dict) -> dict[str, float]:
    """The registry's tolerances with the reference's overrides, each a finite positive number
    (a :class:`BadReference` names the first that is not)."""
    from aebench.eval.registry import tolerances as registry_tolerances

    own = (reference.get("tolerances") if isinstance(reference, dict) else None) or {}
    if not isinstance(own, dict):
        raise BadReference(f"tolerances is a mapping metric -> number, got {own!r}")
    out = {**registry_tolerances(), **own}
    for metric, tol in out.items():
        if not _number(tol) or tol <= 0:
            where = "the reference's" if metric in own else "the registry's"
            raise BadReference(f"{where} tolerance of {metric} is {tol!r}: a tolerance is a finite number above 0")
    return out


def _compare_value(key: str, metric: str, ref, cur, tol: float, direction: str) -> Finding:
    ref, cur = from_json(ref), from_json(cur)
    if ref is None and cur is None:
        return Finding(key, metric, None, None, "not-comparable", tol)
    if ref is None:
        return Finding(key, metric, None, cur, "new", tol)
    if cur is None:
        return Finding(key, metric, ref, None, "missing-now", tol)
    if not _number(cur):
        return Finding(key, metric, ref, cur, "not-a-number", tol)
    dev = float(cur) - ref
    if abs(dev) <= tol:
        return Finding(key, metric, ref, cur, "within", tol)
    kind = "changed" if direction == "target" else ("better" if (dev > 0) == (direction == "higher") else "worse")
    return Finding(key, metric, ref, cur, kind, tol)


def check_reference(reference: dict, written: bool = False) -> None:
    """Refuse a reference that would compare nothing or compare with something that is not a
    number (``written``: the cells a ``--write`` is about to write, named as such)."""
    from aebench.eval.registry import METRICS

    cells = reference.get("cells") if isinstance(reference, dict) else None
    if not isinstance(cells, dict) or not cells:
        raise BadReference(
            "the run has no finished cells to write"
            if written
            else "the reference holds no cells: a check against it would compare nothing; write it from a run with --write"
        )
    which = "run" if written else "reference"
    for key, ref_metrics in cells.items():
        if not isinstance(ref_metrics, dict) or not ref_metrics:
            raise BadReference(f"{which} cell {key} holds no metrics")
        for metric, ref in ref_metrics.items():
            if metric not in METRICS:
                raise BadReference(
                    f"{which} metric {metric!r} of cell {key} is not a known metric "
                    f"({', '.join(METRICS)}); regenerate the reference with --write"
                )
            ref = from_json(ref)
            if ref is not None and not _number(ref):
                raise BadReference(
                    f"{which} value of {metric} in cell {key} is {ref!r}, not a finite number "
                    f"(null means missing)" + ("" if written else "; regenerate the reference with --write")
                )
            problem = METRICS[metric].check_value(ref) if ref is not None else None
            if problem:
                raise BadReference(
                    f"{which} value of {metric} in cell {key}: {problem}" + ("" if written else "; regenerate the reference with --write")
                )


def compare(reference: dict, current: dict[str, dict]) -> list[Finding]:
    """Findings of ``current`` (cell key -> metric summary) against ``reference``: one per
    (reference cell, metric), ``within`` included, so every deviation can be printed."""
    from aebench.eval.registry import METRICS

    check_reference(reference)
    tolerances = checked_tolerances(reference)
    findings = []
    for key, ref_metrics in reference["cells"].items():
        if key not in current:
            findings.append(Finding(key, "", None, None, "cell-missing"))
            continue
        now = current[key]
        for metric, ref in ref_metrics.items():
            findings.append(_compare_value(key, metric, ref, now.get(metric), float(tolerances[metric]), METRICS[metric].direction))
    return findings


def compared_cells(findings: list[Finding]) -> int:
    """How many cells had at least one metric compared (a number on both sides)."""
    return len({f.cell for f in findings if f.deviation is not None})


def deviation_summary(findings: list[Finding]) -> list[str]:
    """One line per metric: the largest deviation from the reference against its tolerance."""
    lines = []
    by_metric: dict[str, list[Finding]] = {}
    for f in findings:
        if f.deviation is not None:
            by_metric.setdefault(f.metric, []).append(f)
    for metric, fs in by_metric.items():
        worst = max(fs, key=lambda f: abs(f.deviation))
        tol = worst.tolerance
        lines.append(
            f"{metric}: largest |deviation| {abs(worst.deviation):.4g} of tolerance {tol:.4g} "
            f"({abs(worst.deviation) / tol:.0%}; {worst.cell}; {len(fs)} cells)"
        )
    return lines


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
    return {"sd": sd, "dof": dof, "how": f"pooled sd between seeds within each of {points} (row, target) points, {seeds} seeds each"}


def tolerances_from(noise_reference: Path) -> tuple[dict, str]:
    """Regression tolerances derived from the seed spread of another reference (``Z95 * sqrt(2) * sd``
    per metric with a measured spread), and the sentence saying how."""
    ref = read_reference(noise_reference)
    spread = (ref.get("spread") or {}).get("sd") or {}
    if not spread:
        raise ValueError(
            f"{noise_reference} holds no measured seed spread (write it from a protocol with "
            f"several seeds: aebench regress --write --protocol NAME)"
        )
    tol = {m: Z95 * math.sqrt(2.0) * v for m, v in spread.items() if v is not None and v > 0}  # 0: no spread measured
    how = (
        f"{Z95:.2f} x sqrt(2) x the seed standard deviation measured by {Path(noise_reference).name} "
        f"(protocol {ref['protocol']}: {ref['spread']['how']}): two single runs differing only in the seed differ "
        f"by less than this 95% of the time; metrics without a measured spread keep the registry's tolerance"
    )
    return tol, how


def write_reference(
    path: Path,
    protocol: str,
    scale: str,
    overrides: list[str],
    current: dict[str, dict],
    tolerances: dict | None = None,
    tolerances_how: str | None = None,
) -> None:
    from aebench.harness.protocol.run_store import write_json

    extra = {"tolerances": dict(tolerances)} if tolerances else {}
    check_reference({"cells": current}, written=True)  # never write what a check would refuse
    checked_tolerances(extra)
    if tolerances_how:
        extra["tolerances_how"] = tolerances_how
    spread = seed_spread(current)
    if spread:
        extra["spread"] = spread
    write_json(
        path,
        {
            "protocol": protocol,
            "scale": scale,
            "overrides": list(overrides),
            **extra,
            "how_to_update": f"aebench regress --reference {path} --write",
            "cells": {k: {m: to_json(v) for m, v in s.items()} for k, s in sorted(current.items())},
        },
    )


def reference_path(protocol: str) -> Path:
    """Where the committed reference of ``protocol`` lives (:func:`aebench.paths.reference_dir`)."""
    from aebench.paths import reference_dir

    return reference_dir() / f"{protocol}.json"


def read_reference(path: Path) -> dict:
    """A reference file as a dict with at least ``protocol`` (a :class:`BadReference` naming the
    file when it is not JSON or not a reference)."""
    from aebench.json_numbers import JSONFileError, read_json

    if not Path(path).exists():
        raise FileNotFoundError(f"no reference at {path}; create one with `aebench regress --reference {path} --write`")
    try:
        ref = read_json(path, "reference")
    except JSONFileError as exc:
        raise BadReference(str(exc)) from exc
    if not isinstance(ref, dict) or not isinstance(ref.get("protocol"), str):
        raise BadReference(f"{path} is not a reference (a JSON object with protocol, cells, ...)")
    return ref
