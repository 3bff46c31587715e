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
:func:`frame_track` are shared the same way. The stages live in modules of their
own: reading frames (:mod:`facecast.pipeline.frames`), tracking
(:mod:`facecast.pipeline.face_tracking`) and looping (:mod:`facecast.pipeline.video_loop`).

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
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import cv2
import numpy as np

from facecast.errors import InputError
from facecast.face.analysis import FaceAnalyzer, FaceBox
from facecast.media import Audio, Mp4Writer
from facecast.media.colour import video_colour
from facecast.media.video_reader import DUB_LIMITS, VideoInfo, VideoLimits, probe_video
from facecast.motion.track import MouthTrack
from facecast.pipeline.face_tracking import (
    LOOKAHEAD_S,
    PROFILE_MIN_FACES,
    PROFILE_S,
    FaceProfile,
    FaceTracking,
    face_profile,
    jaw_gain,
    track_video,
)
from facecast.pipeline.frames import (  # the public ones re-exported: see __all__
    STANDARD_RATES,
    output_rate,
    prefetched,
    rotate_upright,
    source_frames,
    source_output_rate,
)
from facecast.pipeline.specs import check_face_index, check_speech_choice
from facecast.pipeline.talking_photo import (
    SpeechReady,
    SpeechSource,
    heard_if_needed,
    mouth_track,
    speech_with_words,
)
from facecast.pipeline.video_loop import (
    CROSSFADE_S,
    POSE_POINTS,
    POSE_WEIGHT,
    Loop,
    choose_loop,
    schedule,
)
from facecast.render.dub import (
    MouthDubber,
    calibrate_jaw_cancel,
    morph_blend,
)
from facecast.render.rig import MESH_POINTS
from facecast.render.video_face import FaceChoice
from facecast.timing import PhonemeTiming

if TYPE_CHECKING:
    from facecast.captions import CaptionBurner, CaptionStyle, Cue
    from facecast.motion.recognition import Recognition
    from facecast.pipeline.captioning import Captions

PathLike = str | os.PathLike[str]
Progress = Callable[[float, str], None]

# The use case, and the parts of it that moved to their own modules (importers of this
# module keep working).
__all__ = [
    "CROSSFADE_S",
    "POSE_POINTS",
    "POSE_WEIGHT",
    "STANDARD_RATES",
    "CaptionedSpeech",
    "DubVideoResult",
    "DubVideoSpec",
    "FaceProfile",
    "FaceTracking",
    "FrameData",
    "Loop",
    "PathLike",
    "Progress",
    "SpeechReady",
    "SpeechSource",
    "calibrate_jaw",
    "caption_burner",
    "choose_loop",
    "default_crf",
    "dub_video",
    "dubbed_frames",
    "encode_dub",
    "face_profile",
    "frame_track",
    "jaw_gain",
    "output_rate",
    "prefetched",
    "prepare_speech",
    "rotate_upright",
    "schedule",
    "source_frames",
    "source_output_rate",
    "speech_track",
    "speech_with_words",
    "track_video",
]

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
    captions: Sequence[PathLike] = ()  # caption files to write (.srt / .vtt)
    burn_captions: CaptionStyle | None = None  # and/or the captions drawn into the picture

    @property
    def wants_captions(self) -> bool:
        return bool(self.captions) or self.burn_captions is not None

    def check(self) -> None:
        """The request's own rules, before the video is read."""
        check_speech_choice(self.audio, self.text)
        check_face_index(self.face_index)
        if self.wants_captions:
            from facecast.pipeline.captioning import check_captions

            check_captions(self.captions, self.burn_captions)


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
    captions: list[Cue] = field(default_factory=list)
    captions_source: str | None = None  # "tts", "transcript" or "recognised"


# --------------------------------------------------------------------------- inputs


def prepare_speech(spec: SpeechSource) -> tuple[Audio, list[PhonemeTiming]]:
    """The audio to speak and, when the words are known, its phoneme timings."""
    audio, phonemes, _ = speech_with_words(spec)
    return audio, phonemes


