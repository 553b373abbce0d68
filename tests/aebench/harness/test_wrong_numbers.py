"""Issue 30, "no wrong number passes": each case of the hostile trial that turned wrong data into
a confident number with exit 0 (or a traceback) is refused here with a message naming it.
Cases about writing files are in test_cli_writes.py, media and frame folders in tests/eval."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from aebench.harness.cli import main
from aebench.harness.report.results import ResultsError, read_results
from aebench.harness.report.tables import render_table
from tests.aebench.harness.test_tables import make_cell

EXPORT = Path(__file__).parents[3] / "results" / "exports" / "real_quick.json"


def _cli(*args: str):
    res = CliRunner().invoke(main, list(args))
    assert "Traceback" not in res.output and not isinstance(res.exception, (TypeError, AttributeError, KeyError, RecursionError))
    return res


def _config(**train) -> dict:
    return {
        "seed": 0,
        "scale": "smoke",
        "data": {"root": "/x", "size": 32, "clip_seconds": 0.0},
        "train": {"iters": 3, "lr": 0.01, **train},
        "run": {"identity": "synth_02", "audio": "self"},
    }


def _cell_with_config(root: Path, cid: str, psnr: float, config: dict, **extra) -> None:
    make_cell(root, "ablation", cid, "AE-NeRF", psnr, **extra)
    (root / "ablation" / cid / "config.yaml").write_text(yaml.safe_dump(config))


# ----- tables never pool different experiments -----------------------------------------------


def test_cells_that_differ_in_a_setting_are_refused_not_pooled(tmp_path):
    """The trial: a second run with train.iters=4 beside one with 3 showed one entry, n=2."""
    _cell_with_config(tmp_path, "a", 15.0, _config(iters=3), identity="synth_01")
    _cell_with_config(tmp_path, "b", 16.0, _config(iters=4), identity="synth_02", iters=4)
    with pytest.raises(ResultsError, match=r"differ in train\.iters: 3 in 1 cell\(s\), 4 in 1 cell\(s\)"):
        render_table("ablation", tmp_path, "md")
    res = _cli("tables", "ablation", "--runs", str(tmp_path))
    assert res.exit_code != 0 and "different experiments, not repeats" in res.output


def test_seeds_and_identities_are_repeats(tmp_path):
    for i, (ident, seed) in enumerate([("synth_01", 0), ("synth_01", 1), ("synth_02", 0)]):
        cfg = _config()
        cfg["seed"], cfg["run"]["identity"], cfg["data"]["root"] = seed, ident, f"/data/{i}"
        _cell_with_config(tmp_path, f"c{i}", 15.0 + i, cfg, identity=ident, seed=seed)
    assert "(n=2, " in render_table("ablation", tmp_path, "md")


def test_a_results_file_that_pools_experiments_is_refused(tmp_path):
    doc = json.loads(EXPORT.read_text())
    doc["cells"][1]["config"]["train"]["lr"] = 1.0  # one cell of a row run with another learning rate
    row = doc["cells"][1]["row"]
    path = tmp_path / "r.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(ResultsError, match=rf"row '{row}'.*differ in train\.lr"):
        read_results(path)


# ----- validate refuses what cannot be a value ------------------------------------------------


def _doc_with(tmp_path: Path, edit, text: str | None = None) -> Path:
    doc = json.loads(EXPORT.read_text())
    edit(doc)
    path = tmp_path / "r.json"
    path.write_text(text if text is not None else json.dumps(doc))
    return path


def _set_summary(name, value):
    def edit(doc):
        doc["cells"][0]["summary"][name] = value

    return edit


@pytest.mark.parametrize(
    "edit,fragment",
    [
        (_set_summary("ssim", "inf"), "summary.ssim: inf is not a finite number"),
        (_set_summary("psnr", -3.0), "-3 is outside the range of PSNR [0, 60]"),
        (_set_summary("psnr", "inf"), "summary.psnr: inf is not a finite number"),
        (_set_summary("ssim", 1.5), "1.5 is outside the range of SSIM [-1, 1]"),
        (_set_summary("psnrr", 20.0), "unknown metric 'psnrr'"),
        (_set_summary("psnr", None), "null without a reason"),
    ],
)
def test_validate_refuses_values_a_metric_cannot_have(tmp_path, edit, fragment):
    path = _doc_with(tmp_path, edit)
    res = _cli("validate", str(path))
    assert res.exit_code != 0 and fragment in res.output, res.output


def test_validate_refuses_nan_literals_and_deep_nesting(tmp_path):
    text = EXPORT.read_text()
    nan = tmp_path / "nan.json"
    nan.write_text(text.replace('"psnr": ', '"psnr": NaN, "x": ', 1))
    res = _cli("validate", str(nan))
    assert res.exit_code != 0 and "NaN is not a JSON number" in res.output, res.output
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    res = _cli("validate", str(deep))
    assert res.exit_code != 0 and "nested too deeply" in res.output, res.output


# ----- the run store: damaged or impossible values are named, never shown --------------------


@pytest.mark.parametrize(
    "damage,fragment",
    [
        (lambda d: (d / "metrics.json").write_text('{"summary": {"psnr": 15.'), "metrics record"),
        (lambda d: (d / "cell.json").write_text('{"row": "AE-'), "cell record"),
        (lambda d: (d / "metrics.json").write_text('{"summary": {"psnr": NaN}}'), "NaN is not a JSON number"),
    ],
)
def test_a_damaged_cell_is_named_by_tables(tmp_path, damage, fragment):
    make_cell(tmp_path, "ablation", "a", "AE-NeRF", 21.0)
    damage(tmp_path / "ablation" / "a")
    res = _cli("tables", "ablation", "--runs", str(tmp_path))
    assert res.exit_code != 0 and fragment in res.output and str(tmp_path / "ablation" / "a") in res.output, res.output


@pytest.mark.parametrize(
    "value,problem",
    [
        ("15.4", "'15.4' is not a number"),
        ([15.4], "[15.4] is not a number"),
        ("inf", "inf is not a finite number"),
        (75.0, "75 is outside the range of PSNR [0, 60]"),
    ],
)
def test_a_stored_value_that_cannot_be_right_is_refused_not_shown(tmp_path, value, problem):
    """The trial: string values made tracebacks, a NaN passed regress; a cell scored before PSNR was
    capped holds "inf". Each is refused as a wrong number: missing, with the reason, never shown."""
    make_cell(tmp_path, "ablation", "a", "AE-NeRF", 21.0)
    make_cell(tmp_path, "ablation", "b", "AE-NeRF", 23.0, identity="synth_01")
    path = tmp_path / "ablation" / "a" / "metrics.json"
    record = json.loads(path.read_text())
    record["summary"]["psnr"] = value
    path.write_text(json.dumps(record))
    res = _cli("tables", "ablation", "--runs", str(tmp_path))
    assert res.exit_code == 0, res.output
    line = next(li for li in res.output.splitlines() if li.startswith("| AE-NeRF"))
    assert "23.00 (n=1 of 2" in line, line  # the other identity only, its count said
    assert f"psnr = {problem}" in res.output and "refused as a wrong number" in res.output


# ----- protocols: what would fail mid-run, or run something else, is refused at load ---------


def _protocol(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "p.yaml"
    path.write_text(text)
    return path


BASE = "name: mine\nmetrics: [psnr]\n"
ROWS = "rows:\n  - {label: A, method: aenerf}\n"


@pytest.mark.parametrize(
    "text,fragment",
    [
        (BASE + ROWS + "grid:\n  iters: [3]\n  iters: [4]\n", "key 'iters' appears twice"),
        (
            BASE + "rows:\n  - {label: A, method: aenerf}\n  - {label: A, method: aenerf, set: {aenerf.aaa: false}}\n",
            "row label(s) ['A'] used by more than one row",
        ),
        (BASE + ROWS + "targets: synth_02\n", "targets is all or a list of identity names, e.g. targets: [synth_02]"),
        ("name: mine\nmetrics: psnr\n" + ROWS, "metrics is a list"),
        (BASE + ROWS + "base: everything\n", "base is leave_one_out"),
        (BASE + ROWS + "grid: {iters: [2.7]}\n", "grid.iters: 2.7 is not a whole number"),
        (BASE + ROWS + "grid: {seed: [1e30]}\n", "grid.seed: '1e30' is not a whole number"),
        (BASE + ROWS + "grid: {seed: [1.0e+30]}\n", "grid.seed: 1e+30 is not a whole number"),
        (BASE + ROWS + "grid: {clip_seconds: [-1]}\n", "grid.clip_seconds: -1 is not a length"),
        (BASE + ROWS + "grid: {seed: [0, 0]}\n", "repeats a value"),
        (BASE + ROWS + "grid: {seed: []}\n", "grid.seed: no values"),
        (BASE + "rows: [aenerf]\n", "a row is a mapping"),
        (BASE + ROWS + "settings: [train.iters=3]\n", "settings is a mapping"),
        (BASE + ROWS + "settings: {train.iters: 2.7}\n", "'train.iters' takes a whole number, got 2.7"),
        (BASE.replace("name: mine", "name: _base") + ROWS, "protocol name '_base' must be a plain folder name"),
        (
            BASE + "rows:\n  - {label: A, method: aenerf, set: {slurm.partition: gpu}}\n",
            "rows[0] sets slurm.partition: launcher settings apply to a whole run",
        ),
    ],
)
def test_protocol_mistakes_are_refused_before_any_work(tmp_path, monkeypatch, text, fragment):
    monkeypatch.chdir(tmp_path)
    res = _cli("run", f"protocol={_protocol(tmp_path, text)}", "--runs", str(tmp_path / "runs"))
    assert res.exit_code != 0 and fragment in res.output, res.output
    assert not (tmp_path / "runs").exists() and not (tmp_path / "data").exists()


def test_the_shipped_protocols_still_load():
    from aebench.harness.protocol.spec import available_protocols, load_protocol

    for name in available_protocols():
        for scale in ("smoke", "small", "paper"):
            load_protocol(name, scale=scale)


def test_an_identity_copy_of_a_frame_is_scored_at_the_cap_by_the_cli(tmp_path):
    """The trial: eval on 49 noise frames plus one exact copy printed PSNR inf, exit 0."""
    import cv2
    import numpy as np

    rng = np.random.default_rng(0)
    gt = rng.integers(0, 256, (50, 16, 16, 3), dtype=np.uint8)
    pred = rng.integers(0, 256, gt.shape, dtype=np.uint8)
    pred[0] = gt[0]
    for name, frames in (("gt", gt), ("pred", pred)):
        d = tmp_path / name
        d.mkdir()
        for i, f in enumerate(frames):
            cv2.imwrite(str(d / f"{i:04d}.png"), f[..., ::-1])
    res = _cli(
        "eval",
        "--pred",
        str(tmp_path / "pred"),
        "--gt",
        str(tmp_path / "gt"),
        "--metrics",
        "psnr",
        "--out",
        str(tmp_path / "out"),
        "--export",
        str(tmp_path / "r.json"),
    )
    assert res.exit_code == 0, res.output
    summary = json.loads((tmp_path / "out" / "metrics.json").read_text())["summary"]
    assert 0 < summary["psnr"] < 60 and "inf" not in res.output
    assert _cli("validate", str(tmp_path / "r.json")).exit_code == 0
    shutil.rmtree(tmp_path / "out")


# ----- tables escape what would break them or run as a formula -------------------------------


@pytest.mark.parametrize("label", ["A|B", "two\nlines", '=HYPERLINK("http://x","y")', "-cmd", "@SUM(1)"])
def test_row_labels_cannot_break_a_table_or_run_as_a_formula(tmp_path, label):
    import csv
    import io

    make_cell(tmp_path, "ablation", "a", label, 21.0)
    md = render_table("ablation", tmp_path, "md")
    row = next(li for li in md.splitlines() if li.startswith("| ") and "21.00" in li)
    assert row.count(" | ") == md.splitlines()[2].count(" | ")  # as many cells as the header
    assert "two\nlines" not in md
    out = list(csv.reader(io.StringIO(render_table("ablation", tmp_path, "csv"))))
    first = next(r[0] for r in out[1:] if any("21.00" in v for v in r))
    assert first[0] not in "=+-@" or first.startswith("'")


def test_signed_numbers_are_not_taken_for_formulas():
    from aebench.harness.report.tables import csv_cell

    assert csv_cell("-1.03 [-1.86, -0.20]") == "-1.03 [-1.86, -0.20]" and csv_cell("-x") == "'-x"
    assert csv_cell("+0.16 [-0.20, +0.52]") == "+0.16 [-0.20, +0.52]" and csv_cell("+cmd") == "'+cmd"


# ----- a protocol's store folder holds one protocol ------------------------------------------


def test_a_user_protocol_named_like_a_shipped_one_does_not_pool_with_its_cells(tmp_path, monkeypatch):
    """The trial: a user protocol whose name: is smoke pooled into results/runs/smoke."""
    from aebench.harness.protocol.run_store import check_protocol_folder
    from aebench.harness.protocol.spec import load_protocol

    runs = tmp_path / "runs"
    shipped = load_protocol("smoke", scale=None)
    check_protocol_folder(runs, shipped, claim=True)  # what `aebench run protocol=smoke` records
    mine = tmp_path / "mine.yaml"
    mine.write_text(shipped.text + "\n# my own edit\n")
    make_cell(runs, "smoke", "a", "AE-NeRF", 21.0)
    for args in (["tables", str(mine), "--runs", str(runs)], ["run", f"protocol={mine}", "--runs", str(runs)]):
        res = _cli(*args)
        assert res.exit_code != 0 and "holds the cells of another protocol named 'smoke' (aebench:smoke)" in res.output
    same = tmp_path / "copy.yaml"
    same.write_text(shipped.text)  # a copy with the same text is the same protocol
    check_protocol_folder(runs, load_protocol(same, scale=None))


# ----- cells are keyed by their data, not its path --------------------------------------------


@pytest.fixture(scope="module")
def two_corpora(tmp_path_factory) -> tuple[Path, Path]:
    from aebench.data.synth import make_corpus

    a = tmp_path_factory.mktemp("corpus_a")
    make_corpus(a, identities=3, seconds=2.0, size=16, seed=0)
    b = tmp_path_factory.mktemp("corpus_b")
    make_corpus(b, identities=3, seconds=2.0, size=16, seed=1)  # other heads under the same names
    return a, b


def _ids(protocol: Path, root: Path) -> list[str]:
    from aebench.harness.protocol.cells import expand_cells
    from aebench.harness.protocol.spec import load_protocol

    return [c.cell_id for c in expand_cells(load_protocol(protocol), root)]


def test_the_same_data_moved_keeps_its_cells_and_other_data_at_the_same_path_does_not(tmp_path, two_corpora, monkeypatch):
    from aebench.registry import REGISTERED
    from tests.aebench.harness.test_protocol import write_protocol

    monkeypatch.setitem(REGISTERED, "noisy_gt", "tests.aebench.harness.fake_method:NoisyGT")
    a, b = two_corpora
    proto = write_protocol(tmp_path, grid={"iters": [5]})
    moved = tmp_path / "moved"
    shutil.copytree(a, moved)
    assert _ids(proto, moved) == _ids(proto, a)
    other = tmp_path / "other"
    shutil.copytree(b, other)
    assert not set(_ids(proto, other)) & set(_ids(proto, a))


def test_cells_of_data_prepared_again_are_not_shown_as_its_results(tmp_path, two_corpora, monkeypatch):
    """The trial: `data prepare` replaced an identity and `tables` showed the old one's numbers."""
    from aebench.harness.protocol.launchers import launch
    from aebench.harness.protocol.plan import expand
    from aebench.registry import REGISTERED
    from tests.aebench.harness.test_protocol import write_protocol

    monkeypatch.setitem(REGISTERED, "noisy_gt", "tests.aebench.harness.fake_method:NoisyGT")
    a, b = two_corpora
    data = tmp_path / "data"
    shutil.copytree(a, data)
    proto = write_protocol(tmp_path, grid={"iters": [5]}, rows=[{"label": "A", "method": "noisy_gt"}], data=str(data))
    runs = tmp_path / "runs"
    _, cells = expand(str(proto), [])
    launch(cells, runs, progress=False)
    assert "(n=1, one run)" in render_table(str(proto), runs, "md")
    shutil.rmtree(data / "synth_02")
    shutil.copytree(b / "synth_02", data / "synth_02")  # the identity prepared again from another source
    with pytest.raises(FileNotFoundError, match=r"1 finished on data prepared again since"):
        render_table(str(proto), runs, "md")


