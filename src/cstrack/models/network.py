"""The assembled CSTrack network and its OMC wrapper, laid out as the released implementation.

Layer indices of `CSTrack.model` (state_dict keys `model.<i>.*`):
  0-9    YOLOv5 backbone: Focus, Conv/s2 + CSP blocks (3, 9, 9), Conv/s2, SPP, CSP block (3)
         (or MobileNetV2's blocks grouped into the same ten slots, see `mobilenet.py`)
  10-23  YOLOv5 PAN; P3 = 17, P4 = 20, P5 = 23
  24-26  REN per level (parameter-free SharedFeature stand-ins when ren=False, so indices stay)
  27     SAAN (PlainEmbedding when saan=False)
  28     DenseMask (OMC release only; absent when dense_mask=False)
  28/29  Detect
CSP blocks are C3 + SiLU (OMC release) or BottleneckCSP + LeakyReLU(0.1) (first CSTrack release).
`OMC` wraps a CSTrack as `model` and adds the re-check heads `siambox` and `siamheatmap`, giving
the released OMC keys `model.model.<i>.*`, `siambox.*`, `siamheatmap.*`.

Forward contract (train and eval alike; input (B, 3, H, W) RGB in [0, 1], H and W divisible by 32):
  CSTrackOutput(head, embedding, dense_mask, features)
  head       [(B, 3, H/s, W/s, 5 + nc) for s in 8, 16, 32]  raw logits (x, y, w, h, obj, cls)
  embedding  (B, emb_dim, H/8, W/8)                         raw ID embedding map (not normalised)
  dense_mask (B, 1, H/8, W/8) logits, or None without DenseMask
  features   the three detection features (REN det outputs) read by Detect, DenseMask, re-check
`decode(output)` gives boxes for every anchor; `OMC.recheck(output, templates)` the re-check maps.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple, TypeVar

import torch
from torch import nn

from cstrack.models.common import (
    ACTIVATIONS,
    C3,
    SPP,
    BottleneckCSP,
    Concat,
    Conv,
    Focus,
    fuse_conv_bn,
    make_divisible,
    scale_depth,
)
from cstrack.models.detect import ANCHORS, STRIDES, Decoded, Detect
from cstrack.models.mobilenet import OUT_CHANNELS as MOBILENET_CHANNELS
from cstrack.models.mobilenet import backbone_slots as mobilenet_slots
from cstrack.models.recheck import (
    MASKS,
    RECHECK_STRIDE,
    ReCheckBox,
    ReCheckHeat,
    ReCheckOutput,
    decode_recheck_boxes,
    similarity_map,
)
from cstrack.models.ren import REN, SharedFeature
from cstrack.models.saan import SAAN, PlainEmbedding
from cstrack.models.scale_fusion import DenseMask
from cstrack.models.yolox import PAFPN, InputTransform, YOLOXHead, imagenet_transform

BLOCKS = {"c3": C3, "csp": BottleneckCSP}
BACKBONES = ("yolov5", "mobilenetv2", "yolox")
DET, ID = 0, 1  # positions of the two features in a REN output
PYRAMID_LAYERS = (17, 20, 23)  # P3, P4, P5
REN_LAYERS = (24, 25, 26)
EMBEDDING_LAYER = 27
DENSE_MASK_LAYER = 28


@dataclass(frozen=True)
class CSTrackConfig:
    """Everything that shapes the network; the registry's variants are instances of this."""

    depth: float = 1.0
    width: float = 1.0
    backbone: str = "yolov5"
    block: str = "c3"
    act: str = "silu"
    nc: int = 1
    emb_dim: int = 512
    ren: bool = True
    saan: bool = True
    dense_mask: bool = True
    bar: bool = True
    recheck: bool = True
    saan_width: int | None = None
    recheck_width: int | None = None
    recheck_radius: int = 3
    recheck_mask: str = "hard"
    ren_gate: bool = False
    anchors: tuple[tuple[tuple[int, int], ...], ...] = ANCHORS

    def __post_init__(self) -> None:
        if self.backbone not in BACKBONES:
            raise ValueError(f"backbone must be one of {BACKBONES}, got {self.backbone!r}")
        if self.block not in BLOCKS:
            raise ValueError(f"block must be one of {sorted(BLOCKS)}, got {self.block!r}")
        if self.act not in ACTIVATIONS:
            raise ValueError(f"act must be one of {ACTIVATIONS}, got {self.act!r}")
        if self.recheck_mask not in MASKS:
            raise ValueError(f"recheck_mask must be one of {MASKS}, got {self.recheck_mask!r}")
        if self.depth <= 0 or self.width <= 0 or self.nc < 1 or self.emb_dim < 1 or self.recheck_radius < 0:
            raise ValueError(f"invalid network size in {self}")

    def channels(self, c: int) -> int:
        return make_divisible(c * self.width)

    @property
    def level_channels(self) -> tuple[int, int, int]:
        return self.channels(256), self.channels(512), self.channels(1024)

    @property
    def saan_channels(self) -> int:
        """SAAN's internal width: 256 for L, scaled like the network otherwise (n 64), unless set."""
        return self.saan_width or self.channels(256)

    @property
    def recheck_channels(self) -> int:
        """Re-check base width C: 256 for L, scaled like the network otherwise (S 128, M 192, X 320)."""
        return self.recheck_width or self.channels(256)


