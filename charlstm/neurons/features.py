"""Per-character features of a text: the targets that neuron discovery correlates units against.

This module owns the feature library (quotes, strings, comments, bracket depths, indentation, line
position, tweet entities, counters for the synthetic tasks, user regexes and user Python functions),
its registry `FEATURES`, the parser of feature names (`get_feature`) and `compute`. It knows nothing
about models: a feature maps a text to one value per step, aligned with a trace's rows.

Alignment. A text is either a ``str`` (one step per character) or a sequence of symbols (one step per
symbol, e.g. ``["a", "b", "<eot>", "c"]`` as a char vocabulary decodes ids one by one; see
`to_symbols`). Every feature returns a float32 array of shape [steps]; binary features are 0/1.
The value at step t describes the reader's state *after reading* step t, as the trace row t does:

- a delimited span (quotes, strings, comments) is 1 from its opening delimiter up to, not including,
  the character that closes it: after reading the opening quote the reader is inside; after reading
  the closing quote it is outside. ``say "hi" now`` → ``000011100000`` for ``double-quote``.
- a token span (URL, @mention, #hashtag, regex match) is 1 on all its characters.
- depths count the opener itself and not the closer: ``f(a)`` → ``0 1 1 0``.
- positions count from 0 at the first character of a line; the newline belongs to the line it ends.

Record boundaries. ``<eot>`` ends a record (tweets, synthetic tasks). In a symbol sequence it is the
symbol ``"<eot>"``; in a ``str`` the literal five characters ``<eot>`` are taken as one boundary (all
five steps behave as the boundary). All state (quotes, strings, comments, depths, counters) resets at
a record boundary, and boundary steps have value 0 in every built-in feature except the positions,
``char:<eot>`` and ``next:<eot>``. Counters (``count:``) also reset at each newline, so one record
per line works too.

Modules: charlstm.neurons.textsteps (the step view), charlstm.neurons.scanners (the built-in
scanners); this module owns the registry, the parameterised forms and `compute`.
"""
from __future__ import annotations

import importlib
import importlib.util
import os
import re
from dataclasses import dataclass, field
from difflib import get_close_matches
from pathlib import Path
from typing import Callable

import numpy as np

from charlstm.errors import CharlstmError
from charlstm.neurons import scanners as sc
from charlstm.neurons.textsteps import (EOT, TAB_WIDTH, UNK, Kind, Steps, Text, char_mask, last_index, segment_cumsum,
                                        steps, to_symbols)

__all__ = [
    "DOMAINS", "Feature", "FEATURES", "PARAMETERISED", "features_for", "TAB_WIDTH", "Text", "compute", "get_feature",
    "feature_help", "to_symbols", "EOT", "UNK",
]

# ----------------------------------------------------------------------------------------------
# Registry


@dataclass(frozen=True)
class Feature:
    """A named per-character feature.

    name: how it is asked for (``indentation``, ``count:a-b``, ``regex:\\d+``, ``mymod:fn``).
    kind: ``"binary"`` (0/1: ranked by AUROC), ``"continuous"`` (ranked by Pearson r), or ``"auto"``
        for user functions that declare no kind (ranking infers it from the values).
    description: one line for listings.
    fn: the implementation (takes the internal step view; use `compute`).
    """

    name: str
    kind: Kind
    description: str
    fn: Callable[[Steps], np.ndarray] = field(repr=False, compare=False)

    def compute(self, text: Text) -> np.ndarray:
        """float32 [steps] values of this feature on `text`."""
        return compute(self, text)


def _f(name: str, kind: Kind, description: str, fn: Callable[[Steps], np.ndarray]) -> Feature:
    return Feature(name, kind, description, fn)


