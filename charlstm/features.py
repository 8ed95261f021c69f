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
"""
from __future__ import annotations

import importlib
import importlib.util
import os
import re
from dataclasses import dataclass, field
from difflib import get_close_matches
from pathlib import Path
from typing import Callable, Literal, Sequence, Union

import numpy as np

from charlstm.errors import CharlstmError

__all__ = [
    "Feature", "FEATURES", "PARAMETERISED", "TAB_WIDTH", "Text", "compute", "get_feature",
    "feature_help", "to_symbols",
]

Kind = Literal["binary", "continuous", "auto"]
#: A text: a str (one step per character) or a sequence of symbols (one step per symbol).
Text = Union[str, Sequence[str]]

EOT = "<eot>"
UNK = "<unk>"
#: Columns a tab advances to: the next multiple of TAB_WIDTH (so "  \t" is 4, "\t\t" is 8).
TAB_WIDTH = 4
# Stand-ins for multi-character symbols in the one-character-per-step view of a symbol sequence:
# ASCII "record separator" for <eot>, the Unicode replacement character for <unk>.
_EOT_CHAR = "\x1e"
_UNK_CHAR = "\ufffd"


# ----------------------------------------------------------------------------------------------
# Steps: the one-character-per-step view shared by all features


@dataclass(frozen=True)
class _Steps:
    """A text normalised to one character per step.

    source: what the caller passed (handed unchanged to user functions).
    flat: str [n], one character per step (multi-character symbols replaced by stand-ins).
    joined: the text as the user wrote it (symbols concatenated) — what regexes run on.
    offsets: int64 [n + 1], start of each step in `joined` (and its length at the end).
    eot: bool [n], steps that are (part of) a record boundary.
    line_end: bool [n], steps after which a new line starts (newlines, last step of each boundary).
    """

    source: object
    flat: str
    joined: str
    offsets: np.ndarray
    eot: np.ndarray
    line_end: np.ndarray

    @property
    def n(self) -> int:
        return len(self.flat)

    @property
    def codes(self) -> np.ndarray:
        """int64 [n]: code point of each step's character."""
        return np.frombuffer(self.flat.encode("utf-32-le", "surrogatepass"), dtype="<u4").astype(np.int64)


def _steps(text: Text) -> _Steps:
    if isinstance(text, _Steps):
        return text
    if isinstance(text, str):
        n = len(text)
        eot = np.zeros(n, dtype=bool)
        last = np.zeros(n, dtype=bool)
        start = text.find(EOT)
        while start >= 0:
            eot[start:start + len(EOT)] = True
            last[start + len(EOT) - 1] = True
            start = text.find(EOT, start + len(EOT))
        newline = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype="<u4") == 10
        return _Steps(text, text, text, np.arange(n + 1, dtype=np.int64), eot, newline | last)
    try:
        symbols = list(text)
    except TypeError:
        raise CharlstmError(f"a text must be a str or a sequence of symbols, not {type(text).__name__}") from None
    flat = []
    for i, s in enumerate(symbols):
        if not isinstance(s, str) or not s:
            raise CharlstmError(f"symbol {i} of the text is {s!r}; every symbol must be a non-empty str")
        flat.append(s if len(s) == 1 else _EOT_CHAR if s == EOT else _UNK_CHAR)
    eot = np.array([s == EOT for s in symbols], dtype=bool)
    newline = np.array([s == "\n" for s in symbols], dtype=bool)
    offsets = np.zeros(len(symbols) + 1, dtype=np.int64)
    np.cumsum([len(s) for s in symbols], out=offsets[1:])
    return _Steps(text, "".join(flat), "".join(symbols), offsets, eot, newline | eot)


def to_symbols(text: str) -> list[str]:
    """Split decoded text into steps as a char vocabulary has them: "<eot>" and "<unk>" are one
    symbol each, every other character is one symbol. Use it to align text decoded from ids (where
    `Vocab.decode` writes "<eot>" as five characters) with trace rows."""
    return [s for s in re.split(r"(<eot>|<unk>)|", text) if s]  # empty-pattern split = per char


# ----------------------------------------------------------------------------------------------
# Vectorised helpers


def _last_index(flags: np.ndarray, inclusive: bool) -> np.ndarray:
    """int64 [n]: index of the last True flag at or before t (inclusive) or strictly before t;
    -1 when there is none."""
    n = len(flags)
    idx = np.where(flags, np.arange(n), -1)
    last = np.maximum.accumulate(idx) if n else idx
    if inclusive:
        return last
    return np.concatenate([[-1], last[:-1]]) if n else last