class CSTrackOutput(NamedTuple):
    head: list[torch.Tensor]
    embedding: torch.Tensor
    dense_mask: torch.Tensor | None
    features: tuple[torch.Tensor, ...]


_Network = TypeVar("_Network", bound="TrackingNetwork")


class TrackingNetwork(nn.Module):
    """What every registered variant is (`CSTrack`, `YOLOXTrack`, `OMC`), so that code which runs,
    exports or trains a network asks for this one type: the forward contract above, `decode`,
    `fuse`, the head `detect` (its `nc`, `na`, `k`), `strides`, `emb_dim`, `cfg` and
    `has_recheck` (only an OMC has `recheck` and `decode_recheck`)."""

    cfg: CSTrackConfig
    strides: tuple[int, ...]
    emb_dim: int

    @property
    def detect(self) -> Detect | YOLOXHead:
        raise NotImplementedError

    @property
    def has_recheck(self) -> bool:
        return False

    def decode(self, output: CSTrackOutput, clip: bool = True) -> Decoded:
        """Boxes (xyxy, input pixels, clipped to the input unless clip=False) for every anchor."""
        h, w = output.head[0].shape[2:4]
        stride = self.strides[0]
        return self.detect.decode(output.head, (h * stride, w * stride) if clip else None)

    def fuse(self: _Network) -> _Network:
        """Fold BatchNorm into convs for inference; call after eval() and after loading weights."""
        fuse_conv_bn(self)
        return self


class _Layer(NamedTuple):
    source: int | tuple[int, ...]  # -1: the previous layer; YOLOv5's "from"
    module: nn.Module
    take: int | None = None  # which feature of the REN outputs a head reads


