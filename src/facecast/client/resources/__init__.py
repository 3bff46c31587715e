"""The client's resources, one module per area of the API; each class serves both
``Client`` and ``AsyncClient`` (see ``facecast.client._resource``)."""

from facecast.client.resources.account import Account, Accounts
from facecast.client.resources.assets import Assets
from facecast.client.resources.avatars import Avatars, Expressions
from facecast.client.resources.jobs import Jobs
from facecast.client.resources.speech import Speech, Voices
from facecast.client.resources.streams import Streams
from facecast.client.resources.videos import Cleanups, Dubs, TalkingPhotos
from facecast.client.resources.webhooks import Webhooks

__all__ = ["Account", "Accounts", "Assets", "Avatars", "Cleanups", "Dubs", "Expressions",
           "Jobs", "Speech", "Streams", "TalkingPhotos", "Voices", "Webhooks"]