def _segment_cumsum(contrib: np.ndarray, reset: np.ndarray) -> np.ndarray:
    """Running sum of `contrib` that restarts at every reset step (whose value is 0).
    contrib: float64 [n] (already 0 on reset steps); reset: bool [n]."""
    cs = np.cumsum(contrib)
    last = _last_index(reset, inclusive=True)
    base = np.where(last >= 0, cs[np.maximum(last, 0)], 0.0)
    return cs - base


def _char_mask(s: _Steps, chars: str) -> np.ndarray:
    """bool [n]: the step's character is one of `chars` (never on boundary steps)."""
    codes = s.codes
    mask = np.isin(codes, np.array([ord(c) for c in chars], dtype=np.int64))
    return mask & ~s.eot


def _regex_steps(s: _Steps, pattern: re.Pattern, keep: Callable[[re.Match], bool] | None = None) -> np.ndarray:
    """bool [n]: steps any character of which lies inside a (non-empty) match of `pattern` on the
    text as written (`joined`), counting only matches that `keep` accepts. Boundary steps are never
    inside."""
    m = len(s.joined)
    cover = np.zeros(m + 1, dtype=np.int64)
    for match in pattern.finditer(s.joined):
        if match.end() > match.start() and (keep is None or keep(match)):
            cover[match.start()] += 1
            cover[match.end()] -= 1
    inside = (np.cumsum(cover[:m]) > 0).astype(np.int64)
    if s.n == 0:
        return np.zeros(0, dtype=bool)
    per_step = np.add.reduceat(inside, s.offsets[:-1]) > 0
    return per_step & ~s.eot


# ----------------------------------------------------------------------------------------------
# Quotes, strings and comments


def _prose_quotes(s: _Steps, straight: str, opening: str, closing: str, apostrophes: bool) -> np.ndarray:
    """Shared scanner of `double-quote` / `single-quote`: the straight quote toggles, the curly ones
    open/close; a backslash escapes the next character; with `apostrophes`, a quote between two
    letters or digits (don't, rock’n’roll) is an apostrophe and changes nothing."""
    flat, eot, n = s.flat, s.eot, s.n
    out = np.zeros(n, dtype=np.float32)
    inside = False
    escaped = False
    for t, ch in enumerate(flat):
        if eot[t]:
            inside = escaped = False
            continue
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == straight or ch in opening or ch in closing:
            word_internal = (apostrophes and 0 < t < n - 1 and flat[t - 1].isalnum() and flat[t + 1].isalnum()
                             and not eot[t - 1] and not eot[t + 1])
            if word_internal:
                pass
            elif ch in opening:
                inside = True
            elif ch in closing:
                inside = False
            else:
                inside = not inside
        out[t] = inside
    return out


def _double_quote(s: _Steps) -> np.ndarray:
    return _prose_quotes(s, '"', "\u201c", "\u201d", apostrophes=False)


def _single_quote(s: _Steps) -> np.ndarray:
    return _prose_quotes(s, "'", "\u2018", "\u2019", apostrophes=True)


def _scan_code(s: _Steps) -> tuple[np.ndarray, np.ndarray]:
    """One left-to-right scan of code-ish text: (string [n], comment [n]) as 0/1 float32.

    Strings: "..." and '...' with backslash escapes, ending at the closing quote or (unterminated)
    at the end of the line; a backslash-newline continues the string. Python triple quotes
    \"\"\"...\"\"\" and '''...''' span lines. Comments: # and // to the end of the line, /* ... */
    across lines. Whichever starts first wins: a # inside a string is not a comment and a quote
    inside a comment opens no string. Every character of a literal or comment is 1 except the one
    that closes it (the final quote, the final / of */); the newline ending a line comment is 0.
    """
    flat, eot, n = s.flat, s.eot, s.n
    string = np.zeros(n, dtype=np.float32)
    comment = np.zeros(n, dtype=np.float32)
    NORMAL, STRING, LINE, BLOCK = 0, 1, 2, 3
    state = NORMAL
    quote = ""
    triple = False
    t = 0
    while t < n:
        ch = flat[t]
        if eot[t]:
            state = NORMAL
            t += 1
            continue
        nxt = flat[t + 1] if t + 1 < n and not eot[t + 1] else ""
        if state == NORMAL:
            if ch == "#" or (ch == "/" and nxt == "/"):
                state = LINE
                comment[t] = 1
            elif ch == "/" and nxt == "*":
                state = BLOCK
                comment[t] = comment[t + 1] = 1
                t += 2  # consume "/*" whole so that "/*/" does not close at once
                continue
            elif ch in "\"'":
                quote = ch
                state = STRING
                triple = flat[t:t + 3] == ch * 3 and not eot[t:t + 3].any()
                if triple:
                    string[t:t + 3] = 1
                    t += 3
                    continue
                string[t] = 1
        elif state == STRING:
            if ch == "\\":
                string[t] = 1
                if nxt:
                    string[t + 1] = 1  # the escaped character, whatever it is (\", \\, a newline)
                    t += 2
                    continue
            elif triple and flat[t:t + 3] == quote * 3 and not eot[t:t + 3].any():
                string[t:t + 2] = 1  # the third quote closes the string
                state = NORMAL
                t += 3
                continue
            elif not triple and (ch == quote or ch == "\n"):
                state = NORMAL  # closed, or unterminated at the end of the line
            else:
                string[t] = 1
        elif state == LINE:
            if ch == "\n":
                state = NORMAL
            else:
                comment[t] = 1
        else:  # BLOCK
            if ch == "*" and nxt == "/":
                comment[t] = 1
                state = NORMAL
                t += 2  # the closing "/" stays 0
                continue
            comment[t] = 1
        t += 1
    return string, comment


