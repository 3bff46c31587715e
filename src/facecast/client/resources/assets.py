"""``client.assets``: media files kept on the server, referenced as ``{"asset_id"}``
(create methods upload local media themselves; this is for reusing one file)."""

from __future__ import annotations

import os
from typing import IO

from facecast.api.native.wire import AssetList, AssetOut
from facecast.client._media import upload_of
from facecast.client._plan import Plan, body, call, no_content, segment
from facecast.client._resource import M, Resource, operation

AssetRef = str | AssetOut


def asset_id(asset: AssetRef) -> str:
    return segment(asset if isinstance(asset, str) else asset.id)


class Assets(Resource[M]):
    @operation
    def upload(self, file: str | os.PathLike[str] | bytes | IO[bytes], *,
               filename: str | None = None) -> Plan[AssetOut]:
        """Upload a photo, audio or video: a path, bytes or a binary file object; an
        http(s) URL string is downloaded by the server instead."""
        if isinstance(file, str) and file.startswith(("http://", "https://")):
            return (yield from call("POST", "/assets/import", AssetOut,
                                    json=body(url=file, filename=filename)))
        return (yield from call("POST", "/assets", AssetOut,
                                upload=upload_of(file, filename)))

    @operation
    def get(self, asset: AssetRef) -> Plan[AssetOut]:
        return (yield from call("GET", f"/assets/{asset_id(asset)}", AssetOut))

    @operation
    def list(self, *, kind: str | None = None, page: int | None = None,
             page_size: int | None = None) -> Plan[AssetList]:
        params = body(kind=kind, page=page, page_size=page_size)
        return (yield from call("GET", "/assets", AssetList, params=params))

    @operation
    def delete(self, asset: AssetRef) -> Plan[None]:
        yield from no_content("DELETE", f"/assets/{asset_id(asset)}")
