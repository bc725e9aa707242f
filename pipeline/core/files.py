"""Thin disk adapters: atomic writes, so a crash never leaves a half-written file."""

from __future__ import annotations

import os
import signal
import stat
import tempfile
from pathlib import Path

# Tests kill a real build or publish right after its Nth file write (or rename) to prove
# that no moment of it leaves a reader a mix of old and new files.
CRASH_AFTER_ENV = "DIGEST_TEST_CRASH_AFTER_WRITES"
_writes = 0


def crash_point() -> None:
    """Count one durable disk step; SIGKILL this process at step N of CRASH_AFTER_ENV."""
    global _writes
    limit = os.environ.get(CRASH_AFTER_ENV)
    if not limit:
        return
    _writes += 1
    if _writes >= int(limit):
        os.kill(os.getpid(), signal.SIGKILL)


def _file_mode(path: Path) -> int:
    """The mode `path` has, or the one a new file gets under the umask (mkstemp's is 0600)."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write `data` to `path` via a temp file in the same folder and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, _file_mode(path))
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    crash_point()


def write_if_changed(path: Path, data: str | bytes) -> bool:
    """Write atomically unless the file already holds exactly these bytes; True if written."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    try:
        if path.read_bytes() == raw:
            return False
    except FileNotFoundError:
        pass
    write_atomic(path, raw)
    return True
