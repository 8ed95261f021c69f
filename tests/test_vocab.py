"""Vocab: ids, round trips, the tokenizers twin, unknown-character policies, tokenizer.json."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from tokenizers import Tokenizer

from charlstm.errors import CharlstmError
from charlstm.vocab import EOT, UNK, Vocab

HARD = ("plain ASCII\tand tabs\r\nCRLF, accents éàü, decomposed e\u0301, Cyrillic Жизнь, CJK 中文, "
        "emoji 😀 🇫🇷 👨\u200d👩\u200d👧, U+FFFD \ufffd, NUL \x00, LS \u2028, NEL \x85, the literal <eot>, "
        "a plane-16 char \U0010fffd.\n")


def test_char_ids_are_specials_then_code_point_order():
    v = Vocab.build_char(Counter("cba"))
    assert v.symbols == [UNK, EOT, "a", "b", "c"]
    assert (v.unk_id, v.eot_id, v.size, v.dtype) == (0, 1, 5, np.dtype(np.uint8))
    assert v.encode("abc").tolist() == [2, 3, 4]


def test_min_count_maps_rare_characters_to_unk():
    v = Vocab.build_char(Counter("aaab"), min_count=2)
    assert v.symbols == [UNK, EOT, "a"]
    assert v.encode("ab").tolist() == [2, 0]


@pytest.mark.parametrize("units", ["char", "byte"])
def test_round_trip_non_ascii(units):
    v = Vocab.build_char(Counter(HARD)) if units == "char" else Vocab.build_byte(records=True)
    ids = v.encode(HARD)
    assert v.decode(ids) == HARD
    assert v.unknown_chars(HARD) == []


@pytest.mark.parametrize("units", ["char", "byte"])
def test_tokenizers_file_gives_the_same_ids(tmp_path, units):
    """The fast numpy encoder and the slow `tokenizers` twin agree, unknowns included."""
    v = Vocab.build_char(Counter(HARD[:60])) if units == "char" else Vocab.build_byte(records=False)
    v.save(tmp_path / "tokenizer.json")
    tok = Tokenizer.from_file(str(tmp_path / "tokenizer.json"))
    assert tok.encode(HARD).ids == v.encode(HARD).tolist()
    if units == "char":
        assert 0 in v.encode(HARD).tolist()  # the test really exercised <unk>


def test_save_load_keeps_units_and_specials(tmp_path):
    for v in (Vocab.build_char(Counter(HARD)), Vocab.build_byte(True), Vocab.build_byte(False)):
        v.save(tmp_path / "t.json")
        w = Vocab.load(tmp_path / "t.json")
        assert (w.units, w.symbols, w.eot_id, w.unk_id) == (v.units, v.symbols, v.eot_id, v.unk_id)


def test_byte_vocab_sizes_and_dtypes():
    assert Vocab.build_byte(records=False).size == 256 and Vocab.build_byte(False).dtype == np.uint8
    assert Vocab.build_byte(records=True).size == 257 and Vocab.build_byte(True).dtype == np.uint16
    assert Vocab.build_byte(True).decode([104, 105, 256, 33]) == "hi<eot>!"


def test_big_char_vocab_is_uint16():
    v = Vocab.build_char(Counter(chr(0x4E00 + i) for i in range(300)))
    assert v.dtype == np.uint16
    assert v.decode(v.encode("一丁")) == "一丁"


def test_unknown_policies():
    v = Vocab.build_char(Counter("ab"))
    assert v.encode("axb", unknown="replace").tolist() == [2, 0, 3]
    assert v.encode("axb", unknown="skip").tolist() == [2, 3]
    with pytest.raises(CharlstmError, match="'x' at 1"):
        v.encode("axb", unknown="error")
    assert v.unknown_chars("axyb") == ["x", "y"]


def test_lookup_table_matches_symbols():
    v = Vocab.build_char(Counter("hé😀"))
    t = v.lookup_table()
    assert t.shape == (0x110000,) and t[ord("é")] == v.symbols.index("é") and t[ord("z")] == -1


def test_corrupt_tokenizer_json_is_a_clear_error(tmp_path):
    (tmp_path / "t.json").write_text("{not json")
    with pytest.raises(CharlstmError, match="invalid tokenizer.json"):
        Vocab.load(tmp_path / "t.json")
    with pytest.raises(CharlstmError, match="cannot read vocabulary"):
        Vocab.load(tmp_path / "missing.json")
