"""Training steps of the IMDb classifier on real, packed batches: our GRU against torch's.

The recipes feed the recurrent encoder a ``PackedSequence`` (reviews of different lengths), a
path that ``bench_gru.py``'s padded tensors do not exercise. This script builds the IMDb data
module, takes the first ``--steps`` length-bucketed training batches, and times full training
steps (embedding, encoder, pooling, head, backward, Adam) of ``SentimentNet`` with each encoder,
all on the same batches in one process::

    python benchmarks/packed_training_step.py --data-dir ../shared/data/imdb --steps 8

Prints one line per encoder and a JSON object with the median step time of each.
"""

import argparse
import json
import statistics
import time

import torch
import torch.nn.functional as F
from bench_gru import positive  # benchmarks/ is on sys.path when run as a script

from lightning_gru.data import IMDbDataModule
from lightning_gru.models import SentimentNet

ENCODERS = {
    "gru (ours)": ("gru", "cython"),
    "gru (torch)": ("gru", "torch"),
    "lstm (torch)": ("lstm", "auto"),
}


def step_times(batches: list[dict], vocab_size: int, encoder: str, backend: str) -> list[float]:
    torch.manual_seed(0)
    net = SentimentNet(
        vocab_size, 128, encoder, 128, bidirectional=True, dropout=0.5, backend=backend,
        pooling="max_mean",
    )  # fmt: skip
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    times = []
    for batch in batches:
        start = time.perf_counter()
        loss = F.cross_entropy(net(batch["input_ids"], batch["lengths"]), batch["labels"])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
    return times


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default="../shared/data/imdb")
    parser.add_argument("--steps", type=positive(int), default=8, help="training batches")
    parser.add_argument("--max-length", type=positive(int), default=500, help="tokens a review")
    options = parser.parse_args(argv)

    data = IMDbDataModule(data_dir=options.data_dir, max_length=options.max_length)
    data.prepare_data()
    data.setup("fit")
    batches = []
    for batch in data.train_dataloader():
        batches.append(batch)
        if len(batches) == options.steps:
            break
    tokens = sum(int(b["lengths"].sum()) for b in batches)
    print(
        f"{len(batches)} batches of 64 reviews, {tokens} tokens, {torch.get_num_threads()} threads"
    )
    medians = {}
    for name, (encoder, backend) in ENCODERS.items():
        times = step_times(batches, data.vocab_size, encoder, backend)
        medians[name] = statistics.median(times)
        rate = tokens / sum(times)
        print(f"{name:13s} median step {medians[name] * 1e3:8.0f} ms  {rate:9,.0f} tokens/s")
    ours = medians["gru (ours)"]
    print(json.dumps({k: round(v, 4) for k, v in medians.items()} | {
        "torch_gru_over_ours": round(medians["gru (torch)"] / ours, 1),
        "threads": torch.get_num_threads(),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
