"""Tables in the paper's layout and plots, over a hand-made run store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aebench.harness.report.plots import plot
from aebench.harness.report.tables import render_table


def make_cell(root: Path, protocol: str, cid: str, row: str, psnr, lpips=None, done=True, info=None, sync=None, **extra) -> None:
    d = root / protocol / cid
    d.mkdir(parents=True)
    cell = {
        "protocol": protocol,
        "cell_id": cid,
        "row": row,
        "method": "aenerf",
        "identity": "synth_02",
        "clip_seconds": 0.0,
        "iters": 60,
        "audio": "self",
        "seed": 0,
        "scale": "smoke",
        "data_root": "/x/data/synth/3x4s",
        "size": 32,
        "train_hours": 0.01,
        **extra,
    }
    (d / "cell.json").write_text(json.dumps(cell))
    summary = {"psnr": psnr, "ssim": 0.5, "lpips": lpips, "lmd_dlib": 1.5, "sync_conf": sync, "sync_dist": None}
    missing = {m: f"{m} weights absent. Fix: aebench weights add ..." for m, v in summary.items() if v is None}
    (d / "metrics.json").write_text(json.dumps({"summary": summary, "missing": missing, "info": info or {}}))
    (d / "log.txt").write_text("step 10 loss=0.1 psnr=12\nstep 20 loss=0.05 psnr=15\n")
    if done:
        (d / "done").write_text("x")


def test_ablation_table_layout_against_paper(tmp_path):
    make_cell(tmp_path, "ablation", "a", "AE-NeRF", 21.0)
    make_cell(tmp_path, "ablation", "b", "AE-NeRF", 23.0, identity="synth_01")  # a repeat: another identity
    make_cell(tmp_path, "ablation", "c", "w/o AAA", 20.0, lpips=0.2)
    make_cell(tmp_path, "ablation", "d", "w/o Warper", 99.0, done=False)  # unfinished: ignored
    md = render_table("ablation", tmp_path, "md")
    lines = {line.split("|")[1].strip(): line for line in md.splitlines() if line.startswith("| ")}
    assert "22.00 ± 12.71 (n=2)" in lines["AE-NeRF"]  # t(0.975, 1) * 1.414 / sqrt(2)
    assert "(n=1, one run)" in lines["w/o AAA"] and "32.64" in lines["AE-NeRF"] and "0.950" in lines["AE-NeRF"]
    assert "LMD (dlib) (ours)" in md  # the offline variant is labelled as such
    assert "missing" in lines["AE-NeRF"] and "smoke" in lines["AE-NeRF"]
    assert "31.25" in lines["w/o AAA"] and "0.200" in lines["w/o AAA"]
    assert "not run" in lines["w/o Warper"] and "32.49" in lines["w/o Warper"] and "99" not in lines["w/o Warper"]
    assert "missing sync_conf:" in md and "table4_ablation.csv" in md
    csv_text = render_table("ablation", tmp_path, "csv")
    assert csv_text.splitlines()[0].startswith("row,PSNR (ours),PSNR (paper)")
    assert "\\begin{tabular}" in render_table("ablation", tmp_path, "latex")


def test_no_runs_is_an_error_that_says_which_command(tmp_path):
    import pytest

    with pytest.raises(FileNotFoundError, match="aebench run protocol=rrs"):
        render_table("rrs", tmp_path, "md")


def test_unfinished_rows_are_named(tmp_path):
    make_cell(tmp_path, "ablation", "a", "AE-NeRF", 21.0)
    make_cell(tmp_path, "ablation", "d", "w/o Warper", 99.0, done=False)
    (tmp_path / "ablation" / "d" / "config.yaml").write_text("run: {row: w/o Warper}\n")
    md = render_table("ablation", tmp_path, "md")
    assert "unfinished (started, not done; `aebench run` resumes them): w/o Warper (1 cell)" in md


def test_plots_written(tmp_path):
    make_cell(tmp_path, "fewshot_iters", "a", "AE-NeRF", 21.0, iters=20)
    make_cell(tmp_path, "fewshot_iters", "b", "AE-NeRF", 23.0, iters=60)
    paths = plot("fewshot_iters", tmp_path, tmp_path / "plots")
    assert len(paths) == 2 and all(p.stat().st_size > 1000 for p in paths)
    make_cell(tmp_path, "ablation", "a", "AE-NeRF", 21.0)
    assert any(p.name == "variants_bars.png" for p in plot("ablation", tmp_path, tmp_path / "p2"))


def test_entries_show_n_spread_markers_and_partial_missing(tmp_path):
    unofficial = {"weights": {"syncnet": {"official": False, "verification": "explicit file"}}, "sync": {"crop": "dlib"}}
    make_cell(tmp_path, "ablation", "a", "AE-NeRF", 21.0, lpips=0.3, sync=5.0, info=unofficial)
    make_cell(tmp_path, "ablation", "b", "AE-NeRF", 23.0, lpips=None, sync=7.0, info=unofficial, seed=1)
    md = render_table("ablation", tmp_path, "md")
    line = next(li for li in md.splitlines() if li.startswith("| AE-NeRF"))
    assert "0.300 (n=1, one run; 1 of 2 runs with a value)" in line  # one missing cell does not hide the other
    assert "6.000†‡ (n=1, 2 seeds each)" in line  # two seeds of one identity: one unit, no interval
    assert "seed-to-seed standard deviation" in md and "LSE-C 1.414 (dof 1)" in md
    assert "† computed with weights not verified as the official files: a file the user gave" in md
    assert "‡ SyncNet on face crops from dlib landmarks" in md
    assert "missing lpips:" in md


def test_cross_driven_columns_per_driving_audio(tmp_path):
    make_cell(tmp_path, "cross_driven", "a", "AE-NeRF", None, sync=6.0, audio="shared:audio/zozo.wav")
    make_cell(tmp_path, "cross_driven", "b", "AE-NeRF", None, sync=8.0, audio="shared:audio/hdtf_rd_radio31_000.wav")
    md = render_table("cross_driven", tmp_path, "md")
    header = next(li for li in md.splitlines() if li.startswith("| row"))
    assert "LSE-C [zozo] (ours)" in header and "LSE-C [hdtf_rd_radio31_000] (ours)" in header
    assert "Sync_B (paper)" in header and "Sync_C (paper)" in header
    line = next(li for li in md.splitlines() if li.startswith("| AE-NeRF"))
    assert "6.000 (n=1, one run)" in line and "8.000 (n=1, one run)" in line and "7.000" not in line  # never pooled


def test_self_and_cross_driven_cells_of_one_protocol(tmp_path):
    """real_quick drives each model with its own and another voice: sync metrics get a column
    per voice, metrics that need the ground truth only the self-driven one (no 'n=1 of 2')."""
    make_cell(tmp_path, "real_quick", "a", "AE-NeRF", 27.0, sync=5.0)
    make_cell(tmp_path, "real_quick", "b", "AE-NeRF", None, sync=3.0, audio="shared:audio/hdtf_rd_radio31_000.wav")
    md = render_table("real_quick", tmp_path, "md")
    header = next(li for li in md.splitlines() if li.startswith("| row"))
    cols = [c.strip() for c in header.strip("|").split("|")]
    assert cols[1] == "PSNR [self] (ours)" and "PSNR [hdtf_rd_radio31_000] (ours)" not in cols
    assert cols.index("LSE-C [self] (ours)") + 1 == cols.index("LSE-C [hdtf_rd_radio31_000] (ours)")
    line = [c.strip() for c in next(li for li in md.splitlines() if li.startswith("| AE-NeRF")).strip("|").split("|")]
    assert line[1] == "27.00 (n=1, one run)"
    assert line[cols.index("LSE-C [self] (ours)")] == "5.000 (n=1, one run)"
    assert line[cols.index("LSE-C [hdtf_rd_radio31_000] (ours)")] == "3.000 (n=1, one run)"


def test_cells_of_the_same_grid_point_are_not_pooled(tmp_path):
    """A protocol re-run with other settings leaves an older cell at the same grid point: the
    table shows the latest one only (n=1), and names the older one in a footnote."""
    import os
    import time

    make_cell(tmp_path, "ablation", "old", "AE-NeRF", 20.0)
    past = time.time() - 100
    os.utime(tmp_path / "ablation" / "old" / "done", (past, past))
    make_cell(tmp_path, "ablation", "new", "AE-NeRF", 24.0)
    md = render_table("ablation", tmp_path, "md")
    line = next(li for li in md.splitlines() if li.startswith("| AE-NeRF"))
    assert "24.00 (n=1, one run)" in line and "22.00" not in line
    assert "1 older finished cell(s)" in md and "old" in md.split("older finished cell(s)")[1]


def _copy_protocol(name: str, dest: Path, new_name: str) -> Path:
    """A shipped protocol copied to another file under another name (its cells then live under that name)."""
    import re

    from aebench.paths import protocols_dir

    text = (protocols_dir() / f"{name}.yaml").read_text()
    path = dest / f"{new_name}.yaml"
    path.write_text(re.sub(rf"(?m)^name: {name}$", f"name: {new_name}", text))
    return path


def test_a_copied_protocol_prints_the_same_table_and_plots(tmp_path):
    """The layout is the protocol file's own: a copy under another name gets the same paper
    columns, axis column and plots (report code holds no protocol names)."""
    for name, cells in (("fewshot_iters", [("a", 20), ("b", 60)]), ("ablation", [("a", 60)])):
        copy = _copy_protocol(name, tmp_path, f"my_{name}")
        for store in (name, f"my_{name}"):
            for cid, iters in cells:
                make_cell(tmp_path / "runs", store, cid, "AE-NeRF", 21.0, iters=iters)
        ours = render_table(copy, tmp_path / "runs", "csv")
        assert ours == render_table(name, tmp_path / "runs", "csv")
        assert "PSNR (paper)" in ours.splitlines()[0]
        shipped = [p.name for p in plot(name, tmp_path / "runs", tmp_path / "p" / name)]
        assert [p.name for p in plot(copy, tmp_path / "runs", tmp_path / "p" / f"my_{name}")] == shipped
    assert render_table(copy, tmp_path / "runs", "csv").splitlines()[0].startswith("row,PSNR (ours),PSNR (paper)")
    iters = render_table(tmp_path / "my_fewshot_iters.yaml", tmp_path / "runs", "csv")
    assert iters.splitlines()[0].startswith("row,iterations,PSNR (ours),PSNR (paper)")  # the axis column, from the file


def test_bars_draw_the_papers_sync(tmp_path, monkeypatch):
    """The bars read the paper's value through the table's column mapping (Sync -> sync_conf), so
    the paper's Sync bars are drawn, also where ours is missing (no SyncNet weights)."""
    import matplotlib.axes

    drawn = []
    real_bar = matplotlib.axes.Axes.bar
    monkeypatch.setattr(
        matplotlib.axes.Axes,
        "bar",
        lambda self, x, h, *a, **k: drawn.append((self, k.get("label"), list(h))) or real_bar(self, x, h, *a, **k),
    )
    make_cell(tmp_path, "ablation", "a", "AE-NeRF", 21.0)
    make_cell(tmp_path, "ablation", "b", "w/o AAA", 20.0)
    plot("ablation", tmp_path, tmp_path / "p")
    sync = {label: h for ax, label, h in drawn if ax.get_title().startswith("LSE-C")}  # titled after drawing
    assert sync["paper"] == [4.570, 7.813]  # Table 4's Sync of w/o AAA and AE-NeRF, in the protocol's row order


