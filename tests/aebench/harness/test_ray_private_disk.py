"""launcher=ray without a shared disk (aebench.harness.protocol.ray_launcher): a real two-node Ray
cluster on this machine whose worker node sees neither the run store nor the prepared data (a
private tmpfs over both, in its own mount namespace); the driver checks what each node sees,
ships each task its data and installs the store folders that come back. Also the pieces the
shipping stands on: ``ray.ship``, whole installs, paths moved in records."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from aebench.config import ConfigError, load_config
from aebench.harness.protocol import expand_cells, load_protocol
from aebench.harness.protocol.cells import RUNTIME_KEYS, settings_apart
from aebench.harness.protocol.launchers import launch
from aebench.registry import REGISTERED as METHODS
from tests.aebench.harness.fake_method import toy_protocol


@pytest.fixture(autouse=True)
def fake_method(monkeypatch):
    monkeypatch.setitem(METHODS, "noisy_gt", "tests.aebench.harness.fake_method:NoisyGT")


@pytest.fixture()
def corpus(tmp_path) -> Path:
    from aebench.data.synth import make_corpus

    make_corpus(tmp_path / "data", identities=2, seconds=2.0, size=16, seed=0)
    return tmp_path / "data"


def three_voices(tmp_path: Path, voices: Path) -> Path:
    """The toy protocol with two rows (B differs only in its label) driven by its own voice,
    synth_00's and a WAV file in ``voices``: six cells sharing one fine-tuned model (trained
    once), reading a second identity or a file as their driving audio."""
    import numpy as np
    from scipy.io import wavfile

    voices.mkdir(exist_ok=True)
    wavfile.write(voices / "voice.wav", 16000, (3000 * np.sin(np.arange(16000) / 7)).astype(np.int16))
    path = toy_protocol(tmp_path)
    spec = yaml.safe_load(path.read_text())
    spec["rows"].append({"label": "B", "method": "noisy_gt"})
    spec["grid"]["audio"] = ["self", "synth_00", str(voices / "voice.wav")]
    path.write_text(yaml.safe_dump(spec))
    return path


def test_ray_ship_is_in_no_cell_id_and_cells_of_one_entry_may_differ_in_it(tmp_path, corpus):
    """How a cell reached a node is not what it computes: shipped, it is the cell run in place."""
    protocol = load_protocol(three_voices(tmp_path, tmp_path / "voices"))
    plain, shipped = expand_cells(protocol, corpus), expand_cells(protocol, corpus, ["ray.ship=always"])
    assert shipped[0].cfg.ray.ship == "always" and plain[0].cfg.ray.ship == "auto"
    assert [c.cell_id for c in shipped] == [c.cell_id for c in plain]
    from omegaconf import OmegaConf

    configs = [OmegaConf.to_container(c.cfg, resolve=True) for c in (plain[0], shipped[0])]
    assert settings_apart(configs, allowed=RUNTIME_KEYS) == {}


def test_ray_ship_takes_auto_always_or_never():
    with pytest.raises(ConfigError, match="'ray.ship' must be one of auto, always, never, got sometimes"):
        load_config(["ray.ship=sometimes"])


def test_cells_asking_for_two_ways_to_ship_are_refused_before_ray_starts(tmp_path, corpus):
    ray = pytest.importorskip("ray")
    protocol = load_protocol(three_voices(tmp_path, tmp_path / "voices"))
    cells = expand_cells(protocol, corpus)[:1] + expand_cells(protocol, corpus, ["ray.ship=never"])[1:]
    with pytest.raises(ValueError, match="the cells set ray.ship to auto and never; give the run one value"):
        launch(cells, tmp_path / "runs", "ray", progress=False)
    assert not ray.is_initialized() and not (tmp_path / "runs").exists()


def test_install_puts_a_folder_whole_and_keeps_a_finished_one(tmp_path):
    from aebench.harness.protocol.ray_launcher import install, pack

    sent = tmp_path / "sent"
    (sent / "checkpoint").mkdir(parents=True)
    (sent / "checkpoint" / "w.bin").write_bytes(b"\x00\x01")
    (sent / "done").write_text("now\n")
    dest = tmp_path / "store" / "_finetune" / "m-1"
    (dest / "checkpoint").mkdir(parents=True)
    (dest / "stale.txt").write_text("an earlier attempt")  # unfinished: replaced whole
    assert install(pack(sent), dest)
    assert sorted(str(p.relative_to(dest)) for p in dest.rglob("*")) == ["checkpoint", "checkpoint/w.bin", "done"]
    (sent / "checkpoint" / "w.bin").write_bytes(b"other")
    assert not install(pack(sent), dest)  # finished: kept as it is
    assert (dest / "checkpoint" / "w.bin").read_bytes() == b"\x00\x01"
    assert sorted(p.name for p in dest.parent.iterdir()) == [".m-1.lock", "m-1"]  # no staging folder left beside it


def test_rebase_moves_the_paths_records_name_and_no_other(tmp_path):
    from aebench.harness.protocol.run_store import rebase

    folder = tmp_path / "cell"
    folder.mkdir()
    (folder / "base.json").write_text(json.dumps({"checkpoint": "/w/runs/_base/x/ckpt", "n": 3, "others": ["/w/runs2/y", "/w/runs"]}))
    (folder / "config.yaml").write_text(yaml.safe_dump({"data": {"root": "/w/data", "size": 16}}))
    (folder / "log.txt").write_text("base model -> /w/runs/_base/x\nnot /w/runsy\n")
    (folder / "frames.csv").write_text("/w/runs\n")
    rebase(folder, {"/w/runs": "/home/me/runs", "/w/data": "/srv/data"})
    assert json.loads((folder / "base.json").read_text()) == {
        "checkpoint": "/home/me/runs/_base/x/ckpt",
        "n": 3,
        "others": ["/w/runs2/y", "/home/me/runs"],
    }
    assert yaml.safe_load((folder / "config.yaml").read_text()) == {"data": {"root": "/srv/data", "size": 16}}
    assert (folder / "log.txt").read_text() == "base model -> /home/me/runs/_base/x\nnot /w/runsy\n"
    assert (folder / "frames.csv").read_text() == "/w/runs\n"  # not a record
    (folder / "log.txt").write_text("/w/runs/a and /w/data/b\n")
    rebase(folder, {"/w/runs": "/w/data/runs", "/w/data": "/srv/data"})  # a moved path is not moved again
    assert (folder / "log.txt").read_text() == "/w/data/runs/a and /srv/data/b\n"


def test_install_that_cannot_write_is_one_line_naming_the_folder(tmp_path):
    from aebench.harness.protocol.ray_launcher import install, pack

    (tmp_path / "sent").mkdir()
    (tmp_path / "store").write_text("a file where the store's folder should be")
    with pytest.raises(
        RuntimeError,
        match=r"launcher=ray: cannot write .*store/mine/c1 into the run store: .*"
        r"run the same command again",
    ):
        install(pack(tmp_path / "sent"), tmp_path / "store" / "mine" / "c1")


def probe_setup(tmp_path: Path) -> tuple[Path, list]:
    """A driver's marker in a store, and what a cell reads: an identity's meta.json, an audio file."""
    from aebench.harness.protocol.ray_launcher import _sha256

    marker = tmp_path / "runs" / ".ray-probe-t" / "marker"
    marker.parent.mkdir(parents=True)
    marker.write_text("token")
    meta, voice = tmp_path / "data" / "synth_00" / "meta.json", tmp_path / "voice.wav"
    meta.parent.mkdir(parents=True)
    meta.write_text("{}")
    voice.write_bytes(b"RIFF")
    return marker, [("identity", str(meta), _sha256(meta)), ("audio", str(voice), _sha256(voice))]


def test_a_node_check_names_what_the_node_cannot_see(tmp_path):
    from aebench.harness.protocol.ray_launcher import _probe

    marker, needs = probe_setup(tmp_path)
    assert _probe(str(marker), "token", needs) == []
    assert len(list(marker.parent.iterdir())) == 2  # it wrote beside the marker
    assert _probe(str(marker), "another run's token", needs) == [f"the run store {tmp_path / 'runs'}"]
    (tmp_path / "data" / "synth_00" / "meta.json").write_text('{"other": "preparation"}')
    (tmp_path / "voice.wav").unlink()
    assert _probe(str(marker), "token", needs) == [f"the prepared data {tmp_path / 'data'}", f"the driving audio {tmp_path / 'voice.wav'}"]


def test_a_node_that_sees_the_store_read_only_cannot_use_it(tmp_path):
    why = private_mounts_unavailable(tmp_path)
    if why:
        pytest.skip(why)
    marker, needs = probe_setup(tmp_path)
    store = shlex.quote(str(tmp_path / "runs"))
    code = f"from aebench.harness.protocol.ray_launcher import _probe; print(_probe({str(marker)!r}, 'token', {needs!r}))"
    res = subprocess.run(
        [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            f"mount --bind {store} {store} && mount -o remount,bind,ro {store} && "
            f"exec {shlex.quote(sys.executable)} -c {shlex.quote(code)}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).parents[3],
    )
    assert res.stdout.strip() == repr([f"the run store {tmp_path / 'runs'} (read-only there)"]), res.stderr


def test_a_task_that_fails_itself_is_a_failed_cell_or_a_base_models_error(tmp_path):
    """A shipped task that raised (its node lost, a shipment that would not unpack): the cell
    fails with the error's last line, the run goes on."""
    from aebench.harness.protocol.ray_launcher import _collect

    class Lost(Exception):
        pass

    class StubRay:
        def wait(self, refs, num_returns):
            return refs[:1], refs[1:]

        def get(self, ref):
            raise Lost("Traceback ...\n  File x\nthe node died")

    cell = object()
    cell_outcome = _collect(StubRay(), {"ref": ("cell", cell)}, tmp_path)
    assert cell_outcome[0] is cell and (cell_outcome[1].status, cell_outcome[1].error) == ("failed", "Lost: the node died")
    assert _collect(StubRay(), {"ref": ("base", cell)}, tmp_path) == (cell, "Lost: the node died")


