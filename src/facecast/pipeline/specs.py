"""Request shapes that check themselves: what a door translates its request into.

Each use case is asked for by the CLI, by Python callers, by the native API and
by the vendor APIs; each door only translates its own shape into these and imports
the limits and defaults from :mod:`facecast.rules`. :class:`RenderOptions` (a
talking photo), :class:`DubOptions` and :class:`TtsOptions` are a request without
its files: each checks itself (one error code per rule), is stored on the job as
the dict ``to_params()`` writes and read back by ``from_params()``
(:class:`StoredOptions`), so keys an older job lacks take the defaults written once
here. The pipeline specs (``TalkingPhotoSpec``, ``DubVideoSpec``, ``VideoAvatarSpec``)
add the files and run the same checks (:func:`check_look`, :func:`check_speech_choice`,
:func:`check_face_index`).

The checkers are imported when a check runs: this module stays as light as
:mod:`facecast.rules`, for the CLI and the API wire models.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, TypeVar

from facecast.errors import InputError
from facecast.rules import (
    ASPECTS,
    CAPTION_FORMATS,
    CAPTION_POSITIONS,
    DEFAULT_CAPTION_SIZE,
    DEFAULT_FPS,
    DEFAULT_HEAD_MOTION,
    DEFAULT_PITCH,
    DEFAULT_RATE,
    DEFAULT_SIZE,
    DEFAULT_VOLUME,
    MAX_AUDIO_S,
    MAX_FPS,
    MAX_HEAD_MOTION,
    MAX_PROMPT_CHARS,
    MIN_AUDIO_S,
    MIN_FPS,
    TTS_FORMATS,
)

__all__ = [
    "ASPECTS",
    "DEFAULT_FPS",
    "DEFAULT_HEAD_MOTION",
    "DEFAULT_SIZE",
    "MAX_AUDIO_S",
    "MAX_FPS",
    "MAX_HEAD_MOTION",
    "MAX_PROMPT_CHARS",
    "MIN_AUDIO_S",
    "MIN_FPS",
    "QUALITY",
    "DubOptions",
    "RenderOptions",
    "StoredOptions",
    "TtsOptions",
    "check_face_index",
    "check_look",
    "check_quality",
    "check_speech_choice",
]

# x264 settings per quality: "pro" spends about twice the encoding time for sharper video;
# "std" takes the render's preset for its size (render_preset: faster above 1080p)
QUALITY: dict[str, dict[str, Any]] = {
    "std": {"preset": None, "crf": 20},
    "pro": {"preset": "medium", "crf": 17},
}


def check_speech_choice(audio: object | None, text: str | None) -> None:
    """Exactly one of ``audio`` and ``text``: else :class:`InputError` ``bad_request``
    (a door with its own code for it, such as Kling's ``bad_audio_choice``, maps it)."""
    if (audio is None) == (text is None):
        raise InputError("give either audio or text, not both or neither", code="bad_request")


def check_face_index(face_index: int) -> None:
    """Which face of a video (0: the largest): else ``bad_request``."""
    if face_index < 0:
        raise InputError("face_index must be 0 or more", code="bad_request")


def check_quality(quality: str) -> None:
    """``quality`` is a key of :data:`QUALITY`: else ``bad_quality``."""
    if quality not in QUALITY:
        raise InputError(f"quality must be one of {', '.join(QUALITY)}", code="bad_quality")


def check_look(
    *,
    size: str,
    aspect: str | None,
    fps: int,
    head_motion: float,
    prompt: str | None,
    expression: str | int | None,
) -> None:
    """The checks of a render's look, cheap and before any file is read."""
    from facecast.characters import check_characters
    from facecast.render.canvas import canvas_size

    # any photo will do: the size's syntax and range, and the aspect, do not depend on it
    canvas_size(512, 512, size, aspect)  # bad_size / bad_aspect
    if not MIN_FPS <= fps <= MAX_FPS:
        raise InputError(f"fps must be {MIN_FPS} to {MAX_FPS}", code="bad_fps")
    if not 0 <= head_motion <= MAX_HEAD_MOTION:
        raise InputError(f"head_motion must be 0 to {MAX_HEAD_MOTION:g}", code="bad_head_motion")
    if prompt is not None:
        if len(prompt) > MAX_PROMPT_CHARS:
            raise InputError(
                f"prompt is over {MAX_PROMPT_CHARS} characters", code="prompt_too_long"
            )
        check_characters(prompt, "prompt")
    if expression is not None:
        from facecast.motion.expressions import get_template

        get_template(expression)  # unknown: InputError unknown_expression


_Stored = TypeVar("_Stored", bound="StoredOptions")


class StoredOptions:
    """Options a job keeps in its params: written and read back by the spec itself, so
    a runner never re-types a default (keys an older job lacks take the class's)."""

    def to_params(self) -> dict[str, Any]:
        """The JSON-ready dict stored in the job's params."""
        return asdict(self)  # type: ignore[call-overload]  # subclasses are dataclasses

    @classmethod
    def from_params(cls: type[_Stored], params: dict[str, Any]) -> _Stored:
        """The options of a stored job; other keys of its params are left out."""
        names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        return cls(**{k: v for k, v in params.items() if k in names})


class CaptionChoice(StoredOptions):
    """The caption fields' rules and burn-in style, for the options that declare them
    (``captions``, ``burn_captions``, ``caption_position``, ``caption_size``)."""

    CAPTION_FIELDS = ("captions", "burn_captions", "caption_position", "caption_size")
    captions: str | None
    burn_captions: bool
    caption_position: str
    caption_size: float

    def check_captions(self) -> None:
        """A known file format and a burn-in style in range; else ``bad_captions``."""
        if self.captions is not None and self.captions not in CAPTION_FORMATS:
            raise InputError(f"captions are {' or '.join(CAPTION_FORMATS)}", code="bad_captions")
        style = self.caption_style()
        if style is not None:
            style.check()

    def caption_style(self) -> Any:
        """The burn-in style (a :class:`facecast.captions.CaptionStyle`), None when the
        captions are not burned."""
        if not self.burn_captions:
            return None
        from facecast.captions import CaptionStyle

        return CaptionStyle(size=self.caption_size, position=self.caption_position)

    def caption_params(self) -> dict[str, Any]:
        """Just the caption fields, as stored in a job's params."""
        return {name: getattr(self, name) for name in self.CAPTION_FIELDS}


@dataclass(frozen=True)
class RenderOptions(CaptionChoice):
    """How a talking photo looks, from any door; its files are given beside it."""

    size: str = DEFAULT_SIZE  # "source", "720p", "1080p", "4k" or "WxH"
    aspect: str | None = None  # one of ASPECTS (canvas shape; the portrait is fitted)
    fps: int = DEFAULT_FPS
    seed: int = 0
    head_motion: float = DEFAULT_HEAD_MOTION  # 0 keeps the head still
    blinks: bool = True
    quality: str = "std"  # "pro": slower, sharper encoding (Kling's mode)
    watermark: bool = False  # also make a visibly watermarked copy (the service's runner)
    prompt: str | None = None  # free text steering expression, head gestures and camera
    expression: str | int | None = None  # an expression template's key or id (None: natural)
    captions: str | None = None  # one of CAPTION_FORMATS: also make a caption file
    burn_captions: bool = False  # draw the captions into the video
    caption_position: str = CAPTION_POSITIONS[0]
    caption_size: float = DEFAULT_CAPTION_SIZE  # burned text height / frame height

    def check(self) -> None:
        check_look(
            size=self.size,
            aspect=self.aspect,
            fps=self.fps,
            head_motion=self.head_motion,
            prompt=self.prompt,
            expression=self.expression,
        )
        check_quality(self.quality)
        self.check_captions()

    def engine_kwargs(self) -> dict[str, Any]:
        """The :class:`TalkingPhotoSpec` fields these options set."""
        return {
            "size": self.size,
            "aspect": self.aspect,
            "fps": self.fps,
            "seed": self.seed,
            "head_motion": self.head_motion,
            "blinks": self.blinks,
            "expression": self.expression,
            "prompt": self.prompt,
            "burn_captions": self.caption_style(),
            **QUALITY[self.quality],
        }


@dataclass(frozen=True)
class TtsOptions(StoredOptions):
    """How a TTS job speaks its text, from any door."""

    rate: float = DEFAULT_RATE
    pitch: float = DEFAULT_PITCH  # semitones
    volume: float = DEFAULT_VOLUME
    format: str = TTS_FORMATS[0]

    def check(self) -> None:
        from facecast.speech.synth import check_ranges

        check_ranges(self.rate, self.pitch, self.volume)  # bad_rate / bad_pitch / bad_volume
        if self.format not in TTS_FORMATS:
            raise InputError(f"format must be {' or '.join(TTS_FORMATS)}", code="bad_format")


@dataclass(frozen=True)
class DubOptions(CaptionChoice):
    """How a dub is made, from any door; its video and speech are given beside it."""

    face_index: int = 0  # with several faces: 0 the largest in the first frame with faces
    quality: str = "std"
    captions: str | None = None  # one of CAPTION_FORMATS: also make a caption file
    burn_captions: bool = False  # draw the captions into the video
    caption_position: str = CAPTION_POSITIONS[0]
    caption_size: float = DEFAULT_CAPTION_SIZE  # burned text height / frame height

    def check(self) -> None:
        check_face_index(self.face_index)
        check_quality(self.quality)
        self.check_captions()
