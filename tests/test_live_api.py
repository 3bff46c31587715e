"""Live avatars over HTTP (issue #16): the /api/v1/streams routes against the real app on
loopback, with real sessions (each its own process) and a real aiortc WHEP viewer.

One server for the module, in this process (``live_support.live_server``), so a test can
shorten a setting or read a session; few sessions, small pictures where the picture does
not matter. Order matters where a test needs the machine to itself (the reaper's tests
run when no other session is open)."""

from __future__ import annotations

import base64
import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psutil
import pytest

from live_support import Events, LiveServer, Viewer, live_server, wait_for, wav_base64
from service_support import file_server

API = "/api/v1"
SMALL = {"size": "256x256"}  # a session whose picture is not looked at: less CPU
AKOOL = "/api/open/v3"


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("live"), live_max_sessions=3) as made:
        yield made


@pytest.fixture(scope="module")
def avatar(srv: LiveServer) -> str:
    r = httpx.get(f"{srv.url}{API}/avatars", headers=srv.headers())
    return str(r.json()["items"][0]["id"])


def create(srv: LiveServer, key: str | None = None, **body: Any) -> httpx.Response:
    return httpx.post(f"{srv.url}{API}/streams", json=body, headers=srv.headers(key),
                      timeout=120)


def get(srv: LiveServer, stream_id: str, key: str | None = None) -> dict[str, Any]:
    r = httpx.get(f"{srv.url}{API}/streams/{stream_id}", headers=srv.headers(key))
    assert r.status_code == 200, r.text
    return dict(r.json())


def pid(srv: LiveServer, stream_id: str) -> int:
    session = srv.service.live._streams[stream_id].session
    assert session is not None and session.pid is not None
    return session.pid


def gone(process_id: int) -> bool:
    try:
        return psutil.Process(process_id).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def error(r: httpx.Response) -> tuple[int, str]:
    return r.status_code, str(r.json()["error"]["code"])


def png_base64(image: np.ndarray) -> str:
    import cv2

    ok, data = cv2.imencode(".png", image)
    assert ok
    return base64.b64encode(data.tobytes()).decode()


@pytest.fixture(scope="module")
def live(srv: LiveServer, avatar: str) -> dict[str, Any]:
    """The admin's stream of the avatar at the default size (the round trip's)."""
    started = time.monotonic()
    r = create(srv, avatar_id=avatar)
    assert r.status_code == 201, r.text
    body = dict(r.json())
    body["create_s"] = time.monotonic() - started
    return body


