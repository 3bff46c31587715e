"""Video dubbing: a talking-head video + new speech -> the same video speaking the new speech.

The person's lips follow the new audio (or text spoken by a voice); every
other pixel outside the lower face is the source video's. The flow:

1. the video is checked against the limits (MP4/MOV, H.264, longer than 5 s,
   up to 300 MB, by default) before anything else is read;
2. speech: an audio file (optionally with its transcript for phoneme-exact
   lips), or text through TTS; then the mouth track at the video's frame rate;
3. a tracking pass, in a thread of its own, decodes the video and follows the
   chosen face with the face mesh (:mod:`facecast.render.video_face`);
   landmarks are smoothed over time a chunk at a time and a presence weight
   fades the dubbing where the face comes and goes. The person's profile (the
   usual shut mouth, mouth width and opening, teeth and cavity colours, and
   how much jaw goes with a lip gap) comes from the first seconds;
4. when the speech outlasts the video, tracking runs to the end first and a
   loop point is chosen where the picture and the head pose best match an
   early frame; the loop cross-fades there with both heads moved to the pose
   between them, so the video continues without a visible jump. When the
   speech is shorter, the video is cut at its end;
5. the render pass follows the tracking closely: it decodes the video again,
   re-voices each frame (:class:`facecast.render.dub.MouthDubber`) in a worker
   thread, and encodes in this one, at the source's size and frame rate
   (variable-rate input is put on a constant grid first). Memory holds a few
   frames, the landmark series (a few kilobytes a frame) and the soundtrack,
   whatever the length.

The render pass (:func:`encode_dub`) takes its landmarks from a callable, so a
cloned video avatar (:mod:`facecast.pipeline.video_avatar`) runs the same pass
from landmarks stored once, without tracking; :func:`prepare_speech` and
:func:`frame_track` are shared the same way.

It knows nothing of HTTP; progress goes to a ``(fraction, stage)`` callback
and bad input raises :class:`facecast.errors.InputError` with a stable code.
Nothing is left at the output path unless the whole dub succeeded.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np

from facecast.errors import InputError
from facecast.face.analysis import FaceAnalyzer, FaceBox
from facecast.media import Audio, Mp4Writer, load_audio
from facecast.media.colour import video_colour
from facecast.media.video_reader import DUB_LIMITS, VideoInfo, VideoLimits, probe_video
from facecast.motion.track import MouthTrack
from facecast.pipeline.specs import check_face_index, check_speech_choice
from facecast.pipeline.talking_photo import SpeechReady, mouth_track
from facecast.render.dub import (
    JAW_GAP,
    MouthDubber,
    calibrate_jaw_cancel,
    eye_frame,
    morph_blend,
    mouth_colours,
    mouth_gap,
)
from facecast.render.rig import MESH_POINTS
from facecast.render.video_face import FaceChoice, FaceTracker, smooth_landmarks
from facecast.rules import MAX_AUDIO_S, MIN_AUDIO_S
from facecast.timing import PhonemeTiming

PathLike = str | os.PathLike[str]
Progress = Callable[[float, str], None]

# Common frame rates: a measured average within 0.5 % of one of these is taken as it.
STANDARD_RATES = (Fraction(24000, 1001), Fraction(24), Fraction(25), Fraction(30000, 1001),
                  Fraction(30), Fraction(48), Fraction(50), Fraction(60000, 1001), Fraction(60))
# A person who barely opens their mouth still gets this much of the rig's opening:
# less would not read as speech at all.
MIN_JAW_GAIN = 0.6
CROSSFADE_S = 0.24  # the loop's cross-fade
LOOP_START_S = 4.0  # the loop may restart anywhere in the first this many seconds ...
LOOP_END_S = 6.0  # ... from anywhere in the last this many
POSE_WEIGHT = 1.0  # head-pose distance (IOD) against picture difference (0..1) in the match
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
# Stable landmarks (eye corners, nose, brows, face outline) for matching head poses.
POSE_POINTS = np.array([33, 133, 362, 263, 1, 4, 168, 10, 152, 234, 454, 70, 300])
_DONE = object()  # end of a queue of frames
# Share of the progress bar for tracking vs rendering, per frame (rendering costs more).
_TRACK_COST, _RENDER_COST = 0.35, 1.0


@dataclass
class DubVideoSpec:
    """What to dub. Give ``audio`` or ``text`` (with an optional ``voice``)."""

    video: PathLike
    output: PathLike
    audio: PathLike | None = None
    text: str | None = None
    voice: str | None = None
    transcript: str | None = None  # words of ``audio``, for phoneme-accurate lips (English)
    face_index: int = 0  # with several faces: 0 the largest in the first frame with faces
    face_point: tuple[float, float] | None = None  # or the face nearest this pixel (x, y)
    limits: VideoLimits = DUB_LIMITS
    export_visemes: PathLike | None = None  # .json (facecast track) or .tsv (Rhubarb)
    # x264 speed/size trade-off: "superfast" takes about 60 % of "veryfast"'s time at
    # 720p for a slightly higher PSNR, in files about twice the size (~4 Mbit/s at 720p).
    preset: str = "superfast"
    # None: 16, or 14 for small videos (short side under 480 px). Lower than a fresh
    # render's 20: the untouched parts of the picture are re-encoded and should come out
    # as close to the source as the encoder allows; small frames cost little to keep.
    crf: int | None = None
    on_speech: SpeechReady | None = None  # the output's length, before the dubbing starts

    def check(self) -> None:
        """The request's own rules, before the video is read."""
        check_speech_choice(self.audio, self.text)
        check_face_index(self.face_index)


