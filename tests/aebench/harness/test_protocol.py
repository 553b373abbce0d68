"""Protocol runner: validation, cell expansion, run store, resume, locks, regression, Ray launcher."""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path

import pytest
import torch
import yaml
from click.testing import CliRunner

from aebench.config import ConfigError
from aebench.registry import REGISTERED as METHODS
from aebench.harness.protocol import ProtocolError, expand_cells, load_protocol
from aebench.harness.protocol.launchers import launch
from aebench.harness.report.regress import compare, compared_cells, deviation_summary
from aebench.harness.protocol.runner import run_cell
from aebench.harness.protocol.spec import available_protocols
from aebench.eval.registry import METRICS as METRICS_REGISTRY

PAPER_PROTOCOLS = {"self_driven", "cross_driven", "fewshot_length", "fewshot_iters", "ablation", "rrs", "smoke"}


@pytest.fixture(autouse=True)
def fake_method(monkeypatch):
    monkeypatch.setitem(METHODS, "noisy_gt", "tests.aebench.harness.fake_method:NoisyGT")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    from aebench.data.synth import make_corpus

    out = tmp_path_factory.mktemp("corpus3")
    make_corpus(out, identities=3, seconds=2.0, size=16, seed=0)
    return out


def write_protocol(tmp_path: Path, **fields) -> Path:
    spec = {
        "name": "toy",
        "table": None,
        "metrics": ["psnr", "ssim"],
        "rows": [{"label": "A", "method": "noisy_gt"}, {"label": "B", "method": "noisy_gt", "set": {"noisy_gt.noise": 6.0}}],
        "targets": ["synth_02"],
        "base": "leave_one_out",
        "data": "synth",
        "grid": {"clip_seconds": [0, 0.4], "iters": [5], "audio": ["self"], "seed": [0]},
        "settings": {"data.size": 16, "train.render_frames": 4},
    }
    spec.update(fields)
    path = tmp_path / "toy.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


@pytest.fixture(scope="module")
def six_seconds(tmp_path_factory) -> Path:
    """A corpus as long as the smoke scale's (6 s: a 3 s few-shot clip fits its training half), at 16 px."""
    from aebench.data.synth import make_corpus

    out = tmp_path_factory.mktemp("corpus6s")
    make_corpus(out, identities=3, seconds=6.0, size=16, seed=0)
    return out


def test_every_paper_protocol_ships_and_loads_at_every_scale(six_seconds):
    corpus = six_seconds
    assert PAPER_PROTOCOLS <= set(available_protocols())
    for name in PAPER_PROTOCOLS:
        for scale in ("smoke", "small", "paper"):
            p = load_protocol(name, scale)
            assert p.rows and p.metrics
        smoke = load_protocol(name, "smoke")
        assert smoke.data == "synth", f"{name} must run on the synthetic corpus at smoke scale"
        cells = expand_cells(smoke, corpus, ["data.size=16"])  # the 16 px test corpus
        assert cells and all(c.cfg.scale == "smoke" for c in cells)


def test_real_quick_prepares_its_clips_on_first_use(tmp_path, shared_data):
    from aebench.harness.protocol.launchers import prepared_clips

    p = load_protocol("real_quick")
    assert p.data == "clips" and p.clips["from"] == "shared:clips" and p.targets == ["may"]
    assert {"self", "shared:audio/hdtf_rd_radio31_000.wav"} == set(p.grid["audio"])
    assert {r.label for r in p.rows} == {"AE-NeRF", "w/o AAA", "DFRF", "AD-NeRF", "ER-NeRF"}
    clips = tmp_path / "clips"
    clips.mkdir()
    (clips / "may_short.mp4").symlink_to(shared_data / "clips" / "may_short.mp4")
    spec = {**p.clips, "from": str(clips), "size": 64, "max_seconds": 1}
    root = prepared_clips(spec, under=tmp_path / "prepared")
    assert root.name == "clips-64px-25fps-1s" and (root / "may" / "meta.json").exists()
    from aebench.data import list_identities

    assert [i.name for i in list_identities(root)] == ["may"]
    mtime = (root / "may" / "meta.json").stat().st_mtime_ns
    assert prepared_clips(spec, under=tmp_path / "prepared") == root  # second use: nothing prepared again
    assert (root / "may" / "meta.json").stat().st_mtime_ns == mtime
    (tmp_path / "none").mkdir()
    with pytest.raises(ProtocolError, match="no video clips in"):
        prepared_clips({**spec, "from": str(tmp_path / "none")}, under=tmp_path / "prepared")


def test_protocol_validation_names_valid_fields(tmp_path):
    with pytest.raises(ProtocolError, match="unknown field.*nope.*valid"):
        load_protocol(write_protocol(tmp_path, nope=1))
    with pytest.raises(ProtocolError, match="grid: unknown field"):
        load_protocol(write_protocol(tmp_path, grid={"clip": [1]}))
    with pytest.raises(ProtocolError, match="unknown protocol 'missing'"):
        load_protocol("missing")


