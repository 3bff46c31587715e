"""Lip sync of facecast renders, scored from the outside with
facecast.quality.lipsync (face-mesh lip gap vs 1-3 kHz audio envelope).

Renders the astronaut with >= 20 s of real English speech and >= 20 s of
piper TTS, plus German and Chinese speech, and prints best lag and peak r
against the bar (lag 0..+120 ms, r >= 0.35). For the TTS render it also
compares the lip gap at p/b/m centres with that at open vowels. A reference
block scores real talking-head videos the same way, to show what the measure
gives for real people. Run by hand:

    python bench/bench_lipsync.py [--quick] [--no-reference]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

from common import (
    ENGLISH_SPEECH,
    OUT_DIR,
    SHARED_MEDIA,
    SPEECH_RATE,
    concat_speech,
    pipeline_available,
    print_table,
    render_in_child,
    shared_media_present,
    spec_fields,
    tts_text,
)
from facecast.media import Audio, load_audio
from facecast.quality.lipsync import (
    LipSyncScore,
    lip_gap_at,
    lip_opening_series,
    measure_lipsync,
    score_series,
)

LAG_BAR_MS = (0.0, 120.0)
R_BAR = 0.35

BILABIALS = {"p", "b", "m"}
OPEN_VOWELS_IPA = {"a", "ɑ", "æ", "ʌ"}
OPEN_VOWELS_ARPABET = {"aa", "ae"}  # plus stressed "ah" (AH0 is schwa)


def verdict(score: LipSyncScore) -> str:
    lag_ok = LAG_BAR_MS[0] <= score.best_lag_ms <= LAG_BAR_MS[1]
    r_ok = score.peak_correlation >= R_BAR
    if lag_ok and r_ok:
        return "PASS"
    why = [w for w, ok in (("lag", lag_ok), ("r", r_ok)) if not ok]
    return "FAIL (" + ", ".join(why) + ")"


def score_row(label: str, score: LipSyncScore, *, judged: bool = True) -> list[Any]:
    return [
        label,
        score.duration,
        score.best_lag_ms,
        score.peak_correlation,
        score.correlation_at_zero,
        f"{score.faces_found}/{score.frames}",
        verdict(score) if judged else "-",
    ]


HEADERS = ["what", "seconds", "lag ms", "peak r", "r at 0", "faces", "bar"]


def _delayed(audio: Audio, ms: float) -> Audio:
    n = round(ms / 1000.0 * audio.sample_rate)
    return Audio(np.concatenate([np.zeros(n, np.float32), audio.samples]), audio.sample_rate)


def reference_block() -> None:
    """The measure on real people, with their own and with mismatched audio."""
    videos = SHARED_MEDIA / "videos"
    obama = videos / "obama_weekly_address_20s.mp4"
    klob = videos / "klobuchar_10s_noaudio.mp4"
    rows: list[list[Any]] = []
    if obama.is_file():
        t, v = lip_opening_series(obama)
        own = load_audio(obama)
        foreign = Audio(
            np.concatenate(
                [
                    load_audio(SHARED_MEDIA / "speech" / n, SPEECH_RATE).samples
                    for n in (
                        "hdtf_RD_Radio31_000.wav",
                        "librivox_austen_0870.wav",
                        "zh_chinese_news_sadtalker.wav",
                        "de_german_sadtalker_deyu.wav",
                    )
                ]
            ),
            SPEECH_RATE,
        )
        rows.append(
            score_row("obama 20 s, own audio (~250 ms late)", score_series(t, v, own), judged=False)
        )
        rows.append(
            score_row(
                "obama, audio +400 ms later", score_series(t, v, _delayed(own, 400)), judged=False
            )
        )
        rows.append(score_row("obama, foreign speech", score_series(t, v, foreign), judged=False))
    if klob.is_file():
        rows.append(
            score_row(
                "klobuchar 10 s, own audio",
                measure_lipsync(klob, videos / "klobuchar_10s_audio.wav"),
                judged=False,
            )
        )
    if rows:
        print_table(HEADERS, rows, title="Reference: real talking heads (not judged)")


def _norm_phoneme(p: str) -> str:
    return "".join(ch for ch in p if ch not in "ˈˌːˑ'0123456789").strip().lower()


def _is_open_vowel(p: str) -> bool:
    base = _norm_phoneme(p)
    if p.isascii() and p[:1].isupper():  # ARPAbet
        return base in OPEN_VOWELS_ARPABET or (base == "ah" and p.rstrip().endswith(("1", "2")))
    return base in OPEN_VOWELS_IPA


def closure_ratio(video: Path, phonemes: list[dict[str, Any]]) -> tuple[float, int, int]:
    """Mean lip gap at p/b/m centres / mean lip gap at open-vowel centres."""
    closed = [
        (p["start"] + p["end"]) / 2 for p in phonemes if _norm_phoneme(p["phoneme"]) in BILABIALS
    ]
    opened = [(p["start"] + p["end"]) / 2 for p in phonemes if _is_open_vowel(p["phoneme"])]
    if not closed or not opened:
        return float("nan"), len(closed), len(opened)
    gap_closed = float(np.nanmean(lip_gap_at(video, closed)))
    gap_open = float(np.nanmean(lip_gap_at(video, opened)))
    return gap_closed / gap_open if gap_open > 0 else float("nan"), len(closed), len(opened)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="10 s clips instead of 20 s")
    ap.add_argument("--no-reference", action="store_true", help="skip the real-video block")
    args = ap.parse_args(argv)
    seconds = 10.0 if args.quick else 20.0

    print(
        f"bench_lipsync: bar lag {LAG_BAR_MS[0]:g}..{LAG_BAR_MS[1]:g} ms "
        f"(positive = lips lead), peak r >= {R_BAR}"
    )
    if not args.no_reference and shared_media_present():
        reference_block()
    if not pipeline_available():
        print("\nfacecast.pipeline.talking_photo is not importable yet: no renders to score.")
        return 0

    jobs: list[tuple[str, dict[str, Any]]] = []
    if shared_media_present():
        wav = concat_speech(ENGLISH_SPEECH, seconds, OUT_DIR / "lipsync_en.wav")
        jobs.append((f"English speech {seconds:g}+ s (audio only)", {"audio": str(wav)}))
    jobs.append((f"English piper TTS {seconds:g}+ s", {"text": tts_text(seconds)}))
    if shared_media_present():
        for lang, name in (
            ("German", "de_german_sadtalker_deyu.wav"),
            ("Chinese", "zh_chinese_news_sadtalker.wav"),
        ):
            wav = concat_speech([name], seconds, OUT_DIR / f"lipsync_{lang.lower()}.wav")
            jobs.append((f"{lang} speech {seconds:g}+ s (looped)", {"audio": str(wav)}))

    rows: list[list[Any]] = []
    closure: tuple[float, int, int] | None = None
    for i, (label, speech) in enumerate(jobs):
        out = OUT_DIR / f"lipsync_{i}.mp4"
        run = render_in_child(spec_fields(out, size="source", **speech))
        if not run.ok:
            rows.append(
                [
                    label,
                    float("nan"),
                    float("nan"),
                    float("nan"),
                    float("nan"),
                    "-",
                    f"ERROR {run.error}",
                ]
            )
            continue
        score = measure_lipsync(out)
        rows.append(score_row(label, score))
        if "text" in speech and run.result.get("phonemes"):
            closure = closure_ratio(out, run.result["phonemes"])
    print_table(HEADERS, rows, title="facecast renders of the astronaut (size source)")
    if closure is not None:
        ratio, n_closed, n_open = closure
        print(
            f"\nTTS render: lip gap at p/b/m centres / at open vowels = {ratio:.2f} "
            f"({n_closed} p/b/m, {n_open} open vowels; well below 1 means closures show)"
        )
    else:
        print("\nTTS render: no phoneme timings returned, p/b/m check skipped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
