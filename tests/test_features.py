"""Feature library: exact values on small hand-written texts, name parsing, user features, errors."""
from __future__ import annotations

import textwrap

import numpy as np
import pytest

from charlstm.errors import CharlstmError
from charlstm.neurons.features import FEATURES, PARAMETERISED, Feature, compute, feature_help, get_feature, to_symbols


def bits(name: str, text) -> str:
    """A feature's values as a digit string (one digit per step; '-' for -1) for readable asserts."""
    v = compute(name, text)
    assert v.dtype == np.float32 and v.shape == (len(text),)
    return "".join("-" if x == -1 else str(int(x)) for x in v)


def values(name: str, text) -> list[float]:
    return compute(name, text).tolist()


# ---- quotes, strings, comments -------------------------------------------------------------------


def test_double_quote_opening_inside_closing_outside():
    assert bits("double-quote", 'say "hi" now') == "000011100000"
    assert bits("double-quote", 'a "b\nc" d') == "001111000"  # prose quotes span lines
    assert bits("double-quote", r'"a\"b" c') == "11111000"  # \" does not close
    assert bits("double-quote", "x \u201cy\u201d z") == "0011000"  # curly quotes open / close


def test_single_quote_ignores_apostrophes():
    assert bits("single-quote", "it's 'ok' they're") == "00000111000000000"
    assert bits("single-quote", "don\u2019t \u2018x\u2019") == "000000110"


def test_string_with_escapes_triple_quotes_and_comment_inside():
    assert bits("string", r'x = "a\"b" # "no"') == "00001111100000000"
    assert bits("string", r"'\\' z") == "111000"  # an escaped backslash does not escape the quote
    assert bits("string", '"""a\n"b"""c') == "11111111100"  # triple quotes span lines
    assert bits("string", "'''x'''") == "1111110"
    assert bits("string", '"" \'\'') == "10010"  # empty strings
    assert bits("string", '"abc\nd') == "111100"  # unterminated: ends at the newline
    assert bits("string", '"a\\\nb" c') == "11111000"  # backslash-newline continues the string
    assert bits("string", "/* 'x' */ '#'") == "0000000000110"  # quotes in comments, # in strings


def test_comment_kinds_and_strings_inside():
    assert bits("comment", "a # b\nc") == "0011100"
    assert bits("comment", "a // b\nc") == "00111100"
    assert bits("comment", "/* a\n*/b") == "11111100"  # the final / of */ closes: 0
    assert bits("comment", "/*/ x */") == "11111110"  # "/*/" does not close at once
    assert bits("comment", 'x = "// no # no /* no" y') == "0" * 24
    assert bits("comment", "a / b * c") == "000000000"  # division is not a comment


# ---- depths, indentation, positions ----------------------------------------------------------------


def test_bracket_depths_nested_and_unmatched():
    assert bits("paren-depth", "f(a(b))) (x") == "01122100011"
    assert bits("bracket-depth", "[{(x)}]") == "1233210"
    assert bits("square-depth", "a[b[c]]{[") == "011221001"
    assert bits("curly-depth", "{a{}}(") == "112100"


def test_indentation_spaces_tabs_and_blank_lines():
    text = "def f():\n    x\n\t y\n  \tz\n\n"
    assert values("indentation", text) == (
        [0] * 9 + [1, 2, 3, 4, 4, 4] + [4, 5, 5, 5] + [1, 2, 4, 4, 4] + [0])


def test_line_position_and_record_position():
    assert bits("line-position", "ab\ncde\n\nf") == "0120123" + "00"
    assert values("record-position", to_symbols("abc<eot>ab")) == [0, 1, 2, 3, 0, 1]


# ---- characters and tweet entities ------------------------------------------------------------------


def test_character_classes():
    assert bits("upper", "aB Ç1") == "01010"
    assert bits("digit", "a1 2") == "0101"
    assert bits("whitespace", "a b\n\tc") == "010110"
    assert bits("caps-word", "I say NATO, DON'T A1 McD AB") == "000000111100111110000000011"


def test_tweet_entities():
    assert bits("url", "see https://t.co/abc. www.x.org/y, ok") == "0000" + "1" * 16 + "00" + "1" * 11 + "0000"
    assert bits("mention", "hi @bob_1 me@mail.com @x") == "000111111000000000000011"
    assert bits("hashtag", "#tag a#b #1 #1st C# &#39; #") == "1111" + "0" * 8 + "1111" + "0" * 11


# ---- parameterised features -------------------------------------------------------------------------


def test_count_rises_and_falls_and_resets():
    assert values("count:a-b", "aaaXbbb\naab") == [1, 2, 3, 3, 2, 1, 0, 0, 1, 2, 1]
    assert values("count:a", "aXa\naa") == [1, 1, 2, 0, 1, 2]
    assert values("count:aA", "aAb") == [1, 2, 2]
    assert values("count:-", "a-b-") == [0, 1, 1, 2]  # a lone '-' counts dashes
    assert values("count:a--", "a-") == [1, 0]  # a minus dashes
    assert values("count:a\\-", "a-") == [1, 2]  # \- is a literal dash in P


def test_count_resets_at_eot_in_str_and_symbols():
    # A literal "<eot>" in a str is one boundary: its five characters read 0, the count restarts.
    assert values("count:a-b", "aXb<eot>ab") == [1, 1, 0, 0, 0, 0, 0, 0, 1, 0]
    assert values("count:a-b", ["a", "X", "b", "b", "<eot>", "a", "a"]) == [1, 1, 0, -1, 0, 1, 2]


