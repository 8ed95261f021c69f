"""How to generate, and what generation returns: SampleOptions, Sample, Generation.

Owns: the sampling options and their checks, and the result types. Does not know: models or
vocabularies.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

from charlstm.errors import CharlstmError
from charlstm.units import Clamp


@dataclass
class SampleOptions:
    """How to generate. length counts vocabulary units (characters, or bytes for byte models)."""

    length: int = 500
    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None
    greedy: bool = False
    num_samples: int = 1
    seed: int | None = None  # None: a fresh random seed, reported in the result
    stop: tuple[str, ...] = ()  # a sample ends after the first of these it writes (included)
    stop_at_eot: bool = True  # end a sample at <eot> (not included) when the vocabulary has one
    clamp: tuple[Clamp, ...] = ()
    clamp_prime: bool = False

    def validate(self) -> None:
        if self.length < 0:
            raise CharlstmError(f"length must be 0 or more, got {self.length}")
        if not self.temperature > 0 or not math.isfinite(self.temperature):
            raise CharlstmError(f"temperature must be a positive number, got {self.temperature}; use --greedy for argmax")
        if self.top_k is not None and self.top_k < 1:
            raise CharlstmError(f"top-k must be at least 1, got {self.top_k}")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            raise CharlstmError(f"top-p must be in (0, 1], got {self.top_p}")
        if self.num_samples < 1:
            raise CharlstmError(f"num-samples must be at least 1, got {self.num_samples}")
        if any(s == "" for s in self.stop):
            raise CharlstmError("a stop string cannot be empty")


@dataclass
class Sample:
    """One generated continuation (the prime is not included).

    text: the decoded text, ending with the stop string that ended it, if any.
    ids: the generated ids up to and including the one that completed the text (no <eot>).
    stop_reason: "length", "eot" or "stop".
    """

    text: str
    ids: list[int]
    stop_reason: str


@dataclass
class Generation:
    samples: list[Sample]
    seed: int
    steps: int = 0  # model steps taken after the prime (for tests of O(1) work per character)
    prime_ids: list[int] = field(default_factory=list)

    def _repr_html_(self) -> str:
        """Jupyter shows a generation as a table of its samples (charlstm.viz.notebook)."""
        from charlstm.viz.notebook import samples_html

        return samples_html(self.samples, seed=self.seed)


def fresh_seed() -> int:
    return int.from_bytes(os.urandom(4), "little") & 0x7FFFFFFF


