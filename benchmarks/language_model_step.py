"""The time-machine language model's training step outside Lightning, with both GRU backends.

``recipe_throughput.py`` measures the recipe inside Lightning's loop. This times the same step
without it, so that the two together show what the loop adds: d2l's setup (one-hot inputs of
28 characters, batch 32, 35 steps, hidden 256, SGD with learning rate 1, gradient norm clipped
at 1, the state carried from one batch to the next), in three parts per step: the forward, the
loss and backward, the clipping and the optimizer step. Rounds of ``--steps`` steps alternate
between ``backend="cython"`` and ``backend="torch"`` (same initial weights, same batches); the
medians over all steps of each backend are printed, then their ratio::

    .venv/bin/python benchmarks/language_model_step.py --rounds 6 --steps 30
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F
from bench_gru import interleaved, positive  # benchmarks/ is on sys.path as a script

from lightning_gru.models.language_model import LanguageModelNet

VOCAB, BATCH, STEPS, HIDDEN = 28, 32, 35, 256
PARTS = ("forward", "loss and backward", "clipping and SGD step")


class Trainer:
    """One backend's model, optimizer and carried state; ``step`` returns its parts' seconds."""

    def __init__(self, backend: str) -> None:
        torch.manual_seed(0)
        self.net = LanguageModelNet(VOCAB, "gru", HIDDEN, backend=backend)
        self.optimizer = torch.optim.SGD(self.net.parameters(), lr=1.0)
        self.state = None

    def step(self, ids: torch.Tensor, targets: torch.Tensor) -> tuple[float, float, float]:
        start = time.perf_counter()
        logits, state = self.net(ids, self.state)  # (B, T, V)
        forward = time.perf_counter()
        # time-major rows, as the logits are stored (the LanguageModel's own loss)
        loss = F.cross_entropy(logits.transpose(0, 1).flatten(0, 1), targets.T.flatten())
        self.optimizer.zero_grad()
        loss.backward()
        backward = time.perf_counter()
        torch.nn.utils.clip_grad_norm_(self.net.parameters(), 1.0)
        self.optimizer.step()
        end = time.perf_counter()
        self.state = state.detach()
        return forward - start, backward - forward, end - backward


def measure(rounds: int, steps: int) -> dict[str, list[float]]:
    """Median milliseconds of each part, per backend, over ``rounds`` alternating rounds."""
    generator = torch.Generator().manual_seed(0)
    batches = [
        torch.randint(0, VOCAB, (2, BATCH, STEPS), generator=generator) for _ in range(steps)
    ]
    trainers = {backend: Trainer(backend) for backend in ("cython", "torch")}
    samples: dict[str, list[tuple[float, float, float]]] = {name: [] for name in trainers}
    for trainer in trainers.values():  # warm-up: thread pools, first allocations
        for ids, targets in batches[:3]:
            trainer.step(ids, targets)
    for name in interleaved(trainers, rounds):
        samples[name] += [trainers[name].step(ids, targets) for ids, targets in batches]
    return {
        name: [statistics.median(step[i] for step in parts) * 1e3 for i in range(len(PARTS))]
        for name, parts in samples.items()
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=positive(int), default=6, help="alternating rounds")
    parser.add_argument("--steps", type=positive(int), default=30, help="steps per round")
    options = parser.parse_args(argv)
    result = measure(options.rounds, options.steps)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; median ms per step")
    for name, parts in result.items():
        cells = ", ".join(f"{part} {ms:.2f}" for part, ms in zip(PARTS, parts, strict=True))
        print(f"{name}: {cells}; sum of the medians {sum(parts):.2f}")
    print(f"speed-up (of the sums) {sum(result['torch']) / sum(result['cython']):.2f}x")


if __name__ == "__main__":
    main()
