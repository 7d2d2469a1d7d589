"""What `track` leaves on disk, written so that a kill or Ctrl-C loses no tracked frame.

Each frame's MOT rows and JSON line go to a temporary file in one write as soon as the frame is
tracked (`StreamedFile`), so a webcam can run for days in constant memory and a kill keeps every
frame tracked; the temporary file becomes `NAME.txt` by a rename at the end, or
`NAME.partial.txt` after an interruption, and an earlier complete result stays until then. The
temporary files a killed run left are recovered by the next run into the folder
(`recover_stale_temporaries`). `SequenceWriter` is everything one sequence writes.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from cstrack.atomic import check_not_input, check_writable, temporary_path
from cstrack.data.mot import format_results, mot_class_ids
from cstrack.data.sources import FrameSource, check_unique_names
from cstrack.errors import InputError
from cstrack.models.classes import DEFAULT_CLASS_NAMES
from cstrack.pipeline.observers import FrameObserver
from cstrack.pipeline.render import TrackRenderer
from cstrack.pipeline.video import open_video_writer
from cstrack.pipeline.viewer import FrameViewer
from cstrack.tracking.rows import written_rows
from cstrack.tracking.track_state import Track

FORMATS = ("mot", "json")
SUFFIXES = {"mot": ".txt", "json": ".jsonl"}
PARTIAL = ".partial"
# Temporary names of `temporary_path` for the files `track` writes: .NAME.txt.PID.1a2b3c4d.tmp
_TEMPORARY = re.compile(
    r"^\.(?P<target>.+\.(?:txt|jsonl|yaml|csv|mp4|scores\.json))\.(?P<pid>\d+)\.[0-9a-f]{8}\.tmp(?:\.mp4)?$"
)
_TAIL = 1 << 16
MIN_VIDEO_SIDE = 2  # the smallest frame side that mp4v and H.264 (4:2:0) encode
CONFIG_HEADER = "The tracker configuration of this run (cstrack track --tracker-config reads it back)."

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class OutputOptions:
    """What `track` writes of each sequence (`check_track_options` checks the values): the
    `formats` streamed, a rendered video with `trails` frames of each track's path, the MOT-file
    filter of the JDE-family trackers (`min_area`, `max_aspect`), and the rows kept to be scored
    (`evaluate`)."""

    formats: tuple[str, ...] = ("mot",)
    save_video: bool = False
    trails: int = 30
    min_area: float | None = None
    max_aspect: float | None = None
    evaluate: bool = False


def result_paths(
    out_dir: Path, name: str, formats: tuple[str, ...], save_video: bool = False, evaluate: bool = False
) -> list[Path]:
    """The files a complete run of sequence `name` leaves in `out_dir` with these options."""
    suffixes = [SUFFIXES[kind] for kind in formats]
    suffixes += [".mp4"] * save_video + [".scores.json"] * evaluate
    return [out_dir / f"{name}{suffix}" for suffix in suffixes]


def partial_path(path: Path) -> Path:
    """Where the frames of an unfinished run go: NAME.partial.txt beside NAME.txt."""
    return path.with_name(f"{path.stem}{PARTIAL}{path.suffix}")


class StreamedFile:
    """Text appended under a temporary name, one `os.write` per frame so a kill keeps whole
    frames; renamed onto the target (or its partial name) when done."""

    def __init__(self, path: Path):
        self.path = path
        self.temporary = temporary_path(path)
        try:
            self._descriptor = os.open(self.temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except OSError as error:
            raise InputError(path, f"cannot write: {error.strerror or error}") from error
        self.frames = 0

    def write(self, text: str) -> None:
        """Append one frame's text; it reaches the OS (not only a buffer) before this returns."""
        data = memoryview(text.encode("utf-8"))
        while data:
            data = data[os.write(self._descriptor, data) :]
        self.frames += 1

    def discard(self) -> None:
        """Remove the temporary file: the target and its partial name stay as they were."""
        os.close(self._descriptor)
        self.temporary.unlink(missing_ok=True)

    def close(self, complete: bool) -> Path | None:
        """Rename to the target when `complete`, else to its partial name; None when nothing to keep."""
        os.fsync(self._descriptor)
        os.close(self._descriptor)
        if not complete and not self.frames:
            self.temporary.unlink(missing_ok=True)
            return None
        target = self.path if complete else partial_path(self.path)
        os.replace(self.temporary, target)
        return target


