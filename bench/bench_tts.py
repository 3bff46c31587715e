"""TTS benchmark: speed, first-audio latency and timing accuracy for each engine.

Prints, for the neural piper voice and an espeak-ng voice: times faster than
real time over a long English text, first-audio latency when streaming a
5,000-character text, how far the phoneme durations' sum is from the audio's
length, and (English) the median distance between facecast's word starts and
an independent pocketsphinx forced alignment. Run by hand:

    python bench/bench_tts.py [--quick]
"""

from __future__ import annotations

import argparse
import sys
import time
from difflib import SequenceMatcher

import numpy as np

from common import print_table

PARAGRAPH = (
    "It is a truth universally acknowledged, that a single man in possession of a good "
    "fortune, must be in want of a wife. However little known the feelings or views of such "
    "a man may be on his first entering a neighbourhood, this truth is so well fixed in the "
    "minds of the surrounding families, that he is considered the rightful property of some "
    "one or other of their daughters. "
)
BARS = {"piper": 10.0, "espeak": 100.0}
LATENCY_BAR_S = 0.5
ALIGN_BAR_MS = 60.0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="shorter texts")
    args = ap.parse_args(argv)
    from facecast.motion.align import align_transcript
    from facecast.speech import stream, synthesize

    long_text = PARAGRAPH * (1 if args.quick else 4)
    huge = (PARAGRAPH * 20)[:5000]
    rows = []
    for engine, voice in (("piper", None), ("espeak", "espeak:en-us")):
        synthesize("Warm up.", voice)  # load the model / library once, as a server would
        t = time.perf_counter()
        speech = synthesize(long_text, voice)
        wall = time.perf_counter() - t
        xrt = speech.audio.duration / wall
        t = time.perf_counter()
        first = next(stream(huge, voice))
        latency = time.perf_counter() - t
        timing_error_ms = abs(sum(p.duration for p in speech.phonemes) - speech.audio.duration)
        words, _ = align_transcript(speech.audio, " ".join(w.word for w in speech.words))
        # Pair words by their text: an engine may merge tokens ("of the") or split them.
        key = lambda w: w.word.lower().strip(".,;:!?'\"")  # noqa: E731
        pairs = SequenceMatcher(None, [key(w) for w in speech.words], [key(w) for w in words],
                                autojunk=False).get_matching_blocks()
        gaps = [abs(speech.words[a + k].start - words[b + k].start)
                for a, b, size in pairs for k in range(size)]
        align_ms = float(np.median(gaps)) * 1000
        rows.append([
            engine, f"{speech.audio.duration:.1f}", f"{xrt:.0f}x",
            "PASS" if xrt >= BARS[engine] else "FAIL", f"{latency:.2f}",
            "PASS" if latency < LATENCY_BAR_S else "FAIL", f"{timing_error_ms * 1000:.2f}",
            f"{align_ms:.0f}", "PASS" if align_ms <= ALIGN_BAR_MS else "FAIL",
        ])
        del first
    print_table(
        ["engine", "audio s", "x real time", "bar", "first audio s", "bar",
         "sum error ms", "word start vs pocketsphinx ms", "bar"],
        rows,
        title=f"TTS (bars: piper >= {BARS['piper']:.0f}x, espeak >= {BARS['espeak']:.0f}x, "
              f"first audio < {LATENCY_BAR_S} s, median word-start gap <= {ALIGN_BAR_MS:.0f} ms)",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
