"""Which archive files a build writes, read from the store a page at a time (issue #15).

Index and tag pages are paginated from the oldest item (`views.Page`): page N is written
once full and links only to older pages, so a new issue never rewrites it. Adding an issue
renders its own pages, the previous issue's (its "next" link), the newest index page of each
variant, the newest page of each of its tags, the tags page and the feeds; a page becomes a
file of its own on the build that fills it. A correction of a past issue renders its pages,
the archive page holding it and the tag pages holding its papers. Only an issue dated
before the newest one, or a change of an issue's tags, shifts later items from page to page:
then the full pages from that point on are rendered again, as they must be.

Every query reads what the pages being written show: the newest `feed_items` issues, at most
one page of index rows or tagged entries per page, and the whole issue only for the issues
whose own pages are rendered. Memory stays flat however long the archive.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from datetime import date

from pipeline import store
from pipeline.core.models import ArchivedEntry, Issue, archived_entries
from pipeline.publish import feeds
from pipeline.publish.feeds import TAG_FEED_ITEMS
from pipeline.publish.render import Renderer, clean_issue
from pipeline.publish.views import PAGE_SIZE, Page, Tagged, full_page, newest_page, paginate

Files = dict[str, str | None]


def changed_pages(
    before: int, old_n: int, new_n: int, old_total: int, size: int = PAGE_SIZE
) -> tuple[range, range]:
    """(full pages to render, full pages to delete) of a list after one issue's items, at
    ordinals `before`+1 .. `before`+n, went from old_n to new_n items (old_total before)."""
    new_total = old_total - old_n + new_n
    last_full = new_total // size
    first = before // size + 1
    if old_n == new_n:  # nothing moves: the pages holding the issue's items
        last = min((before + new_n - 1) // size + 1, last_full) if new_n else 0
        render = range(first, last + 1)
    else:  # items after them moved: every full page from theirs on
        render = range(first, last_full + 1)
    return render, range(last_full + 1, old_total // size + 1)


def planned_files(r: Renderer, conn: sqlite3.Connection, issue: Issue) -> Files:
    """The site files that publishing `issue` changes, as they will be (path -> text, None =
    delete). The store is left as it was: the issue is archived in a transaction that is
    rolled back once the pages are rendered (store.save_archived_issue archives it for
    good); only the feed items it rendered are kept, for later builds."""
    cache = store.RenderCache(conn)
    r.fragments = cache
    try:
        with store.rolled_back(conn, "archive_plan"):
            files = _publish_files(r, conn, issue, cache)
    finally:
        r.fragments = None
    with store.savepoint(conn, "archive_items"):  # in the caller's transaction, if any
        cache.flush()
    return files


def _publish_files(
    r: Renderer, conn: sqlite3.Connection, issue: Issue, cache: store.RenderCache
) -> Files:
    day = issue.date
    is_new = not store.is_archived(conn, day)
    old_tags = store.tag_counts(conn, day)
    old_total = store.archive_count(conn)
    store.save_archived_issue(conn, issue)
    new_tags = store.tag_counts(conn, day)
    prev, nxt = store.archive_neighbours(conn, day)

    files: Files = dict(r.issue_pages(issue, prev, nxt))
    if is_new:  # the neighbours' "next"/"previous" links now lead to this issue
        for other in (prev, nxt):
            if other is not None:
                files.update(_issue_pages(r, conn, other))

    before = store.archive_count(conn, before=day)
    render, _ = changed_pages(before, 0 if is_new else 1, 1, old_total, r.page_size)
    for number in render:
        files.update(index_files(r, conn, full_page(number, r.page_size)))
    files.update(index_files(r, conn, newest_page(store.archive_count(conn), r.page_size)))
    files.update(feed_files(r, conn, cache))

    for key in sorted(set(old_tags) | set(new_tags)):
        old_n, new_n = old_tags.get(key, 0), new_tags.get(key, 0)
        files.update(_tag_files(r, conn, key, day, old_n, new_n, cache))
    files.update(tags_index_files(r, store.tag_counts(conn)))
    return files


def all_files(r: Renderer, conn: sqlite3.Connection) -> Iterator[Files]:
    """Every file of the archive, a few pages at a time (rebuild_site, after a template
    change): each issue's pages, every index page, the feeds, every tag's pages. Cached feed
    items are dropped and rendered again."""
    with store.transaction(conn):
        store.clear_renders(conn)
    cache = store.RenderCache(conn)
    r.fragments = cache
    try:
        for files in _all_files(r, conn):
            with store.transaction(conn):
                cache.flush()
            yield files
    finally:
        r.fragments = None


def _all_files(r: Renderer, conn: sqlite3.Connection) -> Iterator[Files]:
    days = store.archived_dates(conn)
    for k, day in enumerate(days):
        yield _issue_pages(
            r, conn, day, days[k - 1] if k else None, days[k + 1] if k + 1 < len(days) else None
        )
    size = r.page_size
    for number in range(1, len(days) // size + 1):
        yield index_files(r, conn, full_page(number, size))
    yield index_files(r, conn, newest_page(len(days), size))
    yield feed_files(r, conn)
    counts = store.tag_counts(conn)
    for key, total in counts.items():
        for number in range(1, total // size + 1):
            yield _tag_page_files(r, conn, key, full_page(number, size))
        yield {
            **_tag_page_files(r, conn, key, newest_page(total, size)),
            r.tag_feed_name(key): tag_feed(r, conn, key, total),
        }
    yield tags_index_files(r, counts)


def _issue_pages(
    r: Renderer, conn: sqlite3.Connection, day: date,
    prev: date | None = None, nxt: date | None = None,
) -> Files:
    """An archived issue's pages (its neighbours looked up unless given)."""
    issue = store.archived_issue(conn, day)
    if issue is None:
        return {}
    if prev is None and nxt is None:
        prev, nxt = store.archive_neighbours(conn, day)
    return dict(r.issue_pages(issue, prev, nxt))


