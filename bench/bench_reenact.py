"""Self-reenactment: a real speaker's own frame + their own recorded speech (no transcript).

For each clip, one frame of the real video (the most closed mouth in its first
5 s, a neutral portrait) is rendered as a talking photo with the clip's own
audio, exactly as a user would give a photo and a sound file. The render's
lip gap trajectory (facecast.quality.lipsync.lip_opening_series) is then set
against what the speaker's lips really did in the video:

- r: Pearson correlation of the two lip-gap series, each high-passed (1 s
  moving average removed), at the best shift within +-200 ms of the clip's own
  audio offset; bar r >= 0.35;
- amplitude: std of the render's high-passed gap / std of the real one; bar
  0.7..1.4 (the raw std ratio is printed too).

Offsets. The render's lips are drawn from its own audio, so they follow the
sound's timeline. In obama_weekly_address_20s.mp4 the audio is about 250 ms
late against the picture: what is heard at time T was said by the lips at
T - 0.25 s in the video. So the render at time t is compared with the real
video at t - 0.25 - d, d searched over +-200 ms (printed as "shift": the real
lips' time = render time - shift). Klobuchar's video and WAV are cut together
(offset 0).

Run by hand (``--label`` only names the rows; run it against main's src with
PYTHONPATH for the before figures; ``--spectral`` renders with the fallback
track that German or Chinese speech gets):

    python bench/bench_reenact.py [--label after] [--spectral]
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np
from scipy.ndimage import uniform_filter1d

from common import OUT_DIR, SHARED_MEDIA, print_table, shared_media_present
from facecast.media import load_audio
from facecast.quality.lipsync import HIGHPASS_WINDOW_S, MAX_GAP_S, lip_opening_series

R_BAR = 0.35
AMPLITUDE_BAR = (0.7, 1.4)
SEARCH_S = 0.2
GRID_FPS = 25.0
PORTRAIT_SEARCH_S = 5.0


@dataclass(frozen=True)
class Clip:
    name: str
    video: Path
    audio: Path | None  # None: the video's own audio stream
    offset_s: float  # how late the audio is against the picture


def clips() -> list[Clip]:
    videos = SHARED_MEDIA / "videos"
    return [
        Clip("obama 20 s", videos / "obama_weekly_address_20s.mp4", None, 0.25),
        Clip("klobuchar 10 s", videos / "klobuchar_10s_noaudio.mp4",
             videos / "klobuchar_10s_audio.wav", 0.0),
    ]


def portrait(clip: Clip, times: np.ndarray, gaps: np.ndarray) -> np.ndarray:
    """The frame with the most closed mouth among the first seconds (RGB)."""
    early = np.flatnonzero((times <= PORTRAIT_SEARCH_S) & np.isfinite(gaps))
    pick = int(early[np.argmin(gaps[early])]) if len(early) else 0
    with av.open(str(clip.video)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i == pick:
                return np.asarray(frame.to_ndarray(format="rgb24"))
    raise RuntimeError(f"{clip.video.name}: frame {pick} not found")


def on_grid(times: np.ndarray, gaps: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Gaps at ``grid`` times; NaN outside the faced frames or across long face-less gaps."""
    ok = np.isfinite(gaps)
    t, v = times[ok], gaps[ok]
    out = np.interp(grid, t, v)
    idx = np.searchsorted(t, grid)
    prev_t = np.where(idx > 0, t[np.clip(idx - 1, 0, len(t) - 1)], -np.inf)
    next_t = np.where(idx < len(t), t[np.clip(idx, 0, len(t) - 1)], np.inf)
    bad = ((next_t - prev_t) > MAX_GAP_S + 1e-9) & ~np.isclose(prev_t, grid) \
        & ~np.isclose(next_t, grid)
    out[bad | (grid < t[0]) | (grid > t[-1])] = np.nan
    return out


def highpass(x: np.ndarray) -> np.ndarray:
    """``x`` minus its 1 s moving average over valid samples (NaN stays NaN)."""
    valid = np.isfinite(x)
    size = max(3, int(round(HIGHPASS_WINDOW_S * GRID_FPS)) | 1)
    num = uniform_filter1d(np.where(valid, x, 0.0), size, mode="nearest")
    den = uniform_filter1d(valid.astype(np.float64), size, mode="nearest")
    mean = np.divide(num, den, out=np.full_like(num, np.nan), where=den > 1e-9)
    return np.where(valid, x - mean, np.nan)