def test_rows_cannot_change_the_shared_training_conditions(tmp_path):
    for key in ("train.batch_rays", "train.face_fraction", "features", "data.size", "seed"):
        rows = [{"label": "A", "method": "noisy_gt"}, {"label": "B", "method": "noisy_gt", "set": {key: 1}}]
        with pytest.raises(ProtocolError, match=f"rows\\[1\\] sets {key}: training conditions .* are shared"):
            load_protocol(write_protocol(tmp_path, rows=rows))


def test_two_rows_of_a_protocol_get_identical_ray_batches(corpus):
    """Equal footing: AE-NeRF, DFRF, AD-NeRF and ER-NeRF rows of one protocol see the same rays,
    colours and (for the reference methods) the same references at every step, for the same seed."""
    import torch

    from aebench.data import Identity
    from aebench.registry import get_method
    from aebench.engine.views import Views

    cells = expand_cells(load_protocol("smoke"), corpus, ["data.size=16"])
    assert {c.method for c in cells} == {"aenerf", "dfrf", "adnerf", "ernerf"}
    batches = {}
    for cell in cells:
        method = get_method(cell.method)
        clip = Identity.open(corpus / cell.identity).at_size(int(cell.cfg.data.size)).fewshot_clip(cell.clip_seconds)
        views = [Views.from_identity(clip, str(cell.cfg.features))]
        train, settings = method.train_settings(cell.cfg), method.settings(cell.cfg)
        fn = method.batch_fn(views, train, settings.n_refs)
        batches[cell.row] = [fn(step, torch.Generator().manual_seed(int(cell.cfg.seed) * 1_000_003 + step)) for step in (0, 7)]
    rows = list(batches)
    first = batches[rows[0]]
    for row in rows[1:]:
        for a, b in zip(first, batches[row]):
            for key in ("rays_o", "rays_d", "rgb", "label", "bg", "uv"):
                assert torch.equal(a[key], b[key]), (row, key)
            assert a["frame_index"] == b["frame_index"]
            if a["refs"] is not None and b["refs"] is not None:
                assert torch.equal(a["refs"], b["refs"]), row
    # and the shared conditions are really the same in every cell's resolved config
    assert len({str(c.cfg.train) for c in cells}) == 1 and len({c.cfg.features for c in cells}) == 1


def test_cell_expansion_counts_and_ids(tmp_path, corpus):
    protocol = load_protocol(write_protocol(tmp_path))
    cells = expand_cells(protocol, corpus)
    assert len(cells) == 2 * 1 * 2  # rows x targets x clip lengths
    assert len({c.cell_id for c in cells}) == 4
    again = expand_cells(load_protocol(write_protocol(tmp_path)), corpus)
    assert [c.cell_id for c in cells] == [c.cell_id for c in again]
    assert all(c.cfg.run.base_identities == ["synth_00", "synth_01"] for c in cells)
    assert {c.iters for c in cells} == {5}
    seeded = expand_cells(protocol, corpus, ["seed=3"])
    assert not {c.cell_id for c in seeded} & {c.cell_id for c in cells}
    with pytest.raises(ConfigError, match="unknown config key 'train.nope'"):
        expand_cells(protocol, corpus, ["train.nope=1"])
    with pytest.raises(ProtocolError, match="no row uses methods"):
        expand_cells(protocol, corpus, methods=["dfrf"])


def test_run_store_resume_after_failure_and_base_shared(tmp_path, corpus, monkeypatch):
    counter = tmp_path / "pretrain.count"
    monkeypatch.setenv("FAKE_METHOD_COUNTER", str(counter))
    protocol = load_protocol(write_protocol(tmp_path))
    cells = expand_cells(protocol, corpus)
    runs = tmp_path / "runs"
    monkeypatch.setenv("FAKE_METHOD_FAIL", "B")  # the "killed" half of the run
    first = launch(cells, runs, progress=False)
    assert [o.status for o in first] == ["done", "done", "failed", "failed"]
    failed_dir = runs / "toy" / cells[2].cell_id
    assert not (failed_dir / "done").exists() and "injected failure" in (failed_dir / "log.txt").read_text()
    done_dir = runs / "toy" / cells[0].cell_id
    for name in ("config.yaml", "cell.json", "metrics.json", "frames.csv", "render.mp4", "log.txt", "done"):
        assert (done_dir / name).exists(), name
    stamp = (done_dir / "done").read_text()
    monkeypatch.delenv("FAKE_METHOD_FAIL")
    second = launch(cells, runs, progress=False)
    assert [o.status for o in second] == ["skipped", "skipped", "done", "done"]
    steps = [li for li in (failed_dir / "log.txt").read_text().splitlines() if li.startswith("step ")]
    assert steps == ["step 1 loss=0.5 psnr=10", "step 2 loss=0.25 psnr=12"]  # the resumed cell logs its steps once
    assert (done_dir / "done").read_text() == stamp
    assert counter.read_text().count("pretrain") == 2  # one base model per row (its own setting), shared by its cells
    info = json.loads((done_dir / "cell.json").read_text())
    assert info["row"] == "A" and info["identity"] == "synth_02" and info["scale"] == "smoke"
    metrics = json.loads((done_dir / "metrics.json").read_text())
    assert 20 < metrics["summary"]["psnr"] < 40


