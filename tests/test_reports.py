"""The services' reports as the interfaces show them: `--json` of collect, build, send and
status is one JSON object with the report's fields; the studio's messages for a build or a
send are the CLI's lines for it (one presenter); a send names each reader the server did not
take, in its report, its lines and its JSON."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

import pytest
import requests

from pipeline import services
from pipeline.core.config import Settings, load_config
from pipeline.core.errors import DigestError
from pipeline.deliver.dispatch import Failure
from pipeline.interfaces import demo, present
from pipeline.interfaces.cli import main
from tests.deliver_support import Sink, add_subscribers, build_issue, newsletter
from tests.studio_support import DAY, collected_day, login, serving


def digest(config: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[str, str]:
    """Run `digest --config CONFIG ARGS` in this process; its stdout and stderr."""
    with pytest.raises(SystemExit) as info:
        main(["--config", str(config), *args])
    out = capsys.readouterr()
    assert info.value.code == 0, out.err
    return out.out, out.err


def test_json_of_collect_build_send_and_status(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    feed = (demo.BUNDLE / "feed" / f"{DAY}.xml").read_bytes()
    server = demo.FeedServer(feed)
    with server.running(), demo.demo_secret():
        config = demo.prepare(tmp_path / "news", server.url)
        d = ("--date", DAY.isoformat())

        out, _ = digest(config, capsys, "collect", *d, "--json")
        collected = json.loads(out)
        assert collected["report"] == "collect" and collected["outcome"] == "collected"
        assert collected["day"] == DAY.isoformat()
        # the recorded feed: 26 items (22 new, 1 cross, 3 replace), 23 kept, 20 candidates
        assert (collected["announced"], collected["kept"], collected["candidates"]) == (26, 23, 20)
        assert dict(collected["by_type"]) == {"cross": 1, "new": 22, "replace": 3}
        assert sum(n for _tag, n in collected["matched"]) >= collected["candidates"]
        assert collected["warnings"] == []

        digest(config, capsys, "draft", *d)
        out, _ = digest(config, capsys, "build", *d, "--json")
        built = json.loads(out)
        assert built["report"] == "build" and built["entries"] == 10
        assert [name for name, _size in built["sizes"]] == ["ko", "en", "all"]
        assert all(size > 0 for _name, size in built["sizes"])
        assert built["record"]["state"] == "built"
        assert len(built["record"]["built_hash"]) == 64
        assert [Path(p).name for p in built["previews"]] == [
            "preview.ko.html", "preview.en.html", "preview.all.html"]
        assert all(Path(p).is_file() for p in built["previews"])

        digest(config, capsys, "subscribers", "import", str(tmp_path / "news" / "subscribers.csv"))
        out, err = digest(config, capsys, "send", *d, "--json")
        sent = json.loads(out)
        assert sent["report"] == "send" and sent["mode"] == "sent"
        assert (sent["sent"], sent["failed"], sent["deferred"]) == (3, 0, 0)
        assert sent["publish"]["published"] and sent["publish"]["changed"] > 0
        assert "published the issue" not in err  # --json: the report says it, not a line

        out, _ = digest(config, capsys, "status", *d, "--json")
        status = json.loads(out)
        # the outbox is a trial: published, written for 3 readers, sent to nobody
        assert sent["outbox"] is not None and Path(sent["outbox"]).name == DAY.isoformat()
        assert status["state"] == "published" and status["deliveries"] == {"sent": 3}
        assert status["built"]["hash"] == built["record"]["built_hash"]

        # switched to SMTP, the trial's files count for nothing: no delivery, 3 readers to go
        text = config.read_text(encoding="utf-8")
        assert 'transport = "outbox"' in text
        config.write_text(text.replace('transport = "outbox"', 'transport = "smtp"'),
                          encoding="utf-8")
        out, _ = digest(config, capsys, "status", *d, "--json")
        status = json.loads(out)
        assert (status["deliveries"], status["pending"]) == ({}, 3)


def test_the_studio_says_what_the_cli_says_for_a_build(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = collected_day(tmp_path / "news")
    assert settings.source is not None
    with serving(settings) as running:
        sess = requests.Session()
        assert sess.get(running.login_url).status_code == 200
        page = sess.get(running.url + "/").text
        form = {name: re.search(rf'name="{name}" value="([^"]*)"', page)[1]  # type: ignore[index]
                for name in ("csrf", "sha")}
        after = sess.post(running.url + "/build", data=form).text
    said = [html.unescape(m) for m in re.findall(r'class="msg msg-info"[^>]*>(.*?)</(?:li|p)>', after)]
    assert any(line.startswith(f"built the issue of {DAY} (") for line in said)

    capsys.readouterr()
    with demo.demo_secret():  # the same draft built again: the same build, the same report
        _, err = digest(settings.source, capsys, "build", "--date", DAY.isoformat())
    cli_lines = err.splitlines()
    assert [line for line in cli_lines if line.startswith("built the issue of ")] == [
        line for line in said if line.startswith("built the issue of ")]
    # Word for word but the count of site/ files the preview changed (none, the second time)
    def same(lines: list[str]) -> list[str]:
        return [re.sub(r"\(\d+ files will change", "(N files will change", line) for line in lines]

    assert same(cli_lines) == same(said)
    assert load_config(settings.source).approval.required


# --- a send: each reader the server did not take, named the same way everywhere ----------------

REFUSED = "550 5.1.1 No such user here"


@pytest.fixture
def sends(monkeypatch: pytest.MonkeyPatch) -> list[services.SendReport]:
    """Every report `services.send` returns (or raises with) meanwhile, as the interfaces
    got it."""
    got: list[services.SendReport] = []
    real = services.send

    def recording(*args: Any, **kwargs: Any) -> services.SendReport:
        try:
            report = real(*args, **kwargs)
        except DigestError as exc:
            if isinstance(exc.report, services.SendReport):
                got.append(exc.report)
            raise
        got.append(report)
        return report

    monkeypatch.setattr(services, "send", recording)
    return got


def refusing(root: Path, sink: Sink, port: int, **config: Any) -> tuple[Settings, str]:
    """An issue built in auto mode (the send publishes it first) for three readers, the
    second of whom the SMTP server refuses; the settings and that reader's address."""
    settings = newsletter(root, port=port, approval=False, **config)
    build_issue(settings, approve=False)
    readers = add_subscribers(settings, 3)
    sink.reject[readers[1].email] = REFUSED
    return settings, readers[1].email


