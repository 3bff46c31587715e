"""Removing burned-in subtitles and watermarks from videos (the engine side).

:mod:`~facecast.cleanup.areas` parses and checks the caller's rectangles,
:mod:`~facecast.cleanup.textmask` finds subtitle pixels per frame,
:mod:`~facecast.cleanup.logo` models a static logo as an overlay and takes it
off, :mod:`~facecast.cleanup.fill` replaces masked pixels consistently over
time, :mod:`~facecast.cleanup.detect` finds subtitles and logos without
areas (with OCR from :mod:`~facecast.cleanup.ocr`),
:mod:`~facecast.cleanup.io` streams YUV frames in and H.264 out with the audio
copied, and :mod:`~facecast.cleanup.burn` makes test media with
known ground truth. :func:`facecast.pipeline.clean_video.clean_video` puts
them together.
"""

from facecast.cleanup.areas import Area, Region, check_area, check_areas, parse_area

__all__ = ["Area", "Region", "check_area", "check_areas", "parse_area"]
