"""Configuration: every key of DESIGN §6 read, unknown keys and bad values named."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from pipeline.core.config import find_config, load_config, parse_config
from pipeline.core.errors import ConfigError
from pipeline.interfaces.cli import main

REPO = Path(__file__).parent.parent


OWNED = {"from": '"Me <me@example.org>"', "base_url": '"https://digest.example.org"'}


def write_config(tmp_path: Path, text: str, owned: bool = True) -> Path:
    """config/digest.toml with `text`; `owned` adds what every config must say itself
    (newsletter.from and .base_url) where the text does not."""
    if owned:
        missing = "".join(f"{k} = {v}\n" for k, v in OWNED.items()
                          if not re.search(rf"^{k}\s*=", text, re.MULTILINE))
        if "[newsletter]\n" in text:
            text = text.replace("[newsletter]\n", "[newsletter]\n" + missing, 1)
        else:
            text = "[newsletter]\n" + missing + text
    path = tmp_path / "config" / "digest.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_example_config_loads_with_every_section() -> None:
    settings = load_config(REPO / "config" / "digest.toml")
    assert settings.newsletter.title == "ML Papers Digest"
    assert settings.newsletter.from_ == "ML Papers Digest <digest@example.org>"
    assert settings.arxiv.categories == ("cs.CL", "cs.LG", "cs.CV", "cs.AI")
    assert settings.variants == ("ko", "en", "all")
    rule = next(t for t in settings.tags if t.name == "reward-model")
    assert rule.keywords == ("reward model", "process reward")
    assert settings.smtp.security == "starttls"
    assert settings.schedule.collect == "30 10 * * 1-5"


def test_relative_paths_resolve_against_the_newsletter_directory(tmp_path: Path) -> None:
    path = write_config(tmp_path, '[paths]\ndata = "state"\nsite = "/srv/www"\n')
    settings = load_config(path)
    assert settings.root == tmp_path.resolve()
    assert settings.paths.data == tmp_path.resolve() / "state"
    assert settings.paths.site == Path("/srv/www")
    assert settings.db_path == tmp_path.resolve() / "state" / "digest.db"


def test_every_example_key_is_documented_with_a_comment() -> None:
    for line in (REPO / "config" / "digest.toml").read_text(encoding="utf-8").splitlines():
        if "=" in line and not line.lstrip().startswith("#") and not line.startswith("["):
            key = line.split("=")[0].strip()
            section_comment = key in ("host", "port", "categories", "keywords")
            assert "#" in line or section_comment, f"undocumented key: {line}"


@pytest.mark.parametrize(
    ("text", "key", "expected"),
    [
        ("[newsletter]\ntitel = 'x'\n", "newsletter.titel", "unknown key"),
        ("[newsleter]\n", "newsleter", "unknown section"),
        ("[draft]\nmax_candidates = 'forty'\n", "draft.max_candidates", "expected a whole number"),
        ("[approval]\nrequired = 'yes'\n", "approval.required", "expected true or false"),
        ("[arxiv]\ncategories = 'cs.CL'\n", "arxiv.categories", "expected a list of strings"),
        ("[delivery]\ntransport = 'pigeon'\n", "delivery.transport", "expected one of outbox, smtp"),
        ("[newsletter]\ntimezone = 'Mars/Base'\n", "newsletter.timezone", "unknown time zone"),
        ("[tags.x]\nkeyword = ['a']\n", "tags.x.keyword", "unknown key"),
        ("[tags.'bad tag']\n", "tags.bad tag", "letters, digits"),
        ("[arxiv]\napi_interval = 1\n", "arxiv.api_interval", "expected at least 3"),
        ("[arxiv]\nannounce_types = ['new', 'old']\n", "arxiv.announce_types", "unknown"),
        ("[newsletter\n", None, "not valid TOML"),
        ("[newsletter]\nlanguages = ['en', 'en']\n", "newsletter.languages", "'en' twice"),
        ('[newsletter]\ntitle = "Digest\\r\\nBcc: x@example.org"\n', "newsletter.title",
         "expected one line"),
        ('[arxiv]\ncategories = ["cs.CL\\n"]\n', "arxiv.categories", "expected one line"),
        ("[tags.VQ]\n[tags.vq]\n", "tags.vq", "the same tag as tags.VQ"),
        ("[newsletter]\nbase_url = 'https://x.org/a?b=1#top'\n", "newsletter.base_url",
         "expected an http(s) URL of the site's folder"),
        ("[newsletter]\nbase_url = 'https://'\n", "newsletter.base_url", "expected an http(s) URL"),
        ("[newsletter]\nsubject = '{{ name }} · {{ date'\n", "newsletter.subject",
         "not a valid Jinja2 template"),
        ("[newsletter]\nsubject = '{% if count %}{{ titel }}{% endif %}'\n", "newsletter.subject",
         "unknown variable 'titel' in the subject template (expected some of: name, date,"),
        ("[newsletter]\nsubject = 42\n", "newsletter.subject", "expected a string"),
        ("[newsletter]\nsubject = '{{ name.__class__.__mro__ }}'\n", "newsletter.subject",
         "the subject template fails: access to attribute '__class__'"),
        ("[newsletter]\nsubject = '{% include \"x\" %}'\n", "newsletter.subject",
         "the subject template fails"),
    ],
)
def test_bad_config_names_the_key(
    tmp_path: Path, text: str, key: str | None, expected: str
) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text, tmp_path / "digest.toml", tmp_path)
    assert info.value.key == key
    assert expected in str(info.value)
    if key:
        assert f": {key}: " in str(info.value)


def test_bad_config_on_the_command_line_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(tmp_path, "[smtp]\nport = '587'\n")
    with pytest.raises(SystemExit) as info:
        main(["--config", str(path), "collect", "--date", "2024-12-05"])
    err = capsys.readouterr().err
    assert info.value.code == 2
    assert err == f"digest: error: {path}: smtp.port: expected a whole number, got '587'\n"


def test_missing_config_file_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--config", str(tmp_path / "none.toml"), "draft"])
    err = capsys.readouterr().err
    assert info.value.code == 2 and "config file not found" in err and err.count("\n") == 1


def test_secrets_come_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = parse_config("", tmp_path / "d.toml", tmp_path)
    monkeypatch.delenv("DIGEST_SECRET", raising=False)
    with pytest.raises(ConfigError, match="DIGEST_SECRET is not set"):
        _ = settings.secret
    monkeypatch.setenv("DIGEST_SECRET", "s3cret-s3cret-s3cret")
    monkeypatch.setenv("DIGEST_SMTP_PASSWORD", "pw")
    assert settings.secret == b"s3cret-s3cret-s3cret" and settings.smtp_password == "pw"


@pytest.mark.parametrize("text", ["", "# nothing yet\n", "[newsletter]\ntitle = 'Mine'\n",
                                  "[delivery]\ntransport = 'outbox'\n"])
def test_an_empty_or_near_empty_config_is_refused(
    tmp_path: Path, text: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue #21: an empty digest.toml loaded as all defaults and "sent" to 3,000 readers."""
    path = write_config(tmp_path, text, owned=False)
    with pytest.raises(SystemExit) as info:
        main(["--config", str(path), "status"])
    err = capsys.readouterr().err
    assert info.value.code == 2 and err.count("\n") == 1
    assert "newsletter.from" in err and "digest init" in err


