"""Peak memory of long renders: a 5-minute and a 1-minute 1080p talking photo,
each in its own child process, to show memory does not grow with length.

Prints both peaks (MiB), their ratio (about 1.0 when streaming works) and the
bar (peak < 1500 MiB). Run by hand:

    python bench/bench_memory.py [--quick] [--minutes M]
"""

from __future__ import annotations

import argparse
import sys

from common import (
    OUT_DIR,
    pipeline_available,
    print_table,
    render_in_child,
    spec_fields,
    speech_input,
)

BAR_MB = 1500.0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=5.0, help="length of the long render")
    ap.add_argument("--short-minutes", type=float, default=1.0, help="length of the short one")
    ap.add_argument("--size", default="1080p", help="TalkingPhotoSpec.size (default 1080p)")
    ap.add_argument("--quick", action="store_true", help="1 min vs 0.25 min instead of 5 vs 1")
    args = ap.parse_args(argv)
    long_min, short_min = args.minutes, args.short_minutes
    if args.quick:
        long_min, short_min = 1.0, 0.25

    print(f"bench_memory: {args.size} 16:9, {long_min:g} min vs {short_min:g} min of speech")
    if not pipeline_available():
        print("facecast.pipeline.talking_photo is not importable yet: nothing to render.")
        return 0

    rows: list[list[object]] = []
    peaks: dict[str, float] = {}
    for label, minutes in (("short", short_min), ("long", long_min)):
        speech = speech_input(minutes * 60.0, f"memory_{minutes:g}min")
        out = OUT_DIR / f"memory_{minutes:g}min.mp4"
        run = render_in_child(spec_fields(out, size=args.size, aspect="16:9", **speech))
        if not run.ok:
            rows.append(
                [
                    label,
                    minutes,
                    float("nan"),
                    float("nan"),
                    float("nan"),
                    BAR_MB,
                    f"ERROR {run.error}",
                ]
            )
            continue
        peak = max(run.peak_rss_mb, run.peak_tree_rss_mb)
        peaks[label] = peak
        verdict = "PASS" if peak < BAR_MB else "FAIL"
        rows.append(
            [
                label,
                minutes,
                run.peak_rss_mb,
                run.peak_tree_rss_mb,
                run.render_wall_s,
                BAR_MB,
                verdict,
            ]
        )
    print_table(
        ["render", "minutes", "peak RSS MiB", "tree peak MiB", "wall s", "bar MiB", "verdict"],
        rows,
        title="Peak resident memory per render (child process; tree = child + its children)",
    )
    if "short" in peaks and "long" in peaks:
        ratio = peaks["long"] / peaks["short"]
        per_min = (peaks["long"] - peaks["short"]) / max(long_min - short_min, 1e-9)
        print(
            f"\nlong / short peak = {ratio:.2f} for {long_min / short_min:.0f}x the length; "
            f"{per_min:+.0f} MiB per extra minute"
        )
        # The whole soundtrack is held once at its own rate (plus a 16 kHz copy for the
        # mouth analysis): a few MiB per minute of speech. Growth well beyond that
        # means frames or per-frame state pile up.
        print("  (the soundtrack itself is held in memory: a few MiB per minute)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
