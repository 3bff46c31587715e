"""Media layer: audio decode/encode, image decode guards, the streaming MP4 writer."""

from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from facecast.errors import InputError
from facecast.media import Audio, Mp4Writer, load_audio, load_image, write_audio
from facecast.media.audio import AudioStream


def tone(seconds: float, rate: int = 22050, freq: float = 440.0) -> Audio:
    t = np.arange(int(seconds * rate)) / rate
    return Audio((0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32), rate)


@pytest.mark.parametrize("suffix", [".wav", ".mp3"])
def test_audio_round_trip(tmp_path: Path, suffix: str) -> None:
    path = write_audio(tmp_path / f"a{suffix}", tone(2.0))
    back = load_audio(path, 16000)
    assert back.sample_rate == 16000
    assert back.duration == pytest.approx(2.0, abs=0.06)  # mp3 adds encoder padding
    spectrum = np.abs(np.fft.rfft(back.samples))
    assert np.fft.rfftfreq(len(back.samples), 1 / 16000)[spectrum.argmax()] == pytest.approx(
        440, abs=2)


@pytest.mark.parametrize(("suffix", "codec", "fmt"), [(".m4a", "aac", "fltp"),
                                                     (".ogg", "libopus", "s16"),
                                                     (".aac", "aac", "fltp")])
def test_audio_decodes_compressed_containers(tmp_path: Path, suffix: str, codec: str,
                                            fmt: str) -> None:
    """m4a, raw AAC (ADTS) and ogg/opus, as phones and browsers record them."""
    path = tmp_path / f"speech{suffix}"
    rate = 48000
    samples = tone(1.5, rate, 700.0).samples
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=rate, layout="mono")
        data = (samples * 32767).astype(np.int16) if fmt == "s16" else samples
        for start in range(0, len(data), 960):
            frame = av.AudioFrame.from_ndarray(data[None, start : start + 960].copy(),
                                               format=fmt, layout="mono")
            frame.sample_rate = rate
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    back = load_audio(path, 16000)
    assert back.duration == pytest.approx(1.5, abs=0.08)
    freqs = np.fft.rfftfreq(len(back.samples), 1 / 16000)
    assert freqs[np.abs(np.fft.rfft(back.samples)).argmax()] == pytest.approx(700, abs=3)


def test_audio_limits_and_garbage(tmp_path: Path) -> None:
    path = write_audio(tmp_path / "short.wav", tone(0.5))
    with pytest.raises(InputError) as err:
        load_audio(path, min_duration=1.0)
    assert err.value.code == "audio_too_short" and "0.50 s" in err.value.message
    long = write_audio(tmp_path / "long.wav", tone(5.0))
    with pytest.raises(InputError) as err:
        load_audio(long, max_duration=3.0)
    assert err.value.code == "audio_too_long"
    junk = tmp_path / "junk.m4a"
    junk.write_bytes(b"\x00not audio" * 100)
    with pytest.raises(InputError) as err:
        load_audio(junk)
    assert err.value.code == "unreadable_audio" and "junk.m4a" in err.value.message


def test_audio_stream_yields_pieces_as_decoded_and_refuses_long_files_up_front(
        tmp_path: Path) -> None:
    """AudioStream (live sessions speak audio as it is decoded): pieces of about the size
    asked for that add up to the whole; a file whose header says it is too long is
    refused on opening, before any sample."""
    path = write_audio(tmp_path / "speech.wav", tone(2.0))
    with AudioStream(path, 48_000, max_duration=5.0, chunk_s=0.5) as stream:
        pieces = list(stream)
    assert len(pieces) >= 4 and all(len(p) >= 0.5 * 48_000 for p in pieces[:-1])
    whole = load_audio(path, 48_000)
    assert np.allclose(np.concatenate(pieces), whole.samples)
    long = write_audio(tmp_path / "long.wav", tone(5.0))
    with pytest.raises(InputError) as err:
        AudioStream(long, max_duration=3.0)
    assert err.value.code == "audio_too_long"


def test_image_guards(tmp_path: Path, astronaut: np.ndarray) -> None:
    with pytest.raises(InputError) as err:
        load_image(b"definitely not an image")
    assert err.value.code == "unreadable_image"
    big = tmp_path / "big.png"
    cv2.imwrite(str(big), astronaut[:, :, ::-1])
    with pytest.raises(InputError) as err:
        load_image(big, max_bytes=1000)
    assert err.value.code == "file_too_large"
    # Transparent pixels composite on white, as a viewer shows them.
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[:4, :, 3] = 255
    _, buf = cv2.imencode(".png", rgba)
    img = load_image(buf.tobytes())
    assert img.shape == (8, 8, 3) and img[0, 0].tolist() == [0, 0, 0]
    assert img[7, 7].tolist() == [255, 255, 255]


def test_mp4_writer_streams_h264_aac_faststart(tmp_path: Path) -> None:
    out = tmp_path / "v.mp4"
    audio = tone(1.0)
    with Mp4Writer(out, 64, 48, 25, audio) as writer:
        for i in range(25):
            writer.write(np.full((48, 64, 3), i * 10, np.uint8))
    with av.open(str(out)) as c:
        v, a = c.streams.video[0], c.streams.audio[0]
        assert v.codec_context.name == "h264" and v.codec_context.pix_fmt == "yuv420p"
        assert a.codec_context.name == "aac"
        assert sum(1 for _ in c.decode(video=0)) == 25
    data = out.read_bytes()
    assert data.index(b"moov") < data.index(b"mdat"), "index must precede the media (faststart)"


def test_mp4_writer_leaves_nothing_on_failure(tmp_path: Path) -> None:
    out = tmp_path / "v.mp4"
    with pytest.raises(ValueError), Mp4Writer(out, 64, 48) as writer:
        writer.write(np.zeros((48, 64, 3), np.uint8))
        writer.write(np.zeros((10, 10, 3), np.uint8))  # wrong size
    assert not out.exists()
    assert not list(tmp_path.iterdir())
