"""The synthetic tasks of the source experiments (docs: MISSION.md), as record datasets.

    counting            aaaaaXbbbbb      N a's, X, N b's                            N in [1, 10]
    selective-counting  aaXaXaaYbbbbb    N a's mixed with 0..max_n X's, Y, N b's    N in [1, 10]
    remember            AxxxxxxYa        A or B, N x's, Y, the first letter lower   N in [1, 10]
    copy                baaXbaa          an N-letter string over {a, b, c}, X, it   N = 3

N is drawn uniformly from [min_n, max_n] (the defaults above; `copy` uses them as the string
length). Each sequence is one record ending in <eot>, so a model also learns where a sequence ends.
Generation uses Python's `random.Random(seed)`: the same seed gives the same sequences everywhere.
"""
from __future__ import annotations

import os
import random
from dataclasses import replace
from typing import Callable

from charlstm.corpora.build import EncodeOptions, dataset_dir, write_records
from charlstm.dataset import Dataset
from charlstm.errors import CharlstmError


def _counting(rng: random.Random, n: int, max_n: int) -> str:
    return "a" * n + "X" + "b" * n


def _selective(rng: random.Random, n: int, max_n: int) -> str:
    body = ["a"] * n + ["X"] * rng.randint(0, max_n)
    rng.shuffle(body)
    return "".join(body) + "Y" + "b" * n


def _remember(rng: random.Random, n: int, max_n: int) -> str:
    first = rng.choice("AB")
    return first + "x" * n + "Y" + first.lower()


def _copy(rng: random.Random, n: int, max_n: int) -> str:
    s = "".join(rng.choice("abc") for _ in range(n))
    return s + "X" + s


TASKS: dict[str, tuple[Callable[[random.Random, int, int], str], int, int]] = {
    # task: (generator, default min_n, default max_n)
    "counting": (_counting, 1, 10),
    "selective-counting": (_selective, 1, 10),
    "remember": (_remember, 1, 10),
    "copy": (_copy, 3, 3),
}


def task_range(task: str, min_n: int | None = None, max_n: int | None = None) -> tuple[int, int]:
    """The (min_n, max_n) a task uses: the given values, else the task's defaults (validated)."""
    if task not in TASKS:
        raise CharlstmError(f"unknown task '{task}'; choose one of: {', '.join(TASKS)}")
    _, lo, hi = TASKS[task]
    lo = lo if min_n is None else min_n
    hi = max(hi, lo) if max_n is None else max_n
    if lo < 1:
        raise CharlstmError(f"--min-n must be at least 1, got {lo}")
    if hi < lo:
        raise CharlstmError(f"--max-n ({hi}) must be at least --min-n ({lo})")
    return lo, hi


def generate(task: str, num: int = 10000, min_n: int | None = None, max_n: int | None = None,
             seed: int = 0) -> list[str]:
    """`num` sequences of a task (without <eot>), e.g. generate("counting", 3, seed=1) ->
    ['aaaXbbb', 'aaaaaaaaaaXbbbbbbbbbb', 'aaXbb']."""
    lo, hi = task_range(task, min_n, max_n)
    if num < 1:
        raise CharlstmError(f"--num must be at least 1, got {num}")
    fn = TASKS[task][0]
    rng = random.Random(seed)
    return [fn(rng, rng.randint(lo, hi), hi) for _ in range(num)]


def write_synthetic(task: str, name: str | None = None, *, num: int = 10000, min_n: int | None = None,
                    max_n: int | None = None, seed: int = 0, opts: EncodeOptions | None = None,
                    data_dir: str | os.PathLike | None = None, force: bool = False) -> Dataset:
    """Generate a task's sequences and write them as a record dataset (name defaults to the task).

    `seed` both generates the sequences and deals them into splits (it replaces opts.seed)."""
    lo, hi = task_range(task, min_n, max_n)
    opts = replace(opts or EncodeOptions(), seed=seed)
    opts.validate()
    out = dataset_dir(name or task, data_dir, force)
    records = generate(task, num, lo, hi, seed)
    return write_records(out, records, opts, source={"kind": "synthetic", "task": task},
                         options={"num": num, "min_n": lo, "max_n": hi}, stats={}, force=force,
                         what="sequences")
