"""The speed numbers of docs/speed.md, printed from committed files only.

    python tools/speed_tables.py ttq    # time to quality: docs/time_to_quality/*.json (+ repeats/)
    python tools/speed_tables.py fps    # render frames/s: docs/render_fps/*.json (+ repeats/)
    python tools/speed_tables.py rate   # training iterations/s: docs/train_rate/*.json
    python tools/speed_tables.py paper  # paper scale: docs/paper_scale/cpu_512.json (tools/paper_scale.py)
    python tools/speed_tables.py workers  # whole protocols, 1 vs 2 workers: docs/speed/workers_*.json (tools/workers_bench.py)
    python tools/speed_tables.py sampler  # proposal sampler vs default: docs/speed/sampler/*_seed*.json (tools/proposal_bench.sh)
    python tools/speed_tables.py sampler_render  # their renders: docs/speed/sampler/*_renders.json (tools/proposal_render.py)
    python tools/speed_tables.py profile  # forward time per module: docs/speed/profile/*.json (tools/profile_modules.py)
    python tools/speed_tables.py ernerf   # ER-NeRF beside the others' defaults: docs/speed/ernerf/*.json (tools/ernerf_speed.sh)

Sources. ``ttq`` reads the ``aebench bench converge`` curves (files ``METHOD_VARIANT_SIZE.json``;
a curve point's ``seconds`` is training wall time, base model included). ``fps`` reads
``aebench bench render`` results (``METHOD_ENCODING_SIZE_SCALE_SAMPLER.json``: ``frames/s`` and
``evaluated/ray``) and ``rate`` ``aebench bench train`` results (``iters/s``). Neither of the
last two records the field encoding, so it is read from the file name. A ``*_repeat.json`` file
is a second run of the method's default (``frequency``).

Rules. A run's wall time is its curve's last ``seconds``; its time to the default's final PSNR is
the ``seconds`` of its first scored point at or above it, and the ratio is the default's wall time
/ that time (as ``bench converge --reference`` computes them). Render and training ratios are the
variant's frames/s (iterations/s) / the default's. Which default run a variant ran beside is not
recorded in the files; the rule that reproduces the published numbers is: where the default ran twice,
``hashgrid`` beside the repeat and every other variant beside the first run; where it ran once,
every variant beside it. Numbers are rounded half up from their decimal value in the file.
"""

from __future__ import annotations

import json
import re
import statistics
import sys
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
NAMES = {"aenerf": "AE-NeRF", "dfrf": "DFRF", "adnerf": "AD-NeRF"}
VARIANTS = ("frequency", "triplane", "triplane_occ", "hashgrid")
LABELS = {"frequency": "frequency (default)", "triplane_occ": "triplane + `train.sampler=occupancy`"}
SCALES = ("smoke", "small", "paper")
DEFAULT, BESIDE_REPEAT = "frequency", "hashgrid"
RULE = (
    "where the default ran twice, hashgrid ran beside the repeat and every other variant beside "
    "the first run (the pairing is not recorded in the files; this rule reproduces the published numbers)"
)


def fmt(x: float, digits: int) -> str:
    """``x`` rounded half up to ``digits`` decimals, from its shortest decimal form."""
    return str(Decimal(repr(x)).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP))


def order(seq: tuple[str, ...], item: str) -> tuple[int, str]:
    """Sort key: ``item``'s place in ``seq``, unknown items after, by name."""
    return (seq.index(item), "") if item in seq else (len(seq), item)


def load(folder: Path) -> dict[tuple[str, ...], list[dict]]:
    """The JSON files of ``folder`` and ``folder/repeats``, keyed by their file name's fields
    (METHOD, VARIANT, SIZE, ...; ``triplane_occ`` is one variant); a key's list holds the first
    run, then the repeat (``*_repeat.json``) where there is one."""
    runs: dict[tuple[str, ...], list[dict]] = {}
    for f in sorted(folder.glob("*.json")) + sorted((folder / "repeats").glob("*.json")):
        method, variant, *rest = f.stem.removesuffix("_repeat").split("_")
        if rest[0] == "occ":
            variant, rest = f"{variant}_occ", rest[1:]
        runs.setdefault((method, variant, *rest), []).append(json.loads(f.read_text()))
    return runs


