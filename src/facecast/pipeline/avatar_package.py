"""A video avatar's package on disk: the folder layout and its ``avatar.json`` manifest
(format, version, the files, the facts about the person and the recording), reading
and validating one, and loading its parts for a render.
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from facecast.errors import InputError
from facecast.media.video_reader import VideoInfo, probe_video
from facecast.pipeline.dub_video import (
    PathLike,
)
from facecast.pipeline.face_tracking import FaceProfile
from facecast.pipeline.frames import (
    output_rate,
)
from facecast.pipeline.video_loop import Loop
from facecast.render.mouth_bank import MouthBank
from facecast.render.rig import MESH_POINTS

FORMAT = "facecast-video-avatar"
VERSION = 1
MANIFEST = "avatar.json"


IDLE_CLIP, IDLE_DATA, BANK_FILE = "idle.mp4", "idle.npz", "mouth_bank.npz"


THUMBNAIL, PREVIEW = "thumbnail.jpg", "preview.mp4"


@dataclass
class VideoAvatarInfo:
    """An avatar package as described by its ``avatar.json`` (paths made absolute)."""

    name: str
    folder: Path
    width: int
    height: int
    fps: float
    duration: float  # of the stored idle clip
    thumbnail: Path
    preview: Path
    source_duration: float
    frames_with_face: int  # in the recording (on the constant frame grid)
    mouth_samples: int  # own mouth interiors in the bank
    timings: dict[str, float] = field(default_factory=dict)
    frames: int = 0  # of the idle clip
    loop: tuple[int, int, int] = (0, 0, 0)  # (start, end, fade) in idle-clip frames
    source_frames: int = 0
    source_start: int = 0  # where in the recording the idle clip begins (frame)
    preview_duration: float = 0.0
    jaw_cancel: float = 1.0
    created: str = ""
    version: int = VERSION

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": self.version,
            "name": self.name,
            "width": self.width,
            "height": self.height,
            "fps": self.fps,
            "fps_fraction": _fraction_text(output_rate(self.fps)),
            "duration": self.duration,
            "frames": self.frames,
            "loop": {"start": self.loop[0], "end": self.loop[1], "fade": self.loop[2]},
            "thumbnail": THUMBNAIL,
            "preview": PREVIEW,
            "idle_clip": IDLE_CLIP,
            "idle_data": IDLE_DATA,
            "mouth_bank": BANK_FILE,
            "source_duration": self.source_duration,
            "source_frames": self.source_frames,
            "source_start": self.source_start,
            "frames_with_face": self.frames_with_face,
            "mouth_samples": self.mouth_samples,
            "preview_duration": self.preview_duration,
            "jaw_cancel": self.jaw_cancel,
            "created": self.created,
            "timings": dict(self.timings),
        }


def _fraction_text(rate: Fraction) -> str:
    return f"{rate.numerator}/{rate.denominator}"


def _invalid(folder: Path, why: str, reason: str) -> InputError:
    return InputError(
        f"{folder} is not a usable video avatar: {why}", code="avatar_invalid", reason=reason
    )


def _read_manifest(folder: Path, required: tuple[str, ...]) -> VideoAvatarInfo:
    if not folder.is_dir():
        raise _invalid(folder, "no such folder", "missing")
    try:
        meta = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise _invalid(folder, f"{MANIFEST} is missing", "no_manifest") from exc
    except (OSError, ValueError) as exc:
        raise _invalid(folder, f"{MANIFEST} cannot be read ({exc})", "bad_manifest") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise _invalid(folder, f"{MANIFEST} is not a facecast video avatar", "bad_manifest")
    if meta.get("version") != VERSION:
        raise _invalid(
            folder,
            f"version {meta.get('version')!r} is not supported "
            f"(this facecast reads version {VERSION})",
            "version",
        )
    try:
        loop = meta["loop"]
        info = VideoAvatarInfo(
            name=str(meta["name"]),
            folder=folder,
            width=int(meta["width"]),
            height=int(meta["height"]),
            fps=float(meta["fps"]),
            duration=float(meta["duration"]),
            thumbnail=folder / THUMBNAIL,
            preview=folder / PREVIEW,
            source_duration=float(meta["source_duration"]),
            frames_with_face=int(meta["frames_with_face"]),
            mouth_samples=int(meta["mouth_samples"]),
            timings={str(k): float(v) for k, v in dict(meta.get("timings", {})).items()},
            frames=int(meta["frames"]),
            loop=(int(loop["start"]), int(loop["end"]), int(loop["fade"])),
            source_frames=int(meta.get("source_frames", 0)),
            source_start=int(meta.get("source_start", 0)),
            preview_duration=float(meta.get("preview_duration", 0.0)),
            jaw_cancel=float(meta.get("jaw_cancel", 1.0)),
            created=str(meta.get("created", "")),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise _invalid(folder, f"{MANIFEST} lacks or garbles {exc}", "bad_manifest") from exc
    for name in required:
        if not (folder / name).is_file():
            raise _invalid(folder, f"{name} is missing", "missing_file")
    if info.frames < 2 or info.width < 2 or info.height < 2 or info.fps <= 0:
        raise _invalid(folder, "the idle clip's size or length is out of range", "bad_manifest")
    return info


@dataclass
class _Engine:
    """What rendering needs from a package, loaded."""

    info: VideoAvatarInfo
    fps: Fraction
    points: np.ndarray  # (frames, 468, 2) float32, idle-clip pixels
    presence: np.ndarray  # (frames,)
    loop: Loop
    profile: FaceProfile
    jaw_cancel: float
    colours: np.ndarray | None
    bank: MouthBank
    clip: VideoInfo


def _load_engine(folder: PathLike, *, need_preview: bool = True) -> _Engine:
    folder = Path(folder).absolute()
    # While the package is being made, everything but the preview is there.
    info = _read_manifest(
        folder, (IDLE_CLIP, IDLE_DATA, BANK_FILE) + ((THUMBNAIL, PREVIEW) if need_preview else ())
    )
    try:
        with np.load(folder / IDLE_DATA) as data:
            points = data["points"].astype(np.float32)
            presence = data["presence"].astype(np.float32)
            reference = data["reference"].astype(np.float32)
            width, open_gap = float(data["width"]), float(data["open_gap"])
            colours = data["colours"].astype(np.float64)
            jaw_cancel = float(data["jaw_cancel"])
            fps = Fraction(int(data["fps"][0]), int(data["fps"][1]))
        bank = MouthBank.load(folder / BANK_FILE)
        clip = probe_video(folder / IDLE_CLIP)
    except (
        OSError,
        EOFError,
        KeyError,
        ValueError,
        IndexError,
        ZeroDivisionError,
        zipfile.BadZipFile,
    ) as exc:
        raise _invalid(folder, f"its data cannot be read ({exc})", "bad_data") from exc
    except InputError as exc:
        raise _invalid(folder, f"its idle clip cannot be read ({exc.message})", "bad_data") from exc
    n = len(points)
    start, end, fade = info.loop
    if (
        points.shape[1:] != (MESH_POINTS, 2)
        or len(presence) != n
        or n != info.frames
        or reference.shape != (MESH_POINTS, 2)
        or not 0 <= start < end < n
        or not 0 <= fade <= start + 1
    ):
        raise _invalid(folder, "its landmark data does not match the idle clip", "bad_data")
    return _Engine(
        info,
        fps,
        points,
        presence,
        Loop(start, end, fade),
        FaceProfile(reference, width, open_gap),
        jaw_cancel,
        colours if np.isfinite(colours).all() and colours.shape == (2, 3) else None,
        bank,
        clip,
    )


def _write_manifest(folder: Path, info: VideoAvatarInfo) -> None:
    tmp = folder / f".{MANIFEST}.part"
    tmp.write_text(json.dumps(info.to_json(), indent=2, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, folder / MANIFEST)