@dataclass
class DubVideoResult:
    output: Path
    duration: float
    frames: int
    width: int
    height: int
    fps: float
    source_frames: int  # frames of the source that were used (on the constant grid)
    frames_with_face: int  # of those, frames where the chosen face was dubbed
    loop: tuple[int, int] | None  # (jump from, to) source frames when the video loops
    jaw_cancel: float  # how much of the original jaw motion per lip gap was taken back
    track: MouthTrack
    phonemes: list[PhonemeTiming] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


# --------------------------------------------------------------------------- inputs


class SpeechSource(Protocol):
    """What a use case asks to be spoken: an audio file (optionally with its transcript)
    or a text for a voice (:class:`DubVideoSpec` and the avatar render spec both are)."""

    audio: PathLike | None
    text: str | None
    voice: str | None
    transcript: str | None


def prepare_speech(spec: SpeechSource) -> tuple[Audio, list[PhonemeTiming]]:
    """The audio to speak and, when the words are known, its phoneme timings."""
    check_speech_choice(spec.audio, spec.text)
    if spec.text is not None:
        from facecast.speech import synthesize

        speech = synthesize(spec.text, spec.voice)
        if speech.audio.duration > MAX_AUDIO_S:
            raise InputError(f"the text speaks for {speech.audio.duration:.0f} s, over the "
                             f"{MAX_AUDIO_S:.0f} s limit", code="audio_too_long")
        return speech.audio, speech.phonemes
    audio = load_audio(spec.audio, min_duration=MIN_AUDIO_S, max_duration=MAX_AUDIO_S)
    if spec.transcript:
        from facecast.motion.align import align_transcript

        _, phonemes = align_transcript(audio, spec.transcript)
        return audio, phonemes
    return audio, []


def frame_track(audio: Audio, phonemes: list[PhonemeTiming], fps: Fraction) -> MouthTrack:
    """The mouth track at the video's rate, one row per output frame (the audio's length)."""
    n_out = max(1, round(audio.duration * float(fps)))
    track = mouth_track(audio, phonemes, float(fps))
    values = track.values[:n_out]
    if len(values) < n_out:
        values = np.concatenate([values, np.zeros((n_out - len(values), values.shape[1]),
                                                  values.dtype)])
    return MouthTrack(float(fps), values, track.source, track.meta)


