"""charlstm.units: the one unit-spec syntax (layer1.c:37, layer1.c:37=1.5), the one Clamp used for
steering and ablation, checks against a model's shape, gate kinds and saturation."""
from __future__ import annotations

import numpy as np
import pytest

from charlstm import cells
from charlstm.errors import CharlstmError
from charlstm.units import (GATE_KINDS, SATURATION_GATES, Clamp, Unit, check_unit, clamps, gate_saturation, is_gate,
                            key, kind_of, parse_clamp, parse_key, parse_unit, saturated_fraction, saturation_counts)


def test_parse_unit_and_clamp_specs():
    assert parse_unit("layer1.c:37") == Unit(1, "c", 37)
    assert parse_unit(" layer0.h:0 ").name == "layer0.h:0"
    assert parse_clamp("layer1.c:37=1.0") == Clamp(1, "c", 37, 1.0)
    assert parse_clamp(" layer0.h : 3 = -2e-1 ") == Clamp(0, "h", 3, -0.2)
    assert parse_clamp("layer1.c:37", default=0.0) == Clamp(1, "c", 37, 0.0)
    c = Clamp(1, "c", 37, 1.0)
    assert str(c) == "layer1.c:37=1" and c.name == "layer1.c:37" and c.key == "layer1.c"
    assert key(1, "c") == "layer1.c" and parse_key("layer1.c") == (1, "c") and kind_of("layer1.c:37") == "c"


@pytest.mark.parametrize("call, message", [
    (lambda: parse_unit("layer1.c"), "cannot read unit 'layer1.c'; write layer, kind and unit like layer1.c:37"),
    (lambda: parse_unit("layer1.c:x"), "cannot read unit"),
    (lambda: parse_unit(":3"), "cannot read unit"),
    (lambda: parse_unit("layer1.c:-1"), "cannot read unit"),
    (lambda: parse_unit("layer1.c:3=1"), "values like =1.0 are for clamps"),
    (lambda: parse_clamp("layer1.c:3"), "missing value in clamp"),
    (lambda: parse_clamp("layer1.c:3=abc"), "cannot read the value in clamp"),
    (lambda: parse_clamp("layer1.c:3=nan"), "finite"),
    (lambda: parse_clamp("layer1.c:3=inf"), "finite"),
    (lambda: parse_key("layer1"), "write a layer and a kind"),
] + [(lambda bad=bad: parse_clamp(bad), "clamp")
     for bad in ("layer1.c:37", "c:37=1", "layer1.c=1", "layerx.c:1=1", "layer1.c:1=abc", "layer1.c:1=nan")])
def test_bad_unit_specs(call, message):
    with pytest.raises(CharlstmError, match=message):
        call()


def test_units_are_checked_against_the_model_shape():
    check_unit(Unit(1, "c", 15), "lstm", 2, 16)
    with pytest.raises(CharlstmError, match="layer 2 does not exist; the model has layers 0..1"):
        check_unit(parse_clamp("layer2.c:1=1"), "lstm", 2, 16)
    with pytest.raises(CharlstmError, match="gru cell has no kind 'c'"):
        check_unit(parse_clamp("layer1.c:1=1"), "gru", 2, 16)
    with pytest.raises(CharlstmError, match="unit 16 does not exist"):
        check_unit(parse_unit("layer1.h:16"), "lstm", 2, 16)
    with pytest.raises(CharlstmError, match="rnn cell has no kind 'z'"):
        check_unit(Unit(0, "z", 1), "rnn", 1, 4)


def test_clamps_in_every_form_are_the_same():
    want = (Clamp(1, "h", 3, 5.0),)
    for form in ("layer1.h:3=5", ["layer1.h:3=5"], {"layer1.h:3": 5.0}, Clamp(1, "h", 3, 5.0), [Clamp(1, "h", 3, 5.0)]):
        assert clamps(form, "lstm", 2, 16) == want
    assert clamps(None, "lstm", 2, 16) == ()
    with pytest.raises(CharlstmError, match="unit 16 does not exist"):
        clamps(Clamp(1, "h", 16, 5.0), "lstm", 2, 16)


def test_gate_kinds_and_the_gates_each_cell_reports():
    for cell in cells.KINDS:
        assert SATURATION_GATES[cell] == tuple(k for k in cells.KINDS[cell] if k in GATE_KINDS)
    assert is_gate("layer3.z") and is_gate("f") and not is_gate("layer0.g") and not is_gate("layer0.h:1")