FEATURES: dict[str, Feature] = {f.name: f for f in [
    _f("double-quote", "binary", 'inside "..." (prose quoting: spans lines, \\" escaped, “ ” too)', sc.double_quote),
    _f("single-quote", "binary", "inside '...' (apostrophes between letters ignored, ‘ ’ too)", sc.single_quote),
    _f("string", "binary", "inside a code string literal: ' \" and triple quotes, backslash escapes, not in comments",
       sc.string),
    _f("comment", "binary", "inside a code comment: # or // to end of line, /* ... */; not in strings", sc.comment),
    _f("bracket-depth", "continuous", "nesting depth of ( [ { together", lambda s: sc.depth(s, "([{", ")]}")),
    _f("paren-depth", "continuous", "nesting depth of ( )", lambda s: sc.depth(s, "(", ")")),
    _f("square-depth", "continuous", "nesting depth of [ ]", lambda s: sc.depth(s, "[", "]")),
    _f("curly-depth", "continuous", "nesting depth of { }", lambda s: sc.depth(s, "{", "}")),
    _f("indentation", "continuous", f"leading whitespace columns of the line (tab = next multiple of {TAB_WIDTH})",
       sc.indentation),
    _f("line-position", "continuous", "position in the line: 0 at the first character after a newline",
       sc.line_position),
    _f("record-position", "continuous", "position in the record: 0 at the first character after <eot>",
       sc.record_position),
    _f("upper", "binary", "an upper-case letter", sc.upper),
    _f("caps-word", "binary", "in an all-capitals word of two or more letters (NATO, SHOUTING)", sc.caps_word),
    _f("digit", "binary", "a digit", sc.digit),
    _f("whitespace", "binary", "a space, tab, newline or other whitespace", sc.whitespace),
    _f("url", "binary", "in a URL (scheme:// or www., to whitespace, trailing punctuation excluded)",
       sc.regex_feature(sc.URL)),
    _f("mention", "binary", "in an @mention (@name, not in emails)", sc.regex_feature(sc.MENTION)),
    _f("hashtag", "binary", "in a #hashtag (#tag with at least one letter)", sc.regex_feature(sc.HASHTAG)),
]}

#: Which corpora each named feature is meant for, by a dataset's source kind ("code": charlstm data
#: code, "text": prose, "tweets"): what `charlstm atlas` tries on a run of that kind (it then keeps
#: those that vary on the text). Every name of FEATURES has an entry (tests hold it to that).
DOMAINS: dict[str, tuple[str, ...]] = {
    "double-quote": ("text", "tweets"),
    "single-quote": ("text",),
    "string": ("code",),
    "comment": ("code",),
    "bracket-depth": ("code",),
    "paren-depth": ("code", "text"),
    "square-depth": ("code",),
    "curly-depth": ("code",),
    "indentation": ("code",),
    "line-position": ("code", "text"),
    "record-position": ("tweets",),
    "upper": ("text", "tweets"),
    "caps-word": ("text", "tweets"),
    "digit": ("code", "text", "tweets"),
    "whitespace": ("code", "text", "tweets"),
    "url": ("text", "tweets"),
    "mention": ("tweets",),
    "hashtag": ("tweets",),
}


def features_for(domain: str) -> list[str]:
    """The named features meant for a corpus kind ("code", "text", "tweets"), in FEATURES order;
    every named feature for an unknown kind."""
    known = {d for ds in DOMAINS.values() for d in ds}
    return [n for n in FEATURES if domain not in known or domain in DOMAINS.get(n, ())]


#: The parameterised forms `get_feature` understands, with what they mean.
PARAMETERISED: dict[str, str] = {
    "char:X": "binary: the character is X (X one character, an escape \\n \\t \\r \\s \\\\, or <eot>)",
    "next:X": "binary: the NEXT character is X (what a unit predicting X would track)",
    "count:P": "continuous: how many characters of P were read since the line/record started "
               "(count:a, count:aA)",
    "count:P-N": "continuous: #P minus #N since the line/record started (count:a-b rises on a's, falls "
                 "on b's); split at the first '-' after the first character, \\- is a literal '-'",
    "since:X": "continuous: characters read since the last X or record start (0 at the X itself)",
    "regex:PATTERN": "binary: inside a match of the Python regex PATTERN (run on the text as written)",
    "module:function": "a Python function text -> one value per character (import path)",
    "path/to/file.py:function": "the same, loaded from a file",
}

_PREFIXES = ("char", "next", "count", "since", "regex")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "s": " ", "\\": "\\", "-": "-"}


def _unescape(param: str, name: str, keep_dash: bool = False) -> list[tuple[str, bool]]:
    """Parse escapes; returns (character, was_escaped) pairs so `count:` can tell \\- from -."""
    out: list[tuple[str, bool]] = []
    i = 0
    while i < len(param):
        ch = param[i]
        if ch == "\\" and i + 1 < len(param):
            esc = param[i + 1]
            if esc not in _ESCAPES:
                raise CharlstmError(f"unknown escape \\{esc} in feature {name!r}; use \\n \\t \\r \\s \\\\ or \\-")
            out.append((_ESCAPES[esc], True))
            i += 2
        else:
            out.append((ch, False))
            i += 1
    return out


