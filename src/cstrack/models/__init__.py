"""CSTrack and OMC networks, faithful to the released implementation's module tree.

Entry points: `create_model(name, **overrides)` (see `registry` for the variants and switches),
`load_weights(model, path_or_state_dict)` / `save_weights`, `pretrained_weights(name)` for the trained
models (`list_pretrained()`: in the package, or downloaded once), `model_from_weights(path)` for files
written by `cstrack convert`, `cstrack.models.release.convert_checkpoint` for the authors' `.pt`
files, and `Detector(model, backend="torch"|"onnx")` for frame-level inference.
"""

from cstrack.models.detect import ANCHORS, STRIDES, Decoded, Detect
from cstrack.models.inference import (
    DetectionResult,
    Detector,
    Letterbox,
    NetworkOutput,
    TorchBackend,
    letterbox,
)
from cstrack.models.network import OMC, CSTrack, CSTrackConfig, CSTrackOutput, TrackingNetwork, YOLOXTrack
from cstrack.models.pretrained import list_pretrained, pretrained_weights
from cstrack.models.recheck import ReCheckOutput, decode_recheck_boxes, heat_peaks, similarity_map
from cstrack.models.registry import (
    VARIANTS,
    ResolvedModel,
    count_parameters,
    create_model,
    list_models,
    model_config,
    model_from_weights,
    resolve_model,
)
from cstrack.models.suppression import box_iou, nms
from cstrack.models.weights import load_weights, save_weights

__all__ = [
    "ANCHORS",
    "OMC",
    "STRIDES",
    "VARIANTS",
    "CSTrack",
    "CSTrackConfig",
    "CSTrackOutput",
    "Decoded",
    "Detect",
    "DetectionResult",
    "Detector",
    "Letterbox",
    "NetworkOutput",
    "ReCheckOutput",
    "ResolvedModel",
    "TorchBackend",
    "TrackingNetwork",
    "YOLOXTrack",
    "box_iou",
    "count_parameters",
    "create_model",
    "decode_recheck_boxes",
    "heat_peaks",
    "letterbox",
    "list_models",
    "list_pretrained",
    "load_weights",
    "model_config",
    "model_from_weights",
    "nms",
    "pretrained_weights",
    "resolve_model",
    "save_weights",
    "similarity_map",
]
