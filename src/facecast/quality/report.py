"""The quality report every render, dub and video-avatar render comes with.

It runs the offline lip-sync measure (:mod:`facecast.quality.lipsync`) on the
finished MP4, from the outside, and says in plain words what it sees: in what
share of the frames a face was found, the lag between mouth and sound, the sync
r, how much the mouth moves, and a verdict (``good`` / ``check`` / ``poor``)
with its reasons ("mouth barely moves", "face lost in 12 % of frames").

The face mesh costs about as much per frame as the renderer spends making one,
so the report measures a sample: every :data:`SAMPLE_STRIDE`-th frame of one
stretch of the video (from the keyframe before its middle part), as long as
:data:`COST_SHARE` of the render's own time pays for (between
:data:`MIN_WINDOW_S` and :data:`MAX_WINDOW_S`). :func:`cheap_enough` tells a caller whether even the
shortest sample fits that share (the CLI's ``--score`` default).

The verdict's thresholds are gathered below with the calibration they rest on
(bench/README.md, "How the lip-sync measure reads").
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from facecast.errors import InputError
from facecast.media import Audio, load_audio
from facecast.quality.lipsync import (
    FROZEN_MOTION,
    LipTracker,
    audio_start_offset,
    lip_motion,
    open_video,
    score_series,
    shift_audio,
)
from facecast.quality.words import percent, summary_line

PathLike = str | os.PathLike[str]
Verdict = Literal["good", "check", "poor"]

# ----------------------------------------------------------------- what it may cost

# The report may take this share of the render's own time (the bar).
COST_SHARE = 0.10
# Mesh every 2nd frame: 12.5 samples/s at 25 fps still resolve the 3-6 Hz of
# syllables, and the lip series is interpolated onto a 100 Hz grid anyway.
SAMPLE_STRIDE = 2
# Face detection + refined face mesh per measured frame (7.8 ms measured on the
# 2-core bench machine, 512x512 renders); decoding every frame of the stretch and
# converting the measured ones to RGB, per megapixel of frame (about 6 ms for a
# 1080p frame: bench/README.md, "Quality report").
MESH_COST_S = 0.008
DECODE_COST_PER_MPIXEL_S = 0.003
# Starting mediapipe's two graphs and reading the soundtrack.
FIXED_COST_S = 0.15
# Below 4 s the 1 s high-pass leaves too little for the mouth's motion or the
# face share to mean much; past 20 s the lip-sync r has settled (calibration:
# judge 20 s or more), so a longer render is judged on 20 s from its middle.
MIN_WINDOW_S = 4.0
MAX_WINDOW_S = 20.0
# Frames are converted to RGB at full size: swscale's YUV->RGB alone takes about
# 1-2 ms at 1080p, while scaling in the same pass costs 7-10 ms (measured); the
# tracker then cuts and shrinks just the face (a 256 px crop).

# ----------------------------------------------------------------- what it judges by

# Face found in fewer of the measured frames than this: the video is poor; in
# fewer than FACE_CHECK it is worth a look (a rendered face is found in every
# frame; a turn of the head or a hand can hide it for a moment).
FACE_POOR = 0.50
FACE_CHECK = 0.95
# Mouth motion: the standard deviation of the inner-lip gap over the eye distance
# after a 1 s high-pass. Real speakers in shared/media measure 0.013-0.055; a
# still photo's mouth measures under 0.006 (the mesh's own jitter).
MOTION_LOW = 0.010  # below the quietest real speaker, with margin for mesh noise
MOTION_HIGH = 0.080  # well above the widest real speaker: a flapping mouth
# Sync r (peak Pearson r of the high-passed lip gap against the 1-3 kHz sound
# envelope). Real speakers with their own audio reach about 0.4; other people's
# speech gives 0.05-0.3. Over 20 s: r >= R_GOOD is in sync, r < R_POOR is not.
R_GOOD = 0.30
R_POOR = 0.15
# Clips shorter than this give chance peaks up to 0.45 even with foreign audio,
# so r alone cannot make them 'good' (nor, with a moving mouth, 'poor').
RELIABLE_S = 15.0
# Mouth/sound lag judged acceptable (ms, positive = lips lead the sound). Real
# videos with their own audio peak at 0..+120 ms; ITU-R BT.1359 finds sound
# that leads the picture noticeable sooner than sound that trails it.
LAG_OK_MS = (-80.0, 200.0)


@dataclass
class QualityReport:
    """What the lip-sync measure saw on one video (see the module docstring).

    ``face_found_share`` is over the measured frames; ``lag_ms`` (positive: the
    lips lead the sound) and ``r`` are None when there was no face or no sound
    to compare; ``motion`` is None without a face. ``reasons`` say why the
    verdict is not ``good`` (empty when it is); ``note`` is a caveat that does
    not change it.
    """

    verdict: Verdict
    reasons: list[str]
    face_found_share: float
    lag_ms: float | None
    r: float | None
    motion: float | None
    frames_measured: int
    seconds_measured: float
    video_seconds: float
    note: str = ""
    seconds_taken: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """The report as the API's ``result.quality`` (rounded for reading)."""

        def rnd(v: float | None, n: int) -> float | None:
            return None if v is None else round(v, n)

        return {"verdict": self.verdict, "reasons": list(self.reasons), "note": self.note,
                "face_found_share": round(self.face_found_share, 3),
                "lag_ms": rnd(self.lag_ms, 0), "r": rnd(self.r, 3),
                "motion": rnd(self.motion, 4), "frames_measured": self.frames_measured,
                "seconds_measured": round(self.seconds_measured, 2),
                "video_seconds": round(self.video_seconds, 2),
                "seconds_taken": round(self.seconds_taken, 2)}

    def summary(self) -> str:
        """One line for the CLI: the verdict, its reasons, then the figures."""
        return summary_line(self.to_dict())