def test_round_trip(srv: LiveServer, live: dict[str, Any], tmp_path: Path) -> None:
    """create -> WHEP answer -> frames -> speak (text, audio) -> events -> interrupt ->
    viewer leaves -> delete -> the session's process is gone, no files left."""
    assert live["status"] == "live" and live["id"].startswith("str_")
    assert (live["width"], live["height"]) == (512, 512)
    assert live["minutes_charged"] == 1 and live["credits_charged"] == live["price_per_minute"]
    print(f"\ncreate took {live['create_s']:.2f} s")
    sid, headers = live["id"], srv.headers()
    process = pid(srv, sid)
    events = Events(f"{srv.url}{API}/streams/{sid}/events", headers)
    viewer = Viewer()
    try:
        assert events.status == 200 and events.content_type.startswith("text/event-stream")
        # WHEP with the API key as Bearer token, as WHEP players send it
        r = viewer.connect(live["whep_url"].split("?")[0], headers)
        assert r.status_code == 201, r.text
        assert r.headers["content-type"].startswith("application/sdp")
        assert r.text.startswith("v=0") and "a=candidate" in r.text  # no trickle: gathered
        assert viewer.resource is not None and viewer.resource.startswith(
            f"{API}/streams/{sid}/whep/")
        wait_for(lambda: viewer.video_frames >= 10 and viewer.audio_frames >= 10, 30,
                 "video and audio frames")
        idle = viewer.last_image
        assert idle is not None and idle.shape == (512, 512, 3)

        r = httpx.post(f"{srv.url}{API}/streams/{sid}/speak", headers=headers,
                       json={"text": "Hello! I am speaking to you live, right now."})
        assert r.status_code == 202, r.text
        said = r.json()["id"]
        events.wait("utterance_started", utterance_id=said)
        word = events.wait("word", utterance_id=said)
        assert word["word"] and isinstance(word["t"], float)
        shown = viewer.video_frames
        wait_for(lambda: viewer.video_frames >= shown + 10, 30, "frames while speaking")
        events.wait("utterance_ended", utterance_id=said)
        assert float(np.abs(viewer.last_image.astype(int) - idle.astype(int)).mean()) > 0.1

        # audio (base64 WAV): decoded here, spoken there, no file kept
        r = httpx.post(f"{srv.url}{API}/streams/{sid}/speak", headers=headers,
                       json={"audio": {"base64": wav_base64(tmp_path)}})
        assert r.status_code == 202, r.text
        events.wait("utterance_ended", utterance_id=r.json()["id"])

        # interrupt cuts a long utterance
        long = " ".join(["This sentence goes on and on, so that it can be cut."] * 6)
        r = httpx.post(f"{srv.url}{API}/streams/{sid}/speak", headers=headers,
                       json={"text": long})
        cut = r.json()["id"]
        events.wait("utterance_started", utterance_id=cut)
        r = httpx.post(f"{srv.url}{API}/streams/{sid}/interrupt", headers=headers)
        assert r.status_code == 200 and r.json()["interrupted"] == cut, r.text
        ended = events.wait("utterance_ended", utterance_id=cut)
        assert ended["reason"] != "done" or "interrupted" in events.types()

        seen = get(srv, sid)
        assert seen["viewers"] == 1 and seen["media_seconds"] > 0
        metrics = httpx.get(f"{srv.url}/metrics").text
        assert 'facecast_live_sessions{of="open"} 1.0' in metrics
        assert 'facecast_live_sessions{of="capacity"} 3.0' in metrics
        # the viewer leaves (WHEP DELETE): its media stops at once; the stream goes on
        r = httpx.delete(f"{srv.url}{viewer.resource}", headers=headers)
        assert r.status_code == 200, r.text
        assert get(srv, sid)["viewers"] == 0
        wait_for(lambda: viewer.hung_up, 15, "the viewer's connection to be ended")
        assert httpx.delete(f"{srv.url}{viewer.resource}", headers=headers).status_code == 404

        r = httpx.delete(f"{srv.url}{API}/streams/{sid}", headers=headers)
        assert r.status_code == 200 and r.json()["status"] == "ended", r.text
        assert r.json()["ended_reason"] == "deleted"
        closed = events.wait("closed")
        assert closed["reason"] == "deleted"
        assert events.ended.wait(10), "the event stream did not end with the stream"
        wait_for(lambda: gone(process), 15, "the session's process to end")
        # ids are in order, and a reconnect with Last-Event-ID gets only what came after
        assert events.ids == sorted(events.ids)
        again = Events(f"{srv.url}{API}/streams/{sid}/events",
                       {**headers, "Last-Event-ID": str(events.ids[-2])})
        assert again.ended.wait(10) and again.types() == ["closed"]
        again.close()
        # ... and after the end, nothing more: 204 tells EventSource to stop reconnecting
        r = httpx.get(f"{srv.url}{API}/streams/{sid}/events",
                      headers={**headers, "Last-Event-ID": str(events.ids[-1])})
        assert r.status_code == 204, r.text
        # a session keeps no files: no scratch folder of a portrait or an audio input
        scratch = srv.service.settings.scratch_root
        assert not [p for p in scratch.iterdir() if not p.name.startswith(".")], \
            list(scratch.iterdir())
        r = httpx.post(f"{srv.url}{API}/streams/{sid}/speak", headers=headers,
                       json={"text": "Too late."})
        assert error(r) == (409, "stream_ended")
    finally:
        viewer.close()
        events.close()


