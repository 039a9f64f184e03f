"""Tiny IMDb-like datasets written in every format the IMDb module reads."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

# -- tiny IMDb-like data --------------------------------------------------------------------

GOOD = ["great", "wonderful", "superb", "moving", "brilliant"]
BAD = ["awful", "boring", "dull", "terrible", "weak"]


def make_reviews(n_per_label: int = 20, prefix: str = "") -> pd.DataFrame:
    """``n_per_label`` neg rows then as many pos rows, of varied lengths, deterministic."""
    rows = []
    for label, words in enumerate([BAD, GOOD]):
        for i in range(n_per_label):
            body = " ".join(words[(i + k) % len(words)] for k in range(1 + (i * 7) % 23))
            text = f"{prefix}Review {i}: this film was {body}.<br /><br />Rated {label}!"
            rows.append({"text": text, "label": label})
    return pd.DataFrame(rows)


def write_splits(folder: Path, fmt: str, train: pd.DataFrame, test: pd.DataFrame) -> Path:
    """``train.<fmt>`` and ``test.<fmt>`` in ``folder`` (parquet, csv or jsonl)."""
    folder.mkdir(parents=True, exist_ok=True)
    for split, frame in (("train", train), ("test", test)):
        path = folder / f"{split}.{fmt}"
        if fmt == "parquet":
            frame.to_parquet(path, index=False)
        elif fmt == "csv":
            frame.to_csv(path, index=False)
        else:
            path.write_text("".join(json.dumps(r) + "\n" for r in frame.to_dict("records")))
    return folder


def write_acl_tree(root: Path, train: pd.DataFrame, test: pd.DataFrame) -> Path:
    """An ``aclImdb/`` tree: ``<split>/<neg|pos>/<id>_<rating>.txt``, ids counted per label."""
    for split, frame in (("train", train), ("test", test)):
        for label, name in enumerate(("neg", "pos")):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            texts = frame.loc[frame["label"] == label, "text"]
            for review_id, text in enumerate(texts):
                rating = 2 if label == 0 else 9
                (folder / f"{review_id}_{rating}.txt").write_text(text)
    return root
