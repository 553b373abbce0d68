"""The command line as a new user meets it: one way to name the run store, protocols by name
or YAML path in every command, `aebench ls`, and a table of user mistakes that must each end
in a clear message (never a traceback)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from aebench.harness.cli import main
from aebench.registry import REGISTERED as METHODS
from tests.aebench.harness.fake_method import toy_protocol

MISTAKES = [  # (arguments, a fragment of the message)
    (["tables", "nope"], "unknown protocol 'nope'"),
    (["plot", "nope"], "unknown protocol 'nope'"),
    (["tables", "smoke", "--format", "pdf"], "'pdf' is not one of"),
    (["tables", "smoke", "--metrics", "lmd"], "protocol smoke has no metric(s) ['lmd']"),
    (["bench", "train", "method=nope"], "unknown method 'nope'"),
    (["bench", "render", "method=nope"], "unknown method 'nope'"),
    (["bench", "train", "seed=abc"], "'seed' takes a number"),
    (["run"], "name a protocol: protocol=NAME"),
    (["rescore"], "name a protocol: protocol=NAME"),
    (["rescore", "protocol=nope"], "unknown protocol 'nope'"),
    (["run", "protocol=nope"], "unknown protocol 'nope'"),
    (["run", "protocol=smoke", "data.size=-5"], "'data.size' must be at least 0, got -5"),
    (["run", "protocol=smoke", "train.face_fraction=2"], "'train.face_fraction' must be at most 1.0"),
    (["run", "protocol=smoke", "nope=1"], "unknown config key 'nope'"),
    (["run", "protocol=smoke", "runs=/tmp/x"], "name the run store with --runs DIR"),
    (["run", "protocol=smoke", "train.preset=mine"], "'train.preset' must be one of shared, official, got mine"),
    (["ablate", "--drop", "XYZ"], "unknown ablation(s) ['XYZ']"),
    (["ls", "nothing"], "'nothing' is not one of"),
    (["eval", "--pred", "missing.mp4", "--out", "x"], "missing.mp4: no such file"),
    (["regress", "--reference", "missing.json", "--read"], "no reference at missing.json"),
    (["config", "show", "data.sizee=3"], "valid keys under 'data'"),
    # found by the trial of issue 20: silent or late before, a one-line error now
    (["run", "protocol=smoke", "method=dfrf"], "method is chosen by each row"),
    (["run", "protocol=smoke", "device=tpu"], "'device' must be auto, cpu, cuda, cuda:N or mps"),
    (["run", "protocol=smoke", "data.size=1e9"], "'data.size' must be at most 4096"),
    (["run", "protocol=smoke", "data.size=31.5"], "'data.size' takes a whole number, got 31.5"),
    (["run", "protocol=smoke", "methods=[aenerf"], "override 'methods=[aenerf' is not a valid value"),
    (["run", "protocol=smoke", "train.iters=${"], "interpolations (${...}) are not accepted"),
    (["config", "show", "run.audio=${nosuch.key}"], "interpolations (${...}) are not accepted"),
    (["run", "protocol=smoke", "train.iters=${oc.env:HOME}"], "interpolations (${...}) are not accepted"),
    (["run", "protocol=smoke", "data=/nonexistent #x"], "no prepared identities in /nonexistent #x"),  # not cut at '#'
    (["run", "protocol=smoke", "data=/nonexistent: x"], "no prepared identities in /nonexistent: x"),
    (["data", "list", "--root", "/nonexistent"], "--root /nonexistent: no such folder"),
    (["bench", "train", "method=external"], "external is not one"),
    (["bench", "metrics", "--frames", "-1"], "-1 is not in the range x>=1"),
    # found by the trial of issue 30: each passed validation and failed mid-run (or ran something else)
    (["run", "protocol=smoke", "train.iters=2.7"], "'train.iters' takes a whole number, got 2.7"),
    (["run", "protocol=smoke", "seed=1e30"], "'seed' must be at most 4294967295"),
    (["run", "protocol=smoke", "threads=100000"], "'threads' must be at most 1024"),
    (["run", "protocol=smoke", "train.batch_rays=1e9"], "'train.batch_rays' must be at most 1048576"),
    (["run", "protocol=smoke", "train.lr=abc"], "'train.lr' takes a number"),
    (["eval", "--pred", "missing_dir/", "--gt", "x", "--fps", "nan"], "--fps"),
]


@pytest.mark.parametrize("args,fragment", MISTAKES, ids=[" ".join(a) for a, _ in MISTAKES])
def test_user_mistakes_are_clear_errors(args, fragment, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing a mistake might write lands in the repository
    res = CliRunner().invoke(main, args)
    assert res.exit_code != 0, res.output
    assert "Traceback" not in res.output and not isinstance(res.exception, (TypeError, AttributeError, KeyError))
    assert fragment in res.output, res.output
    assert not (tmp_path / "data").exists() and not (tmp_path / "results").exists()  # refused before any work


def test_ls_lists_what_exists():
    runner = CliRunner()
    protocols = runner.invoke(main, ["ls", "protocols"]).output
    assert "smoke " in protocols and "ablation " in protocols
    methods = runner.invoke(main, ["ls", "methods"]).output
    assert all(m in methods for m in ("aenerf", "dfrf", "adnerf", "external"))
    metrics = runner.invoke(main, ["ls", "metrics"]).output
    lines = {li.split()[0]: li for li in metrics.splitlines()}
    assert "LMD (dlib)" in lines["lmd_dlib"] and "sync_conf" in lines and "Lip-Sync (dlib)" in lines["lip_sync_dlib"]


def test_a_protocol_file_works_in_run_tables_and_plot_with_one_runs_option(tmp_path, monkeypatch):
    monkeypatch.setitem(METHODS, "noisy_gt", "tests.aebench.harness.fake_method:NoisyGT")
    path = toy_protocol(tmp_path)
    runs = tmp_path / "store"
    runner = CliRunner()
    res = runner.invoke(main, ["run", f"protocol={path}", "--runs", str(runs)])
    assert res.exit_code == 0, res.output
    assert (runs / "mine").is_dir()  # cells live under the protocol's name
    table = runner.invoke(main, ["tables", str(path), "--runs", str(runs)])
    assert table.exit_code == 0 and "| A " in table.output and "PSNR (ours)" in table.output, table.output
    plots = runner.invoke(main, ["plot", str(path), "--runs", str(runs), "--out", str(tmp_path / "png")])
    assert plots.exit_code == 0 and (tmp_path / "png" / "training_curves.png").exists(), plots.output
    side = runner.invoke(main, ["compare", str(path), "--runs", str(runs), "--out", str(tmp_path / "cmp.mp4")])
    assert side.exit_code == 0, side.output
    from aebench.media import probe

    info = probe(tmp_path / "cmp.mp4")  # ground truth | A, 16 px frames enlarged to 128 px panels, with audio
    assert info.n_frames == 4 and info.has_audio and info.width == 2 * 128
    assert (tmp_path / "cmp.png").stat().st_size > 0
    wrong = runner.invoke(main, ["compare", str(path), "--runs", str(runs), "--target", "nobody"])
    assert wrong.exit_code != 0 and "no finished self-driven cells of 'nobody'" in wrong.output

    # the static report page: its table, and every image and video it points at exists (videos play: duration > 0)
    import re

    page_dir = tmp_path / "report"
    rep = runner.invoke(main, ["report", str(path), "--runs", str(runs), "--out", str(page_dir)])
    assert rep.exit_code == 0, rep.output
    page = (page_dir / "index.html").read_text()
    assert "<table>" in page and "PSNR (ours)" in page and "<td>A" in page
    videos = re.findall(r'<video[^>]* src="([^"]+)"', page)
    images = re.findall(r'<img src="([^"]+)"', page)
    assert videos and images
    assert all((page_dir / v).exists() and probe(page_dir / v).duration > 0 for v in videos)
    assert all((page_dir / i).stat().st_size > 0 for i in images)


def test_help_and_light_commands_import_no_torch():
    """The built-in methods and the CLI's commands are registered lazily: `aebench --help`, `ls
    protocols` and `ls metrics` never import torch (a fresh process, so nothing is imported yet)."""
    import subprocess
    import sys

    code = (
        "import sys\nfrom click.testing import CliRunner\nfrom aebench.harness.cli import main\n"
        "for args in (['--help'], ['ls', 'protocols'], ['ls', 'metrics']):\n"
        "    assert CliRunner().invoke(main, args).exit_code == 0, args\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "False", out.stdout + out.stderr


BAD_PROTOCOLS = [  # (protocol file text, a fragment of the message): refused before any work
    ("name: x\nrows: [{method: noisy_gt\n", "is not valid YAML"),
    ("- just\n- a list\n", "a protocol is a mapping of fields"),
    ("name: ../escape\nrows: [{method: adnerf}]\n", "protocol name '../escape' must be a plain folder name"),
    ("name: /tmp/abs\nrows: [{method: adnerf}]\n", "must be a plain folder name"),
    ("name: x\nrows: [{method: nosuch}]\n", "unknown method(s) ['nosuch']"),
    ("name: x\nrows: [{method: adnerf, set: {method: dfrf}}]\n", "a row names its method"),
    ("name: x\nrows: [{method: adnerf}]\ngrid: {audio: ['shared:audio/nosuch.wav']}\n", "driving audio shared:audio/nosuch.wav not found"),
    ("name: x\nrows: [{method: adnerf}]\ntable: t.csv\n", "table is a mapping"),
    ("name: x\nrows: [{method: adnerf}]\ntable: {paper: nosuch.csv}\n", "paper table 'nosuch.csv' not found"),
    ("name: x\nrows: [{method: adnerf}]\ntable: {paper: table4_ablation.csv, columns: {PSNR: nosuch}}\n", "neither a metric"),
    ("name: x\nrows: [{method: adnerf}]\ntable: {plot: lines}\n", "plot: lines draws metrics against the table's axis"),
]


@pytest.mark.parametrize("text,fragment", BAD_PROTOCOLS, ids=[f for _, f in BAD_PROTOCOLS])
@pytest.mark.parametrize("command", ["run", "tables"])
def test_a_bad_protocol_file_is_one_clear_error(text, fragment, command, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.yaml").write_text(text)
    args = ["run", "protocol=bad.yaml", "--runs", "r"] if command == "run" else ["tables", "bad.yaml", "--runs", "r"]
    res = CliRunner().invoke(main, args)
    assert res.exit_code != 0 and "Traceback" not in res.output, res.output
    if command == "run" or "audio" not in fragment:  # tables reads the layout; only a run needs the audio
        assert fragment in res.output, res.output
    assert not (tmp_path / "r").exists() and not (tmp_path / "data").exists()  # nothing was started


@pytest.mark.parametrize(
    "args",
    [
        ["run", "protocol=smoke", "--runs", "afile"],
        ["rescore", "protocol=smoke", "--runs", "afile"],
        ["eval", "--pred", "p.mp4", "--out", "afile"],
    ],
)
def test_an_output_folder_that_is_a_file_is_refused_before_work(args, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("x")
    (tmp_path / "p.mp4").write_bytes(b"")
    res = CliRunner().invoke(main, args)
    assert res.exit_code != 0 and "is a file" in res.output and "Traceback" not in res.output, res.output
    assert not (tmp_path / "data").exists()  # no corpus was built
