"""Letterbox, pure-torch NMS against a brute-force reference, and the Detector end to end."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from cstrack.backends.torch import TorchBackend
from cstrack.config import DetectorConfig, RecheckConfig
from cstrack.errors import InputError
from cstrack.models import OMC, CSTrack, Detector, box_iou, letterbox, nms
from cstrack.models.inference import input_size_for
from cstrack.tracking import DetectionResult, FrameDetector, JDETracker, fuse_candidates


def random_boxes(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g) * 200
    wh = torch.rand(n, 2, generator=g) * 60 + 2
    return torch.cat((xy, xy + wh), 1), torch.rand(n, generator=g)


def reference_iou(a: list[float], b: list[float], diou: bool) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    iou = inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)
    if not diou:
        return iou
    rho2 = ((a[0] + a[2] - b[0] - b[2]) / 2) ** 2 + ((a[1] + a[3] - b[1] - b[3]) / 2) ** 2
    c2 = (max(a[2], b[2]) - min(a[0], b[0])) ** 2 + (max(a[3], b[3]) - min(a[1], b[1])) ** 2
    return iou - rho2 / c2


def reference_nms(
    boxes: torch.Tensor, scores: torch.Tensor, thr: float, diou: bool, labels=None
) -> list[int]:
    """Textbook greedy NMS, one box at a time."""
    order = sorted(range(len(scores)), key=lambda i: -scores[i].item())
    kept: list[int] = []
    for i in order:
        if all(
            (labels is not None and labels[i] != labels[j])
            or reference_iou(boxes[i].tolist(), boxes[j].tolist(), diou) <= thr
            for j in kept
        ):
            kept.append(i)
    return kept


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("diou", [False, True])
def test_nms_matches_brute_force(seed: int, diou: bool) -> None:
    boxes, scores = random_boxes(150, seed)
    for thr in (0.3, 0.6):
        assert nms(boxes, scores, thr, max_det=1000, diou=diou).tolist() == reference_nms(
            boxes, scores, thr, diou
        )


def test_nms_labels_and_max_det() -> None:
    boxes, scores = random_boxes(120, 7)
    labels = torch.randint(0, 3, (120,), generator=torch.Generator().manual_seed(1))
    assert nms(boxes, scores, 0.5, 1000, labels).tolist() == reference_nms(boxes, scores, 0.5, False, labels)
    assert nms(boxes, scores, 0.5, max_det=5).tolist() == reference_nms(boxes, scores, 0.5, False)[:5]
    assert nms(boxes[:0], scores[:0], 0.5).shape == (0,)


def test_box_iou() -> None:
    boxes, _ = random_boxes(20, 3)
    expected = torch.tensor([[reference_iou(a, b, False) for b in boxes.tolist()] for a in boxes.tolist()])
    torch.testing.assert_close(box_iou(boxes, boxes), expected)


@pytest.mark.parametrize("shape", [(480, 640), (1080, 1920), (600, 300), (608, 1088)])
def test_letterbox_maps_boxes_back(shape: tuple[int, int]) -> None:
    h, w = shape
    frame = np.zeros((h, w, 3), np.uint8)
    x0, y0, x1, y1 = w // 4, h // 3, w // 2, h * 3 // 4
    frame[y0:y1, x0:x1] = 255
    padded, placement = letterbox(frame, (1088, 608))
    assert padded.shape == (608, 1088, 3) and padded.dtype == np.float32
    original = np.array([[x0, y0, x1, y1], [0, 0, w, h]], dtype=np.float64)
    mapped = placement.to_input(original)
    np.testing.assert_allclose(placement.to_original(mapped), original, rtol=0, atol=1e-9)
    # The whole image lands exactly on the non-padded region, pad value 127.5 outside it.
    left, top, right, bottom = mapped[1]
    assert (left, top) == placement.pad and right <= 1088 and bottom <= 608
    assert np.all(padded[: int(top)] == 127.5) and np.all(padded[:, : int(left)] == 127.5)
    ys, xs = np.nonzero(padded[..., 0] > 200)
    found = np.array([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], dtype=np.float64)
    np.testing.assert_allclose(
        placement.to_original(found)[0], original[0], atol=1 / min(placement.scale) + 1e-6
    )


def test_letterbox_rejects_bad_sizes(cstrack_s: CSTrack) -> None:
    with pytest.raises(InputError, match="multiples of 32"):
        letterbox(np.zeros((10, 10, 3), np.uint8), (1000, 608))
    with pytest.raises(InputError):
        Detector(TorchBackend(cstrack_s), DetectorConfig(img_size=(320, 100)))


def check_result(result, image_shape: tuple[int, int]) -> None:
    h, w = image_shape
    n, m = len(result.scores), len(result.trans_scores)
    assert (
        result.boxes_xyxy.shape == (n, 4)
        and result.embeddings.shape == (n, 512)
        and result.levels.shape == (n,)
    )
    assert result.trans_boxes_xyxy.shape == (m, 4) and result.trans_embeddings.shape == (m, 512)
    for boxes in (result.boxes_xyxy, result.trans_boxes_xyxy):
        assert boxes.dtype == np.float32 and np.all(np.isfinite(boxes))
        assert np.all(boxes >= 0) and np.all(boxes[:, [0, 2]] <= w) and np.all(boxes[:, [1, 3]] <= h)
        assert np.all(boxes[:, 2:] >= boxes[:, :2])
    for emb in (result.embeddings, result.trans_embeddings):
        assert emb.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1, rtol=1e-5)
    assert np.all(np.diff(result.scores) <= 0) and np.all((result.scores >= 0) & (result.scores <= 1))
    assert set(np.unique(result.levels)) <= {0, 1, 2}


def test_detector_end_to_end(omc_s: OMC) -> None:
    frame = np.random.default_rng(0).integers(0, 256, (300, 500, 3), dtype=np.uint8)
    detector = Detector(TorchBackend(omc_s), DetectorConfig(img_size=(320, 192), clip=True))
    check_result(detector(frame), frame.shape[:2])
    # Thresholds at zero force candidates through NMS on the untrained network; a zero heat bias
    # (M ~ 0.5 instead of the 0.01 prior) forces re-check peaks above 0.3.
    forced = copy.deepcopy(omc_s)
    with torch.no_grad():
        forced.siamheatmap.conv2[-1].bias.zero_()
    detector = Detector(
        TorchBackend(forced), DetectorConfig(img_size=(320, 192), conf=0.0, max_det=50, clip=True)
    )
    result = detector(frame, templates=np.random.default_rng(1).standard_normal((4, 512)).astype(np.float32))
    assert 0 < len(result.scores) <= 50 and 0 < len(result.trans_scores) <= 100
    assert np.all(result.trans_scores > 0.3)
    check_result(result, frame.shape[:2])
    check_result(detector(frame, templates=np.zeros((0, 512), np.float32)), frame.shape[:2])


def test_the_detector_result_goes_to_the_association_as_it_is(omc_s: OMC) -> None:
    detector = Detector(TorchBackend(omc_s), DetectorConfig(img_size=(320, 192), conf=0.0))
    assert isinstance(detector, FrameDetector)
    frame = np.random.default_rng(0).integers(0, 256, (300, 500, 3), dtype=np.uint8)
    result = detector(frame, templates=np.ones((1, 512), np.float32))
    assert type(result) is DetectionResult
    fused = fuse_candidates(result, starts_tracks=True)
    assert len(fused.scores) >= len(result.scores) and len(fused.trans_scores) == 0
    tracks = JDETracker().update(fused)
    assert {t.detection_index for t in tracks} <= {-1, *range(len(result.scores))}


def test_detector_without_recheck(cstrack_s: CSTrack) -> None:
    frame = np.full((200, 200, 3), 90, np.uint8)
    detector = Detector(TorchBackend(cstrack_s), DetectorConfig(img_size=(256, 256), conf=0.0, clip=True))
    assert not detector.has_recheck
    result = detector(frame)
    check_result(result, (200, 200))
    assert len(result.trans_scores) == 0
    with pytest.raises(ValueError, match="no re-check"):
        detector(frame, templates=np.zeros((1, 512), np.float32))
    frame = np.zeros((100, 200, 3), np.uint8)
    frame[..., 2] = 255  # red in BGR
    x, _ = detector.preprocess(frame)
    assert x.shape == (1, 3, 256, 256) and x.dtype == torch.float32
    assert torch.all(x[0, :, 0, 0] == 0.5), "grey padding 127.5 / 255"
    assert x[0, :, 128, 128].tolist() == [1.0, 0.0, 0.0], "RGB channel order"


BAD_FRAMES = {
    "None": (None, "None"),
    "list": ([[[0, 0, 0]]], "an object of type list"),
    "str": ("frame.jpg", "an object of type str"),
    "empty": (np.zeros((0, 0, 3), np.uint8), r"an array of dtype uint8 and shape \(0, 0, 3\)"),
    "int64": (np.zeros((8, 8, 3), np.int64), r"an array of dtype int64 and shape \(8, 8, 3\)"),
    "bool": (np.zeros((8, 8, 3), bool), "dtype bool"),
    "float in [0, 1]": (np.full((8, 8, 3), 0.5, np.float32), "dtype float32"),
    "uint16": (np.zeros((8, 8, 3), np.uint16), "dtype uint16"),
    "all NaN": (np.full((8, 8, 3), np.nan), "dtype float64"),
    "grey": (np.zeros((8, 8), np.uint8), r"shape \(8, 8\)$"),
    "BGRA": (np.zeros((8, 8, 4), np.uint8), r"shape \(8, 8, 4\)"),
    "tensor": (torch.zeros(8, 8, 3, dtype=torch.uint8), "an object of type torch.Tensor"),
}


@pytest.fixture(scope="module")
def small_detector(cstrack_s: CSTrack) -> Detector:
    return Detector(TorchBackend(cstrack_s), DetectorConfig(img_size=(64, 64)))


@pytest.mark.parametrize("frame, message", BAD_FRAMES.values(), ids=BAD_FRAMES.keys())
def test_preprocess_refuses_anything_but_a_bgr_uint8_frame(small_detector: Detector, frame, message) -> None:
    rule = r"frame must be a BGR uint8 HxWx3 numpy array with H, W >= 1, as OpenCV reads it; got .*"
    with pytest.raises(InputError, match=rule + message):
        small_detector.preprocess(frame)


def test_preprocess_takes_views_of_a_frame(small_detector: Detector) -> None:
    """Crops and flips are not contiguous; they need no copy from the caller."""
    frame = np.random.default_rng(0).integers(0, 256, (40, 60, 3), dtype=np.uint8)
    for view in (frame[5:30, 10:50], frame[::-1, ::2], frame[..., ::-1]):
        x, placement = small_detector.preprocess(view)
        expected, _ = small_detector.preprocess(np.ascontiguousarray(view))
        assert placement.shape == view.shape[:2] and torch.equal(x, expected)


def decoded_dim(detector: Detector, frame: np.ndarray) -> int:
    """The embedding size of a detector's model."""
    return int(detector(frame).embeddings.shape[1])


