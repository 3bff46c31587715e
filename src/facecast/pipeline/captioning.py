"""Captions for a render: which word timings to trust, and the files and burn-in.

The words come from the best source there is: the synthesiser's own timings (text
and a voice), else the forced alignment of a given transcript, else English speech
recognised by pocketsphinx when the recogniser is confident. Other speech without its
text cannot be captioned: InputError ``captions_need_text``, raised before the costly
render (and before the job is priced).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from facecast.captions import Cue, build_cues, caption_format, shown_words, write_captions
from facecast.errors import InputError
from facecast.media import Audio
from facecast.timing import WordTiming

if TYPE_CHECKING:
    from facecast.captions import CaptionStyle
    from facecast.motion.recognition import Recognition

PathLike = str | os.PathLike[str]


@dataclass(frozen=True)
class Captions:
    """The cues of a render and where their words' timings came from: ``"tts"``,
    ``"transcript"`` or ``"recognised"``."""

    cues: list[Cue]
    source: str


def check_caption_path(path: PathLike | None) -> None:
    """A .srt or .vtt file name (else ``bad_captions``), cheap and before any work."""
    if path is not None:
        caption_format(path)


def check_captions(paths: Sequence[PathLike], burn: CaptionStyle | None) -> None:
    """Caption files named .srt or .vtt and a burn-in style in range (else
    ``bad_captions``), before any work."""
    for path in paths:
        check_caption_path(path)
    if burn is not None:
        burn.check()


def make_captions(audio: Audio, words: Sequence[WordTiming], *, text: str | None,
                  transcript: str | None, heard: Recognition | None = None) -> Captions:
    """Cues for ``audio``: from ``words`` (TTS of ``text``, or the alignment of
    ``transcript``) when given, else from recognised English speech (``heard``, when
    the caller has recognised it already for the mouth)."""
    if words:
        source = "tts" if text is not None else "transcript"
        return Captions(build_cues(shown_words(words, text or transcript),
                                   duration=audio.duration), source)
    if heard is None:
        from facecast.motion.recognition import recognise

        heard = recognise(audio)
    if not heard.confident or not heard.words:
        raise InputError("captions need the text of this speech: it was not recognised as "
                         "English; give its transcript (or render from text)",
                         code="captions_need_text")
    return Captions(build_cues(_cased(heard.words), duration=audio.duration), "recognised")


def _cased(words: Sequence[WordTiming]) -> list[WordTiming]:
    """Recognised words (lower case, no punctuation) as a reader expects them: the
    first word capitalised, and the pronoun I."""
    out = []
    for k, w in enumerate(words):
        word = w.word
        if word == "i" or word.startswith("i'"):
            word = "I" + word[1:]
        elif k == 0:
            word = word[:1].upper() + word[1:]
        out.append(WordTiming(word, w.start, w.end))
    return out


def save_captions(captions: Captions, paths: Sequence[PathLike]) -> None:
    """Write the cues to each of ``paths`` (.srt or .vtt by suffix)."""
    for path in paths:
        write_captions(captions.cues, path)
