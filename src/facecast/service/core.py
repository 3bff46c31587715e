"""The service facade: every operation the HTTP APIs offer, with no HTTP in it.

The native API and each vendor-compatible API call these methods with plain
values and render what comes back in their own wire shapes. This is where the
rules live: inputs are ingested and checked before a job exists, prices are
estimated, queue caps and credits are enforced (in :mod:`jobs`), results are
handed out as signed expiring URLs, and each account sees only its own things.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, func, select, update

from facecast.characters import check_characters
from facecast.errors import ConflictError, ForbiddenError, InputError, NotFoundError
from facecast.media.video_reader import CLEAN_LIMITS, DUB_LIMITS, VideoLimits
from facecast.pipeline.specs import (
    DubOptions,
    RenderOptions,
    TtsOptions,
    check_speech_choice,
)
from facecast.rules import (
    CAPTION_POSITIONS,
    DEFAULT_CAPTION_SIZE,
    DEFAULT_PITCH,
    DEFAULT_RATE,
    DEFAULT_VOLUME,
    MAX_AUDIO_S,
    MIN_AUDIO_S,
    TTS_FORMATS,
)
from facecast.service import jobs, origin, webhooks
from facecast.service.accounts import (
    KeyResolver,
    Principal,
    create_account,
    create_key,
    grant_credits,
    revoke_key,
)
from facecast.service.assets import AssetService, MediaSource
from facecast.service.avatars import AvatarService, check_meta
from facecast.service.composition import CompositionSpec
from facecast.service.composition import ingest as composition_ingest
from facecast.service.credentials import (
    CredentialResolver,
    create_credential,
    revoke_credential,
)
from facecast.service.db import Database
from facecast.service.expressions import ExpressionPreviews
from facecast.service.live import LiveStreams
from facecast.service.live_placed import PlacedStreams
from facecast.service.models import (
    Account,
    ApiKey,
    Asset,
    Avatar,
    CustomVoice,
    Job,
    LedgerEntry,
    VendorCredential,
    WebhookDelivery,
    WebhookEndpoint,
    utcnow,
)
from facecast.service.ratelimit import RateLimiter
from facecast.service.runners import KINDS, tts_cost, video_cost
from facecast.service.settings import Settings
from facecast.service.storage import Storage, open_storage
from facecast.service.workers import WorkerView, list_workers

# speech runs at about 14 characters a second: enough to price a text job up front
CHARS_PER_SECOND = 14.0
JOB_CACHE_S = 0.25


@dataclass(frozen=True)
class JobOptions:
    """What every create call may carry besides its inputs."""

    external_id: str | None = None
    callback_url: str | None = None
    origin: str = "native"
    extra: dict[str, Any] | None = None


class Service:
    def __init__(self, settings: Settings, enqueue: Callable[[int], None] | None = None) -> None:
        self.settings = settings
        self.db = Database(settings.db_url)
        self.storage: Storage = open_storage(settings.storage, signing_key=settings.signing_key,
                                             base_url=settings.base_url)
        self.assets = AssetService(self.db, self.storage, settings)
        self.avatars = AvatarService(self.db, self.assets, settings)
        self.keys = KeyResolver(self.db)
        self.vendor_keys = CredentialResolver(self.db, settings.signing_key)
        self.limiter = RateLimiter(settings)
        self.expression_previews = ExpressionPreviews(self.storage, settings)
        # live avatar sessions: child processes of this one, or placed on live workers
        self.live: LiveStreams = PlacedStreams(self) if settings.live_placed else LiveStreams(self)
        self._enqueue = enqueue
        # job rows read by status polls, kept briefly: workers write progress at most
        # every 0.5 s, so a poll answered from a 0.25 s old row loses nothing
        self._recent_jobs: dict[int, tuple[float, Job]] = {}

    def enqueue(self, job_id: int) -> None:
        if self._enqueue is None:
            from facecast.service.tasks import enqueue

            self._enqueue = enqueue
        self._enqueue(job_id)

    # ---- start-up --------------------------------------------------------------------------

    def bootstrap(self, previews: bool = True) -> str | None:
        """Schema up to date, the avatar library present (with ``previews``, the missing
        library previews start rendering in the background); on first start, an admin
        account and its key (returned once, to be printed; None on later starts)."""
        self.db.migrate()
        self.avatars.ensure_builtins()
        if previews:
            self.avatars.start_previews()
        with self.db.session() as session:
            if session.scalar(select(func.count()).select_from(Account)):
                return None
            account = create_account(session, "admin", is_admin=True,
                                     credits=self.settings.admin_initial_credits)
            _, key = create_key(session, account.id, "first admin key")
        return key

    # ---- auth and limits -------------------------------------------------------------------

    def authenticate(self, key: str | None) -> Principal:
        principal = self.keys.resolve(key)
        self.limiter.hit(principal)
        return principal

    def check_address(self, address: str | None) -> None:
        """Refuse (``rate_limited``) a client address with too many failed
        authentications of late; call it before checking the credentials it sends."""
        if address:
            self.limiter.check_address(address)

    def auth_failed(self, address: str | None) -> None:
        """Count a failed authentication (any API's 401) against the client's address."""
        if address:
            self.limiter.auth_failed(address)

    def vendor_credential(self, vendor: str, client_id: str) -> tuple[Principal, str]:
        """The caller behind a vendor client id, and its secret to check a signature with.

        Not rate-limited: call :meth:`check_rate` once the signature is verified, so
        forged requests naming someone's client id do not use up their limit.
        """
        return self.vendor_keys.resolve(vendor, client_id)

    def check_rate(self, principal: Principal) -> None:
        self.limiter.hit(principal)

    def vendor_secret(self, account_id: int, vendor: str) -> tuple[str, str] | None:
        """The account's newest live ``(client id, secret)`` for ``vendor`` (e.g. to
        encrypt its callbacks); None when it has none."""
        with self.db.session() as session:
            row = session.scalars(select(VendorCredential).where(
                VendorCredential.account_id == account_id,
                VendorCredential.vendor == vendor, VendorCredential.revoked_at.is_(None))
                .order_by(VendorCredential.id.desc())).first()
            client_id = row.client_id if row else None
        if client_id is None:
            return None
        return client_id, self.vendor_keys.resolve(vendor, client_id)[1]

    def create_vendor_credential(self, principal: Principal, vendor: str, name: str = ""
                                 ) -> tuple[VendorCredential, str]:
        with self.db.session() as session:
            return create_credential(session, principal.account_id, vendor,
                                     self.settings.signing_key, name)

    def vendor_credentials(self, principal: Principal) -> list[VendorCredential]:
        with self.db.session() as session:
            return list(session.scalars(select(VendorCredential).where(
                VendorCredential.account_id == principal.account_id)
                .order_by(VendorCredential.id)).all())

    def revoke_vendor_credential(self, principal: Principal, credential_id: int
                                 ) -> VendorCredential:
        with self.db.session() as session:
            row = revoke_credential(session, principal.account_id, credential_id)
        if row is None:
            raise NotFoundError(f"no vendor credential vc_{credential_id}",
                                code="credential_not_found")
        self.vendor_keys.forget()
        return row

    # ---- jobs ------------------------------------------------------------------------------

    def _create(self, principal: Principal, kind: str, params: dict[str, Any], estimate: int,
                opts: JobOptions) -> tuple[Job, bool]:
        if opts.callback_url:
            from facecast.service.ingest import UrlPolicy, check_url

            check_url(opts.callback_url, UrlPolicy.from_settings(self.settings))
        extra = opts.extra
        if origin.current() is not None:
            # callbacks are sent later, from no request: their links use this request's base
            extra = {**(extra or {}), "public_base": origin.current()}
        new = jobs.NewJob(kind=kind, params=params, cost_estimate=estimate,
                          queue_group=KINDS[kind].queue_group, external_id=opts.external_id,
                          callback_url=opts.callback_url, origin=opts.origin, extra=extra)
        return jobs.create_job(self.db, self.settings, principal, new, self.enqueue)

    def _existing(self, principal: Principal, opts: JobOptions) -> Job | None:
        # an idempotent repeat must not download or decode its inputs again
        if opts.external_id is None:
            return None
        try:
            return jobs.get_by_external_id(self.db, principal.account_id, opts.external_id)
        except NotFoundError:
            return None

    def check_text(self, text: str) -> str:
        text = check_characters((text or "").strip())
        if not text:
            raise InputError("text is empty", code="empty_text")
        if len(text) > self.settings.max_text_chars:
            raise InputError(f"text has {len(text)} characters; the limit is "
                             f"{self.settings.max_text_chars}", code="text_too_long")
        return text

    def check_voice(self, principal: Principal, voice: str | None) -> None:
        from facecast.speech.voices import get_voice

        v = get_voice(voice)
        if v.custom and v.engine == "clone" and not self._owns_voice(principal, v.id):
            raise InputError(f"unknown voice {voice!r}", code="unknown_voice")

    def create_talking_photo(self, principal: Principal, *, photo: MediaSource | None = None,
                             avatar_id: int | None = None, audio: MediaSource | None = None,
                             text: str | None = None, voice: str | None = None,
                             transcript: str | None = None,
                             options: RenderOptions = RenderOptions(),
                             composition: CompositionSpec | None = None,
                             opts: JobOptions = JobOptions()) -> tuple[Job, bool]:
        existing = self._existing(principal, opts)
        if existing is not None:
            return existing, False
        if (photo is None) == (avatar_id is None):
            raise InputError("give either a photo or an avatar_id", code="bad_request")
        check_speech_choice(audio, text)
        if avatar_id is not None and \
                self.avatars.get(principal.account_id, avatar_id).kind == "video":
            # a video avatar moves as its recording did: another renderer, another kind
            return self._create_avatar_video(principal, avatar_id, audio=audio, text=text,
                                             voice=voice, transcript=transcript,
                                             options=options, composition=composition,
                                             opts=opts)
        options.check()
        params: dict[str, Any] = {**options.to_params(), "inputs": {}}
        if options.expression is not None:
            from facecast.motion.expressions import get_template

            # stored by key, whichever way it was named (id, title), for runs and views
            params["expression"] = get_template(options.expression).key
        if composition is not None:
            params["composition"], params["inputs"] = composition_ingest(
                self.assets, principal.account_id, composition)
        seconds = self._speech(principal, params, audio, text, voice, transcript)
        if avatar_id is not None:
            params["inputs"]["photo"] = self.avatars.photo_asset(principal.account_id, avatar_id)
            params["avatar_id"] = avatar_id
        else:
            assert photo is not None
            params["inputs"]["photo"] = self.assets.from_source(
                principal.account_id, photo, {"image"}, "photo").id
        return self._create(principal, "talking_photo", params,
                            video_cost(self.settings, seconds), opts)

    def _create_avatar_video(self, principal: Principal, avatar_id: int, *,
                             audio: MediaSource | None, text: str | None, voice: str | None,
                             transcript: str | None, options: RenderOptions,
                             composition: CompositionSpec | None,
                             opts: JobOptions) -> tuple[Job, bool]:
        """A video avatar speaking: the recording's own frame, size and motion are kept,
        so canvas options do not apply and are refused rather than ignored."""
        if composition is not None or options.aspect is not None or \
                (options.size or "source").strip().lower() != "source":
            raise InputError("a video avatar renders at its recording's own size: "
                             "composition, size and aspect do not apply", code="bad_request")
        package = self.avatars.video_package(principal.account_id, avatar_id)
        options.check_captions()
        # the captions as a talking photo stores them (the runner reads them back alike)
        params: dict[str, Any] = {"avatar_id": avatar_id, "avatar_package": package,
                                  "watermark": options.watermark,
                                  **options.caption_params(), "inputs": {}}
        seconds = self._speech(principal, params, audio, text, voice, transcript)
        return self._create(principal, "avatar_video", params,
                            video_cost(self.settings, seconds), opts)

    def _speech(self, principal: Principal, params: dict[str, Any],
                audio: MediaSource | None, text: str | None, voice: str | None,
                transcript: str | None) -> float:
        """The speech of a render into ``params`` (text and voice checked, or the audio
        stored); its length in seconds, estimated for text, for the price."""
        if text is not None:
            params["text"] = self.check_text(text)
            self.check_voice(principal, voice)
            params["voice"] = voice
            from facecast.speech.synth import spoken_text

            # priced as spoken ("$5" is "five dollars"); the worker prices the real speech
            # again before it renders (runners.RunContext.hold)
            return len(spoken_text(params["text"], voice)) / CHARS_PER_SECOND
        assert audio is not None
        asset = self._audio(principal, audio)
        params["inputs"]["audio"] = asset.id
        if transcript:
            params["transcript"] = check_characters(transcript, "transcript")
        return float(asset.info["duration"])

    def create_video_avatar(self, principal: Principal, video: MediaSource, name: str, *,
                            gender: str | None = None, age: str | None = None,
                            style: str | None = None, region: str | None = None,
                            tags: list[str] | None = None, face_index: int = 0,
                            external_id: str | None = None,
                            opts: JobOptions = JobOptions()) -> tuple[Avatar, Job]:
        """A video avatar from a 5 s to 10 min recording: the avatar (``processing``) and
        its ``avatar_clone`` job. A refused job (credits, queue cap) leaves no avatar."""
        meta = check_meta(gender, age, style, region, tags)
        if not 0 <= face_index <= 20:
            raise InputError("face_index must be 0 to 20", code="bad_request")
        asset = self.avatars.clone_source(principal.account_id, video)
        avatar = self.avatars.new_video(principal.account_id, name, meta, external_id)
        params = {"avatar_id": avatar.id, "name": avatar.name, "face_index": face_index,
                  "inputs": {"video": asset.id}}
        try:
            job, _ = self._create(principal, "avatar_clone", params,
                                  self.settings.price_avatar_clone, opts)
        except BaseException:
            self.avatars.discard(avatar.id)
            raise
        return self.avatars.attach_job(avatar.id, job.id), job

    def create_dub(self, principal: Principal, video: MediaSource, *,
                   audio: MediaSource | None = None, text: str | None = None,
                   voice: str | None = None, transcript: str | None = None,
                   face_index: int = 0, quality: str = "std",
                   captions: str | None = None, burn_captions: bool = False,
                   caption_position: str = CAPTION_POSITIONS[0],
                   caption_size: float = DEFAULT_CAPTION_SIZE,
                   opts: JobOptions = JobOptions(),
                   limits: VideoLimits = DUB_LIMITS) -> tuple[Job, bool]:
        """Re-voice a video of a person: their lips speak the new audio (or text).
        ``limits``: what the video must be (a vendor API passes its document's)."""
        existing = self._existing(principal, opts)
        if existing is not None:
            return existing, False
        check_speech_choice(audio, text)
        options = DubOptions(face_index=face_index, quality=quality, captions=captions,
                             burn_captions=burn_captions, caption_position=caption_position,
                             caption_size=caption_size)
        options.check()
        params: dict[str, Any] = {**options.to_params(), "inputs": {}}
        seconds = self._speech(principal, params, audio, text, voice, transcript)
        params["inputs"]["video"] = self._video(principal, video, limits, "video").id
        return self._create(principal, "dub_video", params,
                            video_cost(self.settings, seconds), opts)

    def create_clean(self, principal: Principal, video: MediaSource, *,
                     subtitle_areas: list[list[float]] | None = None,
                     watermark_areas: list[list[float]] | None = None,
                     opts: JobOptions = JobOptions(),
                     limits: VideoLimits = CLEAN_LIMITS) -> tuple[Job, bool]:
        """Remove burned-in subtitles and watermarks (in the given areas, or found)."""
        existing = self._existing(principal, opts)
        if existing is not None:
            return existing, False
        from facecast.cleanup.areas import AreaKind, check_areas

        asset = self._video(principal, video, limits, "video")
        width, height = int(asset.info["width"]), int(asset.info["height"])
        kind: AreaKind
        for kind, areas in (("subtitle", subtitle_areas), ("watermark", watermark_areas)):
            check_areas(areas or [], kind, width, height)  # coordinates outside: refused
        params = {"subtitle_areas": subtitle_areas or [], "watermark_areas": watermark_areas or [],
                  "inputs": {"video": asset.id}}
        return self._create(principal, "clean_video", params,
                            video_cost(self.settings, float(asset.info["duration"])), opts)

    def _video(self, principal: Principal, source: MediaSource, limits: VideoLimits,
               what: str) -> Asset:
        from facecast.media.video_reader import probe_video

        asset = self.assets.from_source(principal.account_id, source, {"video"}, what)
        local = self.assets.local_copy(asset)
        try:
            with self.assets.naming(what):
                probe_video(local, limits)  # container, codec, duration, size: the vendor rules
        finally:
            local.unlink(missing_ok=True)
        return asset

    def _audio(self, principal: Principal, source: MediaSource) -> Asset:
        asset = self.assets.from_source(principal.account_id, source, {"audio", "video"},
                                        "audio")
        seconds = float(asset.info.get("duration") or 0.0)
        if seconds < MIN_AUDIO_S or seconds > MAX_AUDIO_S:
            raise InputError(f"audio: {seconds:.1f} s long; it must be {MIN_AUDIO_S:.0f} to "
                             f"{MAX_AUDIO_S:.0f} s", code="bad_audio_duration", duration=seconds)
        return asset

    def create_tts(self, principal: Principal, text: str, voice: str | None = None, *,
                   rate: float = DEFAULT_RATE, pitch: float = DEFAULT_PITCH,
                   volume: float = DEFAULT_VOLUME, format: str = TTS_FORMATS[0],
                   opts: JobOptions = JobOptions()) -> tuple[Job, bool]:
        existing = self._existing(principal, opts)
        if existing is not None:
            return existing, False
        text = self.check_text(text)
        self.check_voice(principal, voice)
        options = TtsOptions(rate=rate, pitch=pitch, volume=volume, format=format)
        options.check()
        params = {"text": text, "voice": voice, **options.to_params()}
        return self._create(principal, "tts", params, tts_cost(self.settings, text), opts)

    def create_voice_clone(self, principal: Principal, sample: MediaSource, name: str, *,
                           language: str | None = None,
                           opts: JobOptions = JobOptions()) -> tuple[Job, bool]:
        existing = self._existing(principal, opts)
        if existing is not None:
            return existing, False
        from facecast.speech.clone import check_name

        name = check_name(name)
        asset = self.assets.from_source(principal.account_id, sample, {"audio", "video"},
                                        "sample")
        params = {"name": name, "language": language, "inputs": {"sample": asset.id}}
        return self._create(principal, "voice_clone", params, self.settings.price_voice_clone,
                            opts)

    def job(self, principal: Principal, job_id: int) -> Job:
        job = jobs.get_job(self.db, principal.account_id, job_id)
        if len(self._recent_jobs) > 10_000:
            self._recent_jobs.clear()
        self._recent_jobs[job_id] = (time.monotonic() + JOB_CACHE_S, job)
        return job

    def recent_job(self, principal: Principal, job_id: int) -> Job | None:
        """The job as read in the last 0.25 s, if it was (and is the caller's)."""
        hit = self._recent_jobs.get(job_id)
        if hit is None or hit[0] < time.monotonic() or hit[1].account_id != principal.account_id:
            return None
        return hit[1]

    def job_by_external_id(self, principal: Principal, external_id: str) -> Job:
        return jobs.get_by_external_id(self.db, principal.account_id, external_id)

    def list_jobs(self, principal: Principal, **filters: Any) -> tuple[list[Job], int]:
        return jobs.list_jobs(self.db, principal.account_id, **filters)

    def all_jobs(self, principal: Principal, **filters: Any) -> tuple[list[Job], int]:
        """Every account's jobs, newest first (admin keys: recent failures, the queue)."""
        self._admin(principal)
        return jobs.list_jobs(self.db, None, **filters)

    def cancel_job(self, principal: Principal, job_id: int) -> Job:
        self._recent_jobs.pop(job_id, None)
        return jobs.cancel_job(self.db, principal.account_id, job_id)

    def delete_job(self, principal: Principal, job_id: int) -> None:
        self._recent_jobs.pop(job_id, None)
        jobs.delete_job(self.db, principal.account_id, job_id)
        self.storage.delete_prefix(f"jobs/{job_id}/")

    def job_files(self, job: Job) -> dict[str, dict[str, Any]]:
        """Signed, expiring URLs of a succeeded job's files (empty otherwise)."""
        if job.status != "succeeded" or not job.result:
            return {}
        expires = utcnow() + timedelta(seconds=self.settings.url_ttl_s)
        if job.expires_at is not None:
            expires = min(expires, job.expires_at)
        ttl = max(1.0, (expires - utcnow()).total_seconds())
        with origin.serving(origin.current() or (job.extra or {}).get("public_base")):
            return {name: {"url": self.storage.url(f["key"], ttl, filename=f.get("filename")),
                           "content_type": f["content_type"], "size": f["size"],
                           "url_expires_at": expires}
                    for name, f in job.result.get("files", {}).items()}

    def job_file_path(self, job: Job, name: str, dest: Any) -> None:
        """Copy one result file to ``dest`` (used by compat layers that return bytes)."""
        files = (job.result or {}).get("files", {})
        if name not in files:
            raise NotFoundError(f"job_{job.id} has no {name} file", code="file_not_found")
        self.storage.get_to_path(files[name]["key"], dest)

    # ---- expression templates --------------------------------------------------------------

    def expressions(self) -> list[dict[str, Any]]:
        """The expression templates with their preview URLs ("" until rendered; the first
        listing starts rendering the missing previews in the background)."""
        return self.expression_previews.catalogue()

    def read_prompt(self, text: str) -> dict[str, list[str]]:
        """What a talking photo's ``prompt`` would do, before any job: the parts understood
        (``used``), the parts that will not be rendered (``unused``, exact substrings) and
        the actions in words; ``prompt_too_long`` past the limit."""
        from facecast.motion.prompt import parse_prompt

        plan = parse_prompt(text)
        return {"used": list(plan.used), "unused": list(plan.unused),
                "actions": list(plan.actions)}

    # ---- voices ----------------------------------------------------------------------------

    def _owned_clones(self, principal: Principal) -> set[str]:
        with self.db.session() as session:
            rows = session.scalars(select(CustomVoice.voice_id).where(
                CustomVoice.account_id == principal.account_id,
                CustomVoice.deleted_at.is_(None))).all()
        return set(rows)

    def _owns_voice(self, principal: Principal, voice_id: str) -> bool:
        return voice_id in self._owned_clones(principal)

    def voices(self, principal: Principal, *, page: int = 1, page_size: int = 50,
               **filters: Any) -> tuple[list[Any], int]:
        from facecast.speech.voices import search_voices

        owned = self._owned_clones(principal)
        everything = search_voices(page=1, page_size=500, **filters)
        rows = list(everything.items)
        extra_page = 2
        while len(rows) < everything.total:  # the catalog pages at 500
            rows += search_voices(page=extra_page, page_size=500, **filters).items
            extra_page += 1
        visible = [v for v in rows if v.engine != "clone" or v.id in owned]
        start = (page - 1) * page_size
        return visible[start:start + page_size], len(visible)

    def voice(self, principal: Principal, voice_id: str) -> Any:
        from facecast.speech.voices import get_voice

        v = get_voice(voice_id)
        if v.engine == "clone" and v.id not in self._owned_clones(principal):
            raise NotFoundError(f"no voice {voice_id!r}", code="voice_not_found")
        return v

    def _custom_voice(self, session: Any, principal: Principal, voice_id: str) -> CustomVoice:
        row = session.scalar(select(CustomVoice).where(
            CustomVoice.voice_id == voice_id, CustomVoice.account_id == principal.account_id,
            CustomVoice.deleted_at.is_(None)))
        if row is None:
            raise NotFoundError(f"no custom voice {voice_id!r}", code="voice_not_found")
        return row

    def rename_voice(self, principal: Principal, voice_id: str, name: str) -> None:
        from facecast.speech.clone import default_store

        with self.db.session() as session:
            row = self._custom_voice(session, principal, voice_id)
            default_store().rename(voice_id.removeprefix("clone:"), name)
            row.name = name

    def delete_voice(self, principal: Principal, voice_id: str) -> None:
        from facecast.speech.clone import default_store

        with self.db.session() as session:
            row = self._custom_voice(session, principal, voice_id)
            row.deleted_at = utcnow()
            default_store().delete(voice_id.removeprefix("clone:"))

    # ---- webhooks --------------------------------------------------------------------------

    def create_endpoint(self, principal: Principal, url: str, events: list[str],
                        description: str = "") -> WebhookEndpoint:
        from facecast.service.ingest import UrlPolicy, check_url

        check_url(url, UrlPolicy.from_settings(self.settings))
        with self.db.session() as session:
            row = WebhookEndpoint(account_id=principal.account_id, url=url, events=events,
                                  description=description, secret=webhooks.new_secret())
            session.add(row)
        return row

    def endpoints(self, principal: Principal) -> list[WebhookEndpoint]:
        with self.db.session() as session:
            return list(session.scalars(select(WebhookEndpoint).where(
                WebhookEndpoint.account_id == principal.account_id)
                .order_by(WebhookEndpoint.id)).all())

    def endpoint(self, principal: Principal, endpoint_id: int) -> WebhookEndpoint:
        with self.db.session() as session:
            row = session.get(WebhookEndpoint, endpoint_id)
        if row is None or row.account_id != principal.account_id:
            raise NotFoundError(f"no webhook endpoint whe_{endpoint_id}",
                                code="webhook_not_found")
        return row

    def update_endpoint(self, principal: Principal, endpoint_id: int, **changes: Any
                        ) -> WebhookEndpoint:
        self.endpoint(principal, endpoint_id)
        if changes.get("url"):
            from facecast.service.ingest import UrlPolicy, check_url

            check_url(changes["url"], UrlPolicy.from_settings(self.settings))
        with self.db.session() as session:
            row = session.get(WebhookEndpoint, endpoint_id)
            assert row is not None
            for name, value in changes.items():
                if value is not None:
                    setattr(row, name, value)
        return row

    def delete_endpoint(self, principal: Principal, endpoint_id: int) -> None:
        """Gone for good; its deliveries stay inspectable, and those still pending stop."""
        self.endpoint(principal, endpoint_id)
        with self.db.session() as session:
            session.execute(update(WebhookDelivery).where(
                WebhookDelivery.endpoint_id == endpoint_id,
                WebhookDelivery.status == "pending").values(
                status="failed", finished_at=utcnow()))
            session.execute(update(WebhookDelivery).where(
                WebhookDelivery.endpoint_id == endpoint_id).values(endpoint_id=None))
            session.execute(delete(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id))

    def send_test_event(self, principal: Principal, endpoint_id: int) -> list[WebhookDelivery]:
        endpoint = self.endpoint(principal, endpoint_id)
        with self.db.session() as session:
            return webhooks.queue_event(session, principal.account_id, "webhook.test",
                                        {"endpoint_id": f"whe_{endpoint.id}",
                                         "message": "a test event from facecast"},
                                        endpoint_id=endpoint.id)

    def deliveries(self, principal: Principal, *, endpoint_id: int | None = None,
                   job_id: int | None = None, status: str | None = None, offset: int = 0,
                   limit: int = 20) -> tuple[list[WebhookDelivery], int]:
        where = [WebhookDelivery.account_id == principal.account_id]
        if endpoint_id is not None:
            where.append(WebhookDelivery.endpoint_id == endpoint_id)
        if job_id is not None:
            where.append(WebhookDelivery.job_id == job_id)
        if status:
            where.append(WebhookDelivery.status == status)
        with self.db.session() as session:
            total = session.scalar(select(func.count()).select_from(WebhookDelivery)
                                   .where(*where)) or 0
            rows = session.scalars(select(WebhookDelivery).where(*where)
                                   .order_by(WebhookDelivery.id.desc())
                                   .offset(offset).limit(limit)).all()
        return list(rows), total

    def delivery(self, principal: Principal, delivery_id: int) -> WebhookDelivery:
        with self.db.session() as session:
            row = session.get(WebhookDelivery, delivery_id)
        if row is None or row.account_id != principal.account_id:
            raise NotFoundError(f"no webhook delivery whd_{delivery_id}",
                                code="delivery_not_found")
        return row

    def redeliver(self, principal: Principal, delivery_id: int) -> WebhookDelivery:
        self.delivery(principal, delivery_id)
        with self.db.session() as session:
            return webhooks.redeliver(session, delivery_id)

    # ---- account, keys, admin --------------------------------------------------------------

    def account(self, principal: Principal) -> dict[str, Any]:
        with self.db.session() as session:
            account = session.get(Account, principal.account_id)
            assert account is not None
            held = session.scalar(select(func.coalesce(func.sum(Job.cost_estimate), 0)).where(
                Job.account_id == account.id, Job.status.in_(jobs.ACTIVE))) or 0
            by_status: dict[str, int] = {status: n for status, n in session.execute(
                select(Job.status, func.count()).where(
                    Job.account_id == account.id).group_by(Job.status)).all()}
            spent = -(session.scalar(select(func.coalesce(func.sum(LedgerEntry.amount), 0))
                                     .where(LedgerEntry.account_id == account.id,
                                            LedgerEntry.kind == "charge")) or 0)
        s = self.settings
        return {
            "account": account, "held": int(held), "jobs_by_status": by_status,
            "credits_spent": int(spent),
            "limits": {"rate_limit": account.rate_limit or s.rate_limit,
                       "max_queued_jobs": account.max_queued_jobs or s.max_queued_jobs,
                       "max_queued_text_removal": s.max_queued_text_removal,
                       "max_upload_bytes": s.max_upload_bytes,
                       "max_text_chars": s.max_text_chars,
                       "result_ttl_s": s.result_ttl_s, "upload_ttl_s": s.upload_ttl_s,
                       "live_streams": s.live_max_per_account,
                       "live_idle_timeout_s": s.live_idle_timeout_s,
                       "live_max_duration_s": s.live_max_duration_s},
            "prices": {"video_per_second": s.price_per_video_second,
                       "tts_per_100_chars": s.price_per_100_tts_chars,
                       "voice_clone": s.price_voice_clone,
                       "avatar_clone": s.price_avatar_clone,
                       "live_per_minute": s.live_price_per_minute},
        }

    def ledger(self, principal: Principal, offset: int = 0, limit: int = 50
               ) -> tuple[list[LedgerEntry], int]:
        where = [LedgerEntry.account_id == principal.account_id]
        with self.db.session() as session:
            total = session.scalar(select(func.count()).select_from(LedgerEntry)
                                   .where(*where)) or 0
            rows = session.scalars(select(LedgerEntry).where(*where)
                                   .order_by(LedgerEntry.id.desc())
                                   .offset(offset).limit(limit)).all()
        return list(rows), total

    def create_key(self, principal: Principal, name: str) -> tuple[ApiKey, str]:
        with self.db.session() as session:
            return create_key(session, principal.account_id, name)

    def api_keys(self, principal: Principal) -> list[ApiKey]:
        with self.db.session() as session:
            return list(session.scalars(select(ApiKey).where(
                ApiKey.account_id == principal.account_id).order_by(ApiKey.id)).all())

    def revoke_key(self, principal: Principal, key_id: int) -> ApiKey:
        with self.db.session() as session:
            row = revoke_key(session, principal.account_id, key_id)
        if row is None:
            raise NotFoundError(f"no API key key_{key_id}", code="key_not_found")
        self.keys.forget()
        return row

    def _admin(self, principal: Principal) -> None:
        if not principal.is_admin:
            raise ForbiddenError("this needs an admin API key")

    def create_account(self, principal: Principal, name: str, credits: int | None = None,
                       is_admin: bool = False, *, rate_limit: str | None = None,
                       max_queued_jobs: int | None = None) -> tuple[Account, str]:
        self._admin(principal)
        if rate_limit is not None:
            self.limiter.check_spec(rate_limit)
        with self.db.session() as session:
            account = create_account(session, name, is_admin=is_admin,
                                     credits=self.settings.new_account_credits
                                     if credits is None else credits)
            account.rate_limit = rate_limit
            account.max_queued_jobs = max_queued_jobs
            _, key = create_key(session, account.id, "first key")
            session.refresh(account)  # the opening balance was booked in SQL
        return account, key

    def accounts(self, principal: Principal) -> list[Account]:
        self._admin(principal)
        with self.db.session() as session:
            return list(session.scalars(select(Account).order_by(Account.id)).all())

    def workers(self, principal: Principal) -> list[WorkerView]:
        """Every worker process with its state (admin keys); lost after ``lease_s``."""
        self._admin(principal)
        return list_workers(self.db, self.settings.lease_s)

    def grant(self, principal: Principal, account_id: int, amount: int, note: str
              ) -> LedgerEntry:
        self._admin(principal)
        with self.db.session() as session:
            if session.get(Account, account_id) is None:
                raise NotFoundError(f"no account acc_{account_id}", code="account_not_found")
            if amount == 0:
                raise ConflictError("amount must not be 0", code="bad_amount")
            return grant_credits(session, account_id, amount, note)