class CaptionedSpeech(SpeechSource, Protocol):
    """A use case's speech with its caption and viseme-export wishes (a dub, an avatar
    render)."""

    export_visemes: PathLike | None

    @property
    def wants_captions(self) -> bool: ...


def speech_track(spec: CaptionedSpeech, fps: Fraction
                 ) -> tuple[Audio, list[PhonemeTiming], Captions | None, MouthTrack]:
    """The speech of ``spec``, its captions when asked and its mouth track at ``fps``
    (written to ``spec.export_visemes`` when asked). Audio without its words is
    recognised once for both; speech that cannot be captioned stops here, before the
    costly part."""
    audio, phonemes, words = speech_with_words(spec)
    captions = None
    heard = heard_if_needed(audio, phonemes, spec.wants_captions)
    if spec.wants_captions:
        from facecast.pipeline.captioning import make_captions

        captions = make_captions(audio, words, text=spec.text, transcript=spec.transcript,
                                 heard=heard)
    track = frame_track(audio, phonemes, fps, heard=heard)
    if spec.export_visemes:
        from facecast.motion.export import save_track

        save_track(track, spec.export_visemes)
    return audio, phonemes, captions, track


def frame_track(audio: Audio, phonemes: list[PhonemeTiming], fps: Fraction, *,
                heard: Recognition | None = None) -> MouthTrack:
    """The mouth track at the video's rate, one row per output frame (the audio's length)."""
    n_out = max(1, round(audio.duration * float(fps)))
    track = mouth_track(audio, phonemes, float(fps), heard=heard)
    values = track.values[:n_out]
    if len(values) < n_out:
        values = np.concatenate([values, np.zeros((n_out - len(values), values.shape[1]),
                                                  values.dtype)])
    return MouthTrack(float(fps), values, track.source, track.meta)


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
    audio, phonemes, captions, track = speech_track(spec, fps)
    n_out = len(track)
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
    update()  # the stage is named as it starts, however soon the first frames are in
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
                            audio, width, height, rendered, crf=crf, preset=spec.preset,
                            burner=caption_burner(captions, spec.burn_captions, width, height,
                                                  fps))
        timings["render"] = time.perf_counter() - t
    finally:
        tracking.stop()
    if captions is not None:
        from facecast.pipeline.captioning import save_captions

        save_captions(captions, spec.captions)  # with the video, not without it
    timings["total"] = time.perf_counter() - t0
    report(1.0, "done")
    presence = tracking.finalized()[1]
    used = min(len(presence), n_out)
    dubbed = int(np.count_nonzero(presence[:used] > 0))
    return DubVideoResult(Path(spec.output), frames / float(fps), frames, width, height,
                          float(fps), used, dubbed,
                          (loop.end, loop.start) if loop else None, dubber.rig.jaw_cancel,
                          track, phonemes, timings,
                          captions=captions.cues if captions else [],
                          captions_source=captions.source if captions else None)


def caption_burner(captions: Captions | None, style: CaptionStyle | None, width: int,
                   height: int, fps: Fraction) -> CaptionBurner | None:
    """What draws ``captions`` into the output frames, when they are burned."""
    if captions is None or style is None:
        return None
    from facecast.captions import CaptionBurner

    return CaptionBurner(captions.cues, width, height, float(fps), style)


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
               crf: int, preset: str, burner: CaptionBurner | None = None) -> int:
    """The render pass: the frames of ``info`` (looped by ``loop`` or cut) re-voiced with
    ``track`` and encoded with ``audio`` into ``output``; returns the frames written.

    ``frame_data(i)`` gives source frame ``i``'s landmarks and presence: from a live
    :class:`FaceTracking` (dubbing) or stored ones (a cloned video avatar). Frames
    are rendered in a worker thread while this thread encodes (both cores busy);
    ``burner`` draws the captions into them there. Nothing is left at ``output``
    unless it succeeds.
    """
    frames: queue.Queue = queue.Queue(maxsize=6)
    stop = threading.Event()
    failure: list[BaseException] = []

    def produce() -> None:
        try:
            made = dubbed_frames(info, fps, frame_data, n_src, dubber, track, loop)
            for frame in made if burner is None else burner.frames(made):
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
