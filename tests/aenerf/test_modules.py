import math

import pytest
import torch

from aebench.aenerf.method import AENeRF
from aebench.aenerf.modules.aaa import AudioAwareAggregation
from aebench.aenerf.modules.rrs import regionwise
from aebench.aenerf.modules.warper import Warper, offset_norm
from tests.aenerf.helpers import build_model, fake_batch, smoke_cfg

torch.set_num_threads(1)  # 2 threads on the shared 2-core machine spin-wait badly under load

VARIANTS = {
    "full": [],
    "no_aaa": ["aenerf.aaa=false"],
    "no_aafg": ["aenerf.aafg=false"],
    "no_warper": ["aenerf.warper=false"],
    "no_rrs": ["aenerf.rrs=false"],
}


@pytest.mark.parametrize("eps", [0.2, 0.4, 0.6])
def test_rrs_set_sizes_match_eps(eps):
    labels = torch.tensor([2] * 50 + [1] * 100 + [0] * 40 + [3] * 10)
    g = torch.Generator().manual_seed(1)
    groups = regionwise(labels, eps, g)
    ar = labels == 2
    assert int((groups.overlap & ar).sum()) == round(eps * 50)
    assert int((groups.overlap & ~ar).sum()) == round(eps * 150)
    assert int(groups.aa_only.sum()) == 50 - round(eps * 50) and bool((labels[groups.aa_only] == 2).all())
    assert int(groups.ai_only.sum()) == 150 - round(eps * 150) and bool((labels[groups.ai_only] != 2).all())
    # a partition of the batch
    assert torch.equal(groups.overlap.int() + groups.aa_only.int() + groups.ai_only.int(), torch.ones(200, dtype=torch.int))
    # random: another draw picks other overlap rays
    assert not torch.equal(groups.overlap, regionwise(labels, eps, g).overlap)


@pytest.mark.parametrize("heads", [1, 4])
def test_aaa_attends_most_to_the_reference_with_the_target_audio(heads):
    """Fig. 5 property: with one reference carrying the target's audio, the first block gives it
    the largest attention (here from the module's own initialisation, over many random inputs)."""
    torch.manual_seed(0)
    aaa = AudioAwareAggregation(audio_dim=16, feat_dim=8, dim=32, heads=heads, out_dim=8)
    aaa.keep_attention = True
    hits = 0
    trials = 50
    for t in range(trials):
        a_ref = torch.randn(4, 16)
        k = t % 4
        out = aaa(a_ref[k].clone(), a_ref, torch.randn(10, 4, 8))
        assert out.shape == (10, 8)
        att = aaa.last_attention  # (N, heads, L)
        assert torch.allclose(att.sum(-1), torch.ones(10, heads), atol=1e-5)  # softmax over the L refs
        hits += int(att.mean(1)[0].argmax()) == k
    assert hits == trials


