"""launcher=slurm on a real SLURM cluster (.ci/slurm_up starts a one-node one on this machine):
the same table as launcher=local, a job killed by scancel resumed by the next run, a cell's error
reported as one line, sbatch's refusal as one line, --detach with the cells' array waiting on
the base model's job. Skipped where no cluster answers, unless ``AEBENCH_REQUIRE_SLURM=1``
(set by .ci/run, which starts one), where that is a failure.

The test method (NoisyGT) runs in the jobs' own processes: its registration travels with the
jobs (the registry is passed to each, as to the workers of launcher=local), and the jobs import
it from the repository, their working directory."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from click.testing import CliRunner
from filelock import FileLock

from aebench.harness.cli import main
from aebench.registry import REGISTERED as METHODS
from tests.aebench.harness.fake_method import toy_protocol

REPO_ROOT = Path(__file__).resolve().parents[3]
#: resources this one-node CI cluster has: no GPU, a core and a GiB per job, quick polling
SMALL = ("slurm.gpus_per_job=0", "slurm.cpus_per_job=1", "slurm.mem_gb=1", "slurm.poll_s=1")


def slurm_missing() -> str | None:
    """Why no SLURM cluster can run jobs from here, None when one answers."""
    if importlib.util.find_spec("submitit") is None:
        return "submitit is not installed (pip install -e '.[dev]')"
    if shutil.which("sbatch") is None or shutil.which("sinfo") is None:
        return "no sbatch/sinfo (Debian's slurmctld, slurmd and munge; .ci/slurm_up starts a one-node cluster)"
    res = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=60)
    if res.returncode != 0 or not res.stdout.strip():
        return f"sbatch is here but no SLURM controller answers ({' '.join(res.stderr.split())}; .ci/slurm_up)"
    return None


@pytest.fixture
def cluster(tmp_path, monkeypatch):
    """A SLURM cluster that runs this repository's test method: skip (fail under
    AEBENCH_REQUIRE_SLURM=1) without one."""
    why = slurm_missing()
    if why:
        if os.environ.get("AEBENCH_REQUIRE_SLURM") == "1":
            pytest.fail(f"AEBENCH_REQUIRE_SLURM=1 but {why}")
        pytest.skip(f"no SLURM cluster: {why}")
    monkeypatch.setitem(METHODS, "noisy_gt", "tests.aebench.harness.fake_method:NoisyGT")
    monkeypatch.chdir(REPO_ROOT)  # the jobs start here: `tests.` imports
    monkeypatch.setenv("AEBENCH_DATA", str(tmp_path / "data"))  # sbatch passes the environment to the jobs


def two_cells(folder: Path) -> Path:
    """The toy protocol with two cells (2 and 3 iterations) that share one base model."""
    path = toy_protocol(folder)
    spec = yaml.safe_load(path.read_text())
    spec["grid"] = {"iters": [2, 3]}
    path.write_text(yaml.safe_dump(spec))
    return path


def run(path: Path, runs: Path, *args: str):
    return CliRunner().invoke(main, ["run", f"protocol={path}", "--runs", str(runs), *args])


def cell_dir(runs: Path, iters: int) -> Path:
    """The folder of the toy cell with ``iters`` iterations."""
    for d in sorted((runs / "mine").iterdir()):
        if d.is_dir() and yaml.safe_load((d / "config.yaml").read_text())["train"]["iters"] == iters:
            return d
    raise AssertionError(f"no cell of {iters} iterations under {runs / 'mine'}")


def wait_for(path: Path, limit_s: float = 180.0) -> str:
    deadline = time.monotonic() + limit_s
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} did not appear within {limit_s:g} s"
        time.sleep(0.2)
    return path.read_text()


def test_slurm_gives_local_table_resumes_a_killed_job_and_names_errors(tmp_path, monkeypatch, cluster):
    from aebench.harness.protocol.run_store import is_done
    from aebench.harness.report.tables import render_table

    path, local, runs = two_cells(tmp_path), tmp_path / "local", tmp_path / "slurm"
    assert run(path, local).exit_code == 0
    # a partition the cluster lacks: sbatch's own message, one line, before any job
    res = run(path, runs, "launcher=slurm", *SMALL, "slurm.partition=no_such_partition")
    assert res.exit_code == 1, res.output
    assert "sbatch refused the jobs: " in res.output and "Invalid partition name specified" in res.output
    assert "Traceback" not in res.output and not list((runs / "_slurm").glob("*_submitted.pkl"))
    # the 2-iteration cell fails with the cell's error; the 3-iteration one is scancel'ed mid fine-tune
    hold, counter = tmp_path / "hold", tmp_path / "counter"
    hold.mkdir()
    gate = hold / "iters-3"
    gate.touch()
    for key, value in (("FAKE_METHOD_HOLD", hold), ("FAKE_METHOD_FAIL", "A"), ("FAKE_METHOD_COUNTER", counter)):
        monkeypatch.setenv(key, str(value))
    first = {}
    follow = threading.Thread(target=lambda: first.update(res=run(path, runs, "launcher=slurm", *SMALL)))
    follow.start()
    try:
        job = wait_for(gate.with_suffix(".started"))
        subprocess.run(["scancel", job], check=True)
        follow.join(timeout=300)
    finally:
        gate.unlink()  # only once the killed job is gone (it would go on within SLURM's KillWait)
    out = first["res"].output
    assert first["res"].exit_code == 1, out
    assert "0 cells run, 0 already done, 2 failed" in out
    assert re.search(r"FAILED A \| synth_01 \| clip half \| 2 it \|.*: RuntimeError: injected failure", out), out
    assert f"SLURM job {job} ended without finishing the cell (CANCELLED); run the same command again" in out
    assert "Traceback" not in out
    killed = cell_dir(runs, 3)
    assert not is_done(killed)
    FileLock(str(killed.parent / f".{killed.name}.lock"), timeout=0).acquire()  # released by the killed job
    assert list((runs / "_slurm").glob(f"{job}_*log.err"))  # the job's log, in the run store by its id
    # the same command again: both cells finish (the base model is not trained again)
    monkeypatch.delenv("FAKE_METHOD_FAIL")
    res = run(path, runs, "launcher=slurm", *SMALL)
    assert res.exit_code == 0, res.output
    assert "2 cells run, 0 already done, 0 failed" in res.output
    assert counter.read_text().split().count("pretrain") == 1
    tables = [render_table(str(path), store, "md").replace(str(store), "RUNS") for store in (runs, local)]
    assert tables[0] == tables[1] and "| A " in tables[0]


def test_detach_submits_the_base_model_then_the_cells_array_waiting_for_it(tmp_path, cluster):
    path, runs = two_cells(tmp_path), tmp_path / "runs"
    res = run(path, runs, "launcher=slurm", *SMALL, "slurm.extra.hold=true", "seed=0", "--detach")  # held: none starts
    assert res.exit_code == 0, res.output
    base = re.search(r"job (\d+): base models \(1 job\)", res.output)
    cells = re.search(r"job (\d+): cells \(array of 2\)", res.output)
    try:
        assert base and cells, res.output
        assert f"follow with: aebench status {path} --runs {runs} seed=0\n" in res.output  # the cells' settings
        shown = subprocess.run(
            ["squeue", "-h", "-r", "-j", f"{base[1]},{cells[1]}", "-o", "%i|%T|%E|%j"], capture_output=True, text=True, check=True
        ).stdout.split()
        assert sorted(shown) == sorted(
            [
                f"{base[1]}|PENDING|(null)|aebench-mine-base",
                *(f"{cells[1]}_{k}|PENDING|afterany:{base[1]}(unfulfilled)|aebench-mine" for k in (0, 1)),
            ]
        )
    finally:
        subprocess.run(["scancel", *(m[1] for m in (base, cells) if m)], check=False)


def test_detach_is_for_slurm_and_slurm_needs_sbatch(tmp_path, monkeypatch):
    path, runs = toy_protocol(tmp_path), tmp_path / "runs"
    res = run(path, runs, "--detach")
    assert res.exit_code == 2 and "--detach is for launcher=slurm" in res.output
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))  # no sbatch anywhere
    monkeypatch.setenv("AEBENCH_DATA", str(tmp_path / "data"))
    res = run(path, runs, "launcher=slurm")
    assert res.exit_code == 1 and res.output.count("\n") == 1, res.output
    assert "launcher=slurm needs SLURM's sbatch, squeue, srun on PATH" in res.output
    assert not (tmp_path / "data").exists() and not (runs / "_protocols").exists()  # refused before any work


def test_slurm_settings_stay_out_of_cells_and_are_checked(tmp_path, monkeypatch):
    from aebench.config import ConfigError
    from aebench.harness.protocol.plan import expand
    from aebench.harness.protocol.slurm import slurm_settings

    monkeypatch.setitem(METHODS, "noisy_gt", "tests.aebench.harness.fake_method:NoisyGT")
    monkeypatch.setenv("AEBENCH_DATA", str(tmp_path / "data"))
    path = str(toy_protocol(tmp_path))
    _, plain = expand(path, [])
    protocol, moved = expand(path, ["slurm.partition=gpu", "slurm.time_min=5", "slurm.extra.account=lab"])
    assert [c.cell_id for c in plain] == [c.cell_id for c in moved]  # where a cell runs is not what it computes
    assert all("slurm" not in c.cfg for c in moved)
    settings = slurm_settings(protocol, ["slurm.partition=gpu", "slurm.time_min=5", "slurm.extra.account=lab"])
    assert settings["partition"] == "gpu" and settings["time_min"] == 5 and settings["extra"] == {"account": "lab"}
    with pytest.raises(ConfigError, match="'slurm.cpus_per_job' must be at least 1"):
        expand(path, ["slurm.cpus_per_job=0"])


def test_sbatch_parameters_ask_only_what_is_set():
    from aebench.harness.protocol.slurm import sbatch_parameters

    base = {"partition": "", "gpus_per_job": 0, "cpus_per_job": 2, "mem_gb": 0, "time_min": 30, "extra": {}}
    assert sbatch_parameters(base, "n") == {"job_name": "n", "time": 30, "cpus_per_task": 2}
    full = sbatch_parameters({**base, "partition": "gpu", "gpus_per_job": 1, "mem_gb": 1.5, "extra": {"qos": "hi"}}, "n", "afterany:7")
    assert full == {
        "job_name": "n",
        "time": 30,
        "cpus_per_task": 2,
        "partition": "gpu",
        "gpus_per_node": 1,
        "mem": "1536M",
        "dependency": "afterany:7",
        "additional_parameters": {"qos": "hi"},
    }


def test_a_job_that_fails_outside_its_cell_is_one_line_naming_its_log(tmp_path):
    from aebench.harness.protocol.slurm import _cell_outcome, sbatch_message

    job = SimpleNamespace(job_id="12_1", paths=SimpleNamespace(stderr=tmp_path / "12_1_0_log.err"))
    trace = (
        'Traceback (most recent call last):\n  File "x.py", line 1, in <module>\n    import aebench\n'
        "ModuleNotFoundError: No module named 'aebench'\n"
    )
    outcome = _cell_outcome(SimpleNamespace(), job, ("error", trace), "FAILED")
    assert outcome.status == "failed"
    assert outcome.error == (f"ModuleNotFoundError: No module named 'aebench' (SLURM job 12_1) [job log: {tmp_path / '12_1_0_log.err'}]")
    log = tmp_path / "13_0_log.err"
    log.write_text("srun: error: vm: task 0: Exited with exit code 2\n/nfs/venv/bin/python: No such file or directory\n")
    never = _cell_outcome(
        SimpleNamespace(), SimpleNamespace(job_id="13", paths=SimpleNamespace(stderr=log)), None, "FAILED"
    )  # the node could not start this Python: no shared filesystem
    assert (
        never.error == f"SLURM job 13 ended without running the cell (FAILED): /nfs/venv/bin/python: No such "
        f"file or directory [job log: {log}]"
    )
    assert sbatch_message(
        "sbatch: error: invalid partition specified: x\nsbatch: error: Batch job submission failed: Invalid partition name specified\n"
    ) == ("invalid partition specified: x; Batch job submission failed: Invalid partition name specified")


def test_a_submission_refused_half_way_takes_back_what_it_submitted(tmp_path, monkeypatch):
    from aebench.harness.protocol import slurm
    from aebench.harness.protocol.plan import expand

    monkeypatch.setitem(METHODS, "noisy_gt", "tests.aebench.harness.fake_method:NoisyGT")
    monkeypatch.setenv("AEBENCH_DATA", str(tmp_path / "data"))
    protocol, cells = expand(str(two_cells(tmp_path)), [])
    asked, cancelled = [], []

    def submit_array(folder, fn, calls, params):  # sbatch takes the base model's job, refuses the cells'
        asked.append(params)
        if len(asked) == 2:
            raise RuntimeError("launcher=slurm: sbatch refused the jobs: no")
        return [SimpleNamespace(job_id="41")]

    monkeypatch.setattr(slurm, "require_slurm", lambda: None)
    monkeypatch.setattr(slurm, "_submit_array", submit_array)
    monkeypatch.setattr(slurm, "cancel", lambda done: cancelled.extend(j.job_id for _, j in done.bases + done.cells))
    with pytest.raises(RuntimeError, match="sbatch refused the jobs"):
        slurm.submit(cells, tmp_path / "runs", slurm.slurm_settings(protocol, []))
    assert asked[1]["dependency"] == "afterany:41" and cancelled == ["41"]
