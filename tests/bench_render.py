"""`make bench` figures for rendering: one issue, and a 1,000-issue archive (incremental vs
full rebuild), each beside a bare Jinja2 render of the same templates in the same run."""

from __future__ import annotations

import resource
import tempfile
from pathlib import Path

from pipeline import store
from pipeline.publish import site
from pipeline.publish.render import Renderer
from tests.render_support import archive_issue, make_settings, reference_issue
from tests.support import best_time

ARCHIVE = 1000


def main() -> None:
    """Print the figures."""
    with tempfile.TemporaryDirectory() as tmp:
        settings = make_settings(Path(tmp))
        renderer = Renderer(settings)
        issue = reference_issue()
        variant = renderer.default_variant

        def bare_email() -> None:
            ctx = renderer.context(issue, variant, renderer.base)
            renderer.env.get_template("email.html").render(
                **ctx, subject="s", preheader="p", compact=False, rest=0, unsubscribe_url="u",
                entries=renderer.entry_views(issue, variant, renderer.base),
                toc_entries=renderer.entry_views(issue, variant, renderer.base, 0),
            )

        def bare_page() -> None:
            ctx = renderer.context(issue, variant, "../")
            renderer.env.get_template("issue.html").render(
                **{**ctx, **renderer.site_context(variant, "../", "c")}, others=[],
                prev=None, next=None, entries=renderer.entry_views(issue, variant, "../"),
            )

        bare = best_time(bare_email, 20)
        one_email = best_time(lambda: renderer.email(issue, variant), 5)
        all_emails = best_time(lambda: renderer.emails(issue), 3)
        bare_pg = best_time(bare_page, 20)
        pages = best_time(lambda: renderer.issue_pages(issue), 5)
        unwrapped = best_time(lambda: renderer.text_body(issue, variant), 20)
        flowed = best_time(lambda: renderer.email_text(issue, variant), 20)
        print(f"bare Jinja2 email.html render       {bare * 1000:8.1f} ms")
        print(f"one email variant (+premailer)      {one_email * 1000:8.1f} ms"
              f"  ({one_email / bare:.1f}x bare)")
        print(f"all {len(settings.variants)} email variants               "
              f"{all_emails * 1000:8.1f} ms")
        print(f"text part, digest format only       {unwrapped * 1000:8.1f} ms")
        print(f"text part, format=flowed            {flowed * 1000:8.1f} ms"
              f"  ({flowed / unwrapped:.1f}x unwrapped)")
        print(f"bare Jinja2 issue.html render       {bare_pg * 1000:8.1f} ms")
        print(f"issue pages ({len(settings.variants)} variants)            "
              f"{pages * 1000:8.1f} ms  ({pages / bare_pg:.1f}x bare)")

        conn = store.connect(settings.db_path)
        try:
            with store.transaction(conn):
                for k in range(ARCHIVE - 1):
                    store.save_archived_issue(conn, archive_issue(k))
            full = best_time(lambda: site.rebuild_site(settings, conn, renderer))
            newest = archive_issue(ARCHIVE - 1)
            incremental = best_time(lambda: site.publish_issue(settings, conn, newest, renderer))
            again = best_time(lambda: site.rebuild_site(settings, conn, renderer))
        finally:
            conn.close()
        files = sum(1 for p in settings.paths.site.rglob("*") if p.is_file())
        print(f"archive of {ARCHIVE} issues: full rebuild   {full:8.2f} s"
              f"  ({full / (bare_pg * ARCHIVE * len(settings.variants)):.1f}x bare page renders)")
        print(f"new issue added incrementally        {incremental:8.2f} s"
              f"  ({full / incremental:.0f}x faster than a full rebuild)")
        print(f"full rebuild with nothing changed    {again:8.2f} s  ({files} files, 0 written)")
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"peak RSS                             {peak:8.0f} MB")


if __name__ == "__main__":
    main()
