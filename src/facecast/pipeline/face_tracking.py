"""Following the chosen face through a source video, in a thread of its own, a chunk ahead
of the renderer: smoothed landmarks with a presence weight, grey thumbnails for loop
matching, open-mouth colours and calibration samples, and the person's profile (usual
shut mouth, width, opening) from the first seconds.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction

import cv2
import numpy as np

from facecast.media.video_reader import VideoInfo
from facecast.motion.track import MouthTrack
from facecast.pipeline.frames import prefetched, source_frames
from facecast.render.dub import JAW_GAP, mouth_colours
from facecast.render.lip_geometry import eye_frame, mouth_gap
from facecast.render.rig import MESH_POINTS
from facecast.render.video_face import FaceChoice, FaceTracker, smooth_landmarks

# A person who barely opens their mouth still gets this much of the rig's opening:
# less would not read as speech at all.
MIN_JAW_GAIN = 0.6
# Calibration samples: every SAMPLE_EVERY-th frame may be kept, up to SAMPLES_PER_BAND
# per band of lip gap (IOD), as crops of at most SAMPLE_PX a side.
SAMPLE_EVERY = 2
SAMPLE_BANDS = (0.02, 0.05, 0.08, 0.12, 0.16)
SAMPLES_PER_BAND = 6
SAMPLE_PX = 320
# Tracking runs ahead of rendering: landmarks are smoothed a chunk at a time, from a pad
# before it to a look-ahead after it (longer than the smoothing window, the longest gap
# filled and the fades together).
CHUNK_S = 1.0
PAD_S = 1.0
LOOKAHEAD_S = 1.0
# The person's profile (usual mouth, colours, calibration) comes from the first seconds.
PROFILE_S = 5.0
PROFILE_MIN_FACES = 25
REFERENCE_ORIGIN = 3.0  # IODs from the image corner: where the reference shape is put
MAX_COLOUR_SAMPLES = 40  # open-mouth frames whose teeth and cavity colours are averaged
THUMB_W = 64  # width of the grey thumbnails that loop points are matched on


LOOP_START_S = 4.0  # the loop may restart anywhere in the first this many seconds ...
LOOP_END_S = 6.0  # ... from anywhere in the last this many


def _thumb(rgb: np.ndarray) -> np.ndarray:
    h, w = rgb.shape[:2]
    small = cv2.resize(rgb, (THUMB_W, max(2, round(h * THUMB_W / w))), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(small, cv2.COLOR_RGB2GRAY).astype(np.float32)


@dataclass
class FaceSeries:
    """The tracking pass's result: per-frame landmarks, presence and loop thumbnails."""

    points: np.ndarray  # (frames, 468, 2) smoothed
    presence: np.ndarray  # (frames,) 0..1
    tracked: int  # frames where the mesh found the face
    start_thumbs: list[np.ndarray]
    end_thumbs: list[tuple[int, np.ndarray]]  # (frame, thumbnail) up to the last frame
    colours: np.ndarray | None = None  # [teeth, cavity] seen in the source's open mouths
    # Face crops with their landmarks, spread over the mouth's openings (for calibration).
    samples: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.points)