def test_ray_ship_always_ships_without_checking_and_trains_a_shared_model_once(tmp_path, corpus, monkeypatch):
    """On a local Ray (which sees everything): ``always`` neither checks the nodes nor runs in
    place; the results land in the store, a failed cell's folder (its log) too; the cells that
    share the first cell's fine-tuned model wait for it instead of training their own."""
    ray = pytest.importorskip("ray")
    from aebench.harness.protocol import ray_launcher

    def never_called(*_, **__):
        raise AssertionError("ray.ship=always must ship, unchecked")

    monkeypatch.setattr(ray_launcher, "blind_nodes", never_called)
    monkeypatch.setattr(ray_launcher, "_run_in_place", never_called)
    counter = tmp_path / "counter"
    monkeypatch.setenv("FAKE_METHOD_COUNTER", str(counter))  # the local Ray's workers inherit these
    monkeypatch.setenv("FAKE_METHOD_FAIL", "B")
    cells = expand_cells(load_protocol(three_voices(tmp_path, tmp_path / "voices")), corpus, ["ray.ship=always"])
    try:
        ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
        outcomes = launch(cells, tmp_path / "runs", "ray", progress=False)
        again = launch(cells, tmp_path / "runs", "ray", progress=False)
    finally:
        ray.shutdown()
    assert [(o.cell.row, o.status) for o in outcomes] == [("A", "done")] * 3 + [("B", "failed")] * 3
    assert [o.status for o in again] == ["skipped"] * 3 + ["failed"] * 3
    assert "injected failure" in outcomes[3].error
    assert counter.read_text().split() == ["pretrain", "finetune"]
    _check_store(tmp_path / "runs", cells[:3], corpus)
    failed = tmp_path / "runs" / cells[3].protocol / cells[3].cell_id
    assert not (failed / "done").exists() and (failed / "log.txt").read_text().count("RuntimeError: injected failure") == 2