class VideoOutput:
    """An mp4 (H.264 with PyAV, else mp4v: `open_video_writer`) written under a temporary name and
    renamed on close."""

    def __init__(self, path: Path, frame_rate: float, size: tuple[int, int]):
        self.path = path
        if min(size) < MIN_VIDEO_SIDE:
            raise InputError(
                path,
                f"cannot write a video of {size[0]} x {size[1]} frames: the encoders need at least "
                f"{MIN_VIDEO_SIDE} x {MIN_VIDEO_SIDE} pixels (track without --save-video)",
            )
        self.temporary = temporary_path(path, ".tmp.mp4")
        self.size = size
        self.writer = open_video_writer(self.temporary, frame_rate, size)
        self.codec = self.writer.codec
        self.frames = 0

    def write(self, image: np.ndarray) -> None:
        self.writer.write(image)
        self.frames += 1

    def close(self, complete: bool) -> Path | None:
        """Rename to the target when `complete`, else to its partial name; None when nothing to keep."""
        self.writer.release()
        if not self.frames:
            self.temporary.unlink(missing_ok=True)
            return None
        target = self.path if complete else partial_path(self.path)
        os.replace(self.temporary, target)
        return target


def check_output_folder(folder: str | os.PathLike[str], sources: list[FrameSource] | None = None) -> None:
    """Refuse an output folder that is a file, lies under one, or cannot be written, before any frame;
    with the `sources` to track into it, also outputs that would merge or overwrite (`check_output_names`).

    Nothing is created: the nearest existing folder on the path is what must be writable.
    """
    if sources is not None:
        check_output_names(sources, Path(folder))
    check_writable(folder)


def check_output_names(sources: list[FrameSource], out_dir: Path) -> None:
    """Refuse, before any frame, outputs that would merge or overwrite: two sequences of one name
    (`D/train/SEQ` and `D/test/SEQ` would both write `SEQ.txt`), or an output file that is an
    input (`cstrack track v.mp4 --output . --save-video` would write `v.mp4` over the video)."""
    check_unique_names(sources)
    inputs = [Path(source.origin) for source in sources]
    for source in sources:
        for suffix in (*SUFFIXES.values(), ".mp4", ".scores.json"):
            path = out_dir / f"{source.name}{suffix}"
            for output in (path, partial_path(path)):
                check_not_input(output, inputs)


def prepare_output_folder(out_dir: Path, sources: list[FrameSource], recover: bool = True) -> None:
    """Check `out_dir` for the outputs of `sources` (`check_output_folder`) and create it; with
    `recover`, deal with the temporaries of killed runs there first (`recover_stale_temporaries`)."""
    check_output_folder(out_dir, sources)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise InputError(out_dir, f"cannot create the output folder: {error.strerror or error}") from error
    if recover:
        recover_stale_temporaries(out_dir)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return True


def _complete_lines_end(path: Path) -> int:
    """Size of `path` cut after its last newline, read from the end (the file may be large)."""
    with path.open("rb") as stream:
        end = stream.seek(0, os.SEEK_END)
        while end > 0:
            start = max(0, end - _TAIL)
            stream.seek(start)
            newline = stream.read(end - start).rfind(b"\n")
            if newline >= 0:
                return start + newline + 1
            end = start
    return 0


def recover_stale_temporaries(folder: Path) -> list[Path]:
    """Deal with the temporary files that killed runs (dead PIDs) left in `folder`.

    A MOT or JSON lines temporary holds whole frames up to the kill: it is cut after its last
    complete line and renamed to NAME.partial.txt / .jsonl, unless a newer partial or complete
    file is there (a retried batch task finished the source after its first worker was killed);
    the run's configuration (written whole before its first frame) becomes tracker.partial.yaml.
    Videos without their index and half-written scores cannot be read, so they are removed.
    Returns the partial files recovered.
    """
    recovered = []
    for path in folder.iterdir():
        match = _TEMPORARY.match(path.name)
        if match is None or _pid_alive(int(match["pid"])):
            continue
        target = folder / match["target"]
        partial = partial_path(target)
        try:
            readable = path.suffix == ".tmp" and target.suffix in (".txt", ".jsonl", ".yaml", ".csv")
            end = _complete_lines_end(path) if readable else 0
            newer = [kept for kept in (partial, target) if kept.exists()]
            if end == 0 or any(kept.stat().st_mtime >= path.stat().st_mtime for kept in newer):
                path.unlink()
                continue
            os.truncate(path, end)
            os.replace(path, partial)
        except OSError:
            continue  # another run is dealing with it, or it is not ours to touch
        recovered.append(partial)
        logger.warning(
            "cstrack: recovered the frames that killed run %s had tracked for %s into %s",
            match["pid"],
            target.name,
            partial,
        )
    return recovered