def beside(defaults: list[dict], variant: str) -> dict:
    """The default run ``variant`` is compared with (see RULE)."""
    return defaults[-1] if variant == BESIDE_REPEAT else defaults[0]


def verdict(ratios: list[float], below: str, above: str) -> str:
    """What paired ratios (variant / default, lower is better) support: a verdict only from two
    pairs or more that agree, with how far apart they were; otherwise why none is given."""
    if len(ratios) < 2:
        return "no verdict (one pair; two or more are needed)"
    span = f"ratios {fmt(min(ratios), 2)} to {fmt(max(ratios), 2)} over {len(ratios)} pairs"
    if max(ratios) < 1:
        return f"{below} in every pair ({span})"
    if min(ratios) > 1:
        return f"{above} in every pair ({span})"
    return f"no verdict: the pairs disagree ({span})"


def table(header: list[str], rows: list[list[str]]) -> str:
    """A GitHub pipe table."""
    lines = ["| " + " | ".join(cells) + " |" for cells in [header, *rows]]
    return "\n".join([lines[0], "|" + "---|" * len(header), *lines[1:]])


def spread(values: list[float]) -> str:
    """How far apart two runs are: larger / smaller - 1, in percent."""
    return f"{fmt(100 * (max(values) / min(values) - 1), 1)}%"


def wall(run: dict) -> float:
    """Training wall time of a converge run: its curve's last point."""
    return run["curve"][-1]["seconds"]


def time_to_reach(run: dict, psnr: float) -> float | None:
    """Seconds of the first scored point at or above ``psnr`` (``bench_converge.time_to_reach``)."""
    return next((p["seconds"] for p in run["curve"] if p["psnr"] is not None and p["psnr"] >= psnr), None)


def ttq() -> str:
    """The time-to-quality table: one row per run, the default's repeat beside its first run."""
    runs = load(DOCS / "time_to_quality")
    rows, spreads = [], []
    keys = sorted(runs, key=lambda k: (order(tuple(NAMES), k[0]), int(k[2]), order(VARIANTS, k[1])))
    for method, variant, size in keys:
        found, defaults = runs[(method, variant, size)], runs[(method, DEFAULT, size)]
        run = found[0]
        cells = [NAMES.get(method, method), run["size"], LABELS.get(variant, variant), fmt(run["final_psnr"], 2)]
        if variant == DEFAULT:
            walls = " / ".join(f"{fmt(wall(r), 1)} s" for r in found)
            cells += [walls + (" (first / repeat)" if len(found) > 1 else ""), "-"]
            if len(found) > 1:
                spreads.append(f"{NAMES.get(method, method)} {spread([wall(r) for r in found])}")
        else:
            ref = beside(defaults, variant)
            reached = time_to_reach(run, ref["final_psnr"])
            cells += [
                f"{fmt(wall(run), 1)} s",
                "not reached" if reached is None else f"{fmt(reached, 1)} s ({fmt(wall(ref) / reached, 2)}x)",
            ]
        rows.append(cells)
    header = ["method", "size", "encoding", "final PSNR", "wall time (base + fine-tune)", "time to the default's final PSNR"]
    return section(
        "`docs/time_to_quality/*.json` and `docs/time_to_quality/repeats/*.json` (bench converge curves)",
        header,
        rows,
        f"Ratio: the default's wall time / the time to its final PSNR; {RULE}. "
        f"Wall times of the default's two runs differ by {', '.join(spreads)}.",
    )


def section(source: str, header: list[str], rows: list[list[str]], note: str) -> str:
    """A printed table: the line naming its files (as code, so Markdown keeps their ``*``), the table,
    and its footnote."""
    return "\n".join([f"from {source}", "", table(header, rows), "", note])


