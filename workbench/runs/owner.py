"""Which process owns a running run, and whether that process is still alive."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from functools import lru_cache

# A run owned by a process on another host is considered dead when its heartbeat is older than this.
DEFAULT_STALE_AFTER_S = 300.0


@dataclass(frozen=True)
class Owner:
    """Identity of a process: pid, host name and (on Linux) the kernel's start-time tick, which
    tells a live process apart from a later one that reused the same pid."""

    pid: int
    host: str
    start: str | None


@lru_cache(maxsize=1)
def _hostname() -> str:
    return socket.gethostname()


def process_start_token(pid: int) -> str | None:
    """The process start time as the kernel reports it (Linux only), or None when unknown."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            raw = fh.read().decode("ascii", "replace")
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    fields = raw[raw.rfind(")") + 2 :].split()
    return fields[19] if len(fields) > 19 else None


def current_owner() -> Owner:
    """The calling process as an Owner."""
    pid = os.getpid()
    return Owner(pid=pid, host=_hostname(), start=process_start_token(pid))


def pid_alive(pid: int) -> bool:
    """True when a process with this pid exists on this host."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    except OSError:
        return False
    return True


def owner_alive(
    pid: int | None,
    host: str | None,
    start: str | None,
    heartbeat_at: float | None,
    now: float,
    stale_after_s: float = DEFAULT_STALE_AFTER_S,
) -> bool:
    """Whether the recorded owner of a running run is still alive.

    Same host: the pid must exist and, when both are known, have the recorded start time.
    Another host: its heartbeat must be fresher than `stale_after_s`.
    """
    if pid is None or not host:
        return False
    if host == _hostname():
        if not pid_alive(pid):
            return False
        if start is not None:
            current = process_start_token(pid)
            if current is not None and current != start:
                return False
        return True
    return heartbeat_at is not None and now - heartbeat_at <= stale_after_s
