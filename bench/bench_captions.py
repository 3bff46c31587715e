"""Captions benchmark: how close caption timings are to the speech, per words source.

For each source of word timings the captions use (piper TTS, a given transcript,
recognised English speech), the cue starts written to the SRT file and every word the
cues hold are compared with an independent forced alignment (pocketsphinx, the known
text) of the audio: for TTS, of the rendered MP4's own AAC audio. Also the cue rules
(lines, characters, seconds) over the whole set. Run by hand:

    python bench/bench_captions.py [--quick]
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

import numpy as np

from common import OUT_DIR, SPEECH_DIR, TTS_TEXT, portrait_path, print_table

BAR_MS = 150.0  # issue #17: word starts within 150 ms of an independent alignment
AUSTEN = ("and mister john dashwood had then leisure to consider how much there might be "
          "prudently in his power to do for them")


def _key(word: str) -> str:
    return re.sub(r"[^\w']", "", word.lower())


def _errors_ms(timed: list, reference: list) -> list[float]:
    """Start differences of the words both lists hold, matched in order by spelling."""
    from difflib import SequenceMatcher

    a, b = [_key(w.word) for w in timed], [_key(w.word) for w in reference]
    out = []
    for block in SequenceMatcher(None, a, b, autojunk=False).get_matching_blocks():
        for k in range(block.size):
            out.append(1000 * abs(timed[block.a + k].start - reference[block.b + k].start))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="one sentence of TTS")
    args = ap.parse_args(argv)
    from PIL import Image

    from facecast.captions import parse_captions
    from facecast.media import load_audio
    from facecast.motion.align import align_transcript
    from facecast.pipeline.captioning import make_captions
    from facecast.pipeline.talking_photo import TalkingPhotoSpec, render_talking_photo
    from facecast.rules import CAPTION_LINE_CHARS, CAPTION_MAX_LINES, CAPTION_MAX_S

    OUT_DIR.mkdir(parents=True, exist_ok=True)
    text = ". ".join(TTS_TEXT.split(". ")[:1 if args.quick else 2]) + "."
    rows, all_cues = [], []
    with tempfile.TemporaryDirectory() as tmp:
        photo = Path(tmp) / "face.png"
        Image.open(portrait_path()).convert("RGB").crop((110, 10, 366, 266)).save(photo)
        out = OUT_DIR / "captions_tts.mp4"
        result = render_talking_photo(TalkingPhotoSpec(
            photo=photo, output=out, text=text, size="source", head_motion=0.0,
            captions=[out.with_suffix(".srt")]))
        reference, _ = align_transcript(load_audio(out), text)
        cues = parse_captions(out.with_suffix(".srt").read_text(encoding="utf-8"), "srt")
        firsts = [type(reference[0])(c.lines[0].split()[0], c.start, c.end) for c in cues]
        words = [w for c in result.captions for w in c.words]
        rows.append(("tts (piper), the MP4's audio", len(cues), _errors_ms(firsts, reference),
                     _errors_ms(words, reference)))
        all_cues += cues

    sources = [("transcript (librivox)", "librivox_austen_0870.wav", AUSTEN, True),
               ("recognised (librivox)", "librivox_austen_0870.wav", AUSTEN, False),
               ("recognised (goforward)", "pocketsphinx_goforward.wav",
                "go forward ten meters", False)]
    for name, file, known, give_text in sources:
        path = SPEECH_DIR / file
        if not path.is_file():
            continue
        audio = load_audio(path)
        reference, _ = align_transcript(audio, known)
        aligned = reference if give_text else []
        made = make_captions(audio, aligned, text=None, transcript=known if give_text else None)
        firsts = [c.words[0] for c in made.cues]
        words = [w for c in made.cues for w in c.words]
        # the transcript's own alignment is the captions' source: against the recogniser
        # (another decoder, another search) it is measured independently
        if give_text:
            from facecast.motion.recognition import recognise

            reference = recognise(audio).words
        rows.append((name, len(made.cues), _errors_ms(firsts, reference),
                     _errors_ms(words, reference)))
        all_cues += made.cues

    table = []
    for name, n, first, every in rows:
        worst = max(first) if first else float("nan")
        table.append((name, n, float(np.median(first)) if first else float("nan"), worst,
                      float(np.median(every)) if every else float("nan"),
                      max(every) if every else float("nan"),
                      "PASS" if worst <= BAR_MS else "FAIL"))
    print_table(("words source", "cues", "cue start med ms", "cue start max ms",
                 "word med ms", "word max ms", f"<= {BAR_MS:g} ms"), table,
                title="caption timing vs an independent alignment")
    lines_ok = all(len(c.lines) <= CAPTION_MAX_LINES
                   and all(len(line) <= CAPTION_LINE_CHARS for line in c.lines)
                   for c in all_cues)
    spans = [c.end - c.start for c in all_cues]
    print(f"\n{len(all_cues)} cues: lines within {CAPTION_MAX_LINES}x{CAPTION_LINE_CHARS} "
          f"{'PASS' if lines_ok else 'FAIL'}; shown {min(spans):.2f}-{max(spans):.2f} s "
          f"(max {CAPTION_MAX_S:g}) {'PASS' if max(spans) <= CAPTION_MAX_S else 'FAIL'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
