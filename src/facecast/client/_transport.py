"""Running plans (``_plan.py``) over HTTP: :class:`SyncTransport` with an ``httpx.Client``,
:class:`AsyncTransport` with an ``httpx.AsyncClient``. What they share (the headers,
building each request, retry decisions, turning answers into errors, writing a download
whole or not at all) is written once in :class:`Transport`; the two subclasses only
block or await."""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import httpx

from facecast import __version__
from facecast.client import _config
from facecast.client._plan import Call, Fetch, Pause, Plan, RetryPolicy, Step, status_error
from facecast.client.errors import APIConnectionError, APIError, APITimeoutError


class Transport:
    """Configuration and the I/O-free half of sending: subclasses add the sending."""

    is_async = False

    def __init__(self, base_url: str, api_key: str | None, *, timeout: float,
                 max_retries: int, headers: dict[str, str] | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.retry = RetryPolicy(max_retries=max_retries)
        self.headers = {"User-Agent": f"facecast-python/{__version__}",
                        "Accept": "application/json", **(headers or {})}
        if api_key:
            self.headers["Authorization"] = f"Bearer {api_key}"
        self.timeout = httpx.Timeout(timeout)

    def _request(self, http: httpx.Client | httpx.AsyncClient, call: Call,
                 stream: IO[bytes] | None) -> httpx.Request:
        files = None
        if call.upload is not None:
            assert stream is not None
            files = {call.upload.field: (call.upload.filename, stream,
                                         call.upload.content_type)}
        return http.build_request(call.method, self.base_url + call.prefix + call.path,
                                  params=call.params, json=call.json, files=files,
                                  headers=self.headers)

    def _fetch_request(self, http: httpx.Client | httpx.AsyncClient,
                       fetch: Fetch) -> httpx.Request:
        # not self.headers: no API key goes to a file URL
        return http.build_request("GET", fetch.url,
                                  headers={"User-Agent": self.headers["User-Agent"]})

    @staticmethod
    def _connection_error(exc: httpx.TransportError, url: object) -> APIError:
        if isinstance(exc, httpx.TimeoutException):
            return APITimeoutError(f"no answer from {url} in time ({type(exc).__name__})")
        return APIConnectionError(f"could not reach {url}: {exc or type(exc).__name__}")

    @staticmethod
    @contextlib.contextmanager
    def _upload_stream(call: Call) -> Iterator[IO[bytes] | None]:
        if call.upload is None:
            yield None
            return
        stream = call.upload.open()
        try:
            yield stream
        finally:
            stream.close()

    @staticmethod
    @contextlib.contextmanager
    def _partial(dest: Path) -> Iterator[IO[bytes]]:
        """A temporary file beside ``dest``, renamed onto it only when the body is whole."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
        try:
            with os.fdopen(fd, "wb") as out:
                yield out
            os.replace(name, dest)
        except BaseException:
            Path(name).unlink(missing_ok=True)
            raise


class SyncTransport(Transport):
    def __init__(self, base_url: str, api_key: str | None, *, timeout: float,
                 max_retries: int, headers: dict[str, str] | None = None,
                 http_client: httpx.Client | None = None) -> None:
        super().__init__(base_url, api_key, timeout=timeout, max_retries=max_retries,
                         headers=headers)
        self.http = http_client or httpx.Client(timeout=self.timeout)

    def run(self, plan: Plan[Any]) -> Any:
        outcome: Any = None
        try:
            while True:
                step: Step = plan.send(outcome)
                outcome = self.step(step)
        except StopIteration as done:
            return done.value

    def step(self, step: Step) -> Any:
        if isinstance(step, Pause):
            time.sleep(step.seconds)
            return None
        if isinstance(step, Fetch):
            return self.fetch(step)
        return self.send(step)

    def send(self, call: Call) -> httpx.Response:
        attempt = 0
        while True:
            try:
                with self._upload_stream(call) as stream:
                    response = self.http.send(self._request(self.http, call, stream))
            except httpx.TransportError as exc:
                delay = self.retry.delay(attempt, None) \
                    if self.retry.may_resend(call.method, exc) else None
                if delay is None:
                    raise self._connection_error(exc, self.base_url) from exc
            else:
                if response.is_success:
                    return response
                delay = self.retry.delay(attempt, response)
                if delay is None:
                    raise status_error(response)
            attempt += 1
            self.step(Pause(delay))

    def fetch(self, fetch: Fetch) -> Path:
        attempt = 0
        while True:
            try:
                response = self.http.send(self._fetch_request(self.http, fetch), stream=True)
                try:
                    if response.is_success:
                        with self._partial(fetch.dest) as out:
                            for chunk in response.iter_bytes(_config.CHUNK_BYTES):
                                out.write(chunk)
                        return fetch.dest
                    response.read()
                finally:
                    response.close()
            except httpx.TransportError as exc:
                delay = self.retry.delay(attempt, None)  # a GET: always safe to send again
                if delay is None:
                    raise self._connection_error(exc, fetch.url) from exc
            else:
                delay = self.retry.delay(attempt, response)
                if delay is None:
                    raise status_error(response)
            attempt += 1
            self.step(Pause(delay))

    def close(self) -> None:
        self.http.close()


class AsyncTransport(Transport):
    """:class:`SyncTransport` with ``await``: the same steps, retries and errors."""

    is_async = True

    def __init__(self, base_url: str, api_key: str | None, *, timeout: float,
                 max_retries: int, headers: dict[str, str] | None = None,
                 http_client: httpx.AsyncClient | None = None) -> None:
        super().__init__(base_url, api_key, timeout=timeout, max_retries=max_retries,
                         headers=headers)
        self.http = http_client or httpx.AsyncClient(timeout=self.timeout)

    async def run(self, plan: Plan[Any]) -> Any:
        outcome: Any = None
        try:
            while True:
                step: Step = plan.send(outcome)
                outcome = await self.step(step)
        except StopIteration as done:
            return done.value

    async def step(self, step: Step) -> Any:
        if isinstance(step, Pause):
            await asyncio.sleep(step.seconds)
            return None
        if isinstance(step, Fetch):
            return await self.fetch(step)
        return await self.send(step)

    async def send(self, call: Call) -> httpx.Response:
        attempt = 0
        while True:
            try:
                with self._upload_stream(call) as stream:
                    response = await self.http.send(self._request(self.http, call, stream))
            except httpx.TransportError as exc:
                delay = self.retry.delay(attempt, None) \
                    if self.retry.may_resend(call.method, exc) else None
                if delay is None:
                    raise self._connection_error(exc, self.base_url) from exc
            else:
                if response.is_success:
                    return response
                delay = self.retry.delay(attempt, response)
                if delay is None:
                    raise status_error(response)
            attempt += 1
            await self.step(Pause(delay))

    async def fetch(self, fetch: Fetch) -> Path:
        attempt = 0
        while True:
            try:
                response = await self.http.send(self._fetch_request(self.http, fetch),
                                                stream=True)
                try:
                    if response.is_success:
                        with self._partial(fetch.dest) as out:
                            async for chunk in response.aiter_bytes(_config.CHUNK_BYTES):
                                out.write(chunk)
                        return fetch.dest
                    await response.aread()
                finally:
                    await response.aclose()
            except httpx.TransportError as exc:
                delay = self.retry.delay(attempt, None)  # a GET: always safe to send again
                if delay is None:
                    raise self._connection_error(exc, fetch.url) from exc
            else:
                delay = self.retry.delay(attempt, response)
                if delay is None:
                    raise status_error(response)
            attempt += 1
            await self.step(Pause(delay))

    async def close(self) -> None:
        await self.http.aclose()
