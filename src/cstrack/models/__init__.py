"""CSTrack and OMC networks, faithful to the released implementation's module tree.

Entry points: `create_model(name, **overrides)` (see `registry` for the variants and switches),
`load_weights(model, path_or_state_dict)`, and `Detector(model)` for frame-level inference.
"""

from cstrack.models.detect import ANCHORS, STRIDES, Decoded, Detect
from cstrack.models.inference import DetectionResult, Detector, Letterbox, box_iou, letterbox, nms
from cstrack.models.network import OMC, CSTrack, CSTrackConfig, CSTrackOutput
from cstrack.models.recheck import ReCheckOutput, decode_recheck_boxes, heat_peaks, similarity_map
from cstrack.models.registry import VARIANTS, count_parameters, create_model, list_models, model_config
from cstrack.models.weights import load_weights

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
    "ReCheckOutput",
    "box_iou",
    "count_parameters",
    "create_model",
    "decode_recheck_boxes",
    "heat_peaks",
    "letterbox",
    "list_models",
    "load_weights",
    "model_config",
    "nms",
    "similarity_map",
]