@pytest.mark.parametrize(
    "fields,override,fragment",
    [
        (
            {"grid": {"clip_seconds": [1000]}},
            [],
            "clip_seconds 1000: synth_02: a 1000.0 s clip needs 25000 frames but the training half has only 25",
        ),
        ({}, ["data.size=4096"], "data.size 4096 is above the 16 px synth_02 was prepared at"),
    ],
)
def test_cells_their_data_cannot_serve_are_refused_before_any_work(tmp_path, two_corpora, monkeypatch, fields, override, fragment):
    from aebench.harness.protocol.cells import expand_cells
    from aebench.harness.protocol.spec import ProtocolError, load_protocol
    from aebench.registry import REGISTERED
    from tests.aebench.harness.test_protocol import write_protocol

    monkeypatch.setitem(REGISTERED, "noisy_gt", "tests.aebench.harness.fake_method:NoisyGT")
    proto = write_protocol(tmp_path, **fields)
    with pytest.raises(ProtocolError, match=re.escape(fragment)):
        expand_cells(load_protocol(proto), two_corpora[0], override)


# ----- audio that is not sound is not silence ---------------------------------------------------


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_eval_refuses_audio_with_non_finite_samples(tmp_path, bad):
    """The trial: NaN samples gave "speech in 0% of the frames", as if the wav were silent."""
    import numpy as np

    from aebench.eval import evaluate
    from aebench.media import MediaError

    frames = np.random.default_rng(0).integers(0, 256, (10, 16, 16, 3), dtype=np.uint8)
    audio = np.zeros(16000, np.float32)
    audio[8000] = bad
    with pytest.raises(MediaError, match=r"the audio array: the audio has 1 NaN or infinite samples \(the first at 0.500 s\)"):
        evaluate(frames, frames, audio=audio, metrics=["lip_sync_dlib"], progress=False)


