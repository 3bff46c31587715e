"""Errors that facecast raises for bad input and failed work.

Every error carries a stable machine-readable ``code`` (snake_case) and a human
message that names the problem, so the CLI, the service and the vendor-compatible
APIs can each render it in their own shape without parsing text.

The classes, one per kind of refusal a caller handles differently::

    FacecastError                 failed work (engine, storage: not the caller's fault)
    ├── InputError                the input cannot be used
    │   └── FaceCheckError        the portrait failed the face check
    ├── NotFoundError             no such thing (or another account's)
    ├── ConflictError             clashes with the current state
    ├── LimitError                a configured limit (rate, queue, credits; retry_after)
    ├── ForbiddenError            the caller may not do this (admin only)
    ├── service.accounts.AuthError       no or unknown credentials
    └── service.storage.StorageFull      the service's disk is full

Every code in use is listed once in :data:`CODES` (its class and what it means);
``docs/API.md`` carries the same list, checked by ``tests/test_error_codes.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class FacecastError(Exception):
    """Base class: ``code`` is stable and machine-readable, ``message`` is for people."""

    code: str = "error"

    def __init__(self, message: str, *, code: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details: dict[str, Any] = details

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            out["details"] = self.details
        return out


class InputError(FacecastError):
    """The caller's input cannot be used (unreadable, wrong format, out of range)."""

    code = "invalid_input"


class FaceCheckError(InputError):
    """The portrait failed the face check; ``code`` is the reason (e.g. ``no_face``)."""

    code = "face_check_failed"


class NotFoundError(FacecastError):
    """The thing named does not exist (or belongs to another account)."""

    code = "not_found"


class ConflictError(FacecastError):
    """The request clashes with the current state (e.g. canceling a finished job)."""

    code = "conflict"


class LimitError(FacecastError):
    """A configured limit refuses the request (queue cap, rate, credits)."""

    code = "limit_exceeded"

    def __init__(self, message: str, *, code: str | None = None,
                 retry_after: float | None = None, **details: Any) -> None:
        super().__init__(message, code=code, **details)
        self.retry_after = retry_after


class ForbiddenError(FacecastError):
    """The caller is known but may not do this (e.g. an admin-only operation)."""

    code = "forbidden"


@dataclass(frozen=True)
class ErrorCode:
    """One stable error code: the class that usually carries it (``HTTP``: answered by
    the API layer only; ``job``: only ever a failed job's error; ``client``: raised by the
    Python client, ``facecast.client``, on its side) and what it means."""

    code: str
    kind: str
    description: str


def _codes(kind: str, table: str) -> tuple[ErrorCode, ...]:
    # "code: description" per line, kept as text so the list reads like the docs
    rows = (line.strip().split(": ", 1) for line in table.strip().splitlines())
    return tuple(ErrorCode(code, kind, text) for code, text in rows)


