"""The gate: put the waiting room in front of any ASGI app with one wrapper.

    app = AdmissionGate(app, waiting_room_url=..., guard={"/checkout": "spring-sale"}, secret=...)

It depends on nothing of the waiting room's server side (no Redis, no
Starlette): only the pure core, an HTTP client and PyJWT, so it runs inside
someone else's process.
"""

from waiting_room.gate.guard import Guard
from waiting_room.gate.middleware import AdmissionGate

__all__ = ["AdmissionGate", "Guard"]
