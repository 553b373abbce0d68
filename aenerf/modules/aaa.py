"""Audio Aware Aggregation (AE-NeRF eq. 3, 4).

f~ = AAA(a, a_ref_1..L, f_ref_1..L). Tokens of width ``dim`` (128 in the paper): the target
audio code -> T_a_tar (N x dim), reference audio codes -> T_a_ref (N L x dim), sampled
reference features -> T_f_ref (N L x dim). Two cross-attention blocks, each
``h = q + MHCA(LN(q), LN(T_a_ref), LN(T_f_ref)); h = h + FFN(LN(h))`` with
MHCA = softmax[(Q W_Q)(K W_K)^T / sqrt(d)] (V W_V), the softmax over the L references of
each point; the second block's query is the first block's output. Then FC-ReLU-FC -> f~.
The heads split the d channels, and every head's logits are divided by sqrt(d), d the whole
token width, as eq. 4 writes it (the usual multi-head attention divides by sqrt(d / heads));
with one head the two agree.

Resolutions of the paper's open points:

- Target and reference audio codes go through the *same* token projection (they are the
  same kind of input), so equal audio gives equal tokens.
- ``init="identity"`` (``aenerf.aaa_init``, the default): W_Q and W_K start equal (identity),
  so at initialisation the first block attends by audio similarity (LN'd tokens all have the
  same norm, so, summed over the heads, the matching reference has the largest score); training
  moves them freely. The paper does not state an init; this one makes its Fig. 5 behaviour the
  starting point rather than something to discover from scratch in a few-shot fine-tune, which
  also means a Fig. 5-style plot partly measures the init. ``init="random"`` keeps PyTorch's
  default ``nn.Linear`` init for them.
- ``last_attention`` keeps the first block's weights (N, heads, L) for Fig. 5-style plots
  when ``keep_attention`` is set; otherwise attention runs on
  ``torch.nn.functional.scaled_dot_product_attention`` (fused kernels, no weights kept).

Computed once, not per point (the same arithmetic): the audio tokens are the same for every
sample of a frame, so LN and W_K of T_a_ref run on (1, L, dim), and the first block's query
(the target's audio token) and therefore its attention weights (heads, L) are computed once
and applied to every point's values; only the second block's query differs per point.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


#: initialisations of W_Q and W_K (``aenerf.aaa_init``)
INITS = ("identity", "random")


class CrossAttention(nn.Module):
    """Multi-head attention of one query token over L key/value tokens per point, the logits of
    every head divided by sqrt(dim) (eq. 4)."""

    def __init__(self, dim: int, heads: int, init: str = "identity"):
        super().__init__()
        if dim % heads:
            raise ValueError(f"AAA token width {dim} is not divisible by heads={heads}")
        if init not in INITS:
            raise ValueError(f"AAA init {init!r}: one of {', '.join(INITS)}")
        self.heads, self.dh = heads, dim // heads
        self.scale = dim**-0.5
        self.wq, self.wk, self.wv = (nn.Linear(dim, dim, bias=False) for _ in range(3))
        self.wo = nn.Linear(dim, dim)
        if init == "identity":
            with torch.no_grad():
                self.wq.weight.copy_(torch.eye(dim))
                self.wk.weight.copy_(torch.eye(dim))

    def forward(self, q: Tensor, k: Tensor, v: Tensor, weights: bool = False) -> tuple[Tensor, Tensor | None]:
        """``q`` (N or 1, 1, D), ``k`` (N or 1, L, D), ``v`` (N, L, D) -> (N, 1, D) and, when
        ``weights``, the attention weights (N, heads, L); else None. A query and keys shared by
        every point (batch 1) give one set of weights, applied to every point's values;
        otherwise the fused SDPA kernel runs."""
        n, l, _ = v.shape
        qh = self.wq(q).view(q.shape[0], 1, self.heads, self.dh).transpose(1, 2)  # (Nq, h, 1, dh)
        kh = self.wk(k).view(k.shape[0], l, self.heads, self.dh).transpose(1, 2)  # (Nk, h, L, dh)
        vh = self.wv(v).view(n, l, self.heads, self.dh).transpose(1, 2)  # (N, h, L, dh)
        if weights or (qh.shape[0] == 1 and kh.shape[0] == 1):
            attn = torch.softmax((qh @ kh.transpose(-1, -2)) * self.scale, dim=-1)  # over the L refs
            out = attn @ vh  # (N, h, 1, dh); shared weights broadcast over the points
            kept = attn[:, :, 0].expand(n, -1, -1) if weights else None
        else:  # the same softmax(QK^T / sqrt(d)) V
            out = F.scaled_dot_product_attention(qh.expand(n, -1, -1, -1), kh.expand(n, -1, -1, -1), vh, scale=self.scale)
            kept = None
        return self.wo(out.transpose(1, 2).reshape(n, 1, -1)), kept


class CrossBlock(nn.Module):
    def __init__(self, dim: int, heads: int, init: str = "identity"):
        super().__init__()
        self.ln_q, self.ln_k, self.ln_v, self.ln_f = (nn.LayerNorm(dim) for _ in range(4))
        self.attn = CrossAttention(dim, heads, init)
        self.ffn = nn.Sequential(nn.Linear(dim, 2 * dim), nn.ReLU(True), nn.Linear(2 * dim, dim))

    def forward(self, q: Tensor, k: Tensor, v: Tensor, weights: bool = False) -> tuple[Tensor, Tensor | None]:
        h, attn = self.attn(self.ln_q(q), self.ln_k(k), self.ln_v(v), weights)
        h = q + h
        return h + self.ffn(self.ln_f(h)), attn


class AudioAwareAggregation(nn.Module):
    def __init__(
        self, audio_dim: int, feat_dim: int, dim: int = 128, heads: int = 4, out_dim: int = 128, blocks: int = 2, init: str = "identity"
    ):
        super().__init__()
        self.audio_tok = nn.Linear(audio_dim, dim)
        self.feat_tok = nn.Linear(feat_dim, dim)
        self.blocks = nn.ModuleList(CrossBlock(dim, heads, init) for _ in range(blocks))
        self.head = nn.Sequential(nn.Linear(dim, out_dim), nn.ReLU(True), nn.Linear(out_dim, out_dim))
        self.last_attention: Tensor | None = None
        self.keep_attention = False  # set to keep the first block's weights in last_attention

    def forward(self, a: Tensor, a_ref: Tensor, feats: Tensor) -> Tensor:
        """``a`` (A,) or (N, A) target audio code, ``a_ref`` (L, A) or (N, L, A), ``feats``
        (N, L, feat_dim) sampled reference features -> f~ (N, out_dim)."""
        t_tar = self.audio_tok(a)[None, None] if a.dim() == 1 else self.audio_tok(a)[:, None]  # (1 or N, 1, D)
        t_ref = self.audio_tok(a_ref)
        t_ref = t_ref[None] if t_ref.dim() == 2 else t_ref  # (1 or N, L, D): shared keys stay batch 1
        t_f = self.feat_tok(feats)
        h = t_tar
        for i, block in enumerate(self.blocks):
            h, attn = block(h, t_ref, t_f, weights=self.keep_attention and i == 0)
            if attn is not None:
                self.last_attention = attn.detach()
        return self.head(h[:, 0])
