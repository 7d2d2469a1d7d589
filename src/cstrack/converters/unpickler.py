"""Reading pickled torch checkpoints (the authors' released `.pt` files) without running them.

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

A crafted file meets limits before anything is allocated for it: every read and every storage is
bounded by the bytes the file holds (a zip entry's declared uncompressed size by a budget relative
to the archive's size), constructors that allocate by a given length (`bytearray(2000000000)`) or
iterate an arbitrary object are refused, the pickle's container operations apply only to plain
containers and stand-ins, and the module tree is walked with bounded depth and size (no
RecursionError on a cycle or a 3000-deep tree).
"""

from __future__ import annotations

import io
import pickle
import struct
import zipfile
import zlib
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any, BinaryIO, ClassVar

import torch

from cstrack.errors import InputError
from cstrack.models.weights import printable

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
    OverflowError,
    zipfile.BadZipFile,
    zlib.error,
    OSError,
)
MODULE_ALIASES = {"__builtin__": "builtins", "copy_reg": "copyreg"}
# Bounds on what a crafted file can make us allocate or walk (the released files are far inside).
ZIP_INFLATION = 4  # torch.save stores zip entries uncompressed; a re-zipped (deflated) file gets 4x
ZIP_SLACK = 1 << 20  # bytes beyond that, for tiny archives
MAX_DIMS = 64  # a rebuilt tensor's dimensions
MAX_KEY_TUPLES = 10_000  # tuples one dict or set key holds (hashing a tuple recurses, uncached)
MAX_MODULE_DEPTH = 64  # nn.Module nesting (the released networks are under 10 deep)
MAX_MODULE_VISITS = 100_000  # modules walked, a shared one once per place (the releases: ~2,000)
MAX_STATE_ENTRIES = 100_000  # tensors read off a module tree (the releases: under 1,000)
MAX_KEY_CHARS = 512  # of a state_dict key path (the releases: under 60)
MESSAGE_CHARS = 300  # of text from the file quoted in an error

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
    if not (isinstance(offset, int) and _is_shape(size) and _is_shape(stride)):
        raise pickle.UnpicklingError(
            f"a tensor's offset, size or stride is not integers (at most {MAX_DIMS} dimensions)"
        )
    try:
        return storage.typed(dtype).as_strided(tuple(size), tuple(stride), offset)
    except (RuntimeError, TypeError, ValueError, OverflowError) as exc:
        raise pickle.UnpicklingError(f"a tensor does not fit its storage: {exc}") from exc


def _is_shape(value: Any) -> bool:
    """A size or stride as torch pickles one; checked first, as tuple() would iterate anything."""
    return (
        isinstance(value, (tuple, list)) and len(value) <= MAX_DIMS and all(isinstance(v, int) for v in value)
    )


def _rebuild_parameter(data: torch.Tensor, *_: Any) -> torch.Tensor:
    """torch._utils._rebuild_parameter(_with_state): the parameter's data is all a state_dict needs."""
    if not isinstance(data, torch.Tensor):
        raise pickle.UnpicklingError("a parameter is rebuilt from something that is not a tensor")
    return data


def _rebuild_from_type_v2(func: Callable, new_type: Any, args: tuple, state: Any) -> torch.Tensor:
    """torch._tensor._rebuild_from_type_v2: only over our own rebuild functions; type and state dropped."""
    if func not in (_rebuild_tensor, _rebuild_tensor_v3, _rebuild_parameter):
        raise pickle.UnpicklingError("a tensor is rebuilt by a function that is not a tensor rebuild")
    return func(*_arguments(args))


def _latin1(text: str, encoding: str = "latin1") -> bytes:
    """_codecs.encode as protocol 2 pickles bytes: latin-1 only."""
    if not isinstance(encoding, str) or encoding not in ("latin1", "latin-1") or not isinstance(text, str):
        raise pickle.UnpicklingError("_codecs.encode of something other than latin-1 text")
    return text.encode("latin1")


def _reconstructor(cls: Any, base: Any, state: Any) -> Any:
    """copyreg._reconstructor (protocol 0/1 objects), for stand-ins only."""
    if not (isinstance(cls, type) and issubclass(cls, StandIn)):
        raise pickle.UnpicklingError("copyreg._reconstructor of a class that is not a stand-in")
    return cls(state)