def fps() -> str:
    """The render table: frames/s (evaluated samples per ray) per encoding, ratios to the default beside."""
    runs = load(DOCS / "render_fps")
    groups = sorted({(k[0], k[3], k[4]) for k in runs}, key=lambda g: (order(SCALES, g[1]), g[2], order(tuple(NAMES), g[0])))
    rows, spreads = [], []
    for method, scale, sampler in groups:
        by_variant = {k[1]: v for k, v in runs.items() if (k[0], k[3], k[4]) == (method, scale, sampler)}
        defaults = by_variant[DEFAULT]

        def cell(run: dict, ref: dict | None) -> str:
            text = f"{fmt(run['frames/s'], 3)} ({fmt(run['evaluated/ray'], 1)})"
            return text if ref is None else f"{text}, {fmt(run['frames/s'] / ref['frames/s'], 2)}x"

        def variant(name: str) -> str:
            return cell(by_variant[name][0], beside(defaults, name)) if name in by_variant else "-"  # noqa: B023 (called here)

        again = cell(defaults[1], None) if len(defaults) > 1 else "-"
        rows.append(
            [NAMES.get(method, method), f"{scale}, {sampler}", cell(defaults[0], None), variant("triplane"), again, variant("hashgrid")]
        )
        if len(defaults) > 1:
            spreads.append(f"{NAMES.get(method, method)} {spread([r['frames/s'] for r in defaults])}")
    header = ["method", "scale, sampler", "frequency (default)", "triplane", "frequency again", "hashgrid"]
    return section(
        "`docs/render_fps/*.json` and `docs/render_fps/repeats/*.json` (bench render, 128 px, one thread)",
        header,
        rows,
        f"frames/s (evaluated samples per ray); ratio: the variant's frames/s / the default's; "
        f"{RULE}. The default's two runs differ by {', '.join(spreads)}.",
    )


def rate() -> str:
    """The training-rate table: each variant's iterations/s beside the default run it ran with."""
    runs = load(DOCS / "train_rate")
    keys = sorted(
        (k for k in runs if k[1] != DEFAULT), key=lambda k: (order(tuple(NAMES), k[0]), order(SCALES, k[3]), order(VARIANTS, k[1]))
    )
    rows = []
    for method, variant, size, scale in keys:
        defaults = runs[(method, DEFAULT, size, scale)]
        ref, run = beside(defaults, variant), runs[(method, variant, size, scale)][0]
        which = "first" if ref is defaults[0] else "repeat"
        rows.append(
            [
                NAMES.get(method, method),
                f"{size} px, {scale}",
                f"{fmt(ref['iters/s'], 3)} ({which}; {fmt(1 / ref['iters/s'], 1)} s per iteration)",
                variant,
                fmt(run["iters/s"], 3),
                f"{fmt(run['iters/s'] / ref['iters/s'], 2)}x",
            ]
        )
    header = ["method", "size, scale", "default iterations/s", "variant", "variant iterations/s", "ratio"]
    hours = [
        f"{NAMES.get(k[0], k[0])} {k[2]} px {k[3]} {fmt(600 / runs[k][0]['iters/s'] / 3600, 2)} h" for k in sorted(runs) if k[1] == DEFAULT
    ]
    return section(
        "`docs/train_rate/*.json` (bench train from scratch, one thread, side by side)",
        header,
        rows,
        f"Ratio: the variant's iterations/s / the default's; {RULE}. "
        f"600 iterations at the first default run's rate take {', '.join(hours)}.",
    )