def test_a_resumed_log_gives_one_point_per_step(tmp_path):
    """A training resumed from its step-20 checkpoint logs steps 30.. again: the curve keeps the
    later attempt's points, one per step, in order (no zigzag)."""
    from aebench.harness.protocol.run_store import training_curve

    log = tmp_path / "log.txt"
    log.write_text(
        "[10:00:00] fine-tune\nstep 10 loss=0.5\nstep 20 loss=0.4\nstep 30 loss=0.3\nstep 40 loss=0.35\n"
        "[10:05:00] resumed\nstep 30 loss=0.29\nstep 40 loss=0.2\nstep 50 loss=0.1\n"
    )
    curve = training_curve(tmp_path)
    assert [r["step"] for r in curve] == [10, 20, 30, 40, 50]
    assert [r["loss"] for r in curve] == [0.5, 0.4, 0.29, 0.2, 0.1]


def test_store_weights_without_a_known_hash_are_marked(tmp_path):
    """LMD from face-alignment files the store could check only by their hash prefix is marked †."""
    prefix_only = {
        "weights": {
            "face_alignment_s3fd": {"official": False, "verification": "sha256-prefix"},
            "face_alignment_2dfan4": {"official": False, "verification": "sha256-prefix"},
        }
    }
    make_cell(tmp_path, "ablation", "a", "AE-NeRF", 21.0, info=prefix_only)
    d = tmp_path / "ablation" / "a" / "metrics.json"
    data = json.loads(d.read_text())
    data["summary"]["lmd"] = 2.0
    d.write_text(json.dumps(data))
    md = render_table("ablation", tmp_path, "md")
    row = next(li for li in md.splitlines() if li.startswith("| AE-NeRF") and "21.00" in li)
    assert "2.000† (n=1, one run)" in row and "store file whose full sha256 is unknown" in md


