"""The services' reports as the interfaces show them: `--json` of collect, build, send and
status is one JSON object with the report's fields; the studio's messages for a build are
the CLI's lines for it (one presenter)."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pytest
import requests

from pipeline.core.config import load_config
from pipeline.interfaces import demo
from pipeline.interfaces.cli import main
from tests.studio_support import DAY, collected_day, serving


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
