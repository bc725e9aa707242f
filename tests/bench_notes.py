"""Reading a whole notes archive: `digest check` over 4,000 notes in one process, the startup
of `digest check` on one note, its import time, and LaTeX→text on 1 MB and 5 MB abstracts
(figures, not asserts)."""

from __future__ import annotations

import os
import random
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from pipeline.core.latex import latex_to_text
from tests.support import FIXTURES

N_NOTES = 4_000
_ID_RE = re.compile(r"arxiv\.org/abs/\d{4}\.\d{4,5}")


# The shapes issue #23 found in the curator's archive (constructed, as the tests hold them):
# every 8th generated note is one of these, so the reader's guessing is in the figure too.
_ODD_SHAPES = {
    "second title": "https://arxiv.org/abs/2005.04318\n\n*Big Models* (Ann Lee, Bo Kim)\n"
                    "Big Models Again (Ann Lee, Bo Kim)\n\n한국어 코멘트.\n#ssl\n",
    "id line": "https://arxiv.org/abs/2005.04318\n| 2005.04318\n*Big* (Ann Lee)\n\n한국어.\n",
    "korean paragraph": "https://arxiv.org/abs/2005.04318\n\n*T* (Ann Lee)\n\n트릭:\n"
                        "1. label smoothing\nx_t = C_t x_0 + s_t n_t\n\nTricks.\n#x\n",
    "several papers": "SpanBERT https://arxiv.org/abs/1907.10529\nALBERT "
                      "https://arxiv.org/abs/1909.11942\n\n프리트레이닝.\n#pretraining\n",
    "bare title": "https://example.org/blog/post\n\nIntroducing Foo\n\n새 모델.\n#llm\n",
    "unclosed": "https://arxiv.org/abs/2005.04318\n\nDeep Stuff (Ann Lee, Bo Kim\n\n한국어.\n",
    "typos": "zhttps://arxiv.org/abs/2005.04318\n\n*T* (Ann Lee)\n\nlet> We present a model."
             "\n\n좋은 모델. #llm #moe 나중에 읽기\n<enligsh>\nGood.\n</enligsh>\n",
}


def _archive(folder: Path, n: int) -> None:
    """`n` notes in year folders: the real notes of every shape and the odd shapes above,
    each copy with its own id."""
    sources = sorted((FIXTURES / "notes").rglob("*.md"))
    named = [(p.stem[7:], p.read_text(encoding="utf-8")) for p in sources]
    odd = sorted(_ODD_SHAPES.items())
    for i in range(n):
        name, text = odd[i // 8 % len(odd)] if i % 8 == 7 else named[i % len(named)]
        text = _ID_RE.sub(f"arxiv.org/abs/{2000 + i % 600:04d}.{10000 + i:05d}", text, 1)
        year = folder / f"20{19 + i % 7}"
        year.mkdir(exist_ok=True)
        (year / f"{i:05d} {name}.md").write_text(text, encoding="utf-8")


def _run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> tuple[float, float]:
    """Wall-clock and CPU seconds (user + system) of one child process: CPU time is the
    figure to compare on a shared machine, where the wall clock waits for other work."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env=env, check=False, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _median_run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None,
                runs: int = 5) -> tuple[float, float]:
    _run(cmd, cwd, env)  # warm: the bytecode cache is written, the files are in memory
    walls, cpus = zip(*(_run(cmd, cwd, env) for _ in range(runs)), strict=True)
    return statistics.median(walls), statistics.median(cpus)


def _bytecode_env(cache: Path) -> dict[str, str]:
    """The environment of an installed command: compiled modules cached (in `cache`, so the
    source tree stays clean), even where PYTHONDONTWRITEBYTECODE is set for the tests."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(cache)
    return env


def _import_ms(note: Path, cwd: Path, env: dict[str, str]) -> tuple[float, list[str]]:
    """Total import time of `digest check NOTE` (-X importtime), and the biggest imports."""
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "pipeline", "check",
                           str(note)], cwd=cwd, env=env, capture_output=True, text=True,
                          check=False)
    rows = []
    for line in proc.stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
        if m and len(m.group(3)) == 1:  # top-level imports: their cumulative time
            rows.append((int(m.group(2)), m.group(4)))
    rows.sort(reverse=True)
    return sum(us for us, _ in rows) / 1e3, [f"{name} {us / 1e3:.0f} ms" for us, name in rows[:4]]