def _one_char(param: str, name: str) -> str:
    if param == EOT:
        return EOT
    chars = _unescape(param, name)
    if len(chars) != 1:
        raise CharlstmError(f"feature {name!r} needs exactly one character after ':' (or <eot>, \\n, \\t, \\s)")
    return chars[0][0]


def _char_feature(name: str, target: str, shift: int) -> Feature:
    def fn(s: Steps) -> np.ndarray:
        mask = s.eot.copy() if target == EOT else char_mask(s, target)
        if shift:
            mask = np.concatenate([mask[1:], [False]]) if s.n else mask
        return mask.astype(np.float32)

    what = "<eot>" if target == EOT else repr(target)
    desc = f"the character is {what}" if not shift else f"the next character is {what}"
    return Feature(name, "binary", desc, fn)


def _count_feature(name: str, param: str) -> Feature:
    chars = _unescape(param, name)
    split = next((i for i, (c, esc) in enumerate(chars) if i > 0 and c == "-" and not esc), None)
    plus = "".join(c for c, _ in (chars if split is None else chars[:split]))
    minus = "" if split is None else "".join(c for c, _ in chars[split + 1:])
    if not plus or (split is not None and not minus):
        raise CharlstmError(f"feature {name!r}: expected count:P or count:P-N with characters P and N, e.g. count:a-b")
    if "\n" in plus + minus:
        raise CharlstmError(f"feature {name!r}: a newline resets the count, so it cannot be counted")

    def fn(s: Steps) -> np.ndarray:
        contrib = char_mask(s, plus).astype(np.float64)
        if minus:
            contrib -= char_mask(s, minus)
        reset = s.eot | char_mask(s, "\n")
        contrib[reset] = 0
        return segment_cumsum(contrib, reset).astype(np.float32)

    desc = f"#{plus!r} since the line/record start" + (f" minus #{minus!r}" if minus else "")
    return Feature(name, "continuous", desc, fn)


def _since_feature(name: str, target: str) -> Feature:
    def fn(s: Steps) -> np.ndarray:
        hit = s.eot.copy() if target == EOT else char_mask(s, target) | s.eot
        t = np.arange(s.n)
        return (t - last_index(hit, inclusive=True)).astype(np.float32) * ~s.eot

    return Feature(name, "continuous", f"characters since the last {target!r} or record start", fn)


def _compile_regex(name: str, pattern: str) -> re.Pattern:
    if not pattern:
        raise CharlstmError("feature 'regex:' needs a pattern, e.g. regex:[A-Z][a-z]+")
    try:
        return re.compile(pattern)
    except re.error as e:
        raise CharlstmError(f"feature {name!r}: invalid regular expression: {e}") from None


def _load_function(name: str) -> Callable:
    target, _, func = name.rpartition(":")
    if not func.isidentifier():
        raise CharlstmError(f"feature {name!r}: {func!r} is not a function name (expected module:function "
                            f"or path/to/file.py:function)")
    is_file = target.endswith(".py") or "/" in target or os.sep in target
    if is_file:
        path = Path(target).expanduser()
        if not path.is_file():
            raise CharlstmError(f"feature {name!r}: no such file {str(path)!r}")
        mod_name = f"_charlstm_feature_{abs(hash(str(path.resolve())))}"
        spec = importlib.util.spec_from_file_location(mod_name, path)
        if spec is None or spec.loader is None:
            raise CharlstmError(f"feature {name!r}: cannot load {str(path)!r} as a Python file")
        module = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(module)
        except Exception as e:  # the user's file: any error in it is a user error
            raise CharlstmError(f"feature {name!r}: importing {str(path)!r} failed: {type(e).__name__}: {e}") from e
    else:
        if not all(part.isidentifier() for part in target.split(".")):
            raise CharlstmError(f"feature {name!r}: {target!r} is not a module name (expected module:function "
                                f"or path/to/file.py:function)")
        try:
            module = importlib.import_module(target)
        except ModuleNotFoundError as e:
            raise CharlstmError(f"feature {name!r}: cannot import module {target!r} ({e}); is it on PYTHONPATH? "
                                f"A file can be given as path/to/file.py:{func}") from e
        except Exception as e:
            raise CharlstmError(f"feature {name!r}: importing {target!r} failed: {type(e).__name__}: {e}") from e
    fn = getattr(module, func, None)
    if fn is None:
        raise CharlstmError(f"feature {name!r}: {target!r} has no function {func!r}")
    if not callable(fn):
        raise CharlstmError(f"feature {name!r}: {target}:{func} is not callable")
    return fn


