"""Time a whole protocol run with different launcher settings, side by side, into one JSON.

    python tools/workers_bench.py --protocol real_quick --repeats 2 \
        --variant "1 worker x 2 threads=threads=2 workers=1" \
        --variant "2 workers x 1 thread=threads=1 workers=2" \
        --out docs/speed/workers_real_quick.json --keep /tmp/workers_bench

Each variant runs ``aebench run protocol=P <its settings> --runs <fresh store>`` ``--repeats``
times, the variants in turn and in mirrored order (A B B A ...), so a machine whose speed
drifts weighs on both alike. Each run starts from an empty run store (base models, fine-tunes,
renders and scoring all counted) and shares only the prepared clips. Recorded per run: wall
seconds, the CPU seconds of the run's processes (user + sys, from the kernel's accounting of
finished children) and its exit status; per variant: the runs' min, median and max; between
the first variant and each other: the per-pair ratios of wall time. The JSON also records the
machine (cores, CPU model, load average before each run) and the code version.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from aebench.harness.protocol.pool import machine_cores
from aebench.provenance import code_version, machine


def parse_variant(text: str) -> tuple[str, list[str]]:
    """``LABEL=key=value key=value``: the label, then the run's words."""
    label, _, words = text.partition("=")
    if not words:
        raise SystemExit(f"--variant wants LABEL=key=value ...; got {text!r}")
    return label.strip(), words.split()


def one_run(protocol: str, words: list[str], store: Path, log: Path) -> dict:
    """One protocol run into the empty ``store``: wall and CPU seconds, exit status."""
    shutil.rmtree(store, ignore_errors=True)
    cmd = [str(Path(sys.executable).with_name("aebench")), "run", f"protocol={protocol}", *words, "--runs", str(store)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    with open(log, "w") as fh:
        rc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT).returncode
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "exit": rc, "load_before": round(load, 2), "log": str(log)}


def spread(values: list[float]) -> dict:
    return {"min": min(values), "median": statistics.median(values), "max": max(values), "n": len(values)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--protocol", required=True)
    ap.add_argument("--variant", action="append", required=True, help="LABEL=key=value ... (two or more)")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--keep", type=Path, default=Path("/tmp/workers_bench"), help="run stores and logs go here")
    args = ap.parse_args()
    variants = [parse_variant(v) for v in args.variant]
    if len(variants) < 2 or args.repeats < 1:
        raise SystemExit("give two or more --variant and --repeats of at least 1")
    args.keep.mkdir(parents=True, exist_ok=True)
    runs: dict[str, list[dict]] = {label: [] for label, _ in variants}
    for r in range(args.repeats):
        order = variants if r % 2 == 0 else variants[::-1]
        for label, words in order:
            slug = f"{label.replace(' ', '_')}-{r}"
            result = one_run(args.protocol, words, args.keep / slug, args.keep / f"{slug}.log")
            runs[label].append({"repeat": r, **result})
            print(f"{label} #{r}: {result['wall_s']:.0f} s wall, {result['cpu_s']:.0f} s CPU, exit {result['exit']}", flush=True)
    first = variants[0][0]
    out = {
        "protocol": args.protocol,
        "commit": code_version()["commit"] or "unknown",
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cores": machine_cores(), "cpu": machine()["cpu"], "python": platform.python_version()},
        "order": "variants in turn, mirrored every other repeat (A B, B A, ...)",
        "variants": {
            label: {
                "words": words,
                "runs": runs[label],
                "wall_s": spread([x["wall_s"] for x in runs[label]]),
                "cpu_s": spread([x["cpu_s"] for x in runs[label]]),
            }
            for label, words in variants
        },
        "wall_ratio_to_first": {
            label: spread([b["wall_s"] / a["wall_s"] for a, b in zip(runs[first], runs[label])]) for label, _ in variants[1:]
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
