"""What the benchmarks that run ``labelwise serve`` share (crash.py, load.py).

A free port, this environment's ``labelwise`` command, and the environment a
server subprocess gets. The scripts run as ``python bench/NAME.py``, which
puts ``bench/`` first on ``sys.path``, so they import this module as
``from _serve import free_port``; the tests that import them put ``bench/`` on
the path too (``tests/service/reliability/conftest.py``).
"""

from __future__ import annotations

import os
import secrets
import socket
import sys
from pathlib import Path

__all__ = ["free_port", "labelwise_exe", "server_env"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def labelwise_exe() -> list[str]:
    """The command that runs this environment's ``labelwise`` (an argv prefix).

    The script beside this interpreter, or this interpreter running the CLI,
    never another environment's ``labelwise`` found on ``PATH``.
    """
    beside = Path(sys.executable).with_name("labelwise")
    if beside.exists():
        return [str(beside)]
    return [sys.executable, "-c", "from labelwise.cli import main; main()"]


def server_env(**settings: str) -> dict[str, str]:
    """This process's environment for a labelwise subprocess: a fresh real secret
    (so no dev mode), no other inherited ``LABELWISE_*`` variable, then
    ``settings`` (e.g. ``LABELWISE_LEASE_TTL_SECONDS="30"``).
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABELWISE_")}
    env["LABELWISE_SECRET_KEY"] = secrets.token_urlsafe(32)
    env.update(settings)
    return env