class SequenceWriter:
    """Where one sequence's tracked frames go: streamed files, and only what is needed in memory."""

    def __init__(
        self,
        source: FrameSource,
        out_dir: Path | None,
        options: OutputOptions,
        class_names: tuple[str, ...] = DEFAULT_CLASS_NAMES,
        viewer: FrameViewer | None = None,
        observers: tuple[FrameObserver, ...] = (),
    ):
        self.source = source
        self.viewer = viewer
        self.observers = observers
        #: Where the rendered video goes (None: no video, or no output folder to put it in).
        self.video_path = (
            out_dir / f"{source.name}.mp4" if options.save_video and out_dir is not None else None
        )
        self.last_frame: int | None = None
        self.class_names = class_names
        # One-class output keeps column 8 at -1 (pedestrian files as MOTChallenge writes them).
        self.class_ids = mot_class_ids(class_names) if len(class_names) > 1 else None
        self.out_dir = out_dir
        self.min_area, self.max_aspect = options.min_area, options.max_aspect
        self.streams: dict[str, StreamedFile] = {}
        try:
            if out_dir is not None:
                for kind in options.formats:
                    self.streams[kind] = StreamedFile(out_dir / f"{source.name}{SUFFIXES[kind]}")
        except InputError:
            for stream in self.streams.values():
                stream.close(complete=False)
            raise
        # --eval needs the (filtered) rows; they are bounded by the gt sequence's length.
        self.rows: list[np.ndarray] | None = [] if options.evaluate else None
        rendered = self.video_path is not None or viewer is not None
        self.renderer = TrackRenderer(options.trails, class_names) if rendered else None
        self.video: VideoOutput | None = None
        self.resized = False  # a frame of another size than the video's was scaled (and said)
        for observer in observers:
            observer.open(source, out_dir)

    def add(self, number: int, image: np.ndarray, tracks: list[Track], fps: float) -> bool:
        """Write one tracked frame everywhere; False when the viewer asked to stop after it."""
        self.last_frame = number
        rows = written_rows(number, tracks, self.class_ids, self.min_area, self.max_aspect)
        if self.rows is not None:
            # Scored as the MOT file holds them, so `cstrack eval` of it scores the same.
            self.rows.append(rows)
        if "mot" in self.streams:
            self.streams["mot"].write(format_results(rows))
        if "json" in self.streams:
            self.streams["json"].write(json.dumps(_frame_json(number, tracks, self.class_names)) + "\n")
        for observer in self.observers:
            observer.add(number, image, tracks)
        if self.renderer is None:
            return True
        canvas = self.renderer.draw(image, tracks, fps)
        for observer in self.observers:
            observer.draw(canvas)
        if self.video_path is not None:
            if self.video is None:
                height, width = image.shape[:2]
                self.video = VideoOutput(self.video_path, self.source.frame_rate, (width, height))
            self.video.write(self._video_sized(canvas, number))
        return self.viewer is None or self.viewer.show(canvas)

    def _video_sized(self, canvas: np.ndarray, number: int) -> np.ndarray:
        """`canvas` at the video's size (its first frame's): a writer drops frames of another size
        without an error, so a folder of mixed sizes is scaled, and said once."""
        assert self.video is not None
        height, width = canvas.shape[:2]
        size = self.video.size
        if (width, height) == size:
            return canvas
        if not self.resized:
            logger.warning(
                "cstrack: %s: frame %d is %d x %d, the video %d x %d (its first frame's): frames of "
                "other sizes are scaled to it in the video",
                self.source.name,
                number,
                width,
                height,
                *size,
            )
            self.resized = True
        return cv2.resize(canvas, size, interpolation=cv2.INTER_AREA)

    def table(self) -> np.ndarray:
        """The (M, 7) rows kept for --eval."""
        return np.vstack(self.rows) if self.rows else np.zeros((0, 7))

    @property
    def video_codec(self) -> str | None:
        """What the rendered video holds: h264 or mp4v; None without a video."""
        return None if self.video is None else self.video.codec

    def describe_partial(self, tracked: int, files: dict[str, Path]) -> str:
        """What an interrupted run that tracked `tracked` frames kept where (`files`, as `close`
        returned them), and that earlier complete results are untouched."""
        done = f"{tracked} frames of {self.source.name} tracked"
        if self.out_dir is None:
            return done
        kept = ", ".join(path.name for path in files.values())
        earlier = [output.path.name for output in self.streams.values() if output.path.exists()]
        if self.video is not None and self.video.path.exists():
            earlier.append(self.video.path.name)
        message = f"{done}, written to {kept}" if kept else f"{done}, nothing written"
        return message + (f"; the earlier complete {', '.join(earlier)} kept as it was" if earlier else "")

    def close(self, complete: bool) -> dict[str, Path]:
        """Rename every file to its final (or partial) name; the files kept, by kind."""
        outputs: dict[str, StreamedFile | VideoOutput] = dict(self.streams)
        if self.video is not None:
            outputs["video"] = self.video
        files: dict[str, Path] = {}
        for kind, output in outputs.items():
            kept = output.close(complete)
            if kept is not None:
                files[kind] = kept
        for observer in self.observers:
            files.update(observer.close(complete))
        return files


def _frame_json(frame: int, tracks: list[Track], class_names: tuple[str, ...]) -> dict[str, Any]:
    return {
        "frame": frame,
        "tracks": [
            {
                "id": t.track_id,
                "box_xyxy": [round(float(v), 2) for v in t.box_xyxy],
                "score": round(t.score, 4),
                "class": t.cls,
                "class_name": class_names[t.cls],
            }
            for t in tracks
        ],
    }