def test_multi_class_detections_carry_their_class() -> None:
    """A 2-class model: each box's class is its class scores' argmax, NMS is per class, and
    re-check peaks take the class the detection head gives their stride-8 cell."""
    from cstrack.models import create_model

    model = create_model("omc_yolox_nano", nc=2).eval()
    with torch.no_grad():  # class 0 wins on the finest level, class 1 on the others
        for level, conv in enumerate(model.detect.cls_preds):
            conv.bias.copy_(torch.tensor([4.0, -4.0] if level == 0 else [-4.0, 4.0]))
    frame = np.random.default_rng(0).integers(0, 256, (192, 320, 3), dtype=np.uint8)
    detector = Detector(
        TorchBackend(model),
        DetectorConfig(img_size=(320, 192), conf=0.0, max_det=2000),
        RecheckConfig(recheck_threshold=0.0),
    )
    assert detector.class_names == ("class0", "class1")
    x, _ = detector.preprocess(frame)
    with torch.inference_mode():
        decoded = detector.backend.run(x).decoded
    templates = np.random.default_rng(1).standard_normal((2, decoded_dim(detector, frame))).astype(np.float32)
    result = detector(frame, templates)
    assert result.classes is not None and result.trans_classes is not None
    assert result.classes.dtype == np.int64 and len(result.classes) == len(result.scores)
    assert set(np.unique(result.classes)) == {0, 1}
    assert (result.classes == (result.levels > 0)).all()
    # Each kept box's class is the argmax at its own anchor: find it by its decoded box.
    cls = decoded.cls[0].argmax(-1).numpy()
    boxes = decoded.boxes[0].numpy()
    first = detector(frame)
    assert first.classes is not None
    placement = letterbox(frame, (320, 192))[1]
    in_input = placement.to_input(first.boxes_xyxy[:5].astype(np.float64))
    for box, got in zip(in_input, first.classes[:5]):
        anchor = int(np.abs(boxes - box).sum(1).argmin())
        assert cls[anchor] == got
    height, width = 192 // 8, 320 // 8
    finest = decoded.cls[0, : height * width].numpy()
    assert len(result.trans_classes) == len(result.trans_scores) > 0
    assert set(result.trans_classes.tolist()) <= {0, 1}
    assert np.isin(result.trans_classes, finest.argmax(-1)).all()
    single = Detector(
        TorchBackend(create_model("omc_yolox_nano").eval()), DetectorConfig(img_size=(320, 192))
    )
    assert single.class_names == ("pedestrian",) and single(frame).classes is None


