"""Expression templates: how the face and head behave while the portrait speaks.

A template is a named set of :class:`Controls`: a level for each expression
channel of the face rig (brows raised or furrowed, smile, eyes wide, squint),
one while speaking and one in pauses, eyebrow flashes on stressed speech, slow
wandering of those levels, and head gestures (nods, shakes, a held tilt) with
their rate, size and when they happen. :func:`expression_track` turns an
:class:`ExpressionPlan` (a template's controls, optionally changed for parts of
the video and with a camera move, see :mod:`facecast.motion.prompt`) into per
frame channel values, head gestures, a gain on the natural head motion and a
camera zoom, deterministically for a seed.

Template 1, ``natural``, changes nothing: a render with it is the render
without a template, frame for frame.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any, Literal

import numpy as np

from facecast.errors import InputError
from facecast.motion.life import (
    gaussian_filter1d,
    nod_track,
    shake_track,
    tilt_track,
    zoom_track,
)

# The face rig's expression channels (facecast.render.rig appends them to its channels).
FACE_CHANNELS: tuple[str, ...] = ("brow_raise", "brow_furrow", "smile", "eyes_wide", "squint")
# Channel ranges: a negative smile turns the corners down; the others only go one way.
CHANNEL_RANGE = {"brow_raise": (0.0, 1.0), "brow_furrow": (0.0, 1.0), "smile": (-1.0, 1.0),
                 "eyes_wide": (0.0, 1.0), "squint": (0.0, 1.0)}
MAX_NOD = 0.12  # IOD: bigger nods leave the background the head mover can fill in
MAX_SHAKE = 0.09
MAX_TILT = 4.0  # degrees
MAX_RATE = 3.0  # Hz
PHASE_EASE_S = 0.35  # how long a change between parts of the video takes

During = Literal["speech", "pause", "always"]


@dataclass(frozen=True)
class Level:
    """A channel's level while speaking and in pauses. In a change to a template
    (a prompt's), None keeps the template's own value."""

    speech: float | None = 0.0
    pause: float | None = 0.0

    def scaled(self, k: float) -> Level:
        return Level(None if self.speech is None else self.speech * k,
                     None if self.pause is None else self.pause * k)

    def over(self, base: Level) -> Level:
        """This level where it is given, ``base``'s elsewhere."""
        return Level(base.speech if self.speech is None else self.speech,
                     base.pause if self.pause is None else self.pause)


@dataclass(frozen=True)
class Gesture:
    """A rhythmic head gesture: ``amplitude`` (IOD: a nod's dip, a shake's swing to each
    side), ``rate`` (gestures a second) and when it happens."""

    amplitude: float = 0.0
    rate: float = 0.0
    during: During = "speech"

    def scaled(self, k: float) -> Gesture:
        return replace(self, amplitude=self.amplitude * k)


_LEVELS = FACE_CHANNELS


@dataclass(frozen=True)
class Controls:
    """Everything a template sets. The defaults are the portrait's own face."""

    brow_raise: Level = Level()
    brow_furrow: Level = Level()
    smile: Level = Level()
    eyes_wide: Level = Level()
    squint: Level = Level()
    brow_flash: float = 0.0  # eyebrow raise on stressed speech, on top of brow_raise
    wander: float = 0.0  # slow random variation of the levels (0.2 = +-20 %)
    nod: Gesture = Gesture()
    shake: Gesture = Gesture()
    tilt: float = 0.0  # held head roll, degrees (+ clockwise in the image)
    head_motion: float = 1.0  # gain on facecast's natural head motion

    def merged(self, changes: Mapping[str, Any]) -> Controls:
        """These controls with ``changes`` (field -> value) applied; a :class:`Level`
        change keeps the parts it leaves as None."""
        out: dict[str, Any] = {}
        for name, value in changes.items():
            current = getattr(self, name)
            out[name] = value.over(current) if isinstance(value, Level) else value
        return replace(self, **out)

    def is_neutral(self) -> bool:
        return self == Controls()

    def changes(self) -> dict[str, Any]:
        """The fields that differ from the portrait's own face."""
        neutral = Controls()
        return {f.name: getattr(self, f.name) for f in fields(self)
                if getattr(self, f.name) != getattr(neutral, f.name)}

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in _LEVELS:
            lvl = getattr(self, name)
            out[name] = {"speech": lvl.speech, "pause": lvl.pause}
        out.update(brow_flash=self.brow_flash, wander=self.wander, tilt=self.tilt,
                   head_motion=self.head_motion)
        for name in ("nod", "shake"):
            g = getattr(self, name)
            out[name] = {"amplitude": g.amplitude, "rate": g.rate, "during": g.during}
        return out


@dataclass(frozen=True)
class ExpressionTemplate:
    id: int
    key: str
    name: str  # English title
    name_zh: str  # Chinese title
    description: str
    controls: Controls

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "key": self.key, "name": self.name, "name_zh": self.name_zh,
                "description": self.description, "controls": self.controls.to_dict()}