def _build_layers(cfg: CSTrackConfig) -> list[_Layer]:
    """The YOLOv5-L yaml of the release as data, scaled by depth and width."""
    ch, act, block = cfg.channels, cfg.act, BLOCKS[cfg.block]

    def csp(c1: int, c2: int, n: int, shortcut: bool = True, c1_exact: int | None = None) -> nn.Module:
        return block(c1_exact or ch(c1), ch(c2), scale_depth(n, cfg.depth), shortcut, act=act)

    def conv(c1: int, c2: int, k: int, s: int) -> Conv:
        return Conv(ch(c1), ch(c2), k, s, act=act)

    levels = cfg.level_channels
    if cfg.backbone == "mobilenetv2":
        layers = [_Layer(-1, slot) for slot in mobilenet_slots()]
        c3, c4, c5 = MOBILENET_CHANNELS
    else:
        layers = [
            _Layer(-1, Focus(3, ch(64), 3, act=act)),  # 0
            _Layer(-1, conv(64, 128, 3, 2)),
            _Layer(-1, csp(128, 128, 3)),
            _Layer(-1, conv(128, 256, 3, 2)),
            _Layer(-1, csp(256, 256, 9)),  # 4, stride 8
            _Layer(-1, conv(256, 512, 3, 2)),
            _Layer(-1, csp(512, 512, 9)),  # 6, stride 16
            _Layer(-1, conv(512, 1024, 3, 2)),
            _Layer(-1, SPP(ch(1024), ch(1024), act=act)),
            _Layer(-1, csp(1024, 1024, 3, False)),  # 9, stride 32
        ]
        c3, c4, c5 = ch(256), ch(512), ch(1024)
    layers += [
        _Layer(-1, Conv(c5, ch(512), 1, 1, act=act)),  # 10
        _Layer(-1, nn.Upsample(scale_factor=2.0, mode="nearest")),
        _Layer((-1, 6), Concat()),
        _Layer(-1, csp(1024, 512, 3, False, c1_exact=ch(512) + c4)),
        _Layer(-1, conv(512, 256, 1, 1)),  # 14
        _Layer(-1, nn.Upsample(scale_factor=2.0, mode="nearest")),
        _Layer((-1, 4), Concat()),
        _Layer(-1, csp(512, 256, 3, False, c1_exact=ch(256) + c3)),  # 17, P3
        _Layer(-1, conv(256, 256, 3, 2)),
        _Layer((-1, 14), Concat()),
        _Layer(-1, csp(512, 512, 3, False)),  # 20, P4
        _Layer(-1, conv(512, 512, 3, 2)),
        _Layer((-1, 10), Concat()),
        _Layer(-1, csp(1024, 1024, 3, False)),  # 23, P5
    ]
    layers += [_Layer(p, REN(c) if cfg.ren else SharedFeature()) for p, c in zip(PYRAMID_LAYERS, levels)]
    embedding = (
        SAAN(levels, cfg.saan_channels, cfg.emb_dim, act) if cfg.saan else PlainEmbedding(levels, cfg.emb_dim)
    )
    layers.append(_Layer(REN_LAYERS, embedding, ID))
    if cfg.dense_mask:
        layers.append(_Layer(REN_LAYERS, DenseMask(levels, act), DET))
    layers.append(_Layer(REN_LAYERS, Detect(levels, cfg.nc, cfg.anchors, STRIDES, cfg.bar), DET))
    return layers


class CSTrack(TrackingNetwork):
    """CSTrack (and the OMC base detector): backbone, PAN, REN, SAAN, [DenseMask], Detect."""

    def __init__(self, cfg: CSTrackConfig = CSTrackConfig()):
        super().__init__()
        self.cfg = cfg
        layers = _build_layers(cfg)
        self.model = nn.Sequential(*(layer.module for layer in layers))
        self._sources = [layer.source for layer in layers]
        self._takes = [layer.take for layer in layers]
        # Layers whose output a later non-adjacent layer reads: the release's `save` list.
        self.save = sorted(
            i
            for layer in layers
            for i in ((layer.source,) if isinstance(layer.source, int) else layer.source)
            if i != -1
        )
        self._dense_mask_index = DENSE_MASK_LAYER if cfg.dense_mask else None
        self._keep = set(self.save) | {EMBEDDING_LAYER}
        self.strides = STRIDES
        self.emb_dim = cfg.emb_dim

    @property
    def detect(self) -> Detect:
        return self.model[-1]

    def forward(self, x: torch.Tensor) -> CSTrackOutput:
        kept: dict[int, torch.Tensor | tuple[torch.Tensor, torch.Tensor]] = {}
        dense_mask = None
        for i, (module, source, take) in enumerate(zip(self.model, self._sources, self._takes)):
            if source != -1:
                x = kept[source] if isinstance(source, int) else [x if j == -1 else kept[j] for j in source]
            if take is not None:
                x = [pair[take] for pair in x]
            x = module(x)
            if i in self._keep:
                kept[i] = x
            if i == self._dense_mask_index:
                dense_mask = x
        features = tuple(kept[i][DET] for i in REN_LAYERS)
        return CSTrackOutput(x, kept[EMBEDDING_LAYER], dense_mask, features)


