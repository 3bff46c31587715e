"""``client.avatars`` (the library, your own photo and video avatars, the face check) and
``client.expressions`` (the expression templates)."""

from __future__ import annotations

from collections.abc import Sequence

from facecast.api.native.wire import (
    AvatarList,
    AvatarOut,
    ExpressionList,
    FaceCheckOut,
    PromptCheckOut,
)
from facecast.client._media import Media, media_input
from facecast.client._plan import Plan, body, call, listed, no_content, segment
from facecast.client._resource import M, Resource, operation

AvatarRef = str | AvatarOut


def avatar_id(avatar: AvatarRef) -> str:
    return segment(avatar if isinstance(avatar, str) else avatar.id)


class Avatars(Resource[M]):
    @operation
    def list(self, *, custom: bool | None = None, kind: str | None = None,
             gender: str | None = None, age: str | None = None, style: str | None = None,
             region: str | None = None, tag: str | None = None, query: str | None = None,
             page: int | None = None, page_size: int | None = None) -> Plan[AvatarList]:
        """The library (``custom=False``) and your own avatars (``custom=True``)."""
        params = body(custom=custom, kind=kind, gender=gender, age=age, style=style,
                      region=region, tag=tag, query=query, page=page, page_size=page_size)
        return (yield from call("GET", "/avatars", AvatarList, params=params))

    @operation
    def get(self, avatar: AvatarRef) -> Plan[AvatarOut]:
        return (yield from call("GET", f"/avatars/{avatar_id(avatar)}", AvatarOut))

    @operation
    def create(self, name: str, *, photo: Media | None = None, video: Media | None = None,
               face_index: int | None = None, gender: str | None = None,
               age: str | None = None, style: str | None = None, region: str | None = None,
               tags: Sequence[str] | None = None) -> Plan[AvatarOut]:
        """Your own avatar: a ``photo`` (face-checked now: BadRequestError with the reason,
        e.g. ``no_face``) or a ``video`` (``processing`` until its ``job_id`` ends)."""
        request = body(name=name, photo=(yield from media_input(photo)),
                       video=(yield from media_input(video)), face_index=face_index,
                       gender=gender, age=age, style=style, region=region,
                       tags=listed(tags))
        return (yield from call("POST", "/avatars", AvatarOut, json=request))

    @operation
    def rename(self, avatar: AvatarRef, name: str) -> Plan[AvatarOut]:
        """Rename one of your own avatars (the library's are refused: ``avatar_builtin``)."""
        return (yield from call("PATCH", f"/avatars/{avatar_id(avatar)}", AvatarOut,
                                json={"name": name}))

    @operation
    def delete(self, avatar: AvatarRef) -> Plan[None]:
        yield from no_content("DELETE", f"/avatars/{avatar_id(avatar)}")

    @operation
    def check_face(self, photo: Media, *, profile: str | None = None) -> Plan[FaceCheckOut]:
        """Would this photo make a good avatar? The verdict (``accepted``, ``reason``,
        face box, pose); nothing is kept but an uploaded asset."""
        request = body(photo=(yield from media_input(photo)), profile=profile)
        return (yield from call("POST", "/face-check", FaceCheckOut, json=request))


class Expressions(Resource[M]):
    @operation
    def list(self) -> Plan[ExpressionList]:
        """The expression templates a talking photo's ``expression`` takes."""
        return (yield from call("GET", "/expressions", ExpressionList))

    @operation
    def check_prompt(self, prompt: str) -> Plan[PromptCheckOut]:
        """What a talking photo's ``prompt`` would do: ``used``, ``unused`` (the parts that
        will not be rendered) and ``actions``; nothing is made."""
        return (yield from call("POST", "/prompt-check", PromptCheckOut,
                                json={"prompt": prompt}))
