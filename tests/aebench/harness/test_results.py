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
        make_cell(root, "real_repeats", f"b{target}{seed}", "DFRF", v - OFFSET[(target, seed)], identity=target, seed=seed, cost=cost)
    make_cell(root, "real_repeats", "c", "AD-NeRF", 22.0, identity="t1", seed=0)  # one run, no cost recorded


def _row(md: str, label: str) -> list[str]:
    line = next(li for li in md.splitlines() if li.startswith(f"| {label} "))
    return [c.strip() for c in line.strip().strip("|").split("|")]


def _header(md: str) -> list[str]:
    return [c.strip() for c in next(li for li in md.splitlines() if li.startswith("| row")).strip("|").split("|")]


def _sign_flip_p(d):
    return sps.permutation_test(
        (d,), lambda x, axis: np.mean(x, axis=axis), permutation_type="samples", n_resamples=np.inf, alternative="two-sided"
    ).pvalue


def _expected(d, p_adj, seeds):
    low, high = sps.t.interval(0.95, len(d) - 1, loc=d.mean(), scale=sps.sem(d))
    verdict = "resolved" if p_adj < 0.05 else "not resolved"
    sign = lambda v: ("+" if v > 0 else "") + f"{v:.3f}"  # noqa: E731
    return f"{sign(d.mean())} [{sign(low)}, {sign(high)}] p={_sign_flip_p(d):.3g}, adj. p={p_adj:.3g} (n={len(d)}{seeds}, {verdict})"


def test_paired_difference_column_equals_scipy_and_statsmodels(tmp_path):
    """Seeds are averaged within each target first (n = 3 targets, not 6 runs); the p-values of the
    table's comparisons are Holm-adjusted as statsmodels does; the verdict is the adjusted p's."""
    from statsmodels.stats.multitest import multipletests

    _store(tmp_path)
    md = render_table("real_repeats", tmp_path, "md", only=["psnr"], versus="AE-NeRF")
    cols = _header(md)
    i = cols.index("PSNR vs AE-NeRF")
    d = np.array([-(OFFSET[(t, 0)] + OFFSET[(t, 1)]) / 2 for t in ("t1", "t2", "t3")])  # DFRF - AE-NeRF per target
    # the family: DFRF's comparison (AD-NeRF's single pair has no interval and is no test)
    p_adj = multipletests([_sign_flip_p(d)], method="holm")[1][0]
    assert _row(md, "DFRF")[i] == _expected(d, p_adj, ", 2 seeds each")
    assert _row(md, "AE-NeRF")[i] == "(reference)"
    assert _row(md, "AD-NeRF")[i] == "-6.000 (n=1, no interval)"  # its one pair: AE-NeRF's (t1, seed 0), 22 - 28
    means = [np.mean([A[(t, 0)], A[(t, 1)]]) for t in ("t1", "t2", "t3")]
    ci = sps.t.interval(0.95, 2, loc=np.mean(means), scale=sps.sem(means))
    assert _row(md, "AE-NeRF")[cols.index("PSNR (ours)")].startswith(
        f"{np.mean(means):.2f} ± {(ci[1] - ci[0]) / 2:.3f} (n=3, 2 seeds each)"
    )
    assert _row(md, "resolvable difference")[i] == "none (n=3: smallest p 0.25 x 1 tests)"
    notes = md.split("\n\n")[-1]
    assert "adjusted by Holm over the 1 comparisons of the metric columns" in notes and "n = identities" in notes


def _two_rows(root, a: dict, b: dict) -> None:
    for (target, seed), v in a.items():
        make_cell(root, "real_repeats", f"a{target}{seed}", "AE-NeRF", v, identity=target, seed=seed)
        make_cell(root, "real_repeats", f"b{target}{seed}", "DFRF", b[(target, seed)], identity=target, seed=seed)