def _bytearray(*args: Any) -> bytearray:
    """builtins.bytearray as protocols 0-4 pickle one: from its bytes or latin-1 text only.

    From a length, `bytearray(2000000000)` would allocate 2 GB for a 162-byte pickle.
    """
    if not args:
        return bytearray()
    if len(args) == 1 and isinstance(args[0], (bytes, bytearray)):
        return bytearray(args[0])
    if len(args) == 2 and isinstance(args[0], str) and args[1] in ("latin-1", "latin1"):
        return bytearray(args[0], "latin-1")
    raise pickle.UnpicklingError("builtins.bytearray of something other than bytes or latin-1 text")


def _elements(items: Any, what: str) -> list | tuple:
    """What a set or OrderedDict is built from: a list or tuple, never any iterable (a 10**18-element
    stride-0 tensor iterates for ever); its elements are hashed, so they are checked as keys."""
    if not isinstance(items, (list, tuple)):
        raise pickle.UnpicklingError(f"{what} of a {type(items).__name__}, not a list")
    return items


def _set(items: Any = ()) -> set:
    return set(_checked_keys(_elements(items, "builtins.set")))


def _frozenset(items: Any = ()) -> frozenset:
    return frozenset(_checked_keys(_elements(items, "builtins.frozenset")))


def _ordered_dict(items: Any = ()) -> OrderedDict:
    """collections.OrderedDict: empty (Python 3 pickles set the items after) or Python 2's pairs."""
    pairs = _elements(items, "collections.OrderedDict")
    if not all(isinstance(pair, (list, tuple)) and len(pair) == 2 for pair in pairs):
        raise pickle.UnpicklingError("collections.OrderedDict of something other than (key, value) pairs")
    _checked_keys([key for key, _ in pairs])
    return OrderedDict(pairs)


def _complex(real: Any = 0.0, imag: Any = 0.0) -> complex:
    if not (isinstance(real, (int, float)) and isinstance(imag, (int, float))):
        raise pickle.UnpicklingError("builtins.complex of something other than two numbers")
    return complex(real, imag)


def _checked_keys(keys: list | tuple) -> list | tuple:
    """`keys`, refused when one would hash through more than MAX_KEY_TUPLES tuples.

    Hashing a tuple hashes its elements afresh, in C and without a recursion limit: a 10**6-deep
    tuple crashes the interpreter, and 60 levels of a tuple holding one tuple twice take 2**60 steps.
    """
    for key in keys:
        if isinstance(key, tuple) and _hashed_tuples(key) > MAX_KEY_TUPLES:
            raise pickle.UnpicklingError(f"a dict or set key nests more than {MAX_KEY_TUPLES:,} tuples")
    return keys


def _hashed_tuples(root: tuple) -> int:
    """How many tuples hash(root) visits, one shared by several counted at each; over the cap, cap + 1.

    Each tuple is looked into once, and the walk stops once it has met more tuple elements than the
    cap (each of them is on a path of its own, so hashing would visit more tuples than that).
    """
    counts: dict[int, int] = {}
    stack: list[tuple[tuple, bool]] = [(root, False)]
    met = 0
    while stack:
        node, children_counted = stack.pop()
        if children_counted:
            inner = sum(counts[id(child)] for child in node if isinstance(child, tuple))
            counts[id(node)] = min(1 + inner, MAX_KEY_TUPLES + 1)
        elif id(node) not in counts:  # tuples cannot hold themselves: no cycle to guard against
            children = [child for child in node if isinstance(child, tuple)]
            met += len(children)
            if met > MAX_KEY_TUPLES:
                return MAX_KEY_TUPLES + 1
            stack.append((node, True))
            stack.extend((child, False) for child in children)
    return counts[id(root)]


def _arguments(args: Any) -> tuple:
    """A call's arguments as pickle gives them: a tuple (unpacking anything else would iterate it)."""
    if type(args) is not tuple:
        raise pickle.UnpicklingError(f"a call's arguments are a {type(args).__name__}, not a tuple")
    return args


