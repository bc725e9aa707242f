"""`pip install .` (a wheel, not editable) gives a `digest` that works with no checkout around:
the wheel is built from a copy of the project, installed into a fresh virtual environment
(offline: its dependencies come from this test environment through a .pth file, never the
source tree), and the installed `digest` collects, drafts, builds and sends a newsletter."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DAY = "2024-12-05"

pytestmark = pytest.mark.slow  # subprocesses: a wheel build and install

# what the wheel is built from: the files pyproject.toml names, nothing else of the checkout
SOURCES = ("pyproject.toml", "README.md", "pipeline", "templates", "demo")

# Run by the new environment's Python: serves the demo feed on loopback (as `make demo`
# does) while the installed `digest` script runs each step of a day in its own process.
DRIVER = f"""
import subprocess, sys
from pathlib import Path
from pipeline.interfaces import demo

target, digest = Path(sys.argv[1]), sys.argv[2]
server = demo.FeedServer((demo.BUNDLE / "feed" / "{DAY}.xml").read_bytes())
with server.running():
    config = demo.prepare(target, server.url)
    steps = [["subscribers", "import", str(target / "subscribers.csv")],
             ["collect"], ["draft"], ["build"], ["approve"], ["send"]]
    for step in steps:
        args = step if step[0] == "subscribers" else [*step, "--date", "{DAY}"]
        subprocess.run([digest, "--config", str(config), *args], check=True)
"""


def _files(folder: Path) -> set[str]:
    return {
        p.relative_to(folder).as_posix() for p in folder.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    }


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's wheel, built offline with this environment's setuptools."""
    src = tmp_path_factory.mktemp("src")
    for name in SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, src / name,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(REPO / name, src / name)
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--no-index", "--quiet", "--wheel-dir", str(out), str(src)],
        check=True, capture_output=True,
    )
    (built,) = out.glob("arxiv_digest-*.whl")
    return built


def test_the_wheel_carries_every_template_and_the_demo_bundle(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for package, folder in (("templates", "templates"), ("demo_data", "demo")):
        shipped = {n.split(f"pipeline/{package}/", 1)[1] for n in names
                   if n.startswith(f"pipeline/{package}/")}
        assert shipped == _files(REPO / folder), folder  # subfolders (themes) included
    assert not [n for n in names if n.startswith(("tests/", "templates/", "demo/"))]


def test_installed_wheel_collects_builds_and_sends(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()
    # the dependencies (feedparser, jinja2, ...) come from this environment; its editable
    # install of the project is a .pth file, which a path listed in a .pth does not run
    (Path(site) / "test-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
         "--no-index", "--quiet", str(wheel)],
        check=True, capture_output=True,
    )
    work = tmp_path / "elsewhere"  # no checkout on the path: the cwd holds nothing of it
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["DIGEST_SECRET"] = "package-test-secret-0123456789"
    where = subprocess.run(
        [str(python), "-c", "import pipeline, pipeline.publish.render as r, pipeline.interfaces.demo as d;"
         " print(pipeline.__file__); print(r.BUNDLED_TEMPLATES); print(d.BUNDLE)"],
        check=True, capture_output=True, text=True, cwd=work, env=env,
    ).stdout.split()
    assert all(Path(p).is_relative_to(venv) for p in where), where
    assert not any(Path(p).is_relative_to(REPO) for p in where)

    target = work / "newsletter"
    driver = work / "driver.py"
    driver.write_text(DRIVER)
    done = subprocess.run([str(python), str(driver), str(target), str(venv / "bin" / "digest")],
                          capture_output=True, text=True, cwd=work, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"issue {DAY}: sent 3, failed 0, skipped 0" in done.stderr
    outbox = target / "outbox" / DAY
    readers = sorted(p.name for p in outbox.glob("*.eml") if not p.name.startswith("preview."))
    assert len(readers) == 3
    page = (target / "site" / "issues" / f"{DAY}.html").read_text("utf-8")
    assert "<style" in page and "ML Papers Digest (demo)" in page  # the bundled templates
    assert (target / "site" / "index.html").is_file()