def test_counting_identities_not_seeds_changes_the_verdict_both_ways(tmp_path):
    """(1) 3 identities x 2 seeds, all six differences negative: as six runs the sign-flip p would be
    2/64 (resolved); as three identities it is 2/8 = 0.25: not resolved. (2) 6 identities x 2 seeds, in
    each identity one seed ahead and one a little further behind: as twelve runs half the signs are
    positive (p large); as six identities every mean is negative, p = 2/64: resolved."""
    a1 = {(t, s): 25.0 + k for k, (t, s) in enumerate((t, s) for t in ("i1", "i2", "i3") for s in (0, 1))}
    b1 = {key: v - 0.2 - 0.05 * k for k, (key, v) in enumerate(a1.items())}
    _two_rows(tmp_path / "one", a1, b1)
    runs = np.array([b1[k] - a1[k] for k in a1])
    assert _sign_flip_p(runs) < 0.05  # what counting seeds as runs would have claimed
    md = render_table("real_repeats", tmp_path / "one", "md", only=["psnr"], versus="AE-NeRF")
    entry = _row(md, "DFRF")[_header(md).index("PSNR vs AE-NeRF")]
    d = np.array([np.mean([b1[(t, s)] - a1[(t, s)] for s in (0, 1)]) for t in ("i1", "i2", "i3")])
    assert entry == _expected(d, _sign_flip_p(d), ", 2 seeds each") and entry.endswith("not resolved)")

    idents = [f"j{k}" for k in range(6)]
    a2 = {(t, s): 25.0 + k for k, t in enumerate(idents) for s in (0, 1)}
    b2 = {(t, s): v + (1.0 if s == 0 else -1.2 - 0.013 * idents.index(t)) for (t, s), v in a2.items()}
    _two_rows(tmp_path / "two", a2, b2)
    runs = np.array([b2[k] - a2[k] for k in a2])
    assert _sign_flip_p(runs) > 0.05
    md = render_table("real_repeats", tmp_path / "two", "md", only=["psnr"], versus="AE-NeRF")
    entry = _row(md, "DFRF")[_header(md).index("PSNR vs AE-NeRF")]
    d = np.array([np.mean([b2[(t, s)] - a2[(t, s)] for s in (0, 1)]) for t in idents])
    assert entry == _expected(d, _sign_flip_p(d), ", 2 seeds each") and entry.endswith(", resolved)")


def test_one_verdict_rule_holm_across_the_table(tmp_path):
    """Every comparison of a --versus table is one family: two columns whose raw p is 2/64 each are
    resolved alone but not together (Holm: 2 x 2/64 = 0.0625 for the smaller); equal evidence gets
    equal words, whatever the interval's edge."""
    from statsmodels.stats.multitest import multipletests

    idents = [f"j{k}" for k in range(6)]
    for k, t in enumerate(idents):
        make_cell(tmp_path, "real_repeats", f"a{t}", "AE-NeRF", 25.0 + k, identity=t, lpips=0.2)
        make_cell(tmp_path, "real_repeats", f"b{t}", "DFRF", 24.9 + k - 0.01 * k, identity=t, lpips=0.25 + 0.01 * k)
    alone = render_table("real_repeats", tmp_path, "md", only=["psnr"], versus="AE-NeRF")
    assert _row(alone, "DFRF")[_header(alone).index("PSNR vs AE-NeRF")].endswith(", resolved)")
    both = render_table("real_repeats", tmp_path, "md", only=["psnr", "lpips"], versus="AE-NeRF")
    cols = _header(both)
    psnr, lpips = _row(both, "DFRF")[cols.index("PSNR vs AE-NeRF")], _row(both, "DFRF")[cols.index("LPIPS vs AE-NeRF")]
    adj = multipletests([2 / 64, 2 / 64], method="holm")[1]
    assert f"adj. p={adj[0]:.3g}" in psnr and psnr.endswith("not resolved)")
    assert f"adj. p={adj[1]:.3g}" in lpips and lpips.endswith("not resolved)")


