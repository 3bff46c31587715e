"""Shared helpers for the hand-run benchmarks in bench/ (not collected by pytest).

- speech inputs: real read speech from ../shared/media/speech concatenated to
  any length, or an English text for the piper TTS path;
- renders of :func:`facecast.pipeline.talking_photo.render_talking_photo` in a
  child process, timed, with the child's peak resident memory;
- a plain-text table printer.

The benchmarks report; they never fail on a missed bar (exit code 0).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED_MEDIA = ROOT.parent / "shared" / "media"
SPEECH_DIR = SHARED_MEDIA / "speech"
OUT_DIR = ROOT / "out" / "bench"  # /out/ is git-ignored

# English read speech, longest first; concatenated (and repeated) to any length.
ENGLISH_SPEECH = (
    "hdtf_RD_Radio31_000.wav",
    "librivox_austen_0870.wav",
    "pocketsphinx_goforward.wav",
)
SPEECH_RATE = 16_000
GAP_S = 0.35  # a breath between clips, so the joins do not sound like one word

# Public-domain prose (Austen, "Sense and Sensibility", ch. 1), rich in both
# p/b/m closures and open vowels. About 3.1 words per second with the joe voice.
TTS_TEXT = (
    "The family of Dashwood had long been settled in Sussex. Their estate was large, "
    "and their residence was at Norland Park, in the centre of their property, where, "
    "for many generations, they had lived in so respectable a manner as to engage the "
    "general good opinion of their surrounding acquaintance. The late owner of this "
    "estate was a single man, who lived to a very advanced age, and who for many years "
    "of his life had a constant companion and housekeeper in his sister. But her death, "
    "which happened ten years before his own, produced a great alteration in his home."
)
TTS_WORDS_PER_S = 3.3


def portrait_path() -> Path:
    """The packaged astronaut portrait (512x512)."""
    from facecast.assets import asset_path

    return asset_path("astronaut.png")


def shared_media_present() -> bool:
    return SPEECH_DIR.is_dir()


def pipeline_available() -> bool:
    """True once ``facecast.pipeline.talking_photo`` exists in this checkout."""
    try:
        return importlib.util.find_spec("facecast.pipeline.talking_photo") is not None
    except ModuleNotFoundError:
        return False


def concat_speech(
    names: Sequence[str], seconds: float, out_path: Path, *, rate: int = SPEECH_RATE
) -> Path:
    """A WAV of at least ``seconds``: the given clips from shared media, repeated in turn.

    Cut at the end of a whole clip (not mid-word) once the length is reached.
    """
    from facecast.media import Audio, load_audio, write_audio

    clips = [load_audio(SPEECH_DIR / n, rate).samples for n in names]
    gap = np.zeros(round(GAP_S * rate), np.float32)
    parts: list[np.ndarray] = []
    total = 0
    i = 0
    while total < seconds * rate:
        clip = clips[i % len(clips)]
        parts += [clip, gap]
        total += len(clip) + len(gap)
        i += 1
    out_path.parent.mkdir(parents=True, exist_ok=True)
    return write_audio(out_path, Audio(np.concatenate(parts), rate))


def tts_text(seconds: float) -> str:
    """English text that piper speaks for roughly ``seconds`` (or a little more)."""
    words = TTS_TEXT.split()
    need = int(np.ceil(seconds * TTS_WORDS_PER_S)) + 4
    out: list[str] = []
    while len(out) < need:
        out += words
    text = " ".join(out[:need])
    return text.rstrip(",;") + "." if not text.endswith(".") else text


def speech_input(seconds: float, name: str) -> dict[str, Any]:
    """Spec fields for ``seconds`` of English speech: real audio when shared media
    is present, else text for piper TTS."""
    if shared_media_present():
        wav = concat_speech(ENGLISH_SPEECH, seconds, OUT_DIR / f"{name}.wav")
        return {"audio": str(wav)}
    return {"text": tts_text(seconds)}


# --------------------------------------------------------------------------- child renders

# Runs in the child: build the spec from JSON, render, print the result as JSON.
_CHILD = r"""
import json, sys, time
from pathlib import Path
from facecast.pipeline.talking_photo import TalkingPhotoSpec, render_talking_photo
kw = json.loads(sys.argv[1])
for key in ("photo", "output", "audio"):
    if kw.get(key) is not None:
        kw[key] = Path(kw[key])
