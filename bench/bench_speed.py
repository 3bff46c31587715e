"""Render speed: wall time of a whole talking-photo render (encode included) per
second of speech, at 512x512, 1280x720 and 1920x1080.

Each render runs in a fresh child process (so no warm caches carry over), twice:
``render_talking_photo()`` called from ``python -c`` (its own wall time, the
"pipeline" figure, and the process's) and the ``facecast render`` command itself
(``python -m facecast.cli render``, the whole command a user waits for: start-up,
imports, render, exit). The bar is on wall / audio seconds; CPU seconds (the
process and its children, from wait4) are printed too, as they say more than wall
on a busy machine. ``--repeat N`` runs each N times, interleaved, and prints medians.
Run by hand:

    python bench/bench_speed.py [--quick] [--seconds S] [--repeat N] [--no-command]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from common import (
    OUT_DIR,
    ROOT,
    pipeline_available,
    portrait_path,
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


@dataclass
class Command:
    """One ``facecast render`` run."""

    ok: bool
    wall_s: float
    cpu_s: float  # the command's and its children's user + system CPU (wait4)
    error: str = ""


def run_command(out: Path, size: dict[str, str | None], speech: dict[str, str]) -> Command:
    """``facecast render`` (as ``python -m facecast.cli``) for the astronaut and ``speech``."""
    args = [sys.executable, "-m", "facecast.cli", "render", "--photo", str(portrait_path()),
            "-o", str(out), "--no-progress", "--size", str(size["size"])]
    if size.get("aspect"):
        args += ["--aspect", str(size["aspect"])]
    args += ["--audio", speech["audio"]] if "audio" in speech else ["--text", speech["text"]]
    t0 = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            cwd=str(ROOT))
    assert proc.stderr is not None
    err = proc.stderr.read()  # small: the command hides native chatter
    # wait4 gives this command's own rusage (its children's included once reaped)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    proc.stderr.close()
    lines = err.decode(errors="replace").strip().splitlines()
    return Command(proc.returncode == 0, wall, usage.ru_utime + usage.ru_stime,
                   "" if proc.returncode == 0 else (lines or [f"exit {proc.returncode}"])[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="5 s of speech instead of 20 s")
    ap.add_argument("--seconds", type=float, default=None, help="speech length (default 20)")
    ap.add_argument("--repeat", type=int, default=1, help="runs per size (medians printed)")
    ap.add_argument("--no-command", action="store_true",
                    help="skip the `facecast render` command runs")
    args = ap.parse_args(argv)
    seconds = args.seconds or (5.0 if args.quick else 20.0)

    print(f"bench_speed: {seconds:g} s of speech, astronaut portrait, {os.cpu_count()} CPUs, "
          f"load {os.getloadavg()[0]:.1f}")
    if not pipeline_available():
        print("facecast.pipeline.talking_photo is not importable yet: nothing to render.")
        return 0
    speech = speech_input(seconds, f"speed_{seconds:g}s")
    print("speech:", "shared-media WAV" if "audio" in speech else "piper TTS from text")

    runs: dict[str, list[dict[str, float]]] = {label: [] for label, _, _ in SIZES}
    info: dict[str, tuple[int, int, float, int]] = {}
    errors: dict[str, str] = {}
    for _ in range(max(1, args.repeat)):
        for label, size, _bar in SIZES:
            out = OUT_DIR / f"speed_{size['size']}.mp4"
            run = render_in_child(spec_fields(out, **size, **speech))
            if not run.ok:
                errors[label] = run.error
                continue
            res = run.result
            duration = float(res["duration"])
            info[label] = (res["width"], res["height"], duration, res["frames"])
            figures = {"pipeline": run.render_wall_s, "process": run.process_wall_s}
            stages = ", ".join(f"{k} {v:.2f}s" for k, v in res.get("timings", {}).items())
            line = (f"  {label}: {duration:.1f} s video, pipeline {run.render_wall_s:.2f} s, "
                    f"process {run.process_wall_s:.2f} s; {stages}")
            if not args.no_command:
                cmd = run_command(OUT_DIR / f"speed_cmd_{size['size']}.mp4", size, speech)
                if cmd.ok:
                    figures.update(command=cmd.wall_s, command_cpu=cmd.cpu_s)
                    line += f"; command {cmd.wall_s:.2f} s wall, {cmd.cpu_s:.2f} s CPU"
                else:
                    errors[label] = f"command: {cmd.error}"
            runs[label].append(figures)
            print(line + f" (load {os.getloadavg()[0]:.1f})")
            sys.stdout.flush()

    def median(label: str, key: str) -> float:
        values = [r[key] for r in runs[label] if key in r]
        return statistics.median(values) if values else float("nan")

    rows: list[list[object]] = []
    for label, _size, bar in SIZES:
        if label not in info:
            nan = float("nan")
            rows.append([label, nan, nan, nan, nan, nan, bar, f"ERROR {errors.get(label)}"])
            continue
        width, height, duration, frames = info[label]
        pipeline = median(label, "pipeline")
        whole = median(label, "command") if not args.no_command else median(label, "process")
        verdict = "PASS" if whole / duration <= bar else "FAIL"
        rows.append([f"{label} -> {width}x{height}", pipeline / duration,
                     median(label, "process") / duration, median(label, "command") / duration,
                     median(label, "command_cpu") / duration, frames / pipeline, bar,
                     verdict + (f" ({errors[label]})" if label in errors else "")])
    print_table(
        ["size", "pipeline/audio", "process/audio", "command/audio", "command CPU/audio",
         "frames/s", "bar", "verdict"],
        rows,
        title=f"Render speed ({seconds:g} s speech; wall / audio seconds, lower is better; "
              f"median of {max(1, args.repeat)}; the verdict is on the whole command)",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
