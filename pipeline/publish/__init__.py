"""Publish stage: rendering, the archive, site/ and its atomic swap."""
