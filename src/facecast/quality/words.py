"""The quality report as the CLI's one line, built from the report's dict (the native
API's ``result.quality``) with nothing but the standard library, so the remote CLI can
print a service's report the way a local render prints its own."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def percent(share: float) -> str:
    return f"{100 * share:.0f} %"


def summary_line(q: Mapping[str, Any]) -> str:
    """``quality: VERDICT[: reasons] (figures; sample)[; note]``."""
    reasons = list(q.get("reasons") or ())
    head = q["verdict"] + (": " + "; ".join(reasons) if reasons else "")
    figures = [f"face in {percent(q['face_found_share'])} of frames"]
    if q.get("lag_ms") is not None and q.get("r") is not None:
        figures.append(f"lag {q['lag_ms']:+.0f} ms, r {q['r']:.2f}")
    if q.get("motion") is not None:
        figures.append(f"mouth motion {q['motion']:.3f}")
    sample = (f"{q['frames_measured']} frames in {q['seconds_measured']:.1f} s of "
              f"{q['video_seconds']:.1f} s measured, in {q['seconds_taken']:.1f} s")
    note = q.get("note") or ""
    return f"quality: {head} ({', '.join(figures)}; {sample})" + (f"; {note}" if note else "")
