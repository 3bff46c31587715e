"""Video avatars: a recording of a person analysed once, then rendered saying anything.

Creation (:func:`create_video_avatar`) reads the recording (MP4/MOV, H.264,
5 s to 10 min, as dubbing takes it) and makes one tracking pass over it,
scaled down to ``max_height`` where larger (:class:`FaceTracking` from
dubbing, with the scaling and a per-frame hook). The pass yields the smoothed
landmark series and where the face is, the person's profile (usual shut mouth,
width, opening, teeth and cavity colours) and calibration samples, small grey
thumbnails for matching frames, and the person's own mouth interiors at
different openings (:class:`facecast.render.mouth_bank.BankBuilder`). Then:

- the jaw-cancel gain is calibrated once (as a dub does per video);
- an *idle loop* is chosen: a stretch where the face is seen throughout,
  up to :data:`IDLE_MAX_S` long, whose end matches its start in picture and
  head pose (cross-faded at render), preferring calm stretches and longer ones;
- that stretch is written at the stored size (H.264, low CRF: the render
  re-encodes it once more) with its landmark series beside it, so rendering
  needs no face tracking at all;
- a thumbnail (eyes open, mouth shut) and a preview (the avatar speaking a
  sample sentence with the built-in voice) are made.

Everything is written to a hidden sibling folder and moved into place at the
end: a failed creation leaves nothing behind.

Rendering (:func:`render_video_avatar`) is the dub's render pass fed from the
stored package: speech -> mouth track -> the idle clip decoded (looped as
long as the speech lasts) -> each frame re-voiced (:class:`MouthDubber`, with
the interior of the mouth taken from the person's own bank where it has a
sample near the new opening) -> encoded with the speech, in two threads.

Package layout (``avatar.json`` names the files; paths in it are relative):
``idle.mp4`` (video only), ``idle.npz`` (landmarks, presence, loop, profile,
calibration), ``mouth_bank.npz``, ``thumbnail.jpg``, ``preview.mp4``.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np

from facecast.errors import InputError
from facecast.media import Mp4Writer
from facecast.media.colour import Colour, video_colour
from facecast.media.video_reader import DUB_LIMITS, VideoInfo, VideoLimits, probe_video
from facecast.motion.track import MouthTrack
from facecast.pipeline.dub_video import (
    CROSSFADE_S,
    POSE_POINTS,
    POSE_WEIGHT,
    FaceProfile,
    FaceTracking,
    Loop,
    PathLike,
    Progress,
    SpeechReady,
    calibrate_jaw,
    default_crf,
    encode_dub,
    face_profile,
    frame_track,
    jaw_gain,
    output_rate,
    prefetched,
    prepare_speech,
    rotate_upright,
    source_frames,
    source_output_rate,
)
from facecast.pipeline.specs import check_face_index
from facecast.render.dub import MouthDubber, mouth_gap
from facecast.render.mouth_bank import BankBuilder, MouthBank
from facecast.render.rig import EYES, MESH_POINTS
from facecast.render.video_face import FaceChoice
from facecast.timing import PhonemeTiming

FORMAT = "facecast-video-avatar"
VERSION = 1
MANIFEST = "avatar.json"
IDLE_CLIP, IDLE_DATA, BANK_FILE = "idle.mp4", "idle.npz", "mouth_bank.npz"
THUMBNAIL, PREVIEW = "thumbnail.jpg", "preview.mp4"

AVATAR_LIMITS = DUB_LIMITS  # any decodable video in MP4/MOV/MKV/WebM/AVI, 5-600 s, <= 300 MB
MIN_FACE_SHARE = 0.5  # the face must be seen in at least this share of the recording
IDLE_MIN_S = 4.0  # the idle loop needs at least this long a stretch with the face
IDLE_MAX_S = 30.0  # and is at most this long (longer loops repeat less, cost disk)
LOOP_THUMB_W = 24  # width of the grey thumbnails frames are matched on
# Loop choice: costs are in units of the recording's ordinary frame-to-frame change.
# A jump costing up to JUMP_UNSEEN ordinary steps does not show once cross-faded with
# the heads moved to the pose between them: below it, longer loops (fewer repeats of the
# same gestures in a long render) and calmer ones win.
JUMP_UNSEEN = 2.5
CALM_WEIGHT = 0.5  # per unit of mouth activity (the original mouth is taken back anyway)
MOTION_WEIGHT = 0.5  # per unit of head motion above the recording's usual
LENGTH_BONUS = 2.0  # a loop of IDLE_MAX_S is worth this much of a jump's cost
MAX_OFFSETS = 160  # loop lengths tried (evenly spread) on long recordings
STORE_CRF = 14  # the idle clip is re-encoded once more at render: keep it close
STORE_PRESET = "veryfast"
THUMB_MAX_SIDE = 640
JPEG_QUALITY = 90
BANK_EVERY = 2  # every this many frames is offered to the mouth bank
SEEK_BACK_S = 1.5  # writing the idle clip, the reader seeks this far before its start
PREVIEW_TEXT = ("Hello! This is my video avatar. Type anything you like, "
                "and I will say it for you.")
MAX_NAME = 120

_EYE_LIDS = ((159, 145), (386, 374))  # upper / lower lid midpoints, right and left eye
_EYE_R = list(EYES["right"]["upper"] + EYES["right"]["lower"])
_EYE_L = list(EYES["left"]["upper"] + EYES["left"]["lower"])


# --------------------------------------------------------------------------- the package


@dataclass
class VideoAvatarSpec:
    """What to clone: the recording, where the package goes, and its name."""

    video: PathLike
    folder: PathLike  # created; must not exist, or be empty
    name: str
    face_index: int = 0  # with several faces: 0 the largest in the first frame with faces
    face_point: tuple[float, float] | None = None  # or the face nearest this pixel (x, y)
    max_height: int = 720  # the stored clip is scaled down to this height when larger
    limits: VideoLimits = AVATAR_LIMITS

    def check(self) -> None:
        """The request's own rules (``bad_request``), before any file is touched."""
        if not isinstance(self.name, str) or not self.name.strip():
            raise InputError("the avatar needs a name", code="bad_request")
        if len(self.name) > MAX_NAME:
            raise InputError(f"the avatar's name is over {MAX_NAME} characters",
                             code="bad_request")
        check_face_index(self.face_index)
        if self.max_height < 64:
            raise InputError("max_height must be at least 64 pixels", code="bad_request")


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
            "format": FORMAT, "version": self.version, "name": self.name,
            "width": self.width, "height": self.height, "fps": self.fps,
            "fps_fraction": _fraction_text(output_rate(self.fps)),
            "duration": self.duration, "frames": self.frames,
            "loop": {"start": self.loop[0], "end": self.loop[1], "fade": self.loop[2]},
            "thumbnail": THUMBNAIL, "preview": PREVIEW, "idle_clip": IDLE_CLIP,
            "idle_data": IDLE_DATA, "mouth_bank": BANK_FILE,
            "source_duration": self.source_duration,
            "source_frames": self.source_frames, "source_start": self.source_start,
            "frames_with_face": self.frames_with_face, "mouth_samples": self.mouth_samples,
            "preview_duration": self.preview_duration,
            "jaw_cancel": self.jaw_cancel, "created": self.created,
            "timings": dict(self.timings),
        }


