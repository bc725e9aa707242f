"""arxiv-digest: a curated daily arXiv newsletter pipeline."""

__version__ = "0.1.0"