def test_resolvable_difference_row(tmp_path):
    """Under each comparison column: t(1 - 0.05/(2m), n-1) x sd / sqrt(n) of the paired differences."""
    idents = [f"j{k}" for k in range(8)]
    diffs = [-0.5, -0.3, -0.6, -0.2, -0.4, -0.45, -0.35, -0.55]
    for k, t in enumerate(idents):
        make_cell(tmp_path, "real_repeats", f"a{t}", "AE-NeRF", 25.0 + k, identity=t)
        make_cell(tmp_path, "real_repeats", f"b{t}", "DFRF", 25.0 + k + diffs[k], identity=t)
    md = render_table("real_repeats", tmp_path, "md", only=["psnr"], versus="AE-NeRF")
    sd = np.std(diffs, ddof=1)
    mdd = sps.t.ppf(1 - 0.05 / 2, 7) * sd / np.sqrt(8)
    assert _row(md, "resolvable difference")[_header(md).index("PSNR vs AE-NeRF")] == f"±{mdd:.3f} (sd {sd:.3f}, n=8)"


def test_seeds_of_one_identity_are_one_unit_without_an_interval(tmp_path):
    for seed, (a, b) in enumerate([(28.0, 27.0), (27.0, 28.2), (28.5, 28.0)]):
        make_cell(tmp_path, "real_repeats", f"a{seed}", "AE-NeRF", a, identity="may", seed=seed)
        make_cell(tmp_path, "real_repeats", f"b{seed}", "w/o AAA", b, identity="may", seed=seed)
    md = render_table("real_repeats", tmp_path, "md", only=["psnr"], versus="AE-NeRF")
    entry = _row(md, "w/o AAA")[_header(md).index("PSNR vs AE-NeRF")]
    assert entry == "-0.100 (n=1, 3 seeds each, no interval)"  # three seeds of one identity: one unit
    assert _row(md, "w/o AAA")[_header(md).index("PSNR (ours)")] == "27.73 (n=1, 3 seeds each)"


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

        def strip(t):
            return [li for li in t.splitlines() if not li.startswith("Protocol ")]

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
    res = CliRunner().invoke(
        main,
        [
            "eval",
            "--pred",
            str(tmp_path / "pred.mp4"),
            "--gt",
            str(tmp_path / "gt.mp4"),
            "--metrics",
            "psnr,ssim",
            "--out",
            str(tmp_path / "out"),
            "--export",
            str(tmp_path / "e.json"),
            "--label",
            "RAD-NeRF",
        ],
    )
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
    write_reference(
        refs / "real_repeats.json",
        "real_repeats",
        "smoke",
        [],
        {"A|may|0|300|self|0": {"psnr": 28.0}, "A|may|0|300|self|1": {"psnr": 27.0}},
    )
    monkeypatch.setenv("AEBENCH_REFERENCES", str(refs))
    make_cell(tmp_path / "runs", "real_quick", "a", "AE-NeRF", 28.1, identity="may")
    md = render_table("real_quick", tmp_path / "runs", "md", only=["psnr"])
    assert "run-to-run noise of this setup, measured by protocol real_repeats" in md
    assert "standard deviation between seeds PSNR 0.707" in md  # sqrt(0.5)
    assert "28.10 (n=1, one run)" in md


def test_export_with_versus_writes_the_family_and_old_files_are_still_read(tmp_path):
    """Schema 2: `export --versus` holds the table's comparisons (the same numbers and verdicts the
    table prints); a version 1 file (four cells of the real_repeats file as committed in that version) is still read."""
    from pathlib import Path as P

    _store(tmp_path / "runs")
    out = tmp_path / "r.json"
    res = CliRunner().invoke(
        main, ["export", "real_repeats", "--runs", str(tmp_path / "runs"), "--out", str(out), "--versus", "AE-NeRF", "--metrics", "psnr"]
    )
    assert res.exit_code == 0, res.output
    doc = json.loads(out.read_text())
    assert doc["schema_version"] == 2 and doc["comparisons"]["adjustment"] == "holm"
    tests = {(t["row"], t["metric"]): t for t in doc["comparisons"]["tests"]}
    dfrf = tests[("DFRF", "psnr")]
    assert dfrf["n"] == 3 and dfrf["seeds"] == [2, 2, 2] and dfrf["resolved"] is False
    md = render_table("real_repeats", tmp_path / "runs", "md", only=["psnr"], versus="AE-NeRF")
    assert f"adj. p={dfrf['p_adjusted']:.3g}" in _row(md, "DFRF")[_header(md).index("PSNR vs AE-NeRF")]
    assert doc["comparisons"]["family_size"] == 1 and tests[("AD-NeRF", "psnr")]["p_adjusted"] is None
    read_results(out)  # validates against version 2
    old = P(__file__).parent / "fixtures" / "results_v1_real_repeats.json"  # four cells of the version 1 real_repeats file
    assert json.loads(old.read_text())["schema_version"] == 1
    assert len(read_results(old).cells) == 4
    bad = CliRunner().invoke(main, ["export", "real_repeats", "--runs", str(tmp_path / "runs"), "--out", str(out), "--metrics", "psnr"])
    assert bad.exit_code == 2 and "give --versus ROW too" in bad.output


