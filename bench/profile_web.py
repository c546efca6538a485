"""`python -m bench.profile_web OUT web --host H --port P`: a web process under cProfile.

uvicorn handles SIGTERM itself, then restores the previous handler and
raises the signal again; the handler installed here is that previous one,
so the profile is written on the way out.

With BENCH_PROFILE_WINDOW=1 in its environment it profiles only a window:
from SIGUSR1 to SIGUSR2 (the steady state, without start-up and connects).
"""

from __future__ import annotations

import cProfile
import os
import signal
import sys
from typing import NoReturn

from waiting_room.cli import main


def run(out: str, argv: list[str]) -> NoReturn:
    profile = cProfile.Profile()

    def dump(*_: object) -> NoReturn:
        profile.disable()
        profile.dump_stats(out)
        sys.exit(0)

    signal.signal(signal.SIGTERM, dump)
    if os.environ.get("BENCH_PROFILE_WINDOW") == "1":
        signal.signal(signal.SIGUSR1, lambda *_: profile.enable())
        signal.signal(signal.SIGUSR2, lambda *_: profile.disable())
    else:
        profile.enable()
    main(argv)
    dump()


if __name__ == "__main__":
    run(sys.argv[1], sys.argv[2:])
