"""``Client`` and ``AsyncClient``: the resources as attributes over one transport.

Both take the same arguments; ``base_url`` and ``api_key`` default to the environment
(``FACECAST_BASE_URL``, ``FACECAST_API_KEY``). Use them as context managers (or call
``close()``) to release the connection pool."""

from __future__ import annotations

import os
from types import TracebackType
from typing import Generic

import httpx

from facecast.api.native.wire import Health
from facecast.client import _config
from facecast.client._plan import Call, parsed
from facecast.client._resource import Async, M, Runner, Sync
from facecast.client._transport import AsyncTransport, SyncTransport
from facecast.client.resources import (
    Account,
    Accounts,
    Assets,
    Avatars,
    Cleanups,
    Dubs,
    Expressions,
    Jobs,
    Speech,
    Streams,
    TalkingPhotos,
    Voices,
    Webhooks,
)


def _settings(base_url: str | None, api_key: str | None) -> tuple[str, str | None]:
    url = base_url or os.environ.get(_config.ENV_BASE_URL)
    if not url:
        raise ValueError(f"no server: pass base_url (e.g. http://127.0.0.1:8000) or set "
                         f"{_config.ENV_BASE_URL}")
    return url, api_key or os.environ.get(_config.ENV_API_KEY)


class _Resources(Generic[M]):
    """Every resource, bound to one transport."""

    def __init__(self, runner: Runner) -> None:
        self.talking_photos: TalkingPhotos[M] = TalkingPhotos(runner)
        self.dubs: Dubs[M] = Dubs(runner)
        self.cleanups: Cleanups[M] = Cleanups(runner)
        self.speech: Speech[M] = Speech(runner)
        self.jobs: Jobs[M] = Jobs(runner)
        self.voices: Voices[M] = Voices(runner)
        self.avatars: Avatars[M] = Avatars(runner)
        self.expressions: Expressions[M] = Expressions(runner)
        self.assets: Assets[M] = Assets(runner)
        self.webhooks: Webhooks[M] = Webhooks(runner)
        self.streams: Streams[M] = Streams(runner)  # live avatars (WebRTC)
        self.account: Account[M] = Account(runner)
        self.accounts: Accounts[M] = Accounts(runner)  # admin keys only


class Client(_Resources[Sync]):
    """The facecast API, blocking::

        with Client("http://gpu-box:8000", api_key="fc_...") as client:
            job = client.talking_photos.create(photo="face.jpg", text="Hello!")
            job = client.jobs.wait(job, progress=lambda f, stage: print(stage, f))
            client.jobs.download(job, "hello.mp4")

    ``timeout``: seconds per network operation; ``max_retries``: how often a request
    refused with 429/503 (after Retry-After) or a failed connection is tried again;
    ``http_client``: your own ``httpx.Client`` (proxies, certificates).
    """

    def __init__(self, base_url: str | None = None, api_key: str | None = None, *,
                 timeout: float = _config.TIMEOUT_S, max_retries: int = _config.MAX_RETRIES,
                 headers: dict[str, str] | None = None,
                 http_client: httpx.Client | None = None) -> None:
        url, key = _settings(base_url, api_key)
        self._transport = SyncTransport(url, key, timeout=timeout, max_retries=max_retries,
                                        headers=headers, http_client=http_client)
        self.base_url = self._transport.base_url
        super().__init__(self._transport)

    def health(self) -> Health:
        """The server's status, version and queue (no key needed)."""
        response = self._transport.send(Call("GET", "/health", prefix=""))
        return parsed(response, Health)

    def close(self) -> None:
        self._transport.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


class AsyncClient(_Resources[Async]):
    """:class:`Client` for asyncio: the same resources and methods, awaited::

        async with AsyncClient() as client:
            job = await client.speech.create("Hello!")
            job = await client.jobs.wait(job)
    """

    def __init__(self, base_url: str | None = None, api_key: str | None = None, *,
                 timeout: float = _config.TIMEOUT_S, max_retries: int = _config.MAX_RETRIES,
                 headers: dict[str, str] | None = None,
                 http_client: httpx.AsyncClient | None = None) -> None:
        url, key = _settings(base_url, api_key)
        self._transport = AsyncTransport(url, key, timeout=timeout, max_retries=max_retries,
                                         headers=headers, http_client=http_client)
        self.base_url = self._transport.base_url
        super().__init__(self._transport)

    async def health(self) -> Health:
        response = await self._transport.send(Call("GET", "/health", prefix=""))
        return parsed(response, Health)

    async def close(self) -> None:
        await self._transport.close()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.close()
