import pytest
import torch
from omegaconf import OmegaConf

from aebench.config import load_config
from aebench.engine.checkpoint import list_checkpoints, read_state
from aebench.engine.trainer import NonFiniteLoss, Trainer

torch.set_num_threads(1)  # 2 threads on the shared 2-core machine spin-wait badly under load


class Colour(torch.nn.Module):
    def __init__(self, bad_at=None):
        super().__init__()
        self.c = torch.nn.Parameter(torch.zeros(3))
        self.bad_at = bad_at

    def training_step(self, batch, step):
        loss = ((self.c - batch["target"]) ** 2).mean()
        if step == self.bad_at:
            loss = loss * float("nan")
        return loss, {"psnr": -10 * torch.log10(loss.detach()).item() if loss.item() > 0 else 99.0}


def cfg(**kw):
    c = load_config(scale="smoke").train
    c = OmegaConf.merge(c, {"lr": 0.05, "ckpt_every": 5, "log_every": 1, **kw})
    return c


def batches(step, g):
    return {"target": torch.tensor([0.2, 0.5, 0.8])}


def test_trainer_fits_checkpoints_and_resumes(tmp_path):
    torch.manual_seed(0)
    m = Colour()
    tr = Trainer(m, cfg(), tmp_path, batches, torch.device("cpu"), meta={"k": 1})
    with pytest.raises(KeyboardInterrupt):
        m.training_step = _interrupt_after(m.training_step, 12)
        tr.fit(30)
    assert [p.name for p in list_checkpoints(tmp_path)][-1] == "step_00000010"
    m2 = Colour()
    tr2 = Trainer(m2, cfg(), tmp_path, batches, torch.device("cpu"), meta={"k": 1})
    final = tr2.fit(30)
    assert tr2.steps_run == 20  # resumed at 10
    assert read_state(final) == {"step": 30, "meta": {"k": 1}}
    assert tr2.history[0]["step"] == 11 and tr2.history[-1]["loss"] < 0.03  # initial loss 0.31
    # finished: returns at once without training
    m3 = Colour()
    assert Trainer(m3, cfg(), tmp_path, batches, torch.device("cpu")).fit(30) == final
    assert torch.equal(m3.c, torch.zeros(3))


def _interrupt_after(fn, n):
    calls = {"n": 0}

    def wrapped(batch, step):
        calls["n"] += 1
        if calls["n"] > n:
            raise KeyboardInterrupt
        return fn(batch, step)

    return wrapped


def test_trainer_stops_on_nan_naming_the_step(tmp_path):
    with pytest.raises(NonFiniteLoss, match="step 3"):
        Trainer(Colour(bad_at=3), cfg(), tmp_path, batches, torch.device("cpu")).fit(10)


class Spy(torch.Tensor):
    """A tensor that records when its value is read back to the host (item, float, int, bool)."""

    reads: list = []
    step = [0]

    def _read(self, kind):
        Spy.reads.append(Spy.step[0])
        return getattr(torch.Tensor, kind)(self.as_subclass(torch.Tensor))

    def item(self):
        return self._read("item")

    def __float__(self):
        return self._read("__float__")

    def __int__(self):
        return self._read("__int__")

    def __bool__(self):
        return self._read("__bool__")


class SpyColour(Colour):
    def training_step(self, batch, step):
        Spy.step[0] = step
        loss = ((self.c - batch["target"]) ** 2).mean()
        if step == self.bad_at:
            loss = loss * float("nan")
        return loss.as_subclass(Spy), {"psnr": (-10 * torch.log10(loss.detach())).as_subclass(Spy)}


@pytest.mark.parametrize("bad_at", [None, 13])
def test_no_host_read_back_except_at_log_and_checkpoint_steps(tmp_path, bad_at):
    """GPU readiness: the loop reads the loss and stats back (a host-device sync on CUDA) only
    after log and checkpoint steps, never per step; a NaN is still caught, naming its step."""
    Spy.reads.clear()
    tr = Trainer(SpyColour(bad_at=bad_at), cfg(log_every=10, ckpt_every=25), tmp_path, batches, torch.device("cpu"))
    if bad_at is None:
        tr.fit(30)
        assert [h["step"] for h in tr.history] == list(range(1, 31)) and all(isinstance(h["loss"], float) for h in tr.history)
    else:
        with pytest.raises(NonFiniteLoss, match="step 13"):
            tr.fit(30)
    assert Spy.reads and set(Spy.reads) <= {9, 19, 24, 29}  # read after steps 10, 20, 25 (checkpoint), 30


class TwoParts(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.audio = torch.nn.Linear(3, 3)
        self.rest = torch.nn.Linear(3, 3)

    def training_step(self, batch, step):
        x = batch["target"]
        loss = ((self.rest(self.audio(x)) - x) ** 2).mean()
        return loss, {}


def test_fine_tuning_reloads_only_the_named_modules_adam_state(tmp_path):
    """train.reload_audio_optimizer (DFRF's AudioNet): the base's Adam moments for that module,
    fresh ones for everything else; the final checkpoint keeps its optimizer for this."""
    torch.manual_seed(0)
    base = Trainer(TwoParts(), cfg(), tmp_path / "base", batches, torch.device("cpu"))
    final = base.fit(5)
    assert (final / "optim.pt").exists()
    saved = base.optimizer.state
    model = TwoParts()
    tuned = Trainer(model, cfg(), tmp_path / "tune", batches, torch.device("cpu"), init_from=final, reload_state=lambda m: m.audio)
    tuned._restore()
    for p_new, p_old in zip(model.audio.parameters(), base.model.audio.parameters()):
        assert torch.equal(tuned.optimizer.state[p_new]["exp_avg"], saved[p_old]["exp_avg"])
    assert all(p not in tuned.optimizer.state for p in model.rest.parameters())


def test_decoupled_decay_is_adamw():
    """A group's ``decoupled_decay`` steps as torch's AdamW with that weight decay (ER-NeRF's
    optimiser); groups without it as Adam."""
    from aebench.engine.trainer import ScaledAdam

    torch.manual_seed(0)
    a, b = torch.randn(5, 3), torch.randn(4)
    ours = [torch.nn.Parameter(a.clone()), torch.nn.Parameter(b.clone())]
    ref = [torch.nn.Parameter(a.clone()), torch.nn.Parameter(b.clone())]
    opt = ScaledAdam([{"params": [ours[0]], "lr_mult": 10.0, "decoupled_decay": 1e-2}, {"params": [ours[1]]}], lr=1e-3, betas=(0.0, 0.99))
    adamw = torch.optim.AdamW(
        [{"params": [ref[0]], "lr": 1e-2, "weight_decay": 1e-2}, {"params": [ref[1]], "weight_decay": 0.0}], lr=1e-3, betas=(0.0, 0.99)
    )
    for step in range(4):
        for params, o in ((ours, opt), (ref, adamw)):
            o.zero_grad()
            ((params[0] ** 2).sum() * (step + 1) + (params[1] ** 3).sum()).backward()
            o.step()
    for p, q in zip(ours, ref):
        torch.testing.assert_close(p, q, rtol=1e-6, atol=1e-7)
