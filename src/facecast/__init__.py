"""facecast: self-hosted talking-avatar videos on a CPU.

The package is layered (see docs/ARCHITECTURE.md): ``media`` (decode/encode),
the engine parts ``face``, ``speech``, ``motion`` and ``render``, and
``pipeline`` which composes them into use cases such as
:func:`facecast.pipeline.talking_photo.render_talking_photo`.
"""

__version__ = "0.1.0"