def paper() -> str:
    """The paper-scale table: FLOPs per training iteration and per 512 px frame (counted on a CPU by
    tools/paper_scale.py), and the paper's schedule projected to an A100 and an H100."""
    doc = json.loads((DOCS / "paper_scale" / "cpu_512.json").read_text())
    util = doc["utilisation"]
    rows = []
    for m in doc["methods"]:
        proj = m["projection"]

        def hours(key: str) -> str:
            base, ft = proj[key]["base_h"], proj[key]["finetune_h"]  # noqa: B023 (called in this iteration)
            one = lambda h: f"{fmt(h, 1 if h >= 1 else 2)} h"  # noqa: E731  (0.04 h, not 0.0 h)
            return (f"{one(base)} + " if base is not None else "") + one(ft)

        schedule = (f"{m['pretrain_iters'] // 1000}k + " if m["has_base_model"] else "") + f"{m['finetune_iters'] // 1000}k"
        rows.append(
            [
                NAMES.get(m["method"], m["method"]),
                f"{m['batch_rays']} rays, {m['samples/ray']}",
                f"{fmt(m['flops_per_train_iter'] / 1e12, 2)}",
                f"{fmt(m['flops_per_frame_512'] / 1e12, 1)}",
                f"{fmt(m['peak_rss_mib'] / 1024, 1)} GiB",
                schedule,
                hours("A100 fp32"),
                hours("A100 tf32"),
                hours("H100 tf32"),
                hours("H100 bf16"),
            ]
        )
    header = [
        "method",
        "batch",
        "TFLOP / training iteration",
        "TFLOP / 512 px frame",
        "peak memory (CPU run)",
        "iterations (base + fine-tune)",
        "A100 fp32",
        "A100 tf32",
        "H100 tf32",
        "H100 bf16",
    ]
    paper_h = doc["paper_hours_a100"]
    return section(
        "`docs/paper_scale/cpu_512.json` (tools/paper_scale.py: scale=paper at 512 px on this CPU, torch FlopCounterMode)",
        header,
        rows,
        f"Projected hours = FLOPs x iterations / (dense peak x {fmt(100 * util, 0)}% utilisation); peaks "
        "(TFLOP/s) "
        + "; ".join(f"{g} " + ", ".join(f"{p} {v}" for p, v in peaks.items()) for g, peaks in doc["peak_tflops"].items())
        + f". The paper: {paper_h['base']:g} h base + {paper_h['finetune']:g} h fine-tune on an A100. "
        "FlopCounterMode counts matrix products and convolutions only (2 per multiply-add); the "
        "utilisation is an assumption, not a measurement, until tools/gpu_check.sh has run on a GPU. "
        "Frame FLOPs: the hierarchical sampler (every sample), from renders at 16 and 32 px "
        "extrapolated as a + b x pixels.",
    )


def workers() -> str:
    """Whole protocol runs with each launcher variant, in turn (tools/workers_bench.py): every
    run's wall time, the median, and the per-pair ratio to the first variant."""
    rows, notes = [], []
    for f in sorted((DOCS / "speed").glob("workers_*.json")):
        doc = json.loads(f.read_text())
        labels = list(doc["variants"])
        first = doc["variants"][labels[0]]
        for label in labels:
            v = doc["variants"][label]
            walls = [r["wall_s"] for r in v["runs"]]
            ratio = "-" if label == labels[0] else " / ".join(fmt(b / a, 2) for a, b in zip((r["wall_s"] for r in first["runs"]), walls))
            failed = sum(r["exit"] != 0 for r in v["runs"])
            rows.append(
                [
                    f"`{doc['protocol']}`",
                    label,
                    "`" + " ".join(v["words"]) + "`",
                    ", ".join(f"{fmt(w / 60, 1)}" for w in walls) + " min",
                    f"{fmt(v['wall_s']['median'] / 60, 1)} min",
                    f"{fmt(v['cpu_s']['median'] / 60, 1)} min",
                    ratio + (f" ({failed} failed)" if failed else ""),
                ]
            )
        m = doc["machine"]
        notes.append(f"`{doc['protocol']}`: {m['cores']} cores ({m['cpu']}), {doc['date'][:10]}, commit {doc['commit'][:7]}")
        for label in labels[1:]:
            pairs = [b["wall_s"] / a["wall_s"] for a, b in zip(first["runs"], doc["variants"][label]["runs"])]
            notes.append(f"`{doc['protocol']}` {label} vs {labels[0]}: " + verdict(pairs, "faster", "slower"))
    header = [
        "protocol",
        "variant",
        "settings",
        "wall time of each repeat",
        "median",
        "CPU time (median)",
        "wall ratio to the first variant, pair by pair",
    ]
    return section(
        "`docs/speed/workers_*.json` (tools/workers_bench.py: whole `aebench run`s from an empty run "
        "store, the variants in turn, mirrored every other repeat)",
        header,
        rows,
        "Each run trains every base model, fine-tunes, renders and scores from scratch (the prepared "
        "clips are shared). " + "; ".join(notes) + ".",
    )


