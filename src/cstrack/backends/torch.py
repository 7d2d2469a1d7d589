"""`TorchBackend`: a `TrackingNetwork` run by PyTorch behind `Detector`'s backend interface."""

from __future__ import annotations

import copy

import torch

from cstrack.models.inference import NetworkOutput
from cstrack.models.network import TrackingNetwork


class TorchBackend:
    """Runs any `TrackingNetwork` with PyTorch (the default backend of `Detector`).

    The module is moved to `device` in eval mode. `channels_last` (default: on the CPU) runs an
    eval copy with weights and activations NHWC, oneDNN's native layout, faster on the CPU (see
    benchmarks/model_speed.py) with outputs equal to ~1e-8; being a copy, it leaves `model` as
    it was and does not follow later changes to its weights (build a new backend after training).
    """

    def __init__(
        self, model: TrackingNetwork, device: str | torch.device = "cpu", channels_last: bool | None = None
    ):
        self.device = torch.device(device)
        nhwc = self.device.type == "cpu" if channels_last is None else channels_last
        self.memory_format = torch.channels_last if nhwc else torch.contiguous_format
        if nhwc:
            model = copy.deepcopy(model).to(memory_format=torch.channels_last)
        self.model = model.to(self.device).eval()
        self.dtype = next(model.parameters()).dtype  # float16 when the caller halved the model
        self.stride = model.strides[0]
        self.nc = model.detect.nc

    @property
    def has_recheck(self) -> bool:
        return self.model.has_recheck

    def run(self, x: torch.Tensor) -> NetworkOutput:
        output = self.model(x.to(self.device, self.dtype).contiguous(memory_format=self.memory_format))
        return NetworkOutput(self.model.decode(output, clip=False), output.embedding, output)

    def recheck(self, output: NetworkOutput, templates: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Heat map (H, W) and decoded boxes (H * W, 4) of the re-check network."""
        recheck = self.model.recheck(output.features, templates.to(self.device, self.dtype))
        return recheck.heat[0, 0], self.model.decode_recheck(recheck.box)[0].reshape(-1, 4)
