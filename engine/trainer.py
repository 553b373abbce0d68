"""The training loop every NeRF method shares: Adam with exponential lr decay, seeded
batches, periodic checkpoints with resume, a hard stop on a non-finite loss, tqdm progress
with loss and PSNR, and ``log.txt``.

The model is an ``nn.Module`` with ``training_step(batch, step) -> (loss, stats)`` where
``stats`` is a dict of detached 0-dim tensors or floats (include ``"psnr"`` to see it on the
progress bar); batches come from ``batch_fn(step, generator)``. The loop never reads a
device value back per step (no ``.item()``/``float()`` on a tensor): losses and stats are
read back at log and checkpoint steps only, where a non-finite loss since the last read-back
stops training naming its step, before any checkpoint is written.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from aebench.engine.checkpoint import latest_checkpoint, load_checkpoint, prune_checkpoints, save_checkpoint, step_dir
from aebench.engine.precision import precision

FINAL = "final"

#: callbacks ``fn(trainer, step, checkpoint_dir)`` run after every checkpoint a Trainer writes
#: (periodic ones and the last step's), before older ones are pruned: :func:`watch_checkpoints`
_WATCHERS: list[Callable[[Trainer, int, Path], None]] = []


@contextmanager
def watch_checkpoints(fn: Callable[[Trainer, int, Path], None]) -> Iterator[None]:
    """Inside the block, ``fn(trainer, step, checkpoint_dir)`` runs after each checkpoint of every
    Trainer (``aebench bench converge`` scores them); the training loop is otherwise unchanged."""
    _WATCHERS.append(fn)
    try:
        yield
    finally:
        _WATCHERS.remove(fn)


def _checkpoint(trainer: Trainer, step: int) -> None:
    path = save_checkpoint(step_dir(trainer.root, step), trainer.model, trainer.optimizer, step, trainer.meta)
    for fn in list(_WATCHERS):
        fn(trainer, step, path)
    prune_checkpoints(trainer.root, trainer.cfg.keep_ckpts)


class NonFiniteLoss(RuntimeError):
    """Training produced NaN/Inf; the message names the step and the loss terms."""


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def global_step(local_step: int, step_offset: int, schedule: str = "aebench") -> int:
    """The global step of a run's ``local_step`` after ``step_offset`` steps of a base model:
    their sum; under ``train.schedule=official`` the official count, in which a fine-tune's
    first step repeats the base's last (``global_step`` is saved before its increment:
    run_nerf_deform.py 1086-1107), i.e. ``max(step_offset - 1, 0) + local_step``."""
    if schedule == "official":
        return max(step_offset - 1, 0) + local_step
    return step_offset + local_step


def lr_at(step: int, lr: float, rate: float, decay_steps: int) -> float:
    return lr * rate ** (step / max(decay_steps, 1))


class ScaledAdam(torch.optim.Adam):
    """Adam whose param groups may carry ``lr_mult``: the Trainer sets one schedule for every
    group and this applies each group's multiple at the step (AudioAttNet's 5x); and
    ``decoupled_decay``: AdamW's weight decay, p <- p (1 - lr decay) before the step (ER-NeRF)."""

    def step(self, closure=None):
        saved = [g["lr"] for g in self.param_groups]
        for g in self.param_groups:
            g["lr"] = g["lr"] * g.get("lr_mult", 1.0)
            decay = g.get("decoupled_decay", 0.0)
            if decay:
                with torch.no_grad():
                    for p in g["params"]:
                        if p.grad is not None:
                            p.mul_(1.0 - g["lr"] * decay)
        try:
            return super().step(closure)
        finally:
            for g, lr in zip(self.param_groups, saved):
                g["lr"] = lr