def _fraction_text(rate: Fraction) -> str:
    return f"{rate.numerator}/{rate.denominator}"


def _invalid(folder: Path, why: str, reason: str) -> InputError:
    return InputError(f"{folder} is not a usable video avatar: {why}", code="avatar_invalid",
                      reason=reason)


def load_video_avatar(folder: PathLike) -> VideoAvatarInfo:
    """The avatar package in ``folder``; InputError ``avatar_invalid`` when it is missing,
    unreadable or incomplete (``details["reason"]`` says which)."""
    return _read_manifest(Path(folder).absolute(),
                          (IDLE_CLIP, IDLE_DATA, BANK_FILE, THUMBNAIL, PREVIEW))


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
        raise _invalid(folder, f"version {meta.get('version')!r} is not supported "
                       f"(this facecast reads version {VERSION})", "version")
    try:
        loop = meta["loop"]
        info = VideoAvatarInfo(
            name=str(meta["name"]), folder=folder, width=int(meta["width"]),
            height=int(meta["height"]), fps=float(meta["fps"]),
            duration=float(meta["duration"]), thumbnail=folder / THUMBNAIL,
            preview=folder / PREVIEW, source_duration=float(meta["source_duration"]),
            frames_with_face=int(meta["frames_with_face"]),
            mouth_samples=int(meta["mouth_samples"]),
            timings={str(k): float(v) for k, v in dict(meta.get("timings", {})).items()},
            frames=int(meta["frames"]),
            loop=(int(loop["start"]), int(loop["end"]), int(loop["fade"])),
            source_frames=int(meta.get("source_frames", 0)),
            source_start=int(meta.get("source_start", 0)),
            preview_duration=float(meta.get("preview_duration", 0.0)),
            jaw_cancel=float(meta.get("jaw_cancel", 1.0)), created=str(meta.get("created", "")),
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
    info = _read_manifest(folder, (IDLE_CLIP, IDLE_DATA, BANK_FILE)
                          + ((THUMBNAIL, PREVIEW) if need_preview else ()))
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
    except (OSError, EOFError, KeyError, ValueError, IndexError, ZeroDivisionError,
            zipfile.BadZipFile) as exc:
        raise _invalid(folder, f"its data cannot be read ({exc})", "bad_data") from exc
    except InputError as exc:
        raise _invalid(folder, f"its idle clip cannot be read ({exc.message})", "bad_data") from exc
    n = len(points)
    start, end, fade = info.loop
    if (points.shape[1:] != (MESH_POINTS, 2) or len(presence) != n or n != info.frames
            or reference.shape != (MESH_POINTS, 2) or not 0 <= start < end < n
            or not 0 <= fade <= start + 1):
        raise _invalid(folder, "its landmark data does not match the idle clip", "bad_data")
    return _Engine(info, fps, points, presence, Loop(start, end, fade),
                   FaceProfile(reference, width, open_gap), jaw_cancel,
                   colours if np.isfinite(colours).all() and colours.shape == (2, 3) else None,
                   bank, clip)


# --------------------------------------------------------------------------- creation


def _loop_thumb(rgb: np.ndarray) -> np.ndarray:
    """A small grey picture of a frame, for matching frames (loop points, seeking)."""
    h, w = rgb.shape[:2]
    small = cv2.resize(rgb, (LOOP_THUMB_W, max(2, round(h * LOOP_THUMB_W / w))),
                       interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)


class _Collector:
    """The tracking pass's per-frame hook: loop thumbnails and the mouth bank."""

    def __init__(self) -> None:
        self.thumbs: list[np.ndarray] = []
        self.bank = BankBuilder(every=BANK_EVERY)

    def __call__(self, i: int, rgb: np.ndarray, pts: np.ndarray | None) -> None:
        thumb = _loop_thumb(rgb)
        while len(self.thumbs) < i:  # frames come in order, so this never runs
            self.thumbs.append(self.thumbs[-1] if self.thumbs else thumb)
        self.thumbs.append(thumb)
        if pts is not None:
            self.bank.offer(i, rgb, pts)


def _stored_size(width: int, height: int, max_height: int) -> tuple[int, int, float]:
    """The idle clip's (even) size and the scale from the recording to it."""
    if height <= max_height:
        return width, height, 1.0
    scale = max_height / height
    w = max(2, int(round(width * scale / 2)) * 2)
    h = min(max_height - max_height % 2, max(2, int(round(height * scale / 2)) * 2))
    return w, h, scale


def _check_spec(spec: VideoAvatarSpec) -> Path:
    spec.check()
    folder = Path(spec.folder).absolute()
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise InputError(f"{folder} already exists and is not an empty folder",
                         code="avatar_exists")
    return folder


def create_video_avatar(spec: VideoAvatarSpec, progress: Progress | None = None
                        ) -> VideoAvatarInfo:
    """Analyse ``spec.video`` once and write the avatar package to ``spec.folder``.

    Raises :class:`InputError` on bad input: the video check's codes
    (``video_too_short``, ``video_too_long``, ``file_too_large``,
    ``unsupported_codec``, ...), ``no_face`` (no face followed at all),
    ``face_lost`` (the face seen in too little of the recording, or never for
    :data:`IDLE_MIN_S` on end), ``face_not_found``,
    ``avatar_exists`` (the folder is not empty), ``bad_request``. Nothing is
    left behind unless it succeeds.
    """
    report = progress or (lambda _f, _s: None)
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    report(0.0, "checking video")
    folder = _check_spec(spec)
    info = probe_video(spec.video, spec.limits)
    fps = source_output_rate(info)
    src_w, src_h = (info.height, info.width) if info.rotation in (90, 270) else (
        info.width, info.height)
    src_w, src_h = src_w - src_w % 2, src_h - src_h % 2
    width, height, scale = _stored_size(src_w, src_h, spec.max_height)

    def transform(rgb: np.ndarray) -> np.ndarray:
        return cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA)

    point = None
    if spec.face_point is not None:
        point = (spec.face_point[0] * width / src_w, spec.face_point[1] * height / src_h)
    folder.parent.mkdir(parents=True, exist_ok=True)
    work = folder.parent / f".{folder.name}.part-{uuid.uuid4().hex[:8]}"
    work.mkdir()
    try:
        # 1. One tracking pass over the (scaled) recording.
        t = time.perf_counter()
        collect = _Collector()
        tracking = FaceTracking(info, fps, FaceChoice(spec.face_index, point), None,
                                transform=transform if scale < 1.0 else None,
                                on_frame=collect)
        est = max(1, round(info.duration * float(fps)))
        tracking.start()
        try:
            while not tracking.wait_done(timeout=0.5):
                report(0.02 + 0.58 * min(tracking.count / est, 1.0), "tracking face")
            series = tracking.series()
            samples = tracking.samples()
        finally:
            tracking.stop()
        timings["tracking"] = time.perf_counter() - t

        # 2. The person: profile, calibration, the idle loop, the mouth bank.
        report(0.6, "analysing")
        t = time.perf_counter()
        n = len(series)
        present = int(np.count_nonzero(series.presence > 0))
        name = Path(spec.video).name
        if series.tracked == 0 or present == 0:
            raise InputError(f"no face could be followed in video {name!r}", code="no_face")
        if present < MIN_FACE_SHARE * n:
            raise InputError(f"the face is seen in only {100 * present / n:.0f} % of video "
                             f"{name!r}; an avatar needs it in most of the recording",
                             code="face_lost", face_share=round(present / n, 3))
        profile = face_profile(series.points, series.presence)
        if profile is None:
            raise InputError(f"no face could be followed in video {name!r}", code="no_face")
        colours = series.colours
        dubber = MouthDubber(profile.reference, profile.width, colours=colours)
        jaw_cancel = calibrate_jaw(dubber, samples)
        thumbs = np.stack(collect.thumbs[:n]) if collect.thumbs else np.zeros((0, 1, 1))
        first, last, loop = choose_idle(series.points, series.presence, thumbs, float(fps))
        bank = collect.bank.build()
        timings["analysis"] = time.perf_counter() - t

        # 3. The idle clip, its landmarks, the bank and a thumbnail.
        t = time.perf_counter()
        points = series.points[first: last + 1].astype(np.float32)
        presence = series.presence[first: last + 1].astype(np.float32)
        thumb_at = _thumbnail_frame(points, presence)

        def written(k: int) -> None:
            report(0.62 + 0.23 * k / max(1, last + 1), "writing idle clip")

        check = collect.thumbs[first] if first < len(collect.thumbs) else None
        frames, still = _write_idle(info, fps, transform if scale < 1.0 else None, first, last,
                                    work / IDLE_CLIP, width, height, thumb_at, written, check)
        if frames < 2:
            raise InputError(f"too few frames could be decoded from {name!r}",
                             code="unreadable_video")
        if frames < len(points):  # the decoder gave fewer frames than tracking saw
            points, presence = points[:frames], presence[:frames]
            end = min(loop.end, frames - 1)
            loop = Loop(loop.start, end, loop.fade) if end > loop.start else Loop(0, end, 0)
        cols = colours if colours is not None else np.full((2, 3), np.nan)
        with (work / IDLE_DATA).open("wb") as fh:
            np.savez_compressed(
                fh, points=points, presence=presence, reference=profile.reference,
                width=np.float64(profile.width), open_gap=np.float64(profile.open_gap),
                colours=np.asarray(cols, np.float64), jaw_cancel=np.float64(jaw_cancel),
                fps=np.array([fps.numerator, fps.denominator], np.int64),
                loop=np.array([loop.start, loop.end, loop.fade], np.int64),
                source_start=np.int64(first))
        bank.save(work / BANK_FILE)
        _save_thumbnail(still, work / THUMBNAIL)
        timings["idle_clip"] = time.perf_counter() - t

        result = VideoAvatarInfo(
            name=spec.name.strip(), folder=folder, width=width, height=height,
            fps=float(fps), duration=frames / float(fps), thumbnail=folder / THUMBNAIL,
            preview=folder / PREVIEW, source_duration=info.duration,
            frames_with_face=present, mouth_samples=len(bank), timings=timings,
            frames=frames, loop=(loop.start, loop.end, loop.fade), source_frames=n,
            source_start=first, jaw_cancel=jaw_cancel,
            created=datetime.now(timezone.utc).isoformat(timespec="seconds"))
        _write_manifest(work, result)

        # 4. The preview: the avatar speaking a sample sentence.
        t = time.perf_counter()
        report(0.86, "rendering preview")
        preview = _render(_load_engine(work, need_preview=False),
                          AvatarRenderSpec(avatar=work, output=work / PREVIEW, text=PREVIEW_TEXT),
                          lambda f, _s: report(0.86 + 0.13 * f, "rendering preview"))
        result.preview_duration = preview.duration
        timings["preview"] = time.perf_counter() - t
        timings["total"] = time.perf_counter() - t0
        _write_manifest(work, result)

        # 5. Into place: an empty folder of that name is replaced (rename is atomic).
        if folder.is_dir():
            folder.rmdir()
        os.replace(work, folder)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    report(1.0, "done")
    return result