@pytest.mark.parametrize("version", [True, 1.0, "1", None])
def test_a_schema_version_that_is_not_a_whole_number_is_refused_by_name(tmp_path, version):
    _store(tmp_path / "runs")
    doc = export("real_repeats", tmp_path / "runs")
    doc["schema_version"] = version
    with pytest.raises(ResultsError, match="schema_version"):
        validate(doc)


def test_one_identity_gives_a_resolvable_row_that_says_none(tmp_path):
    for seed, (a, b) in enumerate([(28.0, 27.0), (27.0, 28.2)]):
        make_cell(tmp_path, "real_repeats", f"a{seed}", "AE-NeRF", a, identity="may", seed=seed)
        make_cell(tmp_path, "real_repeats", f"b{seed}", "DFRF", b, identity="may", seed=seed)
    md = render_table("real_repeats", tmp_path, "md", only=["psnr", "train_s"], versus="AE-NeRF")
    row = _row(md, "resolvable difference")
    assert row[_header(md).index("PSNR vs AE-NeRF")] == "none (n=1: no interval)"
    assert "over the 0 comparisons" in md


def test_cost_columns_are_shown_but_not_tested(tmp_path):
    _store(tmp_path)
    md = render_table("real_repeats", tmp_path, "md", only=["psnr", "train_s"], versus="AE-NeRF")
    entry = _row(md, "DFRF")[_header(md).index("training s vs AE-NeRF")]
    assert entry.endswith("(n=3, 2 seeds each, a cost: not tested)")
    assert "over the 1 comparisons" in md  # PSNR's DFRF row only


def test_with_earlier_keeps_the_grid_points_the_store_lacks_and_refuses_changed_protocols():
    """A row added to a protocol runs alone: the earlier results file gives the other rows' cells
    (the store's own cell wins at a grid point both hold); another protocol, a changed row or a
    changed setting is refused."""
    import dataclasses

    from aebench.harness.protocol.spec import Row, load_protocol
    from aebench.harness.report.results import Results, ResultsError, with_earlier

    now = load_protocol("real_identities", scale=None)
    before = dataclasses.replace(now, rows=[r for r in now.rows if r.label != "ER-NeRF"])

    def cell(row, identity):
        return {"row": row, "identity": identity, "clip_seconds": 0.0, "iters": 300, "audio": "self", "seed": 0, "dir": None}

    earlier = Results(before, [cell("AE-NeRF", "may"), cell("AE-NeRF", "cnn2"), cell("DFRF", "may")], origin="old.json")
    store = Results(now, [cell("ER-NeRF", "may"), {**cell("DFRF", "may"), "dir": "store"}], origin="runs")
    merged, kept = with_earlier(store, earlier)
    assert kept == 2 and len(merged.cells) == 4 and merged.spec is now
    assert [c["dir"] for c in merged.cells if c["row"] == "DFRF"] == ["store"]  # the store's cell, not the file's
    with pytest.raises(ResultsError, match="holds protocol 'real_quick'"):
        with_earlier(store, Results(load_protocol("real_quick", scale=None), [], origin="q.json"))
    changed = dataclasses.replace(before, rows=[Row("AE-NeRF", "aenerf", {"aenerf.aaa": False})] + before.rows[1:])
    with pytest.raises(ResultsError, match="row\\(s\\) AE-NeRF differ"):
        with_earlier(store, Results(changed, [], origin="c.json"))
    with pytest.raises(ResultsError, match="changed since that file"):
        with_earlier(store, Results(dataclasses.replace(before, metrics=["paper"]), [], origin="m.json"))