def test_a_native_size_run_records_the_size_it_ran_at(tmp_path, monkeypatch, two_corpora):
    """The trial: data.size=0 (native) ran at the corpus' 16 px and recorded 0."""
    from aebench.harness.protocol.launchers import launch
    from aebench.harness.protocol.plan import expand
    from aebench.registry import REGISTERED
    from tests.aebench.harness.test_protocol import write_protocol

    monkeypatch.setitem(REGISTERED, "noisy_gt", "tests.aebench.harness.fake_method:NoisyGT")
    proto = write_protocol(
        tmp_path,
        grid={"iters": [5]},
        rows=[{"label": "A", "method": "noisy_gt"}],
        data=str(two_corpora[0]),
        settings={"data.size": 0, "train.render_frames": 4},
    )
    _, cells = expand(str(proto), [])
    launch(cells, tmp_path / "runs", progress=False)
    record = json.loads((tmp_path / "runs" / "toy" / cells[0].cell_id / "cell.json").read_text())
    assert record["size"] == 16


# ----- what repeats may differ in ----------------------------------------------------------------


def test_voices_a_scale_adds_are_columns_not_pooled_experiments(tmp_path):
    """cross_driven names one voice at the top of its file and three at small/paper scale: cells of
    one row that differ only in the driving audio are its columns, not different experiments."""
    for i, audio in enumerate(["shared:audio/a.wav", "shared:audio/b.wav"]):
        cfg = _config()
        cfg["run"].update(audio=audio, audio_sha256=f"{i}" * 64)
        make_cell(tmp_path, "cross_driven", f"c{i}", "AE-NeRF", 20.0 + i, audio=audio)
        (tmp_path / "cross_driven" / f"c{i}" / "config.yaml").write_text(yaml.safe_dump(cfg))
    md = render_table("cross_driven", tmp_path, "md")
    assert "[a] (ours)" in md and "[b] (ours)" in md


