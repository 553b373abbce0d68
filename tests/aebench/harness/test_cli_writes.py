"""What the commands write (issue 30, "no wrong number passes"): an output never lands on an
input (the same path, a symbolic or hard link to it, a folder holding it), a destination that
cannot be written is refused before any work, and a write that fails (a full disk, a folder made
read-only) ends in one line naming the path, with nothing half-written left behind."""

from __future__ import annotations

import csv
import errno
import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from click.testing import CliRunner

from aebench.harness.cli import main
from aebench.registry import REGISTERED as METHODS
from tests.aebench.harness.fake_method import toy_protocol

FAKE = "tests.aebench.harness.fake_method:NoisyGT"


def _full_disk(*_a, **_k):
    raise OSError(errno.ENOSPC, "No space left on device")


def refused(res, *fragments: str) -> str:
    """The command failed with a one-line message holding ``fragments`` (no traceback)."""
    assert res.exit_code != 0, res.output
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    assert "Traceback" not in res.output, res.output
    errors = [line for line in res.output.splitlines() if line.startswith("Error")]
    assert len(errors) == 1 and all(f in errors[0] for f in fragments), res.output
    return errors[0]


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (hidden ones too) with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(Path(folder).rglob("*")) if p.is_file()}


# ----- eval: a few tiny frames, PSNR only ------------------------------------------------------


@pytest.fixture
def clips(tmp_path, monkeypatch):
    """``pred.mp4`` and ``gt.mp4`` (3 frames of 16 px) in the working directory ``tmp_path``."""
    from aebench.media import write_video

    monkeypatch.chdir(tmp_path)
    frames = np.random.default_rng(0).integers(0, 256, (3, 16, 16, 3), dtype=np.uint8)
    write_video(tmp_path / "pred.mp4", frames, 25)
    write_video(tmp_path / "gt.mp4", frames[::-1], 25)
    return tmp_path


def _eval(*extra: str, out: str = "out"):
    return CliRunner().invoke(main, ["eval", "--pred", "pred.mp4", "--gt", "gt.mp4", "--metrics", "psnr", "--out", out, *extra])


def _not_scored(monkeypatch) -> None:
    """Scoring fails the test: a refusal must come before it."""
    import aebench.eval.api as api

    def scored(*_a, **_k):
        raise AssertionError("scored before the destination was checked")

    monkeypatch.setattr(api, "evaluate", scored)


@pytest.mark.parametrize(
    "export,fragment",
    [
        ("pred.mp4", "--export pred.mp4 is the --pred input"),
        ("gt.mp4", "--export gt.mp4 is the --gt input"),
        ("audio.wav", "--export audio.wav is the --audio input"),
        ("hard.mp4", "--export hard.mp4 is the --pred input"),  # a hard link to the prediction
        ("soft.mp4", "--export soft.mp4 is the --gt input"),  # a symbolic link to the ground truth
        ("out/metrics.json", "--export out/metrics.json and --out out would both write"),
    ],
)
def test_eval_never_exports_onto_an_input(export, fragment, clips, monkeypatch):
    (clips / "audio.wav").write_bytes(b"RIFF")
    os.link(clips / "pred.mp4", clips / "hard.mp4")
    os.symlink(clips / "gt.mp4", clips / "soft.mp4")
    before = snapshot(clips)
    _not_scored(monkeypatch)
    refused(_eval("--export", export, "--audio", "audio.wav"), fragment, "choose another file")
    assert snapshot(clips) == before  # the inputs unchanged, no out/ made