# ----------------------------------------------------------------- the sample


def window_seconds(duration: float, fps: float, render_seconds: float | None,
                   pixels: int = 512 * 512) -> float:
    """How many seconds of a ``duration`` s video the report measures, given that the
    render took ``render_seconds`` (None: no bound but :data:`MAX_WINDOW_S`)."""
    if render_seconds is None:
        return min(duration, MAX_WINDOW_S)
    per_s = _cost_per_second(fps, pixels)
    affordable = (COST_SHARE * render_seconds - FIXED_COST_S) / per_s
    return min(duration, max(MIN_WINDOW_S, min(MAX_WINDOW_S, affordable)))


def _cost_per_second(fps: float, pixels: int) -> float:
    """Predicted report cost per second of video measured."""
    return fps * (MESH_COST_S / SAMPLE_STRIDE + DECODE_COST_PER_MPIXEL_S * pixels / 1e6)


def predicted_cost(duration: float, fps: float, render_seconds: float | None,
                   pixels: int = 512 * 512) -> float:
    """Seconds the report is expected to take on such a video (see :data:`MESH_COST_S`)."""
    window = window_seconds(duration, fps, render_seconds, pixels)
    return FIXED_COST_S + window * _cost_per_second(fps, pixels)


def cheap_enough(duration: float, fps: float, render_seconds: float, pixels: int = 512 * 512
                 ) -> bool:
    """Whether the report fits in :data:`COST_SHARE` of the render's time."""
    return predicted_cost(duration, fps, render_seconds, pixels) \
        <= COST_SHARE * render_seconds


def _sample(path: Path, window: float | None, render_seconds: float | None
            ) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Lip openings of every :data:`SAMPLE_STRIDE`-th frame of the measured stretch:
    ``(times_s, opening, video_seconds, seconds_measured)``.

    With ``render_seconds`` the stretch also ends once the report has spent its
    share of that time (but not before :data:`MIN_WINDOW_S`): the costs above are a
    quiet machine's, and a loaded one must not overrun the share."""
    started = time.perf_counter()
    stop_at = math.inf if render_seconds is None or window is not None else \
        started + COST_SHARE * render_seconds - FIXED_COST_S
    times: list[float] = []
    values: list[float] = []
    tracker = LipTracker()
    try:
        with open_video(path) as (container, stream):
            base = float(stream.time_base) if stream.time_base else 1 / 25
            start_pts = stream.start_time or 0
            fps = float(stream.average_rate or 25)
            if stream.duration:
                duration = float(stream.duration * base)
            elif container.duration:
                duration = container.duration / 1e6
            else:
                duration = (stream.frames or 0) / fps
            w, h = stream.codec_context.width, stream.codec_context.height
            if window is None:
                window = window_seconds(duration, fps, render_seconds, w * h)
            aim = max(0.0, (duration - window) / 2)
            if aim > 0:
                # Start at the keyframe before the middle stretch: every frame from a
                # keyframe on must be decoded anyway, so the window begins where
                # decoding does (the start, for a render shorter than its GOP).
                container.seek(start_pts + int(aim / base), stream=stream, backward=True)
            t0: float | None = None
            end: float | None = None
            for i, frame in enumerate(container.decode(stream)):
                t = float((frame.pts - start_pts) * base) if frame.pts is not None else i / fps
                if t0 is None:
                    t0 = t
                if t >= t0 + window - 1e-6 or (t >= t0 + MIN_WINDOW_S - 1e-6
                                               and time.perf_counter() > stop_at):
                    end = t
                    break
                if i % SAMPLE_STRIDE == 0:
                    times.append(t)
                    values.append(tracker.opening(frame.to_ndarray(format="rgb24")))
    finally:
        tracker.close()
    t_arr = np.asarray(times, dtype=np.float64)
    measured = 0.0 if t0 is None else (end if end is not None else duration) - t0
    return t_arr, np.asarray(values, dtype=np.float64), duration, measured