def index_files(r: Renderer, conn: sqlite3.Connection, page: Page) -> Files:
    """One index page (full page N, or the newest) in every variant."""
    days = store.archived_dates(conn, page.first - 1, page.last - page.first + 1)
    rows: dict[date, list[ArchivedEntry]] = {d: [] for d in days}
    if days:
        for entry in store.archived_entries_between(conn, days[0], days[-1]):
            rows[entry.date].append(entry)
    shown = list(rows.items())[::-1]
    return {
        r.index_name(v, page.number): r.index_page(v, shown, page) for v in r.settings.variants
    }


def feed_files(
    r: Renderer, conn: sqlite3.Connection, cache: store.RenderCache | None = None
) -> Files:
    """feed.xml and feed.<lang>.xml: the newest issues."""
    newest = [clean_issue(i) for i in
              store.newest_archived_issues(conn, r.settings.newsletter.feed_items)]
    if newest and cache is not None:  # the items of older issues are in no feed any more
        cache.forget_issues_before(newest[-1].date)
    return {r.feed_name(v): feeds.issue_feed(r, newest, v) for v in r.settings.variants}


def _tagged(conn: sqlite3.Connection, key: str, offset: int, limit: int) -> list[Tagged]:
    """Entries with the tag, oldest first, each with a one-entry issue (date and title)."""
    tagged = []
    rows = store.tagged_entries(conn, key, offset, limit)
    corrected = store.corrections(conn, (day for day, *_ in rows))
    for day, number, title, entry in rows:
        issue = clean_issue(Issue(day, title, (entry,), corrected=corrected.get(day)))
        tagged.append(Tagged(issue, number, issue.entries[0]))
    return tagged


def tag_page(r: Renderer, conn: sqlite3.Connection, key: str, page: Page,
             variant: str | None = None) -> str:
    """One page of a tag: full page N or the newest (in one variant's language)."""
    tagged = _tagged(conn, key, page.first - 1, page.last - page.first + 1)
    return r.tag_page(key, tagged[::-1], page, variant)


def _tag_page_files(r: Renderer, conn: sqlite3.Connection, key: str, page: Page) -> Files:
    """One page of a tag in every variant's language (read from the store once)."""
    tagged = _tagged(conn, key, page.first - 1, page.last - page.first + 1)[::-1]
    return {r.tag_page_name(key, page.number, v): r.tag_page(key, tagged, page, v)
            for v in r.settings.variants}


