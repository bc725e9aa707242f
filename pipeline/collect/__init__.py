"""Collect stage: arXiv's feed and API, HTTP manners, tag rules."""