TEMPLATES: tuple[ExpressionTemplate, ...] = (
    ExpressionTemplate(1, "natural", "Natural", "自然",
                       "The portrait's own face with blinks and natural head motion.",
                       Controls()),
    ExpressionTemplate(2, "happy", "Happy", "开心",
                       "A warm smile (broader in pauses), smiling eyes, lively brows, "
                       "small nods while speaking.",
                       Controls(smile=Level(0.45, 0.75), squint=Level(0.2, 0.3),
                                brow_raise=Level(0.15, 0.1), brow_flash=0.35, wander=0.15,
                                nod=Gesture(0.025, 1.2, "speech"))),
    ExpressionTemplate(3, "amazed", "Amazed", "惊讶",
                       "Brows high and eyes wide, most of all in pauses; brow flashes on "
                       "stressed words.",
                       Controls(brow_raise=Level(0.75, 0.9), eyes_wide=Level(0.7, 0.85),
                                smile=Level(0.1, 0.15), brow_flash=0.3, wander=0.1,
                                head_motion=1.1)),
    ExpressionTemplate(4, "serious", "Serious", "严肃",
                       "Lowered, drawn-together brows, a steady gaze and a calmer head.",
                       Controls(brow_furrow=Level(0.45, 0.55), squint=Level(0.15, 0.2),
                                wander=0.05, head_motion=0.6)),
    ExpressionTemplate(5, "thinking", "Thinking", "思考",
                       "Knitted brows, narrowed eyes, the head tilted, slow nods in pauses.",
                       Controls(brow_furrow=Level(0.35, 0.45), squint=Level(0.25, 0.3),
                                brow_raise=Level(0.05, 0.15), tilt=3.0, wander=0.1,
                                nod=Gesture(0.02, 0.5, "pause"), head_motion=0.7)),
    ExpressionTemplate(6, "nodding", "Nodding", "点头",
                       "Rhythmic nods while speaking, with a slight smile.",
                       Controls(nod=Gesture(0.1, 1.4, "speech"), smile=Level(0.2, 0.3),
                                brow_flash=0.2)),
    ExpressionTemplate(7, "shaking_head", "Shaking head", "摇头",
                       "The head shakes from side to side while speaking; brows a little "
                       "drawn.",
                       Controls(shake=Gesture(0.07, 1.8, "speech"),
                                brow_furrow=Level(0.25, 0.2))),
    ExpressionTemplate(8, "excited", "Excited", "兴奋",
                       "A big smile, raised brows and wide eyes, brow flashes and quick "
                       "nods, livelier head motion.",
                       Controls(smile=Level(0.55, 0.7), brow_raise=Level(0.35, 0.3),
                                eyes_wide=Level(0.3, 0.25), brow_flash=0.6, wander=0.2,
                                nod=Gesture(0.03, 2.0, "speech"), head_motion=1.4)),
    ExpressionTemplate(9, "calm", "Calm", "平静",
                       "A faint smile and a quiet head.",
                       Controls(smile=Level(0.15, 0.2), head_motion=0.5)),
    ExpressionTemplate(10, "sad", "Sad", "难过",
                       "Corners of the mouth down, inner brows up and together, a "
                       "lowered, slower head.",
                       Controls(smile=Level(-0.35, -0.4), brow_raise=Level(0.25, 0.3),
                                brow_furrow=Level(0.4, 0.45), squint=Level(0.1, 0.1),
                                tilt=-1.5, head_motion=0.6)),
    ExpressionTemplate(11, "angry", "Angry", "生气",
                       "Brows pulled down hard, narrowed eyes, mouth corners down.",
                       Controls(brow_furrow=Level(0.9, 0.9), squint=Level(0.35, 0.3),
                                smile=Level(-0.2, -0.25), head_motion=1.2)),
)

DEFAULT_TEMPLATE = TEMPLATES[0]


def template_keys() -> list[str]:
    return [t.key for t in TEMPLATES]