def test_eval_out_is_never_an_input_folder_but_may_hold_one(clips, monkeypatch):
    from aebench.media import read_video

    frames, _ = read_video(clips / "pred.mp4")
    folder = clips / "frames"
    folder.mkdir()
    import cv2

    for i, f in enumerate(frames):
        cv2.imwrite(str(folder / f"{i:04d}.png"), f[:, :, ::-1])
    before = snapshot(folder)
    res = CliRunner().invoke(main, ["eval", "--pred", "frames", "--gt", "gt.mp4", "--metrics", "psnr", "--out", "frames"])
    refused(res, "--out frames is the --pred input; choose another folder")
    assert snapshot(folder) == before
    inside = CliRunner().invoke(main, ["eval", "--pred", "frames", "--gt", "gt.mp4", "--metrics", "psnr", "--out", "frames/scores"])
    refused(inside, "--out frames/scores is inside the --pred input frames")
    # an output folder that holds an input is fine when nothing written there is one
    (clips / "run").mkdir()
    os.replace(clips / "pred.mp4", clips / "run" / "pred.mp4")
    ok = CliRunner().invoke(main, ["eval", "--pred", "run/pred.mp4", "--gt", "gt.mp4", "--metrics", "psnr", "--out", "run"])
    assert ok.exit_code == 0, ok.output
    assert (clips / "run" / "metrics.json").exists() and (clips / "run" / "pred.mp4").stat().st_size > 0


@pytest.mark.parametrize("option", ["--out", "--export"])
@pytest.mark.parametrize("kind,fragment", [("loop", "is a symbolic link loop"), ("dangling", "dangling")])
def test_eval_refuses_a_broken_link_as_destination_before_scoring(option, kind, fragment, clips, monkeypatch):
    link = clips / "dest"
    os.symlink(link if kind == "loop" else clips / "nowhere", link)
    _not_scored(monkeypatch)
    res = _eval(option, "dest") if option == "--export" else _eval(out="dest")
    refused(res, f"{option} dest", fragment)
    assert os.path.islink(link) and not (clips / "nowhere").exists()


def test_eval_refuses_a_parent_that_is_a_file_or_read_only_before_scoring(clips, monkeypatch):
    _not_scored(monkeypatch)
    (clips / "afile").write_text("x")
    refused(_eval(out="afile/sub"), "--out afile/sub: afile is a file, not a folder")
    refused(_eval("--export", "afile/r.json"), "--export afile/r.json: afile is a file, not a folder")
    refused(_eval("--export", "gt.mp4/r.json"), "gt.mp4 is a file, not a folder")
    (clips / "adir").mkdir()
    refused(_eval("--export", "adir"), "'adir' is a directory")  # click's own check
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **k: Path(p).name != "ro" and real_access(p, mode, **k))
    (clips / "ro").mkdir()
    refused(_eval(out="ro/out"), "--out ro/out: ro is not writable")
    refused(_eval("--export", "ro/r.json"), "--export ro/r.json: ro is not writable")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_eval_refuses_a_read_only_folder_before_scoring(clips, monkeypatch):
    (clips / "ro").mkdir()
    os.chmod(clips / "ro", 0o555)
    try:
        _not_scored(monkeypatch)
        refused(_eval(out="ro/out"), "ro is not writable")
    finally:
        os.chmod(clips / "ro", 0o755)


def _csv_writer_on_a_full_disk(monkeypatch):
    """frames.csv gets its header's first bytes, then the disk is full."""

    def writer(fh, *_a, **_k):
        fh.write("frame,")
        fh.flush()
        return SimpleNamespace(writerow=_full_disk)

    monkeypatch.setattr(csv, "writer", writer)


def test_eval_out_on_a_full_disk_leaves_nothing(clips, monkeypatch):
    _csv_writer_on_a_full_disk(monkeypatch)
    res = _eval()
    refused(res, "cannot write --out out", "No space left on device")
    assert not (clips / "out").exists()  # no metrics.json beside a 0-byte frames.csv.partial, no folder


def test_eval_out_on_a_full_disk_keeps_the_earlier_results_whole(clips, monkeypatch):
    assert _eval().exit_code == 0
    before = snapshot(clips / "out")
    assert set(before) == {"metrics.json", "frames.csv"}
    _csv_writer_on_a_full_disk(monkeypatch)
    refused(_eval(), "No space left on device")
    assert snapshot(clips / "out") == before


