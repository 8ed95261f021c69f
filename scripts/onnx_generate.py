"""Greedy generation from an exported ONNX step with nothing but onnxruntime, numpy and tokenizers
(no charlstm, no torch): what `charlstm export RUN --onnx model.onnx` makes portable.

    .venv/bin/python scripts/onnx_generate.py out/demo.onnx --prime "class " --length 200

It prints the same text as `charlstm sample RUN --prime "class " --greedy --length 200` (tested in
tests/test_export_onnx.py). The caller's part of the model's rules (docs/formats.md, "ONNX"): start
from the zero state, read <eot> first for a model of records, an empty prime starts from start_id,
never write <unk>, stop at <eot>. The step itself reads each <eot> from the zero state.
"""
from __future__ import annotations

import argparse
import sys

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer


def generate(path: str, prime: str, length: int) -> str:
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    meta = sess.get_modelmeta().custom_metadata_map
    tok = Tokenizer.from_str(meta["charlstm.tokenizer"])

    def num(key: str) -> int | None:
        return int(meta[f"charlstm.{key}"]) if meta[f"charlstm.{key}"] else None  # "" means none

    L, H, reset, eot, unk = (num(k) for k in ("num_layers", "hidden_size", "reset_id", "eot_id", "unk_id"))
    state = {name: np.zeros((L, 1, H), np.float32) for name in meta["charlstm.inputs"].split(",")[1:]}

    def step(i: int) -> np.ndarray:  # read one id -> the logits of the next
        logits, *new = sess.run(None, {"ids": np.array([i], dtype=np.int64), **state})
        state.update(zip(state, new))
        return logits[0]

    context = ([reset] if reset is not None else []) + tok.encode(prime).ids or [num("start_id")]
    for i in context:
        logits = step(i)
    out: list[int] = []
    for _ in range(length):
        if unk is not None:
            logits[unk] = -np.inf  # <unk> stands for many characters: never written
        i = int(np.argmax(logits))
        if i == eot:
            break
        out.append(i)
        logits = step(i)
    return tok.decode(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("--prime", default="")
    ap.add_argument("--length", type=int, default=200)
    args = ap.parse_args()
    sys.stdout.write(args.prime + generate(args.model, args.prime, args.length) + "\n")


if __name__ == "__main__":
    main()
