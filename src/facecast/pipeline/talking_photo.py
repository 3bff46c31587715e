"""Talking photo: one portrait + speech (audio or text) -> a lip-synced MP4.

The use case composes the engine parts: the face check and mesh
(:mod:`facecast.face`), speech (an audio file, or piper TTS for text), a mouth
track from phoneme timings when the words are known or from the sound alone
otherwise (:mod:`facecast.motion`), blinks and head motion, an expression
template and/or a free-text prompt (brows, eyes, smile, head gestures, a camera
zoom; :mod:`facecast.motion.expressions`, :mod:`facecast.motion.prompt`), the animator
(:mod:`facecast.render`), the optional composition of the canvas (background,
cut-out person, placement, mask, image layers) and the streaming MP4 writer
(:mod:`facecast.media`).
It knows nothing of HTTP; progress is reported through a callback.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import cv2
import numpy as np

from facecast.errors import FaceCheckError, InputError
from facecast.face import DEFAULT_LIMITS, FaceCheckLimits, check_face
from facecast.media import Audio, Mp4Writer, load_audio, load_image
from facecast.media.colour import BT709, Colour, video_colour
from facecast.media.video import render_preset
from facecast.motion.expressions import ExpressionPlan, expression_track, get_template
from facecast.motion.life import LifeTrack, life_track, with_gestures
from facecast.motion.prompt import PromptPlan, parse_prompt
from facecast.motion.recognition_process import RecognitionProcess, recognises
from facecast.motion.track import CHANNEL_INDEX, MouthTrack
from facecast.pipeline.frames import prefetched
from facecast.pipeline.specs import check_look, check_speech_choice
from facecast.render.canvas import canvas_size, fit_photo
from facecast.render.compose import Composition, Compositor, VideoFill, check_canvas
from facecast.rules import (
    DEFAULT_FPS,
    DEFAULT_HEAD_MOTION,
    DEFAULT_SIZE,
    MAX_AUDIO_S,
    MIN_AUDIO_S,
)
from facecast.timing import PhonemeTiming, WordTiming

if TYPE_CHECKING:
    from facecast.captions import CaptionStyle, Cue
    from facecast.motion.recognition import Recognition
    from facecast.pipeline.captioning import Captions
    from facecast.render.animator import PortraitAnimator

PathLike = str | os.PathLike[str]
Progress = Callable[[float, str], None]
# Told the output's length in seconds once the speech is ready, before the costly part
# (the service prices the job there; raising stops the render).
SpeechReady = Callable[[float], None]

PHONEME_LEAD_S = 0.04
# Recognised phones (pocketsphinx on real speech) are drawn this much earlier as a whole,
# on top of the usual 40 ms anticipation: without it the lips trailed the sound's
# envelope by 30 ms (bench_lipsync) and Klobuchar's real lips by 40 ms (bench_reenact).
# A larger lead instead would also lengthen the lip-contact hold (track_from_phonemes),
# which cost r (0.42 -> 0.28 at 120 ms); a plain shift keeps it (0.41 at 60 + 40 ms).
RECOGNISED_LEAD_S = 0.04
RECOGNISED_ADVANCE_S = 0.06
# Share of the spectral (loudness) jaw mixed into the recognised one. Lips also open
# wider when speech is louder; 0.2 kept real-lip r (Obama 0.42 -> 0.43, Klobuchar 0.63
# -> 0.58) and raised the sync to the sound's envelope (0.41 -> 0.48, bench_lipsync's
# bar is 0.35). Scaling the jaw by loudness instead measured worse on both.
SPECTRAL_JAW_SHARE = 0.2
# A render on partly recognised speech (the recogniser's first chunks) draws the frames up
# to this long before the end of what was heard: the mouth track looks ahead about 0.7 s
# (a phone's reach, the recognised lead) and a blink's placement 0.8 s (life_track), so
# these frames are those of the whole recognition; the head's slow nod looks further
# (a 0.8 s Gaussian) and differs by up to 0.0005 IOD (see speech_tracks).
PROGRESSIVE_MARGIN_S = 1.2


@dataclass
class TalkingPhotoSpec:
    """What to render. Give ``audio`` or ``text`` (with an optional ``voice``)."""

    photo: PathLike | np.ndarray
    output: PathLike
    audio: PathLike | None = None
    text: str | None = None
    voice: str | None = None
    transcript: str | None = None  # words of ``audio``, for phoneme-accurate lips (English)
    size: str = DEFAULT_SIZE  # "source", "720p", "1080p", "4k" or "WxH"
    aspect: str | None = None  # one of rules.ASPECTS (canvas shape; the portrait is fitted)
    fps: int = DEFAULT_FPS
    seed: int = 0
    head_motion: float = DEFAULT_HEAD_MOTION  # 0 keeps the head still
    blinks: bool = True
    export_visemes: PathLike | None = None  # .json (facecast track) or .tsv (Rhubarb)
    face_limits: FaceCheckLimits = DEFAULT_LIMITS
    preset: str | None = None  # x264 speed/size trade-off; None: by size (render_preset)
    crf: int = 20
    # Background, cut-out person, placement, mask and layers; None: the portrait fitted
    # whole on its own blurred copy. Its canvas, when given, overrides size and aspect.
    composition: Composition | None = None
    # An expression template (key such as "happy", or its id); None: natural.
    expression: str | int | None = None
    # Free text steering expression, head gestures and camera (up to MAX_PROMPT_CHARS);
    # it changes and adds to the template. What it cannot use is in the result.
    prompt: str | None = None
    on_speech: SpeechReady | None = None
    # Caption files to write (.srt / .vtt) and/or captions drawn into the picture
    # (:mod:`facecast.pipeline.captioning` chooses the word timings).
    captions: Sequence[PathLike] = ()
    burn_captions: CaptionStyle | None = None

    @property
    def wants_captions(self) -> bool:
        return bool(self.captions) or self.burn_captions is not None

    def check(self) -> None:
        """The request's own rules (:mod:`facecast.pipeline.specs`), before any file is
        read: the same checks, and codes, as every other door gets."""
        check_speech_choice(self.audio, self.text)
        check_look(size=self.size, aspect=self.aspect, fps=self.fps,
                   head_motion=self.head_motion, prompt=self.prompt, expression=self.expression)
        if self.wants_captions:
            from facecast.pipeline.captioning import check_captions

            check_captions(self.captions, self.burn_captions)


@dataclass
class TalkingPhotoResult:
    output: Path
    duration: float
    frames: int
    width: int
    height: int
    track: MouthTrack
    phonemes: list[PhonemeTiming] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    expression: str = "natural"  # the template used
    prompt_unused: list[str] = field(default_factory=list)  # parts of the prompt not used
    prompt_actions: list[str] = field(default_factory=list)  # what the prompt did, in words
    captions: list[Cue] = field(default_factory=list)
    captions_source: str | None = None  # "tts", "transcript" or "recognised"


class SpeechSource(Protocol):
    """What a use case asks to be spoken: an audio file (optionally with its transcript)
    or a text for a voice (the talking photo, dub and avatar render specs all are)."""

    audio: PathLike | None
    text: str | None
    voice: str | None
    transcript: str | None


def speech_with_words(spec: SpeechSource
                      ) -> tuple[Audio, list[PhonemeTiming], list[WordTiming]]:
    """The audio to speak and, when the words are known, its phoneme and word timings
    (exactly one of audio and text, else InputError)."""
    check_speech_choice(spec.audio, spec.text)
    if spec.text is not None:
        from facecast.speech import synthesize

        speech = synthesize(spec.text, spec.voice)
        if speech.audio.duration > MAX_AUDIO_S:
            raise InputError(f"the text speaks for {speech.audio.duration:.0f} s, over the "
                             f"{MAX_AUDIO_S:.0f} s limit", code="audio_too_long")
        return speech.audio, speech.phonemes, speech.words
    assert spec.audio is not None  # checked above: exactly one of audio and text
    audio = load_audio(spec.audio, min_duration=MIN_AUDIO_S, max_duration=MAX_AUDIO_S)
    if spec.transcript:
        from facecast.motion.align import align_transcript

        words, phonemes = align_transcript(audio, spec.transcript)
        return audio, phonemes, words
    return audio, [], []


def heard_if_needed(audio: Audio, phonemes: list[PhonemeTiming], captions: bool
                    ) -> Recognition | None:
    """The speech recognised once for both the mouth and the captions, when both would
    recognise it (audio without its words, captions asked); else None (the mouth track
    recognises on its own: recognition costs about 0.1 s of CPU per audio second)."""
    if phonemes or not captions:
        return None
    from facecast.motion.recognition import recognise as recognise_speech

    return recognise_speech(audio)


def mouth_track(audio: Audio, phonemes: list[PhonemeTiming], fps: float, *,
                recognise: bool = True, heard: Recognition | None = None,
                spectral: MouthTrack | None = None) -> MouthTrack:
    """Mouth shapes at ``fps``: from phoneme timings when known; else, for English
    speech, from recognised phonemes; else (other languages, noise, low confidence, or
    ``recognise=False``) from the sound alone.

    ``track.source`` says which: ``"phonemes"``, ``"recognised"`` or ``"audio"``; an
    audio-only track's ``meta["recognition"]`` holds the recogniser's figures.
    ``spectral``: the audio's own ``track_from_audio(audio, fps=100.0)``, when already made.
    """
    from facecast.motion.from_phonemes import track_from_phonemes

    if phonemes:
        # Piper's phoneme spans trail the sound by ~20 ms and /p b m/ last only 25-45 ms:
        # 40 ms of anticipation measures lips leading by ~20 ms (r 0.49) with the lips
        # shut at bilabial centres (gap 0.09x open vowels); 60 ms misses the closures.
        track = track_from_phonemes(phonemes, audio.duration, fps=100.0, lead=PHONEME_LEAD_S)
        return track.resampled(fps)
    from facecast.motion.from_audio import track_from_audio

    if spectral is None:
        spectral = track_from_audio(audio, fps=100.0)
    spectral = MouthTrack(spectral.fps, spectral.values, spectral.source,
                          dict(spectral.meta))  # its meta is written below
    if recognise:
        if heard is None:
            from facecast.motion.recognition import recognise as recognise_speech

            heard = recognise_speech(audio)
        figures = heard.summary()
        if heard.confident:
            earlier = [PhonemeTiming(p.phoneme, max(p.start - RECOGNISED_ADVANCE_S, 0.0),
                                     max(p.end - RECOGNISED_ADVANCE_S, 0.0))
                       for p in heard.phonemes]
            track = track_from_phonemes(earlier, audio.duration, fps=100.0,
                                        lead=RECOGNISED_LEAD_S)
            values = track.values.copy()
            n = min(len(values), len(spectral.values))
            jaw = CHANNEL_INDEX["jaw"]
            values[:n, jaw] = ((1.0 - SPECTRAL_JAW_SHARE) * values[:n, jaw]
                               + SPECTRAL_JAW_SHARE * spectral.values[:n, jaw])
            return MouthTrack(track.fps, values, "recognised",
                              {**track.meta, "recognition": figures}).resampled(fps)
        spectral.meta["recognition"] = figures
    # The spectral track as it is: a 0.75 jaw gain brought Obama's render from 1.9x to
    # 1.35x his real amplitude but cost the German render's sync (r 0.51 -> 0.46).
    return spectral.resampled(fps)


def render_talking_photo(spec: TalkingPhotoSpec, progress: Progress | None = None, *,
                         recogniser: RecognitionProcess | None = None) -> TalkingPhotoResult:
    """Render ``spec`` to ``spec.output``; raises InputError / FaceCheckError on bad input.

    Nothing is left at ``spec.output`` unless the whole render succeeded.
    ``recogniser``: a recogniser's child the caller started before importing this module
    (:func:`~facecast.motion.recognition_process.start_recogniser`); used if the speech is
    to be recognised, closed in any case.
    """
    try:
        return _render_talking_photo(spec, progress, recogniser)
    finally:
        if recogniser is not None:
            recogniser.close()


def _render_talking_photo(spec: TalkingPhotoSpec, progress: Progress | None,
                          recogniser: RecognitionProcess | None) -> TalkingPhotoResult:
    report = progress or (lambda _f, _s: None)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    # Cheap checks first: a bad option, an unknown template or an overlong prompt costs
    # no face check.
    spec.check()
    template = get_template(spec.expression)
    prompt = parse_prompt(spec.prompt) if spec.prompt else PromptPlan("")
    plan = prompt.plan(template.controls) if not prompt.is_empty() \
        else ExpressionPlan(template.controls)

    # Audio without its words is recognised in a child process, started now so that its
    # imports overlap the face check and its decoding the portrait's set-up.
    ahead = (recogniser or RecognitionProcess()) if _recognises(spec) else None
    try:
        try:
            return _render(spec, report, timings, t0, template.key, prompt, plan, ahead)
        except _Redo:
            # Frames drawn on a confident first part, then the whole speech not confident:
            # drawn again from the start, all from the spectral track (rare; slower, never
            # different from a render that waited for the whole recognition).
            timings.clear()
            return _render(spec, report, timings, t0, template.key, prompt, plan, ahead,
                           progressive=False)
    finally:
        if ahead is not None:
            ahead.close()


def _recognises(spec: TalkingPhotoSpec) -> bool:
    """Whether the mouth track will recognise the speech (audio given without its words)."""
    return recognises(spec.audio, spec.text, spec.transcript)


def _render(spec: TalkingPhotoSpec, report: Progress, timings: dict[str, float], t0: float,
            expression: str, prompt: PromptPlan, plan: ExpressionPlan,
            ahead: RecognitionProcess | None, *, progressive: bool = True
            ) -> TalkingPhotoResult:
    """The stages of :func:`render_talking_photo` after the spec's own checks.

    ``progressive``: with speech recognised in ``ahead`` (and no captions, composition or
    expression, which want all of it), start rendering on its first chunks
    (:class:`_Progressive`)."""
    report(0.0, "analysing face")
    photo = spec.photo if isinstance(spec.photo, np.ndarray) else load_image(
        spec.photo, max_bytes=spec.face_limits.max_bytes)
    verdict = check_face(photo, spec.face_limits)
    if not verdict.accepted or verdict.analysis is None:
        raise FaceCheckError(verdict.message, code=verdict.reason or "no_face",
                             verdict=verdict.to_dict())
    ph, pw = photo.shape[:2]
    comp = spec.composition
    if comp is not None and comp.canvas is not None:
        width, height = comp.canvas
    else:
        width, height = canvas_size(pw, ph, spec.size, spec.aspect)
    if comp is not None:
        check_canvas(width, height)
    timings["face"] = time.perf_counter() - t0

    report(0.02, "preparing speech")
    t = time.perf_counter()
    audio, phonemes, words = speech_with_words(spec)
    if ahead is not None and not ahead.sent:
        ahead.send(audio)  # decoded in the child while the portrait is set up
    timings["speech"] = time.perf_counter() - t

    report(0.05, "preparing portrait")
    t = time.perf_counter()
    # The portrait's set-up needs no mouth track: it runs while the speech is recognised.
    portrait = _Portrait(spec, photo, verdict.analysis.landmarks, width, height)
    timings["setup"] = time.perf_counter() - t
    growing: _Progressive | None = None
    if progressive and ahead is not None and not spec.wants_captions and plan.is_neutral() \
            and portrait.compositor is None:
        n_frames = max(1, round(audio.duration * spec.fps))
        if spec.on_speech is not None:
            spec.on_speech(n_frames / spec.fps)
        growing = _Progressive(ahead, audio, spec, n_frames, portrait.animator)
        frames: Iterator[np.ndarray] = growing.frames()
        captions = None
    else:
        frames, captions, track = _frames_on_whole_speech(
            spec, portrait, ahead, audio, phonemes, words, plan, timings, width, height)
        n_frames = len(track)
    t = time.perf_counter()
    # The writer stops the audio at the last frame; a shorter track simply ends early.
    frames_done = _encode(spec, frames, n_frames, audio, width, height, report,
                          cancel=growing.ahead.close if growing is not None else None)
    timings["render"] = time.perf_counter() - t
    if growing is not None:
        assert ahead is not None and growing.track is not None  # the frames all came
        track = growing.track
        # > 0: the render waited this long for the recogniser's chunks
        timings["recognition_wait"] = ahead.wait_s
        timings["frames_before_whole"] = float(growing.early)
        if spec.export_visemes:
            from facecast.motion.export import save_track

            save_track(track, spec.export_visemes)
    if captions is not None and spec.captions:
        from facecast.pipeline.captioning import save_captions

        save_captions(captions, spec.captions)  # with the video, not without it
    timings["total"] = time.perf_counter() - t0
    report(1.0, "done")
    return TalkingPhotoResult(Path(spec.output), n_frames / spec.fps, frames_done, width, height,
                              track, phonemes, timings, expression=expression,
                              prompt_unused=list(prompt.unused),
                              prompt_actions=list(prompt.actions),
                              captions=captions.cues if captions else [],
                              captions_source=captions.source if captions else None)


def _frames_on_whole_speech(spec: TalkingPhotoSpec, portrait: _Portrait,
                            ahead: RecognitionProcess | None, audio: Audio,
                            phonemes: list[PhonemeTiming], words: list[WordTiming],
                            plan: ExpressionPlan, timings: dict[str, float], width: int,
                            height: int
                            ) -> tuple[Iterator[np.ndarray], Captions | None, MouthTrack]:
    """The frames, captions and mouth track once the speech's words are all known."""
    try:
        t = time.perf_counter()
        heard: Recognition | None
        if ahead is not None:
            heard = ahead.result()
            # > 0: the recogniser, not the portrait, held the render up this long
            timings["recognition_wait"] = ahead.wait_s
        else:
            heard = heard_if_needed(audio, phonemes, spec.wants_captions)
        captions = None
        if spec.wants_captions:
            from facecast.pipeline.captioning import make_captions

            # before the costly part: speech that cannot be captioned stops the render here
            captions = make_captions(audio, words, text=spec.text,
                                     transcript=spec.transcript, heard=heard)
        track = mouth_track(audio, phonemes, spec.fps, heard=heard)
        n_frames = max(1, round(audio.duration * spec.fps))
        track = MouthTrack(spec.fps, _fit_length(track.values, n_frames), track.source,
                           track.meta)
        if spec.export_visemes:
            from facecast.motion.export import save_track

            save_track(track, spec.export_visemes)
        timings["speech"] += time.perf_counter() - t
        if spec.on_speech is not None:
            spec.on_speech(n_frames / spec.fps)

        t = time.perf_counter()
        life = life_track(n_frames, spec.fps, seed=spec.seed, activity=track.channel("jaw"),
                          head_motion=spec.head_motion, blinks=spec.blinks)
        zoom: np.ndarray | None = None
        if not plan.is_neutral():  # natural without a prompt renders exactly as before
            expr = expression_track(plan, spec.fps, n_frames, track.channel("jaw"),
                                    seed=spec.seed)
            life = with_gestures(life, expr.head * spec.head_motion, gain=expr.gain,
                                 face=expr.face)
            if plan.camera is not None:
                zoom = expr.zoom
        frames = portrait.frames(track, life)
        if zoom is not None:
            frames = camera_zoom(frames, zoom, portrait.face_centre)
        if captions is not None and spec.burn_captions is not None:
            from facecast.captions import CaptionBurner

            frames = CaptionBurner(captions.cues, width, height, spec.fps,
                                   spec.burn_captions).frames(frames)
    except BaseException:
        portrait.close()  # a background video's reader (the frames never started)
        raise
    timings["setup"] += time.perf_counter() - t
    return frames, captions, track


