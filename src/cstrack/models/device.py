"""The one place a device name from a user (CLI flag, API argument, training config) is checked."""

from __future__ import annotations

import re

from cstrack.errors import InputError

DEVICE_FORMS = "cpu, cuda, cuda:N (N a GPU index) or auto"  # what resolve_device accepts


def resolve_device(device: str, local_rank: int | None = None) -> str:
    """The torch device to run on: 'auto' picks CUDA when it is available, else the CPU.

    Anything but cpu, cuda, cuda:N and auto is refused here, with the accepted forms, rather than
    by torch in a traceback; so is a CUDA device that this machine does not have. `local_rank`
    (a torchrun worker's) numbers a plain 'cuda' or an 'auto' that picked CUDA.
    """
    import torch

    if not isinstance(device, str) or not re.fullmatch(r"cpu|auto|cuda(:\d+)?", device):
        raise InputError(None, f"unknown device {device!r}: use {DEVICE_FORMS}")
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise InputError(None, f"device {device!r} asked for but CUDA is not available")
        if device == "cuda" and local_rank is not None:
            device = f"cuda:{local_rank}"
        count = torch.cuda.device_count()
        if int(device.partition(":")[2] or 0) >= count:
            raise InputError(None, f"device {device!r} asked for but this machine has {count} CUDA device(s)")
    return device