class FaceTracking:
    """The tracking pass, in a thread of its own, so that rendering can follow it closely.

    The thread decodes the source and follows the chosen face; the renderer asks
    for frame ``i`` with :meth:`frame`, which waits until tracking is far enough
    ahead for the smoothing, gap filling and fades around ``i`` to be final, and
    smooths the landmarks a chunk at a time. Landmarks are held for the whole
    video (a few kilobytes a frame); frames are not.
    """

    def __init__(
        self,
        info: VideoInfo,
        fps: Fraction,
        choice: FaceChoice,
        stop_after: int | None,
        *,
        transform: Callable[[np.ndarray], np.ndarray] | None = None,
        on_frame: Callable[[int, np.ndarray, np.ndarray | None], None] | None = None,
    ) -> None:
        """``transform`` turns each decoded frame into the one tracked (e.g. scaled
        down: landmarks are then in its pixels); ``on_frame(i, rgb, landmarks or None)``
        sees every tracked frame in the tracking thread (raw landmarks, before smoothing)."""
        self.info, self.fps, self.choice, self.stop_after = info, fps, choice, stop_after
        self._transform, self._on_frame = transform, on_frame
        rate = float(fps)
        capacity = max(16, info.frames + 16)
        # Plain np.ndarray: they grow (_grow), which numpy 2's shape-typed stubs refuse.
        self._points: np.ndarray = np.zeros((capacity, MESH_POINTS, 2), np.float32)
        self._valid: np.ndarray = np.zeros(capacity, bool)
        self._smooth: np.ndarray = np.zeros((capacity, MESH_POINTS, 2), np.float32)
        self._presence: np.ndarray = np.zeros(capacity, np.float32)
        self._final = 0  # frames [0, _final) have their final smoothed landmarks
        self.count = 0  # frames tracked so far
        self.faces = 0  # of those, frames where the mesh found the face
        self.done = False
        self._failure: BaseException | None = None
        self._cond = threading.Condition()
        self._finalizing = threading.Lock()
        self._stop = threading.Event()
        # Thumbnails for choosing a loop point: only when the whole video is tracked.
        self._start_n = max(2, round(LOOP_START_S * rate)) if stop_after is None else 0
        self.start_thumbs: list[np.ndarray] = []
        self.end_thumbs: deque[tuple[int, np.ndarray]] = deque(
            maxlen=max(2, round(LOOP_END_S * rate))
        )
        self._colours: list[np.ndarray] = []
        self._samples: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {}
        self._ahead = max(1, round(LOOKAHEAD_S * rate))
        self._pad = max(1, round(PAD_S * rate))
        self._chunk = max(1, round(CHUNK_S * rate))
        self._thread = threading.Thread(target=self._run, name="facecast-track", daemon=True)

    def start(self) -> FaceTracking:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        try:
            with FaceTracker(self.choice) as tracker:
                for i, rgb in prefetched(source_frames(self.info, self.fps)):
                    if self._stop.is_set() or (
                        self.stop_after is not None and i >= self.stop_after
                    ):
                        break
                    self._grow(i)
                    if self._transform is not None:
                        rgb = self._transform(rgb)
                    pts = tracker.track(rgb)
                    extras = self._extras(i, rgb, pts)
                    if self._on_frame is not None:
                        self._on_frame(i, rgb, pts)
                    with self._cond:
                        if pts is not None:
                            self._points[i], self._valid[i] = pts, True
                            self.faces += 1
                        self._store(i, *extras)
                        self.count = i + 1
                        self._cond.notify_all()
        except BaseException as exc:  # re-raised in the threads that wait on tracking
            self._failure = exc
        finally:
            with self._cond:
                self.done = True
                self._cond.notify_all()

    def _grow(self, i: int) -> None:
        if i < len(self._points):
            return
        with self._cond:  # the metadata undercounted the frames
            self._points = np.concatenate([self._points, np.zeros_like(self._points)])
            self._valid = np.concatenate([self._valid, np.zeros_like(self._valid)])
            self._smooth = np.concatenate([self._smooth, np.zeros_like(self._smooth)])
            self._presence = np.concatenate([self._presence, np.zeros_like(self._presence)])

    def _extras(
        self, i: int, rgb: np.ndarray, pts: np.ndarray | None
    ) -> tuple[np.ndarray | None, np.ndarray | None]:
        """What else this frame gives: mouth colours, loop thumbnail (and a calibration
        sample, kept directly)."""
        seen = None
        if pts is not None:
            if len(self._colours) < MAX_COLOUR_SAMPLES and i % 3 == 0:
                seen = mouth_colours(rgb, pts)
            if i % SAMPLE_EVERY == 0:
                _keep_sample(self._samples, rgb, pts)
        thumb = _thumb(rgb) if self.stop_after is None else None
        return seen, thumb

    def _store(self, i: int, seen: np.ndarray | None, thumb: np.ndarray | None) -> None:
        if seen is not None:
            self._colours.append(seen)
        if thumb is not None:
            if i < self._start_n:
                self.start_thumbs.append(thumb)
            # Where the video ends is only known when it has ended: keep the latest.
            self.end_thumbs.append((i, thumb))

    def _wait(self, ready: Callable[[], bool], timeout: float | None = None) -> bool:
        with self._cond:
            self._cond.wait_for(lambda: ready() or self.done, timeout)
            if self._failure is not None:
                raise self._failure
            return ready() or self.done

    def wait_until(self, frames: int, faces: int = 0, timeout: float | None = None) -> bool:
        """Wait until ``frames`` are tracked with ``faces`` among them, or tracking ended
        (True), or ``timeout`` passed (False). Re-raises a failure of the tracking."""
        return self._wait(lambda: self.count >= frames and self.faces >= faces, timeout)

    def wait_done(self, timeout: float | None = None) -> bool:
        return self._wait(lambda: self.done, timeout)

    def _finalize(self) -> bool:
        """Smooth the next chunk once tracking is far enough past it; False at the end."""
        self.wait_until(self._final + self._chunk + self._ahead)
        with self._cond:
            n, done = self.count, self.done
            lo = max(0, self._final - self._pad)
            pts, valid = self._points[lo:n].copy(), self._valid[lo:n].copy()
        # Frames near the ends of this block may still change as tracking goes on (or
        # come from the block's edge): only those a pad and a look-ahead inside are final.
        end = n if done else n - self._ahead
        if end <= self._final:
            return False
        smooth, presence = smooth_landmarks(pts, valid, float(self.fps))
        with self._cond:  # the tracking thread may be growing the arrays
            self._smooth[self._final : end] = smooth[self._final - lo : end - lo]
            self._presence[self._final : end] = presence[self._final - lo : end - lo]
            self._final = end
        return True

    def frame(self, i: int) -> tuple[np.ndarray, float] | None:
        """Smoothed landmarks and presence of frame ``i`` (waits for them); None past the
        frames tracked."""
        with self._finalizing:
            while i >= self._final:
                if not self._finalize():
                    return None
            return self._smooth[i], float(self._presence[i])

    def finalized(self) -> tuple[np.ndarray, np.ndarray]:
        """Smoothed landmarks and presence of every frame final so far."""
        with self._finalizing:
            return self._smooth[: self._final], self._presence[: self._final]

    def colours(self) -> np.ndarray | None:
        with self._cond:
            seen = list(self._colours)
        return np.median(np.stack(seen), axis=0) if len(seen) >= 3 else None

    def samples(self) -> list[tuple[np.ndarray, np.ndarray]]:
        with self._cond:
            return [s for per_band in list(self._samples.values()) for s in per_band]

    def series(self) -> FaceSeries:
        """Everything, once tracking is done."""
        self.wait_done()
        if self.count:
            self.frame(self.count - 1)
        points, presence = self.finalized()
        return FaceSeries(
            points,
            presence,
            int(self._valid[: self.count].sum()),
            list(self.start_thumbs),
            list(self.end_thumbs),
            self.colours(),
            self.samples(),
        )