def _function_feature(name: str) -> Feature:
    fn = _load_function(name)
    kind = getattr(fn, "kind", "auto")
    if kind not in ("binary", "continuous", "auto"):
        raise CharlstmError(f"feature {name!r}: the function's .kind is {kind!r}; use 'binary' or 'continuous'")

    def wrapped(s: Steps) -> np.ndarray:
        try:
            out = fn(s.source)
        except Exception as e:
            raise CharlstmError(f"feature {name!r} raised {type(e).__name__}: {e}") from e
        try:
            arr = np.asarray(out)
        except Exception as e:
            raise CharlstmError(f"feature {name!r} returned {type(out).__name__}, not an array of numbers") from e
        if arr.dtype != bool and not np.issubdtype(arr.dtype, np.number):
            raise CharlstmError(f"feature {name!r} returned values of type {arr.dtype}; it must return numbers "
                                f"(or booleans), one per character")
        if arr.ndim != 1 or arr.shape[0] != s.n:
            raise CharlstmError(f"feature {name!r} returned shape {tuple(arr.shape)} for a text of {s.n} "
                                f"characters; it must return one value per character: shape ({s.n},)")
        arr = arr.astype(np.float32)
        if not np.isfinite(arr).all():
            raise CharlstmError(f"feature {name!r} returned NaN or infinite values")
        return arr

    doc = (fn.__doc__ or "").strip().splitlines()
    return Feature(name, kind, doc[0] if doc else f"user function {name}", wrapped)


def get_feature(name: str) -> Feature:
    """The feature called `name`: a key of FEATURES or a parameterised form of PARAMETERISED
    (``char:X``, ``next:X``, ``count:P``, ``count:P-N``, ``since:X``, ``regex:PATTERN``,
    ``module:function``, ``path/to/file.py:function``). A user function takes the text (as given to
    `compute`: a str or a list of symbols) and returns one number per step; it may set
    ``fn.kind = "binary"`` or ``"continuous"``. Raises CharlstmError for an unknown or invalid name."""
    if isinstance(name, Feature):
        return name
    if name in FEATURES:
        return FEATURES[name]
    prefix, colon, param = name.partition(":")
    if colon and prefix in _PREFIXES:
        if prefix == "regex":
            return Feature(name, "binary", f"inside a match of /{param}/",
                           sc.regex_feature(_compile_regex(name, param)))
        if not param:
            raise CharlstmError(f"feature {name!r} needs a parameter after ':' (see {prefix}: in the feature list)")
        if prefix == "char":
            return _char_feature(name, _one_char(param, name), shift=0)
        if prefix == "next":
            return _char_feature(name, _one_char(param, name), shift=1)
        if prefix == "since":
            return _since_feature(name, _one_char(param, name))
        return _count_feature(name, param)
    if colon:
        return _function_feature(name)
    close = get_close_matches(name, list(FEATURES), n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise CharlstmError(f"unknown feature {name!r}.{hint} Known features: {', '.join(FEATURES)}; "
                        f"or one of: {', '.join(PARAMETERISED)}")


def compute(name_or_feature: str | Feature, text: Text) -> np.ndarray:
    """float32 [steps] values of a feature (a name for `get_feature`, or a Feature) on `text`
    (a str: one step per character; or a sequence of symbols: one step per symbol)."""
    feature = get_feature(name_or_feature) if isinstance(name_or_feature, str) else name_or_feature
    view = steps(text)
    values = feature.fn(view)
    return np.ascontiguousarray(values, dtype=np.float32)


def feature_help() -> str:
    """A multi-line listing of every feature and parameterised form, for --help and error output."""
    width = max(len(k) for k in [*FEATURES, *PARAMETERISED])
    lines = [f"{f.name:<{width}}  {f.kind:<10}  {f.description}" for f in FEATURES.values()]
    lines += [f"{k:<{width}}  {'':<10}  {v}" for k, v in PARAMETERISED.items()]
    return "\n".join(lines)
