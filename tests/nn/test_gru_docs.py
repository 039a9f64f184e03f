"""The Python examples of ``docs/gru.md`` run as written."""

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "gru.md"


def test_docs_examples_run() -> None:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    assert blocks, "no python examples found"
    namespace: dict = {}
    for block in blocks:  # later blocks may use names of earlier ones, as a reader would
        exec(compile(block, str(DOC), "exec"), namespace)  # noqa: S102