def output_rate(fps: float) -> Fraction:
    """The frame rate to encode constant-rate input at: a standard rate when the
    source's average is one, else the average itself."""
    # the nearest one: 30 and 30000/1001 are both within the tolerance of 30.0
    nearest = min(STANDARD_RATES, key=lambda rate: abs(fps / float(rate) - 1.0))
    if abs(fps / float(nearest) - 1.0) < 0.005:
        return nearest
    return Fraction(fps).limit_denominator(1001)


def source_output_rate(info: VideoInfo) -> Fraction:
    """The constant frame rate a source is re-encoded at.

    Constant-rate input keeps its rate (:func:`output_rate`). Variable-rate input (phones
    drop frames in low light: a "30 fps" clip averages 22.13) gets a standard constant
    rate, never its average: the rate it declares when that is a standard one no higher
    than twice the average, else the lowest whole standard rate at or above the average,
    so each source frame is shown at least about once.
    """
    if not info.variable_rate:
        return output_rate(info.fps)
    whole = [r for r in STANDARD_RATES if r.denominator == 1]
    nominal = output_rate(info.nominal_fps) if info.nominal_fps > 0 else None
    if nominal in STANDARD_RATES and info.fps * 0.99 <= nominal <= 2 * info.fps:
        return nominal
    return next((r for r in whole if r >= info.fps * 0.99), whole[-1])


def rotate_upright(rgb: np.ndarray, rotation: int) -> np.ndarray:
    code = {90: cv2.ROTATE_90_CLOCKWISE, 180: cv2.ROTATE_180,
            270: cv2.ROTATE_90_COUNTERCLOCKWISE}.get(rotation)
    return rgb if code is None else cv2.rotate(rgb, code)


def source_frames(info: VideoInfo, fps: Fraction) -> Iterator[tuple[int, np.ndarray]]:
    """The source's frames on a constant ``fps`` grid, upright, with even sides (H.264
    4:2:0 needs them: an odd last row or column is dropped)."""
    from facecast.media.video_reader import constant_rate_frames

    for i, rgb in constant_rate_frames(info.path, float(fps)):
        rgb = rotate_upright(rgb, info.rotation)
        h, w = rgb.shape[:2]
        if h % 2 or w % 2:
            rgb = rgb[: h - h % 2, : w - w % 2]
        yield i, rgb


def prefetched(frames: Iterator[tuple[int, np.ndarray]], depth: int = 4
               ) -> Iterator[tuple[int, np.ndarray]]:
    """``frames`` decoded in a thread of their own, a few ahead of the consumer: FFmpeg
    decodes without the GIL, so decoding overlaps the face mesh or the rendering."""
    items: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    failure: list[BaseException] = []

    def run() -> None:
        try:
            for item in frames:
                while not stop.is_set():
                    try:
                        items.put(item, timeout=0.2)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
        except BaseException as exc:  # re-raised in the consuming thread
            failure.append(exc)
        finally:
            with contextlib.suppress(queue.Full):
                items.put(_DONE, timeout=1.0)

    worker = threading.Thread(target=run, name="facecast-decode", daemon=True)
    worker.start()
    try:
        while True:
            item = items.get()
            if item is _DONE:
                if failure:
                    raise failure[0]
                return
            yield item
    finally:
        stop.set()
        # The decoder may be blocked handing over a frame: let it see the stop flag.
        with contextlib.suppress(queue.Empty):
            while True:
                items.get_nowait()
        worker.join(timeout=5)
        close = getattr(frames, "close", None)
        if close is not None and not worker.is_alive():
            close()


