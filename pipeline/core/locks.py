"""Single-instance locks: one `digest run` and one `digest schedule` per newsletter at a time."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import filelock

from pipeline.core.errors import LockedError


@contextmanager
def hold_lock(path: Path, holder: str, *, busy: str | None = None) -> Iterator[None]:
    """Hold the lock file at `path`, or raise LockedError at once: the `busy` message, or
    one naming the lock file and who holds it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = filelock.FileLock(path)
    try:
        lock.acquire(timeout=0)
    except filelock.Timeout:
        if busy is not None:
            raise LockedError(busy) from None
        raise LockedError(f"{holder} holds this lock; wait for it or stop it", path=path) from None
    try:
        yield
    finally:
        lock.release()
