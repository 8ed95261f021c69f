"""Neuron discovery: which units track a feature, and what they do when forced.

    from charlstm.neurons import find_units
    from charlstm.inputs import read_input
    result = find_units(model, vocab, read_input(vocab, text="say \"hi\" now"), "double-quote")

Modules: `textsteps` and `scanners` (texts as steps, the built-in scanners), `features` (the feature
library and `compute`), `ranking` (units against a feature, fast and slow twins), `probe` (the
sparse L1 probe), `find` (`charlstm neurons find`), `ablation` (interventions, `neurons ablate`).
"""
from charlstm.neurons.ablation import (AblationGroup, AblationResult, ablate, explicit_losses, format_ablation,
                                       fused_losses)
from charlstm.neurons.features import FEATURES, PARAMETERISED, Feature, compute, feature_help, get_feature, to_symbols
from charlstm.neurons.find import DEFAULT_LIMIT, FindResult, feature_values, find_html, find_png, find_units, format_find
from charlstm.neurons.probe import ProbeResult, ProbeUnit, l1_probe
from charlstm.neurons.ranking import UnitScore, UnitStat, rank_units, unit_overview

__all__ = ["DEFAULT_LIMIT", "FEATURES", "PARAMETERISED", "AblationGroup", "AblationResult", "Feature", "FindResult",
           "ProbeResult", "ProbeUnit", "UnitScore", "UnitStat", "ablate", "compute", "explicit_losses", "feature_help",
           "feature_values", "find_html", "find_png", "find_units", "format_ablation", "format_find", "fused_losses",
           "get_feature", "l1_probe", "rank_units", "to_symbols", "unit_overview"]
