"""The worker agent's wire protocol, shared by the agent and the daemon (stdlib only).

One JSON object per line over a unix stream socket in a folder bind-mounted into the container.
Requests: ``{"op": "ping", "fence"?}`` and ``{"op": "generate", "job_id", "seed", "options",
"token"?}``. ``fence`` and ``token`` are the owning daemon's fencing token (an int): the agent
remembers the newest it was shown and refuses a job whose ``token`` is older (``error`` with
a message starting ``fenced``), so a daemon that lost the container cannot use it.
A generate request is answered with ``accepted`` at once (that is the handoff), then any number
of ``progress`` events, then exactly one ``done`` or ``error``.
"""

from __future__ import annotations

import json
import re
from typing import Any

# Where the per-container folder is mounted inside the worker; the daemon sees it on the host.
MOUNT_POINT = "/run/vwe"
SOCKET_NAME = "agent.sock"
# Each job's artifacts go to out/<job_id>/ inside the mounted folder.
OUT_DIR_NAME = "out"

OP_PING = "ping"
OP_GENERATE = "generate"

EVENT_READY = "ready"
EVENT_ACCEPTED = "accepted"
EVENT_PROGRESS = "progress"
EVENT_DONE = "done"
EVENT_ERROR = "error"
# The start of an `error` message for a job refused for an old fencing token.
FENCED_PREFIX = "fenced"

# Job ids travel into a path inside the container, so only this shape is accepted.
JOB_ID_RE = re.compile(r"^[0-9a-f]{8,64}$")
MAX_LINE = 64 * 1024


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode() + b"\n"


def decode(line: bytes) -> dict[str, Any]:
    message = json.loads(line)
    if not isinstance(message, dict):
        raise ValueError("a protocol message must be a JSON object")
    return message
