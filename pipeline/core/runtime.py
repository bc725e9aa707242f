"""The adapters every stage may need (clock, sleep, HTTP, output), passed in, never patched."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import requests

from pipeline import __version__


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _echo(message: str) -> None:
    print(message, file=sys.stderr)


def user_agent(contact: str) -> str:
    """The User-Agent arXiv asks for: the project, its version and a contact address."""
    return f"arxiv-digest/{__version__} (mailto:{contact})"


@dataclass(frozen=True)
class Runtime:
    """Side-effecting adapters; tests pass fakes (an instant sleep, a fixed clock)."""

    now: Callable[[], datetime] = _utcnow  # timezone-aware
    sleep: Callable[[float], None] = time.sleep
    monotonic: Callable[[], float] = time.monotonic
    echo: Callable[[str], None] = _echo  # live notices (a retry), to stderr; reports are returned
    http: requests.Session = field(default_factory=requests.Session)
    verbose: bool = False
    progress: bool = False  # draw progress bars (a terminal is attached)
