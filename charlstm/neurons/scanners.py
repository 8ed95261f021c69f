"""The built-in features' scanners: quotes, strings, comments, depths, indentation, positions,
characters and tweet entities, each a function Steps -> float32 [steps].

The value at step t describes the reader's state *after reading* step t, as the trace row t does
(the conventions are in charlstm.neurons.features). All state resets at a record boundary, and
boundary steps are 0.

Owns: these scanners. Does not know: the registry or names (charlstm.neurons.features).
"""
from __future__ import annotations

import re
from typing import Callable

import numpy as np

from charlstm.neurons.textsteps import TAB_WIDTH, Steps, last_index, regex_steps

# ----------------------------------------------------------------------------------------------
# Quotes, strings and comments


def prose_quotes(s: Steps, straight: str, opening: str, closing: str, apostrophes: bool) -> np.ndarray:
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


def double_quote(s: Steps) -> np.ndarray:
    return prose_quotes(s, '"', "\u201c", "\u201d", apostrophes=False)


def single_quote(s: Steps) -> np.ndarray:
    return prose_quotes(s, "'", "\u2018", "\u2019", apostrophes=True)


def scan_code(s: Steps) -> tuple[np.ndarray, np.ndarray]:
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


def string(s: Steps) -> np.ndarray:
    return scan_code(s)[0]


def comment(s: Steps) -> np.ndarray:
    return scan_code(s)[1]


# ----------------------------------------------------------------------------------------------
# Depths, indentation, positions


def depth(s: Steps, openers: str, closers: str) -> np.ndarray:
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


def indentation(s: Steps) -> np.ndarray:
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


def line_position(s: Steps) -> np.ndarray:
    """Index of the character within its line: 0 at the first character after a newline (or after a
    record boundary); the newline itself gets the line's length."""
    t = np.arange(s.n)
    return (t - last_index(s.line_end, inclusive=False) - 1).astype(np.float32)


def record_position(s: Steps) -> np.ndarray:
    """Index of the character within its record: 0 at the first character after a boundary."""
    t = np.arange(s.n)
    ends = s.eot & s.line_end  # the last step of each boundary
    return (t - last_index(ends, inclusive=False) - 1).astype(np.float32)


# ----------------------------------------------------------------------------------------------
# Characters and tweet entities


def upper(s: Steps) -> np.ndarray:
    return np.array([c.isupper() for c in s.flat], dtype=np.float32) * ~s.eot


def digit(s: Steps) -> np.ndarray:
    return np.array([c.isdigit() for c in s.flat], dtype=np.float32) * ~s.eot


def whitespace(s: Steps) -> np.ndarray:
    return np.array([c.isspace() for c in s.flat], dtype=np.float32) * ~s.eot


# A URL starts with a scheme or "www." at a word start and runs to whitespace; trailing punctuation
# (the full stop after a link) is not part of it.
URL = re.compile(r"(?<![\w/@.])(?:[a-zA-Z][a-zA-Z0-9+.-]*://|www\.)[^\s<>\"'`]*[^\s<>\"'`.,;:!?)\]}]")
# @name and #tag as Twitter recognises them: not preceded by a word character (emails, C#, &#39;),
# handles are word characters, a hashtag needs at least one letter (#1 is not a hashtag).
MENTION = re.compile(r"(?<![\w@#&])@\w+")
HASHTAG = re.compile(r"(?<![\w@#&])#\w*[^\W\d_]\w*")
WORD = re.compile(r"\w+(?:'\w+)*")


def regex_feature(pattern: re.Pattern) -> Callable[[Steps], np.ndarray]:
    return lambda s: regex_steps(s, pattern).astype(np.float32)


def caps_word(s: Steps) -> np.ndarray:
    """Words (letters, digits, inner apostrophes) with at least two letters, all of them upper case:
    NATO, SHOUTING, DON'T; not I, A1, or McDonald."""
    def caps(m: re.Match) -> bool:
        w = m.group()
        return w.isupper() and sum(c.isalpha() for c in w) >= 2

    return regex_steps(s, WORD, keep=caps).astype(np.float32)