@pytest.mark.parametrize(
    "frame, pixels, expected",
    [
        ((1920, 1080), 960 * 544, (960, 544)),  # 16:9 at the default budget
        ((1920, 1080), 1088 * 608, (1088, 608)),
        ((768, 576), 960 * 544, (768, 576)),  # never larger than the frame
        ((640, 480), 960 * 544, (640, 480)),
        ((1280, 960), 960 * 544, (800, 608)),  # 4:3 within the budget, nearest multiples
        ((500, 300), 960 * 544, (512, 320)),  # the frame rounded up to multiples of 32
        ((100, 4000), 960 * 544, (96, 4000)),  # a tall strip: its own height, width rounded
    ],
)
def test_input_size_follows_the_frame(frame: tuple[int, int], pixels: int, expected: tuple[int, int]) -> None:
    size = input_size_for(*frame, pixels)
    assert size == expected
    assert size[0] % 32 == 0 and size[1] % 32 == 0 and size[0] * size[1] <= pixels


def test_detector_fits_its_input_to_each_frame_size_unless_given_one(cstrack_s: CSTrack) -> None:
    detector = Detector(TorchBackend(cstrack_s), DetectorConfig(input_pixels=320 * 192))
    wide = np.full((90, 160, 3), 90, np.uint8)
    x, placement = detector.preprocess(wide)
    assert x.shape == (1, 3, 96, 160) and placement.pad == (0, 3)
    x, _ = detector.preprocess(np.full((600, 800, 3), 90, np.uint8))
    assert x.shape == (1, 3, 192, 256)
    fixed = Detector(TorchBackend(cstrack_s), DetectorConfig(img_size=(256, 256)))
    assert fixed.preprocess(wide)[0].shape == (1, 3, 256, 256)


