"""Training: truncated BPTT over parallel streams, exact validation, schedule, checkpoints, autosize.

    from charlstm.train import train
    from charlstm.config import build_configs
    m, t = build_configs("tiny", overrides={"max_steps": 500})
    result = train("stdlib", "checkpoints/demo", m, t)       # -> TrainResult
    print(result.best_val_bpc)

Modules: `loop` (the Trainer and `train()`), `state` (everything a run needs to resume exactly),
`batches` (the data laid out as streams), `schedule` (the learning rate), `autosize` (the best model
for a time budget), `distributed` (torchrun/DDP), `progress` (what a run shows a person), `setup`
(turning command-line choices into configs).
"""
from charlstm.train.loop import Callback, Event, TrainResult, train
from charlstm.train.validate import score_nats

__all__ = ["Callback", "Event", "TrainResult", "score_nats", "train"]
