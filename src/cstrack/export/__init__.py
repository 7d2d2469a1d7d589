"""Deployment formats: ONNX graphs of the networks (run by `cstrack.backends.onnx.OnnxBackend`)
and the cache of the graphs exported for a weights file."""

from cstrack.export.onnx import OnnxModels, export_onnx, inference_copy

__all__ = ["OnnxModels", "export_onnx", "inference_copy"]