def compare(render: tuple[np.ndarray, np.ndarray], real: tuple[np.ndarray, np.ndarray],
            offset: float) -> dict[str, float]:
    """Best r over shifts offset +- SEARCH_S, with the amplitude ratios at that shift."""
    grid = np.arange(0.0, render[0][-1], 1.0 / GRID_FPS)
    ren = on_grid(*render, grid)
    ren_hp = highpass(ren)
    best: dict[str, float] = {"r": -np.inf}
    steps = int(round(SEARCH_S * GRID_FPS))
    for k in range(-steps, steps + 1):
        shift = offset + k / GRID_FPS
        rea = on_grid(*real, grid - shift)
        rea_hp = highpass(rea)
        ok = np.isfinite(ren_hp) & np.isfinite(rea_hp)
        if ok.sum() < 50:
            continue
        r = float(np.corrcoef(ren_hp[ok], rea_hp[ok])[0, 1])
        if r > best["r"]:
            both = np.isfinite(ren) & np.isfinite(rea)
            best = {
                "r": r, "shift_ms": shift * 1000.0,
                "amp_hp": float(np.std(ren_hp[ok]) / np.std(rea_hp[ok])),
                "amp_raw": float(np.std(ren[both]) / np.std(rea[both])),
            }
    return best


def run_clip(clip: Clip, label: str) -> list[Any]:
    from facecast.pipeline.talking_photo import TalkingPhotoSpec, render_talking_photo

    real = lip_opening_series(clip.video)
    photo = portrait(clip, *real)
    if clip.audio is not None:
        speech = clip.audio
    else:  # the video's own AAC track as a WAV, as a user would upload it
        from facecast.media import write_audio

        speech = write_audio(OUT_DIR / f"reenact_{clip.video.stem}.wav",
                             load_audio(clip.video))
    out = OUT_DIR / f"reenact_{clip.video.stem}_{label}.mp4"
    result = render_talking_photo(TalkingPhotoSpec(photo=photo, output=out, audio=speech,
                                                   size="source"))
    score = compare(lip_opening_series(out), real, clip.offset_s)
    amp_ok = AMPLITUDE_BAR[0] <= score["amp_hp"] <= AMPLITUDE_BAR[1]
    r_ok = score["r"] >= R_BAR
    why = [w for w, ok in (("r", r_ok), ("amplitude", amp_ok)) if not ok]
    verdict = "PASS" if not why else "FAIL (" + ", ".join(why) + ")"
    recog = result.track.meta.get("recognition", {})
    speech_x = result.timings["speech"] / result.duration  # loading + mouth track
    return [clip.name, label, result.track.source, recog.get("confidence", "-"), speech_x,
            score["shift_ms"], score["r"], score["amp_hp"], score["amp_raw"], verdict]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--label", default="this checkout", help="names the rows (before/after)")
    ap.add_argument("--spectral", action="store_true",
                    help="refuse every recognition: the any-language (fallback) track")
    args = ap.parse_args(argv)
    if args.spectral:
        import facecast.motion.recognition as recognition

        recognition.MIN_CONFIDENCE = float("inf")  # read at each use: nothing is confident
    print(f"bench_reenact: bar r >= {R_BAR} (high-passed, best shift within "
          f"+-{SEARCH_S * 1000:g} ms of the clip's offset), amplitude "
          f"{AMPLITUDE_BAR[0]}..{AMPLITUDE_BAR[1]}x the real std")
    if not shared_media_present():
        print("../shared/media is absent: nothing to compare.")
        return 0
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    rows = [run_clip(c, args.label.replace(" ", "_")) for c in clips() if c.video.is_file()]
    headers = ["clip", "code", "mouth from", "confidence", "speech s/s", "shift ms", "r",
               "amp (hp)", "amp (raw)", "bar"]
    print_table(headers, rows, title="Self-reenactment: render vs real lips")
    return 0


if __name__ == "__main__":
    sys.exit(main())