class _Redo(Exception):
    """A progressive render's first frames were drawn from recognised phones, but the
    whole speech was not confident enough for them: render again, as a whole."""


class _Progressive:
    """Frames drawn while the speech is still being recognised: after each chunk the
    recogniser's child answers (:meth:`RecognitionProcess.next_part`), the frames up to
    :data:`PROGRESSIVE_MARGIN_S` before the end of what it heard are drawn from the mouth
    and life tracks of the words so far, and the rest once the whole is known.

    Each chunk is decoded on its own, so the phones heard so far are those of the whole
    recognition, and the tracks' frames before the margin are the whole tracks' (the
    head's nod to within 0.0005 IOD). A part is only drawn from when
    it is confident English; if the whole then is not, :class:`_Redo`."""

    def __init__(self, ahead: RecognitionProcess, audio: Audio, spec: TalkingPhotoSpec,
                 n_frames: int, animator: PortraitAnimator) -> None:
        self.ahead, self.audio, self.spec = ahead, audio, spec
        self.n_frames, self.animator = n_frames, animator
        self.track: MouthTrack | None = None  # the whole mouth track, once known
        self.early = 0  # frames drawn before the whole recognition came
        from facecast.motion.from_audio import track_from_audio

        self.spectral = track_from_audio(audio, fps=100.0)  # once, not for every part

    def frames(self) -> Iterator[np.ndarray]:
        from facecast.render.animator import render_in_order

        # One at a time while the recogniser's child still decodes (it is the longer branch,
        # and a second animator thread would take its core); two once the words are all in.
        return render_in_order(self.animator.render, self._jobs(),
                               narrow=lambda: self.track is None)

    def _jobs(self) -> Iterator[tuple[np.ndarray, float, np.ndarray]]:
        """The animator's arguments for each frame, in order, as the parts come."""
        done = 0
        while True:
            heard = self.ahead.next_part()
            track, life = speech_tracks(self.audio, heard, self.spec, self.n_frames,
                                        spectral=self.spectral)
            if heard.until_s is not None:
                if track.source != "recognised":
                    continue  # not yet sure it is English: wait for more
                limit = int((heard.until_s - PROGRESSIVE_MARGIN_S) * self.spec.fps)
                limit = min(max(limit, done), self.n_frames)
            else:
                if done and track.source != "recognised":
                    raise _Redo
                self.track, self.early, limit = track, done, self.n_frames
            for i in range(done, limit):
                yield track.values[i], float(life.blink[i]), life.head[i]
            done = limit
            if heard.until_s is None:
                return


