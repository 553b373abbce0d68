"""Forward wall time per module class while a method fine-tunes (inclusive; backward not attributed):
where a step's time goes. `python tools/profile_modules.py ENCODING METHOD` (defaults frequency aenerf),
from the repository root, with the shared clips prepared by `aebench run protocol=real_quick`."""
import sys, time, tempfile, collections
from pathlib import Path
import torch
from aebench.config import load_config
from aebench.data import Identity
from aebench.harness.registry import get_method

enc = sys.argv[1] if len(sys.argv) > 1 else "frequency"
method_name = sys.argv[2] if len(sys.argv) > 2 else "aenerf"
torch.set_num_threads(1)
cfg = load_config(["scale=smoke", f"method={method_name}", "data.root=data/prepared/clips-128px-25fps-12s",
                   "data.size=64", "train.iters=40", f"field.encoding={enc}"], scale="smoke")
ident = Identity.open(Path(cfg.data.root) / "may").at_size(64)
tot = collections.Counter(); stack = {}
def pre(m, i): stack[id(m)] = time.perf_counter()
def post(m, i, o): tot[type(m).__name__] += time.perf_counter() - stack.pop(id(m), time.perf_counter())
h1 = torch.nn.modules.module.register_module_forward_pre_hook(pre)
h2 = torch.nn.modules.module.register_module_forward_hook(post)
m = get_method(method_name)
t0 = time.perf_counter()
with tempfile.TemporaryDirectory() as d:
    m.finetune(ident, ident.fewshot_clip(0.0), None, cfg, Path(d))
wall = time.perf_counter() - t0
print(f"{method_name} {enc}: fine-tune 40 its {wall:.1f} s")
skip = {"Linear", "ReLU", "Sequential", "ModuleList", "Softplus", "Conv2d", "LeakyReLU", "Dropout", "LayerNorm", "Sigmoid", "Identity"}
for k, v in tot.most_common(14):
    if k not in skip:
        print(f"  {k:28s} {v:6.2f} s  ({100 * v / wall:4.1f}% of the wall time, forward, inclusive)")
