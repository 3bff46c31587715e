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

Parts live in modules of their own: the package on disk
(:mod:`facecast.pipeline.avatar_package`), the idle loop's choice
(:mod:`facecast.pipeline.idle_loop`), writing the idle clip and thumbnail
(:mod:`facecast.pipeline.idle_clip`).
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from facecast.errors import InputError
from facecast.media.video_reader import DUB_LIMITS, VideoLimits, probe_video
from facecast.motion.track import MouthTrack
from facecast.pipeline.avatar_package import (  # the public ones re-exported: see __all__
    BANK_FILE,
    FORMAT,
    IDLE_CLIP,
    IDLE_DATA,
    MANIFEST,
    PREVIEW,
    THUMBNAIL,
    VERSION,
    VideoAvatarInfo,
    _Engine,
    _load_engine,
    _read_manifest,
    _write_manifest,
)
from facecast.pipeline.dub_video import (
    PathLike,
    Progress,
    SpeechReady,
    calibrate_jaw,
    caption_burner,
    default_crf,
    encode_dub,
    speech_track,
)
from facecast.pipeline.face_tracking import FaceTracking, face_profile, jaw_gain
from facecast.pipeline.frames import (
    source_output_rate,
)
from facecast.pipeline.idle_clip import (
    STORE_CRF,
    STORE_PRESET,
    _save_thumbnail,
    _stored_size,
    _thumbnail_frame,
    _write_idle,
)
from facecast.pipeline.idle_loop import IDLE_MAX_S, IDLE_MIN_S, _loop_thumb, choose_idle
from facecast.pipeline.specs import check_face_index
from facecast.pipeline.video_loop import Loop
from facecast.render.dub import MouthDubber
from facecast.render.mouth_bank import BankBuilder
from facecast.render.video_face import FaceChoice
from facecast.timing import PhonemeTiming

if TYPE_CHECKING:
    from facecast.captions import CaptionStyle, Cue

# The use case, and the parts of it that moved to their own modules (importers of this
# module keep working).
__all__ = [
    "AVATAR_LIMITS",
    "BANK_FILE",
    "FORMAT",
    "IDLE_CLIP",
    "IDLE_DATA",
    "IDLE_MAX_S",
    "IDLE_MIN_S",
    "MANIFEST",
    "PREVIEW",
    "STORE_CRF",
    "STORE_PRESET",
    "THUMBNAIL",
    "VERSION",
    "AvatarRenderResult",
    "AvatarRenderSpec",
    "VideoAvatarInfo",
    "VideoAvatarSpec",
    "choose_idle",
    "create_video_avatar",
    "load_video_avatar",
    "render_video_avatar",
]

AVATAR_LIMITS = DUB_LIMITS  # any decodable video in MP4/MOV/MKV/WebM/AVI, 5-600 s, <= 300 MB
MIN_FACE_SHARE = 0.5  # the face must be seen in at least this share of the recording
BANK_EVERY = 2  # every this many frames is offered to the mouth bank
PREVIEW_TEXT = ("Hello! This is my video avatar. Type anything you like, "
                "and I will say it for you.")
MAX_NAME = 120


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


def load_video_avatar(folder: PathLike) -> VideoAvatarInfo:
    """The avatar package in ``folder``; InputError ``avatar_invalid`` when it is missing,
    unreadable or incomplete (``details["reason"]`` says which)."""
    return _read_manifest(Path(folder).absolute(),
                          (IDLE_CLIP, IDLE_DATA, BANK_FILE, THUMBNAIL, PREVIEW))


# --------------------------------------------------------------------------- creation


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
    captions: Sequence[PathLike] = ()  # caption files to write (.srt / .vtt)
    burn_captions: CaptionStyle | None = None  # and/or the captions drawn into the picture

    @property
    def wants_captions(self) -> bool:
        return bool(self.captions) or self.burn_captions is not None


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
    captions: list[Cue] = field(default_factory=list)
    captions_source: str | None = None  # "tts", "transcript" or "recognised"


def render_video_avatar(spec: AvatarRenderSpec, progress: Progress | None = None
                        ) -> AvatarRenderResult:
    """Render the avatar in ``spec.avatar`` speaking the new speech into ``spec.output``.

    Raises :class:`InputError`: ``avatar_invalid`` (missing or broken package),
    the speech's codes (``audio_too_short``, ``audio_too_long``, ``bad_request``
    ...), ``bad_captions`` and ``captions_need_text``. Nothing is left at the output
    path (or the caption files') unless it succeeds.
    """
    report = progress or (lambda _f, _s: None)
    if spec.wants_captions:
        from facecast.pipeline.captioning import check_captions

        check_captions(spec.captions, spec.burn_captions)  # before the package is read
    report(0.0, "loading avatar")
    return _render(_load_engine(spec.avatar), spec, report)


def _render(engine: _Engine, spec: AvatarRenderSpec, report: Progress) -> AvatarRenderResult:
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    report(0.01, "preparing speech")
    audio, phonemes, captions, track = speech_track(spec, engine.fps)
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
                        engine.loop, audio, width, height, rendered, crf=crf, preset=spec.preset,
                        burner=caption_burner(captions, spec.burn_captions, width, height,
                                              engine.fps))
    timings["render"] = time.perf_counter() - t
    if captions is not None:
        from facecast.pipeline.captioning import save_captions

        save_captions(captions, spec.captions)  # with the video, not without it
    timings["total"] = time.perf_counter() - t0
    report(1.0, "done")
    loop = engine.loop
    loops = max(0, -(-(frames - (loop.end + 1)) // loop.period)) if loop.period > 0 else 0
    own, painted = dubber.own_mouth_frames
    fps = float(engine.fps)
    return AvatarRenderResult(Path(spec.output), frames / fps, frames, width, height, fps,
                              timings, loops, own, painted, track, phonemes,
                              captions=captions.cues if captions else [],
                              captions_source=captions.source if captions else None)
