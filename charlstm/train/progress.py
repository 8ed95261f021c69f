"""What a training run shows a person: the progress bar, plain lines, warnings and samples.

Owns the display only; it is told what happened (charlstm.train.loop) and prints it.

Everything goes to stderr and only from rank 0. On a terminal a tqdm bar shows progress (towards the
step cap or the time budget, whichever ends first), the loss, the last validation bpc and the speed;
when stderr is a file or a pipe (nohup, a log file, CI) the bar is off and a plain line is printed
instead at every evaluation and every PLAIN_EVERY seconds: step, progress, loss, bpc, speed, ETA.
`quiet` silences all of it except warnings and the message saying where an interrupted run stopped.
Ctrl-C and SIGTERM are the person's way to talk back: `StopSignals` turns them into a request to stop
at the next step boundary (and save), a second Ctrl-C into an immediate stop.
"""
from __future__ import annotations

import signal
import sys
import threading
from typing import Any

from tqdm import tqdm

from charlstm.model import CharRNN
from charlstm.sample import SampleOptions, generate


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


PLAIN_EVERY = 30.0  # seconds between plain progress lines when there is no bar


def duration(seconds: float) -> str:
    """95 -> '1m35s', 3725 -> '1h02m', 42 -> '42s'."""
    s = int(round(max(seconds, 0.0)))
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


def plain_line(step: int, total_steps: int | None, progress: float, rec: dict[str, Any], last_val: float | None) -> str:
    """'step 1200/5000 (24%): loss 1.520 (2.193 bpc), val 2.310 bpc, 12.3k chars/s, 3m02s elapsed, ETA 9m30s'."""
    head = f"step {step}" + (f"/{total_steps}" if total_steps else "") + f" ({100 * progress:.0f}%)"
    parts = []
    if rec.get("train_loss") is not None:
        parts.append(f"loss {rec['train_loss']:.3f} ({rec['train_bpc']:.3f} bpc)")
    val = rec.get("val_bpc", last_val)
    if val is not None:
        parts.append(f"val {val:.3f} bpc")
    if rec.get("chars_per_s"):
        parts.append(f"{rate(rec['chars_per_s'])} chars/s")
    elapsed = float(rec.get("time") or 0.0)
    parts.append(f"{duration(elapsed)} elapsed")
    if 0 < progress < 1:
        parts.append(f"ETA {duration(elapsed * (1 - progress) / progress)}")
    return head + ": " + ", ".join(parts)


class Progress:
    """The display of one training session. `show` is False on ranks other than 0. The bar appears
    at `start` (after every check has passed, so an error is never printed under a half-drawn bar)."""

    def __init__(self, show: bool, quiet: bool):
        self.show, self.quiet = show, quiet
        self.bar = None
        self.last_plain: float | None = None  # run time of the last plain line

    def start(self, progress: float, step: int) -> None:
        # disable=None: tqdm draws the bar only on a terminal
        self.bar = tqdm(total=1000, disable=True if (self.quiet or not self.show) else None, file=sys.stderr,
                        dynamic_ncols=True, leave=True,
                        bar_format="{percentage:3.0f}%|{bar:20}| {desc} [{elapsed}<{remaining}]")
        self.bar.n = int(1000 * progress)
        self.bar.set_description_str(f"step {step}", refresh=False)

    def say(self, msg: str, always: bool = False) -> None:
        """An informational line (kept clear of the bar); `always` prints it even when quiet."""
        if self.show and (always or not self.quiet):
            tqdm.write(msg, file=sys.stderr)

    def warn(self, msg: str) -> None:
        self.say(f"Warning: {msg}", always=True)

    def update(self, progress: float, step: int, total_steps: int | None, rec: dict[str, Any],
               last_val: float | None) -> None:
        """After a log point: move the bar, or, without a bar, print a plain line at each evaluation
        and every PLAIN_EVERY seconds of the run."""
        if self.bar is not None and not self.bar.disable:
            self.bar.n = int(1000 * progress)
            steps = f"step {step}" + (f"/{total_steps}" if total_steps else "")
            self.bar.set_description_str(steps + ", " + describe({**rec, "val_bpc": last_val}), refresh=False)
            self.bar.refresh()
            return
        now = float(rec.get("time") or 0.0)
        if "val_bpc" in rec or self.last_plain is None or now - self.last_plain >= PLAIN_EVERY:
            self.last_plain = now
            self.say(plain_line(step, total_steps, progress, rec, last_val))

    def sample(self, step: int, val_bpc: float, text: str) -> None:
        self.say(f"--- sample at step {step} (val {val_bpc:.3f} bpc) ---\n{text}\n---")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def quick_sample(model: CharRNN, vocab, n: int, temperature: float = 0.8, seed: int = 0) -> str:
    """A short sample to show progress: charlstm.sample.generate from the start of a text, with its
    own seeded generator, so printing samples never changes the training RNG (exact resume)."""
    was_training = model.training
    model.eval()
    try:
        g = generate(model, vocab, [], SampleOptions(length=n, temperature=temperature, seed=seed))
    finally:
        model.train(was_training)
    return g.samples[0].text


class StopSignals:
    """While installed, Ctrl-C / SIGTERM set `trainer.stop_reason = "interrupted"` (the loop stops at
    the next step boundary and saves); a second Ctrl-C raises KeyboardInterrupt. Only the main
    thread can install signal handlers; elsewhere this does nothing. `restore()` puts the old ones back."""

    def __init__(self, trainer: Any):
        self._old: dict[int, Any] = {}
        if threading.current_thread() is not threading.main_thread():
            return

        def handler(signum, frame):
            if trainer.stop_reason is not None and signum == signal.SIGINT:
                raise KeyboardInterrupt  # second Ctrl-C: stop now
            trainer.stop_reason = "interrupted"
            trainer.ui.say(f"{signal.Signals(signum).name} received: stopping after this step and saving a checkpoint "
                           "(Ctrl-C again to abort without saving)", always=True)

        for sig in (signal.SIGINT, signal.SIGTERM):
            self._old[sig] = signal.signal(sig, handler)

    def restore(self) -> None:
        for sig, h in self._old.items():
            signal.signal(sig, h)