def _check_store(store: Path, cells, data: Path) -> None:
    """Every cell finished in ``store``, its records naming ``store`` and ``data`` (no temporary
    folder of the node that ran it)."""
    for c in cells:
        record = json.loads((store / c.protocol / c.cell_id / "cell.json").read_text())
        assert record["data_root"] == str(data)
        for key in ("base", "finetuned"):
            assert Path(record[key]).parent.parent == store and (Path(record[key]) / "done").is_file()
        base = json.loads((Path(record["base"]) / "base.json").read_text())
        assert Path(base["checkpoint"]).is_dir() and Path(base["checkpoint"]).is_relative_to(store)
        config = yaml.safe_load((store / c.protocol / c.cell_id / "config.yaml").read_text())
        assert config["data"]["root"] == str(data) and config["run"]["audio"] == c.audio


# --- the two-node cluster with a private disk ----------------------------------------------------


def test_ray_without_a_shared_disk_ships_cells_and_brings_results_back(tmp_path, corpus, monkeypatch):
    ray = pytest.importorskip("ray")
    why = private_mounts_unavailable(tmp_path)
    if why:
        pytest.skip(why)
    from aebench.harness.report.tables import render_table

    path = three_voices(tmp_path, tmp_path / "voices")
    protocol = load_protocol(path)
    cells, never = expand_cells(protocol, corpus), expand_cells(protocol, corpus, ["ray.ship=never"])
    from click.testing import CliRunner

    from aebench.harness.cli import main

    launch(cells, tmp_path / "local", progress=False)
    store, counter = tmp_path / "runs", tmp_path / "counter"
    store.mkdir()
    # this process keeps the auth mode of its first ray.init (a local one turns tokens on): the cluster takes it
    monkeypatch.setenv("RAY_AUTH_MODE", os.environ.get("RAY_AUTH_MODE", "disabled"))
    with two_node_cluster(hide=[store, corpus, tmp_path / "voices"], env={"FAKE_METHOD_COUNTER": str(counter)}) as address:
        monkeypatch.setenv("RAY_ADDRESS", address)
        try:
            from aebench.harness.protocol import ray_launcher

            monkeypatch.setattr(ray_launcher, "PROBE_TIMEOUT_S", 0.0)  # no node answers in no time
            with pytest.raises(RuntimeError, match=r"did not answer the run-store check in 0 s; check them with `ray status`"):
                launch(never, store, "ray", progress=False)
            monkeypatch.setattr(ray_launcher, "PROBE_TIMEOUT_S", 300.0)
            assert list(store.iterdir()) == []  # the check's marker is gone
            refused = CliRunner().invoke(
                main, ["run", f"protocol={path}", f"data={corpus}", "launcher=ray", "ray.ship=never", "--runs", str(store)]
            )
            assert [p.name for p in store.iterdir()] == ["_protocols"]  # the command's claim, no work
            outcomes = launch(cells, store, "ray", progress=False)
        finally:
            ray.shutdown()
    message = refused.output
    assert refused.exit_code == 1 and "Traceback" not in message, message
    assert message.count("cannot see") == 1 and "Error: launcher=ray with ray.ship=never, but node " in message, message
    assert (
        f"cannot see the run store {store} and the prepared data {corpus} and the driving audio "
        f"{tmp_path / 'voices' / 'voice.wav'}: mount them"
    ) in message, message
    assert [o.status for o in outcomes] == ["done"] * 6, [o.error for o in outcomes]
    assert counter.read_text().split() == ["pretrain", "finetune"]  # on the worker node, each once
    _check_store(store, cells, corpus)
    tables = [render_table(path, s).replace(str(s), "STORE") for s in (store, tmp_path / "local")]  # its caption names it
    assert tables[0] == tables[1] and "| A " in tables[0]
    for c in cells:
        ours, local = (
            json.loads((s / c.protocol / c.cell_id / "metrics.json").read_text())["summary"] for s in (store, tmp_path / "local")
        )
        assert ours == local