def tags_index_files(r: Renderer, counts: dict[str, int]) -> Files:
    """The tags page in every variant's language."""
    return {r.tags_index_name(v): r.tags_page(counts, v) for v in r.settings.variants}


def tag_feed(r: Renderer, conn: sqlite3.Connection, key: str, total: int) -> str:
    """tags/<tag>.xml: the newest papers with the tag."""
    start = max(0, total - TAG_FEED_ITEMS)
    return feeds.tag_feed(r, key, _tagged(conn, key, start, total - start)[::-1])


def _tag_files(
    r: Renderer, conn: sqlite3.Connection, key: str, day: date, old_n: int, new_n: int,
    cache: store.RenderCache,
) -> Files:
    """A tag's files after one issue's entries with it went from old_n to new_n."""
    total = store.tag_count(conn, key)
    old_total = total - new_n + old_n
    size = r.page_size
    before = store.tag_count(conn, key, before=day)
    render, delete = changed_pages(before, old_n, new_n, old_total, size)
    variants = r.settings.variants
    files: Files = {r.tag_page_name(key, n, v): None for n in delete for v in variants}
    if total == 0:
        files[r.tag_feed_name(key)] = None
        files.update({r.tag_page_name(key, None, v): None for v in variants})
        return files
    for number in render:
        files.update(_tag_page_files(r, conn, key, full_page(number, size)))
    files.update(_tag_page_files(r, conn, key, newest_page(total, size)))
    files[r.tag_feed_name(key)] = tag_feed(r, conn, key, total)
    _forget_dropped_items(conn, cache, key, old_total, total)
    return files


def _forget_dropped_items(
    conn: sqlite3.Connection, cache: store.RenderCache, key: str, old_total: int, total: int
) -> None:
    """Drop the cached feed items of the papers that just left this tag's feed and are in
    no other tag's feed either, so the cache holds about what the feeds show."""
    start, old_start = max(0, total - TAG_FEED_ITEMS), max(0, old_total - TAG_FEED_ITEMS)
    if start <= old_start:
        return
    dropped = [
        (day, number)
        for day, number in store.tagged_places(conn, key, old_start, start - old_start)
        if not any(store.among_newest_tagged(conn, t, day, number, TAG_FEED_ITEMS)
                   for t in store.entry_tags(conn, day, number))
    ]
    cache.forget_entries(dropped)


def archive_files(
    r: Renderer, issues: Iterable[Issue], tags: Iterable[str]
) -> Files:
    """Every archive file for these issues held in memory (small archives, tests): the
    index pages, the feeds, the tags page and the pages/feeds of `tags` (None = delete).
    `all_files` writes the same files from the store, a few at a time."""
    oldest = sorted((clean_issue(i) for i in issues), key=lambda i: i.date)
    newest = oldest[::-1]
    rows = [(i.date, archived_entries(i)) for i in oldest]
    files: Files = {}
    for variant in r.settings.variants:
        for page in paginate(len(rows), r.page_size):
            shown = rows[page.first - 1 : page.last][::-1]
            files[r.index_name(variant, page.number)] = r.index_page(
                variant, shown, page)
        files[r.feed_name(variant)] = feeds.issue_feed(r, newest, variant)
    wanted = set(tags)
    tagged: dict[str, list[Tagged]] = {}
    for issue in oldest:
        for number, entry in enumerate(issue.entries, start=1):
            for key in dict.fromkeys(entry.tag_keys):
                tagged.setdefault(key, []).append(Tagged(issue, number, entry))
    for key in sorted(wanted):
        pairs = tagged.get(key, [])
        files[r.tag_feed_name(key)] = feeds.tag_feed(r, key, pairs[::-1]) if pairs else None
        for variant in r.settings.variants:
            if not pairs:
                files[r.tag_page_name(key, None, variant)] = None
                continue
            for page in paginate(len(pairs), r.page_size):
                files[r.tag_page_name(key, page.number, variant)] = r.tag_page(
                    key, pairs[page.first - 1 : page.last][::-1], page, variant)
    for variant in r.settings.variants:
        files[r.tags_index_name(variant)] = r.tags_page(
            {k: len(v) for k, v in tagged.items()}, variant)
    return files