def sampler() -> str:
    """The proposal sampler beside each method's default, trained at the same time with the same
    seed (tools/proposal_bench.sh): final PSNR, wall time, time to the default's final PSNR."""
    runs = {}
    for f in sorted((DOCS / "speed" / "sampler").glob("*_seed*.json")):
        named = re.fullmatch(r"([a-z]+)_([a-z]+)_(\d+)_seed(\d+)", f.stem)  # METHOD_VARIANT_SIZE_seedN
        if named:
            method, variant, size, seed = named.groups()
            runs[(method, int(size), int(seed), variant)] = json.loads(f.read_text())
    rows, ratios, reach = [], {}, {}
    for method, size, seed, variant in sorted(runs, key=lambda k: (order(tuple(NAMES), k[0]), k[1], k[2], k[3] != "default")):
        run, ref = runs[(method, size, seed, variant)], runs.get((method, size, seed, "default"))
        cells = [
            NAMES.get(method, method),
            f"{size} px",
            str(seed),
            "default" if variant == "default" else f"`train.sampler={variant}`",
            fmt(run["final_psnr"], 2),
            f"{fmt(wall(run), 1)} s",
        ]
        if variant == "default" or ref is None:
            cells.append("-")
        else:
            reached = time_to_reach(run, ref["final_psnr"])
            cells.append("not reached" if reached is None else f"{fmt(reached, 1)} s ({fmt(wall(ref) / reached, 2)}x)")
            ratios.setdefault((method, size), []).append(wall(run) / wall(ref))
            reach.setdefault((method, size), []).append(None if reached is None else reached / wall(ref))
        rows.append(cells)
    header = ["method", "size", "seed", "sampler", "final PSNR", "wall time (base + fine-tune)", "time to the default's final PSNR"]
    verdicts = "; ".join(
        f"{NAMES.get(m, m)} {s} px: wall time {', '.join(fmt(x, 2) for x in r)} of the default's, "
        f"{verdict(r, 'faster', 'slower')}; the default's final PSNR "
        + (
            "reached in every pair, at " + ", ".join(fmt(x, 2) for x in reach[(m, s)]) + " of its wall time"
            if None not in reach[(m, s)]
            else f"not reached in {reach[(m, s)].count(None)} of {len(reach[(m, s)])} pairs"
        )
        for (m, s), r in ratios.items()
    )
    return section(
        "`docs/speed/sampler/*_seed*.json` (tools/proposal_bench.sh: bench converge of the default and "
        "of the proposal sampler at the same time with the same seed, one thread each; May, base models "
        "leave-one-out, 300 + 300 iterations, PSNR on 8 held-out frames every 30)",
        header,
        rows,
        "Ratio: the default's wall time / the time to its final PSNR (same seed, run at the same time). "
        "Per method and size, over the seeds: " + (verdicts or "none") + ".",
    )


def sampler_render() -> str:
    """Renders of those checkpoints (tools/proposal_render.py): seconds per frame, samples per ray
    and PSNR of the default, the proposal evaluating every sample, and the proposal skipping."""
    rows, ratios = [], {}
    docs = [json.loads(f.read_text()) for f in (DOCS / "speed" / "sampler").glob("*_renders.json")]
    for doc in sorted(docs, key=lambda d: (order(tuple(NAMES), d["method"]), d["size"], d["seed"])):
        med = doc["median_s_per_frame"]
        for label, runs in doc["renders"].items():
            speed = "-" if label == "default" else f"{fmt(med['default'] / med[label], 2)}x"
            rows.append(
                [
                    NAMES.get(doc["method"], doc["method"]),
                    f"{doc['size']} px",
                    str(doc["seed"]),
                    label,
                    ", ".join(fmt(r["s_per_frame"], 3) for r in runs),
                    fmt(runs[0]["evaluated_per_ray"], 1),
                    fmt(runs[0]["psnr"], 2),
                    speed,
                ]
            )
            if label != "default":
                ratios.setdefault((doc["method"], doc["size"], label), []).append(med[label] / med["default"])
    header = [
        "method",
        "size",
        "seed",
        "render",
        "seconds per frame (each round)",
        "evaluated samples per ray",
        "PSNR",
        "frames/s vs the default (medians)",
    ]
    verdicts = "; ".join(f"{NAMES.get(m, m)} {s} px {label}: {verdict(r, 'faster', 'slower')}" for (m, s, label), r in ratios.items())
    return section(
        "`docs/speed/sampler/*_renders.json` (tools/proposal_render.py: May's first 8 test frames "
        "self-driven, one thread, the three renders in turn)",
        header,
        rows,
        "A render's seconds include its set-up (the default builds an occupancy grid for each render). "
        "Per method and size, the seconds per frame over the seeds: " + (verdicts or "none") + ".",
    )