@pytest.mark.usefixtures("env")
def test_a_send_names_the_refused_reader_and_the_cli_prints_the_presenters_lines(
    tmp_path: Path, server: tuple[Sink, int], capsys: pytest.CaptureFixture[str],
    sends: list[services.SendReport],
) -> None:
    settings, refused = refusing(tmp_path, *server)
    assert settings.source is not None
    _, err = digest(settings.source, capsys, "send", "--date", DAY.isoformat())
    [report] = sends
    assert (report.mode, report.sent, report.failed) == ("sent", 2, 1)
    assert report.failures == (Failure(refused, "failed", f"refused by the server: {REFUSED}"),)
    assert report.publish is not None and report.publish.published
    # The publishing said as it happened, then the rest: the presenter's lines, in its order.
    assert err.splitlines() == present.send_lines(report)
    assert f"failed: {refused}: refused by the server: {REFUSED}" in err.splitlines()


@pytest.mark.usefixtures("env")
def test_send_json_carries_the_refused_reader(
    tmp_path: Path, server: tuple[Sink, int], capsys: pytest.CaptureFixture[str]
) -> None:
    settings, refused = refusing(tmp_path, *server)
    assert settings.source is not None
    out, err = digest(settings.source, capsys, "send", "--date", DAY.isoformat(), "--json")
    sent = json.loads(out)
    assert (sent["report"], sent["sent"], sent["failed"]) == ("send", 2, 1)
    assert sent["failures"] == [{"recipient": refused, "status": "failed",
                                 "reason": f"refused by the server: {REFUSED}"}]
    assert sent["shortfall"] is None
    assert err == ""  # --json: the report says it all, no line besides


@pytest.mark.slow  # the server's 451 costs one real backoff (the CLI's own clock)
@pytest.mark.usefixtures("env")
def test_a_deferred_reader_is_named_and_the_cli_prints_the_totals_before_the_error(
    tmp_path: Path, server: tuple[Sink, int], capsys: pytest.CaptureFixture[str],
    sends: list[services.SendReport],
) -> None:
    sink, port = server
    settings, refused = refusing(tmp_path, sink, port, retries=1)
    late = next(r.email for r in add_subscribers(settings, 1, start=3))
    sink.defer[late] = 2  # 451 twice: more than the one retry
    assert settings.source is not None
    with pytest.raises(SystemExit) as info:
        main(["--config", str(settings.source), "send", "--date", DAY.isoformat()])
    err = capsys.readouterr().err.splitlines()
    [report] = sends
    assert info.value.code == 1
    assert (report.sent, report.failed, report.deferred) == (2, 1, 1)
    assert {(f.recipient, f.status) for f in report.failures} == {(refused, "failed"),
                                                                  (late, "deferred")}
    assert err[:-1] == present.send_lines(report)
    assert err[-1].startswith(f"digest: error: 1 messages of the issue of {DAY} were deferred")


@pytest.mark.usefixtures("env")
def test_the_studio_says_what_the_cli_says_for_a_send(
    tmp_path: Path, server: tuple[Sink, int], sends: list[services.SendReport]
) -> None:
    settings, refused = refusing(tmp_path / "news", *server)
    with serving(settings) as running:
        sess = login(running)
        page = sess.get(running.url + "/").text
        form = {name: re.search(rf'name="{name}" value="([^"]*)"', page)[1]  # type: ignore[index]
                for name in ("csrf", "sha")}
        after = sess.post(running.url + "/send", data={**form, "confirm": "1"}).text
    said = [html.unescape(m) for m in re.findall(r'class="msg msg-info"[^>]*>(.*?)</(?:li|p)>', after)]
    [report] = sends
    assert [f.recipient for f in report.failures] == [refused]
    assert said == present.send_lines(report)  # what `digest send` prints for this report
    assert any(refused in line for line in said)
