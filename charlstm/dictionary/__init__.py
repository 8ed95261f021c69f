"""Sparse dictionaries over a model's states: features nobody named (`charlstm dictionary`).

A dictionary is a TopK sparse autoencoder over one layer's h or c (`model`), trained on states
streamed from the run's training split (`states`, `train`), stored in the run folder (`store`),
measured on held-out text (`fidelity`: variance explained, dead and dense features, the spliced
bpc), and shown as a page of every feature (`dashboard` computes the page's data; charlstm.viz.dictpage
draws it). A feature is used like a unit: `dict:12` / `dict/NAME:12` in trace, neurons find and
sample --clamp (`steer`: holding a feature's activation at a value along its decoder direction).

    from charlstm.dictionary import load, text_activations
    d, info = load(run_folder)                          # the run's only dictionary
    acts = text_activations(model, vocab, d, ids)       # [T, F], rankable like units
"""
from charlstm.dictionary.model import CODES, Dictionary, fvu
from charlstm.dictionary.store import FeatureColumn, load, load_all, names, pick, resolve, text_activations
from charlstm.dictionary.steer import FeatureClamp, Splice

__all__ = ["CODES", "Dictionary", "FeatureClamp", "FeatureColumn", "Splice", "fvu", "load", "load_all", "names",
           "pick", "resolve", "text_activations"]
