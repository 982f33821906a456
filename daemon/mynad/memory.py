"""Keeping the daemon's memory within the reader's budget (250 MB peak with every model).

Two habits of glibc's allocator cost the daemon more than its models do:

* every thread that allocates gets its own malloc arena (up to 8 per core), and the
  daemon has a dozen threads (card, face, card face, display, PC/SC, onnxruntime
  workers): freed memory sits in arenas no other thread reuses. Two arenas are plenty
  for a daemon whose threads mostly wait;
* large numpy and onnxruntime buffers freed in the middle of the heap stay resident
  until something asks the allocator to give them back.

So the daemon caps the arenas before it starts any thread, and hands free pages back
(``malloc_trim``) when a visit ends and after the one-off work of a card (OCR of the card
face, the card photo's embedding). Both are no-ops where the C library is not glibc.
Measured by bench/daemon_rss.py.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger("mynad.memory")

M_ARENA_MAX = -8  # glibc malloc.h
ARENAS = 2

_libc = None


def _glibc():
    global _libc
    if _libc is None:
        try:
            lib = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            _libc = lib if hasattr(lib, "mallopt") and hasattr(lib, "malloc_trim") else False
        except OSError:
            _libc = False
    return _libc or None


def tune_allocator() -> None:
    """Cap glibc's malloc arenas; call before any thread starts."""
    lib = _glibc()
    if lib is not None and not lib.mallopt(M_ARENA_MAX, ARENAS):
        log.debug("mallopt(M_ARENA_MAX) refused")


def release_free_memory() -> None:
    """Give free heap pages back to the system (cheap: a few ms at most)."""
    lib = _glibc()
    if lib is not None:
        lib.malloc_trim(0)
