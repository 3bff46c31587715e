"""An offline lip-sync measure for any MP4, computed from the outside.

SyncNet weights (LSE-C / LSE-D) cannot be had offline, so this is the proxy
described in ``shared/media/README.md``: a face mesh gives the inner-lip gap
per frame (divided by the eye distance, so it does not depend on the face's
size), placed on the frames' real timestamps; the audio gives its 1-3 kHz
log-RMS envelope; both are high-passed over 1 s and cross-correlated over
lags of +-600 ms.

The face models are MediaPipe's (mediapipe 0.10.21's, run on LiteRT by
:mod:`facecast.face.detector` and :mod:`facecast.face.landmarks`, which reproduce
mediapipe's results). Calibration (shared/media/videos, mediapipe 0.10.21): the 20 s Obama address
with its own track peaks at r 0.43, lag +250 ms (its audio is known to be
about 250 ms late); with the track delayed 400 ms more, or other people's
speech, the peak falls to 0.1-0.3. The 10 s Klobuchar clip gives r 0.24 at
+30 ms, no better than chance for 10 s: judge clips of 20 s or more.

Sign convention: ``best_lag_ms`` is positive when the lips lead the sound,
i.e. a lip movement at ``t`` pairs best with the sound at ``t + lag``.
Delaying the audio by ``d`` ms raises ``best_lag_ms`` by ``d``.

Only :mod:`facecast.media` (and its errors) and the bare face models are used from
facecast, not the engine's face analysis or rig, so the measure judges the engine's
output without sharing any of its assumptions.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
from scipy.ndimage import uniform_filter1d
from scipy.signal import butter, sosfiltfilt

from facecast.errors import InputError
from facecast.media import Audio, load_audio

PathLike = str | os.PathLike[str]

GRID_FPS = 100.0
ENVELOPE_WINDOW_S = 0.040
HIGHPASS_WINDOW_S = 1.0
BAND_HZ = (1000.0, 3000.0)

# Face-mesh indices (478-point refined mesh). Several upper/lower inner-lip pairs
# from the centre outwards: their mean is less noisy than 13/14 alone.
INNER_LIP_PAIRS: tuple[tuple[int, int], ...] = (
    (13, 14),
    (82, 87),
    (312, 317),
    (81, 178),
    (311, 402),
)
EYE_OUTER = (33, 263)

# Re-run the face detector this often (frames) even while the mesh tracks, so a
# face that drifts out of the crop is found again.
DETECT_EVERY = 25
# The mesh crop is this many face-box widths wide: room for head motion between
# detections, and the mesh's own (short-range) detector wants a large face.
CROP_SCALE = 2.0
CROP_SIZE = 256
# Interpolate over missing-face gaps up to this long; longer ones stay masked.
MAX_GAP_S = 0.25
# Mouth motion (std of the 1 s high-passed opening): real speakers measured so far lie
# in this range; below FROZEN_MOTION the mouth reads as frozen.
REAL_MOTION_RANGE = (0.013, 0.055)
FROZEN_MOTION = 0.006


@dataclass
class LipSyncScore:
    """Result of :func:`measure_lipsync`.

    ``best_lag_ms`` is positive when the lips lead the sound; ``peak_correlation``
    is the Pearson r at that lag, ``correlation_at_zero`` the r at lag 0.
    ``frames`` counts decoded video frames, ``faces_found`` those with a face;
    ``duration`` is the length (s) of the span both series cover; ``motion`` is how
    much the mouth moves (:func:`lip_motion`), ``frozen`` whether that is below
    :data:`FROZEN_MOTION`.
    """

    best_lag_ms: float
    peak_correlation: float
    correlation_at_zero: float
    frames: int
    faces_found: int
    duration: float
    motion: float = float("nan")

    @property
    def frozen(self) -> bool:
        return bool(self.motion < FROZEN_MOTION)

    def to_dict(self) -> dict[str, Any]:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}


# --------------------------------------------------------------------------- video


class LipTracker:
    """FaceDetection to place a square crop, FaceMesh (video mode) inside the crop."""

    def __init__(self) -> None:
        from facecast.face.detector import FaceDetector
        from facecast.face.landmarks import FaceMesh

        self._detector = FaceDetector("full")
        self._mesh = FaceMesh(
            static_image_mode=False,
            max_num_faces=1,
            min_detection_confidence=0.5,
            min_tracking_confidence=0.5,
        )
        self._crop: tuple[int, int, int] | None = None  # x0, y0, side in frame pixels
        self._since_detect = DETECT_EVERY

    def close(self) -> None:
        self._mesh.close()

    def _detect(self, rgb: np.ndarray) -> bool:
        h, w = rgb.shape[:2]
        found = self._detector.detect(rgb)
        self._since_detect = 0
        if not found:
            self._crop = None
            return False
        box = max(found, key=lambda d: d.score)
        cx = (box.xmin + box.width / 2) * w
        cy = (box.ymin + box.height / 2) * h
        side = int(round(max(box.width * w, box.height * h) * CROP_SCALE))
        side = max(side, 32)
        crop = (int(round(cx - side / 2)), int(round(cy - side / 2)), side)
        if self._crop is not None:
            # Keep the old crop unless the face moved noticeably: a crop that jumps
            # every second would add steps to the landmark series.
            ox, oy, os_ = self._crop
            moved = max(abs(ox - crop[0]), abs(oy - crop[1]), abs(os_ - side))
            if moved < 0.08 * os_:
                return True
        self._crop = crop
        return True

    def _cut(self, rgb: np.ndarray) -> np.ndarray:
        assert self._crop is not None
        x0, y0, side = self._crop
        h, w = rgb.shape[:2]
        # Pad instead of clipping so the crop stays square: landmark x and y then
        # share one scale and the ratio below needs no aspect correction.
        pad_l, pad_t = max(0, -x0), max(0, -y0)
        pad_r, pad_b = max(0, x0 + side - w), max(0, y0 + side - h)
        cut = rgb[max(0, y0) : min(h, y0 + side), max(0, x0) : min(w, x0 + side)]
        if pad_l or pad_t or pad_r or pad_b:
            cut = cv2.copyMakeBorder(cut, pad_t, pad_b, pad_l, pad_r, cv2.BORDER_REPLICATE)
        interp = cv2.INTER_AREA if side > CROP_SIZE else cv2.INTER_LINEAR
        return cv2.resize(cut, (CROP_SIZE, CROP_SIZE), interpolation=interp)

    def points(self, rgb: np.ndarray) -> np.ndarray | None:
        """The 478 mesh points (x, y) in this frame, in units of the square crop (so
        ratios of distances need no aspect correction); None without a face."""
        if self._crop is None or self._since_detect >= DETECT_EVERY:
            self._detect(rgb)
        self._since_detect += 1
        for attempt in range(2):
            if self._crop is None:
                return None
            found = self._mesh.process(self._cut(rgb))
            if found:
                return found[0][:, :2].astype(np.float64)
            if attempt == 0:
                self._detect(rgb)  # lost it: look for the face again before giving up
        return None

    def opening(self, rgb: np.ndarray) -> float:
        """Inner-lip gap / outer-eye-corner distance in this frame; NaN without a face."""
        pts = self.points(rgb)
        if pts is None:
            return float("nan")
        upper = pts[[a for a, _ in INNER_LIP_PAIRS]]
        lower = pts[[b for _, b in INNER_LIP_PAIRS]]
        gap = float(np.mean(np.linalg.norm(lower - upper, axis=1)))
        eyes = float(np.linalg.norm(pts[EYE_OUTER[0]] - pts[EYE_OUTER[1]]))
        return gap / eyes if eyes > 1e-6 else float("nan")


@contextmanager
def lip_tracker() -> Iterator[Callable[[np.ndarray], float]]:
    """A function giving the opening (as in :func:`lip_opening_series`) of each RGB
    frame it is handed, tracked from frame to frame as in a video; NaN where no face is
    found. For callers that hold frames rather than a file: the renderer's per-face
    calibration measures its own poses with it, so that it sees the mouth exactly as
    this measure does."""
    tracker = LipTracker()
    try:
        yield lambda frame: tracker.opening(np.ascontiguousarray(frame))
    finally:
        tracker.close()


_CACHE: OrderedDict[tuple[Any, ...], tuple[np.ndarray, np.ndarray]] = OrderedDict()
_CACHE_LOCK = threading.Lock()
_CACHE_SIZE = 8


def lip_opening_series(
    video_path: PathLike, *, max_frames: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame ``(timestamps_s, opening)`` of the first video stream of ``video_path``.

    Timestamps are the frames' real presentation times (seconds, relative to the
    stream's start). ``opening`` is the mean inner-lip gap over
    :data:`INNER_LIP_PAIRS` divided by the outer-eye-corner distance; NaN in
    frames without a face. Results are cached per file (path, size, mtime), so
    scoring one video against several soundtracks meshes it once.
    """
    path = Path(video_path)
    try:
        st = path.stat()
    except OSError as exc:
        raise InputError(
            f"cannot read video {path.name!r}: {exc}", code="unreadable_video"
        ) from exc
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns, max_frames)
    with _CACHE_LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            t, v = _CACHE[key]
            return t.copy(), v.copy()
    times, values = _compute_series(path, max_frames)
    with _CACHE_LOCK:
        _CACHE[key] = (times, values)
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return times.copy(), values.copy()


