"""Initial weights from a released YOLOX-Nano ONNX graph (no pickle): `convert_yolox_onnx`.

The graph's initializers are read with `onnx`; its 113 convolutions (BatchNorm already folded:
each has a bias) are taken in graph order, which is the execution order of YOLOX's forward, and
put onto the YOLOX modules of an `*_yolox_nano` model in that same order (`yolox_conv_order`),
checking every shape. ByteTrack's export also names its nodes after the module paths; where
names are present they are checked against the order-based mapping as well.

Classes: a 1-class graph (ByteTrack) maps as is; from Megvii's 80-class COCO graph the person
row (class 0) of each class predictor is kept. The pre-processing each graph was trained with
becomes the model's `InputTransform`: COCO BGR 0-255, ByteTrack ImageNet-normalised RGB (auto:
by the class count, or chosen). The REN, SAAN, DenseMask and re-check parts keep their fresh
initialisation (REN's detection branch starts as the identity), so the converted model detects
exactly as the ONNX graph does before any training.
"""

from __future__ import annotations

from collections.abc import Iterator
from os import PathLike
from pathlib import Path

import torch
from torch import nn

from cstrack.converters.release import conversion_metadata
from cstrack.errors import InputError
from cstrack.models.network import YOLOXTrack
from cstrack.models.registry import count_parameters, model_config, model_from_config
from cstrack.models.weights import check_weights_output, save_weights
from cstrack.models.yolox import YOLOXHead, bgr255_transform, imagenet_transform

PERSON = 0  # COCO's class index of "person"
PREPROCESSING = {"bgr255": bgr255_transform, "imagenet": imagenet_transform}
AUTO_PREPROCESSING = {80: "bgr255", 1: "imagenet"}  # Megvii's COCO export; ByteTrack's export
MAX_ONNX_BYTES = 64 * 1024 * 1024  # YOLOX-Nano is 3.7 MB; anything this large is not one


def yolox_conv_order(network: YOLOXTrack) -> list[tuple[str, nn.Conv2d]]:
    """The YOLOX convolutions (module path, conv) in the order YOLOX's forward runs them."""
    convs = [
        (f"backbone.{name}", m) for name, m in network.backbone.named_modules() if isinstance(m, nn.Conv2d)
    ]
    head: YOLOXHead = network.head
    for level in range(head.nl):
        for part in ("stems", "cls_convs", "cls_preds", "reg_convs", "reg_preds", "obj_preds"):
            module = getattr(head, part)[level]
            convs += [
                (f"head.{part}.{level}{'.' + name if name else ''}", m)
                for name, m in module.named_modules()
                if isinstance(m, nn.Conv2d)
            ]
    return convs


def _module_path(node_name: str) -> str | None:
    """`/backbone/backbone/dark2/dark2.0/dconv/conv/Conv` -> `backbone.backbone.dark2.0.dconv.conv`."""
    scopes = [s for s in node_name.split("/") if s][:-1]
    if not scopes:
        return None
    parts: list[str] = []
    previous = ""
    for scope in scopes:
        parts.append(scope[len(previous) + 1 :] if previous and scope.startswith(previous + ".") else scope)
        previous = scope
    return ".".join(parts)


def _graph_convs(path: Path) -> Iterator[tuple[str, torch.Tensor, torch.Tensor]]:
    """(node name, weight, bias) of every Conv node, in graph order."""
    from cstrack.optional import require

    onnx = require("onnx", "onnx", feature="reading ONNX graphs (cstrack convert FILE.onnx)")
    from google.protobuf.message import DecodeError  # protobuf: a dependency of onnx
    from onnx import numpy_helper

    if path.stat().st_size > MAX_ONNX_BYTES:
        raise InputError(path, f"{path.stat().st_size:,} bytes is far too large for a YOLOX-Nano graph")
    try:
        graph = onnx.load(str(path), load_external_data=False).graph
    except (DecodeError, ValueError, OSError) as exc:
        raise InputError(path, f"not a readable ONNX file: {exc}") from None
    initializers = {i.name: i for i in graph.initializer}
    for node in graph.node:
        if node.op_type != "Conv":
            continue
        if len(node.input) != 3 or node.input[1] not in initializers or node.input[2] not in initializers:
            raise InputError(
                path, f"Conv node {node.name!r} has no constant weight and bias (BatchNorm not folded?)"
            )
        weight, bias = (
            torch.from_numpy(numpy_helper.to_array(initializers[n]).copy()) for n in node.input[1:]
        )
        yield node.name, weight.float(), bias.float()


