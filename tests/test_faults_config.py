"""Issue #22, configuration faults: from addresses, secrets, empty tags, subject templates
and tag lengths are refused when loaded, in one line, before anything is stored."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from pipeline.core.config import load_config
from pipeline.core.digest_format import parse_digest
from pipeline.core.errors import FormatError
from pipeline.deliver.mail import MessageBuilder
from tests.deliver_support import DAY, make_variants
from tests.test_edge_values import _with, digest, one_line


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ('"ML Digest"', ["newsletter.from", "expected an address"]),
        ('"Digest <dïgest@example.org>"', ["newsletter.from", "SMTPUTF8", "smtp.smtputf8"]),
        ('"Digest <digest@exa_mple..org>"', ["newsletter.from", "not a valid address"]),
    ],
)
def test_a_from_without_a_usable_address_is_refused(tmp_path: Path, value: str,
                                                   words: list[str]) -> None:
    one_line(digest(_with(tmp_path, f"newsletter.from = {value}"), "subscribers", "list"),
             *words)


def test_a_non_ascii_name_before_the_at_loads_with_smtputf8(tmp_path: Path) -> None:
    config = _with(tmp_path, 'newsletter.from = "Digest <dïgest@example.org>"\n'
                             "smtp.smtputf8 = true")
    assert load_config(config).newsletter.from_ == "Digest <dïgest@example.org>"


def test_an_idn_from_domain_is_idna_encoded_and_a_message_builds(tmp_path: Path) -> None:
    settings = load_config(_with(tmp_path, 'newsletter.from = "다이제스트 <digest@exämple.org>"'))
    assert settings.newsletter.from_.endswith("<digest@xn--exmple-cua.org>")
    builder = MessageBuilder(settings, DAY, make_variants())
    out = builder.build("ko", "reader@example.org", "https://x/unsubscribe/t", "mailto:u@x",
                        datetime(2024, 12, 5, tzinfo=UTC))
    assert out.sender == "digest@xn--exmple-cua.org"
    assert b"xn--exmple-cua.org" in out.data
    out.data.decode("ascii")  # every header went out in ASCII


@pytest.mark.parametrize("secret", ["", "   ", "abc"])
@pytest.mark.parametrize("command", [["approve"], ["run"], ["schedule"], ["send"]])
def test_commands_that_lead_to_a_send_refuse_a_weak_secret(
    tmp_path: Path, secret: str, command: list[str]
) -> None:
    config = _with(tmp_path, 'approval.required = false')
    dated = [] if command == ["schedule"] else ["--date", DAY.isoformat()]
    one_line(digest(config, *command, *dated, secret=secret), "DIGEST_SECRET")
    assert not (tmp_path / "site").exists()  # nothing published before the refusal


def test_status_warns_of_a_weak_secret(tmp_path: Path) -> None:
    done = digest(_with(tmp_path, 'approval.required = true'), "status", "--date",
                  DAY.isoformat(), secret="abc")
    assert done.returncode == 0, done.stderr
    assert "warning" in done.stderr and "DIGEST_SECRET is too short" in done.stderr


@pytest.mark.parametrize(
    ("toml", "words"),
    [
        ("[tags]\n", ["tags", "expected at least one [tags.<name>] table"]),
        ("[tags.llm]\n", ["tags.llm", "at least one of categories, keywords or authors"]),
        ('[tags.llm]\nexclude = ["survey"]\n', ["tags.llm", "matches nothing"]),
        (f"[tags.{'a' * 300}]\nkeywords = ['x']\n", ["at most 60 characters"]),
    ],
)
def test_empty_tags_and_long_tag_names_are_refused(tmp_path: Path, toml: str,
                                                   words: list[str]) -> None:
    config = tmp_path / "config" / "digest.toml"
    config.parent.mkdir(parents=True)
    config.write_text(toml, encoding="utf-8")
    one_line(digest(config, "subscribers", "list"), *words)


def test_a_300_character_tag_in_a_digest_fails_check_not_build(tmp_path: Path) -> None:
    text = ("2024-12-05\nA title\n(An Author)\nAn abstract.\n#" + "t" * 300 + "\n")
    with pytest.raises(FormatError, match="expected at most 60"):
        parse_digest(text, tmp_path / "d.txt")
    path = tmp_path / "d.txt"
    path.write_text(text, encoding="utf-8")
    done = digest(_with(tmp_path, 'approval.required = true'), "check", str(path))
    assert done.returncode == 2 and "at most 60" in done.stderr


@pytest.mark.parametrize(
    "template",
    ['{{ "x" * 300000000 }}', "{{ 10 ** 10 ** 10 }}", "{{ name|center(300000000) }}",
     '{{ name|replace("M", "MMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMM") }}' * 3,
     "{{ name }}" * 200],
)
def test_a_subject_template_that_would_build_a_huge_value_is_refused_fast(
    tmp_path: Path, template: str
) -> None:
    done = digest(_with(tmp_path, f"newsletter.subject = '{template}'"), "subscribers", "list")
    one_line(done, "newsletter.subject")