FUNCTIONS: dict[str, object] = {
    "torch._utils._rebuild_tensor": _rebuild_tensor,
    "torch._utils._rebuild_tensor_v2": _rebuild_tensor,
    "torch._utils._rebuild_tensor_v3": _rebuild_tensor_v3,
    "torch._utils._rebuild_parameter": _rebuild_parameter,
    "torch._utils._rebuild_parameter_with_state": _rebuild_parameter,
    "torch._tensor._rebuild_from_type_v2": _rebuild_from_type_v2,
    "collections.OrderedDict": _ordered_dict,
    "builtins.set": _set,
    "builtins.frozenset": _frozenset,
    "builtins.slice": slice,
    "builtins.complex": _complex,
    "builtins.bytearray": _bytearray,
    "_codecs.encode": _latin1,
    "copyreg._reconstructor": _reconstructor,
    **{f"torch.{name}": _StorageType(dtype) for name, dtype in STORAGE_DTYPES.items()},
    **{f"torch.{name}": dtype for name, dtype in DTYPES.items()},
}


def _stand_in_allowed(qualified: str) -> bool:
    return qualified in STAND_IN_GLOBALS or any(qualified.startswith(f"{m}.") for m in STAND_IN_MODULES)


class RestrictedUnpickler(pickle._Unpickler):
    """Resolves only the globals above; `load_storage(persistent_id)` supplies the storages.

    Built on Python's own unpickler, not the C one: the C one cannot be changed opcode by opcode,
    and allocates what a pickle declares before reading it (BYTEARRAY8's length, a memo grown to a
    LONG_BINPUT index of 2**32). Here reads are bounded by the stream, and the opcodes that act on
    an object act only on what a checkpoint holds there: BUILD on stand-ins (and a state_dict's
    `_metadata`), SETITEM(S) on dicts and stand-ins, APPEND(S) on lists and stand-ins, ADDITEMS on
    sets; never on a tensor (`tensor.add(x)`, `tensor[k] = v` or `Tensor.__setstate__`, which resizes
    storage, all allocate or loop by its size). Calls take a tuple of arguments, NEWOBJ builds
    stand-ins only, dict and set keys are checked before they are hashed, and extension codes
    (which torch never writes) are refused.
    """

    dispatch: ClassVar[dict[int, Callable]] = dict(pickle._Unpickler.dispatch)

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
            raise pickle.UnpicklingError(f"unknown persistent id of type {type(pid).__name__}")
        _, kind, key, _location, numel = pid[:5]
        if not isinstance(kind, _StorageType):
            raise pickle.UnpicklingError("a storage of an unknown type")
        if not (isinstance(key, str) and isinstance(numel, int) and 0 <= numel < 1 << 63):
            raise pickle.UnpicklingError("a storage whose key is not a string or size not a count")
        return self._load_storage(pid)

    def _target(self, kinds: tuple[type, ...], opcode: str) -> Any:
        target = self.stack[-1]
        if not isinstance(target, kinds):
            raise pickle.UnpicklingError(f"{opcode} on a {type(target).__name__}")
        return target

    def load_build(self) -> None:
        state = self.stack.pop()
        target = self.stack[-1]
        if isinstance(target, StandIn):
            target.__setstate__(state)
        elif type(target) is OrderedDict and isinstance(state, dict):
            vars(target).update(state)  # a state_dict's `_metadata`
        else:
            raise pickle.UnpicklingError(f"BUILD on a {type(target).__name__}")

    def load_setitem(self) -> None:
        value, key = self.stack.pop(), self.stack.pop()
        self._target((dict, StandIn), "SETITEM")[_checked_keys((key,))[0]] = value

    def load_setitems(self) -> None:
        items = self.pop_mark()
        target = self._target((dict, StandIn), "SETITEMS")
        _checked_keys(items[0::2])
        for i in range(0, len(items), 2):
            target[items[i]] = items[i + 1]

    def load_dict(self) -> None:
        items = self.pop_mark()
        _checked_keys(items[0::2])
        self.append({items[i]: items[i + 1] for i in range(0, len(items), 2)})

    def load_append(self) -> None:
        value = self.stack.pop()
        self._target((list, StandIn), "APPEND").append(value)

    def load_appends(self) -> None:
        items = self.pop_mark()
        self._target((list, StandIn), "APPENDS").extend(items)

    def load_additems(self) -> None:
        items = self.pop_mark()
        self._target((set,), "ADDITEMS").update(_checked_keys(items))

    def load_frozenset(self) -> None:
        items = self.pop_mark()  # before self.append is looked up: pop_mark replaces the stack
        self.append(frozenset(_checked_keys(items)))

    def load_reduce(self) -> None:
        args = _arguments(self.stack.pop())
        self.stack[-1] = self.stack[-1](*args)

    def load_newobj(self) -> None:
        _arguments(self.stack.pop())
        self.stack[-1] = _new_stand_in(self.stack[-1])

    def load_newobj_ex(self) -> None:
        kwargs, args = self.stack.pop(), self.stack.pop()
        if type(kwargs) is not dict:
            raise pickle.UnpicklingError(f"NEWOBJ_EX keywords are a {type(kwargs).__name__}, not a dict")
        _arguments(args)
        self.stack[-1] = _new_stand_in(self.stack[-1])

    def load_bytearray8(self) -> None:
        (size,) = struct.unpack("<Q", self.read(8))
        data = self.read(size)  # the stream bounds it: never more than the pickle holds
        if len(data) != size:
            raise pickle.UnpicklingError(f"BYTEARRAY8 of {size:,} bytes, more than the pickle holds")
        self.append(bytearray(data))

    def load_extension(self) -> None:
        raise pickle.UnpicklingError("an extension code (EXT1/2/4): torch checkpoints have none")

    dispatch[pickle.BUILD[0]] = load_build
    dispatch[pickle.SETITEM[0]] = load_setitem
    dispatch[pickle.SETITEMS[0]] = load_setitems
    dispatch[pickle.DICT[0]] = load_dict
    dispatch[pickle.APPEND[0]] = load_append
    dispatch[pickle.APPENDS[0]] = load_appends
    dispatch[pickle.ADDITEMS[0]] = load_additems
    dispatch[pickle.FROZENSET[0]] = load_frozenset
    dispatch[pickle.REDUCE[0]] = load_reduce
    dispatch[pickle.NEWOBJ[0]] = load_newobj
    dispatch[pickle.NEWOBJ_EX[0]] = load_newobj_ex
    dispatch[pickle.BYTEARRAY8[0]] = load_bytearray8
    dispatch[pickle.EXT1[0]] = dispatch[pickle.EXT2[0]] = dispatch[pickle.EXT4[0]] = load_extension