def _string(s: _Steps) -> np.ndarray:
    return _scan_code(s)[0]


def _comment(s: _Steps) -> np.ndarray:
    return _scan_code(s)[1]


# ----------------------------------------------------------------------------------------------
# Depths, indentation, positions


def _depth(s: _Steps, openers: str, closers: str) -> np.ndarray:
    """Nesting depth after reading each step; an unmatched closer never takes it below 0. Counts
    every bracket character, in strings and comments too (it works on any text, not only code)."""
    flat, eot = s.flat, s.eot
    out = np.zeros(s.n, dtype=np.float32)
    d = 0
    for t, ch in enumerate(flat):
        if eot[t]:
            d = 0
        elif ch in openers:
            d += 1
        elif ch in closers:
            d = max(d - 1, 0)
        out[t] = d
    return out


def _indentation(s: _Steps) -> np.ndarray:
    """Columns of leading whitespace of the current line: spaces count 1, a tab advances to the next
    multiple of TAB_WIDTH. Inside the leading whitespace the value is the count so far; after it, the
    line's full indentation, newline included (it belongs to the line it ends)."""
    flat, line_end, eot = s.flat, s.line_end, s.eot
    out = np.zeros(s.n, dtype=np.float32)
    col = 0
    leading = True
    for t, ch in enumerate(flat):
        if eot[t]:
            out[t] = 0
        else:
            if leading:
                if ch == " ":
                    col += 1
                elif ch == "\t":
                    col = (col // TAB_WIDTH + 1) * TAB_WIDTH
                else:
                    leading = False
            out[t] = col
        if line_end[t]:
            col, leading = 0, True
    return out


def _line_position(s: _Steps) -> np.ndarray:
    """Index of the character within its line: 0 at the first character after a newline (or after a
    record boundary); the newline itself gets the line's length."""
    t = np.arange(s.n)
    return (t - _last_index(s.line_end, inclusive=False) - 1).astype(np.float32)


def _record_position(s: _Steps) -> np.ndarray:
    """Index of the character within its record: 0 at the first character after a boundary."""
    t = np.arange(s.n)
    ends = s.eot & s.line_end  # the last step of each boundary
    return (t - _last_index(ends, inclusive=False) - 1).astype(np.float32)


# ----------------------------------------------------------------------------------------------
# Characters and tweet entities


def _upper(s: _Steps) -> np.ndarray:
    return np.array([c.isupper() for c in s.flat], dtype=np.float32) * ~s.eot


def _digit(s: _Steps) -> np.ndarray:
    return np.array([c.isdigit() for c in s.flat], dtype=np.float32) * ~s.eot


def _whitespace(s: _Steps) -> np.ndarray:
    return np.array([c.isspace() for c in s.flat], dtype=np.float32) * ~s.eot


# A URL starts with a scheme or "www." at a word start and runs to whitespace; trailing punctuation
# (the full stop after a link) is not part of it.
_URL = re.compile(r"(?<![\w/@.])(?:[a-zA-Z][a-zA-Z0-9+.-]*://|www\.)[^\s<>\"'`]*[^\s<>\"'`.,;:!?)\]}]")
# @name and #tag as Twitter recognises them: not preceded by a word character (emails, C#, &#39;),
# handles are word characters, a hashtag needs at least one letter (#1 is not a hashtag).
_MENTION = re.compile(r"(?<![\w@#&])@\w+")
_HASHTAG = re.compile(r"(?<![\w@#&])#\w*[^\W\d_]\w*")
_WORD = re.compile(r"\w+(?:'\w+)*")


def _regex_feature(pattern: re.Pattern) -> Callable[[_Steps], np.ndarray]:
    return lambda s: _regex_steps(s, pattern).astype(np.float32)


def _caps_word(s: _Steps) -> np.ndarray:
    """Words (letters, digits, inner apostrophes) with at least two letters, all of them upper case:
    NATO, SHOUTING, DON'T; not I, A1, or McDonald."""
    def caps(m: re.Match) -> bool:
        w = m.group()
        return w.isupper() and sum(c.isalpha() for c in w) >= 2

    return _regex_steps(s, _WORD, keep=caps).astype(np.float32)


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
    fn: Callable[[_Steps], np.ndarray] = field(repr=False, compare=False)

    def compute(self, text: Text) -> np.ndarray:
        """float32 [steps] values of this feature on `text`."""
        return compute(self, text)


def _f(name: str, kind: Kind, description: str, fn: Callable[[_Steps], np.ndarray]) -> Feature:
    return Feature(name, kind, description, fn)


FEATURES: dict[str, Feature] = {f.name: f for f in [
    _f("double-quote", "binary", 'inside "..." (prose quoting: spans lines, \\" escaped, “ ” too)', _double_quote),
    _f("single-quote", "binary", "inside '...' (apostrophes between letters ignored, ‘ ’ too)", _single_quote),
    _f("string", "binary", "inside a code string literal: ' \" and triple quotes, backslash escapes, not in comments",
       _string),
    _f("comment", "binary", "inside a code comment: # or // to end of line, /* ... */; not in strings", _comment),
    _f("bracket-depth", "continuous", "nesting depth of ( [ { together", lambda s: _depth(s, "([{", ")]}")),
    _f("paren-depth", "continuous", "nesting depth of ( )", lambda s: _depth(s, "(", ")")),
    _f("square-depth", "continuous", "nesting depth of [ ]", lambda s: _depth(s, "[", "]")),
    _f("curly-depth", "continuous", "nesting depth of { }", lambda s: _depth(s, "{", "}")),
    _f("indentation", "continuous", f"leading whitespace columns of the line (tab = next multiple of {TAB_WIDTH})",
       _indentation),
    _f("line-position", "continuous", "position in the line: 0 at the first character after a newline",
       _line_position),
    _f("record-position", "continuous", "position in the record: 0 at the first character after <eot>",
       _record_position),
    _f("upper", "binary", "an upper-case letter", _upper),
    _f("caps-word", "binary", "in an all-capitals word of two or more letters (NATO, SHOUTING)", _caps_word),
    _f("digit", "binary", "a digit", _digit),
    _f("whitespace", "binary", "a space, tab, newline or other whitespace", _whitespace),
    _f("url", "binary", "in a URL (scheme:// or www., to whitespace, trailing punctuation excluded)",
       _regex_feature(_URL)),
    _f("mention", "binary", "in an @mention (@name, not in emails)", _regex_feature(_MENTION)),
    _f("hashtag", "binary", "in a #hashtag (#tag with at least one letter)", _regex_feature(_HASHTAG)),
]}

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
    def fn(s: _Steps) -> np.ndarray:
        mask = s.eot.copy() if target == EOT else _char_mask(s, target)
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

    def fn(s: _Steps) -> np.ndarray:
        contrib = _char_mask(s, plus).astype(np.float64)
        if minus:
            contrib -= _char_mask(s, minus)
        reset = s.eot | _char_mask(s, "\n")
        contrib[reset] = 0
        return _segment_cumsum(contrib, reset).astype(np.float32)

    desc = f"#{plus!r} since the line/record start" + (f" minus #{minus!r}" if minus else "")
    return Feature(name, "continuous", desc, fn)


def _since_feature(name: str, target: str) -> Feature:
    def fn(s: _Steps) -> np.ndarray:
        hit = s.eot.copy() if target == EOT else _char_mask(s, target) | s.eot
        t = np.arange(s.n)
        return (t - _last_index(hit, inclusive=True)).astype(np.float32) * ~s.eot

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

    def wrapped(s: _Steps) -> np.ndarray:
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
                           _regex_feature(_compile_regex(name, param)))
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
    steps = _steps(text)
    values = feature.fn(steps)
    return np.ascontiguousarray(values, dtype=np.float32)


def feature_help() -> str:
    """A multi-line listing of every feature and parameterised form, for --help and error output."""
    width = max(len(k) for k in [*FEATURES, *PARAMETERISED])
    lines = [f"{f.name:<{width}}  {f.kind:<10}  {f.description}" for f in FEATURES.values()]
    lines += [f"{k:<{width}}  {'':<10}  {v}" for k, v in PARAMETERISED.items()]
    return "\n".join(lines)
