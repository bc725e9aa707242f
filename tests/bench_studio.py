"""`make bench` figures for the studio: save-to-preview on the reference issue (a commentary
saved through the app, then the preview of the widest variant fetched), median of 20, beside
a bare render of the same merged issue in the same run; and on a real-sized day (the real
feed of 2024-11-28, 1,504 items), the server time of each triage and editing action and the
weight of the candidates' first page, beside a bare read and atomic write of the draft."""

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
    real_day_figures()


def real_day_figures() -> None:
    """Server time of each action on a real-sized day (median of RUNS), and page weights."""
    from tests.studio_support import REAL_DAY, real_sized_day

    with tempfile.TemporaryDirectory() as tmp:
        settings = real_sized_day(Path(tmp) / "news")
        with closing(store.connect(settings.db_path)) as conn:
            ranked = [c.paper.arxiv_id for c in store.load_candidates(conn, REAL_DAY)]
        app = studio.create_app(settings, REAL_DAY, runtime(), token="bench")
        client = app.test_client()
        client.get("/login?token=bench")
        first = client.get("/candidates")
        csrf = re.search(r'name="csrf" value="([^"]+)"', first.text)[1]  # type: ignore[index]
        json_ = {"X-Requested-With": "studio"}
        for arxiv_id in ranked[:10]:  # an issue of ten to edit
            client.post("/add", headers=json_, data={"csrf": csrf, "arxiv_id": arxiv_id})
        day_page = client.get("/")
        spare = iter(ranked[10:])

        def entries() -> list[tuple[str, str]]:
            return re.findall(r'data-key="([^"]+)" data-fp="([^"]+)"', client.get("/").text)

        def post(path: str, **data: str | list[str]) -> dict[str, str]:
            resp = client.post(path, headers=json_, data={"csrf": csrf, **data})
            assert resp.status_code == 200, (path, resp.status_code, resp.text[:200])
            return resp.json  # type: ignore[return-value]

        keys = entries()

        def save(k: int) -> None:
            key, fp = keys[k % 3]
            resp = client.post("/entry/save", headers=json_, data={
                "csrf": csrf, "key": key, "fp": fp, "ko": f"한국어 논평 {k}.",
                "en": f"English {k}.", "tags": "#llm"})
            assert resp.status_code == 200, resp.text[:200]
            keys[k % 3] = (key, resp.json["fp"])  # type: ignore[index]

        def move(k: int) -> None:
            key, fp = keys[0]
            post("/entry/move", key=key, fp=fp, to=str(1 + k % 9))

        def remove(_k: int) -> None:
            key, fp = re.findall(r'data-key="([^"]+)" data-fp="([^"]+)"', state["html"])[-1]
            state["html"] = post("/entry/remove", key=key, fp=fp)["html"]

        def undo(_k: int) -> None:
            state["html"] = post("/undo")["html"]

        state = {"html": client.get("/").text}

        path = services.draft_path(settings, REAL_DAY)

        def bare(_k: int) -> None:  # the floor of any change: read, parse, write atomically
            loaded = studio.load_draft(settings, REAL_DAY)
            assert loaded.digest is not None and loaded.sha is not None
            studio.save_draft(settings, REAL_DAY, loaded.sha, loaded.digest)

        timed = {
            "bare read + parse + atomic write of the draft": bare,
            "candidates page (first page)": lambda _k: client.get("/candidates"),
            "pick (add to the issue)": lambda _k: post("/triage", state="picked",
                                                       arxiv_id=next(spare)),
            "dismiss": lambda _k: post("/triage", state="dismissed", arxiv_id=next(spare)),
            "autosave commentary": save,
            "move to a position": move,
            "remove": remove,
            "undo (brings it back)": undo,
            "day page": lambda _k: client.get("/"),
        }
        figures = interleaved_ms(*timed.values(), runs=RUNS)
        floor = figures[0]
        print(f"real-sized day {REAL_DAY}: {len(ranked)} candidates, "
              f"{len(studio.load_draft(settings, REAL_DAY).entries)} entries at the end; "
              f"median of {RUNS}, server time (WSGI, no network)")
        for (label, _fn), ms in zip(timed.items(), figures, strict=True):
            print(f"  {label:<48} {ms:8.1f} ms  ({ms / floor:5.1f}x the bare draft write;"
                  " aim < 100 ms)" if label != next(iter(timed)) else
                  f"  {label:<48} {ms:8.1f} ms")
        print(f"  candidates first page weight   {len(first.data) / 1000:8.1f} KB  "
              f"(aim < 150 KB; {first.text.count('<article')} cards)")
        print(f"  day page weight ({len(keys)} entries)   {len(day_page.data) / 1000:8.1f} KB")
        del path


if __name__ == "__main__":
    main()