def _new_stand_in(cls: Any) -> StandIn:
    """NEWOBJ: pickle creates a module (or Namespace, EasyDict) without calling __init__."""
    if not (isinstance(cls, type) and issubclass(cls, StandIn)):
        raise pickle.UnpicklingError(f"NEWOBJ of a {type(cls).__name__}, not a released class")
    return cls.__new__(cls)


class _Refused(pickle.UnpicklingError):
    def __init__(self, qualified: str):
        super().__init__(qualified)
        self.qualified = qualified


def _reason(exc: BaseException) -> str:
    if isinstance(exc, EOFError) and not str(exc):
        return "the pickle ends early (the file is cut short, or declares more than it holds)"
    return printable(str(exc) or type(exc).__name__, MESSAGE_CHARS)


def _unpickle(path: Path, stream: BinaryIO, load_storage: Callable[[tuple], _Storage]) -> Any:
    try:
        return RestrictedUnpickler(stream, load_storage).load()
    except _Refused as refused:
        raise InputError(
            path,
            f"refusing to unpickle the global {printable(refused.qualified, MESSAGE_CHARS)}: it is neither "
            "tensor data nor a released model class (a checkpoint that names it could run arbitrary code)",
        ) from None
    except UNPICKLING_ERRORS as exc:
        raise InputError(path, f"not a readable torch checkpoint: {_reason(exc)}") from exc


def _bytes_tensor(data: bytearray) -> torch.Tensor:
    """A uint8 tensor over `data` (torch.frombuffer refuses empty buffers)."""
    return torch.frombuffer(data, dtype=torch.uint8) if data else torch.empty(0, dtype=torch.uint8)