def test_the_config_is_found_without_config(tmp_path: Path) -> None:
    nested = write_config(tmp_path / "a", "")
    flat = tmp_path / "b" / "digest.toml"
    flat.parent.mkdir()
    flat.write_text(nested.read_text())
    assert find_config(None, {}, tmp_path / "a") == nested
    assert find_config(None, {}, tmp_path / "b") == flat
    assert find_config(None, {"DIGEST_CONFIG": str(flat)}, tmp_path / "a") == flat
    assert find_config(tmp_path / "x.toml", {"DIGEST_CONFIG": str(flat)}) == tmp_path / "x.toml"
    with pytest.raises(ConfigError, match="digest init"):
        find_config(None, {}, tmp_path)
    # DIR/digest.toml's newsletter is DIR; DIR/config/digest.toml's too
    assert load_config(flat).root == flat.parent.resolve()
    assert load_config(nested).root == (tmp_path / "a").resolve()


def test_init_makes_a_newsletter_that_the_commands_find(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "mine"
    with pytest.raises(SystemExit) as info:
        main(["init", str(folder), "--name", "Mine", "--from", "Me <me@example.org>",
              "--base-url", "https://mine.example.org", "--languages", "en",
              "--categories", "cs.CL,cs.LG", "--tag", "rm=reward model,process reward",
              "--timezone", "Europe/Berlin", "--collect", "0 9 * * 1-5",
              "--send", "0 17 * * 1-5", "--transport", "smtp"])
    assert info.value.code == 0, capsys.readouterr().err
    text = (folder / "config" / "digest.toml").read_text(encoding="utf-8")
    assert text.count("#") > 10  # commented
    monkeypatch.chdir(folder)
    monkeypatch.delenv("DIGEST_CONFIG", raising=False)
    settings = load_config(find_config(None))
    assert settings.root == folder.resolve()
    assert settings.newsletter.title == "Mine" and settings.variants == ("en",)
    assert settings.newsletter.timezone == "Europe/Berlin"
    assert [(t.name, t.keywords) for t in settings.tags] == [
        ("rm", ("reward model", "process reward"))]
    assert settings.delivery.transport == "smtp" and settings.transport_chosen
    assert (settings.schedule.collect, settings.schedule.send) == ("0 9 * * 1-5", "0 17 * * 1-5")
    assert (folder / "notes").is_dir() and (folder / "drafts").is_dir()
    # a second init changes nothing
    before = (folder / "config" / "digest.toml").read_bytes()
    with pytest.raises(SystemExit) as info:
        main(["init", str(folder), "--name", "Other", "--from", "O <o@example.org>",
              "--base-url", "https://o.example.org", "--tag", "x=y"])
    assert info.value.code == 2
    assert (folder / "config" / "digest.toml").read_bytes() == before
    assert os.listdir(folder / "config") == ["digest.toml"]
