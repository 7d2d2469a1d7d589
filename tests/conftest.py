"""Shared fixtures: the real MOTChallenge data lives in ../shared/data beside the checkout."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from cstrack.models import OMC, CSTrack

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SHARED_WEIGHTS = SHARED_DATA.parent / "weights"
# The release assets of the pretrained models that are not in the package (see its README).
RELEASE_ASSETS = Path(__file__).resolve().parents[1] / "weights"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Root of ../shared/data; tests that need it skip cleanly where it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real MOTChallenge data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def shared_weights() -> Path:
    """Root of ../shared/weights (the pretrained YOLOX-Nano ONNX graphs); skips where absent."""
    if not SHARED_WEIGHTS.is_dir():
        pytest.skip(f"pretrained detector weights not found at {SHARED_WEIGHTS}")
    return SHARED_WEIGHTS


@pytest.fixture(scope="module")
def single_thread() -> Iterator[None]:
    """One intra-op thread (torch, and ONNX Runtime, which follows it) for a module's tests.

    On a shared machine two spin-waiting OpenMP threads stall on every operator while another
    process holds a core (measured 100x slower); one thread never waits for the other.
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# Networks built once per session (the L models take seconds), for the model and converter tests;
# tests must not mutate them.


@pytest.fixture(scope="session")
def omc_l() -> OMC:
    from cstrack.models import create_model

    return create_model("omc_l")


@pytest.fixture(scope="session")
def cstrack_l() -> CSTrack:
    from cstrack.models import create_model

    return create_model("cstrack_l")


@pytest.fixture(scope="session")
def omc_s() -> OMC:
    import torch

    from cstrack.models import create_model

    torch.manual_seed(0)
    return create_model("omc_s").eval()


@pytest.fixture(scope="session")
def cstrack_s() -> CSTrack:
    import torch

    from cstrack.models import create_model

    torch.manual_seed(0)
    return create_model("cstrack_s").eval()


@contextmanager
def _environment(name: str, value: str) -> Iterator[None]:
    """os.environ[name] = value meanwhile (so the commands that tests start inherit it), then as before."""
    import os

    previous = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = previous


@pytest.fixture(scope="session", autouse=True)
def private_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The cstrack cache (exported ONNX graphs, downloaded weights) of the whole run in a temporary
    folder, never the user's: CSTRACK_CACHE is set in os.environ."""
    folder = tmp_path_factory.mktemp("cstrack_cache")
    with _environment("CSTRACK_CACHE", str(folder)):
        yield folder


@pytest.fixture(scope="session", autouse=True)
def local_release_assets() -> Iterator[str]:
    """Pretrained weights that are not in the package are "downloaded" from the checkout's
    weights/ folder (a file:// URL), so no test needs the network: CSTRACK_WEIGHTS_URL is set."""
    url = RELEASE_ASSETS.as_uri()
    with _environment("CSTRACK_WEIGHTS_URL", url):
        yield url


@pytest.fixture
def frame_folder(tmp_path: Path) -> Callable[[int, str], Path]:
    """A maker of `tmp_path/frames` holding `count` flat grey 128x96 images (`suffix` .jpg/.png),
    each a little brighter than the last: the smallest image-folder source."""

    def make(count: int, suffix: str = ".jpg") -> Path:
        import cv2
        import numpy as np

        folder = tmp_path / "frames"
        folder.mkdir()
        for k in range(count):
            cv2.imwrite(str(folder / f"{k:03d}{suffix}"), np.full((96, 128, 3), 60 + 40 * k, np.uint8))
        return folder

    return make


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


def _reid_crop(path: Path, colour: tuple[int, int, int], size: tuple[int, int] = (32, 64)) -> None:
    """A small two-coloured crop: each identity its own colours, the same in both cameras."""
    import cv2
    import numpy as np

    path.parent.mkdir(parents=True, exist_ok=True)
    image = np.full((size[1], size[0], 3), colour, dtype=np.uint8)
    cv2.rectangle(image, (4, 4), (size[0] - 5, size[1] // 2), (255 - colour[0], 90, 30), -1)
    cv2.imwrite(str(path), image)


@pytest.fixture
def reid_root(tmp_path: Path) -> Path:
    """A ReID root in the shared data's layout: CUHK03 ids 0-9 (images 00 and 07: one per camera) and CUHK01 ids 1-10 (001 and 003)."""
    root = tmp_path / "reid"
    for identity in range(10):
        colour = (25 * identity, 255 - 20 * identity, 60)
        _reid_crop(root / "CUHK03" / f"{identity:04d}_00.jpg", colour)
        _reid_crop(root / "CUHK03" / f"{identity:04d}_07.jpg", colour)
        _reid_crop(root / "CUHK01" / f"{identity + 1:04d}001.jpg", colour[::-1], (30, 80))
        _reid_crop(root / "CUHK01" / f"{identity + 1:04d}003.jpg", colour[::-1], (30, 80))
    return root


@pytest.fixture(scope="session")
def chromium() -> str:
    """A headless Chromium (`$CHROMIUM`, or Debian's `apt-get install chromium`) for the checks that
    need a real browser (video playback, the documentation site); they skip cleanly without one."""
    import os
    import shutil

    for name in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name) if name else None
        if path:
            return path
    pytest.skip("no Chromium here (apt-get install chromium) to check in a browser")
