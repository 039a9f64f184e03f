"""Training steps of the IMDb classifier on real, packed batches: our GRU against torch's.

The recipes feed the recurrent encoder a ``PackedSequence`` (reviews of different lengths), a
path that ``bench_gru.py``'s padded tensors do not exercise. This script builds the IMDb data
module, takes the first ``--steps`` length-bucketed training batches, and times full training
steps (embedding, encoder, pooling, head, backward, Adam) of ``SentimentNet`` with each encoder,
all on the same batches in one process (one untimed warm-up step each, then the encoders take
turns batch by batch, the order rotated at every batch)::

    python benchmarks/packed_training_step.py --data-dir ../shared/data/imdb --steps 8

The nets are bidirectional, as in ``imdb-bigru.yaml``; ``--one-direction`` times those of the
one-direction recipes (``imdb-gru.yaml``, ``imdb-lstm.yaml``), where ``torch-lstm-padded``
(torch's LSTM on the padded batch, what ``imdb-lstm.yaml`` runs) may join the encoders. With
the recipes' data settings (whole reviews, 60,000 words)::

    python benchmarks/packed_training_step.py --one-direction --encoders ours,torch-lstm-padded \
        --max-length -1 --max-vocab-size 60000 --steps 30

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

# name: (encoder, backend, packed)
ENCODERS = {
    "ours": ("gru", "cython", True),
    "torch-gru": ("gru", "torch", True),
    "torch-lstm": ("lstm", "auto", True),
    "torch-lstm-padded": ("lstm", "auto", False),  # one direction only (see SentimentNet)
}
PACKED = [name for name, (_, _, packed) in ENCODERS.items() if packed]


class Stepper:
    """One encoder's net and optimizer; ``step`` trains on a batch and returns its seconds."""

    def __init__(
        self, vocab_size: int, bidirectional: bool, encoder: str, backend: str, packed: bool
    ) -> None:
        torch.manual_seed(0)
        self.net = SentimentNet(
            vocab_size, 128, encoder, 128, bidirectional=bidirectional, dropout=0.5,
            backend=backend, pooling="max_mean", packed=packed,
        )  # fmt: skip
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=1e-3)

    def step(self, batch: dict) -> float:
        start = time.perf_counter()
        loss = F.cross_entropy(self.net(batch["input_ids"], batch["lengths"]), batch["labels"])
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return time.perf_counter() - start


def step_times(
    batches: list[dict], vocab_size: int, encoders: list[str], bidirectional: bool = True
) -> dict[str, list[float]]:
    """Seconds of each encoder's step on every batch: after one untimed warm-up step each, the
    encoders take turns batch by batch, the order rotated at every batch."""
    steppers = {name: Stepper(vocab_size, bidirectional, *ENCODERS[name]) for name in encoders}
    for stepper in steppers.values():
        stepper.step(batches[0])  # warm-up: thread pools, first allocations
    times: dict[str, list[float]] = {name: [] for name in steppers}
    names = list(steppers)
    for i, batch in enumerate(batches):
        for name in names[i % len(names) :] + names[: i % len(names)]:
            times[name].append(steppers[name].step(batch))
    return times


def review_length(text: str) -> int:
    """An argparse ``type``: a positive number of tokens, or -1 for whole reviews."""
    value = int(text)
    if value < 1 and value != -1:
        raise argparse.ArgumentTypeError(f"must be a positive int or -1, got {text!r}")
    return value


def encoder_list(text: str) -> list[str]:
    """An argparse ``type``: comma-separated names of ``ENCODERS``."""
    names = [name.strip() for name in text.split(",")]
    unknown = [name for name in names if name not in ENCODERS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown encoder(s) {unknown}; known: {list(ENCODERS)}")
    return names


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default="../shared/data/imdb")
    parser.add_argument("--steps", type=positive(int), default=8, help="training batches")
    parser.add_argument(
        "--max-length", type=review_length, default=500, help="tokens a review (-1: all)"
    )
    parser.add_argument(
        "--max-vocab-size", type=positive(int), default=25000, help="words of the vocabulary"
    )
    parser.add_argument(
        "--one-direction", action="store_true", help="the one-direction recipes' nets"
    )
    parser.add_argument(
        "--encoders",
        type=encoder_list,
        help=f"comma-separated, of {list(ENCODERS)} (default: {','.join(PACKED)}, and "
        "torch-lstm-padded with --one-direction)",
    )
    options = parser.parse_args(argv)
    encoders = options.encoders or (list(ENCODERS) if options.one_direction else PACKED)
    if "torch-lstm-padded" in encoders and not options.one_direction:
        parser.error("torch-lstm-padded runs one direction only: add --one-direction")

    data = IMDbDataModule(
        data_dir=options.data_dir,
        max_length=options.max_length,
        max_vocab_size=options.max_vocab_size,
    )
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
        f"{torch.get_num_threads()} threads, "
        f"{'one direction' if options.one_direction else 'bidirectional'}"
    )
    medians = {}
    times_of = step_times(batches, data.vocab_size, encoders, not options.one_direction)
    for name, times in times_of.items():
        medians[name] = statistics.median(times)
        rate = tokens / sum(times)
        print(f"{name:17s} median step {medians[name] * 1e3:8.0f} ms  {rate:9,.0f} tokens/s")
    summary = {name: round(value, 4) for name, value in medians.items()}
    if "ours" in medians and "torch-gru" in medians:
        summary["torch_gru_over_ours"] = round(medians["torch-gru"] / medians["ours"], 1)
    print(json.dumps(summary | {"threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
