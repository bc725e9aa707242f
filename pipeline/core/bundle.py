"""Where the data shipped with the code lives. The checkout keeps it at the top, in
`templates/` and `demo/`; an installed package carries the same folders inside it, as the
packages `pipeline.templates` and `pipeline.demo_data` (pyproject.toml maps them), so a
`pip install .` (not editable) builds and sends with no checkout around."""

from __future__ import annotations

import importlib.util
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[2]
FOLDERS = {"templates": "templates", "demo_data": "demo"}  # package name -> checkout folder


def bundled(name: str) -> Path:
    """The folder of the bundled `name` ('templates' or 'demo_data'): where the import system
    finds `pipeline.<name>` (installed, or mapped by an editable install), else the
    checkout's own folder (running from a clone without installing)."""
    try:
        spec = importlib.util.find_spec(f"pipeline.{name}")
    except ImportError:
        spec = None
    for location in (spec.submodule_search_locations or []) if spec is not None else []:
        if Path(location).is_dir():
            return Path(location)
    return CHECKOUT / FOLDERS[name]
