"""The compressor baseline: exactly the scored symbols, as bytes, compressed as `xz -9e` would."""
from __future__ import annotations

import lzma
import shutil
import subprocess
from collections import Counter

import numpy as np
import pytest

from charlstm.baseline import compressor_baseline, scored_bytes
from charlstm.vocab import EOT, Vocab

CODE = "def f(x):\n    return x + 1  # naïve → ok\n" * 40


def test_the_scored_characters_as_utf8():
    v = Vocab.build_char(Counter(CODE))
    ids = v.encode(CODE)
    assert scored_bytes(v, ids, first=1) == CODE[1:].encode("utf-8")
    assert scored_bytes(v, ids, first=0) == CODE.encode("utf-8")
    b = compressor_baseline(v, ids, first=1)
    assert b.scored == len(CODE) - 1 and b.raw == len(CODE[1:].encode("utf-8"))
    assert b.compressed == len(lzma.compress(CODE[1:].encode("utf-8"), preset=9 | lzma.PRESET_EXTREME))
    assert b.bpc == pytest.approx(8 * b.compressed / (len(CODE) - 1))
    assert b.bpc < 1.0  # 40 repeats of one line: a compressor sees the repetition


def test_eot_and_unk_are_one_symbol_each():
    v = Vocab.build_char(Counter("ab"))
    ids = np.array([2, v.eot_id, 3, v.unk_id, 2])
    assert scored_bytes(v, ids, first=0) == b"a\x1eb\xef\xbf\xbda"
    assert compressor_baseline(v, ids, first=0).scored == 5


def test_byte_models_are_scored_per_byte():
    v = Vocab.build_byte(records=True)
    text = "naïve" + EOT + "x"
    ids = np.concatenate([v.encode("naïve"), [v.eot_id], v.encode("x")])
    b = compressor_baseline(v, ids, first=0)
    assert scored_bytes(v, ids, first=0) == "naïve".encode() + b"\x1ex" and b.units == "byte"
    assert b.scored == len(ids) == len(text.encode()) - len(EOT) + 1


@pytest.mark.skipif(shutil.which("xz") is None, reason="no xz tool here")
def test_the_same_size_as_the_xz_tool(tmp_path):
    v = Vocab.build_char(Counter(CODE))
    data = scored_bytes(v, v.encode(CODE), first=1)
    out = subprocess.run(["xz", "-9e", "-c"], input=data, capture_output=True, check=True).stdout
    assert compressor_baseline(v, v.encode(CODE), first=1).compressed == len(out)