def face_series(
    video_path: PathLike,
    measure: Callable[[np.ndarray], float],
    *,
    max_frames: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame ``(timestamps_s, measure(points))`` of any face-mesh measure, tracked as
    for the lip series; ``points`` are the 478 mesh points (x, y) in units of a square
    crop, so ratios of distances need no aspect correction. NaN in frames without a face.
    Not cached."""
    return _compute_series(Path(video_path), max_frames, measure)


@contextmanager
def open_video(path: Path) -> Iterator[tuple[Any, Any]]:
    """``(container, video stream)`` of ``path`` for decoding (threaded); a file that
    cannot be opened or decoded, inside the block too, is InputError
    ``unreadable_video``, one without a picture ``no_video_stream``."""
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise InputError(
            f"cannot read video {path.name!r}: {exc}", code="unreadable_video"
        ) from exc
    try:
        with container:
            if not container.streams.video:
                raise InputError(f"{path.name!r} has no video stream", code="no_video_stream")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            yield container, stream
    except av.error.FFmpegError as exc:
        raise InputError(
            f"cannot decode video {path.name!r}: {exc}", code="unreadable_video"
        ) from exc


def _compute_series(path: Path, max_frames: int | None,
                    measure: Callable[[np.ndarray], float] | None = None
                    ) -> tuple[np.ndarray, np.ndarray]:
    times: list[float] = []
    values: list[float] = []
    tracker = LipTracker()
    try:
        with open_video(path) as (container, stream):
            base = stream.time_base
            start = stream.start_time or 0
            fps = float(stream.average_rate or 25)
            for i, frame in enumerate(container.decode(stream)):
                if max_frames is not None and i >= max_frames:
                    break
                if frame.pts is not None and base is not None:
                    times.append(float((frame.pts - start) * base))
                else:
                    times.append(i / fps)
                rgb = frame.to_ndarray(format="rgb24")
                if measure is None:
                    values.append(tracker.opening(rgb))
                else:
                    pts = tracker.points(rgb)
                    values.append(float("nan") if pts is None else measure(pts))
    finally:
        tracker.close()
    t = np.asarray(times, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    order = np.argsort(t, kind="stable")  # decode order is presentation order for sane files
    return t[order], v[order]


def lip_gap_at(video_path: PathLike, times_s: Sequence[float]) -> np.ndarray:
    """Lip opening (as in :func:`lip_opening_series`) of the frame nearest each time.

    NaN where that frame has no face. Use it to check that p/b/m show smaller
    gaps than open vowels.
    """
    t, v = lip_opening_series(video_path)
    query = np.asarray(times_s, dtype=np.float64)
    if not len(t):
        return np.full(query.shape, np.nan)
    idx = np.clip(np.searchsorted(t, query), 1, max(1, len(t) - 1))
    left = np.clip(idx - 1, 0, len(t) - 1)
    right = np.clip(idx, 0, len(t) - 1)
    nearest = np.where(np.abs(query - t[left]) <= np.abs(t[right] - query), left, right)
    return v[nearest]


# --------------------------------------------------------------------------- audio


def audio_envelope(audio: Audio, fps: float = GRID_FPS) -> tuple[np.ndarray, np.ndarray]:
    """``(times_s, log_rms)`` of the 1-3 kHz band in 40 ms windows centred at ``i / fps``.

    The band holds most of the energy that tracks mouth opening (formants F2/F3,
    fricative onsets) and excludes voicing hum that continues with the lips shut.
    The filter runs forwards and backwards, so it adds no delay. Log RMS is
    floored 60 dB below the loudest window so digital silence is not -inf.
    """
    sr = float(audio.sample_rate)
    x = np.asarray(audio.samples, dtype=np.float64)
    n_out = int(np.floor(len(x) / sr * fps)) + 1 if len(x) else 0
    times = np.arange(n_out) / fps
    if n_out == 0:
        return times, np.zeros(0)
    hi = min(BAND_HZ[1], 0.45 * sr)
    if hi > BAND_HZ[0] * 1.2 and len(x) > 64:
        sos = butter(4, [BAND_HZ[0], hi], btype="bandpass", fs=sr, output="sos")
        x = sosfiltfilt(sos, x)
    # Windowed mean of x^2 via a cumulative sum: O(n) for any hop.
    c = np.concatenate([[0.0], np.cumsum(x * x)])
    half = ENVELOPE_WINDOW_S * sr / 2
    centres = times * sr
    lo = np.clip(np.round(centres - half).astype(np.int64), 0, len(x))
    up = np.clip(np.round(centres + half).astype(np.int64), 0, len(x))
    width = np.maximum(up - lo, 1)
    rms = np.sqrt(np.maximum((c[up] - c[lo]) / width, 0.0))
    floor = max(float(rms.max()) * 1e-3, 1e-9)
    return times, np.log(np.maximum(rms, floor))


# --------------------------------------------------------------------------- scoring


def _highpass(x: np.ndarray, valid: np.ndarray, fps: float) -> np.ndarray:
    """Subtract the 1 s moving average, computed over valid samples only."""
    size = max(3, int(round(HIGHPASS_WINDOW_S * fps)) | 1)
    w = valid.astype(np.float64)
    num = uniform_filter1d(np.where(valid, x, 0.0), size, mode="nearest")
    den = uniform_filter1d(w, size, mode="nearest")
    mean = np.divide(num, den, out=np.zeros_like(num), where=den > 1e-9)
    return np.where(valid, x - mean, 0.0)


def lip_motion(times: np.ndarray, opening: np.ndarray) -> float:
    """How much the mouth moves: the std of the opening (as from
    :func:`lip_opening_series`) high-passed over 1 s, on the 100 Hz grid; NaN without
    enough faced frames. The high-pass leaves out a resting mouth's own opening."""
    times = np.asarray(times, dtype=np.float64)
    opening = np.asarray(opening, dtype=np.float64)
    if len(times) < 2:
        return float("nan")
    n = int(np.floor((times[-1] - times[0]) * GRID_FPS)) + 1
    grid = times[0] + np.arange(n) / GRID_FPS
    lip, ok = _lip_on_grid(times, opening, grid)
    if ok.sum() < 10:
        return float("nan")
    return float(np.std(_highpass(lip, ok, GRID_FPS)[ok]))


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < 10:
        return float("nan")
    a = a - a.mean()
    b = b - b.mean()
    den = np.sqrt(np.dot(a, a) * np.dot(b, b))
    return float(np.dot(a, b) / den) if den > 1e-12 else float("nan")


def _lip_on_grid(
    times: np.ndarray, opening: np.ndarray, grid: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Linear interpolation over the real timestamps; long face-less gaps stay masked."""
    ok = np.isfinite(opening)
    if ok.sum() < 2:
        return np.zeros_like(grid), np.zeros(grid.shape, dtype=bool)
    t_ok, v_ok = times[ok], opening[ok]
    values = np.interp(grid, t_ok, v_ok)
    # A grid point is valid when the nearest faced frames on both sides are close.
    idx = np.searchsorted(t_ok, grid)
    prev_t = np.where(idx > 0, t_ok[np.clip(idx - 1, 0, len(t_ok) - 1)], -np.inf)
    next_t = np.where(idx < len(t_ok), t_ok[np.clip(idx, 0, len(t_ok) - 1)], np.inf)
    valid = (next_t - prev_t) <= MAX_GAP_S + 1e-9
    exact = np.isclose(prev_t, grid) | np.isclose(next_t, grid)
    valid |= exact
    return values, valid


def score_series(
    times: np.ndarray,
    opening: np.ndarray,
    audio: Audio,
    *,
    max_lag_ms: float = 600,
) -> LipSyncScore:
    """Correlate a lip series (as from :func:`lip_opening_series`) with ``audio``.

    This is the scoring half of :func:`measure_lipsync`, for callers that already
    hold the lip series (to score one video against several soundtracks).
    """
    times = np.asarray(times, dtype=np.float64)
    opening = np.asarray(opening, dtype=np.float64)
    frames = len(times)
    faces = int(np.isfinite(opening).sum())
    env_t, env = audio_envelope(audio, GRID_FPS)
    if frames < 2 or len(env_t) < 2:
        return LipSyncScore(0.0, float("nan"), float("nan"), frames, faces, 0.0)
    frame_dt = float(np.median(np.diff(times))) if frames > 1 else 0.04
    start = max(float(times[0]), 0.0)
    end = min(float(times[-1]) + frame_dt, float(env_t[-1]))
    n = int(np.floor((end - start) * GRID_FPS))
    if n < 10:
        return LipSyncScore(0.0, float("nan"), float("nan"), frames, faces, 0.0)
    # The grid is shared with the envelope's own sample times (i / fps), so the
    # audio needs no interpolation and its lags are whole samples.
    i0 = int(np.ceil(start * GRID_FPS - 1e-9))
    grid_idx: np.ndarray = np.arange(i0, i0 + n)
    grid_idx = grid_idx[grid_idx < len(env)]
    grid = grid_idx / GRID_FPS
    lip, lip_ok = _lip_on_grid(times, opening, grid)
    lip_hp = _highpass(lip, lip_ok, GRID_FPS)
    # The whole envelope is high-passed (not just the overlap) so the filter's
    # edges fall outside the region being compared where the audio is longer.
    env_ok = np.ones(len(env), dtype=bool)
    env_hp = _highpass(env, env_ok, GRID_FPS)

    max_lag = int(round(max_lag_ms / 1000.0 * GRID_FPS))
    lags = np.arange(-max_lag, max_lag + 1)
    rs = np.full(len(lags), np.nan)
    for k, lag in enumerate(lags):
        # Lips at grid time t pair with the sound at t + lag: positive lag means
        # the sound comes after the lips (lips lead).
        a_idx = grid_idx + lag
        inside = (a_idx >= 0) & (a_idx < len(env_hp)) & lip_ok
        if inside.sum() < max(10, len(grid) // 2):
            continue
        rs[k] = _pearson(lip_hp[inside], env_hp[a_idx[inside]])
    zero = float(rs[max_lag]) if np.isfinite(rs[max_lag]) else float("nan")
    motion = float(np.std(lip_hp[lip_ok])) if lip_ok.sum() >= 10 else float("nan")
    if not np.isfinite(rs).any():
        return LipSyncScore(0.0, float("nan"), zero, frames, faces, float(n / GRID_FPS), motion)
    best = int(np.nanargmax(rs))
    return LipSyncScore(
        best_lag_ms=float(lags[best] * 1000.0 / GRID_FPS),
        peak_correlation=float(rs[best]),
        correlation_at_zero=zero,
        frames=frames,
        faces_found=faces,
        duration=float(len(grid) / GRID_FPS),
        motion=motion,
    )


def audio_start_offset(path: Path) -> float:
    """Seconds by which the file's audio stream starts after its video stream.

    Video timestamps are taken relative to the video stream's start and
    :func:`load_audio` returns samples from the audio stream's first one, so a
    container that starts its streams at different times needs this correction.
    """
    try:
        with av.open(str(path)) as c:
            if not c.streams.video or not c.streams.audio:
                return 0.0
            v, a = c.streams.video[0], c.streams.audio[0]
            v0 = float((v.start_time or 0) * v.time_base) if v.time_base else 0.0
            a0 = float((a.start_time or 0) * a.time_base) if a.time_base else 0.0
            return a0 - v0
    except (av.error.FFmpegError, OSError, ValueError):
        return 0.0


def shift_audio(audio: Audio, seconds: float) -> Audio:
    """Audio delayed by ``seconds`` (silence prepended), or advanced when negative."""
    n = int(round(seconds * audio.sample_rate))
    if n == 0:
        return audio
    if n > 0:
        return Audio(np.concatenate([np.zeros(n, np.float32), audio.samples]), audio.sample_rate)
    return Audio(audio.samples[-n:], audio.sample_rate)


def measure_lipsync(
    video_path: PathLike,
    audio_path: PathLike | None = None,
    *,
    max_lag_ms: float = 600,
) -> LipSyncScore:
    """Score how well the lips in ``video_path`` follow the speech.

    The audio is the MP4's own track unless ``audio_path`` is given. See the
    module docstring for the method and the lag sign convention. Without a face
    in any frame the correlations are NaN. Raises :class:`InputError`
    (``unreadable_video``, ``no_video_stream``, ``no_audio_stream``, ...) for
    files that cannot be read.
    """
    if audio_path is not None:
        audio = load_audio(audio_path)
    else:
        audio = shift_audio(load_audio(video_path), audio_start_offset(Path(video_path)))
    times, opening = lip_opening_series(video_path)
    return score_series(times, opening, audio, max_lag_ms=max_lag_ms)