class _ZipEntries:
    """Reads a torch zip's entries within a budget: ZIP_INFLATION times the archive's size, plus slack.

    The budget is charged each entry's declared uncompressed size before it is read, and a read asks
    for no more than the entry declares: a 2 MB entry that inflates to 2 GiB is refused, or costs
    what it declares.
    """

    def __init__(self, archive: zipfile.ZipFile, archive_bytes: int):
        self.archive = archive
        self.budget = ZIP_INFLATION * archive_bytes + ZIP_SLACK
        self.left = self.budget

    def read(self, info: zipfile.ZipInfo) -> bytes:
        name = printable(info.filename, MESSAGE_CHARS)
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise pickle.UnpicklingError(
                f"{name} is compressed with method {info.compress_type} (only stored or deflated entries are read)"
            )
        if info.file_size > self.left:
            raise pickle.UnpicklingError(
                f"{name} declares {info.file_size:,} bytes uncompressed, more than the {self.left:,} left "
                f"of the {self.budget:,} its entries may hold ({ZIP_INFLATION}x the file's size)"
            )
        self.left -= info.file_size
        with self.archive.open(info) as entry:
            data = entry.read(info.file_size)  # bounded however far the data would inflate
        if len(data) != info.file_size:
            raise pickle.UnpicklingError(f"{name} holds fewer than its declared {info.file_size:,} bytes")
        return data


def _zip_storages(entries: _ZipEntries, prefix: str) -> Callable[[tuple], _Storage]:
    """Storages read on first use from `<prefix>data/<key>` records."""
    cache: dict[str, _Storage] = {}

    def load(pid: tuple) -> _Storage:
        _, kind, key, _location, numel = pid[:5]
        if key not in cache:
            try:
                info = entries.archive.getinfo(f"{prefix}data/{key}")
            except KeyError:
                raise pickle.UnpicklingError(f"storage {key!r:.80} is missing from the archive") from None
            if info.file_size < numel * kind.dtype.itemsize:
                raise pickle.UnpicklingError(f"storage {key!r:.80} is shorter than its {numel} elements")
            cache[key] = _Storage(_bytes_tensor(bytearray(entries.read(info))), kind.dtype)
        return cache[key]

    return load


def _read_zip(path: Path) -> Any:
    try:
        with zipfile.ZipFile(path) as archive:
            entries = _ZipEntries(archive, path.stat().st_size)
            names = archive.namelist()
            pickles = [n for n in names if n.endswith("data.pkl") and n.count("/") == 1]
            if len(pickles) != 1:
                raise InputError(path, "a zip file but not a torch checkpoint (no single <name>/data.pkl)")
            prefix = pickles[0].removesuffix("data.pkl")
            order = f"{prefix}byteorder"
            if order in names and entries.read(archive.getinfo(order)).strip() != b"little":
                raise InputError(path, "big-endian checkpoints are not supported")
            data = entries.read(archive.getinfo(pickles[0]))
            return _unpickle(path, io.BytesIO(data), _zip_storages(entries, prefix))
    except InputError:
        raise
    except UNPICKLING_ERRORS as exc:
        raise InputError(path, f"not a readable torch checkpoint: {_reason(exc)}") from exc


class _BoundedReader:
    """A binary file whose reads never ask for more than it has left.

    A pickle's declared length (BINBYTES8, BINUNICODE8, FRAME) then costs no more than the file holds.
    """

    def __init__(self, raw: BinaryIO, size: int):
        self._raw = raw
        self.left = size

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(self.left if size < 0 else min(size, self.left))
        self.left -= len(data)
        return data

    def readline(self) -> bytes:
        line = self._raw.readline()
        self.left -= len(line)
        return line

    def readinto(self, buffer: Any) -> int:
        count = self._raw.readinto(buffer)
        self.left -= count
        return count


