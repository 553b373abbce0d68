"""CUDA: a smoke fine-tune and render of every NeRF method on the GPU, at each precision.
Also with the occupancy sampler, the render chunk from free memory and torch.compile, and with
the fast fields' hash-grid and tri-plane encodings.
Runs where a GPU exists and is skipped otherwise; on a CPU the precision switch refuses
anything but fp32 with a clear error."""

from __future__ import annotations

import pytest
import torch

from aebench.engine.precision import precision


def test_precision_other_than_fp32_needs_cuda():
    with precision("fp32", torch.device("cpu")):
        pass
    with pytest.raises(ValueError, match="needs a CUDA device"):
        with precision("bf16", torch.device("cpu")):
            pass
    with pytest.raises(ValueError, match="unknown train.precision"):
        with precision("fp8", torch.device("cpu")):
            pass


def test_config_refuses_an_unknown_precision():
    from aebench.config import ConfigError, load_config

    with pytest.raises(ConfigError, match="'train.precision' must be one of fp32, tf32, bf16"):
        load_config(["train.precision=fp16"])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device: the GPU smoke test runs where one exists")
@pytest.mark.parametrize("mode", ["fp32", "tf32", "bf16"])
@pytest.mark.parametrize("method", ["aenerf", "dfrf", "adnerf"])
@pytest.mark.parametrize(
    "extra",
    [[], ["train.sampler=occupancy", "train.chunk=0", "train.compile=true"], ["field.encoding=hashgrid"], ["field.encoding=triplane"]],
    ids=["default", "occupancy-autochunk-compile", "hashgrid", "triplane"],
)
def test_cuda_smoke_finetune_and_render(method, mode, extra, synth_root, tmp_path):
    from aebench.config import load_config
    from aebench.data import Identity, list_identities
    from aebench.media import probe
    from aebench.registry import get_method

    cfg = load_config(
        [f"method={method}", "device=cuda", f"train.precision={mode}", "train.iters=20", "train.render_frames=3", "data.size=32", *extra],
        scale="smoke",
    )
    identity = Identity.open(list_identities(synth_root)[0]).at_size(32)
    m = get_method(method)
    ckpt = m.finetune(identity, identity.fewshot_clip(0), None, cfg, tmp_path / "ft")
    test = identity.split("test")
    out = m.render(ckpt, identity, test.audio[: identity.samples_for_frames(3)], cfg, tmp_path / "r.mp4")
    assert probe(out).n_frames == 3