def _write_manifest(folder: Path, info: VideoAvatarInfo) -> None:
    tmp = folder / f".{MANIFEST}.part"
    tmp.write_text(json.dumps(info.to_json(), indent=2, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, folder / MANIFEST)


class _SeekFailed(Exception):
    """The seeking reader could not be trusted: read from the start instead."""


def _frames_from(info: VideoInfo, fps: Fraction, first: int, check: np.ndarray,
                 thumb: Callable[[np.ndarray], np.ndarray],
                 transform: Callable[[np.ndarray], np.ndarray] | None
                 ) -> Iterator[tuple[int, np.ndarray]]:
    """Source frames ``first``, ``first + 1``, ... by seeking near ``first`` instead of
    decoding everything before it (a ten-minute recording would be decoded twice).

    Only for constant-rate input at a standard rate, where frame ``k`` plays at
    ``k / fps`` and the constant-rate grid of :func:`source_frames` maps it to ``k``.
    The first frame is checked against the tracking pass's thumbnail of that frame;
    any doubt (a mismatch, a timestamp off the grid, a skipped index) raises
    :class:`_SeekFailed` (the caller then reads from the start).
    """
    if info.variable_rate or abs(info.fps - float(fps)) > 1e-3 * float(fps):
        raise _SeekFailed("not constant-rate at the output rate")
    container = av.open(str(info.path))
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        base, start = stream.time_base, stream.start_time or 0
        if base is None:
            raise _SeekFailed("no time base")
        target = max(0.0, first / float(fps) - SEEK_BACK_S)
        container.seek(start + int(target / base), stream=stream, backward=True)
        expected = first
        for frame in container.decode(stream):
            if frame.pts is None:
                raise _SeekFailed("a frame without a timestamp")
            exact = float((frame.pts - start) * base) * float(fps)
            index = round(exact)
            if abs(exact - index) > 0.1:
                raise _SeekFailed("a timestamp off the frame grid")
            if index < first:
                continue
            if index != expected:
                raise _SeekFailed(f"frame {index} came where {expected} was expected")
            rgb = rotate_upright(Colour.of(frame).frame_to_rgb(frame), info.rotation)
            h, w = rgb.shape[:2]
            if h % 2 or w % 2:
                rgb = rgb[: h - h % 2, : w - w % 2]
            if transform is not None:
                rgb = transform(rgb)
            if index == first and np.abs(thumb(rgb).astype(np.float32)
                                         - check.astype(np.float32)).mean() > 1.5:
                raise _SeekFailed("the frame found is not the frame tracked")
            yield index, rgb
            expected += 1
    finally:
        container.close()


def _write_idle(info: VideoInfo, fps: Fraction, transform: Any, first: int, last: int,
                path: Path, width: int, height: int, thumb_at: int, progress: Any,
                check: np.ndarray | None = None) -> tuple[int, np.ndarray]:
    """Re-encode source frames ``first..last`` (scaled) as the idle clip; also returns the
    frame ``thumb_at`` frames into it (for the thumbnail). With ``check`` (the tracking
    pass's thumbnail of frame ``first``) the reader seeks instead of decoding from the
    start, when it can be trusted to land on the same frames."""
    if check is not None and first / float(fps) > 2 * SEEK_BACK_S:
        try:
            frames = prefetched(_frames_from(info, fps, first, check, _loop_thumb, transform))
            return _encode_idle(frames, first, last, path, width, height, fps, thumb_at,
                                progress, video_colour(info.path))
        except _SeekFailed:
            pass  # the partial clip was dropped by the writer; read from the start
    frames = prefetched((i, transform(rgb) if transform is not None and i >= first else rgb)
                        for i, rgb in source_frames(info, fps))
    return _encode_idle(frames, first, last, path, width, height, fps, thumb_at, progress,
                        video_colour(info.path))


def _encode_idle(frames: Iterator[tuple[int, np.ndarray]], first: int, last: int, path: Path,
                 width: int, height: int, fps: Fraction, thumb_at: int, progress: Any,
                 colour: Colour) -> tuple[int, np.ndarray]:
    rate: int | Fraction = int(fps) if fps.denominator == 1 else fps
    still: np.ndarray | None = None
    # The recording's colour tags go with the idle clip, and from there into every render.
    with Mp4Writer(path, width, height, rate, None,  # type: ignore[arg-type]
                   crf=STORE_CRF, preset=STORE_PRESET, colour=colour) as writer:
        for i, frame in frames:
            if i < first:
                if i % 25 == 0:
                    progress(i)
                continue
            if frame.shape[:2] != (height, width):  # a stray odd size: fit it
                frame = cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)
            writer.write(frame)
            if i - first == thumb_at or still is None:
                still = frame.copy()
            if writer.frames_written % 25 == 0:
                progress(i)
            if i >= last:
                break
        written = writer.frames_written
    if still is None:
        still = np.zeros((height, width, 3), np.uint8)
    return written, still


