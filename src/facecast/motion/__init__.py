"""Motion: speech -> mouth track (phoneme timings or sound alone), alignment, export.

- :func:`track_from_phonemes`: timed phonemes (piper IPA or ARPAbet) -> track,
  with coarticulation;
- :func:`track_from_audio`: any-language speech audio -> track, from acoustics;
- :func:`align_transcript`: English speech + its transcript -> word/phone timings;
- :func:`recognise`: English speech alone -> recognised words/phone timings + confidence;
- :func:`save_track` / :func:`to_rhubarb_tsv`: facecast JSON or Rhubarb TSV.
"""

from facecast.motion.align import align_transcript
from facecast.motion.export import save_rhubarb_tsv, save_track, to_rhubarb_tsv
from facecast.motion.from_audio import track_from_audio
from facecast.motion.from_phonemes import merge_markers, track_from_phonemes
from facecast.motion.recognition import Recognition, recognise
from facecast.motion.track import CHANNELS, MouthTrack
from facecast.motion.visemes import rhubarb_shape, viseme_for

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