# ----------------------------------------------------------------- the report


def quality_report(video: PathLike, *, render_seconds: float | None = None,
                   window_s: float | None = None) -> QualityReport:
    """Measure ``video`` (an MP4 with its soundtrack) and judge it.

    ``render_seconds`` (the render's own time) bounds the sample to
    :data:`COST_SHARE` of it; ``window_s`` sets the measured stretch outright.
    Raises :class:`InputError` (``unreadable_video``, ``no_video_stream``) when the
    file cannot be read; a video without sound is judged on its face and mouth.
    """
    started = time.perf_counter()
    path = Path(video)
    times, opening, duration, measured = _sample(path, window_s, render_seconds)
    frames = len(times)
    faces = int(np.isfinite(opening).sum())
    share = faces / frames if frames else 0.0
    lag: float | None = None
    r: float | None = None
    try:
        audio: Audio | None = shift_audio(load_audio(path, 16_000), audio_start_offset(path))
    except InputError:
        audio = None  # no soundtrack, or none that decodes: nothing to sync against
    if audio is not None and faces >= 2:
        score = score_series(times, opening, audio)
        if math.isfinite(score.peak_correlation):
            lag, r = score.best_lag_ms, score.peak_correlation
    moved = lip_motion(times, opening) if faces else float("nan")
    motion = None if np.isnan(moved) else moved
    verdict, reasons, note = judge(share, lag, r, motion, measured, has_audio=audio is not None)
    return QualityReport(verdict, reasons, share, lag, r, motion, frames, measured, duration,
                         note, time.perf_counter() - started)


def judge(face_share: float, lag_ms: float | None, r: float | None, motion: float | None,
          seconds: float, *, has_audio: bool = True) -> tuple[Verdict, list[str], str]:
    """The verdict, its reasons and a caveat, from the measured figures (the
    thresholds above); the worst finding decides."""
    poor: list[str] = []
    check: list[str] = []
    note = ""
    if face_share <= 0.0:
        return "poor", ["no face found"], note
    lost = f"face lost in {percent(1 - face_share)} of frames"
    if face_share < FACE_POOR:
        poor.append(lost)
    elif face_share < FACE_CHECK:
        check.append(lost)
    if motion is not None:
        if motion < FROZEN_MOTION:
            poor.append("mouth barely moves")
        elif motion < MOTION_LOW:
            check.append("mouth moves little")
        elif motion > MOTION_HIGH:
            check.append("mouth moves more than a speaker's")
    moving = motion is not None and motion >= MOTION_LOW
    if not has_audio:
        note = "no soundtrack to check the sync against"
    elif r is None:
        check.append("sync not measurable")
    elif seconds >= RELIABLE_S:
        if r < R_POOR:
            poor.append(f"mouth does not follow the sound (r {r:.2f})")
        elif r < R_GOOD:
            check.append(f"mouth follows the sound weakly (r {r:.2f})")
        elif lag_ms is not None and not LAG_OK_MS[0] <= lag_ms <= LAG_OK_MS[1]:
            check.append(f"mouth {'ahead of' if lag_ms > 0 else 'behind'} the sound by "
                         f"{abs(lag_ms):.0f} ms")
    else:
        # Too short for r to prove sync (chance peaks reach 0.45): say so, and let a
        # very low r only ask for a look when the mouth does move.
        note = f"{seconds:.0f} s measured: too short for r to confirm the sync"
        if moving and r < R_POOR:
            check.append(f"mouth follows the sound weakly (r {r:.2f})")
    if poor:
        return "poor", poor + check, note
    if check:
        return "check", check, note
    return "good", [], note