def _write_text_fails_for(monkeypatch, name: str, exc: OSError) -> None:
    """``Path.write_text`` of a file called ``name`` writes half, then raises ``exc``."""
    real = Path.write_text

    def write_text(self, data, *a, **k):
        if self.name != name:
            return real(self, data, *a, **k)
        real(self, data[: len(data) // 2], *a, **k)
        raise exc

    monkeypatch.setattr(Path, "write_text", write_text)


@pytest.mark.parametrize(
    "exc,fragment",
    [
        (OSError(errno.ENOSPC, "No space left on device"), "No space left"),
        (PermissionError(errno.EACCES, "Permission denied"), "Permission denied"),
    ],
)
def test_eval_export_failing_to_write_is_one_line_and_leaves_no_partial(exc, fragment, clips, monkeypatch):
    _write_text_fails_for(monkeypatch, "r.json", exc)
    refused(_eval("--export", "r.json"), "cannot write --export r.json", fragment)
    assert not (clips / "r.json").exists()
    assert not [p for p in clips.iterdir() if p.name.startswith(".")]  # no temporary left


def test_a_failed_write_is_one_line_naming_the_destination_or_the_file_that_failed(tmp_path):
    import click

    from aebench.harness.cli.checks import reported

    dest = tmp_path / "out"
    with pytest.raises(click.ClickException, match=f"^cannot write --out {dest}: No space left on device$"):
        with reported("--out", dest):
            _full_disk()
    with pytest.raises(click.ClickException, match=f"cannot write --out {dest}: Permission denied \\({dest}/a.png\\)"):
        with reported("--out", dest):
            raise PermissionError(errno.EACCES, "Permission denied", str(dest / "a.png"))
    with pytest.raises(click.ClickException, match="^/elsewhere/log.txt: Permission denied$"):  # a read, not the write
        with reported("--out", dest):
            raise PermissionError(errno.EACCES, "Permission denied", "/elsewhere/log.txt")
    with pytest.raises(FileNotFoundError, match="no finished cells"):  # aebench's own message, passed on
        with reported("--out", dest):
            raise FileNotFoundError("no finished cells")


def test_atomic_write_removes_its_temporary_when_the_write_fails(tmp_path, monkeypatch):
    from aebench.harness.protocol.run_store import atomic_write

    target = tmp_path / "sub" / "x.json"
    atomic_write(target, "old\n")
    _write_text_fails_for(monkeypatch, "x.json", OSError(errno.ENOSPC, "No space left on device"))
    with pytest.raises(OSError):
        atomic_write(target, "new\n" * 100)
    assert snapshot(tmp_path) == {"sub/x.json": b"old\n"}
    _write_text_fails_for(monkeypatch, "y.json", OSError(errno.ENOSPC, "No space left on device"))
    with pytest.raises(OSError):
        atomic_write(tmp_path / "new" / "deeper" / "y.json", "y")
    assert not (tmp_path / "new").exists()  # the folders it made for the file are gone too


# ----- the reports, on a toy protocol's run store -----------------------------------------------


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """The toy protocol run once: its YAML, the run store (one finished cell) and a results file."""
    root = tmp_path_factory.mktemp("store")
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(METHODS, "noisy_gt", FAKE)
        mp.setenv("AEBENCH_DATA", str(root / "data"))
        mp.chdir(root)
        protocol = toy_protocol(root)
        runs = root / "runs"
        res = CliRunner().invoke(main, ["run", f"protocol={protocol}", "--runs", str(runs)])
        assert res.exit_code == 0, res.output
        results = root / "results.json"
        res = CliRunner().invoke(main, ["export", str(protocol), "--runs", str(runs), "--out", str(results)])
        assert res.exit_code == 0, res.output
    cell = next(p for p in (runs / "mine").iterdir() if (p / "done").exists())
    return SimpleNamespace(root=root, protocol=protocol, runs=runs, cell=cell, results=results)


@pytest.fixture
def toy(store, monkeypatch, tmp_path):
    """The store, with the fake method registered and a fresh working directory."""
    monkeypatch.setitem(METHODS, "noisy_gt", FAKE)
    monkeypatch.setenv("AEBENCH_DATA", str(store.root / "data"))
    monkeypatch.chdir(tmp_path)
    return store


def _run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.mark.parametrize(
    "command,dest,fragment",
    [
        ("export", "cell/metrics.json", "--out {dest} is inside the run store input"),
        ("export", "protocol", "--out {dest} is the PROTOCOL input; choose another file"),
        ("export", "data", "is inside the data input"),
        ("compare", "cell/render.mp4", "--out {dest} is inside the run store input"),
        ("compare", "protocol", "is the PROTOCOL input"),
        ("compare", "strip.png", "--out {dest} names {dest} twice"),
        ("plot", "cell", "--out {dest} is the run store input; choose another folder"),
        ("plot", "cell/plots", "is inside the run store input"),
        ("report", "cell", "--out {dest} is the run store input; choose another folder"),
    ],
)
def test_reports_never_write_onto_what_they_read(command, dest, fragment, toy, tmp_path):
    identity = next(p for p in (toy.root / "data").rglob("meta.json")).parent
    where = {
        "cell/metrics.json": toy.cell / "metrics.json",
        "protocol": toy.protocol,
        "data": identity / "meta.json",
        "cell/render.mp4": toy.cell / "render.mp4",
        "strip.png": tmp_path / "strip.png",
        "cell": toy.cell,
        "cell/plots": toy.cell / "plots",
    }[dest]
    before = snapshot(toy.root)
    refused(_run(command, toy.protocol, "--runs", toy.runs, "--out", where), fragment.format(dest=where))
    assert snapshot(toy.root) == before


@pytest.mark.parametrize("command", ["plot", "report"])
def test_a_report_from_a_results_file_never_writes_onto_it(command, toy):
    before = toy.results.read_bytes()
    res = _run(command, "--from", toy.results, "--out", toy.results)
    refused(res, str(toy.results))
    assert toy.results.read_bytes() == before


def test_regress_write_never_writes_the_reference_onto_its_protocol(toy):
    before = toy.protocol.read_bytes()
    res = _run("regress", "--write", "--read", "--protocol", toy.protocol, "--reference", toy.protocol, "--runs", toy.runs)
    refused(res, f"--reference {toy.protocol} is the PROTOCOL input")
    assert toy.protocol.read_bytes() == before


@pytest.mark.parametrize(
    "command,option", [("plot", "--out"), ("report", "--out"), ("export", "--out"), ("compare", "--out"), ("regress", "--reference")]
)
def test_a_destination_that_cannot_be_written_is_refused_before_work(command, option, toy, tmp_path):
    os.symlink(tmp_path / "loop", tmp_path / "loop")
    args = ["regress", "--write", "--read", "--protocol", toy.protocol] if command == "regress" else [command, toy.protocol]
    refused(_run(*args, "--runs", toy.runs, option, tmp_path / "loop"), "symbolic link loop")
    (tmp_path / "afile").write_text("x")
    refused(_run(*args, "--runs", toy.runs, option, tmp_path / "afile" / "x"), "afile is a file, not a folder")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "loop"]


def test_plot_out_that_is_a_file_is_refused_before_drawing(toy, tmp_path):
    (tmp_path / "afile").write_text("x")
    refused(_run("plot", toy.protocol, "--runs", toy.runs, "--out", tmp_path / "afile"), "is a file; name a folder")


def _savefig_on_a_full_disk(monkeypatch):
    from matplotlib.figure import Figure

    def savefig(self, fname, *a, **k):
        Path(fname).write_bytes(b"\x89PNG half")
        _full_disk()

    monkeypatch.setattr(Figure, "savefig", savefig)


def test_plot_on_a_full_disk_is_one_line_and_leaves_no_partial_image(toy, tmp_path, monkeypatch):
    _savefig_on_a_full_disk(monkeypatch)
    refused(
        _run("plot", toy.protocol, "--runs", toy.runs, "--out", tmp_path / "png"),
        f"cannot write --out {tmp_path / 'png'}",
        "No space left on device",
    )
    assert list(tmp_path.iterdir()) == []  # no image, no temporary, no empty folder


def test_report_on_a_full_disk_is_one_line(toy, tmp_path, monkeypatch):
    _savefig_on_a_full_disk(monkeypatch)
    refused(_run("report", toy.protocol, "--runs", toy.runs, "--out", tmp_path / "page"), "No space left on device")
    assert "index.html" not in snapshot(tmp_path / "page") and not list(tmp_path.rglob("*.png"))


def test_report_on_a_read_only_folder_is_refused_before_work(toy, tmp_path, monkeypatch):
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **k: Path(p).name != "ro" and real_access(p, mode, **k))
    (tmp_path / "ro").mkdir()
    refused(_run("report", toy.protocol, "--runs", toy.runs, "--out", tmp_path / "ro" / "page"), "ro is not writable")
    assert snapshot(tmp_path) == {}