def test_embed_reads_the_embeddings_the_detector_gives_its_own_boxes(omc_s: OMC) -> None:
    frame = np.random.default_rng(2).integers(0, 256, (300, 500, 3), dtype=np.uint8)
    detector = Detector(TorchBackend(omc_s), DetectorConfig(img_size=(320, 192), conf=0.0, max_det=20))
    result = detector(frame)
    assert len(result.scores) > 0
    np.testing.assert_allclose(detector.embed(frame, result.boxes_xyxy), result.embeddings, atol=1e-6)
    assert detector.embed(frame, np.zeros((0, 4))).shape == (0, 512)


def test_the_readout_setting_chooses_the_box_mean_or_the_centre_cell() -> None:
    from cstrack.models.registry import create_model

    # The bundled model: a random one's embedding map is nearly constant, which would prove nothing.
    backend = TorchBackend(create_model("omc_yolox_nano.bytetrack_pets"))
    frame = np.random.default_rng(3).integers(0, 256, (192, 320, 3), dtype=np.uint8)  # input = frame
    boxes = np.array([[40.0, 20.0, 104.0, 148.0], [200.0, 60.0, 232.0, 124.0]])
    x, _ = Detector(backend, DetectorConfig(img_size=(320, 192))).preprocess(frame)
    with torch.no_grad():
        unit = torch.nn.functional.normalize(backend.run(x).embedding[0], dim=0)  # (E, 24, 40)
    centre = Detector(backend, DetectorConfig(img_size=(320, 192), embedding_readout="centre"))
    at_centres = torch.stack([unit[:, 10, 9], unit[:, 11, 27]]).numpy()
    np.testing.assert_allclose(centre.embed(frame, boxes), at_centres, atol=1e-5)
    box = Detector(backend, DetectorConfig(img_size=(320, 192), embedding_readout="box"))
    # Cell centres 8 c + 4 inside x 40..104, y 20..148: columns 5-12, rows 2-18 (148 included).
    mean = torch.nn.functional.normalize(unit[:, 2:19, 5:13].mean((1, 2)), dim=0).numpy()
    np.testing.assert_allclose(box.embed(frame, boxes)[0], mean, atol=1e-5)
    assert np.abs(mean - at_centres[0]).max() > 1e-2
    with pytest.raises(InputError, match="embedding_readout"):
        DetectorConfig(embedding_readout="corner")


def test_a_template_selector_sees_the_boxes_and_no_templates_skips_the_recheck(omc_s: OMC) -> None:
    frame = np.random.default_rng(3).integers(0, 256, (192, 320, 3), dtype=np.uint8)
    forced = copy.deepcopy(omc_s)
    with torch.no_grad():
        forced.siamheatmap.conv2[-1].bias.zero_()
    backend = TorchBackend(forced)
    calls = []
    original = backend.recheck
    backend.recheck = lambda *args: calls.append(1) or original(*args)  # type: ignore[method-assign]
    detector = Detector(backend, DetectorConfig(img_size=(320, 192), conf=0.0, max_det=5))
    templates = np.random.default_rng(4).standard_normal((3, 512)).astype(np.float32)
    seen = []
    result = detector(frame, templates=lambda boxes: seen.append(boxes) or templates)
    np.testing.assert_array_equal(seen[0], result.boxes_xyxy)
    assert len(calls) == 1 and len(result.trans_scores) > 0
    assert len(detector(frame, templates=lambda boxes: None).trans_scores) == 0
    assert len(detector(frame, templates=lambda boxes: templates[:0]).trans_scores) == 0
    assert len(calls) == 1
