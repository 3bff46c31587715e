"""The session process's C heap: settings that keep an hours-long session's memory flat.

A live session synthesises speech in bursts (piper's decoder makes buffers of tens of
MiB each for a long sentence, a few hundred MiB at once, freed a second later) while
the renderer and the encoders allocate frames steadily, each thread in a glibc malloc
arena of its own.
glibc's defaults then keep memory it has no use for: its mmap threshold rises to the
largest block freed (up to 32 MiB), so later big buffers are carved from the arenas
instead of mapped and unmapped; its trim threshold rises with it (up to 64 MiB); and
``malloc_trim`` gives back the free pages inside an arena but never the top of a
thread's arena. A session that spoke for 30 minutes grew by steps of 30-80 MiB; traced,
its Python objects stayed flat while 16 arenas held 40-90 MiB each between utterances,
and a thread's freed big buffer stays resident through ``malloc_trim`` in isolation too
(bench/README.md, "Live streaming: memory and interrupt").

:func:`settle` fixes both thresholds (which turns glibc's adjustment off): a buffer of
``MMAP_THRESHOLD`` or more is its own mapping, returned when freed, and an arena's top
is returned beyond ``TRIM_THRESHOLD``; and it caps the arenas at ``ARENA_MAX``.
:func:`trim` (after each utterance) returns the free pages inside the arenas. Elsewhere
than glibc both do nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

# A 720p RGB frame (2.7 MiB) is below: frames stay in the arenas, reused frame after
# frame, and only the speech engine's big buffers are mapped and unmapped.
MMAP_THRESHOLD = 4 << 20
TRIM_THRESHOLD = 2 * MMAP_THRESHOLD  # the most free memory an arena's top keeps (glibc's
# own ratio between the two)
# Arenas for all the process's threads (glibc's default is 8 per core: 16 here, each
# keeping its own free memory). Contention for two is not measured apart; the renderer,
# synthesis and encoders allocate mostly large blocks or under the GIL.
ARENA_MAX = 2
_M_TRIM_THRESHOLD = -1  # glibc's mallopt parameters (malloc.h)
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8


@functools.lru_cache(maxsize=1)
def _libc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to set
        return None
    return libc


def settle() -> bool:
    """Fix the heap's thresholds for this process (call first thing in the session's
    process, before its threads start). True when they were set."""
    libc = _libc()
    if libc is None:
        return False
    return all([libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD),
                libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD),
                libc.mallopt(_M_ARENA_MAX, ARENA_MAX)])


def trim() -> None:
    """Give the free pages inside every arena back to the system."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)
