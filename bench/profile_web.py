"""`python -m bench.profile_web OUT web --host H --port P`: a web process under cProfile.

uvicorn handles SIGTERM itself, then restores the previous handler and
raises the signal again; the handler installed here is that previous one,
so the profile is written on the way out.
"""

from __future__ import annotations

import cProfile
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
    profile.enable()
    main(argv)
    dump()


if __name__ == "__main__":
    run(sys.argv[1], sys.argv[2:])
