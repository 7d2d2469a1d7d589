"""Model fixtures built once per session (the L models take seconds); tests must not mutate them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest
import torch

from cstrack.models import OMC, CSTrack, create_model


@pytest.fixture(scope="session")
def omc_l() -> OMC:
    return create_model("omc_l")


@pytest.fixture(scope="session")
def cstrack_l() -> CSTrack:
    return create_model("cstrack_l")


@pytest.fixture(scope="session")
def omc_s() -> OMC:
    torch.manual_seed(0)
    return create_model("omc_s").eval()


@pytest.fixture(scope="session")
def cstrack_s() -> CSTrack:
    torch.manual_seed(0)
    return create_model("cstrack_s").eval()


@pytest.fixture
def address_space_limit() -> Callable[..., AbstractContextManager[None]]:
    """`with address_space_limit(extra):` at most `extra` more bytes of address space meanwhile: an
    allocation sized by what a file declares fails at once with MemoryError instead of taking the
    machine's memory (the readers' memory tests)."""
    resource = pytest.importorskip("resource")
    status = Path("/proc/self/status")
    if not status.is_file():
        pytest.skip("needs /proc/self/status")

    @contextmanager
    def limit(extra: int = 1 << 30) -> Iterator[None]:
        size = next(
            int(line.split()[1]) * 1024
            for line in status.read_text().splitlines()
            if line.startswith("VmSize")
        )
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        resource.setrlimit(resource.RLIMIT_AS, (size + extra, hard))
        try:
            yield
        finally:
            resource.setrlimit(resource.RLIMIT_AS, (soft, hard))

    return limit