def private_mounts_unavailable(tmp_path: Path) -> str | None:
    """Why this machine cannot hide a folder from one process tree (None when it can)."""
    if shutil.which("unshare") is None:
        return "no unshare (util-linux): the private-disk Ray test needs it"
    probe = tmp_path / "mount-probe"
    probe.mkdir()
    try:
        res = subprocess.run(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c", f"mount -t tmpfs tmpfs {shlex.quote(str(probe))}"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unshare --mount failed ({exc}): the private-disk Ray test needs a private mount namespace"
    if res.returncode:
        return f"unshare --mount cannot mount a private tmpfs here (needs root or CAP_SYS_ADMIN): {res.stderr.strip()}"
    return None


@contextmanager
def two_node_cluster(hide: list[Path], env: dict[str, str]) -> Iterator[str]:
    """A Ray head that runs no task (``--num-cpus=0``) and one worker node (1 CPU, ``env`` added)
    in its own mount namespace with a private tmpfs over each of ``hide``: it sees the rest of
    this machine, not those folders. Yields the head's address; however the block ends, stops
    both by their process groups (ids we hold: never ``ray stop``, which would stop every Ray of
    this machine, another test's or user's too)."""
    from ray.util import get_node_ip_address

    ray_bin = str(Path(sys.executable).with_name("ray"))
    temp = Path(tempfile.mkdtemp(prefix="aeray-", dir="/tmp"))  # short: Ray's socket paths must fit 107 bytes
    full_env = {
        **os.environ,
        "RAY_AUTH_MODE": os.environ.get("RAY_AUTH_MODE", "disabled"),  # the driver's
        "RAY_USAGE_STATS_ENABLED": "0",
        **env,
    }
    full_env.pop("RAY_ADDRESS", None)
    address = f"{get_node_ip_address()}:{_free_port()}"
    started: list[subprocess.Popen] = []
    try:
        head = [
            ray_bin,
            "start",
            "--head",
            "--block",
            "--num-cpus=0",
            f"--port={address.rsplit(':', 1)[1]}",
            "--include-dashboard=false",
            f"--dashboard-port={_free_port()}",
            f"--ray-client-server-port={_free_port()}",
            f"--temp-dir={temp}",
            *_node_ports(),
        ]
        started.append(_start(head, full_env, temp / "head.log"))
        _wait_started(started[-1], temp / "head.log")
        mounts = " && ".join(f"mount -t tmpfs tmpfs {shlex.quote(str(p))}" for p in hide)
        worker = f"{mounts} && exec {shlex.quote(ray_bin)} start --block --address={address} --num-cpus=1 " + " ".join(_node_ports())
        started.append(_start(["unshare", "--mount", "--propagation", "private", "sh", "-c", worker], full_env, temp / "worker.log"))
        _wait_started(started[-1], temp / "worker.log")
        yield address
    finally:
        _stop(started, temp)
        shutil.rmtree(temp, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("", 0))
        return s.getsockname()[1]


def _node_ports() -> list[str]:
    """Ports of a node's agents, free ones (two nodes on one machine would both take the defaults)."""
    return [
        f"--dashboard-agent-listen-port={_free_port()}",
        f"--dashboard-agent-grpc-port={_free_port()}",
        f"--runtime-env-agent-port={_free_port()}",
        f"--metrics-export-port={_free_port()}",
        "--object-store-memory=100000000",
    ]


def _start(cmd: list[str], env: dict, log: Path) -> subprocess.Popen:
    """``cmd`` in a process group of its own (so it and every process it starts stop together)."""
    with open(log, "w") as out:
        return subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def _wait_started(proc: subprocess.Popen, log: Path, limit_s: float = 180.0) -> None:
    """Until ``ray start --block`` says its node runs (it has joined the cluster)."""
    deadline = time.monotonic() + limit_s
    while "Ray runtime started" not in log.read_text(errors="replace"):
        if proc.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"a Ray node did not start: {' '.join(proc.args)}\n{log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.5)


def _stop(started: list[subprocess.Popen], temp: Path) -> None:
    """Our Ray nodes stopped: their process groups asked, then made to; then any process that
    left its group but names our temporary folder (every Ray process of these nodes does)."""
    for sig, grace in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 10.0)):
        for proc in started:
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace
        for proc in started:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
    for pid in _processes_naming(str(temp)):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _processes_naming(text: str) -> list[int]:
    """Processes whose command line holds ``text``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if text.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                pass
    return found
