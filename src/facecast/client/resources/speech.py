"""``client.speech`` (text to speech jobs) and ``client.voices`` (the catalog, previews,
cloned voices, languages)."""

from __future__ import annotations

import os
from pathlib import Path

from facecast.api.native.wire import JobOut, LanguageOut, VoiceList, VoiceOut
from facecast.client._media import Media, media_input
from facecast.client._plan import Call, Plan, body, call, no_content, segment
from facecast.client._resource import M, Resource, operation

Languages = list[LanguageOut]


class Speech(Resource[M]):
    @operation
    def create(self, text: str, *, voice: str | None = None, rate: float | None = None,
               pitch: float | None = None, volume: float | None = None,
               format: str | None = None, external_id: str | None = None,
               callback_url: str | None = None) -> Plan[JobOut]:
        """Speak ``text``. Result files: ``audio`` (MP3 or WAV), ``timings`` (JSON words
        and phonemes)."""
        request = body(text=text, voice=voice, rate=rate, pitch=pitch, volume=volume,
                       format=format, external_id=external_id, callback_url=callback_url)
        return (yield from call("POST", "/speech", JobOut, json=request))


class Voices(Resource[M]):
    @operation
    def list(self, *, language: str | None = None, region: str | None = None,
             gender: str | None = None, age_group: str | None = None,
             engine: str | None = None, custom: bool | None = None, query: str | None = None,
             page: int | None = None, page_size: int | None = None) -> Plan[VoiceList]:
        """Voices, filtered and paged (ids work wherever a voice is asked for)."""
        params = body(language=language, region=region, gender=gender, age_group=age_group,
                      engine=engine, custom=custom, query=query, page=page,
                      page_size=page_size)
        return (yield from call("GET", "/voices", VoiceList, params=params))

    @operation
    def get(self, voice: str) -> Plan[VoiceOut]:
        return (yield from call("GET", f"/voices/{segment(voice)}", VoiceOut))

    @operation
    def preview(self, voice: str, path: str | os.PathLike[str]) -> Plan[Path]:
        """Write a short spoken sample of the voice (MP3) to ``path``."""
        response = yield Call("GET", f"/voices/{segment(voice)}/preview")
        out = Path(path)
        out.write_bytes(response.content)
        return out

    @operation
    def rename(self, voice: str, name: str) -> Plan[VoiceOut]:
        """Rename one of your cloned voices."""
        return (yield from call("PATCH", f"/voices/{segment(voice)}", VoiceOut,
                                json={"name": name}))

    @operation
    def delete(self, voice: str) -> Plan[None]:
        """Delete one of your cloned voices."""
        yield from no_content("DELETE", f"/voices/{segment(voice)}")

    @operation
    def clone(self, sample: Media, *, name: str, language: str | None = None,
              external_id: str | None = None, callback_url: str | None = None
              ) -> Plan[JobOut]:
        """Clone a voice from 2 to 300 s of speech: a job whose ``result.info.voice_id``
        is the new voice."""
        request = body(sample=(yield from media_input(sample)), name=name, language=language,
                       external_id=external_id, callback_url=callback_url)
        return (yield from call("POST", "/voices/clones", JobOut, json=request))

    @operation
    def languages(self) -> Plan[Languages]:
        """Languages with their regional variants and voice counts."""
        return (yield from call("GET", "/languages", Languages))
