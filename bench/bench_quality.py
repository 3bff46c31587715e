"""Cost of the quality report (facecast.quality.report) against the render it judges.

Renders the astronaut at 512x512, 1280x720 and 1920x1080, then in the same process
(as the CLI and the service do) times ``quality_report(render_seconds=...)`` and,
for comparison, the lip-sync measure on every frame (``measure_lipsync``). Prints
report / render time against the 10 % bar, whether the CLI's default would run
it (``cheap_enough``), the machine's load, and the verdicts. Run by hand:

    python bench/bench_quality.py [--seconds S]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from common import OUT_DIR, pipeline_available, portrait_path, print_table, speech_input

SIZES = (("512x512", "source", None), ("1280x720", "720p", "16:9"),
         ("1920x1080", "1080p", "16:9"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=8.0, help="speech length (default 8)")
    args = ap.parse_args(argv)
    if not pipeline_available():
        print("pipeline not importable; nothing measured")
        return 0
    from facecast.pipeline.talking_photo import TalkingPhotoSpec, render_talking_photo
    from facecast.quality.lipsync import measure_lipsync
    from facecast.quality.report import COST_SHARE, cheap_enough, quality_report

    OUT_DIR.mkdir(parents=True, exist_ok=True)
    speech = speech_input(args.seconds, "quality")
    rows = []
    load = os.getloadavg()[0]
    for label, size, aspect in SIZES:
        out = OUT_DIR / f"quality_{label}.mp4"
        res = render_talking_photo(TalkingPhotoSpec(photo=portrait_path(), output=out,
                                                    size=size, aspect=aspect, **speech))
        render_s = res.timings["total"]
        t = time.perf_counter()
        q = quality_report(out, render_seconds=render_s)
        report_s = time.perf_counter() - t
        t = time.perf_counter()
        full = measure_lipsync(out)
        full_s = time.perf_counter() - t
        ratio = report_s / render_s
        auto = cheap_enough(res.duration, 25.0, render_s, res.width * res.height)
        rows.append([label, res.duration, render_s, q.seconds_measured, report_s, ratio,
                     "PASS" if ratio <= COST_SHARE else "FAIL", "yes" if auto else "no",
                     full_s / render_s, q.verdict, q.r or 0.0, q.lag_ms or 0.0,
                     full.peak_correlation, full.best_lag_ms])
    print_table(["size", "video s", "render s", "measured s", "report s", "report/render",
                 f"bar {COST_SHARE:.2f}", "CLI default", "full/render", "verdict", "r",
                 "lag ms", "full r", "full lag"], rows,
                title=f"quality report cost ({args.seconds:g} s speech, load {load:.1f} "
                      f"on {os.cpu_count()} cores)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
