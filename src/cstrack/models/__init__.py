"""CSTrack and OMC networks, faithful to the released implementation's module tree.

The networks, one name per way of getting one (`registry`):
- `create_model(name, **overrides)`: a registered variant (`list_models()`), randomly initialised,
  or timm-style `arch.tag` a trained model (`list_pretrained()`: in the package, or downloaded
  once);
- `model_from_weights(path)`: the network a safetensors file holds (`cstrack convert`'s, a
  training run's);
- `model_from_spec(spec)`: any of those specs (a trained name, a file, a variant name) as the
  network with where its weights came from, its trained input size and its class names
  (`LoadedModel`), as `cstrack track`, `export` and `train --weights` take them;
- `model_config(name)` and `model_from_config(config)`: a variant's `CSTrackConfig` and its
  network.

`load_weights(model, path_or_state_dict)` / `save_weights` read and write safetensors files,
`cstrack.converters` turns the authors' `.pt` files into them, and `Detector(backend, config)`
runs a network (through a `cstrack.backends` backend) on one frame at a time.
"""

from cstrack.models.detect import ANCHORS, STRIDES, Decoded, Detect
from cstrack.models.inference import (
    Detector,
    Letterbox,
    NetworkOutput,
    letterbox,
)
from cstrack.models.network import OMC, CSTrack, CSTrackConfig, CSTrackOutput, TrackingNetwork, YOLOXTrack
from cstrack.models.pretrained import list_pretrained, pretrained_weights
from cstrack.models.recheck import ReCheckOutput, decode_recheck_boxes, heat_peaks, similarity_map
from cstrack.models.registry import (
    VARIANTS,
    LoadedModel,
    count_parameters,
    create_model,
    list_models,
    model_config,
    model_from_config,
    model_from_spec,
    model_from_weights,
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
    "Detector",
    "Letterbox",
    "LoadedModel",
    "NetworkOutput",
    "ReCheckOutput",
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
    "model_from_config",
    "model_from_spec",
    "model_from_weights",
    "nms",
    "pretrained_weights",
    "save_weights",
    "similarity_map",
]
