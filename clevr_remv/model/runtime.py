"""What the model needs from the machine: torch itself, a device, and settings that make a CPU run
repeat bit for bit (same seed, same weights, same predictions)."""

from __future__ import annotations

import os
from typing import Any

from clevr_remv.contract import UserError, module_available

INSTALL = "pip install 'clevr-remv[train]' (or pip install torch)"
DEVICES = ("auto", "cpu", "cuda")


class TorchMissing(UserError):
    """`train` or `predict` on a Python without PyTorch; the message says what to install."""


def require_torch() -> None:
    """Fail in one line, before any work, where PyTorch is not installed."""
    if not module_available("torch"):
        raise TorchMissing(f"the reference model needs PyTorch, which this Python lacks: {INSTALL}")


def select_device(request: str, cuda_available: bool | None = None) -> str:
    """The torch device for `--device`: `auto` takes CUDA where PyTorch sees a GPU, else the CPU;
    `cuda` without one is an error (asked for, absent), never a silent fall-back."""
    if request not in DEVICES:
        raise ValueError(f"--device {request!r}: choose {', '.join(DEVICES)}")
    if cuda_available is None:
        import torch

        cuda_available = bool(torch.cuda.is_available())
    if request == "cuda" and not cuda_available:
        raise UserError("--device cuda: PyTorch sees no CUDA GPU here (a CPU build of torch, no driver, or "
                        "CUDA_VISIBLE_DEVICES empty); use --device cpu or auto")
    if request == "auto":
        return "cuda" if cuda_available else "cpu"
    return request


def make_deterministic(seed: int, device: str) -> None:
    """Seed torch and ask for deterministic kernels: on the CPU a run then repeats exactly, and a
    resumed run equals an uninterrupted one. (CUDA's convolutions are deterministic too with
    cuDNN's benchmark off, but their sums may still differ from the CPU's.)"""
    import torch

    torch.manual_seed(seed)
    if device == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
    torch.use_deterministic_algorithms(True, warn_only=device != "cpu")


def peak_memory_mb(device: str) -> float:
    """The process's peak resident memory (CPU) or peak allocated GPU memory, in MB."""
    if device == "cuda":
        import torch

        return torch.cuda.max_memory_allocated() / 2**20
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def torch_version() -> Any:
    import torch

    return torch.__version__
