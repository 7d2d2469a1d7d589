"""Pretrained weights that are release assets: downloaded once from a local HTTP server into a
temporary cache, checked (size and SHA-256) before they take their name, then read from the cache;
an unreachable server is a one-line error that says how to place the file by hand."""

from __future__ import annotations

import hashlib
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from cstrack.errors import InputError
from cstrack.models import pretrained
from cstrack.models.pretrained import RELEASED, Release, pretrained_weights
from cstrack.user_cache import file_sha256

NAME = "omc_n.test"
FILE = "omc_n_test.safetensors"
PAYLOAD = bytes(range(256)) * 1500  # 384,000 bytes


@dataclass
class Server:
    url: str
    requests: list[str] = field(default_factory=list)


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty cstrack cache folder of this test's own."""
    monkeypatch.setenv("CSTRACK_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(pretrained, "DOWNLOAD_TIMEOUT_S", 10)  # a hung server fails the test soon
    return tmp_path / "cache"


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    """A release folder holding FILE, served on 127.0.0.1 from a thread (stopped at the end) and
    named by $CSTRACK_WEIGHTS_URL."""
    root = tmp_path / "served"
    (root / "weights-v1").mkdir(parents=True)
    (root / "weights-v1" / FILE).write_bytes(PAYLOAD)
    served = Server("")

    class Recording(SimpleHTTPRequestHandler):
        def do_GET(self) -> None:
            served.requests.append(self.path)
            super().do_GET()

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: the test reads the requests from `served.requests`."""

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(Recording, directory=str(root)))
    served.url = f"http://127.0.0.1:{httpd.server_address[1]}/weights-v1"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    monkeypatch.setenv("CSTRACK_WEIGHTS_URL", served.url)
    try:
        yield served
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def publish(monkeypatch: pytest.MonkeyPatch, sha256: str | None = None, size: int | None = None) -> Release:
    """NAME as a released model whose asset is FILE (its true SHA-256 and size unless given)."""
    release = Release(FILE, sha256 or hashlib.sha256(PAYLOAD).hexdigest(), size or len(PAYLOAD))
    monkeypatch.setitem(RELEASED, NAME, release)
    return release


def test_downloaded_once_then_read_from_the_cache(
    server: Server, cache: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    publish(monkeypatch)
    with caplog.at_level("INFO", logger="cstrack"):
        path = pretrained_weights(NAME)
    assert path == cache / "weights" / FILE and path.read_bytes() == PAYLOAD
    assert sorted(p.name for p in path.parent.iterdir()) == [FILE]  # no temporary left
    assert server.requests == [f"/weights-v1/{FILE}"]
    assert f"downloading {server.url}/{FILE} (0.4 MB) into {path.parent}" in caplog.text

    monkeypatch.setenv("CSTRACK_WEIGHTS_URL", f"http://127.0.0.1:{_closed_port()}")  # no server now
    caplog.clear()
    with caplog.at_level("INFO", logger="cstrack"):
        assert pretrained_weights(NAME) == path
    assert len(server.requests) == 1 and "downloading" not in caplog.text


@pytest.mark.parametrize(
    ("sha256", "size"),
    [("0" * 64, None), (None, len(PAYLOAD) - 1000)],
    ids=["checksum", "size"],
)
def test_a_file_unlike_the_published_one_is_refused_and_not_kept(
    server: Server, cache: Path, monkeypatch: pytest.MonkeyPatch, sha256: str | None, size: int | None
) -> None:
    release = publish(monkeypatch, sha256, size)
    url = f"{server.url}/{FILE}"
    with pytest.raises(InputError) as info:
        pretrained_weights(NAME)
    message = str(info.value)
    assert message.startswith(f"{url}: ") and "\n" not in message
    assert f"expected {release.size} bytes with sha256 {release.sha256}" in message
    # what came: the whole file, or one byte more than published and no further
    received = PAYLOAD[: release.size + 1]
    assert f"{len(received)} bytes with sha256 {hashlib.sha256(received).hexdigest()}" in message
    assert not any((cache / "weights").iterdir())


def test_a_cached_file_is_checked_before_use(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file placed by hand (or damaged) in the cache is not used unless it is the published one."""
    release = publish(monkeypatch)
    placed = cache / "weights" / FILE
    placed.parent.mkdir(parents=True)
    placed.write_bytes(PAYLOAD)
    assert pretrained_weights(NAME) == placed
    placed.write_bytes(PAYLOAD[:-1] + b"x")
    with pytest.raises(InputError, match=f"sha256 {release.sha256}: not the published file; delete it"):
        pretrained_weights(NAME)


def test_no_server_is_one_line_saying_how_to_place_the_file(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = f"http://127.0.0.1:{_closed_port()}/weights-v1"
    monkeypatch.setenv("CSTRACK_WEIGHTS_URL", base)
    file = RELEASED["omc_mobilenetv2.pets"].file
    with pytest.raises(InputError) as info:
        pretrained_weights("omc_mobilenetv2.pets")
    message = str(info.value)
    assert message.startswith(f"cstrack cannot reach {base}/{file} (") and "\n" not in message
    assert f"; download {file} from {base} into {cache / 'weights'} " in message
    assert not any((cache / "weights").iterdir())


def test_a_missing_asset_is_the_same_one_line_error(
    server: Server, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(RELEASED, NAME, Release("absent.safetensors", "0" * 64, 1))
    with pytest.raises(InputError, match=r"^cstrack cannot reach .*/absent\.safetensors \(HTTP 404 "):
        pretrained_weights(NAME)


def test_the_suite_reads_superseded_weights_from_the_checkout() -> None:
    """tests/conftest.py points $CSTRACK_WEIGHTS_URL at weights/ (file://): a model out of the
    package is "downloaded" from there into the run's private cache, checked like any other."""
    release = RELEASED["omc_mobilenetv2.pets"]
    path = pretrained_weights("omc_mobilenetv2.pets")
    assert path.name == release.file and path.parent.name == "weights"
    assert file_sha256(path) == release.sha256
