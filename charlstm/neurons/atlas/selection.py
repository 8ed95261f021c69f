"""Which features an atlas looks for, on which characters, and how the text is split in two.

* Targets. A run's dataset says what kind of text it was trained on (meta.json "source": code,
  text, tweets, or a synthetic task). Code runs get the code features of the library
  (charlstm.neurons.features.DOMAINS: strings, comments, bracket depths, indentation, line
  position...), prose runs the prose ones, tweet runs the tweet ones; a synthetic task gets its own
  variables (`TASKS`). The user adds any feature `--feature` accepts. A target may carry a *span*,
  a binary feature restricting the characters it is scored on (the remember task's memory only
  matters from the first letter to the Y).
* Parts. The text is cut into `blocks` contiguous blocks; the even ones are the *selection* part
  (where units are ranked and chosen) and the odd ones the *confirmation* part (where the chosen
  units are scored again). Blocks rather than halves, so that both parts sample the whole text.
* Key predictions: which predictions a feature should matter most for (`key_predictions`), where
  an ablation is also measured.

Owns: TASKS, `targets_for`, `parts`, `key_predictions`. Does not know: models or traces.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from charlstm.neurons.features import features_for, get_feature

#: The variables of each synthetic task: (feature, span or None, what it is).
TASKS: dict[str, list[tuple[str, str | None, str]]] = {
    "counting": [("count:a-b", None, "the running count #a - #b of the task")],
    "selective-counting": [("count:a-b", None, "the running count #a - #b (the X's are distractors)")],
    "remember": [("regex:A[xY]*", "regex:[AB][xY]*", "the sequence began with A (not B), held from the letter to the Y")],
    "copy": [(f"next:{c}", "regex:X[abc]{2}", f"the next character to copy is {c}") for c in "abc"],
}
#: A binary feature needs at least this many characters on and off in each part to be scored.
MIN_EACH = 5


@dataclass(frozen=True)
class Target:
    """A feature to rank units against. name: anything `get_feature` reads; span: an optional binary
    feature whose 1s are the characters scored; why: where it came from (for the report)."""

    name: str
    span: str | None = None
    why: str = ""


def corpus_kind(run_config: dict[str, Any]) -> tuple[str, str | None]:
    """(kind, task) of the run's training data from its config.json: kind is "code", "text",
    "tweets", "synthetic" or "unknown"; task is the synthetic task's name (else None)."""
    meta = ((run_config or {}).get("dataset") or {}).get("meta") or {}
    source = meta.get("source") or {}
    kind = source.get("kind") or "unknown"
    if kind not in ("code", "text", "tweets", "synthetic"):
        kind = "unknown"
    task = source.get("task") if kind == "synthetic" else None
    return kind, task


def targets_for(run_config: dict[str, Any], extra: Sequence[str] = ()) -> list[Target]:
    """The targets of an atlas: the features meant for the run's kind of text (a synthetic task's own
    variables; every named feature when the kind is unknown), then each of `extra` (user features,
    checked with get_feature) not already there."""
    kind, task = corpus_kind(run_config)
    if kind == "synthetic":
        out = [Target(n, s, w) for n, s, w in TASKS.get(task or "", [])]
        if not out:
            out = [Target(n, None, "a feature of the library") for n in features_for("unknown")]
    else:
        what = {"code": "a code feature", "text": "a prose feature", "tweets": "a tweet feature"}.get(kind, "a feature")
        out = [Target(n, None, f"{what} of the library") for n in features_for(kind)]
    have = {t.name for t in out}
    for name in extra:
        get_feature(name)  # an unknown feature is an error before any work
        if name not in have:
            out.append(Target(name, None, "asked for with --feature"))
            have.add(name)
    return out


def parts(n: int, blocks: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """(selection, confirmation): bool [n] each, the even and the odd ones of `blocks` contiguous,
    nearly equal blocks (fewer blocks when the text is short: at least 2 characters a block)."""
    blocks = max(2, min(int(blocks), n // 2)) if n >= 4 else 2
    edges = np.linspace(0, n, blocks + 1).round().astype(np.int64)
    which = np.zeros(n, np.int64)
    for b in range(blocks):
        which[edges[b]:edges[b + 1]] = b
    select = which % 2 == 0
    return select, ~select


def usable(values: np.ndarray, kind: str, rows: np.ndarray) -> str | None:
    """Why a feature cannot be scored on these rows (bool [n]), or None when it can: it must vary,
    and a binary one needs MIN_EACH characters on and off."""
    v = values[rows]
    if len(v) < 3 or v.max() == v.min():
        return "constant"
    if kind == "binary":
        on = int((v > 0.5).sum())
        if min(on, len(v) - on) < MIN_EACH:
            return f"only {min(on, len(v) - on)} character(s) {'on' if on < len(v) - on else 'off'}"
    return None


def key_predictions(name: str, kind: str, values: np.ndarray, span: np.ndarray | None,
                    line_end: np.ndarray) -> tuple[np.ndarray, str]:
    """The predictions a feature matters most for, as bool [T - 1] over predictions (entry t
    predicts character t + 1 from characters 0..t), and a phrase saying which they are:

    * next:X: the predictions of X itself (where the feature is on);
    * with a span: the prediction just after it (what the memory is for);
    * line-position, record-position: the line or record ends (line_end bool [T] of the target);
    * other binary features: the character that closes them (on at t, off at t + 1);
    * other continuous features: where the feature falls (closing brackets, a dedent, the b's)."""
    v = np.asarray(values)
    now, nxt = v[:-1], v[1:]
    if name.startswith("next:"):
        key, what = now > 0.5, f"the predictions of {name[5:]!r}"
        if span is not None:
            key &= span[:-1]
    elif span is not None:
        key, what = span[:-1] & ~span[1:], "the prediction right after the span"
    elif name in ("line-position", "record-position"):
        key, what = np.asarray(line_end)[1:].copy(), "line ends" if name == "line-position" else "record ends"
    elif kind == "binary":
        key, what = (now > 0.5) & (nxt <= 0.5), "the character that closes it"
    else:
        key, what = nxt < now, "where it falls"
    return np.asarray(key, bool), what
