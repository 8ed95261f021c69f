"""What a training run shows a person: the progress bar, plain lines, warnings and samples.

Everything goes to stderr and only from rank 0. On a terminal a tqdm bar shows progress (towards the
step cap or the time budget, whichever ends first), the loss, the last validation bpc and the speed;
when stderr is a file or a pipe the bar is off and each evaluation prints one plain line instead.
`quiet` silences all of it except warnings and the message saying where an interrupted run stopped.
"""
from __future__ import annotations

import sys
from typing import Any

import torch

from charlstm.model import CharRNN


def describe(rec: dict[str, Any]) -> str:
    """'loss 1.234, val 1.876 bpc, 12.3k chars/s' from a metrics record (missing parts left out)."""
    parts = []
    if rec.get("train_loss") is not None:
        parts.append(f"loss {rec['train_loss']:.3f}")
    if rec.get("val_bpc") is not None:
        parts.append(f"val {rec['val_bpc']:.3f} bpc")
    if rec.get("chars_per_s"):
        parts.append(f"{rate(rec['chars_per_s'])} chars/s")
    return ", ".join(parts)


def rate(chars_per_s: float) -> str:
    """12345 -> '12.3k', 850 -> '850'."""
    return f"{chars_per_s / 1000:.1f}k" if chars_per_s >= 1000 else f"{chars_per_s:.0f}"


class Progress:
    """The display of one training session. `show` is False on ranks other than 0. The bar appears
    at `start` (after every check has passed, so an error is never printed under a half-drawn bar)."""

    def __init__(self, show: bool, quiet: bool):
        self.show, self.quiet = show, quiet
        self.bar = None

    def start(self, progress: float, step: int) -> None:
        from tqdm import tqdm

        # disable=None: tqdm draws the bar only on a terminal
        self.bar = tqdm(total=1000, disable=True if (self.quiet or not self.show) else None, file=sys.stderr,
                        dynamic_ncols=True, leave=True,
                        bar_format="{percentage:3.0f}%|{bar:20}| {desc} [{elapsed}<{remaining}]")
        self.bar.n = int(1000 * progress)
        self.bar.set_description_str(f"step {step}", refresh=False)

    def say(self, msg: str, always: bool = False) -> None:
        """An informational line (kept clear of the bar); `always` prints it even when quiet."""
        from tqdm import tqdm

        if self.show and (always or not self.quiet):
            tqdm.write(msg, file=sys.stderr)

    def warn(self, msg: str) -> None:
        self.say(f"Warning: {msg}", always=True)

    def update(self, progress: float, step: int, total_steps: int | None, rec: dict[str, Any],
               last_val: float | None) -> None:
        """After a log point: move the bar (or, without a bar, print evaluations as plain lines)."""
        if self.bar is not None and not self.bar.disable:
            self.bar.n = int(1000 * progress)
            steps = f"step {step}" + (f"/{total_steps}" if total_steps else "")
            self.bar.set_description_str(steps + ", " + describe({**rec, "val_bpc": last_val}), refresh=False)
            self.bar.refresh()
        elif "val_bpc" in rec:
            self.say(f"step {step}: " + describe(rec))

    def sample(self, step: int, val_bpc: float, text: str) -> None:
        self.say(f"--- sample at step {step} (val {val_bpc:.3f} bpc) ---\n{text}\n---")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


@torch.no_grad()
def quick_sample(model: CharRNN, vocab, n: int, temperature: float = 0.8, seed: int = 0,
                 prime: str = "\n") -> str:
    """A short sample to show progress: temperature sampling on the carried state, O(1) per character.

    Uses its own generator, so printing samples never changes the training RNG (exact resume).
    """
    was_training = model.training
    model.eval()
    dev = model.head.weight.device
    g = torch.Generator().manual_seed(seed)
    ids = vocab.encode(prime, unknown="skip").tolist() or [vocab.eot_id if vocab.eot_id is not None else 0]
    logits, state = model(torch.tensor([ids], device=dev))
    out = []
    for _ in range(n):
        p = torch.softmax(logits[0, -1].float().cpu() / temperature, -1)
        nxt = int(torch.multinomial(p, 1, generator=g))
        out.append(nxt)
        logits, state = model(torch.tensor([[nxt]], device=dev), state)
    model.train(was_training)
    return vocab.decode(out)
