"""Decoding, encoding and probing of images, audio and video (PyAV, OpenCV).

This layer knows nothing of faces or speech: it turns files into arrays and
arrays into files, and refuses inputs that are unreadable or out of range with
an :class:`facecast.errors.InputError` whose code names the problem.
"""

from facecast.media.audio import Audio, load_audio, write_audio
from facecast.media.image import load_image
from facecast.media.video import Mp4Writer

__all__ = ["Audio", "Mp4Writer", "load_audio", "load_image", "write_audio"]
