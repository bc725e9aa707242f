"""The built issue as stable JSON: what the store keeps, and what the lifecycle compares to
tell a correction from a republish of the same content (pure, so both layers can use it)."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

from pipeline.core.models import Entry, Issue, Paper


def entry_dict(e: Entry) -> dict[str, object]:
    """An Entry as a JSON-ready dict (one archive row, one entry of issue_json)."""
    return {
        "title": e.title, "authors": list(e.authors), "abstract": e.abstract,
        "commentary": list(e.commentary), "tags": list(e.tags), "arxiv_id": e.arxiv_id,
        "version": e.version, "url": e.url,
    }


def entry_from_dict(e: dict[str, Any]) -> Entry:
    """Rebuild an Entry stored by entry_dict."""
    return Entry(
        title=e["title"], authors=tuple(e["authors"]), abstract=e["abstract"],
        commentary=tuple(e["commentary"]), tags=tuple(e["tags"]),
        arxiv_id=e["arxiv_id"], version=e["version"], url=e["url"],
    )


def issue_json(issue: Issue) -> str:
    """An Issue as stable JSON (what the archive pages and feeds need)."""

    def paper(p: Paper) -> dict[str, object]:
        return {
            "arxiv_id": p.arxiv_id, "version": p.version, "title": p.title,
            "authors": list(p.authors), "abstract": p.abstract, "categories": list(p.categories),
        }

    data: dict[str, object] = {
        "date": issue.date.isoformat(), "title": issue.title,
        "entries": [entry_dict(e) for e in issue.entries],
        "more_papers": [paper(p) for p in issue.more_papers],
    }
    if issue.corrected is not None:
        data["corrected"] = issue.corrected.isoformat()
    return json.dumps(data, ensure_ascii=False, sort_keys=True)


def issue_from_json(text: str) -> Issue:
    """Rebuild an Issue stored by issue_json."""
    data = json.loads(text)
    return Issue(
        date=date.fromisoformat(data["date"]),
        title=data["title"],
        entries=tuple(entry_from_dict(e) for e in data["entries"]),
        more_papers=tuple(
            Paper(arxiv_id=p["arxiv_id"], version=p["version"], title=p["title"],
                  authors=tuple(p["authors"]), abstract=p["abstract"],
                  categories=tuple(p["categories"]))
            for p in data["more_papers"]
        ),
        corrected=datetime.fromisoformat(data["corrected"]) if data.get("corrected") else None,
    )