def test_gate_saturation_on_known_arrays():
    gates = np.array([[0.05, 0.5, 0.95, 0.1],
                      [0.02, 0.5, 0.99, 0.9],
                      [0.50, 0.5, 0.05, 0.0],
                      [0.95, 0.5, 0.97, 1.0]], dtype=np.float32)
    left, right = gate_saturation(gates)
    assert left.tolist() == [0.5, 0.0, 0.25, 0.25]  # strict: exactly 0.1 and 0.9 are not saturated
    assert right.tolist() == [0.25, 0.0, 0.75, 0.25]
    assert [c.tolist() for c in saturation_counts(gates)] == [[2, 0, 1, 1], [1, 0, 3, 1]]
    left, right = gate_saturation(gates, low=0.6, high=0.6)
    assert left.tolist() == [0.75, 1.0, 0.25, 0.5]
    with pytest.raises(CharlstmError, match="2-D"):
        gate_saturation(np.zeros(3))
    # the viewer's overview: gates by left + right, tanh kinds beyond |0.9|, c through tanh
    np.testing.assert_allclose(saturated_fraction(gates, "f"), [0.75, 0.0, 1.0, 0.5])
    h = np.array([[0.95, 0.0], [-0.99, 0.5]], dtype=np.float32)
    assert saturated_fraction(h, "h").tolist() == [1.0, 0.0]
    assert saturated_fraction(np.array([[3.0], [0.1]]), "c").tolist() == [0.5]


def test_dictionary_features_share_the_spec_syntax():
    from charlstm.units import DictClamp, DictUnit, dict_key, is_dict_key, parse_dict_key

    assert parse_unit("dict:12") == DictUnit(None, 12) and str(parse_unit(" dict/layer0.c-64 : 3 ")) == "dict/layer0.c-64:3"
    assert parse_clamp("dict:12=2") == DictClamp(None, 12, 2.0) and parse_clamp("dict/a:1", default=0.0).value == 0.0
    assert str(DictClamp("a", 1, -0.5)) == "dict/a:1=-0.5" and DictUnit("a", 1).key == "dict/a"
    assert dict_key(None) == "dict" and parse_dict_key("dict/x") == "x" and parse_dict_key("layer0.c") is False
    assert is_dict_key("dict:3") and not is_dict_key("layer0.c:3") and kind_of("dict/x:3") == "dict"
    assert not is_gate("dict:3")
    for bad, msg in (("dict:x", "cannot read unit"), ("dict/:3", "cannot read unit"), ("dict:3=1", "for clamps")):
        with pytest.raises(CharlstmError, match=msg):
            parse_unit(bad)
    with pytest.raises(CharlstmError, match="missing value in clamp 'dict:3'; .* like dict:12=2.0"):
        parse_clamp("dict:3")
    with pytest.raises(CharlstmError, match="finite"):
        parse_clamp("dict:3=inf")
    with pytest.raises(CharlstmError, match="names a dictionary feature"):
        check_unit(DictUnit(None, 3), "lstm", 2, 16)


def test_clamps_resolve_dictionary_features_into_state_edits():
    from charlstm.units import DictClamp, is_edit

    class Edit:
        def __init__(self, layer, kind, size):
            self.layer, self.kind, self.size = layer, kind, size

        def apply(self, t):
            pass

    got = clamps(["layer1.h:3=5", "dict:2=1.5"], "lstm", 2, 16, resolve=lambda dc: Edit(1, "c", 16))
    assert got[0] == Clamp(1, "h", 3, 5.0) and is_edit(got[1])
    with pytest.raises(CharlstmError, match="cannot read dictionaries"):
        clamps("dict:2=1.5", "lstm", 2, 16)
    with pytest.raises(CharlstmError, match="acts on 8 units but the model's layers have 16"):
        clamps("dict:2=1.5", "lstm", 2, 16, resolve=lambda dc: Edit(1, "c", 8))
    with pytest.raises(CharlstmError, match="only the states"):
        check_unit(Edit(0, "f", 16), "lstm", 2, 16)
    with pytest.raises(CharlstmError, match="gru cell has no kind 'c'"):
        check_unit(Edit(0, "c", 16), "gru", 2, 16)
    assert isinstance(DictClamp(None, 1, 1.0), DictClamp)
