"""Curate stage: notes, drafts, merge, lint, ranking."""
