"""A second WebRTC stack watching a live session: GStreamer's webrtcbin (libnice, its own
DTLS-SRTP), not aiortc and not a browser. Run by the system's Python with PyGObject
(Debian: python3-gi, gir1.2-gst-plugins-bad-1.0, gstreamer1.0-plugins-{base,good,bad},
gstreamer1.0-nice), as a child of whoever answers its offer:

    /usr/bin/python3 bench/gst_viewer.py SECONDS

It writes its SDP offer (ICE gathered, receive-only video and audio) as one JSON line on
stdout, reads the SDP answer as one JSON line on stdin (what a WHEP player POSTs and gets
back), then decodes what arrives for SECONDS and writes one JSON line: the decoded video
frames and audio buffers counted, the video's size and codec, and any error.
"""

from __future__ import annotations

import json
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstWebRTC", "1.0")
gi.require_version("GstSdp", "1.0")
from gi.repository import GLib, Gst, GstSdp, GstWebRTC  # noqa: E402

# What the offer asks for: facecast answers VP8 (H.264 when only that is offered), Opus.
RECV_CAPS = (
    "application/x-rtp,media=video,encoding-name=VP8,payload=96,clock-rate=90000",
    "application/x-rtp,media=audio,encoding-name=OPUS,payload=111,clock-rate=48000",
)


def main() -> int:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 4.0
    Gst.init(None)
    loop = GLib.MainLoop()
    pipe = Gst.Pipeline.new("viewer")
    webrtc = Gst.ElementFactory.make("webrtcbin", "webrtc")
    webrtc.set_property("bundle-policy", GstWebRTC.WebRTCBundlePolicy.MAX_BUNDLE)
    pipe.add(webrtc)
    result: dict[str, object] = {"video_frames": 0, "audio_buffers": 0, "video_caps": None,
                                 "codec": None, "error": None}

    def counted(kind: str):
        def handoff(_sink, _buffer, _pad) -> None:
            key = "video_frames" if kind == "video" else "audio_buffers"
            result[key] = int(result[key]) + 1  # type: ignore[call-overload]
        return handoff

    def on_decoded(_decodebin, pad) -> None:
        caps = pad.get_current_caps().to_string()
        kind = "video" if caps.startswith("video/") else "audio"
        if kind == "video":
            result["video_caps"] = caps.split(",", 1)[0] + "," + ",".join(
                p for p in caps.split(",") if p.strip().startswith(("width", "height")))
        sink = Gst.ElementFactory.make("fakesink")
        sink.set_property("signal-handoffs", True)
        sink.set_property("sync", False)
        sink.connect("handoff", counted(kind))
        pipe.add(sink)
        sink.sync_state_with_parent()
        pad.link(sink.get_static_pad("sink"))

    def on_incoming(_webrtc, pad) -> None:
        if pad.get_direction() != Gst.PadDirection.SRC:
            return
        name = pad.get_current_caps().get_structure(0).get_string("encoding-name")
        if name in ("VP8", "H264"):
            result["codec"] = name
        decodebin = Gst.ElementFactory.make("decodebin")
        decodebin.connect("pad-added", on_decoded)
        pipe.add(decodebin)
        decodebin.sync_state_with_parent()
        pad.link(decodebin.get_static_pad("sink"))

    def send_offer() -> None:
        offer = webrtc.get_property("local-description").sdp.as_text()
        sys.stdout.write(json.dumps({"offer": offer}) + "\n")
        sys.stdout.flush()
        answer = json.loads(sys.stdin.readline())["answer"]
        _, sdp = GstSdp.SDPMessage.new_from_text(answer)
        desc = GstWebRTC.WebRTCSessionDescription.new(GstWebRTC.WebRTCSDPType.ANSWER, sdp)
        webrtc.emit("set-remote-description", desc, Gst.Promise.new())
        GLib.timeout_add(int(seconds * 1000), loop.quit)

    def on_gathering(*_args) -> None:
        # no trickle: the offer goes out with every candidate in it, as WHEP's POST does
        if webrtc.get_property("ice-gathering-state") == GstWebRTC.WebRTCICEGatheringState.COMPLETE:
            GLib.idle_add(send_offer_once)

    sent = []

    def send_offer_once() -> bool:
        if not sent:
            sent.append(True)
            send_offer()
        return False

    def on_offer(promise: Gst.Promise) -> None:
        reply = promise.get_reply()
        offer = reply.get_value("offer") if reply.has_field("offer") else None
        if offer is None:
            result["error"] = f"no offer: {reply.to_string()}"
            loop.quit()
            return
        webrtc.emit("set-local-description", offer, Gst.Promise.new())

    def on_negotiation(_webrtc) -> None:
        webrtc.emit("create-offer", None, Gst.Promise.new_with_change_func(on_offer))

    def on_message(_bus, message) -> None:
        if message.type == Gst.MessageType.ERROR:
            err, debug = message.parse_error()
            result["error"] = f"{err} ({message.src.get_name()}: {debug})"
            loop.quit()

    for caps in RECV_CAPS:
        webrtc.emit("add-transceiver", GstWebRTC.WebRTCRTPTransceiverDirection.RECVONLY,
                    Gst.Caps.from_string(caps))
    webrtc.connect("on-negotiation-needed", on_negotiation)
    webrtc.connect("notify::ice-gathering-state", on_gathering)
    webrtc.connect("pad-added", on_incoming)
    bus = pipe.get_bus()
    bus.add_signal_watch()
    bus.connect("message", on_message)
    pipe.set_state(Gst.State.PLAYING)
    GLib.timeout_add(int((seconds + 30) * 1000), loop.quit)  # never hang
    loop.run()
    pipe.set_state(Gst.State.NULL)
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
