"""The README's "Your own newsletter" steps, run as written (issue #21): the code block is
taken from README.md and run by bash and by zsh in a fresh HOME, against a loopback arXiv
(the bundled demo feed, dated to the latest announcement) and a loopback SMTP server.

What the test must change, and only that: `digest init` gets three more flags (click takes
an option's last value), pointing arXiv and SMTP at the loopback servers; `digest studio`
runs for a few seconds (it serves until stopped) and must print its URL; the curator's
picks are stood in for by one of the demo's real notes, put in notes/ before `digest run`
(the draft holds the papers the curator has notes for); and the curator's Approve in the
studio is stood in for by `digest approve --allow-uncommented` before the last line.
Everything else is the README's text, in the README's order.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, time
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest

from pipeline.core.bundle import bundled
from pipeline.core.calendar import EASTERN, announcement_for
from pipeline.interfaces.demo import FeedServer
from tests.arxiv_support import rewrite_feed
from tests.deliver_support import PASSWORD, USER, Sink, make_cert, smtp_server

REPO = Path(__file__).parent.parent
HANGUL = re.compile(r"[가-힣]")


def readme_block() -> str:
    """The first sh block under the README's "## Your own newsletter"."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("## Your own newsletter", 1)[1]
    match = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert match is not None, "no sh block under 'Your own newsletter'"
    return match.group(1)


def commands(block: str) -> list[str]:
    """The block's commands, continuation lines joined, comments kept (the shell reads them)."""
    return block.replace("\\\n", " ").splitlines()


# A real note about a paper of the demo feed (2412.01981, which the README's tag matches).
NOTE = bundled("demo_data") / "notes" / "2412" / "241202 Free Process Rewards without Process Labels.md"


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[tuple[str, Sink, int, Path]]:
    day = announcement_for(datetime.now(UTC))
    feed = (bundled("demo_data") / "feed" / "2024-12-05.xml").read_bytes()
    # arXiv dates a feed at midnight US Eastern of the announcement's day
    stamp = format_datetime(datetime.combine(day, time(), tzinfo=EASTERN))

    def redate(item: Any) -> None:
        item.find("pubDate").text = stamp

    feed = rewrite_feed(feed, pub_date=stamp, edit=redate)
    (tmp_path / "tls").mkdir()
    cert, key = make_cert(tmp_path / "tls")
    with FeedServer(feed).running() as arxiv, smtp_server(cert, key) as (sink, port):
        yield arxiv.url, sink, port, cert


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_the_readmes_own_newsletter_steps_work_as_written(
    tmp_path: Path, servers: tuple[str, Sink, int, Path], shell: str
) -> None:
    path = shutil.which(shell)
    if path is None:
        if os.environ.get("DIGEST_REQUIRE_BROWSER"):
            pytest.fail(f"DIGEST_REQUIRE_BROWSER is set but {shell} is not installed")
        pytest.skip(f"{shell} is not installed (apt-get install {shell})")
    arxiv, sink, port, cert = servers
    lines = []
    for line in commands(readme_block()):
        words = line.split("#", 1)[0].split()
        if words[:2] == ["digest", "init"]:
            line = (line.split(" #", 1)[0] + f" --arxiv-url '{arxiv}/rss/{{categories}}'"
                    f" --arxiv-api-url '{arxiv}/api/query'"
                    f" --smtp-host 127.0.0.1 --smtp-port {port} --smtp-username {USER}")
        elif words[:2] == ["digest", "run"]:
            lines.append(f"mkdir -p notes && cp '{NOTE}' notes/")
        elif words[:2] == ["digest", "studio"]:
            line = "timeout 6 digest studio > studio.out 2>&1 || true"
        elif words[:2] == ["digest", "send"]:
            lines.append("digest approve --allow-uncommented")
        lines.append(line)
    script = "set -e\n" + "\n".join(lines) + "\n"
    home = tmp_path / "home"
    home.mkdir()
    env = {
        "HOME": str(home), "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        "LANG": "C.UTF-8", "DIGEST_SMTP_PASSWORD": PASSWORD, "SSL_CERT_FILE": str(cert),
    }
    done = subprocess.run([path, "-c", script], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, (done.stdout[-3000:], done.stderr[-3000:])
    folder = home / "digest"
    assert (folder / "config" / "digest.toml").is_file()
    studio = (folder / "studio.out").read_text()
    assert "http://127.0.0.1:" in studio, studio
    # the reader got the issue, once, in the language they chose
    assert [m.recipients for m in sink.messages] == [["you@example.org"]]
    message = sink.messages[0].parsed()
    body = message.get_body(("plain",))
    assert body is not None and HANGUL.search(body.get_content())
    assert "sent 1" in done.stdout + done.stderr