def speech_tracks(audio: Audio, heard: Recognition, spec: TalkingPhotoSpec, n_frames: int,
                  *, spectral: MouthTrack | None = None) -> tuple[MouthTrack, LifeTrack]:
    """The mouth track (``n_frames`` long) and the natural life track (blinks, head)
    of audio-only speech with what was recognised of it (a part, or the whole).

    For a part, the head's nods follow the sound's own jaw (``spectral``, the audio's
    :func:`track_from_audio` at 100 fps) after what was heard: the nearest guess at the
    whole track's (which mixes a fifth of it in), so the nod drawn before the part's end
    is within 0.0005 IOD of the whole's (0.002 with a shut mouth there)."""
    if spectral is None:
        from facecast.motion.from_audio import track_from_audio

        spectral = track_from_audio(audio, fps=100.0)
    track = mouth_track(audio, [], spec.fps, heard=heard, spectral=spectral)
    track = MouthTrack(spec.fps, _fit_length(track.values, n_frames), track.source, track.meta)
    activity = track.channel("jaw")
    if heard.until_s is not None:
        heard_frames = min(int(heard.until_s * spec.fps), n_frames)
        guess = _fit_length(spectral.resampled(spec.fps).values, n_frames)
        activity = activity.copy()
        activity[heard_frames:] = guess[heard_frames:, CHANNEL_INDEX["jaw"]]
    life = life_track(n_frames, spec.fps, seed=spec.seed, activity=activity,
                      head_motion=spec.head_motion, blinks=spec.blinks)
    return track, life