def test_char_next_since():
    assert bits("char:b", "abcb") == "0101"
    assert bits("char:\\n", "a\nb") == "010"
    assert bits("char:\\s", "a b") == "010"
    assert bits("next:b", "abab") == "1010"
    assert bits("char:<eot>", ["a", "<eot>", "b"]) == "010"
    assert values("since:X", "abXcdXe<eot>ab") == [1, 2, 0, 1, 2, 0, 1, 0, 0, 0, 0, 0, 1, 2]


def test_regex_feature():
    assert bits("regex:[0-9]+", "ab12c3") == "001101"
    assert bits("regex:x*", "ab") == "00"  # empty matches mark nothing
    # On symbols the regex runs on the text as written, and maps back to steps.
    assert bits("regex:<eot>a", ["b", "<eot>", "a", "a"]) == "0010"


def test_to_symbols():
    assert to_symbols("ab<eot>c<unk>d") == ["a", "b", "<eot>", "c", "<unk>", "d"]
    assert to_symbols("") == []


def test_every_registered_feature_runs_on_mixed_text():
    text = 'def f(x):\n    """Doc #tag"""\n\treturn x["k"] # see https://a.b @me\n' + "\udcff <eot>"  # a lone surrogate too
    for name, feature in FEATURES.items():
        v = compute(feature, text)
        assert v.shape == (len(text),) and v.dtype == np.float32 and np.isfinite(v).all(), name
        if feature.kind == "binary":
            assert set(np.unique(v)) <= {0.0, 1.0}, name
        assert compute(name, "").shape == (0,)
    assert "count:P-N" in PARAMETERISED and "indentation" in feature_help()


# ---- user features: modules and files ---------------------------------------------------------------


def _write(path, source: str):
    path.write_text(textwrap.dedent(source))
    return path


def test_file_and_module_function_features(tmp_path, monkeypatch):
    _write(tmp_path / "myfeats.py", """
        import numpy as np

        def vowels(text):
            '''a vowel'''
            return np.array([c in "aeiou" for c in text])
        vowels.kind = "binary"

        def position(text):
            return list(range(len(text)))

        def wrong_length(text):
            return [0.0]

        def strings(text):
            return ["x"] * len(text)

        def boom(text):
            raise ValueError("bad input")

        def nans(text):
            return [float("nan")] * len(text)

        not_a_function = 3
    """)
    f = get_feature(f"{tmp_path}/myfeats.py:vowels")
    assert f.kind == "binary" and f.description == "a vowel"
    assert bits(f"{tmp_path / 'myfeats.py'}:vowels", "hello") == "01001"
    monkeypatch.syspath_prepend(str(tmp_path))
    g = get_feature("myfeats:position")
    assert g.kind == "auto"
    assert values("myfeats:position", "abc") == [0, 1, 2]
    assert values("myfeats:position", ["a", "<eot>"]) == [0, 1]  # gets the symbol list as given

    with pytest.raises(CharlstmError, match=r"returned shape \(1,\) for a text of 3 characters"):
        compute("myfeats:wrong_length", "abc")
    with pytest.raises(CharlstmError, match="must return numbers"):
        compute("myfeats:strings", "abc")
    with pytest.raises(CharlstmError, match="raised ValueError: bad input"):
        compute("myfeats:boom", "abc")
    with pytest.raises(CharlstmError, match="NaN"):
        compute("myfeats:nans", "abc")
    with pytest.raises(CharlstmError, match="has no function 'missing'"):
        get_feature("myfeats:missing")
    with pytest.raises(CharlstmError, match="not callable"):
        get_feature("myfeats:not_a_function")


def test_import_failures_are_clear(tmp_path):
    _write(tmp_path / "broken.py", "import no_such_module_xyz\n")
    with pytest.raises(CharlstmError, match=r"importing .*broken.py.* failed: ModuleNotFoundError"):
        get_feature(f"{tmp_path}/broken.py:f")
    with pytest.raises(CharlstmError, match="no such file"):
        get_feature(f"{tmp_path}/absent.py:f")
    with pytest.raises(CharlstmError, match="cannot import module 'no_such_module_xyz'"):
        get_feature("no_such_module_xyz:f")
    with pytest.raises(CharlstmError, match="is not a module name"):
        get_feature("not a module:f")


# ---- errors --------------------------------------------------------------------------------------------


def test_unknown_feature_lists_known_names():
    with pytest.raises(CharlstmError) as e:
        get_feature("indentaton")
    msg = str(e.value)
    assert "Did you mean 'indentation'" in msg and "double-quote" in msg and "regex:PATTERN" in msg


@pytest.mark.parametrize("name, message", [
    ("char:ab", "exactly one character"),
    ("char:", "needs a parameter"),
    ("count:a-", "count:P-N"),
    ("count:\\n", "newline resets"),
    ("regex:(", "invalid regular expression"),
    ("regex:", "needs a pattern"),
    ("since:\\q", "unknown escape"),
])
def test_bad_parameterised_names(name, message):
    with pytest.raises(CharlstmError, match=message):
        get_feature(name)


def test_get_feature_returns_features_and_rejects_bad_text():
    f = get_feature("count:a-b")
    assert isinstance(f, Feature) and f.kind == "continuous" and get_feature(f) is f
    assert f.compute("ab").tolist() == [1, 0]
    assert get_feature("url") is FEATURES["url"]
    with pytest.raises(CharlstmError, match="non-empty str"):
        compute("upper", ["a", ""])
    with pytest.raises(CharlstmError, match="str or a sequence"):
        compute("upper", 5)