def test_seeds_of_one_identity_are_averaged_before_the_interval(tmp_path):
    """The identity is the unit: 3 identities x 2 seeds give n=3 (the seed means), not n=6, and the
    seed-to-seed spread is reported apart, pooled within identities."""
    from scipy import stats as sps

    values = {("i1", 0): 20.0, ("i1", 1): 21.0, ("i2", 0): 24.0, ("i2", 1): 24.5, ("i3", 0): 27.0, ("i3", 1): 26.0}
    for (ident, seed), v in values.items():
        make_cell(tmp_path, "ablation", f"{ident}{seed}", "AE-NeRF", v, identity=ident, seed=seed)
    md = render_table("ablation", tmp_path, "md")
    line = next(li for li in md.splitlines() if li.startswith("| AE-NeRF"))
    means = [20.5, 24.25, 26.5]
    low, high = sps.t.interval(0.95, 2, loc=sum(means) / 3, scale=sps.sem(means))
    assert f"{sum(means) / 3:.2f} ± {(high - low) / 2:.3f} (n=3, 2 seeds each)" in line
    within = [20.0 - 20.5, 21.0 - 20.5, 24.0 - 24.25, 24.5 - 24.25, 27.0 - 26.5, 26.0 - 26.5]
    sd = (sum(x * x for x in within) / 3) ** 0.5  # 3 identities, 1 degree of freedom each
    assert f"PSNR {sd:.3f} (dof 3)" in md
    assert "n = identities with a value (the seeds of an identity are averaged first" in md