class _Portrait:
    """The portrait set up to be animated: the animator alone on the fitted photo, or, with
    a composition, the animator on the avatar's own pixels and the compositor that puts
    them on the canvas. Needs no mouth track, so it is built while the speech is
    recognised."""

    def __init__(self, spec: TalkingPhotoSpec, photo: np.ndarray, landmarks: np.ndarray,
                 width: int, height: int) -> None:
        # Imported here, not with this module: the animator's imports (MediaPipe, SciPy)
        # take about a second, which an audio-only render spends beside the recogniser
        # (started before this) rather than before it.
        from facecast.render.animator import PortraitAnimator

        self.compositor: Compositor | None = None
        self.animator: PortraitAnimator
        comp = spec.composition
        if comp is None:
            fit = fit_photo(photo, width, height)
            fitted = fit.map_points(landmarks)
            self.animator = PortraitAnimator(fit.image, fitted,
                                             head_motion=spec.head_motion > 0)
            self.face_centre = _centre(fitted)
            return
        # The animator works on the avatar's own pixels only; the compositor puts each
        # frame on the canvas (so a 4K canvas costs 4K only where the avatar is).
        compositor = Compositor(comp, photo, landmarks, width, height, fps=spec.fps)
        try:
            self.animator = PortraitAnimator(compositor.avatar, compositor.landmarks,
                                             head_motion=spec.head_motion > 0)
        except BaseException:
            compositor.close()
            raise
        compositor.follow(self.animator.head)
        self.compositor = compositor
        # the avatar's pixels start at the composed region's corner on the canvas
        self.face_centre = _centre(compositor.landmarks) + np.array(
            [compositor.cols.start, compositor.rows.start], np.float64)

    def frames(self, track: MouthTrack, life: LifeTrack) -> Iterator[np.ndarray]:
        """The video's frames (the canvas), rendered as they are read."""
        if self.compositor is None:
            return self.animator.frames(track, life)
        # Animating and composing in threads of their own (encoding is a third): at 4K
        # each takes longer than encoding a frame, and in one thread they left a core idle.
        return _composed(self.compositor,
                         prefetched(enumerate(self.animator.frames(track, life))), life)

    def close(self) -> None:
        """Free what the set-up opened (a background video's reader) when no frames will
        be read; reading the frames to their end closes it otherwise."""
        if self.compositor is not None:
            self.compositor.close()


