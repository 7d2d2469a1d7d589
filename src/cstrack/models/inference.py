"""Frame-level inference: letterbox, forward, decode, thresholds, NMS, embeddings, re-check.

`Detector(TorchBackend(model))(frame_bgr, templates)` returns a
`cstrack.tracking.DetectionResult` of numpy arrays in the original image's pixels, which the
association takes as it is (`Detector` is a `cstrack.tracking.FrameDetector`). The network runs on a backend object: PyTorch
(`cstrack.backends.torch.TorchBackend`), ONNX Runtime (`cstrack.backends.onnx.OnnxBackend`) or
anything with the `DetectorBackend` protocol; everything around it is shared
(`cstrack.backends.choice` chooses one by name). Its settings (`cstrack.config.DetectorConfig`
and `RecheckConfig`) default to the reference tracker's: objectness and obj * cls above one
threshold, NMS (`cstrack.models.suppression`; the OMC release's DIoU-NMS is an option), a cap on
the detections; re-check peaks by 3x3 max-pool, the top ones above a heat threshold. Embeddings
are read at the stride-8 cell of each box centre (of each heat peak for transductive detections)
and L2-normalised.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from os import PathLike
from typing import Any, NamedTuple, Protocol, cast, runtime_checkable

import cv2
import numpy as np
import torch

from cstrack.config import SIZE_MULTIPLE, DetectorConfig, RecheckConfig, check_input_size
from cstrack.errors import InputError
from cstrack.models.classes import default_class_names
from cstrack.models.detect import Decoded, clip_boxes
from cstrack.models.readout import Readout, read_embeddings
from cstrack.models.recheck import heat_peaks
from cstrack.models.suppression import nms
from cstrack.tracking.detections import DetectionResult, Templates

logger = logging.getLogger(__name__)

PAD_VALUE = 127.5


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


def _round_up(value: int) -> int:
    return -(-value // SIZE_MULTIPLE) * SIZE_MULTIPLE


def input_size_for(width: int, height: int, pixels: int) -> tuple[int, int]:
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


def _numpy(t: torch.Tensor) -> np.ndarray:
    return t.float().cpu().numpy()


class NetworkOutput(NamedTuple):
    """What a backend gives for one input image, before thresholds and NMS."""

    decoded: Decoded  # every anchor, boxes not clipped, batch of one
    embedding: torch.Tensor  # (1, E, H/8, W/8) raw embedding map
    features: Any  # whatever the backend's `recheck` needs from this pass


@runtime_checkable
class DetectorBackend(Protocol):
    """What `Detector` runs the network with: `cstrack.backends.torch.TorchBackend`,
    `cstrack.backends.onnx.OnnxBackend`."""

    stride: int  # stride of the embedding map (the finest level)
    nc: int  # number of classes

    @property
    def has_recheck(self) -> bool: ...

    def run(self, x: torch.Tensor) -> NetworkOutput: ...

    def recheck(
        self, output: NetworkOutput, templates: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]: ...


class Detector:
    """A network backend plus its pre- and post-processing, for one BGR frame at a time.

    `backend` runs the network (`cstrack.backends.torch.TorchBackend(model)`, call `model.fuse()`
    first for speed; `cstrack.backends.onnx.OnnxBackend`); a backend with an `img_size` attribute was built for a
    fixed input size, which must be `img_size`, unless its `dynamic` attribute is true (ONNX
    graphs exported with dynamic height and width). Pre- and post-processing are shared, so
    every backend gives the same DetectionResult. `config` (`cstrack.config.DetectorConfig`)
    holds the thresholds, NMS and input size, `recheck` (`RecheckConfig`) the re-check's search;
    both were checked when made. `config.img_size` None (the default) fits the input to each
    frame's size and aspect ratio within `config.input_pixels` (`input_size_for`; a fixed-size
    backend keeps its size); the choice is logged once per frame size. Boxes that extend past
    the border are kept as they are (as ByteTrack keeps them, and as MOTChallenge ground truth
    draws people at the border): clipping them, as the JDE-family trackers do (`clip`), cost
    recall 0.825 -> 0.795 at IoU 0.5 on MOT17-11-300 and MOT17-mini (model card). `class_names` name the model's classes
    (default: `cstrack.models.classes.default_class_names(backend.nc)`). `source`, the weights
    file, is named when the network's outputs are not finite (overflowing weights): the check is
    here, not deep in the association.
    """

    def __init__(
        self,
        backend: DetectorBackend,
        config: DetectorConfig = DetectorConfig(),
        recheck: RecheckConfig = RecheckConfig(),
        *,
        class_names: tuple[str, ...] | list[str] | None = None,
        source: str | PathLike | None = None,
    ):
        fixed = not getattr(backend, "dynamic", False)  # a dynamic backend takes any multiple of 32
        #: The input size (W, H): the config's, else a fixed-size backend's; None: fitted to each frame.
        self.img_size = config.img_size
        if self.img_size is None and fixed and hasattr(backend, "img_size"):
            self.img_size = check_input_size(backend.img_size, "the backend's input size")
        self.config = config
        self.recheck_config = recheck
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

    @property
    def has_recheck(self) -> bool:
        return self.backend.has_recheck

    def input_size(self, frame_shape: tuple[int, ...]) -> tuple[int, int]:
        """The input (W, H) for frames of `frame_shape` (H, W, ...): `img_size`, else fitted."""
        if self.img_size is not None:
            return self.img_size
        key = (frame_shape[1], frame_shape[0])
        if key not in self._sizes:
            self._sizes[key] = input_size_for(*key, self.config.input_pixels)
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

    #: `__call__` refuses a frame that `check_frame` refuses, so a tracker need not check it again.
    checks_frames = True

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
            original_boxes = placement.to_original(_numpy(boxes), self.config.clip).astype(np.float32)
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
            trans_boxes_xyxy=placement.to_original(_numpy(trans_boxes), self.config.clip).astype(np.float32),
            trans_scores=_numpy(trans_scores),
            trans_embeddings=_numpy(trans_emb),
            classes=basic_classes,
            trans_classes=trans_classes.cpu().numpy() if multi_class else None,
        )

    @torch.inference_mode()
    def embed(self, frame_bgr: np.ndarray, boxes_xyxy: np.ndarray) -> np.ndarray:
        """Unit embeddings (N, E) read from the network's map at `boxes_xyxy` (N, 4,
        original pixels): appearance for boxes that did not come from this detector."""
        x, placement = self.preprocess(frame_bgr)
        return _numpy(self._embeddings_at(self.backend.run(x), placement, boxes_xyxy))

    def _embeddings_at(
        self, output: NetworkOutput, placement: Letterbox, boxes_xyxy: np.ndarray
    ) -> torch.Tensor:
        """Unit embeddings of `boxes_xyxy` (N, 4, original pixels), read as `_basic` reads them
        at its own boxes."""
        boxes = placement.to_input(np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4))
        return self._read(output, torch.from_numpy(boxes))

    def _read(self, output: NetworkOutput, boxes: torch.Tensor) -> torch.Tensor:
        """Unit embeddings of boxes (N, 4, input pixels) by the configured readout."""
        readout = cast(Readout, self.config.embedding_readout)
        return read_embeddings(output.embedding[0], boxes.cpu(), self.backend.stride, readout)

    def _basic(self, output: NetworkOutput) -> tuple[torch.Tensor, ...]:
        """Thresholded, NMS-ed detections: boxes (input pixels), scores, unit embeddings, levels,
        class indices (zeros for one class)."""
        decoded = output.decoded
        boxes, obj, scores = decoded.boxes[0], decoded.obj[0], decoded.scores[0]
        config = self.config
        if config.clip:
            height, width = output.embedding.shape[2:]
            boxes = clip_boxes(boxes, (height * self.backend.stride, width * self.backend.stride))
        candidates = torch.nonzero((obj > config.conf) & (scores > config.conf))[:, 0]
        labels = decoded.cls[0, candidates].argmax(-1) if self.backend.nc > 1 else None
        kept = nms(
            boxes[candidates], scores[candidates], config.nms_iou, config.max_det, labels, config.diou_nms
        )
        keep = candidates[kept]
        classes = labels[kept] if labels is not None else torch.zeros(len(keep), dtype=torch.int64)
        emb = self._read(output, boxes[keep])
        return boxes[keep], scores[keep], emb, decoded.level[keep], classes

    def _transductive(self, output: NetworkOutput, templates: np.ndarray) -> tuple[torch.Tensor, ...]:
        """Re-check peaks: boxes (input pixels), heat scores, unit embeddings at the peak cells,
        and the class the detection head gives those cells (its stride-8 level is the heat map's
        grid; the best anchor there decides)."""
        template_t = torch.as_tensor(np.asarray(templates), dtype=torch.float32)
        heat, boxes = self.backend.recheck(output, template_t)
        search = self.recheck_config
        scores, cells = heat_peaks(heat, search.recheck_top_k, search.recheck_threshold)
        emb = self._read(output, boxes[cells])
        classes = torch.zeros(len(cells), dtype=torch.int64)
        if self.backend.nc > 1:
            decoded, cell_count = output.decoded, heat.numel()
            finest = decoded.cls[0, : int((decoded.level == 0).sum())]  # anchor-major, then rows, columns
            per_anchor = finest.reshape(-1, cell_count, self.backend.nc)[:, cells.to(finest.device)]
            classes = per_anchor.amax(0).argmax(-1).cpu()
        return boxes[cells], scores, emb, classes