def test_a_cell_records_its_provenance_cost_and_what_it_scored(tmp_path, corpus, monkeypatch):
    import subprocess

    from aebench.data import Identity
    from aebench.eval.frames import FrameSource
    from aebench.harness.protocol.runner import scored_source
    from aebench.provenance import sha256_frames

    monkeypatch.setenv("FAKE_METHOD_COUNTER", str(tmp_path / "count"))
    cells = expand_cells(load_protocol(write_protocol(tmp_path)), corpus)[:1]
    runs = tmp_path / "runs"
    assert [o.status for o in launch(cells, runs, progress=False)] == ["done"]
    d = runs / "toy" / cells[0].cell_id
    info = json.loads((d / "cell.json").read_text())
    prov = info["provenance"]
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True)
    if head.returncode == 0:  # tests run from a checkout (a wheel's tests: installed)
        assert prov["code"]["commit"] == head.stdout.strip() and isinstance(prov["code"]["dirty"], bool)
    import torch

    assert prov["machine"]["torch_threads"] == (int(cells[0].cfg.threads) or torch.get_num_threads())
    assert prov["machine"]["device"] == ("cuda" if torch.cuda.is_available() else "cpu")
    assert set(info["timings"]) == {"prepare_s", "pretrain_s", "finetune_s", "render_s", "eval_s"}
    assert all(v is None or v >= 0 for v in info["timings"].values())
    assert info["cost"]["train_s"] == info["timings"]["pretrain_s"] + info["timings"]["finetune_s"]
    assert info["cost"]["render_fps"] > 0 and info["cost"]["peak_mem"] > 0.05  # GiB: torch alone is more
    assert set(info["peak_memory"]) == {"pretrain", "finetune", "render", "eval"}
    metrics = json.loads((d / "metrics.json").read_text())
    n = metrics["info"]["n_frames"]
    pred = FrameSource.of(scored_source(d / "render.mp4")).limit(n)
    identity = Identity.open(Path(corpus) / cells[0].identity).at_size(int(cells[0].cfg.data.size))
    gt = [identity.split("test").frame(i) for i in range(n)]
    assert info["sha256"]["pred"] == sha256_frames(pred) == metrics["info"]["sha256"]["pred"]
    assert info["sha256"]["gt"] == sha256_frames(gt)
    from aebench.eval.registry import packages_of

    packages = metrics["info"]["provenance"]["packages"]  # the computed metrics' packages (their records say which)
    assert set(packages_of(metrics["summary"])) <= set(packages) and packages["opencv-python"] != "absent"


def test_cells_differing_only_in_driving_audio_share_one_finetune(tmp_path, corpus, monkeypatch):
    counter = tmp_path / "count"
    monkeypatch.setenv("FAKE_METHOD_COUNTER", str(counter))
    grid = {"clip_seconds": [0], "iters": [5], "audio": ["self", "synth_00"], "seed": [0]}
    cells = expand_cells(load_protocol(write_protocol(tmp_path, grid=grid)), corpus)
    assert len(cells) == 4 and len({c.cell_id for c in cells}) == 4
    outcomes = launch(cells, tmp_path / "runs", progress=False)
    assert [o.status for o in outcomes] == ["done"] * 4
    # rows A and B differ in a setting, so two fine-tunes; each drives its self- and cross-driven cell
    assert counter.read_text().count("finetune") == 2
    info = [json.loads((tmp_path / "runs" / "toy" / c.cell_id / "cell.json").read_text()) for c in cells]
    assert info[0]["finetuned"] == info[1]["finetuned"] != info[2]["finetuned"] == info[3]["finetuned"]


def test_rescore_adds_a_metric_to_finished_cells_without_training(tmp_path, corpus, monkeypatch):
    from aebench.harness.protocol.runner import rescore_cell

    counter = tmp_path / "count"
    monkeypatch.setenv("FAKE_METHOD_COUNTER", str(counter))
    cells = expand_cells(load_protocol(write_protocol(tmp_path, metrics=["psnr"])), corpus)[:1]
    launch(cells, tmp_path / "runs", progress=False)
    metrics = tmp_path / "runs" / "toy" / cells[0].cell_id / "metrics.json"
    assert set(json.loads(metrics.read_text())["summary"]) == {"psnr"}
    later = expand_cells(load_protocol(write_protocol(tmp_path, metrics=["psnr", "ssim"])), corpus)[:1]
    assert later[0].cell_id == cells[0].cell_id  # the metrics do not change what a cell trains
    assert rescore_cell(later[0], tmp_path / "runs").status == "done"
    summary = json.loads(metrics.read_text())["summary"]
    assert set(summary) == {"psnr", "ssim"} and 0 < summary["ssim"] <= 1
    assert counter.read_text().count("finetune") == 1 and counter.read_text().count("pretrain") == 1