def _composed(compositor: Compositor, animated: Iterator[tuple[int, np.ndarray]],
              life: LifeTrack) -> Iterator[np.ndarray]:
    """Animator frames (rendered ahead in another thread) composed onto the canvas."""
    try:
        for i, frame in animated:
            yield compositor.compose(frame, life.head[min(i, len(life) - 1)])
    finally:
        close = getattr(animated, "close", None)
        if close is not None:
            close()  # stops the animating thread
        compositor.close()


def _centre(landmarks: np.ndarray) -> np.ndarray:
    """The middle of the face mesh's box (pixels)."""
    pts = np.asarray(landmarks)[:468, :2].astype(np.float64)
    return (pts.min(axis=0) + pts.max(axis=0)) / 2.0


def zoom_frame(frame: np.ndarray, zoom: float, centre: np.ndarray) -> np.ndarray:
    """``frame`` seen by a camera ``zoom`` times closer, aimed at ``centre`` as far as the
    picture allows (the view never leaves the frame, so no border shows)."""
    if zoom <= 1.0 + 1e-4:
        return frame
    h, w = frame.shape[:2]
    # The view's centre: the face, kept far enough inside for the view to fit; at zoom 1
    # that is the frame's centre, so the move starts without a jump.
    cx = float(np.clip(centre[0], w / (2 * zoom), w - w / (2 * zoom)))
    cy = float(np.clip(centre[1], h / (2 * zoom), h - h / (2 * zoom)))
    m = np.array([[zoom, 0.0, w / 2.0 - zoom * cx], [0.0, zoom, h / 2.0 - zoom * cy]])
    return cv2.warpAffine(frame, m, (w, h), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)


