import json

from click.testing import CliRunner

from aebench.harness.cli.bench_methods import render_cmd, train_cmd

TINY = ["method=aenerf", "scale=smoke", "data.size=32", "train.batch_rays=32", "train.n_coarse=4", "train.n_fine=4"]


def test_bench_train_and_render_report_speed(tmp_path):
    root = ["data.root=" + str(tmp_path / "none")]  # no identities there: a synthetic one is made
    res = CliRunner().invoke(train_cmd, [*TINY, *root, "train.iters=5", "--warmup", "2", "--threads", "1",
                                         "--json", str(tmp_path / "t.json")])
    assert res.exit_code == 0, res.output
    figures = json.loads((tmp_path / "t.json").read_text())
    assert figures["iters/s"] > 0 and abs(figures["rays/s"] - figures["iters/s"] * 32) <= 0.1 + 32 * 0.001  # both printed rounded
    assert "peak memory" in res.output
    assert figures["evaluated/ray"] == 4 + 4 + 4  # coarse, then coarse + fine samples again
    assert figures["features/ray"] == 4 + 4
    res = CliRunner().invoke(render_cmd, [*TINY, *root, "train.iters=2", "train.render_sampler=hierarchical",
                                          "--frames", "2", "--threads", "1",
                                          "--json", str(tmp_path / "r.json")])
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
