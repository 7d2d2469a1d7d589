"""Fuzzing `cstrack convert` with mutated checkpoints: each case converts or is refused with a one-line
InputError naming the file, and never raises anything else, runs anything or eats memory.

Seeds are small real checkpoints in the release's layouts (a whole pickled FP16 module, DataParallel
state_dicts; zip and legacy formats, pickle protocols 2 and 4) and two malicious ones. Mutations flip bytes, cut the file,
swap pickle opcodes or flip bytes inside data.pkl (re-zipped, so the unpickler and not the CRC
meets them), and corrupt zip header fields. A fixed seed makes the cases the same on every run.
"""

from __future__ import annotations

import builtins
import copy
import io
import os
import pickletools
import random
import sys
import zipfile
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from cstrack.converters import release
from cstrack.errors import InputError

# The `address_space_limit` fixture of tests/conftest.py.
MemoryLimit = Callable[..., AbstractContextManager[None]]

pytestmark = pytest.mark.usefixtures("single_thread")

CASES_PER_SEED = 60
OPCODES = [op.code.encode("latin-1")[0] for op in pickletools.opcodes]
HEADERS = {b"PK\x03\x04": 30, b"PK\x01\x02": 46, b"PK\x05\x06": 22}  # zip signature: header length
MARKER = "pwned"  # relative to the test's working directory, so the seeds' bytes never vary
# Audit events that mean something ran; pickle.find_class is the default (unrestricted) resolver.
WATCHED = {"os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "subprocess.Popen"}
WATCHED |= {"pickle.find_class", "ctypes.dlopen"}
seen: list[str] = []
armed: list[bool] = []


def audit(event: str, args: tuple) -> None:
    if armed and event in WATCHED:
        seen.append(event)


sys.addaudithook(audit)  # hooks cannot be removed; this one records only while `armed`


class SystemCall:
    def __reduce__(self):
        return os.system, (f"touch {MARKER}",)


class Eval:
    def __reduce__(self):
        return builtins.eval, (f"open({MARKER!r}, 'w').close()",)


def tiny() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4), nn.Conv2d(4, 2, 1)).eval()


def saved(checkpoint: object, zipped: bool, protocol: int = 2) -> bytes:
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer, _use_new_zipfile_serialization=zipped, pickle_protocol=protocol)
    return buffer.getvalue()


def seeds() -> dict[str, bytes]:
    """Small checkpoints as the release writes them, and two that would run code."""
    module = copy.deepcopy(tiny()).half()
    state = OrderedDict((f"module.{k}", v) for k, v in module.state_dict().items())
    whole = {
        "epoch": 3,
        "best_fitness": np.array([0.5]),
        "training_results": "3/29 ...",
        "model": module,
        "ema": None,
        "updates": 0,
        "optimizer": None,
    }
    return {
        "module-zip": saved(whole, True),
        "module-legacy": saved(whole, False),
        "module-protocol4-zip": saved(whole, True, protocol=4),
        "state-zip": saved({"epoch": 3, "model": state, "ema": state, "updates": 7}, True),
        "state-legacy": saved({"epoch": 3, "model": state}, False),
        "system-zip": saved({"model": SystemCall(), "epoch": 1}, True),
        "eval-legacy": saved({"model": Eval(), "epoch": 1}, False),
    }


def pickle_positions(data: bytes) -> list[int]:
    """Offsets of the opcodes of the pickles that start `data` (legacy files hold five in a row)."""
    stream, positions = io.BytesIO(data), []
    while True:
        try:
            positions += [pos for _, _, pos in pickletools.genops(stream)]
        except ValueError:  # noqa: PERF203 (the loop ends here: past the last pickle, raw bytes or the end)
            return positions


