"""Vendor-compatible APIs, each a sub-application with its own error envelope and
OpenAPI document, mounted at the vendor's own path prefix so that client code
written for the vendor works by changing only the base URL.

A vendor package holds only its own parts: ``wire.py`` (pydantic models with
the vendor's exact field names and types), ``routes.py`` (the endpoints),
``mapper.py`` (wire values <-> :class:`facecast.service.core.Service` calls;
vendor status numbers and the error table: facecast code or class -> vendor code),
``auth.py``, and in ``__init__.py`` its envelope (a :class:`kit.Door`). What every
door shares (the error base, handlers, catch-all, body limit) is in ``kit.py``.
Its ``create_app(service)`` returns the sub-application.
"""

from __future__ import annotations

import importlib
import logging
import re

from fastapi import FastAPI

from facecast.service.core import Service

log = logging.getLogger("facecast.api.compat")

# vendor package -> the path prefix its documents use
VENDORS = {
    "kreado": "/apis/open",  # https://api.kreadoai.com/apis/open/...
    "akool": "/api/open/v3",  # https://openapi.akool.com/api/open/v3/...
    "kling": "/v1",  # https://api-singapore.klingai.com/v1/...
}


def mount_compat(app: FastAPI, service: Service) -> list[str]:
    """Mount every vendor API that is present; returns the prefixes mounted."""
    mounted = []
    for name, prefix in VENDORS.items():
        try:
            module = importlib.import_module(f"facecast.api.compat.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"facecast.api.compat.{name}":
                raise
            continue
        app.mount(prefix, module.create_app(service))
        mount = app.router.routes[-1]
        # Starlette's "(?P<path>.*)" stops at a line break: a path with an encoded newline
        # would fall through to the native API's envelope instead of the vendor's
        mount.path_regex = re.compile(mount.path_regex.pattern, re.DOTALL)  # type: ignore[attr-defined]
        mounted.append(prefix)
    return mounted
