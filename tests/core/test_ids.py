from __future__ import annotations

import os
import re
from collections import Counter

import pytest

from waiting_room.core import ids


def test_tokens_are_url_safe_and_never_repeat_across_refills() -> None:
    tokens = [ids.token_urlsafe(18) for _ in range(5000)]  # ~22 refills of the pool
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{24}", t) for t in tokens)
    assert len(set(tokens)) == len(tokens)
    assert len(ids.token_bytes(ids.CHUNK * 2)) == ids.CHUNK * 2  # more than a chunk at once


@pytest.mark.parametrize("n", [1, 2, 3, 7, 10, 2**40, 10**12 + 3])
def test_randbelow_stays_in_range(n: int) -> None:
    values = [ids.randbelow(n) for _ in range(2000)]
    assert all(0 <= v < n for v in values)


def test_randbelow_is_uniform_for_a_bound_that_is_not_a_power_of_two() -> None:
    counts = Counter(ids.randbelow(3) for _ in range(30_000))
    assert set(counts) == {0, 1, 2}
    assert all(9_000 < c < 11_000 for c in counts.values())  # ~27 standard deviations either side
    with pytest.raises(ValueError):
        ids.randbelow(0)


def test_a_forked_child_does_not_repeat_its_parents_bytes() -> None:
    ids.token_bytes(1)  # the parent's pool holds bytes the child must not hand out again
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next token and leave without running pytest's teardown
        os.write(write, ids.token_urlsafe(18).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child = os.read(read, 100).decode()
    os.close(read)
    assert child != ids.token_urlsafe(18)
