"""The ranking model's file: an .npz archive of arrays and a JSON header (no pickled objects),
written atomically and read back with errors naming the file."""

from __future__ import annotations

import io
import json
import math
import zipfile
from dataclasses import asdict
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.core.errors import RankError
from pipeline.curate.rank_features import BLOCKS
from pipeline.curate.rank_model import Affinity, Block, Model, Prior, RankSettings

FORMAT = "arxiv-digest-ranking"
FORMAT_VERSION = 1


def model_bytes(model: Model) -> bytes:
    """The model as an .npz archive: arrays plus a JSON header, no pickled objects."""
    meta = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "trained_on": model.trained_on.isoformat(),
        "settings": asdict(model.settings),
        "intercept": model.intercept,
        "prior_coef": model.prior.coef,
        "positives": model.positives,
        "negatives": model.negatives,
        "affinity": {k: [a.name, a.picks, a.last.isoformat()] for k, a in model.affinity.items()},
    }
    arrays: dict[str, Any] = {"meta": np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)}
    arrays["prior_columns"] = model.prior.columns
    arrays["prior_picks"] = model.prior.picks
    for name, block in zip(BLOCKS, model.blocks(), strict=True):
        arrays[f"{name}_columns"] = block.columns
        arrays[f"{name}_idf"] = block.idf
        arrays[f"{name}_coef"] = block.coef
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


def save_model(path: Path, model: Model) -> None:
    """Write the model file atomically (a reader never sees half a model)."""
    from pipeline.core.files import write_atomic

    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, model_bytes(model))


def load_model(path: Path) -> Model | None:
    """Read a model file; None when there is none (cold start), RankError when it is not a
    model this version wrote (corrupt, foreign, or of another format version)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise RankError(f"cannot read the ranking model: {exc.strerror}", path=path) from exc
    return parse_model(raw, path)


def parse_model(raw: bytes, path: Path) -> Model:
    """A model from the bytes of its file; RankError naming `path` when they are not one."""
    try:
        with np.load(io.BytesIO(raw), allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise RankError("not a ranking model file (expected an .npz archive written by "
                        "`digest`; delete it to retrain)", path=path) from exc
    try:
        meta = json.loads(bytes(arrays.pop("meta").astype(np.uint8)).decode())
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise RankError("not a ranking model file (no arxiv-digest header)", path=path)
        if meta.get("version") != FORMAT_VERSION:
            raise RankError(f"ranking model format {meta.get('version')!r}; this version reads "
                            f"{FORMAT_VERSION} (delete the file to retrain)", path=path)
        blocks = [
            Block(
                np.asarray(arrays[f"{name}_columns"], dtype=np.int64),
                np.asarray(arrays[f"{name}_idf"], dtype=np.float32),
                np.asarray(arrays[f"{name}_coef"], dtype=np.float32),
            )
            for name in BLOCKS
        ]
        # A file written before abstract_pairs existed was trained on abstract word pairs.
        settings = RankSettings(**{"abstract_pairs": True, **meta["settings"]})
        affinity = {
            str(k): Affinity(str(v[0]), int(v[1]), date.fromisoformat(v[2]))
            for k, v in meta["affinity"].items()
        }
        prior = Prior(np.asarray(arrays["prior_columns"], dtype=np.int64),
                      np.asarray(arrays["prior_picks"], dtype=np.float32),
                      float(meta["prior_coef"]))
        intercept = float(meta["intercept"])
        if not math.isfinite(intercept):
            raise ValueError("intercept is not finite")
        limit = 2**settings.hash_bits
        if any(len(c) and c[-1] >= limit for c in [*(b.columns for b in blocks), prior.columns]):
            raise ValueError("a column beyond the hashing space")
        return Model(
            trained_on=date.fromisoformat(meta["trained_on"]),
            settings=settings,
            title=blocks[0],
            abstract=blocks[1],
            authors=blocks[2],
            intercept=intercept,
            prior=prior,
            affinity=affinity,
            positives=int(meta["positives"]),
            negatives=int(meta["negatives"]),
        )
    except RankError:
        raise
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, UnicodeDecodeError) as exc:
        raise RankError(f"damaged ranking model file ({exc}; delete it to retrain)",
                        path=path) from exc
