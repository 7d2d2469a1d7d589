"""Converting the authors' released checkpoints (pickled `.pt`) to safetensors without running them.

A released checkpoint is a `torch.save` file (zip, or the older non-zip "legacy" stream) holding
a dict: `model` (and for OMC `ema`) is a whole pickled nn.Module in FP16 or a state_dict; beside
it `epoch`, `best_fitness`, `training_results`, `optimizer`, `updates`, `wandb_id`.

Unpickling a whole module normally imports the released code base and lets the file call any
global it names. Here a restricted unpickler resolves globals from three closed sets only:
  tensor rebuilding   our own re-implementations of torch's `_rebuild_tensor_v2` & co., storage
                      types as dtype markers, OrderedDict, set, dtypes;
  stand-ins           the released classes (`models.mot.*`, `torch.nn.modules.*`, DataParallel,
                      `argparse.Namespace`, `easydict.EasyDict`, numpy scalars and arrays,
                      pathlib paths): inert recorders of their pickled state, never imported;
  anything else       refused with an InputError naming the file and the global, before the
                      pickle can call it.
The state_dict is then read off the recorded `_parameters`, `_buffers` and `_modules` of the
module tree, in nn.Module's own order and with its key paths.

Which entry is converted: `ema` when present and valid, else `model` (entry="auto"). YOLOv5-style
training evaluates and ships the EMA weights, so they are the released model; the EMA is skipped
when it is None, when `updates` says it was never updated, or when its tensors do not fit the
architecture or are not finite.
"""

from __future__ import annotations

import io
import json
import pickle
import struct
import zipfile
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any, BinaryIO

import torch

from cstrack import __version__
from cstrack.errors import InputError
from cstrack.models.mobilenet import imagenet_backbone_state
from cstrack.models.registry import build_model, count_parameters, model_config
from cstrack.models.weights import load_weights, save_weights

ENTRIES = ("auto", "ema", "model")
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001

STAND_IN_MODULES = (
    "models.mot.cstrack",
    "models.mot.common",
    "models.mot.detector.YOLOv5",
    "torch.nn.modules",
    "torch.nn.parallel",
)
STAND_IN_GLOBALS = frozenset(
    {
        "argparse.Namespace",
        "easydict.EasyDict",
        "numpy.ndarray",
        "numpy.dtype",
        "numpy.core.multiarray._reconstruct",
        "numpy.core.multiarray.scalar",
        "numpy._core.multiarray._reconstruct",
        "numpy._core.multiarray.scalar",
        "pathlib.Path",
        "pathlib.PosixPath",
        "pathlib.WindowsPath",
        "pathlib.PurePosixPath",
        "pathlib.PureWindowsPath",
        "torch.Tensor",
        "torch.nn.parameter.Parameter",
    }
)
# What a malformed (not malicious) pickle can raise from the unpickler or our rebuild functions.
UNPICKLING_ERRORS = (
    pickle.UnpicklingError,
    EOFError,
    ValueError,
    TypeError,
    AttributeError,
    KeyError,
    IndexError,
    struct.error,
    RecursionError,
    MemoryError,
    RuntimeError,
)
MODULE_ALIASES = {"__builtin__": "builtins", "copy_reg": "copyreg"}
STORAGE_DTYPES = {
    "HalfStorage": torch.float16,
    "FloatStorage": torch.float32,
    "DoubleStorage": torch.float64,
    "BFloat16Storage": torch.bfloat16,
    "LongStorage": torch.int64,
    "IntStorage": torch.int32,
    "ShortStorage": torch.int16,
    "CharStorage": torch.int8,
    "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool,
    "UntypedStorage": torch.uint8,
}
DTYPES = {
    name: dtype
    for name, dtype in vars(torch).items()
    if isinstance(dtype, torch.dtype) and not name.startswith("_")
}


class StandIn:
    """An inert stand-in for a released class: records constructor args and pickled state only.

    Pickle creates modules without calling __init__ (NEWOBJ), so the containers appear on use.
    """

    qualified_name = "?"
    args: tuple = ()
    state: Any = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args = args

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def __setitem__(self, key: Any, value: Any) -> None:
        vars(self).setdefault("items", {})[key] = value

    def append(self, value: Any) -> None:
        vars(self).setdefault("elements", []).append(value)

    def extend(self, values: Any) -> None:
        vars(self).setdefault("elements", []).extend(values)

    def __repr__(self) -> str:
        return f"<stand-in {self.qualified_name}>"