def flip(rng: random.Random, data: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        out[rng.randrange(len(out))] ^= rng.randint(1, 255)
    return bytes(out)


def swap_opcode(rng: random.Random, data: bytes) -> bytes:
    out = bytearray(data)
    out[rng.choice(pickle_positions(data))] = rng.choice(OPCODES)
    return bytes(out)


def corrupt_zip_header(rng: random.Random, data: bytes) -> bytes:
    """One field (2 or 4 bytes) of a local, central or end-of-directory header: 0, all ones or random."""
    starts = [(i, length) for sig, length in HEADERS.items() for i in _find_all(data, sig)]
    start, length = rng.choice(starts)
    width = rng.choice((2, 4))
    at = start + 4 + rng.randrange(0, length - 4 - width + 1, 2)
    value = rng.choice((0, 256**width - 1, rng.randrange(256**width)))
    out = bytearray(data)
    out[at : at + width] = value.to_bytes(width, "little")
    return bytes(out)


def _find_all(data: bytes, needle: bytes) -> Iterator[int]:
    at = data.find(needle)
    while at >= 0:
        yield at
        at = data.find(needle, at + 1)


def in_data_pkl(mutate: Callable[[random.Random, bytes], bytes]) -> Callable[[random.Random, bytes], bytes]:
    """`mutate` applied to a zip's data.pkl, re-zipped with correct CRCs."""

    def mutated(rng: random.Random, data: bytes) -> bytes:
        out = io.BytesIO()
        with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w") as target:
            for info in source.infolist():
                member = source.read(info)
                target.writestr(
                    info.filename, mutate(rng, member) if info.filename.endswith("data.pkl") else member
                )
        return out.getvalue()

    return mutated


def truncate(rng: random.Random, data: bytes) -> bytes:
    return data[: rng.randrange(len(data))]


ZIP_MUTATIONS = (flip, truncate, corrupt_zip_header, in_data_pkl(swap_opcode), in_data_pkl(flip))
LEGACY_MUTATIONS = (flip, truncate, swap_opcode)


def causes(error: BaseException) -> Iterator[BaseException]:
    while error is not None:
        yield error
        error = error.__cause__ or error.__context__


def test_mutated_checkpoints_convert_or_are_refused(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
    address_space_limit: MemoryLimit,
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(release, "model_config", lambda arch, **overrides: arch)
    monkeypatch.setattr(release, "model_from_config", lambda cfg: tiny())
    rng = random.Random(20240607)
    outcomes: dict[str, int] = {"converted": 0, "refused": 0}
    failures: list[str] = []
    path, output = tmp_path / "case.pt", tmp_path / "case.safetensors"
    armed.append(True)
    try:
        with address_space_limit():
            for name, seed in seeds().items():
                mutations = ZIP_MUTATIONS if name.endswith("zip") else LEGACY_MUTATIONS
                for case in range(CASES_PER_SEED):
                    mutate = rng.choice(mutations)
                    path.write_bytes(mutate(rng, seed))
                    label = f"{name} #{case} {getattr(mutate, '__qualname__', mutate)}"
                    try:
                        release.convert_checkpoint(path, output, "tiny")
                        outcomes["converted"] += 1
                    except InputError as error:
                        outcomes["refused"] += 1
                        message = str(error)
                        if not message.startswith(f"{path}: ") or "\n" in message:
                            failures.append(f"{label}: not one line naming the file: {message!r}")
                        if any(isinstance(e, MemoryError) for e in causes(error)) or "allocate" in message:
                            failures.append(f"{label}: ran out of memory: {message}")
                    except Exception as error:  # noqa: BLE001 - the point: nothing else may escape
                        failures.append(f"{label}: {type(error).__name__}: {error}")
    finally:
        armed.clear()
    with capsys.disabled():
        print(f"\nfuzzed checkpoints: {outcomes['converted']} converted, {outcomes['refused']} refused")
    assert not failures, "\n".join(failures[:20])
    assert not seen, f"code ran while unpickling: {sorted(set(seen))}"
    assert not (tmp_path / MARKER).exists(), "a malicious payload ran"
    assert outcomes["converted"] > 0 and outcomes["refused"] > 0
    assert sum(outcomes.values()) == CASES_PER_SEED * len(seeds())