def test_bad_input(srv: LiveServer, avatar: str) -> None:
    cases: list[tuple[dict[str, Any], tuple[int, str]]] = [
        ({}, (400, "bad_request")),  # no avatar, no photo
        ({"avatar_id": avatar, "photo": {"base64": "aGVsbG8="}}, (400, "bad_request")),
        ({"avatar_id": "av_999999"}, (404, "avatar_not_found")),
        ({"avatar_id": avatar, "size": "5000x5000"}, (400, "bad_size")),
        ({"avatar_id": avatar, "size": "1280x1280"}, (400, "bad_size")),  # over 720p's pixels
        ({"avatar_id": avatar, "size": "huge"}, (400, "bad_size")),
        ({"avatar_id": avatar, "size": "720p", "aspect": "2:1"}, (422, "invalid_request")),
        ({"avatar_id": avatar, "expression": "nonsense"}, (400, "unknown_expression")),
        ({"photo": {"base64": base64.b64encode(b"not a picture").decode()}},
         (400, "unsupported_media")),
        ({"avatar_id": avatar, "voice": "bad\u0000voice"}, (400, "invalid_characters")),
    ]
    for body, expected in cases:
        assert error(create(srv, **body)) == expected, body
    assert srv.service.live.open_count() == 0  # none of them opened (or charged) anything


@pytest.fixture(scope="module")
def small(srv: LiveServer, avatar: str) -> Iterator[dict[str, Any]]:
    """A small stream of its own account, for the refusals of a live stream's routes."""
    key = srv.account(credits=100)
    r = create(srv, key, avatar_id=avatar, **SMALL)
    assert r.status_code == 201, r.text
    yield {**r.json(), "key": key}
    with contextlib.suppress(httpx.HTTPError):  # the last test stops the server
        httpx.delete(f"{srv.url}{API}/streams/{r.json()['id']}", headers=srv.headers(key))


def test_bad_speech_and_offers(srv: LiveServer, small: dict[str, Any],
                               monkeypatch: pytest.MonkeyPatch) -> None:
    sid, headers = small["id"], srv.headers(small["key"])
    url = f"{srv.url}{API}/streams/{sid}"
    # the cap on utterances queued at once (lowered to 1 here), freed by an interrupt
    monkeypatch.setattr("facecast.service.live.LIVE_MAX_QUEUED_UTTERANCES", 1)
    speech = {"text": "One long sentence, to keep the queue busy for a little while."}
    assert httpx.post(f"{url}/speak", json=speech, headers=headers).status_code == 202
    assert error(httpx.post(f"{url}/speak", json=speech, headers=headers)) == \
        (429, "too_many_utterances")
    assert httpx.post(f"{url}/interrupt", headers=headers).status_code == 200
    assert httpx.post(f"{url}/speak", json=speech, headers=headers).status_code == 202
    assert httpx.post(f"{url}/interrupt", headers=headers).status_code == 200
    for body, expected in [({"text": "bell\u0007"}, (400, "invalid_characters")),
                           ({"text": "   "}, (400, "empty_text")),
                           ({}, (422, "invalid_request")),
                           ({"text": "hi", "rate": 9}, (422, "invalid_request")),
                           ({"audio": {"base64": "aGVsbG8="}}, (400, "unsupported_media"))]:
        assert error(httpx.post(f"{url}/speak", json=body, headers=headers)) == expected, body
    sdp = {"Content-Type": "application/sdp", **headers}
    assert error(httpx.post(f"{url}/whep", content="hello", headers=sdp)) == (400, "bad_offer")
    assert error(httpx.post(f"{url}/whep", content="v=0\r\ns=-\r\n", headers=sdp)) == \
        (400, "bad_offer")
    viewer = Viewer()
    try:
        r = httpx.post(f"{url}/whep", content=viewer.offer(),
                       headers={"Content-Type": "application/json", **headers})
    finally:
        viewer.close()
    assert error(r) == (415, "unsupported_media_type")
    assert error(httpx.get(f"{srv.url}{API}/streams/str_0000", headers=headers)) == \
        (404, "stream_not_found")
    assert httpx.request("PATCH", f"{url}/whep/x", headers=headers).status_code == 405


