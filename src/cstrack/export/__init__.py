"""Deployment formats: ONNX graphs of the networks and the ONNX Runtime inference backend."""

from cstrack.export.onnx import OnnxBackend, OnnxModels, export_onnx, inference_copy

__all__ = ["OnnxBackend", "OnnxModels", "export_onnx", "inference_copy"]