def test_concurrent_runs_of_one_cell_do_not_collide(tmp_path, corpus, monkeypatch):
    cell = expand_cells(load_protocol(write_protocol(tmp_path)), corpus)[0]
    runs = tmp_path / "runs"
    outcomes = []
    threads = [threading.Thread(target=lambda: outcomes.append(run_cell(cell, runs, progress=lambda *_: None))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(o.status for o in outcomes) == ["done", "skipped"]


def _failing(findings):
    return [f.kind for f in findings if f.fails]


def test_regression_on_a_metric_without_a_better_side_is_two_sided():
    ref = {"cells": {"k": {"lip_dyn_dlib": 1.0}}}
    tol = METRICS_REGISTRY["lip_dyn_dlib"].tolerance
    assert _failing(compare(ref, {"k": {"lip_dyn_dlib": 1.0 + 0.5 * tol}})) == []
    for moved in (1.0 + 2 * tol, 1.0 - 2 * tol):
        assert _failing(compare(ref, {"k": {"lip_dyn_dlib": moved}})) == ["changed"]


def test_regression_compare_flags_changes_both_ways():
    """Beyond the tolerance either way fails: worse by the metric's direction, or better (an
    unexplained improvement is a change too); within it passes and its deviation is reported."""
    ref = {
        "tolerances": {"psnr": 1.0, "lmd_dlib": 0.5},
        "cells": {"A|x": {"psnr": 30.0, "lmd_dlib": 2.0, "lpips": None, "ssim": 0.9}, "B|x": {"psnr": 25.0}},
    }
    ok = compare(ref, {"A|x": {"psnr": 29.5, "lmd_dlib": 2.4, "lpips": None, "ssim": 0.91}, "B|x": {"psnr": 25.2}})
    assert _failing(ok) == []
    assert [f.kind for f in ok] == ["within", "within", "not-comparable", "within", "within"]
    assert [round(f.deviation, 6) for f in ok if f.deviation is not None] == [-0.5, 0.4, 0.01, 0.2]
    assert compared_cells(ok) == 2
    summary = deviation_summary(ok)
    assert summary[0].startswith("psnr: largest |deviation| 0.5 of tolerance 1 (50%; A|x; 2 cells)")
    bad = compare(ref, {"A|x": {"psnr": 28.0, "lmd_dlib": 1.0, "lpips": None, "ssim": None}})
    fails = {(f.cell, f.metric, f.kind) for f in bad if f.fails}
    assert fails == {("A|x", "psnr", "worse"), ("A|x", "lmd_dlib", "better"), ("A|x", "ssim", "missing-now"), ("B|x", "", "cell-missing")}
    better = compare(ref, {"A|x": {"psnr": 32.0, "lmd_dlib": 2.0, "lpips": None, "ssim": 0.9}, "B|x": {"psnr": 25.0}})
    assert _failing(better) == ["better"] and "an unexplained improvement is a change too" in str(better[0])
    worse_lmd = compare({"cells": {"A": {"lmd_dlib": 1.0}}, "tolerances": {"lmd_dlib": 0.1}}, {"A": {"lmd_dlib": 1.5}})
    assert _failing(worse_lmd) == ["worse"]


@pytest.mark.parametrize(
    "reference, message",
    [
        ({"cells": {}}, "holds no cells"),
        ({}, "holds no cells"),
        ({"cells": {"A": {}}}, "reference cell A holds no metrics"),
        ({"cells": {"A": {"psnr": float("nan")}}}, "reference value of psnr in cell A is nan"),
        ({"cells": {"A": {"psnr": "inf"}}}, "reference value of psnr in cell A is inf"),
        ({"cells": {"A": {"psnr": "15.4"}}}, "is '15.4', not a finite number"),
        ({"cells": {"A": {"psnr": 15.4}}, "tolerances": {"psnr": float("nan")}}, "tolerance of psnr is nan"),
        ({"cells": {"A": {"psnr": 15.4}}, "tolerances": {"psnr": -1.0}}, "tolerance of psnr is -1.0"),
        ({"cells": {"A": {"psnr": 15.4}}, "tolerances": {"psnr": 0}}, "tolerance of psnr is 0"),
        ({"cells": {"A": {"psnr": 15.4}}, "tolerances": {"psnr": None}}, "tolerance of psnr is None"),
        ({"cells": {"A": {"psnr": 15.4}}, "tolerances": [1.0]}, "tolerances is a mapping"),
        ({"cells": {"A": {"nosuch": 15.4}}}, "not a known metric"),
    ],
)
def test_regression_refuses_a_reference_that_compares_nothing(reference, message):
    from aebench.harness.report.regress import BadReference

    with pytest.raises(BadReference, match=re.escape(message)):
        compare(reference, {"A": {"psnr": 1.0}})


def test_regress_refuses_a_bad_reference_before_running_anything(tmp_path):
    from aebench.harness.cli import main

    ref = tmp_path / "ref.json"
    ref.write_text(json.dumps({"protocol": "smoke", "cells": {}}))
    runs = tmp_path / "runs"
    res = CliRunner().invoke(main, ["regress", "--reference", str(ref), "--runs", str(runs)])
    assert res.exit_code == 2 and "holds no cells" in res.output
    assert not (runs / "smoke").exists()  # nothing ran
    ref.write_text("{not json")
    res = CliRunner().invoke(main, ["regress", "--reference", str(ref), "--runs", str(runs)])
    assert res.exit_code == 2 and f"{ref} is not JSON" in res.output


def test_a_reference_a_check_would_refuse_is_never_written(tmp_path):
    from aebench.harness.report.regress import BadReference, write_reference

    with pytest.raises(BadReference, match="run value of psnr in cell A is inf"):
        write_reference(tmp_path / "r.json", "smoke", "smoke", [], {"A": {"psnr": float("inf")}})
    with pytest.raises(BadReference, match="no finished cells to write"):
        write_reference(tmp_path / "r.json", "smoke", "smoke", [], {})
    assert not (tmp_path / "r.json").exists()


@pytest.mark.parametrize("value", [float("nan"), float("inf"), "15.4", [15.4], True])
def test_regression_fails_a_current_value_that_is_not_a_finite_number(value):
    findings = compare({"cells": {"A": {"psnr": 15.4}}}, {"A": {"psnr": value}})
    assert _failing(findings) == ["not-a-number"] and "not a finite number" in str(findings[0])


def test_regress_cli_write_pass_and_fail(tmp_path, corpus, monkeypatch):
    from aebench.harness.cli.protocol import regress

    proto = write_protocol(tmp_path)
    monkeypatch.setattr("aebench.harness.protocol.launchers.data_root_for", lambda p, data=None: corpus)
    ref = tmp_path / "ref.json"
    runs = tmp_path / "runs"
    runner = CliRunner()
    from aebench.harness.protocol.plan import expand
    from aebench.harness.report.regress import write_reference
    from aebench.harness.report.results import of_cells

    spec, cells = expand(str(proto), [])
    launch(cells, runs, progress=False)
    current = {c["key"]: c["summary"] for c in of_cells(spec, runs, cells).cells}
    write_reference(ref, str(proto), "smoke", [], current)
    res = runner.invoke(regress, ["--reference", str(ref), "--read", "--runs", str(runs)])
    assert res.exit_code == 0, res.output
    assert "regression check passed: 4 cells compared" in res.output
    assert "deviation psnr: largest |deviation| 0 of tolerance" in res.output
    data = json.loads(ref.read_text())
    key = sorted(data["cells"])[0]
    data["cells"][key]["psnr"] = 59.0  # far above any toy render, inside PSNR's range
    ref.write_text(json.dumps(data))
    res = runner.invoke(regress, ["--reference", str(ref), "--read", "--runs", str(runs)])
    assert res.exit_code != 0
    assert f"REGRESSION {key}: psnr worse" in res.output


def test_two_workers_give_the_same_cells_as_one(tmp_path, corpus):
    """launcher=local workers=2: the cells run in two processes side by side (a registered test
    method included), with the same metrics as one after the other; a re-run skips them all."""
    protocol = load_protocol(write_protocol(tmp_path))
    cells = expand_cells(protocol, corpus)
    one = launch(cells, tmp_path / "one", progress=False)
    two = launch(cells, tmp_path / "two", progress=False, workers=2)
    assert [o.status for o in one] == [o.status for o in two] == ["done"] * 4
    assert [o.cell.cell_id for o in two] == [c.cell_id for c in cells]  # in the cells' order
    for c in cells:
        a = json.loads((tmp_path / "one" / "toy" / c.cell_id / "metrics.json").read_text())["summary"]
        b = json.loads((tmp_path / "two" / "toy" / c.cell_id / "metrics.json").read_text())["summary"]
        assert a == b
    assert [o.status for o in launch(cells, tmp_path / "two", progress=False, workers=2)] == ["skipped"] * 4
    with pytest.raises(ValueError, match="workers takes a whole number"):
        launch(cells, tmp_path / "x", workers=0)


def _two_voices(tmp_path, corpus):
    """The toy protocol driven by its own voice and by another identity's: 8 cells, 4 fine-tunes, 2 base models."""
    return expand_cells(
        load_protocol(write_protocol(tmp_path, grid={"clip_seconds": [0, 0.4], "iters": [5], "audio": ["self", "synth_00"], "seed": [0]})),
        corpus,
    )


def test_the_pool_trains_each_shared_model_once_before_what_needs_it(tmp_path, corpus, monkeypatch):
    """workers=2: one job per base model, per fine-tuned model and per cell, each waiting for
    what it needs; every model is trained once (counted in the worker processes)."""
    from aebench.harness.protocol.pool import plan_jobs

    cells = _two_voices(tmp_path, corpus)
    jobs = plan_jobs(cells, tmp_path / "runs")
    kinds = [j.kind for j in jobs.values()]
    # rows A and B differ in their method's own setting: a base model each, two fine-tunes each, a cell per voice
    assert (kinds.count("base"), kinds.count("model"), kinds.count("cell")) == (2, 4, 8)
    assert all(len(j.needs) == 1 and jobs[next(iter(j.needs))].kind == "base" for j in jobs.values() if j.kind == "model")
    assert all(len(j.needs) == 1 and jobs[next(iter(j.needs))].kind == "model" for j in jobs.values() if j.kind == "cell")
    counter = tmp_path / "counter.txt"
    monkeypatch.setenv("FAKE_METHOD_COUNTER", str(counter))
    outcomes = launch(cells, tmp_path / "runs", progress=False, workers=2)
    assert [o.status for o in outcomes] == ["done"] * 8
    assert sorted(counter.read_text().split()) == ["finetune"] * 4 + ["pretrain"] * 2
    assert plan_jobs(cells, tmp_path / "runs") == {}


def test_a_failing_base_model_fails_the_cells_that_need_it_without_running_them(tmp_path, corpus, monkeypatch):
    from aebench.harness.protocol.run_store import read_marker

    cells = _two_voices(tmp_path, corpus)
    counter = tmp_path / "counter.txt"
    monkeypatch.setenv("FAKE_METHOD_COUNTER", str(counter))
    monkeypatch.setenv("FAKE_METHOD_FAIL_PRETRAIN", "1")
    outcomes = launch(cells, tmp_path / "runs", progress=False, workers=2)
    assert [o.status for o in outcomes] == ["failed"] * 8
    assert counter.read_text().split() == ["pretrain"] * 2  # each base model tried once, not once per cell
    for o in outcomes:
        assert "base model of" in o.error and "injected pretrain failure" in o.error
        cell_dir = tmp_path / "runs" / "toy" / o.cell.cell_id
        record = read_marker(cell_dir / "failed.json")
        assert record and "injected pretrain failure" in record["error"]
        assert (cell_dir / "config.yaml").exists()  # reports count it as started, unfinished
    logs = list((tmp_path / "runs" / "_base").glob("*/log.txt"))
    assert len(logs) == 2 and all("Traceback" in log.read_text() for log in logs)
    assert any(str(log) in outcomes[0].error for log in logs)
    monkeypatch.delenv("FAKE_METHOD_FAIL_PRETRAIN")
    assert [o.status for o in launch(cells, tmp_path / "runs", progress=False, workers=2)] == ["done"] * 8


def test_auto_workers_fills_the_cores_with_cells_of_the_protocols_threads(tmp_path, corpus):
    from aebench.harness.protocol.pool import auto_workers, resolve_workers

    def cells(threads, device="cpu"):
        return expand_cells(load_protocol(write_protocol(tmp_path)), corpus, [f"threads={threads}", f"device={device}"])

    assert auto_workers(cells(1), cores=2) == 2
    assert auto_workers(cells(2), cores=2) == 1
    assert auto_workers(cells(0), cores=2) == 1  # torch's default: every core
    assert auto_workers(cells(1), cores=16) == 4  # no more workers than cells
    assert auto_workers(cells(3), cores=2) == 1
    assert auto_workers([], cores=2) == 1
    if not torch.cuda.is_available():  # device=cuda on a machine without: one at a time, each cell says why
        assert auto_workers(cells(1, "cuda"), cores=2) == 1
    assert resolve_workers("auto", cells(1), "slurm") == 1
    assert resolve_workers(3, cells(1)) == 3
    with pytest.raises(ValueError, match="or auto"):
        resolve_workers("many", cells(1))


def test_run_refuses_a_bad_worker_count(tmp_path):
    from aebench.harness.cli import main

    res = CliRunner().invoke(main, ["run", "protocol=smoke", "workers=two", "--runs", str(tmp_path)])
    assert res.exit_code == 2 and "workers=N takes a whole number of processes, at least 1, or auto" in res.output


def test_clips_from_several_folders_prepare_into_one_root(tmp_path, shared_data):
    from aebench.harness.protocol.launchers import prepared_clips

    a, b = tmp_path / "clips", tmp_path / "clips_extra"
    a.mkdir(), b.mkdir()
    (a / "may_short.mp4").symlink_to(shared_data / "clips" / "may_short.mp4")
    (b / "hdtf_radio2_8s.mp4").symlink_to(shared_data / "clips_extra" / "hdtf_radio2_8s.mp4")
    root = prepared_clips({"from": [str(a), str(b)], "size": 64, "max_seconds": 1, "fps": 25.0}, under=tmp_path / "p")
    from aebench.data import list_identities

    assert root.name == "clips+clips_extra-64px-25fps-1s"
    assert [i.name for i in list_identities(root)] == ["hdtf_radio2", "may"]
    (b / "may_short.mp4").symlink_to(shared_data / "clips" / "may_short.mp4")
    with pytest.raises(ProtocolError, match="would both be identity 'may'"):
        prepared_clips({"from": [str(a), str(b)], "size": 64, "max_seconds": 1, "fps": 25.0}, under=tmp_path / "p")


def _may_only(tmp_path, shared_data, size: int, seconds: float) -> Path:
    from aebench.harness.protocol.launchers import prepared_clips

    clips = tmp_path / "clips"
    clips.mkdir(exist_ok=True)
    if not (clips / "may_short.mp4").exists():
        (clips / "may_short.mp4").symlink_to(shared_data / "clips" / "may_short.mp4")
    return prepared_clips({"from": str(clips), "size": size, "max_seconds": seconds, "fps": 25.0}, under=tmp_path / "p")


def test_a_protocol_listing_a_metric_its_renders_cannot_yield_is_refused_before_any_work(tmp_path, shared_data):
    """real_quick without its expected_missing: LSE-C needs more than 50 frames of faces over 100 px,
    and 40 frames at 64 px have neither; the error names the metric, the need and the settings."""
    from aebench.harness.cli import main

    root = _may_only(tmp_path, shared_data, 128, 4)
    spec = yaml.safe_load((Path(__file__).parents[3] / "protocols" / "real_quick.yaml").read_text())
    spec.pop("expected_missing")
    spec.update(name="rq_sync", grid={"clip_seconds": [0], "iters": [None], "audio": ["self"], "seed": [0]})
    proto = tmp_path / "rq_sync.yaml"
    proto.write_text(yaml.safe_dump(spec))
    runs = tmp_path / "runs"
    res = CliRunner().invoke(main, ["run", f"protocol={proto}", f"data={root}", "--runs", str(runs)])
    assert res.exit_code == 2, res.output
    assert "lists sync_conf (LSE-C), whose recipe needs renders of at least 51 frames with faces of at least 101 px" in res.output
    assert "train.render_frames >= 51" in res.output and "data.size >= " in res.output
    assert "expected_missing: {sync_conf: REASON}" in res.output
    assert not (runs / "rq_sync").exists() and not (runs / "_base").exists()  # nothing trained
    spec["expected_missing"] = {"sync_conf": "too small", "sync_dist": "too small"}
    proto.write_text(yaml.safe_dump(spec))
    from aebench.harness.protocol.plan import expand

    _, cells = expand(str(proto), [], data=str(root))
    assert cells and all("sync_conf" not in c.metrics for c in cells)  # declared: not computed


def test_real_sync_renders_meet_syncnet_pythons_pipeline(tmp_path, shared_data):
    """The protocol made for LSE: 75 frames at 256 px, May's face above 100 px (feasibility only)."""
    from aebench.harness.protocol.plan import check_renders, face_px
    from aebench.data import Identity

    p = load_protocol("real_sync")
    assert not p.expected_missing and {"sync_conf", "sync_dist"} <= set(p.metrics)
    root = _may_only(tmp_path, shared_data, p.clips["size"], p.clips["max_seconds"])
    cells = expand_cells(p, root)
    check_renders(p, cells)  # does not raise
    assert face_px(Identity.open(root / "may").at_size(int(p.settings["data.size"]))) > 101
    assert face_px(Identity.open(root / "may").at_size(128)) < 100  # where real_fast's renders stand


def test_ray_launcher_matches_local(tmp_path, corpus):
    ray = pytest.importorskip("ray")
    protocol = load_protocol(write_protocol(tmp_path, rows=[{"label": "A", "method": "noisy_gt"}]))
    cells = expand_cells(protocol, corpus)
    local = launch(cells, tmp_path / "local", progress=False)
    try:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        remote = launch(cells, tmp_path / "ray", "ray", progress=False)
    finally:
        ray.shutdown()
    assert [o.status for o in local] == [o.status for o in remote] == ["done", "done"]
    for c in cells:
        a = json.loads((tmp_path / "local" / "toy" / c.cell_id / "metrics.json").read_text())["summary"]
        b = json.loads((tmp_path / "ray" / "toy" / c.cell_id / "metrics.json").read_text())["summary"]
        assert a == b


def test_run_at_paper_scale_without_wav2vec2_weights_is_a_clear_error(tmp_path, monkeypatch):
    from aebench.harness.cli import main

    monkeypatch.setenv("AEBENCH_WEIGHTS", str(tmp_path / "empty_store"))
    res = CliRunner().invoke(main, ["run", "protocol=smoke", "scale=paper", "--runs", str(tmp_path / "runs")])
    assert res.exit_code != 0 and "Traceback" not in res.output
    assert "uses features=wav2vec2" in res.output and "aebench weights add wav2vec2" in res.output
    assert not (tmp_path / "runs").exists()  # refused before any work


def test_a_protocol_pins_the_torch_threads_of_its_cells(tmp_path, corpus, monkeypatch):
    """``threads`` (pinned by protocols with a committed reference) is what every cell runs with,
    whatever the machine's default; torch's own count is restored afterwards."""
    import torch

    record = tmp_path / "threads"
    monkeypatch.setenv("FAKE_METHOD_THREADS", str(record))
    before = torch.get_num_threads()
    pinned = 1 if before != 1 else 2
    settings = {"threads": pinned, "data.size": 16, "train.render_frames": 2}
    cells = expand_cells(load_protocol(write_protocol(tmp_path, settings=settings)), corpus)
    launch(cells[:1], tmp_path / "runs", progress=False)
    assert record.read_text().split() == [str(pinned)] and torch.get_num_threads() == before
    for name in ("smoke", "real_quick"):  # the thread count their references were made with
        assert load_protocol(name).settings["threads"] == 1


def test_base_key_resolves_the_shared_field_section():
    """A NeRF method's settings hold the shared field part: the base model's key covers it (a base
    trained with another field encoding or grid lr is another base)."""
    from aebench.config import load_config
    from aebench.harness.protocol.cells import base_key

    run = ["run.base_identities=[a,b]"]
    plain = base_key(load_config(["method=dfrf", *run]))
    fast = base_key(load_config(["method=dfrf", "field.encoding=triplane", *run]))
    assert plain != fast
    assert plain != base_key(load_config(["method=dfrf", "field.lr_mult=10", *run]))


def test_a_setting_at_its_neutral_value_is_not_part_of_a_cell_id():
    """A setting declared with a neutral value (train.opacity_entropy: 0 = off, what the code computed
    before it existed) leaves the ids of the cells at that value as they were without it: a store
    written before the setting existed is still found. Away from it, the ids differ."""
    from aebench.config import load_config
    from aebench.harness.protocol.cells import base_key, cell_key, finetune_key

    run = ["method=dfrf", "run.base_identities=[a,b]", "run.identity=c"]
    now = load_config(run)
    before = load_config(run)
    before.train.pop("opacity_entropy")  # the config of a version without the setting
    for key in (cell_key, base_key, finetune_key):
        assert key(now) == key(before)
        assert key(load_config([*run, "train.opacity_entropy=1e-4"])) != key(now)


def test_a_multi_seed_reference_records_its_spread_and_tolerances_derive_from_it(tmp_path):
    import math

    from aebench.harness.report.regress import read_reference, tolerances_from, write_reference

    current = {
        "A|may|0|300|self|0": {"psnr": 28.0, "lpips": None},
        "A|may|0|300|self|1": {"psnr": 27.0, "lpips": None},
        "B|may|0|300|self|0": {"psnr": 25.0, "lpips": None},
        "B|may|0|300|self|1": {"psnr": 25.0, "lpips": None},
    }
    write_reference(tmp_path / "rep.json", "real_repeats", "smoke", [], current)
    spread = read_reference(tmp_path / "rep.json")["spread"]
    assert spread["sd"]["psnr"] == math.sqrt((0.5 + 0.0) / 2) and spread["dof"]["psnr"] == 2  # pooled within A and B
    assert spread["sd"]["lpips"] is None
    tol, how = tolerances_from(tmp_path / "rep.json")
    assert tol == {"psnr": pytest.approx(1.959964 * math.sqrt(2) * 0.5)} and "rep.json" in how
    write_reference(tmp_path / "one.json", "real_quick", "smoke", [], {"A|may|0|300|self|0": {"psnr": 28.0}})
    assert "spread" not in read_reference(tmp_path / "one.json")
    with pytest.raises(ValueError, match="holds no measured seed spread"):
        tolerances_from(tmp_path / "one.json")


def test_a_protocol_includes_shared_blocks_and_carries_them_merged(tmp_path):
    """include: merges shared blocks under the file's own fields (mappings key by key, scales too);
    the text a store records and a results file carries is the whole protocol, which reads back the
    same without the blocks. A missing block or a cycle is refused by name."""
    import dataclasses

    from aebench.harness.protocol.spec import ProtocolError, parse_protocol

    spec = load_protocol("ablation", scale="smoke")
    assert spec.settings["train.iters"] == 60 and spec.settings["train.pretrain_iters"] == 60  # own + the block's
    assert list(spec.table.columns) == ["PSNR", "SSIM", "LPIPS", "LMD", "Sync"] and spec.targets == ["synth_02"]
    assert "\ninclude:" not in spec.text and "expected_missing" in spec.text  # the blocks merged in
    again = parse_protocol(spec.text, tmp_path / "ablation.yaml", scale="smoke")
    fields = [f.name for f in dataclasses.fields(spec) if f.name not in ("text", "path")]
    assert all(getattr(again, f) == getattr(spec, f) for f in fields)
    assert list(load_protocol("rrs", scale=None).table.columns)[-1] == "training_hours"  # after the block's columns
    (tmp_path / "a.yaml").write_text("include: b.yaml\nmetrics: [psnr]\n")
    (tmp_path / "b.yaml").write_text("include: [a.yaml]\n")
    text = "name: x\ninclude: [a.yaml]\nrows: [{method: adnerf}]\n"
    with pytest.raises(ProtocolError, match="includes itself"):
        parse_protocol(text, tmp_path / "x.yaml")
    with pytest.raises(ProtocolError, match="include 'nosuch': no such block .*shared blocks: paper_columns, paper_table"):
        parse_protocol("name: x\ninclude: nosuch\nrows: [{method: adnerf}]\n", tmp_path / "x.yaml")
    (tmp_path / "c.yaml").write_text("name: c\n")
    with pytest.raises(ProtocolError, match=r"c.yaml: unknown field\(s\) \['name'\]"):
        parse_protocol("name: x\ninclude: c.yaml\nrows: [{method: adnerf}]\n", tmp_path / "x.yaml")
