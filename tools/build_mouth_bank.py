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

from facecast.media.video_reader import read_frames
from facecast.render.mouth_bank import BankBuilder, MouthBank
from facecast.render.stock_mouth import STOCK_FILE, bank_teeth, stock_samples
from facecast.render.video_face import FaceTracker

ROOT = Path(__file__).resolve().parents[1]
VIDEO = ROOT.parent / "shared" / "media" / "videos" / "obama_weekly_address_20s.mp4"
OUT = ROOT / "src" / "facecast" / "assets" / STOCK_FILE


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build(video: Path) -> tuple[MouthBank, int, int]:
    """The bank, frames seen and tracked."""
    builder = BankBuilder(every=1)
    seen = tracked = 0
    with FaceTracker() as tracker:
        for i, (_, rgb) in enumerate(read_frames(video)):
            seen += 1
            pts = tracker.track(rgb)
            if pts is None:
                continue
            tracked += 1
            builder.offer(i, rgb, pts)
    return builder.build(), seen, tracked


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--video", type=Path, default=VIDEO)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    found, seen, tracked = build(args.video)
    bank = stock_samples(found)
    teeth = bank_teeth(bank)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    bank.save(args.out, extra={"teeth": teeth.astype(np.float32)})
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


if __name__ == "__main__":
    main()
