"""`aebench status`: a protocol's cells done, running, waiting and failed, read from the run
store alone; the runner's running.json and failed.json that it reads."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from aebench.harness.cli import main
from aebench.harness.protocol import status as status_mod
from aebench.harness.protocol.run_store import FAILED, RUNNING, cell_lock, job_id, lock_path, log_line, mark_running, write_json
from aebench.harness.protocol.status import folder_status
from aebench.registry import REGISTERED
from tests.aebench.harness.fake_method import NoisyGT, toy_protocol


class Peeking(NoisyGT):
    """NoisyGT that, while rendering, writes what `aebench status` sees of its own cell to the
    file named by ``PEEK_STATUS`` (a file: the runner may import this module under another name)."""

    def render(self, checkpoint, identity, driving_audio, cfg, out):
        seen = folder_status(Path(out).parent)
        with open(os.environ["PEEK_STATUS"], "a") as fh:
            fh.write(
                json.dumps({"row": str(cfg.run.row), "state": seen.state, "host": seen.host, "pid": seen.pid, "last_log": seen.last_log})
                + "\n"
            )
        return super().render(checkpoint, identity, driving_audio, cfg, out)


@pytest.fixture
def two_rows(tmp_path, monkeypatch) -> Path:
    """The toy protocol with rows A and B (two cells), its data built under tmp_path."""
    monkeypatch.setitem(REGISTERED, "noisy_gt", "tests.aebench.harness.test_status:Peeking")
    monkeypatch.setenv("AEBENCH_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("PEEK_STATUS", str(tmp_path / "peek.jsonl"))
    path = toy_protocol(tmp_path)
    spec = yaml.safe_load(path.read_text())
    spec["rows"].append({"label": "B", "method": "noisy_gt"})
    path.write_text(yaml.safe_dump(spec))
    return path


def status(path: Path, runs: Path, *args: str) -> tuple[int, str]:
    res = CliRunner().invoke(main, ["status", str(path), "--runs", str(runs), *args])
    assert res.exception is None or isinstance(res.exception, SystemExit), res.output
    return res.exit_code, res.output


def as_json(path: Path, runs: Path) -> dict:
    code, out = status(path, runs, "--json")
    assert code == 0, out
    return json.loads(out)


def test_before_a_run_every_cell_waits_and_data_not_there_is_one_line(two_rows, tmp_path):
    from aebench.harness.protocol.launchers import data_root_for
    from aebench.harness.protocol.run_store import check_protocol_folder
    from aebench.harness.protocol.spec import load_protocol

    runs = tmp_path / "store"
    protocol = load_protocol(str(two_rows), "smoke")
    check_protocol_folder(runs, protocol, claim=True)  # what `aebench run` does first
    code, out = status(two_rows, runs)
    assert code == 0 and "0 done, 0 running, 0 waiting, 0 failed" in out, out
    assert "note: the data of protocol mine is not prepared yet" in out and "Traceback" not in out

    data_root_for(protocol)  # the synthetic corpus built: the cells can be listed
    code, out = status(two_rows, runs)
    assert code == 0 and "0 done, 0 running, 2 waiting (2 not started), 0 failed" in out, out
    doc = as_json(two_rows, runs)
    assert doc["counts"] == {"done": 0, "running": 0, "waiting": 2, "failed": 0} and doc["note"] is None
    assert sorted(c["label"][0] for c in doc["cells"]) == ["A", "B"]
    assert all(c["planned"] and c["detail"] == "not started" for c in doc["cells"])


def test_a_run_seen_by_status_running_then_done_and_failed_then_run_again(two_rows, tmp_path, monkeypatch):
    runs = tmp_path / "store"
    monkeypatch.setenv("FAKE_METHOD_FAIL", "B")
    res = CliRunner().invoke(main, ["run", f"protocol={two_rows}", "--runs", str(runs)])
    assert res.exit_code == 1, res.output  # B failed

    # while each cell rendered, status saw it running, run by this process, at its last log line
    peeks = [json.loads(li) for li in (tmp_path / "peek.jsonl").read_text().splitlines()]
    assert [p["row"] for p in peeks] == ["A", "B"]
    for p in peeks:
        assert p["state"] == "running" and p["host"] == socket.gethostname() and p["pid"] == os.getpid()
        assert p["last_log"].endswith("] render")  # the stage the runner logged last

    code, out = status(two_rows, runs)
    assert code == 0 and "1 done, 0 running, 0 waiting, 1 failed" in out, out
    failed_table = out.split("failed (1)")[1]
    assert "B | synth_01" in failed_table and "RuntimeError: injected failure" in failed_table
    doc = as_json(two_rows, runs)
    by_row = {c["label"][0]: c for c in doc["cells"]}
    assert by_row["A"]["state"] == "done" and by_row["B"]["state"] == "failed"
    assert by_row["B"]["error"] == "RuntimeError: injected failure" and by_row["B"]["pid"] == os.getpid()
    assert not any((Path(c["dir"]) / RUNNING).exists() for c in doc["cells"])  # nobody runs them now

    monkeypatch.delenv("FAKE_METHOD_FAIL")  # run again: the failure is cleared, B done
    res = CliRunner().invoke(main, ["run", f"protocol={two_rows}", "--runs", str(runs)])
    assert res.exit_code == 0, res.output
    doc = as_json(two_rows, runs)
    assert doc["counts"] == {"done": 2, "running": 0, "waiting": 0, "failed": 0}
    assert not (Path(by_row["B"]["dir"]) / FAILED).exists()

    # with other settings than the run's: its cells are waiting, the store's marked as not planned
    code, out = status(two_rows, runs, "train.render_frames=3")
    assert code == 0 and "2 done, 0 running, 2 waiting (2 not started), 0 failed" in out, out
    done_table = out.split("done (2)")[1].split("waiting (2)")[0]
    assert done_table.count("* ") == 2 and "* not one of the cells the protocol expands to" in out


@pytest.fixture
def live_pid():
    proc = subprocess.Popen(["sleep", "120"])
    yield proc.pid
    proc.kill()
    proc.wait()


@pytest.fixture
def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()  # reaped: no such process any more
    return proc.pid


HERE, ELSEWHERE = "here", "elsewhere"


@pytest.mark.parametrize(
    "host, pid, locked, state, detail",
    [
        (HERE, "live", True, "running", ""),
        (HERE, "dead", True, "waiting", "interrupted"),  # the lock is not the recorded runner's
        (HERE, "live", False, "waiting", "interrupted"),  # a pid reused by another program
        (ELSEWHERE, "dead", True, "running", ""),  # another host: its lock tells
        (ELSEWHERE, "live", False, "waiting", "interrupted"),
        (None, None, True, "running", ""),  # locked before running.json is written
        (None, None, False, "waiting", "started"),  # progress but no record of who ran it
    ],
)
def test_who_runs_a_cell_is_told_by_its_lock_and_on_its_host_by_its_pid(
    tmp_path, monkeypatch, live_pid, dead_pid, host, pid, locked, state, detail
):
    cell_dir = tmp_path / "store" / "mine" / "abc"
    cell_dir.mkdir(parents=True)
    (cell_dir / "config.yaml").write_text("{}\n")
    log_line(cell_dir, "fine-tune")
    if host is not None:
        write_json(
            cell_dir / RUNNING,
            {
                "host": socket.gethostname() if host == HERE else "node-7",
                "pid": live_pid if pid == "live" else dead_pid,
                "started": "2025-01-02T03:04:05+00:00",
                "job": "123_4",
            },
        )
    if locked:
        with cell_lock(cell_dir):
            seen = folder_status(cell_dir)
    else:
        seen = folder_status(cell_dir)
        assert not lock_path(cell_dir).exists()  # probing never creates the lock file
    assert (seen.state, seen.detail) == (state, detail)
    assert seen.last_log.endswith("fine-tune")
    if host is not None:
        assert seen.job == "123_4" and seen.since == "2025-01-02 03:04:05Z"


@pytest.mark.parametrize(
    "host, pid, state, detail",
    [
        (HERE, "live", "running", ""),
        (HERE, "dead", "waiting", "interrupted"),
        (ELSEWHERE, "live", "running", "unverified: the cell lock cannot be probed from this host"),
    ],
)
def test_where_the_lock_cannot_be_probed_the_pid_tells_on_its_host(tmp_path, monkeypatch, live_pid, dead_pid, host, pid, state, detail):
    monkeypatch.setattr(status_mod, "lock_held", lambda cell_dir: None)  # a filesystem without flock
    cell_dir = tmp_path / "abc"
    cell_dir.mkdir()
    write_json(
        cell_dir / RUNNING,
        {
            "host": socket.gethostname() if host == HERE else "node-7",
            "pid": live_pid if pid == "live" else dead_pid,
            "started": None,
            "job": None,
        },
    )
    seen = folder_status(cell_dir)
    assert (seen.state, seen.detail) == (state, detail)


def test_a_simulated_running_cell_is_shown_with_host_job_pid_and_last_log_line(tmp_path, monkeypatch, live_pid, dead_pid):
    """A store whose protocol's data is not here (another machine prepared it): the store's cells
    alone, a running one (a live pid on this host, its lock held) and an interrupted one."""
    monkeypatch.setitem(REGISTERED, "noisy_gt", "tests.aebench.harness.fake_method:NoisyGT")
    monkeypatch.setenv("AEBENCH_DATA", str(tmp_path / "data"))
    path = toy_protocol(tmp_path)
    store = tmp_path / "store"
    monkeypatch.setenv("SLURM_ARRAY_JOB_ID", "991")
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "3")
    for name, pid in (("aaa", live_pid), ("bbb", dead_pid)):
        cell_dir = store / "mine" / name
        cell_dir.mkdir(parents=True)
        (cell_dir / "config.yaml").write_text(
            yaml.safe_dump(
                {
                    "run": {"row": "A", "identity": "synth_01", "audio": "self"},
                    "data": {"clip_seconds": 0.0},
                    "train": {"iters": 2},
                    "seed": 0,
                }
            )
        )
        mark_running(cell_dir)
        record = json.loads((cell_dir / RUNNING).read_text())
        write_json(cell_dir / RUNNING, {**record, "pid": pid})
        log_line(cell_dir, f"render of {name}")
    with cell_lock(store / "mine" / "aaa"):
        code, out = status(path, store)
    assert code == 0 and "0 done, 1 running, 1 waiting (1 interrupted), 0 failed" in out, out
    assert "not prepared yet" in out
    running, waiting = out.split("running (1)")[1].split("waiting (1)")
    assert "aaa" in running and socket.gethostname() in running and "991_3" in running and str(live_pid) in running
    assert "render of aaa" in running and "A | synth_01 | clip half | 2 it | audio self | seed 0" in running
    assert "bbb" in waiting and "interrupted" in waiting and "render of bbb" in waiting


def test_job_ids_of_slurm_array_tasks_and_jobs(monkeypatch):
    monkeypatch.delitem(sys.modules, "ray", raising=False)
    assert job_id({"SLURM_ARRAY_JOB_ID": "12", "SLURM_ARRAY_TASK_ID": "5", "SLURM_JOB_ID": "17"}) == "12_5"
    assert job_id({"SLURM_JOB_ID": "17"}) == "17"
    assert job_id({}) is None


def test_a_store_folder_of_another_protocol_file_of_the_same_name_is_refused(tmp_path, monkeypatch):
    from aebench.harness.protocol.run_store import check_protocol_folder
    from aebench.harness.protocol.spec import load_protocol

    monkeypatch.setitem(REGISTERED, "noisy_gt", "tests.aebench.harness.fake_method:NoisyGT")
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    theirs, mine = toy_protocol(tmp_path / "a"), toy_protocol(tmp_path / "b")  # both named mine
    check_protocol_folder(tmp_path / "store", load_protocol(str(theirs), "smoke"), claim=True)
    mine.write_text(mine.read_text().replace("iters:\n  - 2", "iters:\n  - 3"))  # other content
    code, out = status(mine, tmp_path / "store")
    assert code == 2 and "holds the cells of another protocol named 'mine'" in out, out


@pytest.mark.parametrize(
    "args, message",
    [
        (["nope"], "unknown protocol 'nope'"),
        (["{proto}", "protocol=smoke"], "name the protocol once, as PROTOCOL"),
        (["{proto}", "--runs", "{tmp}/missing"], "no run store at"),
        (["{proto}", "--runs", "{tmp}/empty"], "holds no run store: no protocol has run there"),
    ],
)
def test_mistakes_end_in_one_line(tmp_path, monkeypatch, args, message):
    monkeypatch.setitem(REGISTERED, "noisy_gt", "tests.aebench.harness.fake_method:NoisyGT")
    monkeypatch.setenv("AEBENCH_RUNS", str(tmp_path / "empty"))
    (tmp_path / "empty").mkdir()
    proto = toy_protocol(tmp_path)
    args = [a.format(proto=proto, tmp=tmp_path) for a in args]
    res = CliRunner().invoke(main, ["status", *args])
    assert res.exit_code == 2 and message in res.output and "Traceback" not in res.output, res.output
