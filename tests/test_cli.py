"""The command-line frame: help, exit codes, one-line errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.interfaces.cli import main

COMMANDS = ("check", "fmt", "collect", "draft", "build", "approve", "send", "status", "run",
            "schedule", "serve", "studio", "subscribers", "init", "rank", "bounces")


def test_help_lists_every_command_with_its_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    out = capsys.readouterr().out
    assert info.value.code == 0
    listed = {line.split()[0] for line in out.split("Commands:")[1].splitlines() if line.strip()}
    assert listed == set(COMMANDS)
    for line in out.split("Commands:")[1].splitlines():
        if line.strip():
            assert len(line.split()) > 1, f"command without help text: {line}"


def test_subscribers_help_lists_its_subcommands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["subscribers", "--help"])
    out = capsys.readouterr().out
    for name in ("add", "remove", "list", "import", "export"):
        assert f"  {name} " in out


def test_usage_error_is_one_line_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["collect", "--date", "yesterday"])
    err = capsys.readouterr().err
    assert info.value.code == 2
    assert err.count("\n") == 1 and "expected YYYY-MM-DD" in err


def test_unknown_command_is_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["frobnicate"])
    assert info.value.code == 2
    assert capsys.readouterr().err.startswith("digest: error: No such command")


def test_python_dash_m_pipeline_runs_the_cli(tmp_path: Path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text("not a digest", encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "pipeline", "check", str(bad)],
        capture_output=True, text=True, check=False,
    )
    assert result.returncode == 2
    assert result.stderr.startswith(f"digest: error: {bad}:1: expected a date line")
    assert "Traceback" not in result.stderr


def test_verbose_shows_the_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text("not a digest", encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "pipeline", "-v", "check", str(bad)],
        capture_output=True, text=True, check=False,
    )
    assert result.returncode != 0 and "Traceback" in result.stderr
