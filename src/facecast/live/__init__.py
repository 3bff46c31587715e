"""Live avatars (issue #16): one avatar's video and voice streamed over WebRTC, on a CPU.

A :class:`LiveSession` runs in its own process: it keeps the portrait alive
(breathing, blinks, small head motion) and speaks what it is sent, text sentence
by sentence as it is synthesised or decoded audio block by block, to any number of
WHEP viewers (VP8 or H.264 video, Opus audio), with events (utterance started,
words, ended) to the caller and on a data channel. Engine layer: no HTTP here.

Modules: :mod:`.spec` (what is asked, what is reported), :mod:`.session` (the
parent's handle), :mod:`.process` (the child's main), :mod:`.clock` (the one
media clock), :mod:`.schedule` (speech on that clock), :mod:`.speaker` (speech
made piece by piece), :mod:`.idle` (endless blinks and head motion),
:mod:`.stage` (the renderer thread) and :mod:`.tracks` (aiortc tracks).
"""

from facecast.live.session import LiveSession
from facecast.live.spec import EVENT_TYPES, LiveEvent, LiveSpec, check_spec

__all__ = ["EVENT_TYPES", "LiveEvent", "LiveSession", "LiveSpec", "check_spec"]