@dataclass(frozen=True)
class _StorageType:
    """What a pickled `torch.HalfStorage` (etc.) global resolves to: just its dtype."""

    dtype: torch.dtype


@dataclass(frozen=True)
class _Storage:
    """A storage's bytes (possibly filled in later, for the legacy format) and its element dtype."""

    raw: torch.Tensor  # flat uint8
    dtype: torch.dtype

    def typed(self, dtype: torch.dtype | None = None) -> torch.Tensor:
        return self.raw.view(dtype or self.dtype)


def _rebuild_tensor(storage: _Storage, offset: int, size: tuple, stride: tuple, *_: Any) -> torch.Tensor:
    """torch._utils._rebuild_tensor(_v2): a strided view of the storage (hooks, metadata dropped)."""
    return _strided(storage, offset, size, stride, None)


def _rebuild_tensor_v3(
    storage: _Storage,
    offset: int,
    size: tuple,
    stride: tuple,
    requires_grad: bool,
    hooks: Any,
    dtype: Any,
    *_: Any,
) -> torch.Tensor:
    return _strided(storage, offset, size, stride, dtype)


def _strided(storage: Any, offset: Any, size: Any, stride: Any, dtype: Any) -> torch.Tensor:
    if not isinstance(storage, _Storage) or (dtype is not None and not isinstance(dtype, torch.dtype)):
        raise pickle.UnpicklingError("a tensor is rebuilt from something that is not a storage")
    try:
        return storage.typed(dtype).as_strided(tuple(size), tuple(stride), int(offset))
    except (RuntimeError, TypeError, ValueError) as exc:
        raise pickle.UnpicklingError(f"a tensor does not fit its storage: {exc}") from exc


def _rebuild_parameter(data: torch.Tensor, *_: Any) -> torch.Tensor:
    """torch._utils._rebuild_parameter(_with_state): the parameter's data is all a state_dict needs."""
    if not isinstance(data, torch.Tensor):
        raise pickle.UnpicklingError("a parameter is rebuilt from something that is not a tensor")
    return data


def _rebuild_from_type_v2(func: Callable, new_type: Any, args: tuple, state: Any) -> torch.Tensor:
    """torch._tensor._rebuild_from_type_v2: only over our own rebuild functions; type and state dropped."""
    if func not in (_rebuild_tensor, _rebuild_tensor_v3, _rebuild_parameter):
        raise pickle.UnpicklingError("a tensor is rebuilt by a function that is not a tensor rebuild")
    return func(*args)


def _latin1(text: str, encoding: str = "latin1") -> bytes:
    """_codecs.encode as protocol 2 pickles bytes: latin-1 only."""
    if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
        raise pickle.UnpicklingError(f"_codecs.encode with encoding {encoding!r}")
    return text.encode("latin1")


def _reconstructor(cls: Any, base: Any, state: Any) -> Any:
    """copyreg._reconstructor (protocol 0/1 objects), for stand-ins only."""
    if not (isinstance(cls, type) and issubclass(cls, StandIn)):
        raise pickle.UnpicklingError("copyreg._reconstructor of a class that is not a stand-in")
    return cls(state)


FUNCTIONS: dict[str, object] = {
    "torch._utils._rebuild_tensor": _rebuild_tensor,
    "torch._utils._rebuild_tensor_v2": _rebuild_tensor,
    "torch._utils._rebuild_tensor_v3": _rebuild_tensor_v3,
    "torch._utils._rebuild_parameter": _rebuild_parameter,
    "torch._utils._rebuild_parameter_with_state": _rebuild_parameter,
    "torch._tensor._rebuild_from_type_v2": _rebuild_from_type_v2,
    "collections.OrderedDict": OrderedDict,
    "builtins.set": set,
    "builtins.frozenset": frozenset,
    "builtins.slice": slice,
    "builtins.complex": complex,
    "builtins.bytearray": bytearray,
    "_codecs.encode": _latin1,
    "copyreg._reconstructor": _reconstructor,
    **{f"torch.{name}": _StorageType(dtype) for name, dtype in STORAGE_DTYPES.items()},
    **{f"torch.{name}": dtype for name, dtype in DTYPES.items()},
}


