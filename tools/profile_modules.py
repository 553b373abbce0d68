"""Where a fine-tuning step's time goes: forward wall time per module class (inclusive; backward not
attributed) while a method fine-tunes 40 iterations on May at 64 px, one thread.

    python tools/profile_modules.py [ENCODING] [METHOD] [key=value ...] [--json FILE]

ENCODING and METHOD default to frequency and aenerf; further ``key=value`` words are config
overrides (e.g. ``train.sampler=proposal``). Run from the repository root with the shared clips
prepared by `aebench run protocol=real_quick`. ``--json`` also writes the figures
(``python tools/speed_tables.py profile`` prints the committed ones, docs/speed/profile/).
"""

from __future__ import annotations

import collections
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

from aebench.config import load_config
from aebench.data import Identity
from aebench.registry import get_method

#: leaf layers: their time is inside the modules that call them
LEAVES = {
    "Linear",
    "ReLU",
    "Sequential",
    "ModuleList",
    "ModuleDict",
    "Softplus",
    "Conv2d",
    "LeakyReLU",
    "Dropout",
    "LayerNorm",
    "Sigmoid",
    "Identity",
}
ITERS = 40


def main(argv: list[str]) -> None:
    out = None
    if "--json" in argv:
        i = argv.index("--json")
        out, argv = Path(argv[i + 1]), argv[:i] + argv[i + 2 :]
    words = [a for a in argv if "=" not in a]
    overrides = [a for a in argv if "=" in a]
    enc = words[0] if words else "frequency"
    method_name = words[1] if len(words) > 1 else "aenerf"
    torch.set_num_threads(1)
    cfg = load_config(
        [
            "scale=smoke",
            f"method={method_name}",
            "data.root=data/prepared/clips-128px-25fps-12s",
            "data.size=64",
            f"train.iters={ITERS}",
            f"field.encoding={enc}",
            *overrides,
        ],
        scale="smoke",
    )
    ident = Identity.open(Path(cfg.data.root) / "may").at_size(64)
    total: collections.Counter = collections.Counter()
    stack: dict[int, float] = {}

    def pre(m, _):
        stack[id(m)] = time.perf_counter()

    def post(m, _i, _o):
        total[type(m).__name__] += time.perf_counter() - stack.pop(id(m), time.perf_counter())

    h1 = torch.nn.modules.module.register_module_forward_pre_hook(pre)
    h2 = torch.nn.modules.module.register_module_forward_hook(post)
    method = get_method(method_name)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as d:
        method.finetune(ident, ident.fewshot_clip(0.0), None, cfg, Path(d))
    wall = time.perf_counter() - t0
    h1.remove(), h2.remove()
    modules = {k: round(v, 3) for k, v in total.most_common() if k not in LEAVES}
    print(f"{method_name} {enc} {' '.join(overrides)}: fine-tune {ITERS} its {wall:.1f} s")
    for k, v in list(modules.items())[:14]:
        print(f"  {k:28s} {v:6.2f} s  ({100 * v / wall:4.1f}% of the wall time, forward, inclusive)")
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(
            json.dumps(
                {
                    "method": method_name,
                    "encoding": enc,
                    "overrides": overrides,
                    "iters": ITERS,
                    "size": 64,
                    "threads": 1,
                    "wall_s": round(wall, 3),
                    "forward_s_by_module": modules,
                },
                indent=1,
            )
            + "\n"
        )
        print(f"wrote {out}")


if __name__ == "__main__":
    main(sys.argv[1:])