t0 = time.perf_counter()
res = render_talking_photo(TalkingPhotoSpec(**kw), progress=None)
wall = time.perf_counter() - t0
out = {
    "output": str(res.output), "duration": res.duration, "frames": res.frames,
    "width": res.width, "height": res.height, "timings": dict(res.timings),
    "phonemes": [p.to_dict() for p in (res.phonemes or [])], "render_wall_s": wall,
}
print("@@RESULT@@" + json.dumps(out))
"""


@dataclass
class ChildRun:
    """One job run in a fresh Python, with its own resource figures."""

    ok: bool
    process_wall_s: float  # interpreter start + imports + the job
    cpu_s: float  # the child's user + system CPU seconds (wait4)
    peak_rss_mb: float  # the child's own high-water mark (wait4 ru_maxrss)
    peak_tree_mb: float  # child + descendants, sampled every 50 ms
    result: dict[str, Any] = field(default_factory=dict)  # what it printed after @@RESULT@@
    error: str = ""


def run_child(code: str, *args: str, timeout_s: float = 3600.0) -> ChildRun:
    """Run ``python -c code *args`` and collect the JSON it prints after ``@@RESULT@@``.

    A fresh process per run makes the peak RSS that run's alone: nothing is
    shared with earlier runs or with this (measuring) process.
    """
    import psutil

    env = {**os.environ, "GLOG_minloglevel": "2"}
    env.setdefault("PYTHONUNBUFFERED", "1")
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=str(ROOT))
    tree_peak = [0]
    done = threading.Event()

    def sample() -> None:
        try:
            parent = psutil.Process(proc.pid)
        except psutil.NoSuchProcess:
            return
        while not done.is_set():
            with contextlib.suppress(psutil.Error):
                procs = [parent, *parent.children(recursive=True)]
                tree_peak[0] = max(tree_peak[0], sum(p.memory_info().rss for p in procs))
            done.wait(0.05)

    # Read the pipes in threads so a chatty child never blocks on a full pipe
    # while this thread sits in wait4.
    buffers: dict[str, str] = {}
    threads = [threading.Thread(target=lambda k=k, f=f: buffers.__setitem__(k, f.read()),
                                daemon=True)
               for k, f in (("out", proc.stdout), ("err", proc.stderr))]
    threads.append(threading.Thread(target=sample, daemon=True))
    for t in threads:
        t.start()
    timer = threading.Timer(timeout_s, proc.kill)
    timer.start()
    try:
        # wait4 gives this child's own rusage; RUSAGE_CHILDREN would mix in earlier runs.
        _, status, usage = os.wait4(proc.pid, 0)
    finally:
        timer.cancel()
        done.set()
    proc.returncode = code_ = os.waitstatus_to_exitcode(status)
    for t in threads:
        t.join()
    result: dict[str, Any] = {}
    for line in buffers.get("out", "").splitlines():
        if line.startswith("@@RESULT@@"):
            result = json.loads(line[len("@@RESULT@@") :])
    ok = code_ == 0 and bool(result)
    error = "" if ok else (buffers.get("err", "").strip().splitlines() or [f"exit {code_}"])[-1]
    return ChildRun(ok, time.perf_counter() - t0, usage.ru_utime + usage.ru_stime,
                    usage.ru_maxrss / 1024.0,  # KiB on Linux -> MiB
                    tree_peak[0] / 1048576.0, result, error)


@dataclass
class ChildRender:
    """One render in a child process."""

    ok: bool
    process_wall_s: float  # interpreter start + imports + render + encode
    render_wall_s: float  # render_talking_photo() alone, measured in the child
    peak_rss_mb: float  # the child's own high-water mark (wait4 ru_maxrss)
    peak_tree_rss_mb: float  # child + descendants, sampled every 50 ms
    result: dict[str, Any] = field(default_factory=dict)
    error: str = ""


def render_in_child(spec: dict[str, Any], *, timeout_s: float = 3600.0) -> ChildRender:
    """Render ``spec`` (TalkingPhotoSpec fields, paths as str) in a fresh Python."""
    run = run_child(_CHILD, json.dumps(spec), timeout_s=timeout_s)
    return ChildRender(
        ok=run.ok,
        process_wall_s=run.process_wall_s,
        render_wall_s=float(run.result.get("render_wall_s", float("nan"))),
        peak_rss_mb=run.peak_rss_mb,
        peak_tree_rss_mb=run.peak_tree_mb,
        result=run.result,
        error=run.error,
    )


def spec_fields(output: Path, **fields: Any) -> dict[str, Any]:
    """TalkingPhotoSpec fields as JSON-friendly values, with the astronaut as the photo."""
    spec: dict[str, Any] = {"photo": str(portrait_path()), "output": str(output)}
    spec.update({k: (str(v) if isinstance(v, Path) else v) for k, v in fields.items()})
    return spec


# --------------------------------------------------------------------------- output


def fmt(value: Any, digits: int = 2) -> str:
    if isinstance(value, float):
        return "n/a" if not np.isfinite(value) else f"{value:.{digits}f}"
    return str(value)


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], title: str = "") -> None:
    """A fixed-width table: numbers right-aligned, text left-aligned."""
    cells = [[fmt(c) for c in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        for i, c in enumerate(row):
            widths[i] = max(widths[i], len(c))
    numeric = [
        all(isinstance(row[i], int | float) for row in rows) if rows else False
        for i in range(len(headers))
    ]

    def line(values: Sequence[str]) -> str:
        parts = [
            v.rjust(widths[i]) if numeric[i] else v.ljust(widths[i]) for i, v in enumerate(values)
        ]
        return "  ".join(parts).rstrip()

    if title:
        print(f"\n{title}")
    print(line(list(headers)))
    print("  ".join("-" * w for w in widths))
    for row in cells:
        print(line(row))
    sys.stdout.flush()


def no_pipeline_notice() -> None:
    print(
        "facecast.pipeline.talking_photo is not importable in this checkout yet: "
        "nothing to render. (This benchmark reports; exit code 0.)"
    )