def _dense_latex(size: int, seed: int) -> str:
    """An abstract dense with LaTeX, every island different (no cache helps)."""
    rnd = random.Random(seed)
    words = ["model", "data", "training", "language", "scaling", "transformer", "token",
             "attention", "vision"]

    def w() -> str:
        return f"{rnd.choice(words)}{rnd.randrange(100_000)}"

    makers = [
        lambda: f"$\\mathcal{{O}}(n^{rnd.randrange(9)})$", lambda: f"\\textbf{{{w()} {w()}}}",
        lambda: f"\\citet{{{w()}}}", lambda: f"at ${rnd.randrange(100)}\\%$ of",
        lambda: f"\\texttt{{{w()}}}", lambda: f"{{\\em {w()}}}", lambda: f"``{w()}''",
        lambda: f"run\\unicode{{x2014}}{w()}", lambda: f"{w()} and {w()} here",
        lambda: f"$\\alpha_{{{rnd.randrange(9)}}} + \\beta^{{{w()}}}$",
        lambda: f"\\footnote{{see {w()} at \\url{{https://x.org/{w()}}}}}",
        lambda: f"$\\mathtt{{{w()}}}$", lambda: f"a -- b ~{rnd.randrange(99)}x",
        lambda: f"Schr\\\"odinger {w()}", lambda: f"$\\frac{{{w()}}}{{{rnd.randrange(9)}}}$",
        lambda: f"\\textit{{\\'a la}} {w()}", lambda: f"$\\left( {w()} \\right)$",
    ]
    out: list[str] = []
    total = 0
    while total < size:
        part = rnd.choice(makers)()
        out.append(part)
        total += len(part) + 1
    return " ".join(out)


def main() -> None:
    """Print notes/s through one `digest check`, its startup and imports, and LaTeX speed."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        archive = root / "notes"
        archive.mkdir()
        _archive(archive, N_NOTES)
        one = next(archive.rglob("*.md"))
        digest = [sys.executable, "-m", "pipeline"]
        wall, cpu = _run([*digest, "check", str(archive)], root)
        print(f"check: {N_NOTES:,} notes in one `digest check` process: {N_NOTES / cpu:,.0f} "
              f"notes/s ({cpu:.1f} s CPU, {wall:.1f} s wall; the aim is < 3 s)")
        counted = subprocess.run([*digest, "check", str(archive)], cwd=root, text=True,
                                 capture_output=True, check=False).stdout.splitlines()
        kinds = [line.strip() for line in counted if line.startswith("  ")]
        print(f"check: {counted[-1]}; by kind: {'; '.join(kinds)}")
        env = _bytecode_env(root / "pycache")
        _, python = _median_run([sys.executable, "-c", "pass"], root, env)
        single_wall, single = _median_run([*digest, "check", str(one)], root, env)
        _, uncached = _median_run([*digest, "check", str(one)], root)
        print(f"check: one note, startup to exit (median of 5, bytecode cached as installed): "
              f"{single * 1e3:.0f} ms CPU, {single_wall * 1e3:.0f} ms wall (a bare `python -c "
              f"pass`: {python * 1e3:.0f} ms CPU, so +{(single - python) * 1e3:.0f} ms); "
              f"{uncached * 1e3:.0f} ms CPU compiling every module (PYTHONDONTWRITEBYTECODE)")
        print(f"check: {N_NOTES:,} notes one process each would take ~{single * N_NOTES:.0f} s "
              f"CPU: one process for all is {single * N_NOTES / cpu:.0f}x faster")
        total, top = _import_ms(one, root, env)
        print(f"check: imports of `digest check NOTE` {total:.0f} ms (-X importtime, top-level "
              f"cumulative, bytecode cached): {', '.join(top)}")

    clock = time.process_time  # CPU time: the machine may be busy with other work
    plain = "Scaling Laws for Neural Language Models: an empirical study " * 2
    n = 20_000
    start = clock()
    for _ in range(n):
        latex_to_text(plain)
    no_latex = (clock() - start) / n
    start = clock()
    for _ in range(n):
        " ".join(plain.split())
    split = (clock() - start) / n
    print(f"latex: a title without LaTeX {no_latex * 1e6:.1f} µs "
          f"({no_latex / split:.1f}x a bare whitespace split)")
    feed = ET.parse(FIXTURES / "arxiv-rss" / "aioarxiv-2024-11-28" / "rss_mock_feed.xml")
    texts = [item.findtext(tag) or "" for item in feed.getroot().iter("item")
             for tag in ("title", "description")]
    start = clock()
    for text in texts:
        latex_to_text(text)
    feed_time = clock() - start
    with_latex = sum("\\" in t or "$" in t for t in texts)
    print(f"latex: a real day's feed, {len(texts):,} titles and abstracts "
          f"({with_latex} with LaTeX): {feed_time * 1e3:.0f} ms, "
          f"{len(texts) / feed_time:,.0f} texts/s")
    times = {}
    for mb in (1, 5):
        text = _dense_latex(mb * 1_000_000, seed=mb)
        start = clock()
        latex_to_text(text)
        times[mb] = clock() - start
    print(f"latex: dense LaTeX abstract 1 MB {times[1]:.1f} s, 5 MB {times[5]:.1f} s CPU "
          f"(ratio {times[5] / times[1]:.1f} for 5x the input: linear is 5)")


if __name__ == "__main__":
    main()