def test_settings_older_cells_lack_and_where_cells_ran_do_not_split_an_entry(tmp_path):
    old, new = _config(), _config()
    new["run"]["audio_sha256"] = ""  # a key aebench added after the old cell ran
    new["threads"], new["device"], old["threads"], old["device"] = 1, "cuda:1", 2, "cuda:0"
    _cell_with_config(tmp_path, "a", 15.0, old, identity="synth_01")
    _cell_with_config(tmp_path, "b", 16.0, new, identity="synth_02")
    assert "15.50 ± 6.353 (n=2)" in render_table("ablation", tmp_path, "md")


def test_a_per_frame_value_out_of_range_refuses_the_metric_and_its_frames(monkeypatch):
    import dataclasses

    import numpy as np

    from aebench.eval import evaluate
    from aebench.eval.registry import METRICS, Value

    def broken(ctx, names):
        return {"psnr": Value(per_frame=np.array([20.0, float("inf"), 21.0]))}

    monkeypatch.setitem(METRICS, "psnr", dataclasses.replace(METRICS["psnr"], compute=broken))
    frames = np.zeros((3, 8, 8, 3), np.uint8)
    with pytest.warns(UserWarning, match="METRIC MISSING: psnr"):
        r = evaluate(frames, frames, metrics=["psnr"], progress=False)
    assert r.summary["psnr"] is None and "frame 1: inf is not a finite number" in r.missing["psnr"]
    assert all("psnr" not in row for row in r.frames)