def _thumb(rgb: np.ndarray) -> np.ndarray:
    h, w = rgb.shape[:2]
    small = cv2.resize(rgb, (THUMB_W, max(2, round(h * THUMB_W / w))),
                       interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(small, cv2.COLOR_RGB2GRAY).astype(np.float32)


# --------------------------------------------------------------------------- tracking


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

    def __init__(self, info: VideoInfo, fps: Fraction, choice: FaceChoice,
                 stop_after: int | None, *,
                 transform: Callable[[np.ndarray], np.ndarray] | None = None,
                 on_frame: Callable[[int, np.ndarray, np.ndarray | None], None] | None = None
                 ) -> None:
        """``transform`` turns each decoded frame into the one tracked (e.g. scaled
        down: landmarks are then in its pixels); ``on_frame(i, rgb, landmarks or None)``
        sees every tracked frame in the tracking thread (raw landmarks, before smoothing)."""
        self.info, self.fps, self.choice, self.stop_after = info, fps, choice, stop_after
        self._transform, self._on_frame = transform, on_frame
        rate = float(fps)
        capacity = max(16, info.frames + 16)
        self._points = np.zeros((capacity, MESH_POINTS, 2), np.float32)
        self._valid = np.zeros(capacity, bool)
        self._smooth = np.zeros((capacity, MESH_POINTS, 2), np.float32)
        self._presence = np.zeros(capacity, np.float32)
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
            maxlen=max(2, round(LOOP_END_S * rate)))
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
                    if self._stop.is_set() or (self.stop_after is not None
                                               and i >= self.stop_after):
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

    def _extras(self, i: int, rgb: np.ndarray, pts: np.ndarray | None
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
            self._smooth[self._final: end] = smooth[self._final - lo: end - lo]
            self._presence[self._final: end] = presence[self._final - lo: end - lo]
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
        return FaceSeries(points, presence, int(self._valid[: self.count].sum()),
                          list(self.start_thumbs), list(self.end_thumbs), self.colours(),
                          self.samples())


def track_video(info: VideoInfo, fps: Fraction, choice: FaceChoice, stop_after: int | None
                ) -> FaceSeries:
    """Follow the chosen face through the video (or its first ``stop_after`` frames)."""
    tracking = FaceTracking(info, fps, choice, stop_after).start()
    try:
        return tracking.series()
    finally:
        tracking.stop()


def _keep_sample(samples: dict[int, list[tuple[np.ndarray, np.ndarray]]], rgb: np.ndarray,
                 pts: np.ndarray) -> None:
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
    crop = rgb[max(0, y0): min(h, y0 + side_px), max(0, x0): min(w, x0 + side_px)]
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
    locs = np.stack([fr.local(points[i].astype(np.float64)) for fr, i in zip(frames, sample,
                                                                             strict=True)])
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


# --------------------------------------------------------------------------- looping


@dataclass(frozen=True)
class Loop:
    """Play to ``end``, then go on from ``start + 1``; the ``fade`` frames up to ``end``
    are cross-faded with those up to ``start``."""

    start: int
    end: int
    fade: int

    @property
    def period(self) -> int:
        return self.end - self.start


def choose_loop(series: FaceSeries, fps: float) -> Loop:
    """The loop whose jump shows least: the picture and the head pose over the
    cross-fade before the end frame best match those before the start frame."""
    n = len(series)
    fade = max(2, round(CROSSFADE_S * fps))
    # The end thumbnails that run without a break up to the last frame.
    ends = [(i, th) for i, th in series.end_thumbs if i < n]
    while len(ends) > 1 and ends[-1][0] - ends[0][0] != len(ends) - 1:
        ends.pop(0)
    if len(series.start_thumbs) < fade or len(ends) < fade or not ends or ends[-1][0] != n - 1:
        return Loop(0, n - 1, 0)  # too little to choose from: the plain loop
    first_end = ends[0][0]
    start = np.stack(series.start_thumbs).reshape(len(series.start_thumbs), -1)
    end = np.stack([th for _, th in ends]).reshape(len(ends), -1)
    # Picture difference (0..1) between every end candidate and every start candidate
    # (row by row: the whole cube would take a hundred megabytes).
    diff = np.stack([np.abs(row[None, :] - start).mean(axis=1) for row in end]) / 255.0
    pose = series.points[:, POSE_POINTS].astype(np.float64)
    present = series.presence > 0
    ends_idx = np.arange(first_end, n)
    starts_idx = np.arange(len(start))
    scale = np.array([eye_frame(series.points[i]).iod if present[i] else 1.0
                      for i in starts_idx])
    d_pose = np.linalg.norm(pose[ends_idx][:, None] - pose[starts_idx][None], axis=3).mean(axis=2)
    both = present[ends_idx][:, None] & present[starts_idx][None, :]
    one = present[ends_idx][:, None] != present[starts_idx][None, :]
    diff += np.where(both, POSE_WEIGHT * d_pose / scale[None, :], 0.0) + np.where(one, 0.5, 0.0)
    # Cost of jumping from end e to start s: the mean difference over the fade before them.
    cost = np.zeros_like(diff)
    for j in range(fade):
        shifted = np.full_like(diff, np.inf)
        shifted[j:, j:] = diff[: len(diff) - j, : diff.shape[1] - j]
        cost += shifted / fade
    e_grid, s_grid = np.meshgrid(ends_idx, starts_idx, indexing="ij")
    min_period = max(2 * fade + 2, n // 2)
    cost[e_grid - s_grid < min_period] = np.inf
    # Slightly prefer longer loops: fewer repeats of the same stretch.
    cost += 0.002 * (n - (e_grid - s_grid)) / fps
    if not np.isfinite(cost).any():
        return Loop(0, n - 1, 0)
    a, b = np.unravel_index(int(np.argmin(cost)), cost.shape)
    return Loop(int(starts_idx[b]), int(ends_idx[a]), fade)


def schedule(n_out: int, n_src: int, loop: Loop | None) -> Iterator[tuple[int, int | None, float]]:
    """For each output frame: the source frame, and a frame to cross-fade it with (weight)."""
    k = 0
    i = 0
    while k < n_out:
        if loop is None or i <= loop.end:
            blend, w = None, 0.0
            if loop is not None and loop.fade and i > loop.end - loop.fade:
                j = i - (loop.end - loop.fade)  # 1..fade
                blend, w = loop.start - (loop.end - i), j / (loop.fade + 1.0)
            if i >= n_src:
                return
            yield i, blend, w
            k += 1
            i += 1
        else:
            i = loop.start + 1


# --------------------------------------------------------------------------- the use case


def dub_video(spec: DubVideoSpec, progress: Progress | None = None) -> DubVideoResult:
    """Dub ``spec.video`` with the new speech into ``spec.output``.

    Raises :class:`InputError` on bad input (codes from the video check, the
    speech, ``no_face``, ``face_not_found``); nothing is written then.
    """
    report = progress or (lambda _f, _s: None)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    spec.check()
    report(0.0, "checking video")
    info = probe_video(spec.video, spec.limits)
    fps = source_output_rate(info)
    width, height = info.width, info.height
    if info.rotation in (90, 270):
        width, height = height, width
    width, height = width - width % 2, height - height % 2

    report(0.01, "preparing speech")
    t = time.perf_counter()
    audio, phonemes = prepare_speech(spec)
    track = frame_track(audio, phonemes, fps)
    n_out = len(track)
    if spec.export_visemes:
        from facecast.motion.export import save_track

        save_track(track, spec.export_visemes)
    timings["speech"] = time.perf_counter() - t
    if spec.on_speech is not None:
        spec.on_speech(n_out / float(fps))

    # Tracking covers what will be shown: all of it when the video may have to loop,
    # else up to the end of the speech (plus the smoothing filter's reach).
    est_src = max(1, round(info.duration * float(fps)))
    stop_after = n_out + round(float(fps)) if n_out + round(float(fps)) < est_src else None
    to_track = min(est_src, stop_after or est_src)
    total_work = _TRACK_COST * to_track + _RENDER_COST * n_out
    base = 0.03
    written = [0]

    def update() -> None:
        done = _TRACK_COST * min(tracking.count, to_track) + _RENDER_COST * written[0]
        report(base + (1 - base) * min(done / total_work, 1.0),
               "rendering" if written[0] else "tracking face")

    tracking = FaceTracking(info, fps, FaceChoice(spec.face_index, spec.face_point),
                            stop_after).start()
    try:
        t = time.perf_counter()
        profile = _profile(tracking, fps, spec, update)
        dubber = MouthDubber(profile.reference, profile.width,
                             jaw_gain=jaw_gain(profile, track), colours=tracking.colours())
        dubber.rig.jaw_cancel = calibrate_jaw(dubber, tracking.samples())
        loop = None
        if stop_after is None:
            # The speech may outlast the video: the loop point needs its last seconds.
            while not tracking.wait_done(timeout=0.5):
                update()
            if n_out > tracking.count:
                loop = choose_loop(tracking.series(), float(fps))
        timings["setup"] = time.perf_counter() - t

        t = time.perf_counter()

        def rendered(k: int) -> None:
            written[0] = k
            update()

        n_src = tracking.count if tracking.done else est_src + round(float(fps))
        crf = spec.crf if spec.crf is not None else default_crf(width, height)
        frames = encode_dub(spec.output, info, fps, tracking.frame, n_src, dubber, track, loop,
                            audio, width, height, rendered, crf=crf, preset=spec.preset)
        timings["render"] = time.perf_counter() - t
    finally:
        tracking.stop()
    timings["total"] = time.perf_counter() - t0
    report(1.0, "done")
    presence = tracking.finalized()[1]
    used = min(len(presence), n_out)
    dubbed = int(np.count_nonzero(presence[:used] > 0))
    return DubVideoResult(Path(spec.output), frames / float(fps), frames, width, height,
                          float(fps), used, dubbed,
                          (loop.end, loop.start) if loop else None, dubber.rig.jaw_cancel,
                          track, phonemes, timings)


def _profile(tracking: FaceTracking, fps: Fraction, spec: DubVideoSpec,
             update: Callable[[], None]) -> FaceProfile:
    """The person's profile from the first seconds with the face (waits for them)."""
    frames = round(PROFILE_S * float(fps))
    while not tracking.wait_until(frames, PROFILE_MIN_FACES, timeout=0.5):
        update()
    # Smooth what has been tracked so far (all of it, once tracking has ended).
    tracking.frame(max(0, tracking.count - 2 * round(LOOKAHEAD_S * float(fps))))
    points, presence = tracking.finalized()
    profile = face_profile(points, presence)
    if profile is None:
        tracking.wait_done()
        if tracking.count:
            tracking.frame(tracking.count - 1)
        profile = face_profile(*tracking.finalized())
    if profile is None:
        raise InputError(f"no face could be followed in video {Path(spec.video).name!r}",
                         code="no_face")
    return profile


def calibrate_jaw(dubber: MouthDubber, samples: list[tuple[np.ndarray, np.ndarray]]) -> float:
    with FaceAnalyzer() as analyzer:
        def mesh(image: np.ndarray, hint: np.ndarray) -> np.ndarray | None:
            lo, hi = hint.min(axis=0), hint.max(axis=0)
            box = FaceBox(float(lo[0]), float(lo[1]), float(hi[0] - lo[0]),
                          float(hi[1] - lo[1]), 1.0)
            found = analyzer.landmarks(image, box)
            return None if found is None else found[:MESH_POINTS, :2]

        return calibrate_jaw_cancel(dubber, samples, mesh)


FrameData = Callable[[int], "tuple[np.ndarray, float] | None"]


def dubbed_frames(info: VideoInfo, fps: Fraction, frame_data: FrameData, n_src: int,
                  dubber: MouthDubber, track: MouthTrack, loop: Loop | None
                  ) -> Iterator[np.ndarray]:
    """The output frames, in order: source frames (looped or cut) with the new mouth.

    ``frame_data(i)`` gives frame ``i``'s smoothed landmarks and presence (None: no
    tracking there, the frame passes through).
    """
    plan = schedule(len(track), n_src, loop)
    cache: dict[int, np.ndarray] = {}  # the source frames the loop cross-fades into
    keep = set(range(loop.start - loop.fade + 1, loop.start + 1)) if loop and loop.fade else set()
    k = 0
    step = next(plan, None)

    def dub(image: np.ndarray, i: int, mouth: np.ndarray) -> tuple[np.ndarray, float, Any]:
        data = frame_data(i)
        if data is None:
            return image.copy(), 0.0, None
        pts, presence = data
        return dubber.render(image, pts, mouth, presence), presence, pts

    while step is not None:
        # One decoding pass over the source per round of the loop.
        produced = 0
        for i, frame in prefetched(source_frames(info, fps)):
            if i in keep and i not in cache:
                cache[i] = frame
            if i < step[0]:
                continue
            _, blend, w = step
            mouth = track.values[k]
            out, here, pts = dub(frame, i, mouth)
            if blend is not None and blend in cache:
                other, there, other_pts = dub(cache[blend], blend, mouth)
                if here > 0 and there > 0:
                    out = morph_blend(out, pts, other, other_pts, w)
                else:
                    out = cv2.addWeighted(other, w, out, 1.0 - w, 0.0)
            yield out
            k += 1
            produced += 1
            step = next(plan, None)
            if step is None or step[0] <= i:
                break  # done, or the next round starts earlier in the video
        if not produced:
            return  # the source has fewer frames than planned: end here


def default_crf(width: int, height: int) -> int:
    """16, or 14 for small videos (short side under 480 px): see :class:`DubVideoSpec`."""
    return 14 if min(width, height) < 480 else 16


def encode_dub(output: PathLike, info: VideoInfo, fps: Fraction, frame_data: FrameData,
               n_src: int, dubber: MouthDubber, track: MouthTrack, loop: Loop | None,
               audio: Audio, width: int, height: int, progress: Callable[[int], None], *,
               crf: int, preset: str) -> int:
    """The render pass: the frames of ``info`` (looped by ``loop`` or cut) re-voiced with
    ``track`` and encoded with ``audio`` into ``output``; returns the frames written.

    ``frame_data(i)`` gives source frame ``i``'s landmarks and presence: from a live
    :class:`FaceTracking` (dubbing) or stored ones (a cloned video avatar). Frames
    are rendered in a worker thread while this thread encodes (both cores busy);
    nothing is left at ``output`` unless it succeeds.
    """
    frames: queue.Queue = queue.Queue(maxsize=6)
    stop = threading.Event()
    failure: list[BaseException] = []

    def produce() -> None:
        try:
            for frame in dubbed_frames(info, fps, frame_data, n_src, dubber, track, loop):
                while not stop.is_set():
                    try:
                        frames.put(frame, timeout=0.2)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
        except BaseException as exc:  # re-raised in the encoding thread
            failure.append(exc)
        finally:
            with contextlib.suppress(queue.Full):
                frames.put(_DONE, timeout=1.0)

    worker = threading.Thread(target=produce, name="facecast-dub", daemon=True)
    worker.start()
    n = len(track)
    step = max(1, n // 100)
    # Mp4Writer takes the rate as a number of frames per second; a Fraction keeps
    # 30000/1001 exact (its time base becomes 1001/30000).
    rate: int | Fraction = int(fps) if fps.denominator == 1 else fps
    try:
        # The source's colour tags and matrix: untouched parts of each frame look as they did.
        with Mp4Writer(output, width, height, rate, audio,  # type: ignore[arg-type]
                       crf=crf, preset=preset, colour=video_colour(info.path)) as writer:
            while True:
                item = frames.get()
                if item is _DONE:
                    break
                writer.write(item)
                if writer.frames_written % step == 0:
                    progress(writer.frames_written)
            if failure:
                raise failure[0]
            if writer.frames_written == 0:
                raise InputError(f"no frames could be decoded from {info.path.name!r}",
                                 code="unreadable_video")
            return writer.frames_written
    finally:
        stop.set()
        worker.join(timeout=5)