def test_aaa_attention_is_learnable_towards_the_matching_reference():
    """Break the init (random W_Q, W_K), then train a few steps on a task that needs the
    matching reference's feature: the attention must come back to it."""
    torch.manual_seed(0)
    aaa = AudioAwareAggregation(audio_dim=8, feat_dim=8, dim=16, heads=2, out_dim=8)
    aaa.keep_attention = True
    for block in aaa.blocks:
        torch.nn.init.normal_(block.attn.wq.weight, std=0.3)
        torch.nn.init.normal_(block.attn.wk.weight, std=0.3)
    opt = torch.optim.Adam(aaa.parameters(), lr=3e-3)

    def sample():
        a_ref = torch.randn(4, 8)
        k = int(torch.randint(4, (1,)))
        feats = torch.randn(32, 4, 8)
        return a_ref[k].clone(), a_ref, feats, feats[:, k], k

    def accuracy(n=40):
        with torch.no_grad():
            hits = 0
            for _ in range(n):
                a, a_ref, feats, _, k = sample()
                aaa(a, a_ref, feats)
                hits += int(aaa.last_attention.mean(1)[0].argmax()) == k
        return hits / n

    before = accuracy()
    for _ in range(300):
        a, a_ref, feats, target, _ = sample()
        loss = ((aaa(a, a_ref, feats) - target) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = accuracy()
    assert after >= 0.9 and after > before


def test_warper_starts_as_plain_projection_and_offset_loss():
    w = Warper(x_dim=9, audio_dim=4, width=8)
    off = w(torch.randn(5, 9), torch.randn(4), torch.randn(3, 4), torch.randn(5, 3), torch.randn(3, 5, 3))
    assert off.shape == (3, 5, 2) and off.abs().max() == 0
    assert offset_norm(torch.tensor([[[3.0, 4.0], [0.0, 0.0]]])).mean().item() == pytest.approx(2.5, abs=1e-5)  # L_o


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_module_receives_gradient(variant):
    torch.manual_seed(0)
    cfg = smoke_cfg(*VARIANTS[variant], "train.batch_rays=32", "train.smooth_from=0")  # AudioAttNet on from step 0
    batch = fake_batch(AENeRF(), cfg)
    model = build_model(AENeRF(), cfg)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(2):  # the warper's last layer starts at zero, so its inner layers get gradient from step 2
        loss, stats = model.training_step(batch, 0)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert torch.isfinite(loss) and "psnr" in stats
    dead = [n for n, p in model.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert not dead, f"no gradient reaches {dead}"
    names = {n.split(".")[0] for n, _ in model.named_parameters()}
    assert {"audio", "ref_encoder", "aggregator", "nerfs"} <= names
    assert ("warper" in names) == ("warper=false" not in " ".join(VARIANTS[variant]))
    assert ("ai" in dict(model.nerfs["fine"].named_children())) == (variant != "no_aafg")


@pytest.mark.parametrize("heads", [1, 4])
def test_aaa_logits_are_divided_by_sqrt_of_the_whole_width(heads):
    """Eq. 4: softmax[(T W_Q)(T_ref W_K)^T / sqrt(d)], d the token width (128 in the paper), for
    every head (not sqrt(d / heads), the usual multi-head scale)."""
    torch.manual_seed(0)
    dim = 32
    aaa = AudioAwareAggregation(audio_dim=16, feat_dim=8, dim=dim, heads=heads, out_dim=8)
    aaa.keep_attention = True
    a, a_ref = torch.randn(16), torch.randn(4, 16)
    aaa(a, a_ref, torch.randn(3, 4, 8))
    block = aaa.blocks[0]
    q = block.attn.wq(block.ln_q(aaa.audio_tok(a)))  # (D,)
    k = block.attn.wk(block.ln_k(aaa.audio_tok(a_ref)))  # (L, D)
    dh = dim // heads
    logits = torch.stack([k[:, h * dh : (h + 1) * dh] @ q[h * dh : (h + 1) * dh] for h in range(heads)]) / dim**0.5
    assert torch.allclose(aaa.last_attention[0], torch.softmax(logits, -1), atol=1e-6)


def test_aaa_init_identity_or_random():
    """``aenerf.aaa_init``: identity W_Q = W_K = I (the default), random keeps nn.Linear's init."""
    torch.manual_seed(0)
    ident = AudioAwareAggregation(audio_dim=16, feat_dim=8, dim=32, heads=4, out_dim=8)
    rand = AudioAwareAggregation(audio_dim=16, feat_dim=8, dim=32, heads=4, out_dim=8, init="random")
    for b_i, b_r in zip(ident.blocks, rand.blocks):
        for name in ("wq", "wk"):
            assert torch.equal(getattr(b_i.attn, name).weight, torch.eye(32))
            w = getattr(b_r.attn, name).weight
            assert not torch.allclose(w, torch.eye(32), atol=0.5) and float(w.abs().max()) <= 32**-0.5
    with pytest.raises(ValueError, match="AAA init 'eye'"):
        AudioAwareAggregation(audio_dim=16, feat_dim=8, dim=32, heads=4, out_dim=8, init="eye")


def test_aaa_on_sdpa_equals_the_explicit_attention():
    """Without kept weights AAA runs on scaled_dot_product_attention: same outputs and the
    same gradients as the explicit softmax(QK^T/sqrt(d))V path."""
    torch.manual_seed(0)
    aaa = AudioAwareAggregation(audio_dim=16, feat_dim=8, dim=32, heads=4, out_dim=8)
    for block in aaa.blocks:  # away from the identity init, so Q and K differ
        torch.nn.init.normal_(block.attn.wq.weight, std=0.3)
    a, a_ref, feats = torch.randn(16), torch.randn(4, 16), torch.randn(50, 4, 8)
    outs, grads = [], []
    for keep in (True, False):
        aaa.keep_attention = keep
        aaa.zero_grad()
        out = aaa(a, a_ref, feats)
        out.square().sum().backward()
        outs.append(out.detach())
        grads.append(aaa.blocks[0].attn.wk.weight.grad.clone())
    assert torch.allclose(outs[0], outs[1], atol=1e-5) and torch.allclose(grads[0], grads[1], atol=1e-4)


def test_aaa_computes_per_frame_terms_once_with_the_per_point_results():
    """The audio tokens, the first block's query and its attention weights are the same for
    every point: computed once, they give what per-point (expanded) inputs give."""
    torch.manual_seed(1)
    aaa = AudioAwareAggregation(audio_dim=16, feat_dim=8, dim=32, heads=4, out_dim=8)
    for block in aaa.blocks:
        torch.nn.init.normal_(block.attn.wq.weight, std=0.3)
    a, a_ref, feats = torch.randn(16), torch.randn(4, 16), torch.randn(60, 4, 8)
    fast = aaa(a, a_ref, feats)
    n, l = feats.shape[:2]
    h, t_ref, t_f = aaa.audio_tok(a).expand(n, -1)[:, None], aaa.audio_tok(a_ref).expand(n, l, -1), aaa.feat_tok(feats)
    for block in aaa.blocks:  # every point with its own copy of the shared tokens (SDPA per point)
        h, _ = block(h, t_ref, t_f)
    per_point = aaa.head(h[:, 0])
    assert torch.allclose(fast, per_point, atol=1e-5)
    g_fast = torch.autograd.grad(fast.square().sum(), aaa.blocks[1].attn.wk.weight)[0]
    g_point = torch.autograd.grad(per_point.square().sum(), aaa.blocks[1].attn.wk.weight)[0]
    assert torch.allclose(g_fast, g_point, atol=1e-4)


def test_warper_first_layer_by_blocks_equals_the_concatenated_input():
    torch.manual_seed(2)
    w = Warper(x_dim=9, audio_dim=4, width=8)
    torch.nn.init.normal_(w.net[-1].weight)
    x, a, a_ref, d, d_ref = torch.randn(30, 9), torch.randn(4), torch.randn(3, 4), torch.randn(30, 3), torch.randn(3, 30, 3)
    concat = torch.cat([x.expand(3, -1, -1), a.expand(3, 30, -1), a_ref[:, None].expand(-1, 30, -1), d.expand(3, -1, -1), d_ref], -1)
    assert torch.allclose(w(x, a, a_ref, d, d_ref), w.net(concat), atol=1e-6)


def test_opacity_entropy_is_the_binary_entropy_in_bits():
    from aebench.engine.model import opacity_entropy

    assert opacity_entropy(torch.tensor([0.5, 0.5])).item() == pytest.approx(1.0, abs=1e-6)
    assert opacity_entropy(torch.tensor([0.0, 1.0])).item() == pytest.approx(0.0, abs=1e-3)
    p = 0.2
    h = -(p * math.log2(p) + (1 - p) * math.log2(1 - p))
    assert opacity_entropy(torch.tensor([p, 1 - p, 0.5])).item() == pytest.approx((2 * h + 1) / 3, abs=1e-6)


def test_opacity_entropy_setting_adds_its_weighted_term_to_the_loss():
    """train.opacity_entropy=w adds w x the last pass's opacity entropy to the loss (0: no term)."""
    cfg0 = smoke_cfg("train.batch_rays=32")
    cfg1 = smoke_cfg("train.batch_rays=32", "train.opacity_entropy=0.5")
    batch = fake_batch(AENeRF(), cfg0)
    losses = []
    for cfg in (cfg0, cfg1):
        torch.manual_seed(0)
        model = build_model(AENeRF(), cfg)
        g = torch.Generator().manual_seed(3)
        loss, stats = model.training_step({**batch, "generator": g}, 0)
        losses.append((loss.detach(), stats))
    (l0, s0), (l1, s1) = losses
    assert "l_ent" not in s0 and 0.0 < float(s1["l_ent"]) <= 1.0
    assert float(l1) == pytest.approx(float(l0) + 0.5 * float(s1["l_ent"]), rel=1e-5)
