"""Build the packaged stock mouth bank (``src/facecast/assets/mouths/stock.npz``).

Talking photos take their mouth interiors from real footage
(:mod:`facecast.render.stock_mouth`). This script cuts them, with the video
avatars' own machinery, from a public-domain recording: every frame is tracked
(:class:`facecast.render.video_face.FaceTracker`, as a video avatar is) and
offered to :class:`facecast.render.mouth_bank.BankBuilder`, which keeps the
sharpest frontal sample per (lip gap, mouth width) cell. The footage's teeth
colour (the brightest fifth of the open samples' openings) is stored beside the
samples: it is what a portrait's own teeth colour replaces.

Run from the project root (hand-run, needs ../shared/media)::

    PYTHONPATH=$PWD/src python3 tools/build_mouth_bank.py [--video PATH] [--out PATH]

It prints the sample count, gap range and checksums for PROVENANCE.md.
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import numpy as np

from facecast.media import load_audio
from facecast.media.video_reader import read_frames
from facecast.motion.recognition import recognise
from facecast.render.mouth_bank import BankBuilder, MouthBank, MouthSample
from facecast.render.stock_mouth import (
    STOCK_FILE,
    TONGUE_FILE,
    TONGUE_PHONES,
    bank_teeth,
    stock_samples,
    tongue_samples,
)
from facecast.render.video_face import FaceTracker

ROOT = Path(__file__).resolve().parents[1]
VIDEO = ROOT.parent / "shared" / "media" / "videos" / "obama_weekly_address_20s.mp4"
OUT = ROOT / "src" / "facecast" / "assets" / STOCK_FILE
# The Weekly Address clip's sound is late against its picture (bench/README.md,
# "Speech-aware mouth": the real lips lead the audio envelope by 250 ms).
AUDIO_LATE_S = 0.25


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tongue_frames(video: Path, fps: float = 25.0) -> set[int]:
    """Frames where the recognised speech has an l, th or dh (and one frame either side)."""
    heard = recognise(load_audio(video))
    frames: set[int] = set()
    for p in heard.phonemes:
        if p.phoneme.rstrip("012") in TONGUE_PHONES:
            first = int(round((p.start - AUDIO_LATE_S) * fps)) - 1
            last = int(round((p.end - AUDIO_LATE_S) * fps)) + 1
            frames.update(range(max(first, 0), last + 1))
    return frames


def build(video: Path) -> tuple[MouthBank, list[MouthSample], int, int]:
    """The bank, the candidate tongue samples, frames seen and tracked."""
    builder = BankBuilder(every=1)
    wanted = tongue_frames(video)
    held: list[tuple[int, np.ndarray, np.ndarray]] = []
    seen = tracked = 0
    with FaceTracker() as tracker:
        for i, (_, rgb) in enumerate(read_frames(video)):
            seen += 1
            pts = tracker.track(rgb)
            if pts is None:
                continue
            tracked += 1
            builder.offer(i, rgb, pts)
            if i in wanted:
                held.append((i, rgb, pts))
    bank = builder.build()
    candidates = []
    for i, rgb, pts in held:  # each cut alone, at the bank's scale
        one = BankBuilder(keep={i})
        one.scale = bank.scale
        one.offer(i, rgb, pts)
        candidates += one.build().samples
    return bank, candidates, seen, tracked


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--video", type=Path, default=VIDEO)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    found, candidates, seen, tracked = build(args.video)
    bank = stock_samples(found)
    teeth = bank_teeth(bank)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    bank.save(args.out, extra={"teeth": teeth.astype(np.float32)})
    tongue = tongue_samples(MouthBank(candidates, found.scale, found.usual_width))
    tongue_out = args.out.parent / Path(TONGUE_FILE).name
    tongue.save(tongue_out)
    gaps = [s.gap for s in bank.samples]
    with np.load(args.out) as data:
        crops = hashlib.sha256(data["crops"].tobytes()).hexdigest()
    print(f"source   {args.video.name}  sha256 {sha256(args.video)}")
    print(f"frames   {seen} decoded, {tracked} tracked")
    print(f"samples  {len(bank)} kept of {len(found)}  gap {min(gaps):.3f}..{max(gaps):.3f} IOD  "
          f"scale {bank.scale:.0f} px/IOD  usual width {bank.usual_width:.3f} IOD")
    print(f"teeth    RGB {np.round(teeth, 1)}")
    print(f"wrote    {args.out}  {args.out.stat().st_size} bytes  sha256 {sha256(args.out)}")
    print(f"crops    sha256 of the crops array {crops}")
    with np.load(tongue_out) as data:
        tcrops = hashlib.sha256(data["crops"].tobytes()).hexdigest()
    print(f"tongue   {len(tongue)} kept of {len(candidates)} l/th/dh frames: "
          + ", ".join(f"frame {s.frame} gap {s.gap:.3f}" for s in tongue.samples))
    print(f"wrote    {tongue_out}  {tongue_out.stat().st_size} bytes  sha256 {sha256(tongue_out)}")
    print(f"crops    sha256 of the tongue crops array {tcrops}")


if __name__ == "__main__":
    main()