def get_template(expression: str | int | None) -> ExpressionTemplate:
    """A template by key ("happy", "Shaking head", "shaking-head"), id (3 or "3") or
    title in either language; None is ``natural``. Unknown: InputError
    ``unknown_expression`` naming the valid keys."""
    if expression is None:
        return DEFAULT_TEMPLATE
    if isinstance(expression, bool):  # bool is an int: refuse rather than take id 1
        raise _unknown(expression)
    if isinstance(expression, int):
        for t in TEMPLATES:
            if t.id == expression:
                return t
        raise _unknown(expression)
    text = str(expression).strip()
    if text.isdigit():
        return get_template(int(text))
    wanted = text.lower().replace("-", "_").replace(" ", "_")
    for t in TEMPLATES:
        if wanted in (t.key, t.name.lower().replace(" ", "_")) or text == t.name_zh:
            return t
    raise _unknown(expression)


def _unknown(expression: object) -> InputError:
    keys = ", ".join(f"{t.key} ({t.id})" for t in TEMPLATES)
    return InputError(f"unknown expression {expression!r}; use one of: {keys}",
                      code="unknown_expression")


# ---- plans and tracks -----------------------------------------------------------------------


@dataclass(frozen=True)
class Phase:
    """Changes to the controls for a part of the video (fractions 0..1 of its length)."""

    start: float
    end: float
    changes: Mapping[str, Any]


@dataclass(frozen=True)
class Camera:
    """A camera zoom from ``start_zoom`` to ``end_zoom`` (1 = the whole picture, >= 1)
    between the fractions ``start`` and ``end`` of the video."""

    start_zoom: float
    end_zoom: float
    start: float = 0.0
    end: float = 1.0


@dataclass(frozen=True)
class ExpressionPlan:
    """Controls for the whole video, changes for parts of it, and a camera move."""

    base: Controls = Controls()
    phases: tuple[Phase, ...] = ()
    camera: Camera | None = None

    def is_neutral(self) -> bool:
        """True when the plan changes nothing (the natural render)."""
        return (self.base.is_neutral() and self.camera is None
                and all(self.base.merged(p.changes) == self.base for p in self.phases))


@dataclass
class ExpressionTrack:
    """Per frame: ``face`` (n, len(FACE_CHANNELS)), head gestures ``head`` (n, 4) as
    motion.life.HEAD_CHANNELS, ``gain`` on the natural head motion (n,) and the camera
    ``zoom`` (n,)."""

    fps: float
    face: np.ndarray
    head: np.ndarray
    gain: np.ndarray
    zoom: np.ndarray

    def __len__(self) -> int:
        return len(self.face)


def speech_presence(activity: np.ndarray | None, n_frames: int, fps: float) -> np.ndarray:
    """0..1 per frame: how much the portrait is speaking (smooth, from mouth activity)."""
    if activity is None:
        return np.ones(n_frames)
    act = np.asarray(activity, float)[:n_frames]
    act = np.pad(act, (0, n_frames - len(act)))
    if n_frames == 0 or not act.any():
        return np.zeros(n_frames)
    level = gaussian_filter1d(act, sigma=0.15 * fps)
    # Speaking: a smoothed opening above a quarter of the typical loud opening; short
    # gaps between words stay "speaking", sentence pauses do not.
    speaking = (level > 0.25 * np.percentile(level, 95)).astype(float)
    return np.clip(gaussian_filter1d(speaking, sigma=0.2 * fps), 0.0, 1.0)


def _emphasis(activity: np.ndarray | None, n_frames: int, fps: float) -> np.ndarray:
    """0..1 per frame at stressed, louder stretches of speech (for eyebrow flashes)."""
    if activity is None or n_frames < 3:
        return np.zeros(n_frames)
    act = np.asarray(activity, float)[:n_frames]
    act = np.pad(act, (0, n_frames - len(act)))
    e = gaussian_filter1d(act, 0.12 * fps) - gaussian_filter1d(act, 0.8 * fps)
    sd = float(e.std())
    if sd < 1e-6:
        return np.zeros(n_frames)
    # Only the clear peaks: a brow that flashes at every syllable looks nervous.
    flash = np.clip((e - sd) / (2 * sd), 0.0, 1.0)
    return gaussian_filter1d(flash, 0.08 * fps)


def _gate(during: During, talk: np.ndarray) -> np.ndarray:
    if during == "speech":
        return talk
    if during == "pause":
        return 1.0 - talk
    return np.ones_like(talk)