CODES_LIST: tuple[ErrorCode, ...] = (
    *_codes("FacecastError", """
        error: failed work without a more specific code
        engine_unavailable: the speech engine could not be loaded
        tts_failed: speech synthesis failed
        missing_dependency: an optional package the operation needs is not installed
        input_expired: a job's stored input was removed before the job ran
        live_failed: a live session's process failed, or did not start or answer in time
    """),
    *_codes("InputError", """
        invalid_input: the input cannot be used
        invalid_characters: a control character in a text field
        bad_request: the request's parts do not fit together
        bad_base64: base64 input that does not decode
        bad_url: not an http(s) URL
        url_not_allowed: a URL resolving to a private, loopback or reserved address
        download_failed: a URL input could not be downloaded
        download_timeout: a URL input took too long to download
        unsupported_media: the input is not a kind of media the operation takes
        unsupported_audio: audio in a format the operation does not take
        file_too_large: a file over its size limit
        unreadable_audio: audio that does not decode
        no_audio_stream: a file without audio
        empty_audio: audio without samples
        audio_too_short: audio under the minimum duration
        audio_too_long: audio over the maximum duration
        bad_audio_duration: audio outside a vendor's duration range
        unreadable_image: an image that does not decode
        no_image: an avatar folder without an image
        image_too_large: an image over 100 megapixels (refused on its header)
        unreadable_video: a video that does not decode
        no_video_stream: a file without video
        unsupported_container: a video container the operation does not take
        unsupported_codec: a video codec a vendor's document does not name
        video_too_short: a video under the minimum duration
        video_too_long: a video over the maximum duration
        video_too_large: a video over its size or frame-size limit
        face_lost: a recording that shows the face too little
        face_not_found: no face to follow in a video
        bad_size: an unknown output size
        bad_aspect: an unknown aspect ratio
        bad_fps: a frame rate out of range
        bad_offer: a WebRTC (WHEP) SDP offer that cannot be answered
        bad_quality: an unknown quality
        bad_head_motion: head motion out of range
        bad_format: an unknown audio format
        bad_rate: a speaking rate out of range
        bad_pitch: a pitch out of range
        bad_volume: a volume out of range
        empty_text: no text to speak
        text_too_long: text over the length limit
        prompt_too_long: an expression prompt over the length limit
        unknown_voice: no such voice
        unknown_expression: no such expression template
        transcript_alignment_failed: the transcript could not be aligned to the audio
        captions_need_text: captions of speech that is not recognised as English need its text
        bad_captions: unusable caption options (file type, style)
        sample_too_short: a voice sample under the minimum duration
        sample_too_long: a voice sample over the maximum duration
        sample_silent: a voice sample without sound
        sample_not_speech: a voice sample without speech
        bad_profile: not a voice profile
        bad_page: a page number or size out of range
        bad_filter: an unknown list filter
        bad_name: a name that is empty or too long
        bad_gender: an unknown gender
        bad_age: an unknown age group
        bad_style: an unknown style
        bad_region: an unknown region
        bad_tags: unusable tags
        bad_metadata: an avatar's metadata is not a JSON object
        bad_color: an unreadable colour
        bad_composition: composition options that do not fit together
        bad_background: an unusable background
        bad_layer: an unusable image or colour layer
        invalid_area: an unreadable subtitle or watermark area
        area_outside_frame: an area outside the video's frame
        avatar_invalid: a folder that is not a usable video avatar
        avatar_exists: a video avatar folder that already exists
        video_avatars_unavailable: video avatars are not available on this server
        result_not_ready: a job result used as input before the job succeeded
        result_expired: a job result removed by retention
        bad_rate_limit: an unreadable rate-limit setting
        unsupported_media_type: a WHEP offer that is not application/sdp (HTTP 415)
    """),
    *_codes("FaceCheckError", """
        face_check_failed: the portrait failed the face check
        image_too_small: a portrait under the minimum size
        bad_aspect_ratio: a portrait too narrow or too wide
        no_face: no face found
        multiple_faces: more than one face
        face_cut_off: the face touches the picture's edge
        face_too_small: the face is too small in the picture
        not_frontal: the face is turned too far from the camera
    """),
    *_codes("NotFoundError", """
        not_found: no such thing (or no such endpoint)
        account_not_found: no such account
        asset_not_found: no such asset
        avatar_not_found: no such avatar
        job_not_found: no such job
        file_not_found: the job has no such file
        key_not_found: no such API key
        voice_not_found: no such voice
        webhook_not_found: no such webhook endpoint
        delivery_not_found: no such webhook delivery
        credential_not_found: no such vendor credential
        vendor_credential_not_found: no vendor credential with that id
        stream_not_found: no such live stream (or one ended over 10 minutes ago)
        viewer_not_found: no such WHEP viewer of the live stream
    """),
    *_codes("ConflictError", """
        live_session_closed: the live session has closed
        conflict: clashes with the current state
        job_not_cancelable: the job has finished
        job_active: the job is still queued or running
        avatar_builtin: a built-in avatar cannot be changed
        avatar_not_ready: a video avatar still processing or failed
        avatar_ambiguous: a name that fits several avatars
        bad_amount: a credit grant of 0
        delivery_pending: a delivery that is still being sent
        endpoint_deleted: the delivery's webhook endpoint was deleted
        stream_ended: the live stream has ended
        stream_not_ready: the live stream is still starting
        stream_exists: a live worker was asked to start a stream it runs already
    """),
    *_codes("LimitError", """
        limit_exceeded: a configured limit refuses the request
        rate_limited: the key's rate limit or the address's failed-authentication limit
        too_many_queued_jobs: the account's queue cap
        too_many_downloads: too many URL inputs downloading at once
        insufficient_credits: not enough credits
        too_many_streams: the account's cap on open live streams
        too_many_viewers: the live stream's cap on WHEP viewers
        too_many_utterances: the live stream's cap on utterances queued at once
        capacity_reached: the server (or every live worker) runs all the live streams it can
        live_unavailable: live streams kept in the API process need a single API process
    """),
    *_codes("ForbiddenError", """
        forbidden: the caller may not do this (admin only)
    """),
    *_codes("AuthError", """
        unauthorized: no API key
        invalid_api_key: an unknown or revoked API key
        invalid_token: a live stream's URL token that does not verify
        token_expired: a live stream's URL token past its expiry
    """),
    *_codes("StorageFull", """
        storage_full: the service's disk is full; nothing was kept
    """),
    *_codes("HTTP", """
        internal_error: an unexpected error; it is logged
        http_error: any other HTTP error of the framework
        invalid_request: wrong types, unknown fields, out-of-range values, or an unreadable form
        malformed_json: the body is not JSON (not UTF-8, nested too deeply, huge numbers)
        method_not_allowed: the method is not allowed on this endpoint
        payload_too_large: a request body over the size limit
        bad_signature: a signed file link that does not verify
        link_expired: a signed file link past its expiry
        file_expired: a signed link to a result retention removed
    """),
    *_codes("job", """
        worker_lost: a job's worker stopped responding too many times
    """),
    *_codes("client", """
        connection_error: the Python client could not reach the server
        timeout: the Python client had no answer in time
        wait_timeout: the job had not finished when the client's wait() gave up
        job_canceled: the client's wait() saw the job canceled
        invalid_webhook: a webhook whose signature, timestamp or headers do not verify
    """),
)
CODES: dict[str, ErrorCode] = {c.code: c for c in CODES_LIST}


def codes_markdown() -> str:
    """The code list as the Markdown table in ``docs/API.md``."""
    rows = [f"| `{c.code}` | {c.kind} | {c.description} |" for c in CODES_LIST]
    return "\n".join(["| code | class | meaning |", "|---|---|---|", *rows])
