"""Render speed: wall time of a whole talking-photo render (encode included) per
second of speech, at 512x512, 1280x720 and 1920x1080.

Each render runs in a fresh child process (so no warm caches carry over);
the ratio is render_talking_photo()'s own wall time over the audio duration,
checked against the bar for that size. Run by hand:

    python bench/bench_speed.py [--quick] [--seconds S]
"""

from __future__ import annotations

import argparse
import os
import sys

from common import (
    OUT_DIR,
    pipeline_available,
    print_table,
    render_in_child,
    spec_fields,
    speech_input,
)

# (label, spec fields, bar on wall / audio seconds)
SIZES: tuple[tuple[str, dict[str, str | None], float], ...] = (
    ("512x512 (source)", {"size": "source", "aspect": None}, 0.25),
    ("1280x720 (720p 16:9)", {"size": "720p", "aspect": "16:9"}, 0.5),
    ("1920x1080 (1080p 16:9)", {"size": "1080p", "aspect": "16:9"}, 1.0),
)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="5 s of speech instead of 20 s")
    ap.add_argument("--seconds", type=float, default=None, help="speech length (default 20)")
    args = ap.parse_args(argv)
    seconds = args.seconds or (5.0 if args.quick else 20.0)

    print(f"bench_speed: {seconds:g} s of speech, astronaut portrait, {os.cpu_count()} CPUs")
    if not pipeline_available():
        print("facecast.pipeline.talking_photo is not importable yet: nothing to render.")
        return 0
    speech = speech_input(seconds, f"speed_{seconds:g}s")
    print("speech:", "shared-media WAV" if "audio" in speech else "piper TTS from text")

    rows: list[list[object]] = []
    for label, size, bar in SIZES:
        out = OUT_DIR / f"speed_{size['size']}.mp4"
        run = render_in_child(spec_fields(out, **size, **speech))
        if not run.ok:
            rows.append(
                [label, float("nan"), float("nan"), float("nan"), bar, f"ERROR {run.error}"]
            )
            continue
        res = run.result
        duration = float(res["duration"])
        ratio = run.render_wall_s / duration
        fps = res["frames"] / run.render_wall_s
        verdict = "PASS" if ratio <= bar else "FAIL"
        rows.append(
            [
                f"{label} -> {res['width']}x{res['height']}",
                run.render_wall_s,
                ratio,
                fps,
                bar,
                verdict,
            ]
        )
        stages = ", ".join(f"{k} {v:.2f}s" for k, v in res.get("timings", {}).items())
        print(f"  {label}: {duration:.1f} s video, process {run.process_wall_s:.1f} s; {stages}")
    print_table(
        ["size", "wall s", "wall/audio", "frames/s", "bar", "verdict"],
        rows,
        title=f"Render speed ({seconds:g} s speech; ratio = wall / audio seconds, lower is better)",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
