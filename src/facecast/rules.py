"""Limits and defaults of every request, written once for every door.

A talking photo (or a dub, a TTS job) is asked for by the CLI, by Python
callers, by the native API and by each vendor API; each door imports its limits
and defaults from here instead of re-typing them, so a rule cannot drift between
doors. This module imports nothing, so the CLI reads it at start-up and the
engine parts (``render/canvas.py``, ``motion/prompt.py``) import it without
pulling a higher layer in. The request shapes that check themselves against
these rules are in :mod:`facecast.pipeline.specs`. Vendor-only rules (Kling's
2-300 s of sound) stay in their mappers.
"""

from __future__ import annotations

# Speech of a render (a file, or what a text speaks), for every use case that speaks.
MIN_AUDIO_S = 1.0
MAX_AUDIO_S = 600.0

# Canvas shapes (width, height ratio) a render may be given.
ASPECTS: dict[str, tuple[int, int]] = {
    "16:9": (16, 9),
    "9:16": (9, 16),
    "1:1": (1, 1),
    "4:3": (4, 3),
    "3:4": (3, 4),
}

DEFAULT_SIZE = "source"
DEFAULT_FPS = 25
MIN_FPS, MAX_FPS = 10, 60
DEFAULT_HEAD_MOTION = 1.0
MAX_HEAD_MOTION = 2.0

# Composition: the avatar's scale, the rounded-corner radius (a fraction of the box's
# shorter side), image layers on the canvas.
MIN_SCALE, MAX_SCALE = 0.05, 10.0
MAX_CORNER_RADIUS = 0.5
MAX_LAYERS = 16

# Free text steering expression, head gestures and camera.
MAX_PROMPT_CHARS = 2500

# Speech synthesis: speed factor, pitch in semitones, volume factor; files a TTS job writes.
RATE_RANGE = (0.5, 2.0)
PITCH_RANGE = (-12.0, 12.0)
VOLUME_RANGE = (0.0, 2.0)
DEFAULT_RATE, DEFAULT_PITCH, DEFAULT_VOLUME = 1.0, 0.0, 1.0
TTS_FORMATS = ("mp3", "wav")

# Live avatars (issue #16): a session's picture (even sides, at most LIVE_MAX_PIXELS,
# each side LIVE_MIN_SIDE..LIVE_MAX_SIDE) and frame rate (one that divides 48 kHz audio
# into whole samples per frame, so both media share one clock exactly).
LIVE_DEFAULT_SIZE = (512, 512)
LIVE_MIN_SIDE, LIVE_MAX_SIDE = 128, 1280
LIVE_MAX_PIXELS = 1280 * 720
LIVE_FPS = (10, 12, 15, 16, 20, 24, 25, 30)
LIVE_DEFAULT_FPS = 25

# Captions (SRT / WebVTT, optionally burned in): common subtitle rules. A cue shows at
# most CAPTION_MAX_LINES lines of CAPTION_LINE_CHARS characters for CAPTION_MIN_S to
# CAPTION_MAX_S seconds, with at least CAPTION_GAP_S between cues (two frames at 25 fps,
# so a reader sees the change).
CAPTION_FORMATS = ("srt", "vtt")
CAPTION_LINE_CHARS = 42
CAPTION_MAX_LINES = 2
CAPTION_MIN_S = 1.0
CAPTION_MAX_S = 7.0
CAPTION_GAP_S = 0.08
# Burned-in captions: text height as a fraction of the frame's height, and the margin
# kept clear at the frame's edges (the title-safe area), as a fraction of each side.
CAPTION_POSITIONS = ("bottom", "top")
DEFAULT_CAPTION_SIZE = 0.05
CAPTION_SIZE_RANGE = (0.02, 0.12)
DEFAULT_CAPTION_SAFE_AREA = 0.05
CAPTION_SAFE_AREA_RANGE = (0.0, 0.2)

# Live avatars (issue #16), the service's rules (the picture's own limits, LIVE_MAX_PIXELS
# and the rest, are above). Without a size a session is LIVE_DEFAULT_SIZE, or
# LIVE_DEFAULT_SIZE_WITH_ASPECT (a named height) when only an aspect is given.
LIVE_DEFAULT_SIZE_WITH_ASPECT = "480p"
# CPU cores one streaming session keeps busy: its whole process measured 0.34 cores idle
# and 0.52 speaking without pause at 512x512 with one viewer (bench_stream, quiet 2-core
# machine; two such sessions held 25 fps each). A machine takes cores / this many
# sessions (3 on 2 cores) unless FACECAST_LIVE_MAX_SESSIONS says otherwise.
LIVE_CPU_PER_SESSION = 0.6
LIVE_MAX_PER_ACCOUNT = 2  # sessions one account may have open at once
LIVE_MAX_VIEWERS = 4  # WHEP viewers of one session (each costs its own video encoding)
LIVE_MAX_QUEUED_UTTERANCES = 32  # utterances of one session queued or speaking at once
LIVE_IDLE_TIMEOUT_S = 300.0  # a session nobody spoke to or watched for this long ends
LIVE_MAX_DURATION_S = 3600.0  # and every session ends after this long
LIVE_PRICE_PER_MINUTE = 6  # credits per started minute (a video second costs 1)