def yolox_state_from_onnx(path: str | PathLike, network: YOLOXTrack) -> tuple[dict[str, torch.Tensor], int]:
    """The YOLOX part of `network`'s state_dict (keys relative to it) from the graph; and its class count."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "ONNX file not found")
    convs = yolox_conv_order(network)
    nodes = list(_graph_convs(path))
    if len(nodes) != len(convs):
        raise InputError(path, f"{len(nodes)} convolutions, a YOLOX-Nano graph has {len(convs)}")
    nc = network.head.nc
    graph_classes = nodes[[name for name, _ in convs].index("head.cls_preds.0")][1].shape[0]
    keep_rows = {graph_classes: slice(None)} if graph_classes == nc else {}
    if nc == 1 and graph_classes == 80:
        keep_rows = {80: slice(PERSON, PERSON + 1)}
    if graph_classes not in keep_rows:
        raise InputError(path, f"the graph predicts {graph_classes} classes; the model has {nc}")
    state: dict[str, torch.Tensor] = {}
    for (node_name, weight, bias), (module_path, conv) in zip(nodes, convs):
        named = _module_path(node_name)
        if named is not None and named.startswith(("backbone.", "head.")) and named != module_path:
            raise InputError(path, f"node {node_name!r} comes where the model has {module_path}")
        if ".cls_preds." in module_path:
            weight, bias = weight[keep_rows[graph_classes]], bias[keep_rows[graph_classes]]
        if tuple(weight.shape) != tuple(conv.weight.shape) or tuple(bias.shape) != tuple(conv.bias.shape):
            raise InputError(
                path,
                f"{node_name or module_path}: weight {tuple(weight.shape)} where {module_path} has "
                f"{tuple(conv.weight.shape)}",
            )
        state[f"{module_path}.weight"], state[f"{module_path}.bias"] = weight, bias
    return state, graph_classes


def convert_yolox_onnx(
    source: str | PathLike, output: str | PathLike, arch: str, preprocessing: str = "auto"
) -> tuple[int, int, str]:
    """Write ARCH's initial weights with the YOLOX part from an ONNX graph; (tensors, parameters, preprocessing)."""
    source = Path(source)
    check_weights_output(output, source)
    model = model_from_config(model_config(arch)).eval()
    network = model.model if model.has_recheck else model
    if not isinstance(network, YOLOXTrack):
        raise InputError(None, f"an ONNX YOLOX graph needs a *_yolox_nano architecture, not {arch}")
    state, graph_classes = yolox_state_from_onnx(source, network)
    if preprocessing == "auto":
        if graph_classes not in AUTO_PREPROCESSING:
            raise InputError(
                source, f"{graph_classes} classes: say which pre-processing with --preprocessing"
            )
        preprocessing = AUTO_PREPROCESSING[graph_classes]
    if preprocessing not in PREPROCESSING:
        raise InputError(None, f"preprocessing must be one of {sorted(PREPROCESSING)}, got {preprocessing!r}")
    matrix, bias = PREPROCESSING[preprocessing]()
    state.update({"input.matrix": matrix, "input.bias": bias})
    network.load_state_dict(state, strict=False)
    metadata = {**conversion_metadata(arch, {}, source, "onnx", None), "preprocessing": preprocessing}
    save_weights(model, output, metadata)
    return len(model.state_dict()), count_parameters(model), preprocessing
