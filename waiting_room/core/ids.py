"""Unguessable ids from the OS's CSPRNG, read a few KiB at a time.

A join needs three secrets (the ticket id, the browser's wr_uid, its token's jti) and a random place
for a pre-queue ticket; `secrets` makes one getrandom() system call for each, which on the join path
cost as much as encoding the answer. These are the same CSPRNG's bytes, read 4 KiB per call. A forked
worker empties its copy before its first use, so no two processes hand out the same bytes.
"""

from __future__ import annotations

import base64
import os
import threading

CHUNK = 4096


class _Pool:
    def __init__(self) -> None:
        self._bytes = b""
        self._at = 0
        self._lock = threading.Lock()

    def take(self, n: int) -> bytes:
        with self._lock:
            if self._at + n > len(self._bytes):
                self._bytes, self._at = os.urandom(max(CHUNK, n)), 0
            out = self._bytes[self._at : self._at + n]
            self._at += n
            return out

    def forget(self) -> None:
        self._bytes, self._at, self._lock = b"", 0, threading.Lock()


_pool = _Pool()
os.register_at_fork(after_in_child=_pool.forget)


def token_bytes(n: int) -> bytes:
    return _pool.take(n)


def token_urlsafe(n: int) -> str:
    """As secrets.token_urlsafe(n): n random bytes, URL-safe base64 without padding."""
    return base64.urlsafe_b64encode(_pool.take(n)).rstrip(b"=").decode("ascii")


def randbelow(n: int) -> int:
    """As secrets.randbelow(n): uniform in [0, n), by rejection (exact for every n, one draw for 2^k)."""
    if n <= 0:
        raise ValueError("n must be positive")
    bits = (n - 1).bit_length()
    size = (bits + 7) // 8
    while True:
        value = int.from_bytes(_pool.take(size)) >> (8 * size - bits)
        if value < n:
            return value
