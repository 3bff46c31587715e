"""The background process that renders library avatars' missing preview clips.

``AvatarService.start_previews`` starts ``python -m facecast.service.avatar_previews`` at
the workers' priority; it ends with its parent. It is a module of its own because it
builds the whole :class:`facecast.service.core.Service`, which itself uses the avatar
library: the entry point sits above both.
"""

from __future__ import annotations

import logging

from facecast.service.core import Service
from facecast.service.processes import die_with_parent, lower_priority
from facecast.service.settings import Settings


def main() -> None:
    """Render every pending library preview, then exit."""
    die_with_parent()
    settings = Settings()
    lower_priority(settings.worker_nice)  # previews yield the CPU like the workers do
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    service = Service(settings)
    try:
        service.avatars.render_previews()
    finally:
        service.db.dispose()


if __name__ == "__main__":
    main()
