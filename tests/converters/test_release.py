"""Converting released checkpoints: whole pickled modules and state_dicts, safely, into safetensors.

The released classes are imitated inside the tests: modules named `models.mot.cstrack`,
`models.mot.common` and `easydict` exist in sys.modules only while a checkpoint is pickled, so
the converter must read it without them (as it would the authors' files).
"""

from __future__ import annotations

import argparse
import builtins
import io
import os
import pickle
import re
import struct
import subprocess
import sys
import types
import zipfile
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file
from torch import nn

from cstrack.cli.main import main
from cstrack.converters.release import convert_checkpoint
from cstrack.converters.unpickler import LEGACY_MAGIC, LEGACY_PROTOCOL, entry_state_dict, read_checkpoint
from cstrack.errors import InputError
from cstrack.models import OMC, CSTrack, create_model, load_weights
from cstrack.models.registry import model_from_weights

# The `address_space_limit` fixture of tests/conftest.py.
MemoryLimit = Callable[..., AbstractContextManager[None]]

# Our classes whose released names differ (the rest keep their name, in models.mot.cstrack).
RELEASED_NAMES = {
    "OMC": "SiamMot",
    "CSTrack": "Model",
    "REN": "CCN",
    "SpatialAttention": "SAAN_Attention",
    "ChannelAttention": "SAAN_Attention",
    "ReCheckBox": "recheck_Box",
    "ReCheckHeat": "recheck_heatmap",
}
COMMON = {"Focus", "Conv", "C3", "Bottleneck", "BottleneckCSP", "SPP", "Concat"}
PLAIN = (int, float, str, bool, type(None))
pytestmark = pytest.mark.usefixtures("single_thread")


MODULE_INTERNALS = set(vars(nn.Module()))


@contextmanager
def released_modules() -> Iterator[dict[str, types.ModuleType]]:
    """Fake released packages in sys.modules, removed afterwards (the converter never sees them)."""
    names = ("models", "models.mot", "models.mot.cstrack", "models.mot.common", "easydict")
    modules = {name: types.ModuleType(name) for name in names}
    modules["easydict"].EasyDict = type("EasyDict", (dict,), {"__module__": "easydict"})
    sys.modules.update(modules)
    try:
        yield modules
    finally:
        for name in names:
            del sys.modules[name]


def released_class(modules: dict[str, types.ModuleType], ours: type) -> type:
    name = RELEASED_NAMES.get(ours.__name__, ours.__name__)
    module = modules["models.mot.common" if name in COMMON else "models.mot.cstrack"]
    if not hasattr(module, name):
        setattr(module, name, type(name, (nn.Module,), {"__module__": module.__name__}))
    return getattr(module, name)


def half(t: torch.Tensor, scale: float) -> torch.Tensor:
    return (t.detach() * scale).half() if t.is_floating_point() else t.detach().clone()


def released_tree(module: nn.Module, modules: dict[str, types.ModuleType], scale: float = 1.0) -> nn.Module:
    """An FP16 copy of `module` whose own classes are the fake released ones; torch's stay real."""
    ours = not type(module).__module__.startswith("torch.")
    fake = object.__new__(released_class(modules, type(module)) if ours else type(module))
    attributes = {
        k: v for k, v in vars(module).items() if not ours or k in MODULE_INTERNALS or isinstance(v, PLAIN)
    }
    attributes["_parameters"] = OrderedDict(
        (k, None if p is None else nn.Parameter(half(p, scale), p.requires_grad))
        for k, p in module._parameters.items()
    )
    attributes["_buffers"] = OrderedDict(
        (k, None if b is None else half(b, 1.0)) for k, b in module._buffers.items()
    )
    attributes["_modules"] = OrderedDict(
        (k, released_tree(m, modules, scale)) for k, m in module._modules.items()
    )
    fake.__dict__.update(attributes)
    return fake


