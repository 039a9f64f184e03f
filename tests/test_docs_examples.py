"""The Python examples of the README and of ``docs/`` run as written, in an empty working folder.

``../shared/data`` in an example is the folder beside the repository; the examples that read it
are left out where it is absent. The one that predicts from a ``best.ckpt`` finds one made from
a small data set, as ``fit`` would write it.
"""

from __future__ import annotations

import re
from pathlib import Path

import lightning as L
import pandas as pd
import pytest

from lightning_gru.data import IMDbDataModule
from lightning_gru.models import SentimentClassifier

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
DOCS = ["README.md", "docs/gru.md", "docs/models.md", "docs/data.md"]


def python_blocks(doc: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", (REPO / doc).read_text(), re.S)


def write_sentiment_checkpoint(folder: Path) -> None:
    """``best.ckpt`` of a small sentiment classifier, the data module's vocabulary in it."""
    reviews = pd.DataFrame(
        [("a wonderful film", 1), ("dull and far too long", 0)] * 8, columns=["text", "label"]
    )
    for split in ("train", "test"):
        reviews.to_parquet(folder / f"{split}.parquet")
    data = IMDbDataModule(data_dir=str(folder), batch_size=4, cache_dir=str(folder / "cache"))
    model = SentimentClassifier(data.vocab_size, embedding_dim=4, hidden_size=4)
    trainer = L.Trainer(
        max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False
    )
    trainer.fit(model, data)
    trainer.save_checkpoint(folder / "best.ckpt")


@pytest.mark.parametrize("doc", DOCS)
def test_python_examples_run(doc, tmp_path, monkeypatch):
    blocks = python_blocks(doc)
    assert blocks, f"no python examples in {doc}"
    monkeypatch.chdir(tmp_path)
    if any("best.ckpt" in block for block in blocks):
        write_sentiment_checkpoint(tmp_path)
    namespace: dict = {}
    for block in blocks:  # later blocks may use names of earlier ones, as a reader would
        if "../shared/data" in block:
            if not SHARED.is_dir():
                continue
            block = block.replace("../shared/data", str(SHARED))
        exec(compile(block, doc, "exec"), namespace)  # noqa: S102


def test_every_doc_with_examples_is_run():
    documents = [REPO / "README.md", *(REPO / "docs").glob("*.md"), REPO / "recipes/README.md"]
    with_examples = {str(d.relative_to(REPO)) for d in documents if "```python" in d.read_text()}
    assert with_examples == set(DOCS)