class YOLOXTrack(TrackingNetwork):
    """CSTrack (and the OMC base) on YOLOX: CSPDarknet + PAFPN, REN, SAAN, [DenseMask], YOLOX head.

    The same forward contract as `CSTrack` (head levels have one "anchor"). Submodules:
    `input` the pre-processing the pretrained convolutions expect (`yolox.InputTransform`),
    `backbone` YOLOX's PAFPN with its CSPDarknet, `ren` one REN per level (gated detection
    branch, see `ren.py`), `embedding` SAAN, `dense_mask`, `head` YOLOX's decoupled head.
    """

    def __init__(self, cfg: CSTrackConfig):
        super().__init__()
        self.cfg = cfg
        levels = cfg.level_channels
        self.input = InputTransform(*imagenet_transform())
        self.backbone = PAFPN(cfg.depth, cfg.width)
        self.ren = nn.ModuleList(
            REN(c, det_gate=cfg.ren_gate) if cfg.ren else SharedFeature() for c in levels
        )
        self.embedding = (
            SAAN(levels, cfg.saan_channels, cfg.emb_dim, cfg.act)
            if cfg.saan
            else PlainEmbedding(levels, cfg.emb_dim)
        )
        self.dense_mask = DenseMask(levels, cfg.act) if cfg.dense_mask else None
        self.head = YOLOXHead(levels, cfg.nc, cfg.width, STRIDES)
        self.strides = STRIDES
        self.emb_dim = cfg.emb_dim

    @property
    def detect(self) -> YOLOXHead:
        return self.head

    def forward(self, x: torch.Tensor) -> CSTrackOutput:
        pairs = [ren(p) for ren, p in zip(self.ren, self.backbone(self.input(x)))]
        features = [pair[DET] for pair in pairs]
        embedding = self.embedding([pair[ID] for pair in pairs])
        dense_mask = self.dense_mask(features) if self.dense_mask is not None else None
        return CSTrackOutput(self.head(features), embedding, dense_mask, tuple(features))


def base_network(cfg: CSTrackConfig) -> CSTrack | YOLOXTrack:
    """The detector-and-embedding network of a configuration (the OMC base)."""
    return YOLOXTrack(cfg) if cfg.backbone == "yolox" else CSTrack(cfg)


class OMC(TrackingNetwork):
    """OMC: a CSTrack base (`model`) plus the re-check network (`siambox`, `siamheatmap`)."""

    def __init__(self, cfg: CSTrackConfig = CSTrackConfig()):
        super().__init__()
        self.cfg = cfg
        self.model = base_network(cfg)
        levels, width = cfg.level_channels, cfg.recheck_channels
        self.siambox = ReCheckBox(levels, width, cfg.act)
        self.siamheatmap = ReCheckHeat(levels, width, cfg.act)
        self.strides = self.model.strides
        self.emb_dim = cfg.emb_dim

    @property
    def detect(self) -> Detect | YOLOXHead:
        return self.model.detect

    @property
    def has_recheck(self) -> bool:
        return True

    def forward(self, x: torch.Tensor) -> CSTrackOutput:
        return self.model(x)

    def recheck(
        self, output: CSTrackOutput, templates: torch.Tensor | Sequence[torch.Tensor]
    ) -> ReCheckOutput:
        """Re-check maps from a forward output and tracklet templates.

        `templates` is (K, emb_dim) for a batch of one image, or one such tensor per image; K may
        be 0 (the similarity map is then all zero).
        """
        embedding = output.embedding
        if isinstance(templates, torch.Tensor):
            if embedding.shape[0] != 1:
                raise ValueError("pass one templates tensor per image for a batch of several images")
            templates = [templates]
        if len(templates) != embedding.shape[0]:
            raise ValueError(f"{len(templates)} template sets for a batch of {embedding.shape[0]}")
        # A batch of one is reshaped, not iterated or indexed: both export as an ONNX copy (Split,
        # Gather) of the whole (E, H, W) map, a tenth of the re-check's time on the CPU.
        maps = embedding.unbind(0) if len(templates) > 1 else (embedding.reshape(embedding.shape[1:]),)
        similarity = torch.stack(
            [
                similarity_map(e, t.to(e.device), self.cfg.recheck_radius, self.cfg.recheck_mask)
                for e, t in zip(maps, templates)
            ]
        )
        heat = self.siamheatmap(output.features, similarity)
        return ReCheckOutput(heat, self.siambox(output.features), similarity)

    def decode_recheck(self, box: torch.Tensor) -> torch.Tensor:
        """Raw re-check box map (B, 4, H, W) -> (B, H, W, 4) xyxy input pixels, BAR with Detect's k."""
        return decode_recheck_boxes(box, self.detect.k, RECHECK_STRIDE)
