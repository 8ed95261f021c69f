"""The atlas of a model (`charlstm atlas`): every applicable feature against every unit, with the
statistics a careful reviewer asks for, in one report.

    from charlstm.neurons.atlas import build_atlas
    atlas = build_atlas(model, vocab, inp, run_config)      # an Atlas; atlas.to_json() has every number

For each feature the text of the run's kind calls for (charlstm.neurons.features.DOMAINS; a
synthetic task's own variables) and each one the user adds, every unit of every layer and kind is
ranked on one part of the text and the best ones are confirmed on the other; the best unit is held
against shifted copies of the feature (chance) and against untrained models of the same shape
(learning); an L1 probe is compared with a control task (selectivity); the top units are ablated;
and the report adds gate saturation and where the LSTM beats n-gram baselines.

Modules: `selection` (targets, parts, key predictions), `scoring` (vectorised ranking and shifted
controls, with slow twins), `controls` (untrained models, probe control tasks), `causes`
(ablations), `ngram` (Witten-Bell n-grams, with a slow twin), `breakdown` (the error analysis
groups), `results` (the data and its JSON), `build` (`build_atlas`), `report` (the text summary and
the pictures).
"""
from charlstm.neurons.atlas.build import build_atlas
from charlstm.neurons.atlas.results import Atlas, FeatureResult, UnitResult

__all__ = ["Atlas", "FeatureResult", "UnitResult", "build_atlas"]
