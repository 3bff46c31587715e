"""Captions: subtitle cues from word timings, SRT / WebVTT files, burned-in text.

An engine part: it takes word timings (:class:`facecast.timing.WordTiming`) and knows
nothing of where they came from (TTS, forced alignment, recognition: the pipeline
chooses, :mod:`facecast.pipeline.captioning`).
"""

from facecast.captions.burn import CaptionBurner, CaptionStyle
from facecast.captions.cues import Cue, build_cues, shown_words, split_lines
from facecast.captions.files import (
    caption_format,
    parse_captions,
    to_srt,
    to_vtt,
    write_captions,
)

__all__ = [
    "CaptionBurner",
    "CaptionStyle",
    "Cue",
    "build_cues",
    "caption_format",
    "parse_captions",
    "shown_words",
    "split_lines",
    "to_srt",
    "to_vtt",
    "write_captions",
]