class Trainer:
    """Runs ``iters`` steps of ``model`` into ``ckpt_root``; see the module docstring.

    Checkpoints go to ``ckpt_root/step_XXXXXXXX`` every ``cfg.ckpt_every`` steps and
    ``ckpt_root/final`` at the end (its ``state.json`` carries ``meta``). A new Trainer on the
    same root resumes from the latest step checkpoint; when ``final`` exists ``fit`` returns
    it at once. ``init_from`` (a checkpoint dir) initialises the weights of a fresh run
    (fine-tuning from a base model), then ``reinit(model)`` runs (e.g. DFRF re-initialises its
    warp); the optimizer starts anew, except for the parameters of ``reload_state(model)``, whose
    Adam state comes from ``init_from`` (DFRF reloads AudioNet's), and the local step count at 0.
    ``step_offset`` (the base model's global step) shifts
    the lr schedule, so it continues from the base model's step count as DFRF's
    ``global_step`` does.

    The optimizer is Adam over ``model.param_groups()`` when the model has it (groups may carry
    ``lr_mult``, applied at each step: AudioAttNet's 5x), else over all parameters.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        train_cfg,
        ckpt_root: Path,
        batch_fn: Callable[[int, torch.Generator], dict],
        device: torch.device,
        seed: int = 0,
        meta: dict | None = None,
        init_from: Path | None = None,
        desc: str = "train",
        reinit: Callable[[torch.nn.Module], None] | None = None,
        step_offset: int = 0,
        reload_state: Callable[[torch.nn.Module], torch.nn.Module] | None = None,
    ):
        self.model, self.cfg, self.root = model, train_cfg, Path(ckpt_root)
        self.batch_fn, self.device, self.seed, self.meta, self.desc = batch_fn, device, seed, dict(meta or {}), desc
        self.init_from, self.reinit, self.step_offset = init_from, reinit, int(step_offset)
        self.reload_state = reload_state
        self._reloaded: set[int] = set()  # ids of parameters whose Adam state came from init_from
        groups = model.param_groups() if hasattr(model, "param_groups") else model.parameters()
        self.optimizer = ScaledAdam(groups, lr=train_cfg.lr, betas=tuple(train_cfg.adam_betas))
        self.step = 0
        self.history: list[dict] = []

    @property
    def final_dir(self) -> Path:
        return self.root / FINAL

    def _generator(self, step: int) -> torch.Generator:
        g = torch.Generator(device=self.device)
        g.manual_seed(self.seed * 1_000_003 + step)
        return g

    def _restore(self) -> None:
        last = latest_checkpoint(self.root)
        if last is not None:
            state = load_checkpoint(last, self.model, self.optimizer, map_location=self.device)
            self.step = int(state["step"])
        elif self.init_from is not None:
            load_checkpoint(self.init_from, self.model, None, map_location=self.device)
            if self.reinit is not None:
                self.reinit(self.model)
            if self.reload_state is not None:
                self.reload_adam_state(self.reload_state(self.model))

    def set_lr(self, step: int) -> None:
        """Every group's lr for local ``step`` (``train.schedule``). ``aebench``: lr(step_offset +
        step). ``official``: the official loops set the lr *after* each step from the global step
        just taken (run_nerf_deform.py 1071-1081, AD-NeRF run_nerf.py 915-925), so step k > 0 uses
        lr(g_{k-1}) with g the official global step (:meth:`NeRFModel.global_step`), and a run's
        first step the fresh optimizers' undecayed ``lr`` (AudioAttNet's without its 5x) or, for a
        group whose state was reloaded, the lr saved with it: lr(g_0)."""
        cfg = self.cfg
        sched = lambda g: lr_at(g, cfg.lr, cfg.lr_decay_rate, cfg.lr_decay_steps)  # noqa: E731
        schedule = str(getattr(cfg, "schedule", "aebench"))
        if schedule != "official":
            for group in self.optimizer.param_groups:
                group["lr"] = sched(global_step(step, self.step_offset))
            return
        for group in self.optimizer.param_groups:
            if step > 0:
                group["lr"] = sched(global_step(step - 1, self.step_offset, schedule))
            elif self._reloaded & {id(p) for p in group["params"]}:
                group["lr"] = sched(global_step(0, self.step_offset, schedule))
            else:  # a fresh Adam at lrate: ScaledAdam's multiple is undone for this one step
                group["lr"] = cfg.lr / group.get("lr_mult", 1.0)

    def reload_adam_state(self, module: torch.nn.Module) -> None:
        """Adam's state of ``module``'s parameters from ``init_from``'s optimizer (the base model's
        last step; DFRF's fine-tune reloads AudioNet's optimizer, run_nerf_deform.py 335, 788-789).
        The base and this run have the same network, so parameters match by position."""
        path = Path(self.init_from) / "optim.pt"
        if not path.exists():
            raise FileNotFoundError(
                f"{self.init_from} holds no optimizer state (optim.pt) to reload; "
                f"set train.reload_audio_optimizer=false or pretrain the base model again"
            )
        saved = torch.load(path, map_location=self.device, weights_only=True)
        params = [p for g in self.optimizer.param_groups for p in g["params"]]
        wanted = {id(p) for p in module.parameters()}
        self._reloaded |= wanted
        for i, p in enumerate(params):
            if id(p) in wanted and i in saved["state"]:
                self.optimizer.state[p] = {k: v.clone() if torch.is_tensor(v) else v for k, v in saved["state"][i].items()}

    def fit(self, iters: int) -> Path:
        if (self.final_dir / "state.json").exists():
            return self.final_dir
        self.root.mkdir(parents=True, exist_ok=True)
        seed_everything(self.seed)
        self._restore()
        self.model.train()
        cfg = self.cfg
        log = (self.root / "log.txt").open("a")
        bar = tqdm(total=iters, initial=self.step, desc=self.desc, dynamic_ncols=True, leave=False)
        t0, start = time.perf_counter(), self.step
        mode = str(getattr(cfg, "precision", "fp32"))
        pending: list[tuple[int, torch.Tensor, dict]] = []  # steps since the last host read-back
        first_bad = torch.full((), -1, dtype=torch.long, device=self.device)

        def read_back(log_step: bool) -> None:
            """The only host-device synchronisation of the loop (log and checkpoint steps, the
            end): turn the pending steps' loss and stats into floats, stop on a non-finite loss."""
            bad = int(first_bad)
            if bad >= 0:
                bad_step, bad_loss, bad_stats = next(p for p in pending if p[0] == bad)
                terms = ", ".join(f"{k}={float(v):.4g}" for k, v in bad_stats.items())
                raise NonFiniteLoss(
                    f"{self.desc}: loss is {float(bad_loss)} at step {bad_step} ({terms}); "
                    f"lower train.lr or check the inputs; last good checkpoint: {latest_checkpoint(self.root)}"
                )
            for done_step, done_loss, done_stats in pending:
                self.history.append({"step": done_step + 1, "loss": float(done_loss), **{k: float(v) for k, v in done_stats.items()}})
            pending.clear()
            if log_step:
                stats = self.history[-1]
                bar.set_postfix(loss=f"{stats['loss']:.4g}", psnr=f"{stats.get('psnr', float('nan')):.2f}")
                log.write(f"step {self.step} " + " ".join(f"{k}={v:.5g}" for k, v in stats.items() if k != "step") + "\n")
                log.flush()

        try:
            while self.step < iters:
                step = self.step
                self.set_lr(step)
                batch = self.batch_fn(step, self._generator(step))
                with precision(mode, self.device):  # forward only; backward as autocast wants
                    loss, stats = self.model.training_step(batch, step)
                # no .item() here: a non-finite loss is noted on the device and raised at the next read-back
                first_bad = torch.where((first_bad < 0) & ~torch.isfinite(loss.detach()), step, first_bad)
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if cfg.grad_clip > 0:
                    torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
                self.optimizer.step()
                self.step = step + 1
                bar.update(1)
                pending.append((step, loss.detach(), {**stats, "lr": self.optimizer.param_groups[0]["lr"]}))
                log_step = self.step % cfg.log_every == 0 or self.step == iters
                ckpt_step = self.step % cfg.ckpt_every == 0 and self.step < iters
                if log_step or ckpt_step:
                    read_back(log_step)
                if ckpt_step:
                    _checkpoint(self, self.step)
            read_back(False)
        finally:
            bar.close()
            log.close()
        self.elapsed = time.perf_counter() - t0
        self.steps_run = self.step - start
        _checkpoint(self, self.step)
        return save_checkpoint(self.final_dir, self.model, self.optimizer, self.step, self.meta)
