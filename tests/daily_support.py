"""Fake stages for the daily job: they change the real store as the real stages do, and
record every call, so tests can check the order and the skipping of steps."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from pipeline import services, store
from pipeline.core import lifecycle
from pipeline.core.calendar import announcement_for
from pipeline.core.config import Settings
from pipeline.core.errors import FeedError
from pipeline.core.files import write_atomic
from pipeline.core.models import EmailVariant, Issue
from pipeline.core.runtime import Runtime
from tests.support import write_newsletter


def make_settings(root: Path, *, approval: bool = False, **more: dict[str, Any]) -> Settings:
    """Settings for a newsletter in `root` (tests/support.py's write_newsletter); `more` adds
    tables or keys to one, e.g. `schedule={"collect": "30 10 * * 1-5"}`."""
    # (a newsletter's config names its sender: an empty config is refused)
    tables: dict[str, dict[str, Any]] = {"newsletter": {"from": "D <digest@example.org>"},
                                         "approval": {"required": approval}}
    for name, table in more.items():
        tables[name] = {**tables.get(name, {}), **table}
    return write_newsletter(root, **tables)


class Clock:
    """A settable wall clock for Runtime.now."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclass
class FakeArxiv:
    """The stages over a simulated arXiv: the feed holds the latest announcement out at the
    clock's time, and is empty on `holidays`. `fail` maps a step to how often it fails."""

    settings: Settings
    clock: Clock
    holidays: frozenset[date] = frozenset()
    fail: dict[str, int] = field(default_factory=dict)
    calls: list[tuple[str, date]] = field(default_factory=list)
    on_call: Callable[[str, date], None] | None = None

    def steps(self) -> services.Steps:
        return services.Steps(
            collect=self._step("collect", self._collect),
            draft=self._step("draft", self._draft),
            build=self._step("build", self._build),
            send=self._step("send", self._send),
        )

    def sent(self) -> list[date]:
        return [d for step, d in self.calls if step == "send"]

    def _step(
        self, name: str, body: Callable[[date], None]
    ) -> Callable[[Settings, date, Runtime], None]:
        def step(_settings: Settings, day: date, _rt: Runtime) -> None:
            self.calls.append((name, day))
            if self.on_call is not None:
                self.on_call(name, day)
            if self.fail.get(name, 0) > 0:
                self.fail[name] -= 1
                raise FeedError(f"{name} of {day}: connection reset", url="http://127.0.0.1/rss")
            body(day)

        return step

    def _collect(self, day: date) -> None:
        latest = announcement_for(self.clock())
        with closing(services.open_store(self.settings)) as conn, store.transaction(conn):
            if day in self.holidays and latest == day:
                store.save_day(conn, day, "empty", 0, 0)
                return
            if latest != day:
                raise FeedError(f"the feed holds the announcement of {latest}, not {day}")
            store.save_day(conn, day, "collected", 10, 3)
            if store.get_issue(conn, day) is None:
                store.set_issue_state(conn, day, "collected")

    def _draft(self, day: date) -> None:
        write_atomic(services.draft_path(self.settings, day), f"{day}\nentries\n")
        with closing(services.open_store(self.settings)) as conn, store.transaction(conn):
            row = store.get_issue(conn, day)
            if row is None or row.state == "collected":
                store.set_issue_state(conn, day, "drafted")

    def _build(self, day: date) -> None:
        sha = services.file_sha(services.draft_path(self.settings, day))
        assert sha is not None
        variants = [EmailVariant(v, f"digest {day}", f"<p>{day}</p>", f"{day}\n")
                    for v in self.settings.variants]
        issue = Issue(day, "digest", ())
        built = store.variants_hash(sha, variants)
        with closing(services.open_store(self.settings)) as conn:
            state = lifecycle.state_after_build(store.get_issue_record(conn, day), built)
            store.save_built_issue(conn, day, state, sha, built, variants,
                                   lifecycle.summarize_build(issue, variants), issue)

    def _send(self, day: date) -> None:
        with closing(services.open_store(self.settings)) as conn:
            services.approved_variants(conn, self.settings, day)  # refuses what the real send refuses
            with store.transaction(conn):
                store.set_issue_state(conn, day, "sent")