def _stand_in_allowed(qualified: str) -> bool:
    return qualified in STAND_IN_GLOBALS or any(qualified.startswith(f"{m}.") for m in STAND_IN_MODULES)


class RestrictedUnpickler(pickle.Unpickler):
    """Resolves only the globals above; `load_storage(persistent_id)` supplies the storages."""

    def __init__(self, stream: BinaryIO, load_storage: Callable[[tuple], _Storage]):
        super().__init__(stream)
        self._load_storage = load_storage
        self._stand_ins: dict[str, type[StandIn]] = {}

    def find_class(self, module: str, name: str) -> Any:
        qualified = f"{MODULE_ALIASES.get(module, module)}.{name}"
        if qualified in FUNCTIONS:
            return FUNCTIONS[qualified]
        if _stand_in_allowed(qualified):
            if qualified not in self._stand_ins:
                stand_in = type(name.rsplit(".", 1)[-1], (StandIn,), {"qualified_name": qualified})
                self._stand_ins[qualified] = stand_in
            return self._stand_ins[qualified]
        raise _Refused(qualified)

    def persistent_load(self, pid: Any) -> _Storage:
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unknown persistent id {pid!r:.80}")
        if not isinstance(pid[1], _StorageType):
            raise pickle.UnpicklingError("a storage of an unknown type")
        return self._load_storage(pid)


class _Refused(pickle.UnpicklingError):
    def __init__(self, qualified: str):
        super().__init__(qualified)
        self.qualified = qualified


def _unpickle(path: Path, stream: BinaryIO, load_storage: Callable[[tuple], _Storage]) -> Any:
    try:
        return RestrictedUnpickler(stream, load_storage).load()
    except _Refused as refused:
        raise InputError(
            path,
            f"refusing to unpickle the global {refused.qualified}: it is neither tensor data nor a "
            "released model class (a checkpoint that names it could run arbitrary code)",
        ) from None
    except UNPICKLING_ERRORS as exc:
        raise InputError(path, f"not a readable torch checkpoint: {exc}") from exc


def _bytes_tensor(data: bytearray) -> torch.Tensor:
    """A uint8 tensor over `data` (torch.frombuffer refuses empty buffers)."""
    return torch.frombuffer(data, dtype=torch.uint8) if data else torch.empty(0, dtype=torch.uint8)


def _zip_storages(archive: zipfile.ZipFile, prefix: str) -> Callable[[tuple], _Storage]:
    """Storages read on first use from `<prefix>data/<key>` records."""
    cache: dict[str, _Storage] = {}

    def load(pid: tuple) -> _Storage:
        _, kind, key, _location, numel = pid[:5]
        if key not in cache:
            try:
                data = bytearray(archive.read(f"{prefix}data/{key}"))
            except KeyError as exc:
                raise pickle.UnpicklingError(f"storage {key!r} is missing from the archive") from exc
            if len(data) < int(numel) * kind.dtype.itemsize:
                raise pickle.UnpicklingError(f"storage {key!r} is shorter than its {numel} elements")
            cache[key] = _Storage(_bytes_tensor(data), kind.dtype)
        return cache[key]

    return load


def _read_zip(path: Path) -> Any:
    with zipfile.ZipFile(path) as archive:
        pickles = [n for n in archive.namelist() if n.endswith("data.pkl") and n.count("/") == 1]
        if len(pickles) != 1:
            raise InputError(path, "a zip file but not a torch checkpoint (no single <name>/data.pkl)")
        prefix = pickles[0].removesuffix("data.pkl")
        order = f"{prefix}byteorder"
        if order in archive.namelist() and archive.read(order).strip() != b"little":
            raise InputError(path, "big-endian checkpoints are not supported")
        with archive.open(pickles[0]) as stream:
            return _unpickle(path, io.BufferedReader(stream), _zip_storages(archive, prefix))


