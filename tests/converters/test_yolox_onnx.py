"""The YOLOX-Nano ONNX import: the rebuilt detector equals ONNX Runtime on a real PETS frame (both
released graphs), the order-based mapping matches ByteTrack's node names, and bad inputs are refused."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from cstrack.converters.yolox_onnx import convert_yolox_onnx, yolox_conv_order
from cstrack.errors import InputError
from cstrack.models import create_model
from cstrack.models.mobilenet import IMAGENET_MEAN, IMAGENET_STD

BYTETRACK = "bytetrack_nano_mot17_608x1088.onnx"
COCO = "yolox_nano_coco_416.onnx"


def onnx_layout(head: Sequence[torch.Tensor]) -> torch.Tensor:
    """Raw head outputs in the layout of the released YOLOX ONNX graphs: (B, N, 5 + nc) with
    raw x, y, w, h and sigmoid obj and class scores, levels and row-major cells concatenated."""
    rows = []
    for p in head:
        flat = p.flatten(1, 3)
        rows.append(torch.cat((flat[..., :4], flat[..., 4:].sigmoid()), -1))
    return torch.cat(rows, 1)


def _pets_frame(shared_data: Path) -> np.ndarray:
    return cv2.imread(str(shared_data / "PETS09-S2L1" / "img1" / "000650.jpg"))


def _released_input(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    """YOLOX's own pre-processing: resize by r, top-left, pad 114 (uint8 BGR)."""
    ratio = min(width / frame.shape[1], height / frame.shape[0])
    resized = cv2.resize(frame, (int(frame.shape[1] * ratio), int(frame.shape[0] * ratio)))
    padded = np.full((height, width, 3), 114, np.uint8)
    padded[: resized.shape[0], : resized.shape[1]] = resized
    return padded


@pytest.mark.parametrize(
    ("graph", "size", "preprocessing"), [(BYTETRACK, (1088, 608), "imagenet"), (COCO, (416, 416), "bgr255")]
)
def test_converted_detector_equals_onnx_runtime(
    shared_data: Path,
    shared_weights: Path,
    tmp_path: Path,
    graph: str,
    size: tuple[int, int],
    preprocessing: str,
) -> None:
    import onnxruntime as ort

    out = tmp_path / "init.safetensors"
    tensors, _, chosen = convert_yolox_onnx(shared_weights / graph, out, "omc_yolox_nano")
    assert chosen == preprocessing and tensors == len(create_model("omc_yolox_nano").state_dict())
    model = create_model("omc_yolox_nano", out).eval()
    padded = _released_input(_pets_frame(shared_data), *size)
    rgb = padded[..., ::-1].astype(np.float32) / 255
    if preprocessing == "imagenet":
        graph_input = (rgb - np.float32(IMAGENET_MEAN)) / np.float32(IMAGENET_STD)
    else:
        graph_input = padded.astype(np.float32)
    session = ort.InferenceSession(str(shared_weights / graph), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    expected = session.run(None, {name: np.ascontiguousarray(graph_input.transpose(2, 0, 1)[None])})[0][
        0, :, :6
    ]
    with torch.no_grad():
        ours = onnx_layout(model(torch.from_numpy(rgb.transpose(2, 0, 1).copy())[None]).head)[0].numpy()
    assert ours.shape == expected.shape
    scores = expected[:, 4] * expected[:, 5]
    assert (scores > 0.3).sum() >= 20  # the frame has people, and both graphs find them
    # Objectness and person score at every cell; raw box outputs at every cell scoring > 0.01
    # (every candidate a tracker sees). Background cells with saturated activations differ more
    # in float32: ONNX Runtime itself changes them by 5e-4 between its optimisation levels.
    assert np.abs(ours[:, 4:] - expected[:, 4:]).max() < 1e-4
    candidates = scores > 0.01
    assert np.abs(ours[candidates, :4] - expected[candidates, :4]).max() < 1e-4


def test_bytetrack_node_names_are_the_module_paths(shared_weights: Path) -> None:
    import onnx

    graph = onnx.load(str(shared_weights / BYTETRACK)).graph
    names = [n.name for n in graph.node if n.op_type == "Conv"]
    paths = [path for path, _ in yolox_conv_order(create_model("cstrack_yolox_nano"))]
    assert len(names) == len(paths) == 113
    assert (
        names[0] == "/backbone/backbone/stem/conv/conv/Conv"
        and paths[0] == "backbone.backbone.stem.conv.conv"
    )
    assert names[-1] == "/head/obj_preds.2/Conv" and paths[-1] == "head.obj_preds.2"


def test_conversion_refuses_wrong_architectures_and_files(tmp_path: Path, shared_weights: Path) -> None:
    with pytest.raises(InputError, match="needs a \\*_yolox_nano architecture"):
        convert_yolox_onnx(shared_weights / BYTETRACK, tmp_path / "x.safetensors", "omc_n")
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x08\x07not a graph" * 10)
    with pytest.raises(InputError, match="garbage.onnx"):
        convert_yolox_onnx(garbage, tmp_path / "x.safetensors", "omc_yolox_nano")
    assert not (tmp_path / "x.safetensors").exists()


def test_convert_cli_onnx_needs_backbone_flag(tmp_path: Path, shared_weights: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "cstrack",
            "convert",
            str(shared_weights / COCO),
            str(tmp_path / "o.safetensors"),
            "--arch",
            "omc_yolox_nano",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert (
        result.stderr.count("\n") == 1 and "--backbone" in result.stderr and "Traceback" not in result.stderr
    )
