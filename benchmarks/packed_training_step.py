"""Training steps of the IMDb classifier on real, packed batches: our GRU against torch's.

The recipes feed the recurrent encoder a ``PackedSequence`` (reviews of different lengths), a
path that ``bench_gru.py``'s padded tensors do not exercise. This script builds the IMDb data
module, takes the first ``--steps`` length-bucketed training batches, and times full training
steps (embedding, encoder, pooling, head, backward, Adam) of ``SentimentNet`` with each encoder,
all on the same batches in one process (one untimed warm-up step each, then the encoders take
turns batch by batch, the order rotated at every batch)::

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


class Stepper:
    """One encoder's net and optimizer; ``step`` trains on a batch and returns its seconds."""

    def __init__(self, vocab_size: int, encoder: str, backend: str) -> None:
        torch.manual_seed(0)
        self.net = SentimentNet(
            vocab_size, 128, encoder, 128, bidirectional=True, dropout=0.5, backend=backend,
            pooling="max_mean",
        )  # fmt: skip
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=1e-3)

    def step(self, batch: dict) -> float:
        start = time.perf_counter()
        loss = F.cross_entropy(self.net(batch["input_ids"], batch["lengths"]), batch["labels"])
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return time.perf_counter() - start


def step_times(batches: list[dict], vocab_size: int) -> dict[str, list[float]]:
    """Seconds of each encoder's step on every batch: after one untimed warm-up step each, the
    encoders take turns batch by batch, the order rotated at every batch."""
    steppers = {name: Stepper(vocab_size, *spec) for name, spec in ENCODERS.items()}
    for stepper in steppers.values():
        stepper.step(batches[0])  # warm-up: thread pools, first allocations
    times: dict[str, list[float]] = {name: [] for name in steppers}
    names = list(steppers)
    for i, batch in enumerate(batches):
        for name in names[i % len(names) :] + names[: i % len(names)]:
            times[name].append(steppers[name].step(batch))
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
        f"{len(batches)} batches of up to {data.batch_size} reviews, {tokens} tokens, "
        f"{torch.get_num_threads()} threads"
    )
    medians = {}
    for name, times in step_times(batches, data.vocab_size).items():
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