def released_omc(model: OMC, modules: dict[str, types.ModuleType], scale: float) -> nn.Module:
    """SiamMot as the release pickles it, with its non-module attributes."""
    tree = released_tree(model, modules, scale)
    tree.opt = argparse.Namespace(recheck=True, img_size=[1088, 608], weights="omc.pt")
    tree.model.yaml = modules["easydict"].EasyDict(nc=1, depth_multiple=1.0)
    detect = tree.model.model[-1]
    detect.stride = torch.tensor([8.0, 16.0, 32.0])
    detect.grid = [torch.zeros(1)] * 3
    return tree


def state_of(tree: nn.Module) -> dict[str, torch.Tensor]:
    """What the released model's state_dict holds, cast to float32 as a plain load would."""
    return {k: v.float() if v.is_floating_point() else v for k, v in tree.state_dict().items()}


def image() -> torch.Tensor:
    return torch.rand(1, 3, 192, 320, generator=torch.Generator().manual_seed(0))


def test_whole_module_checkpoint_prefers_ema(omc_l: OMC, tmp_path: Path) -> None:
    with released_modules() as modules:
        model, ema = released_omc(omc_l, modules, 1.0), released_omc(omc_l, modules, 0.5)
        checkpoint = {
            "epoch": 29,
            "best_fitness": np.array([0.61]),
            "training_results": "29/29 ...",
            "model": model,
            "ema": ema,
            "updates": 12345,
            "optimizer": None,
            "wandb_id": None,
        }
        torch.save(checkpoint, tmp_path / "omc.pt")
        expected = state_of(ema)
    assert "models.mot.cstrack" not in sys.modules
    loaded = read_checkpoint(tmp_path / "omc.pt")
    assert loaded["epoch"] == 29 and type(loaded["model"]).__name__ == "SiamMot"

    result = convert_checkpoint(tmp_path / "omc.pt", tmp_path / "omc.safetensors", "omc_l")
    assert (result.entry, result.epoch, result.tensors, result.parameters) == ("ema", 29, 776, 81_292_910)
    with safe_open(tmp_path / "omc.safetensors", "pt") as handle:
        metadata = handle.metadata()
    assert {v.dtype for v in load_file(tmp_path / "omc.safetensors").values()} == {torch.float32, torch.int64}
    assert metadata["arch"] == "omc_l" and metadata["source"] == "omc.pt" and metadata["epoch"] == "29"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "no temporary file left"

    converted = model_from_weights(tmp_path / "omc.safetensors").eval()
    direct = create_model("omc_l").eval()
    load_weights(direct, expected)
    templates = torch.randn(3, 512, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        a, b = converted(image()), direct(image())
        assert all(torch.equal(x, y) for x, y in zip(a.head, b.head)) and torch.equal(
            a.embedding, b.embedding
        )
        assert torch.equal(converted.recheck(a, templates).heat, direct.recheck(b, templates).heat)
    assert torch.equal(converted.detect.k, expected["model.model.29.k"])


def small_checkpoint(model: nn.Module, path: Path, legacy: bool = False, **entries: object) -> Path:
    """A state_dict-style checkpoint (DataParallel keys) in the zip or the legacy format."""
    state = OrderedDict((f"module.{k}", half(v, 1.0)) for k, v in model.state_dict().items())
    torch.save({"epoch": 3, "model": state, **entries}, path, _use_new_zipfile_serialization=not legacy)
    return path


@pytest.mark.parametrize("legacy", [False, True])
def test_state_dict_checkpoint(cstrack_s: CSTrack, tmp_path: Path, legacy: bool) -> None:
    path = small_checkpoint(cstrack_s, tmp_path / "cstrack_s.pt", legacy, ema=None)
    result = convert_checkpoint(path, tmp_path / "out.safetensors", "cstrack_s")
    assert (result.entry, result.epoch) == ("model", 3)
    converted = create_model("cstrack_s", tmp_path / "out.safetensors").state_dict()
    for key, value in cstrack_s.state_dict().items():
        assert torch.equal(converted[key], half(value, 1.0).to(value.dtype)), key


def test_omc_stage1_base_only(omc_s: OMC, tmp_path: Path) -> None:
    """An OMC stage-1 checkpoint (base network only, `model.<i>` keys) converts with base_only."""
    path = small_checkpoint(omc_s.model, tmp_path / "stage1.pt")
    with pytest.raises(InputError, match=r"stage1\.pt: no entry fits omc_s: model: .*missing keys: siam"):
        convert_checkpoint(path, tmp_path / "out.safetensors", "omc_s")
    convert_checkpoint(path, tmp_path / "out.safetensors", "omc_s", base_only=True)
    model = model_from_weights(tmp_path / "out.safetensors")
    assert not model.has_recheck and model.cfg.block == "c3"


def test_wrong_arch_and_invalid_ema(cstrack_s: CSTrack, tmp_path: Path) -> None:
    path = small_checkpoint(cstrack_s, tmp_path / "cstrack_s.pt")
    with pytest.raises(
        InputError,
        match=r"cstrack_s\.pt: no entry fits omc_s: model: weights do not match.* model\.model\.2\.cv2\.weight",
    ):
        convert_checkpoint(path, tmp_path / "out.safetensors", "omc_s")
    assert not (tmp_path / "out.safetensors").exists()
    nan = OrderedDict(
        (k, torch.full_like(v, float("nan")) if v.is_floating_point() else v)
        for k, v in cstrack_s.state_dict().items()
    )
    path = small_checkpoint(cstrack_s, tmp_path / "nan_ema.pt", ema=nan, updates=10)
    result = convert_checkpoint(path, tmp_path / "out.safetensors", "cstrack_s")
    assert result.entry == "model" and "ema: non-finite" in result.notes[0]
    with pytest.raises(InputError, match="no entry fits cstrack_s: ema: non-finite"):
        convert_checkpoint(path, tmp_path / "out.safetensors", "cstrack_s", entry="ema")


class SystemCall:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


class Eval:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return builtins.eval, (f"open({str(self.marker)!r}, 'w').close()",)


@pytest.mark.parametrize(
    ("payload", "name"), [(SystemCall, os.system.__module__ + ".system"), (Eval, "builtins.eval")]
)
@pytest.mark.parametrize("zipped", [True, False])
def test_malicious_pickles_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture, payload: type, name: str, zipped: bool
) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"model": payload(marker), "epoch": 1}, path, _use_new_zipfile_serialization=zipped)
    with pytest.raises(InputError, match=rf"evil\.pt: refusing to unpickle the global {name}"):
        read_checkpoint(path)
    code = main(["convert", str(path), str(tmp_path / "out.safetensors"), "--arch", "omc_s"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and f"global {name}" in err
    assert not marker.exists() and not (tmp_path / "out.safetensors").exists()


def test_not_a_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        read_checkpoint(tmp_path / "absent.pt")
    (tmp_path / "text.pt").write_text("hello")
    with pytest.raises(InputError, match=r"text\.pt: not a readable torch checkpoint"):
        read_checkpoint(tmp_path / "text.pt")


def test_cli_convert(cstrack_s: CSTrack, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = small_checkpoint(cstrack_s, tmp_path / "cstrack_s.pt")
    assert main(["convert", str(path), str(tmp_path / "out.safetensors"), "--arch", "cstrack_s"]) == 0
    assert "cstrack_s" in capsys.readouterr().out
    assert model_from_weights(tmp_path / "out.safetensors").cfg.block == "csp"


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_pickle_protocols(tmp_path: Path, protocol: int) -> None:
    """What checkpoints pickle reads back under every protocol torch.save can use (4 and 5 frame
    the pickle, memoize, and write sets, frozensets and bytearrays with opcodes of their own)."""
    module = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4)).half()
    values = {
        "set": {1, 2},
        "frozenset": frozenset({3}),
        "bytearray": bytearray(b"xy"),
        "complex": complex(1, 2),
        "slice": slice(1, 2),
        "ordered": OrderedDict(a=1),
        "tuple_key": {(1, (2, 3)): "x"},
    }
    checkpoint = {"model": module, **values, **({"fitness": np.array([0.5])} if protocol < 5 else {})}
    torch.save(checkpoint, tmp_path / "p.pt", pickle_protocol=protocol)
    loaded = read_checkpoint(tmp_path / "p.pt")
    assert {k: loaded[k] for k in values} == values
    assert type(loaded["model"]).__name__ == "Sequential"
    state = entry_state_dict(loaded["model"])
    assert state.keys() == module.state_dict().keys()
    assert all(torch.equal(state[k], v) for k, v in module.state_dict().items())


# Crafted checkpoints, as a hostile tester makes them. Each must be refused with a one-line InputError
# naming the file, before anything is allocated by what the file declares.


class Reduce:
    """Pickles as the call `func(*args)`, which only an unpickler would make."""

    def __init__(self, func: object, *args: object):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def assert_refused(path: Path, match: str, address_space_limit: MemoryLimit) -> None:
    """read_checkpoint refuses `path` with `match`, under an address-space limit, and not for lack of memory."""
    with address_space_limit(), pytest.raises(InputError, match=match) as info:
        read_checkpoint(path)
    assert str(info.value).startswith(str(path)) and "\n" not in str(info.value)
    assert not isinstance(info.value.__cause__, MemoryError)


def zip_member(
    name: str, data: bytes, method: int = 0, crc: int | None = None, size: int | None = None
) -> tuple:
    """A zip entry as written, with the compression method, CRC and uncompressed size it declares."""
    return name, data, method, zlib.crc32(data) if crc is None else crc, len(data) if size is None else size


def write_zip(path: Path, members: list[tuple]) -> Path:
    """A zip file written field by field, so that it can declare what its data is not."""
    body, central = bytearray(), bytearray()
    for name, data, method, crc, size in members:
        offset, encoded = len(body), name.encode()
        body += struct.pack(
            "<4s5H3I2H", b"PK\x03\x04", 20, 0, method, 0, 0, crc, len(data), size, len(encoded), 0
        )
        body += encoded + data
        central += struct.pack(
            "<4s6H3I5H2I",
            b"PK\x01\x02",
            20,
            20,
            0,
            method,
            0,
            0,
            crc,
            len(data),
            size,
            len(encoded),
            0,
            0,
            0,
            0,
            0,
            offset,
        )
        central += encoded
    end = struct.pack("<4s4H2IH", b"PK\x05\x06", 0, 0, len(members), len(members), len(central), len(body), 0)
    path.write_bytes(bytes(body + central + end))
    return path


def torch_zip(path: Path, pickled: bytes, storages: dict[str, bytes] | None = None) -> Path:
    """A torch.save-style zip of `pickled` (data.pkl) and its storage records."""
    members = [zip_member("archive/data.pkl", pickled)]
    members += [zip_member(f"archive/data/{key}", data) for key, data in (storages or {}).items()]
    return write_zip(path, members)


STORAGE = object()


def tensor_opcodes(size: tuple, stride: tuple, numel: int = 1) -> bytes:
    """Protocol-2 opcodes (no PROTO, no STOP) rebuilding an FP16 tensor over storage '0' of `numel` elements."""
    buffer = io.BytesIO()
    pickler = pickle.Pickler(buffer, protocol=2)
    pickler.persistent_id = lambda obj: (
        ("storage", torch.HalfStorage, "0", "cpu", numel) if obj is STORAGE else None
    )
    pickler.dump(Reduce(torch._utils._rebuild_tensor_v2, STORAGE, 0, size, stride, False, OrderedDict()))
    return buffer.getvalue()[2:-1]


def legacy_file(path: Path, objects: bytes) -> Path:
    """torch's legacy stream: magic, protocol, sys_info, then `objects` (raw pickles)."""
    head = [LEGACY_MAGIC, LEGACY_PROTOCOL, {"protocol_version": 1001, "little_endian": True}]
    path.write_bytes(b"".join(pickle.dumps(obj, protocol=2) for obj in head) + objects)
    return path


def zeros_bomb(blocks: int) -> bytes:
    """A raw deflate stream of `blocks` MiB of zeros, about 1 KiB per MiB (made without inflating it)."""
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = deflate.compress(bytes(1 << 20)) + deflate.flush(zlib.Z_FULL_FLUSH)  # the same for every MiB
    return block * blocks + deflate.flush()


@pytest.mark.parametrize("zipped", [True, False])
def test_bytearray_of_a_length_is_refused(
    tmp_path: Path, zipped: bool, address_space_limit: MemoryLimit
) -> None:
    """A 162-byte pickle of `bytearray(2000000000)` must not allocate 2 GB."""
    path = tmp_path / "bytearray.pt"
    torch.save({"model": Reduce(bytearray, 2_000_000_000)}, path, _use_new_zipfile_serialization=zipped)
    assert path.stat().st_size < 2000
    assert_refused(
        path, r"bytearray\.pt: .*builtins\.bytearray of something other than bytes", address_space_limit
    )


@pytest.mark.parametrize(
    ("opcodes", "match"),
    [
        (
            b"\x96" + struct.pack("<Q", 1 << 31),
            "BYTEARRAY8 of 2,147,483,648 bytes, more than the pickle holds",
        ),
        (b"\x8e" + struct.pack("<Q", 1 << 31) + b"abc.", "the pickle ends early"),  # BINBYTES8
        (b"\x8d" + struct.pack("<Q", 1 << 31) + b"abc.", "the pickle ends early"),  # BINUNICODE8
        (b"\x95" + struct.pack("<Q", 1 << 31) + b"K\x01.", "neither a zip file nor"),  # FRAME: 1
        (b"K\x01r\xff\xff\xff\xff.", "neither a zip file nor torch's legacy format"),  # LONG_BINPUT 2**32 - 1
    ],
    ids=["bytearray8", "binbytes8", "binunicode8", "frame", "memo-index"],
)
def test_declared_lengths_allocate_nothing(
    tmp_path: Path, opcodes: bytes, match: str, address_space_limit: MemoryLimit
) -> None:
    """Lengths and memo indices a pickle declares cost no more than the file holds (the C unpickler
    allocates them first: 2 GiB, or a 32 GiB memo for one LONG_BINPUT)."""
    path = tmp_path / "declared.pt"
    path.write_bytes(b"\x80\x04" + opcodes)
    assert_refused(path, rf"declared\.pt: .*{match}", address_space_limit)


def test_zip_bomb_is_refused_before_inflating(tmp_path: Path, address_space_limit: MemoryLimit) -> None:
    """A 2 MB storage record that inflates to 2 GiB is refused on its declared size."""
    pickled = b"\x80\x02}X\x05\x00\x00\x00model}X\x01\x00\x00\x00w" + tensor_opcodes((8,), (1,), 8) + b"ss."
    bomb = zeros_bomb(2048)
    path = write_zip(
        tmp_path / "bomb.pt",
        [
            zip_member("archive/data.pkl", pickled),
            zip_member("archive/data/0", bomb, zipfile.ZIP_DEFLATED, 0, 1 << 31),
        ],
    )
    assert path.stat().st_size < 3 << 20
    assert_refused(
        path, r"bomb\.pt: .*archive/data/0 declares 2,147,483,648 bytes uncompressed", address_space_limit
    )


def test_zip_entry_inflating_past_its_declared_size_costs_what_it_declares(
    tmp_path: Path, address_space_limit: MemoryLimit
) -> None:
    """An entry that declares 16 bytes but inflates to 2 GiB: only the 16 are read."""
    pickled = b"\x80\x02}X\x05\x00\x00\x00model}X\x01\x00\x00\x00w" + tensor_opcodes((8,), (1,), 8) + b"ss."
    crc = zlib.crc32(bytes(16))
    path = write_zip(
        tmp_path / "liar.pt",
        [zip_member("archive/data.pkl", pickled), zip_member("archive/data/0", zeros_bomb(2048), 8, crc, 16)],
    )
    with address_space_limit():
        checkpoint = read_checkpoint(path)
    assert torch.equal(checkpoint["model"]["w"], torch.zeros(8, dtype=torch.float16))


def test_legacy_storage_larger_than_the_file_is_refused(
    tmp_path: Path, address_space_limit: MemoryLimit
) -> None:
    path = legacy_file(tmp_path / "huge.pt", b"\x80\x02" + tensor_opcodes((8,), (1,), 1 << 31) + b".")
    assert_refused(
        path,
        r"huge\.pt: .*storage '0' declares 4,294,967,296 bytes, more than the file has left",
        address_space_limit,
    )


@pytest.mark.parametrize(
    ("head", "tail", "match"),
    [
        (b"", b"(K\x01\x90.", "ADDITEMS on a Tensor"),  # tensor.add(1) would allocate 16 GiB
        (b"", b"K\x00K\x01s.", "SETITEM on a Tensor"),  # tensor[0] = 1
        (b"", b"(K\x00K\x01u.", "SETITEMS on a Tensor"),
        (b"", b"K\x01b.", "BUILD on a Tensor"),  # Tensor.__setstate__ can resize the storage
        (b"c__builtin__\nset\n", b"R.", "a call's arguments are a Tensor, not a tuple"),  # set(*tensor)
    ],
    ids=["additems", "setitem", "setitems", "build", "reduce"],
)
def test_container_opcodes_never_act_on_tensors(
    tmp_path: Path, head: bytes, tail: bytes, match: str, address_space_limit: MemoryLimit
) -> None:
    """A stride-0 view of 2**33 elements over one is cheap until an opcode treats it as a container."""
    opcodes = b"\x80\x02" + head + tensor_opcodes((1 << 33,), (0,)) + tail
    path = torch_zip(tmp_path / "tensor.pt", opcodes, {"0": bytes(2)})
    assert_refused(path, rf"tensor\.pt: .*{match}", address_space_limit)


def test_hashing_crafted_tuples_cannot_crash_or_hang(tmp_path: Path) -> None:
    """A 10**6-deep tuple as a dict key crashes CPython's hash (C recursion); 60 levels of (t, t)
    take 2**60 steps. Run apart, so that a crash or a hang fails this test only."""
    (tmp_path / "deep.pt").write_bytes(b"\x80\x02})" + b"\x85" * 10**6 + b"K\x01s.")
    (tmp_path / "wide.pt").write_bytes(b"\x80\x02})" + b"2\x86" * 60 + b"K\x01s.")
    code = (
        "import sys\nfrom cstrack.errors import InputError\nfrom cstrack.converters.unpickler import read_checkpoint\n"
        "for path in sys.argv[1:]:\n    try:\n        read_checkpoint(path)\n"
        "    except InputError as exc:\n        print(exc)\n"
    )
    paths = [str(tmp_path / "deep.pt"), str(tmp_path / "wide.pt")]
    done = subprocess.run(
        [sys.executable, "-c", code, *paths], check=False, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert len(lines) == 2 and all(
        "a dict or set key nests more than 10,000 tuples" in line for line in lines
    )


def cycle(tmp_path: Path) -> dict:
    module = nn.Sequential(nn.Conv2d(1, 1, 1))
    module._modules["loop"] = module
    return {"model": module}


def deep(tmp_path: Path) -> dict:
    root = node = nn.Module()
    for _ in range(3000):
        node._modules["0"] = nn.Module()
        node = node._modules["0"]
    return {"model": root}


def shared(tmp_path: Path) -> dict:
    node = nn.Linear(1, 1)
    for _ in range(18):  # 2**18 places for one Linear: nn.Module.state_dict would list each
        node = nn.Sequential(node, node)
    return {"model": node}


def long_names(tmp_path: Path) -> dict:
    name = "n" * (1 << 20)  # pickled once: 60 levels of it would be keys of 60 MiB, 1.8 GiB in all
    root = node = nn.Module()
    for _ in range(60):
        node._modules[name] = nn.Module()
        node = node._modules[name]
    node.weight = nn.Parameter(torch.zeros(1))
    return {"model": root}


def many_tensors(tmp_path: Path) -> dict:
    node = nn.Module()
    shared = torch.zeros(1)
    for i in range(2000):
        node.register_parameter(f"p{i}", nn.Parameter(shared))
    for _ in range(6):  # 64 places for one module of 2000 parameters
        node = nn.Sequential(node, node)
    return {"model": node}


def parameters_list(tmp_path: Path) -> dict:
    module = nn.Sequential(nn.Linear(2, 2))
    module[0].__dict__["_parameters"] = list(module[0]._parameters.values())
    return {"model": module}


def modules_list(tmp_path: Path) -> dict:
    module = nn.Sequential(nn.Linear(2, 2))
    module.__dict__["_modules"] = list(module._modules.values())
    return {"model": module}


def updates_tensor(tmp_path: Path) -> dict:
    state = {"w": torch.zeros(2)}
    return {"model": state, "ema": state, "updates": torch.tensor([1, 2, 3])}


@pytest.mark.parametrize(
    ("checkpoint", "problem"),
    [
        (cycle, "model: loop contains itself: the module tree has a cycle"),
        (deep, "model: the module tree is more than 64 levels deep at 0.0.0"),
        (shared, "model: the module tree has more than 100,000 modules"),
        (long_names, r"model: a key is longer than 512 characters: n+\.\.\."),
        (many_tensors, "model: the module tree holds more than 100,000 tensors"),
        (parameters_list, r"model: 0\._parameters is a list, not a dict by name"),
        (modules_list, r"model: _modules is a list, not a dict by name"),
        (updates_tensor, r"'updates' \(the EMA's update count\) is a tensor of shape \(3,\), not a number"),
    ],
    ids=[
        "cycle",
        "deep",
        "shared",
        "long-names",
        "many-tensors",
        "parameters-list",
        "modules-list",
        "updates-tensor",
    ],
)
def test_malformed_checkpoints_are_one_line_errors(
    tmp_path: Path,
    capsys: pytest.CaptureFixture,
    checkpoint: object,
    problem: str,
    address_space_limit: MemoryLimit,
) -> None:
    path = tmp_path / "crafted.pt"
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(20_000)  # torch.save recurses through the 3000-deep tree
    try:
        torch.save(checkpoint(tmp_path), path)
    finally:
        sys.setrecursionlimit(limit)
    with address_space_limit():
        code = main(["convert", str(path), str(tmp_path / "out.safetensors"), "--arch", "cstrack_s"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert re.search(rf"crafted\.pt: .*{problem}", err), err


def test_updates_as_a_one_element_tensor(cstrack_s: CSTrack, tmp_path: Path) -> None:
    nan = OrderedDict(
        (k, torch.full_like(v, float("nan")) if v.is_floating_point() else v)
        for k, v in cstrack_s.state_dict().items()
    )
    path = small_checkpoint(cstrack_s, tmp_path / "cstrack_s.pt", ema=nan, updates=torch.tensor(0))
    result = convert_checkpoint(path, tmp_path / "out.safetensors", "cstrack_s")
    assert result.entry == "model" and result.notes == ("ema: never updated (updates = 0)",)
