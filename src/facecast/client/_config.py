"""The Python client's defaults, written once: where it finds its server and key, how long
it waits, how it retries and polls. Every one can be given to ``Client`` /
``AsyncClient`` instead."""

from __future__ import annotations

# read when Client() is not given base_url / api_key
ENV_BASE_URL = "FACECAST_BASE_URL"
ENV_API_KEY = "FACECAST_API_KEY"

API_PREFIX = "/api/v1"

# per network operation (connect, one read, one write), not for a whole request: an upload
# of a 300 MB video takes longer, and a slow link still makes progress within it
TIMEOUT_S = 60.0

# Retries: answers that say "nothing was done, try later" (429: rate limit, queue cap, too
# many downloads; 503: the server cannot take it now) and connections that never reached
# the server. Retry-After is honoured up to MAX_RETRY_AFTER_S; a longer wait is the
# caller's decision, so the error is raised with its retry_after instead.
MAX_RETRIES = 2
RETRY_STATUSES = frozenset({429, 503})
RETRY_BASE_S = 0.5  # without Retry-After: 0.5 s, 1 s, 2 s, ... with jitter
RETRY_MAX_S = 8.0
MAX_RETRY_AFTER_S = 60.0

# Job polling in wait(): the API answers a poll from a row at most 0.25 s old, so polling
# faster only repeats answers
POLL_INTERVAL_S = 1.0

# streamed result downloads
CHUNK_BYTES = 1 << 20