def test_compare_on_a_full_disk_leaves_neither_video_nor_strip(toy, tmp_path, monkeypatch):
    import aebench.media

    def write_video(path, frames, *a, **k):
        for _ in frames:  # the strip's frames are collected as the video is written
            pass
        Path(path).write_bytes(b"half a video")
        _full_disk()

    monkeypatch.setattr(aebench.media, "write_video", write_video)
    before = snapshot(toy.root)
    refused(
        _run("compare", toy.protocol, "--runs", toy.runs, "--out", tmp_path / "cmp.mp4"),
        f"cannot write --out {tmp_path / 'cmp.mp4'}",
        "No space left on device",
    )
    assert snapshot(tmp_path) == {} and snapshot(toy.root) == before


@pytest.mark.parametrize("command", ["export", "regress"])
def test_export_and_regress_on_a_full_disk_keep_the_old_file(command, toy, tmp_path, monkeypatch):
    dest = tmp_path / "dest.json"
    args = (
        ["export", toy.protocol, "--out", dest]
        if command == "export"
        else ["regress", "--write", "--read", "--protocol", toy.protocol, "--reference", dest]
    )
    first = _run(*args, "--runs", toy.runs)  # the earlier file
    assert first.exit_code == 0, first.output
    before = snapshot(tmp_path)
    _write_text_fails_for(monkeypatch, "dest.json", OSError(errno.ENOSPC, "No space left on device"))
    option = "--out" if command == "export" else "--reference"
    refused(_run(*args, "--runs", toy.runs), f"cannot write {option} {dest}", "No space left on device")
    assert snapshot(tmp_path) == before