def test_python_client(srv: LiveServer, small: dict[str, Any]) -> None:
    """``client.streams`` drives a session as the HTTP calls do."""
    from facecast.client import Client

    with Client(srv.url, api_key=small["key"]) as client:
        stream = client.streams.get(small["id"])
        assert stream.status == "live" and stream.whep_url.startswith(srv.url)
        assert [s.id for s in client.streams.list().items] == [small["id"]]
        said = client.streams.speak(stream, "A word from the Python client.")
        assert said.stream_id == stream.id and said.id
        client.streams.interrupt(stream)


def test_whep_and_events_authorisation(srv: LiveServer, small: dict[str, Any]) -> None:
    sid, token = small["id"], small["whep_url"].split("token=")[1]
    url = f"{srv.url}{API}/streams/{sid}"
    offer = {"Content-Type": "application/sdp"}
    # no credentials; a forged or another stream's token; another account's key
    assert error(httpx.post(f"{url}/whep", content="v=0", headers=offer)) == \
        (401, "unauthorized")
    forged = f"{token.split('.')[0]}.{'0' * 32}"
    assert error(httpx.post(f"{url}/whep?token={forged}", content="v=0", headers=offer)) == \
        (401, "invalid_token")
    expired = srv.service.live._mac(sid, 1_000_000)
    assert error(httpx.post(f"{url}/whep?token=1000000.{expired}", content="v=0",
                            headers=offer)) == (401, "token_expired")
    assert error(httpx.get(f"{url}/events", headers=srv.headers())) == \
        (404, "stream_not_found")
    assert error(httpx.get(f"{srv.url}{API}/streams/{sid}", headers=srv.headers())) == \
        (404, "stream_not_found")
    # the signed whep_url as it is: what a browser player without the key uses
    viewer = Viewer()
    try:
        r = viewer.connect(small["whep_url"])
        assert r.status_code == 201, r.text
        wait_for(lambda: viewer.video_frames >= 3, 30, "frames through the signed URL")
        resource = f"{srv.url}{r.headers['Location']}"
        assert httpx.delete(resource).status_code == 401
        assert httpx.delete(f"{resource}?token={token}").status_code == 200
    finally:
        viewer.close()


def test_caps_and_credits(srv: LiveServer, avatar: str, small: dict[str, Any]) -> None:
    """Per-account and per-machine caps; the first minute charged at create, each started
    minute after, refusal without credits, the end when credits run out."""
    settings = srv.service.settings
    price = settings.live_price_per_minute
    broke = srv.account(credits=price - 1)
    assert error(create(srv, broke, avatar_id=avatar, **SMALL)) == (402, "insufficient_credits")
    assert srv.balance(broke) == price - 1
    # a portrait the session's face check refuses: its first minute comes back
    exact = srv.account(credits=price)
    r = create(srv, exact, photo={"base64": png_base64(np.full((256, 256, 3), 128, np.uint8))},
               **SMALL)
    assert r.status_code == 422 and r.json()["error"]["code"] == "no_face", r.text
    assert srv.balance(exact) == price
    r = httpx.get(f"{srv.url}{API}/account/ledger", headers=srv.headers(exact))
    assert sorted(e["kind"] for e in r.json()["items"]) == ["charge", "grant", "refund"]

    settings.live_max_per_account = 1  # small's account has its one stream open
    try:
        assert error(create(srv, small["key"], avatar_id=avatar, **SMALL)) == \
            (429, "too_many_streams")
    finally:
        settings.live_max_per_account = 2
    payer = srv.account(credits=2 * price + 1)
    r = create(srv, payer, avatar_id=avatar, **SMALL)
    assert r.status_code == 201, r.text
    sid = r.json()["id"]
    assert srv.balance(payer) == price + 1
    settings.live_max_sessions = 2  # small's stream and this one
    try:
        r = create(srv, srv.account(), avatar_id=avatar, **SMALL)
        assert error(r) == (503, "capacity_reached") and "Retry-After" in r.headers
    finally:
        settings.live_max_sessions = 3
    # the reaper's round at a time one and two minutes on (charges are by started minute)
    live = srv.service.live
    stream = live._streams[sid]
    assert stream.started is not None
    live.tick(now=stream.started + 61)
    assert get(srv, sid, payer)["minutes_charged"] == 2 and srv.balance(payer) == 1
    process = pid(srv, sid)
    live.tick(now=stream.started + 121)
    seen = get(srv, sid, payer)
    assert seen["status"] == "ended" and seen["ended_reason"] == "insufficient_credits"
    assert seen["credits_charged"] == 2 * price and srv.balance(payer) == 1
    wait_for(lambda: gone(process), 15, "the unpaid session's process to end")
    r = httpx.get(f"{srv.url}{API}/account/ledger", headers=srv.headers(payer))
    charges = [e for e in r.json()["items"] if e["kind"] == "charge"]
    assert [e["amount"] for e in charges] == [-price, -price]