def _read_legacy(path: Path) -> Any:
    """torch's pre-1.6 stream: magic, protocol, sys_info, the object, storage keys, then raw storages."""
    storages: dict[str, _Storage] = {}

    def allocate(pid: tuple) -> _Storage:
        _, kind, key, _location, numel = pid[:5]
        view = pid[5] if len(pid) > 5 else None
        if key not in storages:
            storages[key] = _Storage(
                torch.empty(int(numel) * kind.dtype.itemsize, dtype=torch.uint8), kind.dtype
            )
        if view is None:
            return storages[key]
        _view_key, offset, size = view
        item = kind.dtype.itemsize
        return _Storage(storages[key].raw[int(offset) * item : (int(offset) + int(size)) * item], kind.dtype)

    def no_storage(pid: tuple) -> _Storage:
        raise pickle.UnpicklingError("a storage in the header")

    with path.open("rb") as stream:
        if _unpickle(path, stream, no_storage) != LEGACY_MAGIC:
            raise InputError(path, "not a torch checkpoint (neither a zip file nor torch's legacy format)")
        if _unpickle(path, stream, no_storage) != LEGACY_PROTOCOL:
            raise InputError(path, "unsupported legacy torch checkpoint protocol")
        sys_info = _unpickle(path, stream, no_storage)
        if isinstance(sys_info, dict) and not sys_info.get("little_endian", True):
            raise InputError(path, "big-endian checkpoints are not supported")
        result = _unpickle(path, stream, allocate)
        keys = _unpickle(path, stream, no_storage)
        for key in keys if isinstance(keys, list) else []:
            storage = storages.get(key)
            header = stream.read(8)
            if storage is None or len(header) != 8:
                raise InputError(path, f"truncated or inconsistent legacy checkpoint at storage {key!r}")
            numel = struct.unpack("<q", header)[0]
            size = numel * storage.dtype.itemsize
            data = stream.read(size)
            if size != storage.raw.numel() or len(data) != size:
                raise InputError(
                    path, f"storage {key!r} holds {len(data)} bytes, expected {storage.raw.numel()}"
                )
            storage.raw.copy_(_bytes_tensor(bytearray(data)))
    return result


