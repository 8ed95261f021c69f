"""Sampling: text from a model with O(1) work per character, many samples as one batch, steering.

    from charlstm.sample import SampleOptions, generate
    g = generate(model, vocab, vocab.encode("def "), SampleOptions(length=200, temperature=0.8, seed=1))
    print(g.samples[0].text)

Modules: `options` (what to generate, what comes back), `rules` (temperature, top-k, top-p, greedy,
the Gumbel-max draw), `stepper` (the hand-fused step and its block/CUDA-graph form), `loop` (the
generation loop, its naive twin, text and stopping). Most users call `charlstm.load(run).generate`.
"""
from charlstm.sample.loop import (CHECK_EVERY, PRIME_CHUNK, RowText, generate, naive_generate, read_prime,
                                  start_id)
from charlstm.sample.options import Generation, Sample, SampleOptions, fresh_seed
from charlstm.sample.rules import GumbelNoise, filter_top_k, filter_top_p, sample_next, temper
from charlstm.sample.stepper import NUMPY_MAX_MATRIX, BlockSampler, Stepper, prepared_weights
from charlstm.units import Clamp

__all__ = ["CHECK_EVERY", "PRIME_CHUNK", "BlockSampler", "Clamp", "Generation", "GumbelNoise", "NUMPY_MAX_MATRIX",
           "RowText", "Sample", "SampleOptions", "Stepper", "filter_top_k", "filter_top_p", "fresh_seed", "generate",
           "naive_generate", "prepared_weights", "read_prime", "sample_next", "start_id", "temper"]