def test_a_metric_the_protocol_expects_missing_gives_the_protocols_reason(tmp_path):
    make_cell(tmp_path, "real_quick", "a", "AE-NeRF", 27.0)  # sync never computed: absent from the summary
    md = render_table("real_quick", tmp_path, "md", only=["psnr", "sync_conf"])
    assert "missing sync_conf: this protocol's renders cannot yield it: 40 frames at 64 px" in md
    assert "weights absent" not in md


def test_rows_pick_the_table_and_its_family(tmp_path):
    """--rows shows only the named rows, and the --versus family is theirs (Holm over them); a row
    the protocol lacks, or a --versus row not shown, is refused by name."""
    results = Path(__file__).resolve().parents[3] / "results" / "exports" / "real_identities.json"
    two = render_table(None, tmp_path, "md", ["psnr"], versus="ER-NeRF", results_file=results, rows=["AE-NeRF", "DFRF", "ER-NeRF"])
    assert "Holm over the 2 comparisons" in two and "AD-NeRF" not in two and "w/o AAA" not in two
    every = render_table(None, tmp_path, "md", ["psnr"], versus="ER-NeRF", results_file=results)
    assert "Holm over the 5 comparisons" in every and "AD-NeRF" in every
    with pytest.raises(ValueError, match=r"--rows: \['GAN'\] not rows"):
        render_table(None, tmp_path, "md", ["psnr"], results_file=results, rows=["AE-NeRF", "GAN"])
    with pytest.raises(ValueError, match="'ER-NeRF' is not a row of protocol real_identities shown"):
        render_table(None, tmp_path, "md", ["psnr"], versus="ER-NeRF", results_file=results, rows=["AE-NeRF", "DFRF"])
