"""Motion: speech -> mouth track (phoneme timings or sound alone), alignment, export.

- :func:`track_from_phonemes`: timed phonemes (piper IPA or ARPAbet) -> track,
  with coarticulation;
- :func:`track_from_audio`: any-language speech audio -> track, from acoustics;
- :func:`align_transcript`: English speech + its transcript -> word/phone timings;
- :func:`recognise`: English speech alone -> recognised words/phone timings + confidence;
- :func:`save_track` / :func:`to_rhubarb_tsv`: facecast JSON or Rhubarb TSV.

The names are loaded when first used: the speech recogniser's child process
(:mod:`facecast.motion.recognition_process`) imports this package on its way to the
recogniser, and should not pay for the spectral track's SciPy.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from facecast.motion.align import align_transcript
    from facecast.motion.export import save_rhubarb_tsv, save_track, to_rhubarb_tsv
    from facecast.motion.from_audio import track_from_audio
    from facecast.motion.from_phonemes import merge_markers, track_from_phonemes
    from facecast.motion.recognition import Recognition, recognise
    from facecast.motion.track import CHANNELS, MouthTrack
    from facecast.motion.visemes import rhubarb_shape, viseme_for

# name -> the module of this package that defines it
_EXPORTS = {
    "CHANNELS": "track",
    "MouthTrack": "track",
    "Recognition": "recognition",
    "align_transcript": "align",
    "merge_markers": "from_phonemes",
    "recognise": "recognition",
    "rhubarb_shape": "visemes",
    "save_rhubarb_tsv": "export",
    "save_track": "export",
    "to_rhubarb_tsv": "export",
    "track_from_audio": "from_audio",
    "track_from_phonemes": "from_phonemes",
    "viseme_for": "visemes",
}
__all__ = [
    "CHANNELS",
    "MouthTrack",
    "Recognition",
    "align_transcript",
    "merge_markers",
    "recognise",
    "rhubarb_shape",
    "save_rhubarb_tsv",
    "save_track",
    "to_rhubarb_tsv",
    "track_from_audio",
    "track_from_phonemes",
    "viseme_for",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