def read_checkpoint(path: str | PathLike) -> Any:
    """Unpickle a torch checkpoint safely: tensors are real, released classes are `StandIn`s."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "checkpoint not found")
    if zipfile.is_zipfile(path):
        return _read_zip(path)
    return _read_legacy(path)


def _tensor(value: Any, key: str) -> torch.Tensor:
    """A state_dict value; very old pickles hold a Parameter built by its constructor (a stand-in)."""
    if isinstance(value, StandIn) and value.qualified_name == "torch.nn.parameter.Parameter" and value.args:
        value = value.args[0]
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{key} is a {type(value).__name__}, not a tensor")
    return value


def module_state_dict(module: Any, prefix: str = "") -> dict[str, torch.Tensor]:
    """The state_dict of a stand-in module tree: parameters, persistent buffers, then children."""
    state = module.state if isinstance(module, StandIn) else None
    if not isinstance(state, dict) or "_modules" not in state:
        raise TypeError(f"{prefix or 'the entry'} is not a pickled nn.Module")
    out: dict[str, torch.Tensor] = {}
    skip = state.get("_non_persistent_buffers_set") or set()
    for table, excluded in (("_parameters", set()), ("_buffers", skip)):
        for name, value in (state.get(table) or {}).items():
            if value is not None and name not in excluded:
                out[f"{prefix}{name}"] = _tensor(value, f"{prefix}{name}")
    for name, child in (state.get("_modules") or {}).items():
        if child is not None:
            out.update(module_state_dict(child, f"{prefix}{name}."))
    return out


def entry_state_dict(entry: Any) -> dict[str, torch.Tensor]:
    """A checkpoint entry (whole module or state_dict) as a plain state_dict; TypeError otherwise."""
    if isinstance(entry, StandIn):
        return module_state_dict(entry)
    if isinstance(entry, Mapping) and entry and all(isinstance(k, str) for k in entry):
        return {k: _tensor(v, k) for k, v in entry.items()}
    raise TypeError(f"holds a {type(entry).__name__}, neither a module nor a state_dict")


def _candidates(checkpoint: Any, entry: str) -> tuple[list[tuple[str, Any]], list[str]]:
    """(name, entry) pairs to try in order, and why an EMA is passed over."""
    if not isinstance(checkpoint, Mapping):
        raise TypeError("the checkpoint is not a dict")
    if "model" not in checkpoint and "ema" not in checkpoint:
        return [("state_dict", checkpoint)], []
    if entry != "auto":
        if checkpoint.get(entry) is None:
            raise ValueError(f"the checkpoint has no {entry!r} entry")
        return [(entry, checkpoint[entry])], []
    if checkpoint.get("ema") is None:
        return [("model", checkpoint["model"])], []
    if checkpoint.get("updates") == 0:
        return [("model", checkpoint["model"])], ["ema: never updated (updates = 0)"]
    return [("ema", checkpoint["ema"]), ("model", checkpoint.get("model"))], []


def conversion_metadata(
    arch: str, options: dict, source: Path, entry: str, epoch: int | None
) -> dict[str, str]:
    """The safetensors header of a converted file: what `model_from_weights` and people read back."""
    return {
        "format": "pt",
        "arch": arch,
        "options": json.dumps(options),
        "source": source.name,
        "entry": entry,
        "epoch": "" if epoch is None else str(epoch),
        "converter": f"cstrack {__version__}",
    }


@dataclass(frozen=True)
class Conversion:
    """What `convert_checkpoint` wrote."""

    source: Path
    output: Path
    arch: str
    entry: str  # "ema", "model" or "state_dict" (a bare state_dict file)
    epoch: int | None
    tensors: int
    parameters: int
    notes: tuple[str, ...]  # why an entry tried first was not used


def convert_checkpoint(
    source: str | PathLike,
    output: str | PathLike,
    arch: str,
    entry: str = "auto",
    base_only: bool = False,
) -> Conversion:
    """Convert a released `.pt` checkpoint into a safetensors file that `create_model(arch)` loads.

    Every key and shape is checked against the architecture (base_only: without the re-check
    heads, for OMC stage-1 checkpoints); FP16 becomes float32. The output is written atomically
    with metadata: arch, options, source file name, entry and epoch.
    """
    source = Path(source)
    if entry not in ENTRIES:
        raise InputError(None, f"entry must be one of {ENTRIES}, got {entry!r}")
    overrides = {"recheck": False} if base_only else {}
    model = build_model(model_config(arch, **overrides)).eval()
    checkpoint = read_checkpoint(source)
    try:
        candidates, notes = _candidates(checkpoint, entry)
    except (TypeError, ValueError) as exc:
        raise InputError(source, str(exc)) from None
    for name, value in candidates:
        try:
            load_weights(model, entry_state_dict(value))
            bad = [
                k for k, v in model.state_dict().items() if v.is_floating_point() and not v.isfinite().all()
            ]
            if bad:
                raise ValueError(f"non-finite values in {len(bad)} tensors, first {bad[0]}")
        except (TypeError, ValueError) as exc:  # InputError is a ValueError
            problem = exc.problem if isinstance(exc, InputError) else str(exc)
            notes.append(f"{name}: {problem}")
            continue
        epoch = checkpoint.get("epoch") if isinstance(checkpoint, Mapping) else None
        epoch = epoch if isinstance(epoch, int) else None
        save_weights(model, output, conversion_metadata(arch, overrides, source, name, epoch))
        return Conversion(
            source,
            Path(output),
            arch,
            name,
            epoch,
            len(model.state_dict()),
            count_parameters(model),
            tuple(notes),
        )
    raise InputError(
        source, f"no entry fits {arch}{' (base only)' if base_only else ''}: " + "; ".join(notes)
    )


def convert_backbone(source: str | PathLike, output: str | PathLike, arch: str) -> Conversion:
    """Initial weights for `cstrack train --weights`: ARCH with its backbone from an ImageNet file.

    `source` is a MobileNetV2 state_dict or pickled module (torchvision-style `features.*` keys),
    read with the same restricted unpickler; the rest of the network keeps its fresh initialisation.
    """
    source = Path(source)
    model = build_model(model_config(arch)).eval()
    if model.cfg.backbone != "mobilenetv2":
        raise InputError(
            None, f"--backbone needs a MobileNetV2 architecture, {arch} has {model.cfg.backbone}"
        )
    checkpoint = read_checkpoint(source)
    try:
        candidates, _ = _candidates(checkpoint, "auto")
        features = entry_state_dict(candidates[0][1])
    except (TypeError, ValueError) as exc:
        raise InputError(source, str(exc)) from None
    base = model.model if model.has_recheck else model
    torch.nn.Sequential(*list(base.model)[:10]).load_state_dict(imagenet_backbone_state(features, source))
    save_weights(model, output, conversion_metadata(arch, {}, source, "backbone", None))
    return Conversion(
        source, Path(output), arch, "backbone", None, len(model.state_dict()), count_parameters(model), ()
    )
