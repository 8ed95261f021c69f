"""charlstm: character-level LSTM/GRU/RNN toolkit for text and code.

Corpora -> datasets -> training -> sampling -> neuron traces -> neuron discovery.
`charlstm.load(run)` returns a model object for generation, scoring and tracing.
"""
from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "load", "CharlstmError"]

from charlstm.errors import CharlstmError


def load(run_or_path, checkpoint: str = "best", device: str = "cpu"):
    """Load a trained run (name under checkpoints/ or a path) as a `charlstm.api.Model`."""
    from charlstm.api import load as _load

    return _load(run_or_path, checkpoint=checkpoint, device=device)