def test_idle_and_max_duration_end_sessions(srv: LiveServer, small: dict[str, Any],
                                            astronaut_path: Path) -> None:
    """The reaper thread ends a session nobody uses (small's, quiet since its tests), and
    one past its maximum duration (this one of a photo given by URL, downloaded through
    the same checks as any input, and not kept)."""
    settings = srv.service.settings
    assert srv.service.live.open_count() == 1  # small's: the others have ended
    sid, key = small["id"], small["key"]
    for setting, value, reason in (("live_idle_timeout_s", 1.0, "idle"),
                                   ("live_max_duration_s", 1.5, "max_duration")):
        saved = getattr(settings, setting)
        setattr(settings, setting, value)
        try:
            if reason == "max_duration":  # a stream's maximum is fixed when it opens
                assets = httpx.get(f"{srv.url}{API}/assets", headers=srv.headers()).json()
                with file_server(astronaut_path.parent) as files:
                    r = create(srv, photo={"url": f"{files.url}/{astronaut_path.name}"},
                               **SMALL)
                assert r.status_code == 201, r.text
                assert r.json()["avatar_id"] is None
                assert httpx.get(f"{srv.url}{API}/assets", headers=srv.headers()).json() \
                    == assets  # the photo was not kept
                sid, key = r.json()["id"], srv.admin
            process = pid(srv, sid)
            seen = wait_for(lambda sid=sid, key=key: (x := get(srv, sid, key))["status"]
                            == "ended" and x, 20, f"the {reason} session to be reaped")
            assert seen["ended_reason"] == reason
            wait_for(lambda process=process: gone(process), 15, "its process to end")
        finally:
            setattr(settings, setting, saved)


def test_akool_lists_every_avatar_as_streaming(srv: LiveServer) -> None:
    headers = {"x-api-key": srv.admin}
    talking = httpx.get(f"{srv.url}{AKOOL}/avatar/list", params={"type": 1},
                        headers=headers).json()["data"]
    streaming = httpx.get(f"{srv.url}{AKOOL}/avatar/list", params={"type": 2},
                          headers=headers).json()["data"]
    assert streaming and [a["_id"] for a in streaming] == [a["_id"] for a in talking]
    assert {a["type"] for a in streaming} == {2} and {a["type"] for a in talking} == {1}


def test_shutdown_ends_every_session(srv: LiveServer, avatar: str) -> None:
    """Last: the server stops, and every session's process with it."""
    r = create(srv, avatar_id=avatar, **SMALL)
    assert r.status_code == 201, r.text
    process = pid(srv, r.json()["id"])
    srv.stop()
    assert gone(process) or wait_for(lambda: gone(process), 15, "the process to end")
    assert srv.service.live.open_count() == 0


def test_a_stream_takes_viewers_up_to_its_limit() -> None:
    """The viewer cap both the API's streams and a live worker's host apply (429
    ``too_many_viewers`` on the wire): the fourth viewer is let in, the fifth refused."""
    from facecast.errors import LimitError
    from facecast.rules import LIVE_MAX_VIEWERS
    from facecast.service.live import Stream

    stream = Stream(id="str_x", account_id=1, avatar_id=None, width=256, height=256,
                    voice=None, expression=None, max_duration_s=60.0)
    for n in range(LIVE_MAX_VIEWERS):
        stream.check_viewer_room()
        stream.viewers[f"v{n}"] = time.monotonic()
    with pytest.raises(LimitError) as refused:
        stream.check_viewer_room()
    assert refused.value.code == "too_many_viewers"
    assert f"the limit is {LIVE_MAX_VIEWERS}" in refused.value.message
