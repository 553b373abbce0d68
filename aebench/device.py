"""Torch device selection from the ``device`` config key, and the CPU threads of the ``threads`` key."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


def resolve_device(name: str = "auto"):
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device={name} was asked for but CUDA is not available on this machine; use device=cpu or device=auto")
    return dev


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` torch CPU threads (``threads``; 0 = leave torch's default), then
    restore the previous count. A CPU run's numbers depend on the thread count bit for bit, so a
    protocol with a committed reference pins it and reproduces on any core count."""
    if n <= 0:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(before)
