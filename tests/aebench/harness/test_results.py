"""Results files (export -> validate -> tables round trip, schema refusals), paired comparisons
(equal to scipy's) and cost columns in tables."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from scipy import stats as sps

from aebench.harness.cli import main
from aebench.harness.report.results import ResultsError, export, read_results, validate, write_results
from aebench.harness.report.tables import render_table
from tests.aebench.harness.test_tables import make_cell

# three targets x two seeds, two rows: B is A minus a known, noisy offset
A = {("t1", 0): 28.0, ("t1", 1): 27.5, ("t2", 0): 25.0, ("t2", 1): 25.6, ("t3", 0): 30.1, ("t3", 1): 29.0}
OFFSET = {("t1", 0): 0.3, ("t1", 1): 0.5, ("t2", 0): -0.1, ("t2", 1): 0.4, ("t3", 0): 0.6, ("t3", 1): 0.2}


def _store(root):
    for (target, seed), v in A.items():
        cost = {"train_s": 90.0 + seed, "render_fps": 1.5, "peak_mem": 1.2}
        make_cell(root, "real_repeats", f"a{target}{seed}", "AE-NeRF", v, identity=target, seed=seed, cost=cost)
        make_cell(root, "real_repeats", f"b{target}{seed}", "DFRF", v - OFFSET[(target, seed)], identity=target,
                  seed=seed, cost=cost)
    make_cell(root, "real_repeats", "c", "AD-NeRF", 22.0, identity="t1", seed=0)  # one run, no cost recorded


def _row(md: str, label: str) -> list[str]:
    line = next(li for li in md.splitlines() if li.startswith(f"| {label} "))
    return [c.strip() for c in line.strip().strip("|").split("|")]


def _header(md: str) -> list[str]:
    return [c.strip() for c in next(li for li in md.splitlines() if li.startswith("| row")).strip("|").split("|")]


def test_paired_difference_column_equals_scipy(tmp_path):
    _store(tmp_path)
    md = render_table("real_repeats", tmp_path, "md", only=["psnr"], versus="AE-NeRF")
    cols = _header(md)
    i = cols.index("PSNR vs AE-NeRF")
    d = np.array([-OFFSET[k] for k in sorted(A)])  # DFRF minus AE-NeRF, paired by target and seed
    low, high = sps.t.interval(0.95, len(d) - 1, loc=d.mean(), scale=sps.sem(d))
    p = sps.permutation_test((d,), lambda x, axis: np.mean(x, axis=axis), permutation_type="samples",
                             n_resamples=np.inf, alternative="two-sided").pvalue
    entry = _row(md, "DFRF")[i]
    assert p > 0.05  # one of six differences has the other sign: the exact test cannot confirm the t interval
    assert entry == f"{d.mean():.3f} [{low:.3f}, {high:.3f}] p={p:.3g} (n=6, permutation p >= 0.05)"
    assert _row(md, "AE-NeRF")[i] == "(reference)"
    assert _row(md, "AD-NeRF")[i] == "-6.000 (n=1, no interval)"  # its one pair: AE-NeRF's (t1, seed 0), 22 - 28
    ci = sps.t.interval(0.95, 5, loc=np.mean(list(A.values())), scale=sps.sem(list(A.values())))
    assert _row(md, "AE-NeRF")[cols.index("PSNR (ours)")].startswith(
        f"{np.mean(list(A.values())):.2f} ± {(ci[1] - ci[0]) / 2:.3f} (n=6)")
    assert "not resolved" in md.split("\n\n")[-1]  # the footnote explains the verdict


def test_a_difference_whose_interval_holds_zero_is_not_resolved(tmp_path):
    for seed, (a, b) in enumerate([(28.0, 27.0), (27.0, 28.2), (28.5, 28.0)]):
        make_cell(tmp_path, "real_repeats", f"a{seed}", "AE-NeRF", a, identity="may", seed=seed)
        make_cell(tmp_path, "real_repeats", f"b{seed}", "w/o AAA", b, identity="may", seed=seed)
    md = render_table("real_repeats", tmp_path, "md", only=["psnr"], versus="AE-NeRF")
    entry = _row(md, "w/o AAA")[_header(md).index("PSNR vs AE-NeRF")]
    assert entry.endswith("(n=3, not resolved)") and entry.startswith("-0.100 [")


def test_unknown_versus_row_is_named(tmp_path):
    _store(tmp_path)
    with pytest.raises(ValueError, match="not a row of protocol real_repeats; its rows: AE-NeRF"):
        render_table("real_repeats", tmp_path, "md", versus="AE-NERF")


def test_cost_columns(tmp_path):
    _store(tmp_path)
    md = render_table("real_repeats", tmp_path, "md", only=["train_s", "render_fps", "peak_mem"])
    cols = _header(md)
    assert {"training s (ours)", "render fps (ours)", "peak memory GiB (ours)"} <= set(cols)
    assert _row(md, "DFRF")[cols.index("training s (ours)")].startswith("90.50 ± ")
    assert _row(md, "AD-NeRF")[cols.index("render fps (ours)")] == "missing"
    assert "missing render_fps: not recorded" in md


def test_export_validate_tables_round_trip(tmp_path):
    _store(tmp_path / "runs")
    doc = export("real_repeats", tmp_path / "runs")
    path = write_results(doc, tmp_path / "results.json")
    res = read_results(path)
    assert res.spec.name == "real_repeats" and len(res.cells) == 13
    for fmt in ("md", "csv"):
        ours = render_table("real_repeats", tmp_path / "runs", fmt, versus="AE-NeRF")
        theirs = render_table(None, tmp_path / "elsewhere", fmt, versus="AE-NeRF", results_file=path)
        strip = (lambda t: [li for li in t.splitlines() if not li.startswith("Protocol ")])
        assert strip(ours) == strip(theirs)
    out = CliRunner().invoke(main, ["validate", str(path)])
    assert out.exit_code == 0 and "valid aebench results file (protocol real_repeats, 13 cells)" in out.output
    table = CliRunner().invoke(main, ["tables", "--from", str(path), "--metrics", "psnr", "--versus", "DFRF"])
    assert table.exit_code == 0 and "PSNR vs DFRF" in table.output
    plots = CliRunner().invoke(main, ["plot", "--from", str(path), "--out", str(tmp_path / "plots")])
    assert plots.exit_code == 0, plots.output


def test_export_cli_and_a_broken_file_is_refused_with_the_field_named(tmp_path):
    _store(tmp_path / "runs")
    out = tmp_path / "r.json"
    res = CliRunner().invoke(main, ["export", "real_repeats", "--runs", str(tmp_path / "runs"), "--out", str(out)])
    assert res.exit_code == 0, res.output
    doc = json.loads(out.read_text())
    validate(doc)
    doc["cells"][2]["summary"]["psnr"] = "high"
    with pytest.raises(ResultsError, match=r"field \$\.cells\[2\]\.summary\.psnr"):
        validate(doc)
    del doc["cells"][2]["summary"]["psnr"]
    del doc["cells"][0]["row"]
    out.write_text(json.dumps(doc))
    bad = CliRunner().invoke(main, ["validate", str(out)])
    assert bad.exit_code == 2 and "$.cells[0]" in bad.output and "'row' is a required property" in bad.output
    assert "Traceback" not in bad.output
    doc["schema_version"] = 7
    with pytest.raises(ResultsError, match="schema_version 7"):
        validate(doc)
    out.write_text("{not json")
    assert "is not JSON" in CliRunner().invoke(main, ["validate", str(out)]).output


def test_eval_export_writes_the_same_schema(tmp_path):
    from tests.eval.test_api_cli import _frames
    from aebench.media import write_video

    gt = _frames(6, 32)
    write_video(tmp_path / "gt.mp4", gt, 25)
    write_video(tmp_path / "pred.mp4", gt[::-1].copy(), 25)
    res = CliRunner().invoke(main, ["eval", "--pred", str(tmp_path / "pred.mp4"), "--gt", str(tmp_path / "gt.mp4"),
                                    "--metrics", "psnr,ssim", "--out", str(tmp_path / "out"),
                                    "--export", str(tmp_path / "e.json"), "--label", "RAD-NeRF"])
    assert res.exit_code == 0, res.output
    r = read_results(tmp_path / "e.json")
    cell = r.cells[0]
    assert cell["row"] == "RAD-NeRF" and len(cell["frames"]) == 6 and cell["provenance"]["code"]["aebench"]
    assert len(cell["sha256"]["pred"]) == 64 and cell["sha256"]["gt"] != cell["sha256"]["pred"]
    md = render_table(None, tmp_path, "md", results_file=tmp_path / "e.json")
    assert _row(md, "RAD-NeRF")[1].endswith("(n=1, one run)")


def test_report_page_from_a_results_file_shows_the_paired_differences(tmp_path):
    _store(tmp_path / "runs")
    path = write_results(export("real_repeats", tmp_path / "runs"), tmp_path / "results.json")
    res = CliRunner().invoke(main, ["report", "--from", str(path), "--versus", "AE-NeRF", "--out", str(tmp_path / "page")])
    assert res.exit_code == 0, res.output
    page = (tmp_path / "page" / "index.html").read_text()
    assert "PSNR vs AE-NeRF" in page and "(reference)" in page and "not renders" in page
    assert (tmp_path / "page" / "plots" / "training_curves.png").is_file()


def test_a_protocol_with_measured_noise_quotes_it_under_its_table(tmp_path, monkeypatch):
    from aebench.harness.report.regress import write_reference

    refs = tmp_path / "refs"
    write_reference(refs / "real_repeats.json", "real_repeats", "smoke", [],
                    {"A|may|0|300|self|0": {"psnr": 28.0}, "A|may|0|300|self|1": {"psnr": 27.0}})
    monkeypatch.setenv("AEBENCH_REFERENCES", str(refs))
    make_cell(tmp_path / "runs", "real_quick", "a", "AE-NeRF", 28.1, identity="may")
    md = render_table("real_quick", tmp_path / "runs", "md", only=["psnr"])
    assert "run-to-run noise of this setup, measured by protocol real_repeats" in md
    assert "standard deviation between seeds PSNR 0.707" in md  # sqrt(0.5)
    assert "28.10 (n=1, one run)" in md