def _signals(c: Controls, fps: float, n: int, talk: np.ndarray, emphasis: np.ndarray,
             seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Face channels, head gestures and head gain of one set of controls."""
    face = np.zeros((n, len(FACE_CHANNELS)))
    for k, name in enumerate(FACE_CHANNELS):
        lvl: Level = getattr(c, name)
        speech, pause = float(lvl.speech or 0.0), float(lvl.pause or 0.0)
        face[:, k] = pause + (speech - pause) * talk
        if c.wander and n > 1 and (speech or pause):
            # Each channel wanders on its own slow noise (seeded per channel, so a phase
            # and the template share it and blend without a jump).
            rng = np.random.default_rng([seed, 10 + k])
            pad = int(6 * fps) + 1
            noise = gaussian_filter1d(rng.standard_normal(n + 2 * pad), 2.0 * fps)[pad:-pad]
            noise /= noise.std() + 1e-9
            face[:, k] *= 1.0 + c.wander * np.clip(noise, -2.0, 2.0) / 2.0
    face[:, 0] += c.brow_flash * emphasis
    for k, name in enumerate(FACE_CHANNELS):
        face[:, k] = np.clip(face[:, k], *CHANNEL_RANGE[name])
    head = np.zeros((n, 4))
    if c.nod.amplitude and c.nod.rate:
        head[:, 2] += nod_track(n, fps, min(c.nod.amplitude, MAX_NOD),
                                min(c.nod.rate, MAX_RATE), _gate(c.nod.during, talk), seed=seed)
    if c.shake.amplitude and c.shake.rate:
        dx, roll = shake_track(n, fps, min(c.shake.amplitude, MAX_SHAKE),
                               min(c.shake.rate, MAX_RATE), _gate(c.shake.during, talk),
                               seed=seed)
        head[:, 1] += dx
        head[:, 0] += roll
    if c.tilt:
        head[:, 0] += tilt_track(n, fps, float(np.clip(c.tilt, -MAX_TILT, MAX_TILT)))
    return face, head, np.full(n, max(c.head_motion, 0.0))


def _window(n: int, fps: float, start: float, end: float) -> np.ndarray:
    """0..1 per frame: inside [start, end) of the video, with eased edges."""
    t = (np.arange(n) + 0.5) / max(n, 1)
    inside = ((t >= start) & (t < end)).astype(float)
    if n > 2:
        # "nearest" continues the box past the video's ends: a part that starts at the
        # first frame is at full strength there.
        inside = gaussian_filter1d(inside, sigma=PHASE_EASE_S * fps / 2.0, mode="nearest")
    return np.clip(inside, 0.0, 1.0)


def expression_track(plan: ExpressionPlan | Controls | ExpressionTemplate, fps: float,
                     n_frames: int, activity: np.ndarray | None = None, *, seed: int = 0
                     ) -> ExpressionTrack:
    """Per-frame expression channels, head gestures, head gain and camera zoom.

    ``activity`` (0..1 per frame, e.g. the jaw channel of the mouth track) tells
    speech from pauses and finds stressed words; None treats every frame as speech.
    """
    if isinstance(plan, ExpressionTemplate):
        plan = ExpressionPlan(plan.controls)
    elif isinstance(plan, Controls):
        plan = ExpressionPlan(plan)
    n = int(n_frames)
    talk = speech_presence(activity, n, fps)
    emphasis = _emphasis(activity, n, fps)
    face, head, gain = _signals(plan.base, fps, n, talk, emphasis, seed)
    if plan.phases:
        weights = [_window(n, fps, p.start, p.end) for p in plan.phases]
        total = np.sum(weights, axis=0)
        # Overlapping parts share the time rather than adding up.
        norm = np.maximum(total, 1.0)
        rest = 1.0 - np.minimum(total, 1.0)
        face, head, gain = face * rest[:, None], head * rest[:, None], gain * rest
        for p, w in zip(plan.phases, weights, strict=True):
            w = w / norm
            f2, h2, g2 = _signals(plan.base.merged(p.changes), fps, n, talk, emphasis, seed)
            face += f2 * w[:, None]
            head += h2 * w[:, None]
            gain += g2 * w
    zoom = np.ones(n, np.float32)
    if plan.camera is not None:
        cam = plan.camera
        zoom = zoom_track(n, fps, cam.start_zoom, cam.end_zoom, cam.start, cam.end)
    return ExpressionTrack(fps, face.astype(np.float32), head.astype(np.float32),
                           gain.astype(np.float32), zoom)


def catalogue() -> list[dict[str, Any]]:
    """The templates as plain dicts (for the CLI and the APIs)."""
    return [t.to_dict() for t in TEMPLATES]
