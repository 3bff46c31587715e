"""Live avatars (facecast.live, issue #16) watched by a real aiortc client.

One session on the packaged astronaut is started once for the module; one scenario
(:func:`watched`) connects a viewer, waits through idle, speaks a text, speaks
audio, interrupts a long text and closes, recording every frame, audio packet and
event with its arrival time; the tests then read that recording. Nothing waits on
a sleep: every step waits for the frames or events it needs, with a timeout.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

import facecast.assets
from facecast.errors import InputError
from facecast.live import LiveEvent, LiveSession, LiveSpec
from facecast.live.viewer import Recording, Viewer

PHOTO = Path(facecast.assets.__file__).parent / "astronaut.png"
SIZE = 384  # cheaper to render, encode and decode than 512 on the loaded test machine
TEXT = "Hello there, my name is Ada and I will be your guide today."
LONG = ("Once upon a time there was a lighthouse keeper who counted the waves every "
        "night. She wrote each number in a long blue book. The book grew and grew, and "
        "nobody ever read it, until one stormy evening a sailor knocked at her door.")
TIMEOUT = 20.0  # generous: the test machine runs several suites at once


@dataclass
class Watched:
    session: LiveSession
    recording: Recording
    events: list[tuple[float, LiveEvent]]  # on_event's, with arrival time
    marks: dict[str, float] = field(default_factory=dict)  # time.monotonic() of each step
    ids: dict[str, str | None] = field(default_factory=dict)
    bad_text_s: float = 0.0
    files_before: set[str] = field(default_factory=set)
    files_after: set[str] = field(default_factory=set)


def _ended(events: list[dict[str, object]], uid: str | None) -> bool:
    return any(e["type"] == "utterance_ended" and e["utterance_id"] == uid for e in events)


def _files() -> set[str]:
    """Files in the temporary directory and the working directory (nothing may appear)."""
    out: set[str] = set()
    for root in {tempfile.gettempdir(), os.getcwd()}:
        out |= {os.path.join(root, name) for name in os.listdir(root)}
    return out


async def _scenario(session: LiveSession, watched: Watched) -> None:
    loop = asyncio.get_running_loop()
    viewer = Viewer()

    async def answer(sdp: str) -> str:
        return await loop.run_in_executor(None, session.answer, sdp)

    await viewer.connect(answer)
    marks = watched.marks
    rec = viewer.recording
    # idle: a second and a half of frames and (silent) audio
    assert await viewer.wait_for(lambda r: len(r.video) >= 40 and len(r.audio) >= 75,
                                 TIMEOUT)
    marks["idle_end"] = time.monotonic()

    t = time.perf_counter()
    for bad in ("", "   ", "bell\x07"):
        with pytest.raises(InputError):
            session.speak_text(bad)
    watched.bad_text_s = time.perf_counter() - t

    marks["speak"] = time.monotonic()
    uid = session.speak_text(TEXT)
    watched.ids["text"] = uid
    assert await viewer.wait_for(lambda r: _ended(r.events, uid), TIMEOUT)
    marks["spoken"] = time.monotonic()

    from facecast.speech import synthesize

    audio = synthesize("Good morning to you all.").audio
    marks["audio"] = time.monotonic()
    aid = session.speak_audio(audio)
    watched.ids["audio"] = aid
    assert await viewer.wait_for(lambda r: _ended(r.events, aid), TIMEOUT)

    lid = session.speak_text(LONG)
    queued = session.speak_text(TEXT)
    watched.ids["long"], watched.ids["queued"] = lid, queued
    # interrupt once the long text has been heard for a while (four words in)
    assert await viewer.wait_for(
        lambda r: sum(e["type"] == "word" and e["utterance_id"] == lid for e in r.events) >= 4,
        TIMEOUT)
    marks["interrupt"] = time.monotonic()
    watched.ids["cut"] = await loop.run_in_executor(None, session.interrupt)
    assert await viewer.wait_for(lambda r: _ended(r.events, queued), TIMEOUT)
    # a second of what follows the interrupt
    assert await viewer.wait_for(
        lambda r: r.video[-1].arrived > marks["interrupt"] + 1.2, TIMEOUT)
    marks["end"] = time.monotonic()
    await viewer.close()
    watched.recording = rec


@pytest.fixture(scope="module")
def watched() -> Iterator[Watched]:
    events: list[tuple[float, LiveEvent]] = []
    before = _files()
    session = LiveSession(LiveSpec(photo=PHOTO, width=SIZE, height=SIZE),
                          on_event=lambda e: events.append((time.monotonic(), e)))
    session.start(timeout=120)
    w = Watched(session, Recording(), events, files_before=before)
    try:
        asyncio.run(_scenario(session, w))
    finally:
        session.close()
    w.files_after = _files()
    yield w


def _mouth_contrast(w: Watched, images: list[np.ndarray]) -> np.ndarray:
    """Per frame, the grey-level spread in a box on the lips: a closed mouth is lips only,
    an open one shows dark inside and light teeth. Unlike a difference from an idle
    frame, it hardly changes as the head moves."""
    x, y = w.session.info["mouth"]
    iod = w.session.info["iod"]
    box = (slice(int(y - 0.25 * iod), int(y + 0.25 * iod)),
           slice(int(x - 0.4 * iod), int(x + 0.4 * iod)))
    return np.array([im[box].astype(np.float32).mean(axis=2).std() for im in images])


def _frames(w: Watched, t0: float, t1: float) -> list[np.ndarray]:
    return [v.image for v in w.recording.video if t0 <= v.arrived < t1 and v.image is not None]


def _loudness(w: Watched, t0: float, t1: float) -> float:
    packets = [a.samples for a in w.recording.audio if t0 <= a.arrived < t1]
    return float(np.abs(np.concatenate(packets)).max()) if packets else 0.0


def test_streams_idle_video_and_silence(watched: Watched) -> None:
    rec = watched.recording
    assert rec.video[0].image is not None
    assert rec.video[0].image.shape == (SIZE, SIZE, 3)
    idle = [v for v in rec.video if v.arrived < watched.marks["speak"]]
    rate = (len(idle) - 1) / (idle[-1].arrived - idle[0].arrived)
    assert rate > 15.0  # 25 fps sent; the loaded test machine decodes what it can
    # alive, not frozen: blinks and head motion change the picture while idle
    first = idle[2].image
    assert first is not None
    assert max(np.abs(v.image.astype(int) - first).mean() for v in idle[3:]
               if v.image is not None) > 0.2
    assert _loudness(watched, rec.audio[0].arrived, watched.marks["speak"]) < 0.01


def test_bad_text_is_refused_at_once(watched: Watched) -> None:
    assert watched.bad_text_s < 0.1


def test_speech_events_in_order_on_both_paths(watched: Watched) -> None:
    uid = watched.ids["text"]
    channel = [e for e in watched.recording.events if e["utterance_id"] == uid]
    types = [e["type"] for e in channel]
    assert types[0] == "utterance_started" and types[-1] == "utterance_ended"
    words = [e["word"] for e in channel if e["type"] == "word"]
    assert words == ["Hello", "there", "my", "name", "is", "Ada", "and", "I", "will", "be",
                     "your", "guide", "today"]
    assert channel[-1]["reason"] == "done"
    times = [e["t"] for e in channel]
    assert times == sorted(times) and times[-1] - times[0] > 1.5
    parent = [e.type for _, e in watched.events if e.utterance_id == uid]
    assert parent == types
    assert watched.events[0][1].type == "ready"


def test_the_mouth_moves_and_sound_plays_for_speech(watched: Watched) -> None:
    m = watched.marks
    idle = _mouth_contrast(watched, _frames(watched, 0.0, m["speak"]))
    speaking = _mouth_contrast(watched, _frames(watched, m["speak"], m["spoken"]))
    # measured: idle 21-24, speaking median 30, 90th percentile 33
    assert np.percentile(speaking, 90) > idle.max() + 4.0
    assert _loudness(watched, m["speak"], m["spoken"]) > 0.1
    # decoded audio as an utterance too, with its own start and end
    aid = watched.ids["audio"]
    kinds = [e["type"] for e in watched.recording.events if e["utterance_id"] == aid]
    assert kinds == ["utterance_started", "utterance_ended"]
    assert _loudness(watched, m["audio"], m["interrupt"]) > 0.1


def test_interrupt_silences_and_closes_the_mouth(watched: Watched) -> None:
    m = watched.marks
    lid, queued = watched.ids["long"], watched.ids["queued"]
    assert watched.ids["cut"] == lid
    rec = watched.recording
    mine = [e for e in rec.events if e["utterance_id"] == lid]
    assert [e["type"] for e in mine][-2:] == ["interrupted", "utterance_ended"]
    assert mine[-1]["reason"] == "interrupted"
    assert [(e["type"], e["reason"]) for e in rec.events if e["utterance_id"] == queued] == [
        ("utterance_started", None), ("utterance_ended", "cancelled")]
    # speaking just before, silent and closed from 300 ms after (200 ms + the network
    # and the receiver's jitter buffer)
    assert _loudness(watched, m["interrupt"] - 0.5, m["interrupt"]) > 0.1
    assert _loudness(watched, m["interrupt"] + 0.3, m["end"]) < 0.01
    idle = _mouth_contrast(watched, _frames(watched, 0.0, m["speak"]))
    before = _mouth_contrast(watched, _frames(watched, m["interrupt"] - 1.0, m["interrupt"]))
    after = _mouth_contrast(watched, _frames(watched, m["interrupt"] + 0.3, m["end"]))
    assert before.max() > idle.max() + 4.0  # it was talking
    assert len(after) >= 5 and after.max() < idle.max() + 1.5


def test_close_ends_the_process_and_leaves_no_files(watched: Watched) -> None:
    session = watched.session
    assert not session.alive
    assert session.pid is not None
    with pytest.raises(ProcessLookupError):
        os.kill(session.pid, 0)
    assert [e.type for _, e in watched.events][-1] == "closed"
    assert watched.files_after <= watched.files_before
    assert session.media_seconds > 3.0
    session.close()  # idempotent
    with pytest.raises(Exception, match="not running"):
        session.speak_text("Hello.")
