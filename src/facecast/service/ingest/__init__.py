"""Taking in media from untrusted callers: by URL, as base64, or as an uploaded file.

The HTTP service accepts portraits, speech and videos three ways, and this package
turns each into a file on disk that is known to be what it claims to be:

* :func:`download` fetches a URL under a :class:`UrlPolicy`: http(s) only, no
  private, loopback, link-local, reserved or multicast addresses (unless allowed),
  redirects followed by hand with every hop checked again, a size limit enforced
  while streaming and a time limit on the whole download, not on each read.
* :func:`decode_base64` and :func:`save_upload` write inline data and uploads
  under the same size limit.
* :func:`verify_media` decides what a file is by decoding it (OpenCV for images,
  PyAV for audio and video), never by its name or a Content-Type header, and
  refuses random bytes, the wrong kind of media and truncated files.

Every writer is all-or-nothing: it writes to a temporary name beside ``dest`` and
renames it on success; on any failure ``dest`` does not exist afterwards.

DNS rebinding: the address check and the connection use the same DNS answer.
:func:`download` resolves each hop's host once, checks every address, and the
HTTP client's network layer then connects only to those checked addresses (it
never resolves the name again). This holds for https as well: the TCP connection
goes to a checked address and TLS runs over it with SNI and certificate
verification against the hostname from the URL, so a rebound name gains an
attacker nothing. The client ignores proxy environment variables, since a proxy
would make its own DNS lookup. The DNS lookup itself is not covered by the time
limit (the system resolver applies its own timeouts).

The package's modules, one job each: :mod:`.url_policy` (which addresses a URL may
reach), :mod:`.transport` (the pinned HTTP client), :mod:`.download`, :mod:`.files`
(base64 and uploads), :mod:`.verify` (what a file is). Import from the package: its
``__all__`` is the public interface.
"""

from facecast.service.ingest.download import DownloadInfo, download
from facecast.service.ingest.files import SupportsRead, decode_base64, save_upload
from facecast.service.ingest.transport import PinnedBackend, shared_ssl_context
from facecast.service.ingest.url_policy import IPAddress, UrlPolicy, check_url
from facecast.service.ingest.verify import MEDIA_KINDS, MediaInfo, verify_media

__all__ = [
    "MEDIA_KINDS",
    "DownloadInfo",
    "IPAddress",
    "MediaInfo",
    "PinnedBackend",
    "SupportsRead",
    "UrlPolicy",
    "check_url",
    "decode_base64",
    "download",
    "save_upload",
    "shared_ssl_context",
    "verify_media",
]
