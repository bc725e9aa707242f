"""Previews: the draft merged against the store only (no network), rendered with one cached
Renderer."""

from __future__ import annotations

import sqlite3
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import date

from pipeline import store
from pipeline.core.config import Settings
from pipeline.core.models import EmailVariant
from pipeline.curate import merge
from pipeline.interfaces.studio.model import Loaded
from pipeline.publish import render

PREVIEW_CACHE = 16  # rendered (sha, variant) pairs kept; a save makes a new sha

# --- previews: merged against the store only, rendered with one cached Renderer ---------------


@dataclass(frozen=True)
class Preview:
    """The draft of one sha merged (store only) and what could not be resolved."""

    merged: merge.MergeResult
    variants: dict[str, EmailVariant] = field(default_factory=dict)


class Previewer:
    """Merges and renders drafts by sha; the Renderer (and its Jinja environment) is built
    once, and the last few renderings are kept (a preview per variant after each save)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.renderer = render.Renderer(settings)
        self._cache: OrderedDict[str, Preview] = OrderedDict()
        self._lock = threading.Lock()

    def preview(self, conn: sqlite3.Connection, day: date, loaded: Loaded) -> Preview:
        """The merge of this version of the draft (cached by its sha)."""
        assert loaded.digest is not None and loaded.sha is not None
        with self._lock:
            hit = self._cache.get(loaded.sha)
            if hit is not None:
                self._cache.move_to_end(loaded.sha)
                return hit
        lookups = merge.Lookups(  # no api_*: the studio never goes to the network here
            stored_ids=lambda ids: store.get_papers(conn, ids),
            stored_title=lambda title: store.find_papers_by_title(conn, title),
        )
        result = merge.merge_draft(
            day, self.settings.newsletter.title, loaded.digest.entries, lookups,
            store.load_candidates(conn, day), self.settings.draft.more_papers,
        )
        made = Preview(result)
        with self._lock:
            self._cache[loaded.sha] = made
            while len(self._cache) > PREVIEW_CACHE:
                self._cache.popitem(last=False)
        return made

    def forget(self) -> None:
        """Drop every cached merge: the store changed (a build stored papers from arXiv)."""
        with self._lock:
            self._cache.clear()

    def email(self, preview: Preview, variant: str) -> EmailVariant:
        """One variant of the previewed issue, rendered as a reader gets it."""
        with self._lock:
            done = preview.variants.get(variant)
        if done is None:
            done = self.renderer.email(preview.merged.issue, variant)
            with self._lock:
                preview.variants[variant] = done
        return done