def track_video(
    info: VideoInfo, fps: Fraction, choice: FaceChoice, stop_after: int | None
) -> FaceSeries:
    """Follow the chosen face through the video (or its first ``stop_after`` frames)."""
    tracking = FaceTracking(info, fps, choice, stop_after).start()
    try:
        return tracking.series()
    finally:
        tracking.stop()


def _keep_sample(
    samples: dict[int, list[tuple[np.ndarray, np.ndarray]]], rgb: np.ndarray, pts: np.ndarray
) -> None:
    """Keep a face crop (at most SAMPLE_PX a side) and its landmarks, a few per band of
    mouth opening, so calibration sees shut, half-open and wide-open mouths alike."""
    band = int(np.digitize(mouth_gap(pts), SAMPLE_BANDS))
    if len(samples.setdefault(band, [])) >= SAMPLES_PER_BAND:
        return
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    centre, side = (lo + hi) / 2.0, float(max(hi - lo)) * 1.8
    x0, y0 = int(round(centre[0] - side / 2)), int(round(centre[1] - side / 2))
    h, w = rgb.shape[:2]
    side_px = int(round(side))
    crop = rgb[max(0, y0) : min(h, y0 + side_px), max(0, x0) : min(w, x0 + side_px)]
    pad = (max(0, -y0), max(0, y0 + side_px - h), max(0, -x0), max(0, x0 + side_px - w))
    if any(pad):
        crop = cv2.copyMakeBorder(crop, *pad, cv2.BORDER_REPLICATE)
    scale = min(1.0, SAMPLE_PX / max(side_px, 1))
    if scale < 1.0:
        crop = cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    local = ((pts - [x0, y0]) * scale).astype(np.float32)
    # Even sides for the renderer's patch arithmetic are not needed; contiguous memory is.
    samples[band].append((np.ascontiguousarray(crop), local))


@dataclass(frozen=True)
class FaceProfile:
    """How this person's mouth usually looks, from a sample of the tracked frames."""

    reference: np.ndarray  # landmarks (pixels, at the usual size) of the usual shut mouth
    width: float  # usual mouth width (IOD)
    open_gap: float  # how far the mouth opens in speech (95th percentile of the gap, IOD)


def face_profile(points: np.ndarray, presence: np.ndarray) -> FaceProfile | None:
    """The profile from smoothed landmarks and presence; None without a face."""
    good = np.flatnonzero(presence >= 1.0)
    if not len(good):
        good = np.flatnonzero(presence > 0)
    if not len(good):
        return None
    # Every few frames is plenty for percentiles, and keeps this cheap for long videos.
    sample = good[:: max(1, len(good) // 400)]
    frames = [eye_frame(points[i]) for i in sample]
    locs = np.stack(
        [fr.local(points[i].astype(np.float64)) for fr, i in zip(frames, sample, strict=True)]
    )
    gaps = np.array([mouth_gap(points[i]) for i in sample])
    widths = np.linalg.norm(locs[:, 291] - locs[:, 61], axis=1)
    # The reference is the median shape of the face with the mouth (nearly) shut, in its
    # own frame: one frame would bring its own pose and mesh noise, and which one it is
    # would change with the stretch of video looked at.
    shut = gaps <= np.percentile(gaps, 25)
    shape = np.median(locs[shut], axis=0)
    iod = float(np.median([fr.iod for fr in frames]))
    reference = (shape * iod + REFERENCE_ORIGIN * iod).astype(np.float32)
    return FaceProfile(reference, float(np.median(widths)), float(np.percentile(gaps, 95)))


def jaw_gain(profile: FaceProfile, track: MouthTrack) -> float:
    """Scale for the new jaw channel so the mouth opens about as far as this person's
    own does when speaking (the rig is tuned for portraits), within limits."""
    jaw = track.channel("jaw")
    speaking = float(np.percentile(jaw, 95)) if len(jaw) else 0.0
    if speaking < 1e-3:
        return 1.0
    return float(np.clip(profile.open_gap / (JAW_GAP * speaking), MIN_JAW_GAIN, 1.0))