def camera_zoom(frames: Iterator[np.ndarray], zoom: np.ndarray, centre: np.ndarray
                ) -> Iterator[np.ndarray]:
    """The whole output picture zoomed per frame (a camera move, not a bigger head)."""
    try:
        for i, frame in enumerate(frames):
            yield zoom_frame(frame, float(zoom[min(i, len(zoom) - 1)]), centre)
    finally:
        close = getattr(frames, "close", None)
        if close is not None:
            close()  # a composed background video stops reading here


def _fit_length(values: np.ndarray, n: int) -> np.ndarray:
    if len(values) >= n:
        return values[:n]
    tail = np.zeros((n - len(values), values.shape[1]), values.dtype)
    return np.concatenate([values, tail])


_DONE = object()


def output_colour(spec: TalkingPhotoSpec) -> Colour:
    """BT.709 for a photo; on a background video, the video's tags (its frames fill most of
    the picture and should look as they do in the video)."""
    background = spec.composition.background if spec.composition is not None else None
    if isinstance(background, VideoFill):
        return video_colour(background.path)
    return BT709


def _encode(spec: TalkingPhotoSpec, source: Iterator[np.ndarray], n: int, audio: Audio,
            width: int, height: int, report: Progress,
            cancel: Callable[[], None] | None = None) -> int:
    """Render frames in a worker thread while this thread encodes them (two cores busy).

    ``cancel``: called when the encoding stops before the frames end, to release a worker
    that waits for something other than the queue (the recogniser's next chunk)."""
    frames: queue.Queue = queue.Queue(maxsize=6)
    stop = threading.Event()
    failure: list[BaseException] = []

    def produce() -> None:
        try:
            for frame in source:
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
            # Close the source here, in its own thread (a background video's decoder).
            with contextlib.suppress(Exception):
                source.close()  # type: ignore[attr-defined]
            # If the encoder already gave up, nobody reads the queue: do not block on it.
            with contextlib.suppress(queue.Full):
                frames.put(_DONE, timeout=1.0)

    worker = threading.Thread(target=produce, name="facecast-render", daemon=True)
    worker.start()
    step = max(1, n // 100)
    try:
        with Mp4Writer(spec.output, width, height, spec.fps, audio,
                       crf=spec.crf, preset=spec.preset or render_preset(width, height),
                       colour=output_colour(spec)) as writer:
            while True:
                item = frames.get()
                if item is _DONE:
                    break
                writer.write(item)
                if writer.frames_written % step == 0:
                    report(0.05 + 0.95 * writer.frames_written / n, "rendering")
            if failure:
                raise failure[0]
            return writer.frames_written
    finally:
        stop.set()
        if cancel is not None and worker.is_alive():
            cancel()
        worker.join(timeout=5)