def _eye_openness(points: np.ndarray) -> np.ndarray:
    """Per frame: the mean lid gap over the eye distance."""
    eye_r = points[:, _EYE_R].mean(axis=1)
    eye_l = points[:, _EYE_L].mean(axis=1)
    iod = np.maximum(np.linalg.norm(eye_l - eye_r, axis=1), 1e-3)
    lids = [np.linalg.norm(points[:, a] - points[:, b], axis=1) for a, b in _EYE_LIDS]
    return np.mean(lids, axis=0) / iod


def _thumbnail_frame(points: np.ndarray, presence: np.ndarray) -> int:
    """The idle-clip frame for the thumbnail: eyes open, mouth shut, face fully there."""
    eyes = _eye_openness(points)
    gaps = np.array([mouth_gap(p) for p in points])
    score = eyes / max(float(np.median(eyes)), 1e-3) - 4.0 * np.maximum(gaps, 0.0)
    score[presence < 1.0] = -np.inf
    return int(np.argmax(score)) if np.isfinite(score).any() else 0


def _save_thumbnail(rgb: np.ndarray, path: Path) -> None:
    h, w = rgb.shape[:2]
    scale = min(1.0, THUMB_MAX_SIDE / max(h, w))
    if scale < 1.0:
        rgb = cv2.resize(rgb, (max(2, round(w * scale)), max(2, round(h * scale))),
                         interpolation=cv2.INTER_AREA)
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                            [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise RuntimeError("the thumbnail could not be encoded")
    path.write_bytes(data.tobytes())


# --------------------------------------------------------------------------- the idle loop


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    padded = np.concatenate([[False], mask, [False]])
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


def choose_idle(points: np.ndarray, presence: np.ndarray, thumbs: np.ndarray, fps: float,
                max_s: float = IDLE_MAX_S, min_s: float = IDLE_MIN_S
                ) -> tuple[int, int, Loop]:
    """The stretch of the recording to store as the idle loop: ``(first, last, loop)``,
    the loop in frames of the stretch.

    Over every loop length from ``min_s`` to ``max_s`` and every start where the
    face is fully present from the cross-fade's first frame to the loop's end,
    the cost of the jump (picture and head-pose difference over the cross-fade,
    in units of the recording's usual frame-to-frame change; beyond
    :data:`JUMP_UNSEEN` in full, below it a little) plus a little for mouth
    activity and head motion inside the stretch, less a bonus for length.
    Raises ``face_lost`` when no stretch of ``min_s`` has the face throughout.
    """
    n = len(points)
    fade = max(2, round(CROSSFADE_S * fps))
    ok = presence >= 1.0
    longest = max((b - a for a, b in _runs(ok)), default=0)
    l_min = max(2 * fade + 2, round(min_s * fps))
    if longest - fade + 1 < l_min:
        raise InputError(f"the face is never seen for {min_s:g} s on end (longest "
                         f"{longest / fps:.1f} s): an avatar needs a stretch that long",
                         code="face_lost")
    l_max = max(l_min, min(round(max_s * fps), longest - fade + 1))
    # Features per frame: a small grey picture and the head's pose points (IOD units).
    eye_r = points[:, _EYE_R].mean(axis=1)
    eye_l = points[:, _EYE_L].mean(axis=1)
    iod_all = np.linalg.norm(eye_l - eye_r, axis=1)
    iod = float(np.median(iod_all[ok])) if ok.any() else 1.0
    pose = points[:, POSE_POINTS].astype(np.float64) / max(iod, 1e-3)
    pic = thumbs.reshape(len(thumbs), -1).astype(np.float32) / 255.0
    if len(pic) < n:
        pic = np.concatenate([pic, np.repeat(pic[-1:], n - len(pic), axis=0)]) if len(pic) \
            else np.zeros((n, 1), np.float32)
    pic = pic[:n]

    def distance(lag: int) -> np.ndarray:
        """Frame i against frame i + lag, for every i."""
        dp = np.sqrt(np.mean((pic[lag:] - pic[: n - lag]) ** 2, axis=1))
        dq = np.linalg.norm(pose[lag:] - pose[: n - lag], axis=2).mean(axis=1)
        return dp + POSE_WEIGHT * dq

    step = distance(1)
    usual = float(np.median(step[ok[1:] & ok[:-1]])) if (ok[1:] & ok[:-1]).any() else 1.0
    usual = max(usual, 1e-4)
    # Per-frame activity, summed with prefix sums for any stretch.
    gaps = np.array([mouth_gap(p) if ok[i] else 0.0 for i, p in enumerate(points)])
    act = np.abs(np.diff(gaps, prepend=gaps[:1]))
    act /= max(float(np.median(act[ok])) if ok.any() else 1.0, 1e-4)
    motion = np.concatenate([[0.0], step]) / usual
    bad = np.concatenate([[0], np.cumsum(~ok)])
    act_sum = np.concatenate([[0.0], np.cumsum(act)])
    motion_sum = np.concatenate([[0.0], np.cumsum(motion)])
    lags = np.arange(l_min, l_max + 1)
    if len(lags) > MAX_OFFSETS:
        lags = np.unique(np.linspace(l_min, l_max, MAX_OFFSETS).round().astype(int))
    best: tuple[float, int, int] | None = None
    kernel = np.ones(fade) / fade
    for lag in lags:
        d = distance(int(lag)) / usual  # d[i]: frame i vs frame i + lag
        # Jumping from end e = s + lag back to start s: the mean over the fade before them.
        cost = np.convolve(d, kernel, mode="valid")  # cost[k] covers d[k .. k + fade - 1]
        s = np.arange(fade - 1, fade - 1 + len(cost))  # the start each cost belongs to
        e = s + lag
        lo = s - fade + 1
        keep = e < n
        s, e, lo, cost = s[keep], e[keep], lo[keep], cost[keep]
        if not len(s):
            continue
        whole = bad[e + 1] - bad[lo] == 0
        if not whole.any():
            continue
        span = (e - lo + 1).astype(np.float64)
        calm = (act_sum[e + 1] - act_sum[lo]) / span
        still = (motion_sum[e + 1] - motion_sum[lo]) / span
        total = (np.maximum(cost - JUMP_UNSEEN, 0.0) + 0.05 * cost + CALM_WEIGHT * calm
                 + MOTION_WEIGHT * np.maximum(still - 1.0, 0.0)
                 - LENGTH_BONUS * lag / max(1.0, max_s * fps))
        total[~whole] = np.inf
        k = int(np.argmin(total))
        if np.isfinite(total[k]) and (best is None or total[k] < best[0]):
            best = (float(total[k]), int(s[k]), int(e[k]))
    if best is None:  # cannot happen once a long enough run exists; kept for safety
        a, b = max(_runs(ok), key=lambda r: r[1] - r[0])
        return a, b - 1, Loop(0, b - 1 - a, 0)
    _, s, e = best
    first = s - fade + 1
    return first, e, Loop(s - first, e - first, fade)


# --------------------------------------------------------------------------- rendering


@dataclass
class AvatarRenderSpec:
    """What the avatar says: ``audio`` (optionally with its ``transcript``) or ``text``
    (with an optional ``voice``)."""

    avatar: PathLike  # the avatar folder
    output: PathLike
    audio: PathLike | None = None
    text: str | None = None
    voice: str | None = None
    transcript: str | None = None
    # x264 speed/size trade-off. "ultrafast" (not a dub's "superfast"): at 720p it takes
    # ~60 % of superfast's encoding time (the largest cost per frame once no face is
    # tracked), for files ~40 % larger at the same CRF and ~1 dB less PSNR (~43 dB).
    preset: str = "ultrafast"
    crf: int | None = None  # None: as a dub of a video this size (16; 14 when small)
    export_visemes: PathLike | None = None  # .json (facecast track) or .tsv (Rhubarb)
    on_speech: SpeechReady | None = None  # the output's length, before the render starts


@dataclass
class AvatarRenderResult:
    output: Path
    duration: float
    frames: int
    width: int
    height: int
    fps: float
    timings: dict[str, float] = field(default_factory=dict)
    loops: int = 0  # how often the idle clip jumped back to its loop start
    own_mouth_frames: int = 0  # open-mouth frames drawn from the person's own mouth
    painted_mouth_frames: int = 0  # open-mouth frames the bank had nothing near for
    track: MouthTrack | None = None
    phonemes: list[PhonemeTiming] = field(default_factory=list)


def render_video_avatar(spec: AvatarRenderSpec, progress: Progress | None = None
                        ) -> AvatarRenderResult:
    """Render the avatar in ``spec.avatar`` speaking the new speech into ``spec.output``.

    Raises :class:`InputError`: ``avatar_invalid`` (missing or broken package),
    the speech's codes (``audio_too_short``, ``audio_too_long``, ``bad_request``
    ...). Nothing is left at the output path unless it succeeds.
    """
    report = progress or (lambda _f, _s: None)
    report(0.0, "loading avatar")
    return _render(_load_engine(spec.avatar), spec, report)


def _render(engine: _Engine, spec: AvatarRenderSpec, report: Progress) -> AvatarRenderResult:
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    report(0.01, "preparing speech")
    audio, phonemes = prepare_speech(spec)
    track = frame_track(audio, phonemes, engine.fps)
    if spec.export_visemes:
        from facecast.motion.export import save_track

        save_track(track, spec.export_visemes)
    timings["speech"] = time.perf_counter() - t0
    if spec.on_speech is not None:
        spec.on_speech(len(track) / float(engine.fps))

    t = time.perf_counter()
    dubber = MouthDubber(engine.profile.reference, engine.profile.width,
                         jaw_gain=jaw_gain(engine.profile, track), jaw_cancel=engine.jaw_cancel,
                         colours=engine.colours, bank=engine.bank)
    points, presence = engine.points, engine.presence
    n_src = len(points)

    def frame_data(i: int) -> tuple[np.ndarray, float] | None:
        return (points[i], float(presence[i])) if 0 <= i < n_src else None

    n_out = len(track)

    def rendered(k: int) -> None:
        report(0.03 + 0.97 * min(k / n_out, 1.0), "rendering")

    width, height = engine.info.width, engine.info.height
    crf = spec.crf if spec.crf is not None else default_crf(width, height)
    timings["setup"] = time.perf_counter() - t
    t = time.perf_counter()
    frames = encode_dub(spec.output, engine.clip, engine.fps, frame_data, n_src, dubber, track,
                        engine.loop, audio, width, height, rendered, crf=crf, preset=spec.preset)
    timings["render"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t0
    report(1.0, "done")
    loop = engine.loop
    loops = max(0, -(-(frames - (loop.end + 1)) // loop.period)) if loop.period > 0 else 0
    own, painted = dubber.own_mouth_frames
    fps = float(engine.fps)
    return AvatarRenderResult(Path(spec.output), frames / fps, frames, width, height, fps,
                              timings, loops, own, painted, track, phonemes)