def profile() -> str:
    """Where a fine-tuning step's forward time goes, per module class (tools/profile_modules.py)."""
    rows = []
    for f in sorted((DOCS / "speed" / "profile").glob("*.json")):
        doc = json.loads(f.read_text())
        top = list(doc["forward_s_by_module"].items())[:7]
        rows.append(
            [
                NAMES.get(doc["method"], doc["method"]),
                " ".join(f"`{o}`" for o in doc["overrides"]) or "default",
                f"{fmt(doc['wall_s'], 1)} s ({doc['iters']} iterations)",
                "; ".join(f"{k} {fmt(100 * v / doc['wall_s'], 0)}%" for k, v in top),
            ]
        )
    header = [
        "method",
        "settings",
        "fine-tuning wall time",
        "forward time per module class, share of the wall time (inclusive: a module's share holds its parts')",
    ]
    return section(
        "`docs/speed/profile/*.json` (tools/profile_modules.py: May, 64 px, smoke sizes, one thread)",
        header,
        rows,
        "Forward passes only: the backward passes, the optimiser and the sampling and "
        "compositing outside modules make up the rest of the wall time.",
    )


def ernerf() -> str:
    """ER-NeRF beside the other methods' defaults (tools/ernerf_speed.sh): training iterations/s and
    render frames/s per round, the median of the rounds, and each method's ratio to AE-NeRF's."""
    runs: dict[tuple[str, str], list[dict]] = {}
    for f in sorted((DOCS / "speed" / "ernerf").glob("*_round*.json")):
        method, kind, _ = f.stem.split("_")
        runs.setdefault((method, kind), []).append(json.loads(f.read_text()))
    methods = sorted({m for m, _ in runs}, key=lambda m: order(("ernerf", *NAMES), m))
    median = {k: statistics.median(r["iters/s" if k[1] == "train" else "frames/s"] for r in v) for k, v in runs.items()}
    rows = []
    for m in methods:
        train, render = runs[(m, "train")], runs[(m, "render")]
        rows.append(
            [
                {"ernerf": "ER-NeRF", **NAMES}.get(m, m),
                ", ".join(fmt(r["iters/s"], 3) for r in train),
                f"{fmt(median[(m, 'train')], 3)} ({fmt(1 / median[(m, 'train')], 2)} s)",
                f"{fmt(median[(m, 'train')] / median[('aenerf', 'train')], 2)}x",
                ", ".join(fmt(r["frames/s"], 3) for r in render),
                fmt(median[(m, "render")], 3),
                f"{fmt(median[(m, 'render')] / median[('aenerf', 'render')], 2)}x",
                f"{fmt(render[0]['evaluated/ray'], 1)}",
            ]
        )
    header = [
        "method",
        "iterations/s per round",
        "median (s per iteration)",
        "vs AE-NeRF",
        "frames/s per round",
        "median",
        "vs AE-NeRF",
        "evaluated/ray",
    ]
    return section(
        "`docs/speed/ernerf/*.json` (tools/ernerf_speed.sh: 128 px, small sizes, hierarchical sampler, one thread, methods in turn)",
        header,
        rows,
        "Training: bench train from scratch, 8 iterations less a 3-iteration set-up run; rendering: bench render of 2 frames "
        "less a 1-frame render. Ratios: a method's median / AE-NeRF's (the `frequency` field of the three others, "
        "ER-NeRF's own tri-plane network). Each method's own network at small sizes, under the same rays and samples.",
    )


COMMANDS = {
    "ttq": ttq,
    "fps": fps,
    "rate": rate,
    "paper": paper,
    "workers": workers,
    "sampler": sampler,
    "sampler_render": sampler_render,
    "profile": profile,
    "ernerf": ernerf,
}

if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in COMMANDS:
        sys.exit(f"usage: python tools/speed_tables.py {'|'.join(COMMANDS)}")
    print(COMMANDS[sys.argv[1]]())