# ----- data, bench --------------------------------------------------------------------------------


def test_data_prepare_never_replaces_the_folder_holding_its_clip(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ids" / "may").mkdir(parents=True)
    (tmp_path / "ids" / "may" / "may.mp4").write_bytes(b"a clip")
    refused(
        _run("data", "prepare", "ids/may/may.mp4", "--out", "ids"),
        "--out ids/may holds the CLIP input ids/may/may.mp4, and would be replaced",
    )
    assert snapshot(tmp_path) == {"ids/may/may.mp4": b"a clip"}


def test_data_preview_never_writes_onto_the_identity(synth_root, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    meta = synth_root / "synth_00" / "meta.json"
    before = meta.read_bytes()
    refused(_run("data", "preview", "synth_00", "--root", synth_root, "--out", meta), "is inside the identity input")
    assert meta.read_bytes() == before
    os.symlink(tmp_path / "nowhere.png", tmp_path / "dangling.png")
    refused(_run("data", "preview", "synth_00", "--root", synth_root, "--out", "dangling.png"), "dangling")


def test_bench_json_is_checked_before_the_benchmark(synth_root, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    meta = synth_root / "synth_01" / "meta.json"
    before = meta.read_bytes()
    common = ["method=aenerf", f"data.root={synth_root}"]
    refused(_run("bench", "train", *common, "--json", meta), "--json", "is inside the data.root input")
    refused(_run("bench", "render", *common, "--json", meta), "is inside the data.root input")
    (tmp_path / "ref.json").write_text("{}")
    refused(
        _run("bench", "converge", *common, "--target", "synth_00", "--json", "ref.json", "--reference", "ref.json"),
        "--json ref.json is the --reference input",
    )
    kept = tmp_path / "kept"  # an earlier checkpoint, which --keep-checkpoint replaces as a whole
    kept.mkdir()
    (kept / "state.json").write_text("{}")
    (kept / "ref.json").write_text("{}")
    refused(
        _run(
            "bench",
            "converge",
            *common,
            "--target",
            "synth_00",
            "--json",
            "c.json",
            "--keep-checkpoint",
            "kept",
            "--reference",
            "kept/ref.json",
        ),
        "--keep-checkpoint kept holds the --reference input kept/ref.json",
    )
    os.symlink(tmp_path / "loop", tmp_path / "loop")
    refused(_run("bench", "converge", *common, "--target", "synth_00", "--json", "loop"), "symbolic link loop")
    assert meta.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["kept", "loop", "ref.json"]