def _read_legacy(path: Path) -> Any:
    """torch's pre-1.6 stream: magic, protocol, sys_info, the object, storage keys, then raw storages.

    The storages' bytes follow the object, so together they must fit in what the file has left.
    """
    storages: dict[str, _Storage] = {}
    allocated = 0

    def no_storage(pid: tuple) -> _Storage:
        raise pickle.UnpicklingError("a storage in the header")

    with path.open("rb") as raw:
        stream = _BoundedReader(raw, path.stat().st_size)

        def allocate(pid: tuple) -> _Storage:
            nonlocal allocated
            _, kind, key, _location, numel = pid[:5]
            view = pid[5] if len(pid) > 5 else None
            item = kind.dtype.itemsize
            if key not in storages:
                if allocated + numel * item > stream.left:
                    raise pickle.UnpicklingError(
                        f"storage {key!r:.80} declares {numel * item:,} bytes, more than the file has left"
                    )
                allocated += numel * item
                storages[key] = _Storage(torch.empty(numel * item, dtype=torch.uint8), kind.dtype)
            if view is None:
                return storages[key]
            if not (isinstance(view, tuple) and len(view) == 3 and all(isinstance(v, int) for v in view[1:])):
                raise pickle.UnpicklingError("a storage view that is not (key, offset, size)")
            _view_key, offset, size = view
            return _Storage(storages[key].raw[offset * item : (offset + size) * item], kind.dtype)

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
            storage = storages.get(key) if isinstance(key, str) else None
            shown = printable(repr(key) if isinstance(key, str) else type(key).__name__, MESSAGE_CHARS)
            header = stream.read(8)
            if storage is None or len(header) != 8:
                raise InputError(path, f"truncated or inconsistent legacy checkpoint at storage {shown}")
            size = struct.unpack("<q", header)[0] * storage.dtype.itemsize
            if size != storage.raw.numel():
                raise InputError(path, f"storage {shown} holds {size} bytes, expected {storage.raw.numel()}")
            if stream.readinto(storage.raw.numpy()) != size:
                raise InputError(path, f"storage {shown} is cut short: the file ends within its {size} bytes")
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
    """The state_dict of a stand-in module tree: parameters, persistent buffers, then children.

    A crafted tree is an error, not a RecursionError or a hang: a module met again below itself is a
    cycle; depth, modules walked, tensors and key lengths are bounded (a module shared by several
    parents counts at each, as nn.Module.state_dict lists it at each, so one long name or one big
    module referenced many times cannot multiply into gigabytes of keys).
    """
    out: dict[str, torch.Tensor] = {}
    walking: set[int] = set()  # the modules from the root to the current one
    visits = entries = 0

    def walk(node: Any, prefix: str) -> None:
        nonlocal visits, entries
        state = node.state if isinstance(node, StandIn) else None
        if not isinstance(state, dict) or "_modules" not in state:
            raise TypeError(f"{prefix or 'the entry'} is not a pickled nn.Module")
        where = prefix.removesuffix(".") or "the entry"
        if id(node) in walking:
            raise ValueError(f"{where} contains itself: the module tree has a cycle")
        if len(walking) >= MAX_MODULE_DEPTH:
            raise ValueError(f"the module tree is more than {MAX_MODULE_DEPTH} levels deep at {where}")
        visits += 1
        if visits > MAX_MODULE_VISITS:
            raise ValueError(f"the module tree has more than {MAX_MODULE_VISITS:,} modules")
        skip = state.get("_non_persistent_buffers_set")
        if skip is None:
            skip = set()
        elif not isinstance(skip, (set, frozenset)):
            raise TypeError(f"{prefix}_non_persistent_buffers_set is a {type(skip).__name__}, not a set")
        for table, excluded in (("_parameters", set()), ("_buffers", skip)):
            for name, value in _names(state, table, prefix).items():
                if value is not None and name not in excluded:
                    entries += 1
                    if entries > MAX_STATE_ENTRIES:
                        raise ValueError(f"the module tree holds more than {MAX_STATE_ENTRIES:,} tensors")
                    out[_key(prefix, name)] = _tensor(value, _key(prefix, name))
        walking.add(id(node))
        for name, child in _names(state, "_modules", prefix).items():
            if child is not None:
                walk(child, f"{_key(prefix, name)}.")
        walking.discard(id(node))

    walk(module, prefix)
    return out


def _key(prefix: str, name: str) -> str:
    if len(prefix) + len(name) > MAX_KEY_CHARS:
        raise ValueError(
            f"a key is longer than {MAX_KEY_CHARS} characters: {printable(prefix + name[:81], 80)}"
        )
    return f"{prefix}{name}"


def _names(state: dict, table: str, prefix: str) -> Mapping[str, Any]:
    """A module's `_parameters`, `_buffers` or `_modules`: a dict by name (absent or None: empty)."""
    value = state.get(table)
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise TypeError(f"{prefix}{table} is a {type(value).__name__}, not a dict by name")
    return value


def entry_state_dict(entry: Any) -> dict[str, torch.Tensor]:
    """A checkpoint entry (whole module or state_dict) as a plain state_dict; TypeError otherwise."""
    if isinstance(entry, StandIn):
        return module_state_dict(entry)
    if isinstance(entry, Mapping) and entry and all(isinstance(k, str) for k in entry):
        return {k: _tensor(v, k) for k, v in entry.items()}
    raise TypeError(f"holds a {type(entry).__name__}, neither a module nor a state_dict")
