import json

from click.testing import CliRunner

from aebench.harness.cli.bench_methods import render_cmd, train_cmd

TINY = ["method=aenerf", "scale=smoke", "data.size=32", "train.batch_rays=32", "train.n_coarse=4", "train.n_fine=4"]


def test_bench_train_and_render_report_speed(tmp_path):
    root = ["data.root=" + str(tmp_path / "none")]  # no identities there: a synthetic one is made
    res = CliRunner().invoke(train_cmd, [*TINY, *root, "train.iters=5", "--warmup", "2", "threads=1", "--json", str(tmp_path / "t.json")])
    assert res.exit_code == 0, res.output
    figures = json.loads((tmp_path / "t.json").read_text())
    assert figures["iters/s"] > 0 and abs(figures["rays/s"] - figures["iters/s"] * 32) <= 0.1 + 32 * 0.001  # both printed rounded
    assert "peak memory" in res.output
    assert figures["evaluated/ray"] == 4 + 4 + 4  # coarse, then coarse + fine samples again
    assert figures["features/ray"] == 4 + 4
    res = CliRunner().invoke(
        render_cmd,
        [
            *TINY,
            *root,
            "train.iters=2",
            "train.render_sampler=hierarchical",
            "--frames",
            "2",
            "threads=1",
            "--json",
            str(tmp_path / "r.json"),
        ],
    )
    assert res.exit_code == 0, res.output
    figures = json.loads((tmp_path / "r.json").read_text())
    assert figures["frames/s"] > 0 and figures["video"] == "2 frames, audio=True"
    assert figures["evaluated/ray"] == 12 and figures["sampler"] == "hierarchical"
    assert figures["features/ray"] == 4 + 4  # AE-NeRF aggregates each sample's references once


def test_bench_rejects_bad_settings(tmp_path):
    res = CliRunner().invoke(train_cmd, [*TINY, "train.iters=2", "--warmup", "3"])
    assert res.exit_code != 0 and "must exceed" in res.output


def test_bench_train_from_a_base_model_needs_a_method_with_one(tmp_path):
    res = CliRunner().invoke(train_cmd, ["method=adnerf", "scale=smoke", "train.iters=5", "--base", str(tmp_path)])
    assert res.exit_code == 2 and "adnerf has no base model" in res.output


def test_bench_converge_writes_the_curve_base_model_included(synth_root, tmp_path):
    """DFRF: the base model over the other identities, then the fine-tune on the target scored
    every 2 iterations; seconds grow, the base phase is on the curve (unscored), a PNG is written."""
    from aebench.harness.cli.bench_converge import converge_cmd

    out = tmp_path / "c.json"
    args = [
        "method=dfrf",
        "scale=smoke",
        f"data.root={synth_root}",
        "data.size=32",
        "train.batch_rays=32",
        "train.n_coarse=4",
        "train.n_fine=4",
        "train.iters=4",
        "train.pretrain_iters=2",
    ]
    keep = tmp_path / "final"
    res = CliRunner().invoke(
        converge_cmd,
        [*args, "--target", "synth_00", "--every", "2", "--frames", "2", "threads=1", "--json", str(out), "--keep-checkpoint", str(keep)],
    )
    assert res.exit_code == 0, res.output
    result = json.loads(out.read_text())
    curve = result["curve"]
    assert [(p["phase"], p["iters"]) for p in curve] == [("pretrain", 2), ("finetune", 2), ("finetune", 4)]
    assert curve[0]["psnr"] is None and all(p["psnr"] > 0 for p in curve[1:])
    assert all(a["seconds"] < b["seconds"] for a, b in zip(curve, curve[1:]))
    assert 0 < result["base_seconds"] <= curve[1]["seconds"] and result["final_psnr"] == curve[-1]["psnr"]
    assert out.with_suffix(".png").stat().st_size > 1000
    from aebench.harness.cli.bench_converge import time_to_reach

    assert time_to_reach(result, curve[1]["psnr"]) == min(p["seconds"] for p in curve[1:] if p["psnr"] >= curve[1]["psnr"])
    assert time_to_reach(result, 1e9) is None
    bad = CliRunner().invoke(converge_cmd, [*args, "--target", "nobody", "--json", str(out)])
    assert bad.exit_code == 2 and "no identity 'nobody'" in bad.output
    # a non-empty folder that is not a checkpoint is refused before any training, and left as it was
    other = tmp_path / "notes"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    bad = CliRunner().invoke(converge_cmd, [*args, "--target", "synth_00", "--json", str(out), "--keep-checkpoint", str(other)])
    assert bad.exit_code == 2 and "is not a checkpoint" in bad.output and (other / "keep.txt").read_text() == "mine"
    # the kept final checkpoint renders through bench render, on the named identity
    res = CliRunner().invoke(
        render_cmd,
        [*args, "--checkpoint", str(keep), "--target", "synth_00", "--frames", "2", "threads=1", "--json", str(tmp_path / "r.json")],
    )
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "r.json").read_text())["video"] == "2 frames, audio=True"
    bad = CliRunner().invoke(render_cmd, [*args, "--checkpoint", str(keep), "--target", "nobody"])
    assert bad.exit_code == 2 and "no identity 'nobody'" in bad.output
