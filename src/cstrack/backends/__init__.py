"""How a network is run: the backends behind `Detector` and the choice between them.

- `torch`: `TorchBackend`, a network run by PyTorch.
- `onnx`: `OnnxBackend`, its exported graphs (`cstrack.export`) run by ONNX Runtime, with the
  choice of execution providers; it needs the `onnx` extra, so it is imported only when used.
- `choice`: a model spec and a `cstrack.config.RuntimeConfig` (backend "auto", "torch" or
  "onnx", device, precision, providers) become a ready `Detector` (`build_detector`).

    from cstrack.backends import build_detector
    from cstrack.config import RuntimeConfig

    detector = build_detector("omc_yolox_nano.bytetrack_pets", runtime=RuntimeConfig(backend="onnx"))
"""

from cstrack.backends.choice import build_backend, build_detector, resolve_backend
from cstrack.backends.torch import TorchBackend

__all__ = [
    "TorchBackend",
    "build_backend",
    "build_detector",
    "resolve_backend",
]
