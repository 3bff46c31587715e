"""Writing mouth tracks: facecast JSON, or Rhubarb Lip Sync's TSV of mouth shapes.

Rhubarb's TSV (github.com/DanielSWolf/rhubarb-lip-sync) is one line per shape
change, ``seconds<TAB>shape``, starting at 0.00, with shapes A-H and X; tools
that animate 2D mouths from Rhubarb read it. Shapes are classified from the
channel values frame by frame, then runs too short to be seen are merged away
(except A: a p/b/m closure is the one brief shape a viewer misses at once).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from facecast.errors import InputError
from facecast.motion.track import CHANNEL_INDEX, MouthTrack

PathLike = str | os.PathLike[str]

# Thresholds on the 0..1 channels. H (the tongue raised behind the upper teeth, Rhubarb's
# shape for L) takes the tongue channel with the jaw open past TONGUE_H_JAW (th / dh, the
# tongue between nearly closed teeth, stay B as in Rhubarb).
CLOSURE_A = 0.5
LABIODENTAL_G = 0.5
TONGUE_H = 0.5
TONGUE_H_JAW = 0.2
ROUND_F = 0.6
ROUND_E = 0.3
JAW_D = 0.75
JAW_C = 0.45
REST_X = 0.08
MIN_SHAPE_S = 0.02  # two frames at 100 fps


def classify_frame(values: np.ndarray) -> str:
    """The Rhubarb shape (A-H, X) for one frame of channel values."""
    jaw = values[CHANNEL_INDEX["jaw"]]
    rnd = values[CHANNEL_INDEX["round"]]
    if values[CHANNEL_INDEX["closure"]] >= CLOSURE_A:
        return "A"
    if values[CHANNEL_INDEX["labiodental"]] >= LABIODENTAL_G:
        return "G"
    if values[CHANNEL_INDEX["tongue"]] >= TONGUE_H and jaw >= TONGUE_H_JAW:
        return "H"
    if rnd >= ROUND_F and jaw < JAW_D:
        return "F"
    if rnd >= ROUND_E and jaw < JAW_D:
        return "E"
    if jaw >= JAW_D:
        return "D"
    if jaw >= JAW_C:
        return "C"
    others = (values[CHANNEL_INDEX[c]] for c in ("spread", "round", "teeth"))
    if jaw < REST_X and all(v < 0.2 for v in others):
        return "X"
    return "B"


def _coalesce(runs: list[list]) -> list[list]:
    merged: list[list] = []
    for r in runs:
        if merged and merged[-1][2] == r[2]:
            merged[-1][1] += r[1]
        else:
            merged.append(r)
    return merged


def shape_runs(track: MouthTrack, min_shape_s: float = MIN_SHAPE_S) -> list[tuple[int, str]]:
    """(first frame, shape) for each run of one shape, short runs merged into a neighbour."""
    shapes = [classify_frame(row) for row in track.values]
    if not shapes:
        return [(0, "X")]
    runs = _coalesce([[i, 1, s] for i, s in enumerate(shapes)])  # [start, length, shape]
    min_frames = max(1, round(min_shape_s * track.fps))
    for _ in range(50):  # each pass halves the short runs at least; a few passes suffice
        short = [k for k, r in enumerate(runs) if r[1] < min_frames and r[2] != "A"]
        if not short or len(runs) == 1:
            break
        keep = [True] * len(runs)
        for k in short:
            if not keep[k] or runs[k][1] >= min_frames:
                continue
            # Absorb into the longer neighbour: the shape a viewer would see anyway.
            prev = k - 1 if k > 0 and keep[k - 1] else None
            nxt = k + 1 if k + 1 < len(runs) else None
            if prev is not None and (nxt is None or runs[prev][1] >= runs[nxt][1]):
                runs[prev][1] += runs[k][1]
            elif nxt is not None:
                runs[nxt][0] = runs[k][0]
                runs[nxt][1] += runs[k][1]
            else:
                continue
            keep[k] = False
        runs = _coalesce([r for r, kept in zip(runs, keep, strict=True) if kept])
    return [(int(r[0]), str(r[2])) for r in runs]


def to_rhubarb_tsv(track: MouthTrack) -> str:
    """Rhubarb Lip Sync TSV: ``seconds<TAB>shape`` per shape change, from 0.00.

    A closing line at the track's end returns to X (as Rhubarb ends its own
    output), so the last shape's duration is known.
    """
    cues: list[tuple[float, str]] = []
    for start, shape in shape_runs(track):
        t = round(start / track.fps, 2)
        if cues and t <= cues[-1][0]:  # two changes within a centisecond: the later wins
            cues.pop()
        if cues and cues[-1][1] == shape:
            continue
        cues.append((t, shape))
    end = round(track.duration, 2)
    if cues[-1][1] != "X" and end > cues[-1][0]:
        cues.append((end, "X"))
    return "".join(f"{t:.2f}\t{shape}\n" for t, shape in cues)


def save_rhubarb_tsv(track: MouthTrack, path: PathLike) -> Path:
    path = Path(path)
    path.write_text(to_rhubarb_tsv(track))
    return path


def save_track(track: MouthTrack, path: PathLike) -> Path:
    """Write ``track`` as facecast JSON (``.json``) or Rhubarb TSV (``.tsv``)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".json":
        return track.save_json(path)
    if suffix == ".tsv":
        return save_rhubarb_tsv(track, path)
    raise InputError(
        f"cannot write a mouth track as {suffix or 'a file without extension'!r}: "
        "use .json or .tsv",
        code="bad_format",
    )
