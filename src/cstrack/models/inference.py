"""Frame-level inference: letterbox, forward, decode, thresholds, NMS, embeddings, re-check.

`Detector(TorchBackend(model))(frame_bgr, templates)` returns a DetectionResult of numpy arrays
in the original image's pixels. The network runs on a backend object: PyTorch (`TorchBackend`),
ONNX Runtime (`cstrack.export.onnx.OnnxBackend`) or anything with the `DetectorBackend` protocol;
everything around it is shared (`cstrack.pipeline.backends` chooses one by name). Defaults follow the reference tracker: objectness > 0.5, obj * cls > 0.5, NMS IoU
0.6 (`cstrack.models.suppression`; the OMC release's DIoU-NMS is an option), at most 300 detections; re-check peaks
by 3x3 max-pool, top 100, heat > 0.3. Embeddings are read at the stride-8 cell of each box centre
(of each heat peak for transductive detections) and L2-normalised.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass
from os import PathLike
from typing import Any, NamedTuple, Protocol, runtime_checkable

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from cstrack.errors import InputError
from cstrack.models.classes import default_class_names
from cstrack.models.detect import Decoded, clip_boxes
from cstrack.models.network import TrackingNetwork
from cstrack.models.recheck import heat_peaks
from cstrack.models.suppression import nms

logger = logging.getLogger(__name__)

PAD_VALUE = 127.5
SIZE_MULTIPLE = 32
MAX_INPUT_SIDE = 4096  # a 4K frame's width; beyond it the feature maps alone take tens of GB


@dataclass(frozen=True)
class Letterbox:
    """How an image was placed in the network input: per-axis scale and top-left padding."""

    scale: tuple[float, float]  # (sx, sy): resized size / original size
    pad: tuple[int, int]  # (left, top) in input pixels
    shape: tuple[int, int]  # original (height, width)

    def _affine(self) -> tuple[np.ndarray, np.ndarray]:
        return np.array(self.scale * 2, dtype=np.float64), np.array(self.pad * 2, dtype=np.float64)

    def to_input(self, boxes: np.ndarray) -> np.ndarray:
        """xyxy boxes (N, 4) from original to network-input pixels."""
        gain, offset = self._affine()
        return np.asarray(boxes, dtype=np.float64) * gain + offset

    def to_original(self, boxes: np.ndarray, clip: bool = True) -> np.ndarray:
        """xyxy boxes (N, 4) from network-input to original pixels, clipped to the image."""
        gain, offset = self._affine()
        out = (np.asarray(boxes, dtype=np.float64) - offset) / gain
        if clip:
            h, w = self.shape
            out = np.clip(out, 0, [w, h, w, h])
        return out


# What a detector's re-check searches for: templates (K, E), or a function of the frame's detected
# boxes (N, 4) that gives them (see `Detector.__call__`).
Templates = np.ndarray | Callable[[np.ndarray], np.ndarray | None]

FRAME_RULE = "a BGR uint8 HxWx3 numpy array with H, W >= 1, as OpenCV reads it"


def _describe(value: object) -> str:
    """What a frame given is, for the error: its dtype and shape, or its type."""
    if isinstance(value, np.ndarray):
        return f"an array of dtype {value.dtype} and shape {value.shape}"
    if value is None:
        return "None"
    kind = type(value)
    module = "" if kind.__module__ == "builtins" else f"{kind.__module__}."
    return f"an object of type {module}{kind.__qualname__}"


def check_frame(frame: object) -> None:
    """InputError unless `frame` is FRAME_RULE: other dtypes (float in [0, 1], uint16) and layouts
    (grey, RGBA) would run as garbage or fail deep in OpenCV. Only the type, dtype and shape are
    looked at: no pass over the pixels, no copy."""
    if not (
        isinstance(frame, np.ndarray)
        and frame.dtype == np.uint8
        and frame.ndim == 3
        and frame.shape[2] == 3
        and frame.shape[0] >= 1
        and frame.shape[1] >= 1
    ):
        raise InputError(None, f"a frame must be {FRAME_RULE}; got {_describe(frame)}")


DETECTIONS_RULE = "an (N, 5) or (N, 6) numeric array of x1, y1, x2, y2, score[, class] in frame pixels"


def check_detections(detections: object) -> np.ndarray:
    """Another detector's boxes as float64 (N, 5 or 6), else InputError: the layout, and a class
    column of whole numbers (truncating 0.5 would track it as class 0). Boxes and scores are
    checked where they are associated (`JDETracker.update`), which names the bad row."""
    try:
        table = np.array(detections, dtype=np.float64)  # a copy: the caller may reuse or flip its own
    except (TypeError, ValueError):
        raise InputError(None, f"detections must be {DETECTIONS_RULE}; got {_describe(detections)}") from None
    if table.shape == (0,):
        table = table.reshape(0, 5)
    if table.ndim != 2 or table.shape[1] not in (5, 6):
        raise InputError(None, f"detections must be {DETECTIONS_RULE}; got shape {table.shape}")
    if table.shape[1] == 6 and not (table[:, 5] == np.round(table[:, 5])).all():
        raise InputError(None, "detections' class column (the 6th) must hold integer class indices")
    return table


def check_input_size(size: tuple[int, int], what: str = "the input size") -> tuple[int, int]:
    """(width, height), both positive multiples of 32 up to MAX_INPUT_SIDE, else InputError naming
    `what` (an option, a file's metadata): --img-size 100000 100000 would allocate 110 GB."""
    width, height = (int(v) for v in size)
    if (
        not (0 < width <= MAX_INPUT_SIDE and 0 < height <= MAX_INPUT_SIDE)
        or width % SIZE_MULTIPLE
        or height % SIZE_MULTIPLE
    ):
        raise InputError(
            None,
            f"{what} must be two positive multiples of {SIZE_MULTIPLE} up to {MAX_INPUT_SIDE}, got {width} {height}",
        )
    return width, height


# The input budget when the input size follows the source (`input_size_for`): 960 x 544 pixels,
# the 16:9 size whose cost stays within the peer detector's at 1088 x 608 (model card, peers.py).
INPUT_PIXELS = 960 * 544


def _round_up(value: int) -> int:
    return -(-value // SIZE_MULTIPLE) * SIZE_MULTIPLE


def input_size_for(width: int, height: int, pixels: int = INPUT_PIXELS) -> tuple[int, int]:
    """The network input (W, H) for width x height frames: multiples of 32 keeping the frame's
    aspect ratio, the most pixels within `pixels`, never larger than the frame (rounded up to
    32), so a 1920x1080 video runs at 960x544 rather than letterboxed into a 4:3 input."""
    aspect = width / height
    best = (SIZE_MULTIPLE, SIZE_MULTIPLE)
    for rows in range(SIZE_MULTIPLE, _round_up(height) + 1, SIZE_MULTIPLE):
        cols = min(_round_up(width), max(SIZE_MULTIPLE, round(rows * aspect / SIZE_MULTIPLE) * SIZE_MULTIPLE))
        if cols * rows <= pixels and cols * rows > best[0] * best[1]:
            best = (cols, rows)
    return best


def letterbox(
    image: np.ndarray, size: tuple[int, int], pad_value: float = PAD_VALUE
) -> tuple[np.ndarray, Letterbox]:
    """Resize keeping the aspect ratio and pad to `size` (W, H): float32 HxWx3, values 0..255."""
    width, height = check_input_size(size)
    h, w = image.shape[:2]
    ratio = min(width / w, height / h)
    new_w, new_h = max(1, round(w * ratio)), max(1, round(h * ratio))
    # Bilinear, as the pretrained detectors were trained (ByteTrack, YOLOX): recall 0.825 -> 0.830.
    resized = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR).astype(np.float32)
    left, top = round((width - new_w) / 2 - 0.1), round((height - new_h) / 2 - 0.1)
    padded = cv2.copyMakeBorder(
        resized,
        top,
        height - new_h - top,
        left,
        width - new_w - left,
        cv2.BORDER_CONSTANT,
        value=(pad_value, pad_value, pad_value),
    )
    return padded, Letterbox((new_w / w, new_h / h), (left, top), (h, w))


def read_embeddings(embedding: torch.Tensor, points: torch.Tensor, stride: int) -> torch.Tensor:
    """Unit embeddings (N, E) at the cells containing `points` (N, 2) xy pixels of an (E, H, W) map."""
    h, w = embedding.shape[1:]
    cx = torch.div(points[:, 0], stride, rounding_mode="floor").long().clamp(0, w - 1)
    cy = torch.div(points[:, 1], stride, rounding_mode="floor").long().clamp(0, h - 1)
    return F.normalize(embedding[:, cy, cx].T, dim=1)


def _numpy(t: torch.Tensor) -> np.ndarray:
    return t.float().cpu().numpy()


@dataclass
class DetectionResult:
    """One frame's candidates in original-image pixels (numpy, float32 unless noted)."""

    boxes_xyxy: np.ndarray  # (N, 4) basic detections
    scores: np.ndarray  # (N,) objectness * class probability
    embeddings: np.ndarray  # (N, E) unit embeddings
    levels: np.ndarray  # (N,) int64 pyramid level of the winning anchor (0: stride 8; -1: a given box)
    trans_boxes_xyxy: np.ndarray  # (M, 4) transductive detections of the re-check network
    trans_scores: np.ndarray  # (M,) heat M_p at the peak
    trans_embeddings: np.ndarray  # (M, E)
    classes: np.ndarray | None = None  # (N,) int64 class index (argmax of the class scores); None: nc 1
    trans_classes: np.ndarray | None = None  # (M,) int64 class the detection head sees at each peak

    def select(self, keep: np.ndarray, keep_transductive: np.ndarray) -> DetectionResult:
        """The detections where `keep` (N,) holds and the re-check ones where `keep_transductive`
        (M,) does: every field is cut, `trans_*` by the second mask; None stays None."""
        changes = {}
        for item in dataclasses.fields(self):
            value = getattr(self, item.name)
            if value is not None:
                changes[item.name] = value[keep_transductive if item.name.startswith("trans_") else keep]
        return dataclasses.replace(self, **changes)


class NetworkOutput(NamedTuple):
    """What a backend gives for one input image, before thresholds and NMS."""

    decoded: Decoded  # every anchor, boxes not clipped, batch of one
    embedding: torch.Tensor  # (1, E, H/8, W/8) raw embedding map
    features: Any  # whatever the backend's `recheck` needs from this pass


@runtime_checkable
class DetectorBackend(Protocol):
    """What `Detector` runs the network with: `TorchBackend`, `cstrack.export.onnx.OnnxBackend`."""

    stride: int  # stride of the embedding map (the finest level)
    nc: int  # number of classes

    @property
    def has_recheck(self) -> bool: ...

    def run(self, x: torch.Tensor) -> NetworkOutput: ...

    def recheck(
        self, output: NetworkOutput, templates: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]: ...


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


class Detector:
    """A network backend plus its pre- and post-processing, for one BGR frame at a time.

    `backend` runs the network (`TorchBackend(model)`, call `model.fuse()` first for speed;
    `cstrack.export.onnx.OnnxBackend`); a backend with an `img_size` attribute was built for a
    fixed input size, which must be `img_size`, unless its `dynamic` attribute is true (ONNX
    graphs exported with dynamic height and width). Pre- and post-processing are shared, so
    every backend gives the same DetectionResult. `img_size` None (the default) fits the input
    to each frame's size and aspect ratio within `input_pixels` (`input_size_for`; a fixed-size
    backend keeps its size); the choice is logged once per frame size. Boxes that extend past
    the border are kept as they are (as ByteTrack keeps them, and as MOTChallenge ground truth
    draws people at the border): clipping them, as the JDE-family trackers do (`clip=True`),
    cost recall 0.825 -> 0.795 at IoU 0.5 on MOT17-11-300 and MOT17-mini (model card). `class_names` name the model's classes
    (default: `cstrack.models.classes.default_class_names(backend.nc)`). `source`, the weights
    file, is named when the network's outputs are not finite (overflowing weights): the check is
    here, not deep in the association.
    """

    def __init__(
        self,
        backend: DetectorBackend,
        img_size: tuple[int, int] | None = None,
        obj_threshold: float = 0.5,
        score_threshold: float = 0.5,
        iou_threshold: float = 0.6,
        max_det: int = 300,
        diou_nms: bool = False,
        recheck_top_k: int = 100,
        recheck_threshold: float = 0.3,
        clip: bool = False,
        class_names: tuple[str, ...] | list[str] | None = None,
        source: str | PathLike | None = None,
        input_pixels: int = INPUT_PIXELS,
    ):
        fixed = not getattr(backend, "dynamic", False)  # a dynamic backend takes any multiple of 32
        if img_size is None and fixed and hasattr(backend, "img_size"):
            img_size = tuple(backend.img_size)
        self.img_size = None if img_size is None else check_input_size(img_size)
        if input_pixels < SIZE_MULTIPLE**2:
            raise InputError(None, f"input_pixels must be at least {SIZE_MULTIPLE**2}, got {input_pixels}")
        self.input_pixels = input_pixels
        self._sizes: dict[tuple[int, int], tuple[int, int]] = {}
        self.source = source
        if fixed and hasattr(backend, "img_size") and tuple(backend.img_size) != self.img_size:
            raise InputError(
                None, f"the backend was built for input size {backend.img_size}, not {self.img_size}"
            )
        self.backend = backend
        self.class_names = tuple(class_names) if class_names else default_class_names(backend.nc)
        if len(self.class_names) != backend.nc:
            raise ValueError(f"{len(self.class_names)} class names for a model with {backend.nc} class(es)")
        self.device = torch.device(getattr(backend, "device", "cpu"))
        self.obj_threshold = obj_threshold
        self.score_threshold = score_threshold
        self.iou_threshold = iou_threshold
        self.max_det = max_det
        self.diou_nms = diou_nms
        self.recheck_top_k = recheck_top_k
        self.recheck_threshold = recheck_threshold
        self.clip = clip

    @property
    def has_recheck(self) -> bool:
        return self.backend.has_recheck

    def input_size(self, frame_shape: tuple[int, ...]) -> tuple[int, int]:
        """The input (W, H) for frames of `frame_shape` (H, W, ...): `img_size`, else fitted."""
        if self.img_size is not None:
            return self.img_size
        key = (frame_shape[1], frame_shape[0])
        if key not in self._sizes:
            self._sizes[key] = input_size_for(*key, self.input_pixels)
            logger.info("cstrack: input %dx%d for %dx%d frames", *self._sizes[key], *key)
        return self._sizes[key]

    def preprocess(self, frame_bgr: np.ndarray) -> tuple[torch.Tensor, Letterbox]:
        """BGR uint8 HxWx3 frame -> (1, 3, H, W) RGB input in [0, 1] with grey (0.5) padding."""
        check_frame(frame_bgr)
        padded, placement = letterbox(frame_bgr, self.input_size(frame_bgr.shape))
        rgb = np.ascontiguousarray(padded[..., ::-1].transpose(2, 0, 1)) / np.float32(255)
        return torch.from_numpy(rgb)[None].to(self.device), placement

    #: `__call__` takes a template selector as well as templates (see there).
    selects_templates = True

    #: `__call__` takes another detector's boxes (`detections=`) in place of its own.
    takes_detections = True

    @torch.inference_mode()
    def __call__(
        self, frame_bgr: np.ndarray, templates: Templates | None = None, detections: object = None
    ) -> DetectionResult:
        """Detections of one frame; with `templates` (K, E) also the re-check's transductive ones.

        `templates` may also be a function of the frame's detected boxes (N, 4, original pixels)
        giving the templates to re-check, so a tracker can search only for the tracks that no
        detection covers; the re-check network does not run when it gives none.

        `detections` (DETECTIONS_RULE), another detector's, replace the detection head's: the
        result holds them, in their order, with the embeddings read at their boxes as at the
        head's own (`embed`), so that association keeps appearance; the re-check runs as usual."""
        if templates is not None and not self.has_recheck:
            raise ValueError("templates given but the model has no re-check network")
        given = None if detections is None else check_detections(detections)
        x, placement = self.preprocess(frame_bgr)
        output = self.backend.run(x)
        multi_class = self.backend.nc > 1
        if given is None:
            boxes, scores, emb, levels, classes = self._basic(output)
            original_boxes = placement.to_original(_numpy(boxes), self.clip).astype(np.float32)
            network_made: tuple[torch.Tensor, ...] = (boxes, scores)
            basic_classes = classes.cpu().numpy() if multi_class else None
        else:
            original_boxes = given[:, :4].astype(np.float32)
            emb = self._embeddings_at(output, placement, original_boxes)
            scores, levels = torch.from_numpy(given[:, 4]), torch.full((len(given),), -1)
            network_made = ()  # the caller's boxes and scores: the association checks them
            basic_classes = given[:, 5].astype(np.int64) if given.shape[1] == 6 else None
        if callable(templates):
            templates = templates(original_boxes)
        embedding = output.embedding[0]
        trans_boxes, trans_scores = embedding.new_zeros(0, 4), embedding.new_zeros(0)
        trans_emb = embedding.new_zeros(0, embedding.shape[0])
        trans_classes = torch.zeros(0, dtype=torch.int64)
        if templates is not None and len(templates):
            trans_boxes, trans_scores, trans_emb, trans_classes = self._transductive(output, templates)
        outputs = (output.decoded.obj, output.embedding, *network_made, trans_boxes, trans_scores)
        if not all(bool(torch.isfinite(value).all()) for value in outputs):
            raise InputError(
                self.source,
                "the network gives NaN or inf on this frame: its weights overflow or are corrupt",
            )
        return DetectionResult(
            boxes_xyxy=original_boxes,
            scores=_numpy(scores),
            embeddings=_numpy(emb),
            levels=levels.cpu().numpy(),
            trans_boxes_xyxy=placement.to_original(_numpy(trans_boxes), self.clip).astype(np.float32),
            trans_scores=_numpy(trans_scores),
            trans_embeddings=_numpy(trans_emb),
            classes=basic_classes,
            trans_classes=trans_classes.cpu().numpy() if multi_class else None,
        )

    @torch.inference_mode()
    def embed(self, frame_bgr: np.ndarray, boxes_xyxy: np.ndarray) -> np.ndarray:
        """Unit embeddings (N, E) read from the network's map at the centres of `boxes_xyxy` (N, 4,
        original pixels): appearance for boxes that did not come from this detector."""
        x, placement = self.preprocess(frame_bgr)
        return _numpy(self._embeddings_at(self.backend.run(x), placement, boxes_xyxy))

    def _embeddings_at(
        self, output: NetworkOutput, placement: Letterbox, boxes_xyxy: np.ndarray
    ) -> torch.Tensor:
        """Unit embeddings at the centres of `boxes_xyxy` (N, 4, original pixels), read as
        `_basic` reads them at its own boxes."""
        boxes = placement.to_input(np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4))
        centres = torch.from_numpy((boxes[:, :2] + boxes[:, 2:]) / 2)
        return read_embeddings(output.embedding[0], centres, self.backend.stride)

    def _basic(self, output: NetworkOutput) -> tuple[torch.Tensor, ...]:
        """Thresholded, NMS-ed detections: boxes (input pixels), scores, unit embeddings, levels,
        class indices (zeros for one class)."""
        decoded = output.decoded
        boxes, obj, scores = decoded.boxes[0], decoded.obj[0], decoded.scores[0]
        if self.clip:
            height, width = output.embedding.shape[2:]
            boxes = clip_boxes(boxes, (height * self.backend.stride, width * self.backend.stride))
        candidates = torch.nonzero((obj > self.obj_threshold) & (scores > self.score_threshold))[:, 0]
        labels = decoded.cls[0, candidates].argmax(-1) if self.backend.nc > 1 else None
        kept = nms(
            boxes[candidates], scores[candidates], self.iou_threshold, self.max_det, labels, self.diou_nms
        )
        keep = candidates[kept]
        classes = labels[kept] if labels is not None else torch.zeros(len(keep), dtype=torch.int64)
        centres = (boxes[keep, :2] + boxes[keep, 2:]) / 2
        emb = read_embeddings(output.embedding[0], centres, self.backend.stride)
        return boxes[keep], scores[keep], emb, decoded.level[keep], classes

    def _transductive(self, output: NetworkOutput, templates: np.ndarray) -> tuple[torch.Tensor, ...]:
        """Re-check peaks: boxes (input pixels), heat scores, unit embeddings at the peak cells,
        and the class the detection head gives those cells (its stride-8 level is the heat map's
        grid; the best anchor there decides)."""
        template_t = torch.as_tensor(np.asarray(templates), dtype=torch.float32)
        heat, boxes = self.backend.recheck(output, template_t)
        scores, cells = heat_peaks(heat, self.recheck_top_k, self.recheck_threshold)
        emb = F.normalize(output.embedding[0].flatten(1)[:, cells].T, dim=1)
        classes = torch.zeros(len(cells), dtype=torch.int64)
        if self.backend.nc > 1:
            decoded, cell_count = output.decoded, heat.numel()
            finest = decoded.cls[0, : int((decoded.level == 0).sum())]  # anchor-major, then rows, columns
            per_anchor = finest.reshape(-1, cell_count, self.backend.nc)[:, cells.to(finest.device)]
            classes = per_anchor.amax(0).argmax(-1).cpu()
        return boxes[cells], scores, emb, classes
