"""`digest init`: a new newsletter folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from pipeline.core.errors import InputError
from pipeline.interfaces.cli.base import cli


def _new_folder(_ctx: Any, _param: Any, folder: Path) -> Path:
    """`digest init`'s folder, refused before any question when it holds a config."""
    folder = folder.expanduser()
    if (folder / "config" / "digest.toml").exists():
        raise InputError(f"{folder / 'config' / 'digest.toml'} already exists: nothing was changed")
    return folder


@cli.command()
@click.argument("folder", type=click.Path(path_type=Path), callback=_new_folder, is_eager=True)
@click.option("--name", prompt="Newsletter name", help="The newsletter's name.")
@click.option("--from", "sender", prompt="Sender (Name <address>)", help="The From: header.")
@click.option("--base-url", prompt="Base URL of the published site", help="Where site/ lives.")
@click.option("--languages", default="ko,en", show_default=True, prompt="Languages (ko, en)",
              help="Commentary languages, comma-separated; the first is the site's.")
@click.option("--categories", default="cs.CL,cs.LG", show_default=True,
              prompt="arXiv categories", help="Comma-separated arXiv categories.")
@click.option("--tag", "tags", multiple=True, metavar="NAME=KEYWORD,KEYWORD",
              help="A tag and its keywords (repeat for more; asked when none is given).")
@click.option("--timezone", default="Asia/Seoul", show_default=True, prompt="Time zone")
@click.option("--collect", default="30 10 * * 1-5", show_default=True,
              prompt="When to collect (cron)")
@click.option("--send", default="0 18 * * 1-5", show_default=True, prompt="When to send (cron)")
@click.option("--transport", type=click.Choice(["smtp", "outbox"]), default="smtp",
              show_default=True, prompt="Transport",
              help='"smtp" mails readers; "outbox" only writes files (a demo).')
@click.option("--smtp-host", default="localhost", show_default=True)
@click.option("--smtp-port", default=587, show_default=True, type=int)
@click.option("--smtp-username", default="", help="Password: env DIGEST_SMTP_PASSWORD.")
@click.option("--arxiv-url", "rss_url", default=None, hidden=True,
              help="The arXiv RSS URL template (tests: a local server).")
@click.option("--arxiv-api-url", "api_url", default=None, hidden=True)
def init(folder: Path, name: str, sender: str, base_url: str, languages: str,
         categories: str, tags: tuple[str, ...], timezone: str, collect: str, send: str,
         transport: str, smtp_host: str, smtp_port: int, smtp_username: str,
         rss_url: str | None, api_url: str | None) -> None:
    """Make a new newsletter folder: FOLDER/config/digest.toml (commented), notes/, drafts/.

    Asks for what it is not given as flags. Run the other commands inside FOLDER (or set
    DIGEST_CONFIG=FOLDER/config/digest.toml) and they find the config without --config."""
    from pipeline.core import config as cfg
    from pipeline.core import config_init
    from pipeline.core.files import write_atomic

    path = folder / "config" / "digest.toml"
    if not tags:
        tags = (click.prompt("A tag and its keywords (NAME=KEYWORD,KEYWORD)",
                             default="reward-model=reward model,process reward"),)
    rules = []
    for spec in tags:
        key, _, words = spec.partition("=")
        keywords = tuple(w.strip() for w in words.split(",") if w.strip())
        if not key.strip() or not keywords:
            raise InputError(f"--tag {spec!r}: expected NAME=KEYWORD,KEYWORD")
        rules.append((key.strip().lstrip("#"), keywords))
    defaults = cfg.ArxivSettings()
    answers = config_init.InitAnswers(
        name=name, sender=sender, base_url=base_url,
        languages=tuple(v.strip() for v in languages.split(",") if v.strip()),
        categories=tuple(v.strip() for v in categories.split(",") if v.strip()),
        tags=tuple(rules), timezone=timezone, collect=collect, send=send,
        transport=transport, smtp_host=smtp_host, smtp_port=smtp_port,
        smtp_username=smtp_username, rss_url=rss_url or defaults.rss_url,
        api_url=api_url or defaults.api_url,
    )
    text = config_init.init_config_text(answers)
    cfg.parse_config(text, path, folder)  # a bad answer is reported before anything is written
    for sub in ("config", "notes", "drafts"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    write_atomic(path, text)
    click.echo(f"wrote {path}")
    click.echo(f"next: cd {folder}, set DIGEST_SECRET, add yourself with "
               "`digest subscribers add ADDRESS`, then `digest run`")
