"""`make bench` figures for the studio: save-to-preview on the reference issue (a commentary
saved through the app, then the preview of the widest variant fetched), median of 20, beside
a bare render of the same merged issue in the same services."""

from __future__ import annotations

import re
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

from pipeline import services, store
from pipeline.interfaces import studio
from pipeline.publish.render import Renderer
from tests.render_support import REFERENCE, make_settings
from tests.sample_day import DAY, add_candidates, runtime, sample_papers

RUNS = 20


def interleaved_ms(*fns: Callable[[int], object], runs: int = RUNS) -> list[float]:
    """The median of `runs` timed calls of each fn(k), in milliseconds; the calls alternate,
    so load from elsewhere on the machine weighs on each alike."""
    times: list[list[float]] = [[] for _ in fns]
    for k in range(runs):
        for fn, spent in zip(fns, times, strict=True):
            start = time.perf_counter()
            fn(k)
            spent.append(time.perf_counter() - start)
    return [statistics.median(t) * 1000 for t in times]


def main() -> None:
    """Print the figures."""
    with tempfile.TemporaryDirectory() as tmp:
        settings = make_settings(Path(tmp))
        with closing(store.connect(settings.db_path)) as conn:
            add_candidates(conn, DAY, [(p, (), 1.0) for p in sample_papers()])
        path = services.draft_path(settings, DAY)
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REFERENCE, path)

        app = studio.create_app(settings, DAY, runtime(), token="bench")
        client = app.test_client()
        client.get("/login?token=bench")
        page = client.get("/").text
        csrf = re.search(r'name="csrf" value="([^"]+)"', page)[1]  # type: ignore[index]
        state = {"sha": re.search(r'name="sha" value="([^"]+)"', page)[1]}  # type: ignore[index]
        loaded = studio.load_draft(settings, DAY)
        assert loaded.digest is not None
        entries = loaded.digest.entries
        variant = settings.variants[-1]

        with closing(store.connect(settings.db_path)) as conn:
            issue = studio.Previewer(settings).preview(conn, DAY, loaded).merged.issue
        renderer = Renderer(settings)

        def save_and_preview(k: int) -> None:
            i = k % len(entries)
            e = entries[i]
            saved = client.post("/entry/save", headers={"X-Requested-With": "studio"}, data={
                "csrf": csrf, "sha": state["sha"], "i": str(i),
                "ko": "\n".join(e.notes_ko), "en": "\n".join((*e.notes_en, f"Edit {k}.")),
                "tags": " ".join(e.tags)})
            assert saved.status_code == 200, saved.text
            state["sha"] = saved.json["sha"]  # type: ignore[index]
            shown = client.get(f"/preview/{variant}.html?v={state['sha']}")
            assert f"Edit {k}." in shown.text

        bare, total, again = interleaved_ms(
            lambda _k: renderer.email(issue, variant), save_and_preview,
            lambda _k: client.get(f"/preview/{variant}.html"),
        )
        print(f"bare render of the reference issue ({variant}, +premailer)  {bare:8.1f} ms")
        print(f"save-to-preview (save, lint, merge, render)        {total:8.1f} ms"
              f"  ({total / bare:.2f}x the bare render; aim <= 2x and < 300 ms)")
        print(f"preview again, same draft (cached)                 {again:8.1f} ms"
              f"  ({again / bare:.2f}x)")


if __name__ == "__main__":
    main()
