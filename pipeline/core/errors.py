"""One exception hierarchy; every error carries where it happened and becomes one CLI line."""

from __future__ import annotations

from pathlib import Path


class DigestError(Exception):
    """Base of every error the pipeline reports; exit code 1 (a failed run)."""

    exit_code = 1

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        line: int | None = None,
        url: str | None = None,
        key: str | None = None,
        report: object | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.path = str(path) if path is not None else None
        self.line = line
        self.url = url
        self.key = key
        # What the step did before it failed (a service's report): the interface lists it
        # before the error's one line (a send's totals before "... were deferred").
        self.report = report

    def __str__(self) -> str:
        where = ""
        if self.path is not None:
            where = self.path if self.line is None else f"{self.path}:{self.line}"
        elif self.url is not None:
            where = self.url
        if self.key is not None:
            where = f"{where}: {self.key}" if where else self.key
        return f"{where}: {self.message}" if where else self.message


class InputError(DigestError):
    """Bad input or usage: a file, a flag or a value the user can fix; exit code 2."""

    exit_code = 2


class FormatError(InputError):
    """A digest or note file that does not follow the format."""


class ConfigError(InputError):
    """A configuration file with an unknown key, a wrong type or a bad value."""


class FetchError(DigestError):
    """The network failed us after the retries: timeouts, HTTP errors, resets."""


class FeedError(DigestError):
    """arXiv answered, but not with a usable announcement (error feed, stale, unparsable)."""


class StoreError(DigestError):
    """The SQLite store failed: missing, read-only, full, locked, corrupt or from a newer
    version (always naming the database file)."""


class ApprovalError(DigestError):
    """An issue that is not approved, or changed since it was approved."""


class DeliveryError(DigestError):
    """Sending failed as a whole (login refused, server unreachable)."""


class LockedError(DigestError):
    """Another process holds the lock for this work."""



class RankError(DigestError):
    """The learned ranking cannot be used: a model file that is corrupt, foreign or of another
    format version (callers fall back to the tag rules' order)."""
