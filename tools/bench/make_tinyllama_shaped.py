#!/usr/bin/env python3
"""Writes random TinyLlama-1.1B-shaped GGUF files for CPU/GPU speed benchmarks.

Shape: 22 layers, d_model 2048, 32 query heads, 4 KV heads (head_dim 64), FFN 5632, vocab
32000, RoPE theta 10000, RMSNorm eps 1e-5, context 2048, untied output. Tokenizer: the
stories260K SentencePiece vocabulary (512 tokens) padded with synthetic tokens `<extra_N>` to
32000, so the files load in tools that need a vocabulary. Files (about 4 GB together):

    tinyllama-shaped-f16.gguf   every matrix F16 (2.2 GB)
    tinyllama-shaped-q8_0.gguf  every matrix Q8_0, token embedding and output included (1.2 GB)
    tinyllama-shaped-q4_0.gguf  every matrix Q4_0, token embedding and output included (0.6 GB)

Norm weights are F32 in all three. The three files hold the same model: each matrix is a window
of one seeded pool of N(0, 0.02^2) values, and the pool is converted to F16 / quantized to Q8_0
and Q4_0 once (vectorised NumPy, same rounding as ggml's reference quantizers), so writing is
mostly disk I/O. Matrices larger than the pool repeat it; this does not matter for timing.

    /work/venv-ref/bin/python tools/bench/make_tinyllama_shaped.py /work/bench-models
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "reference"))

import gguf
from gguf import GGMLQuantizationType as T
from gguf_io import read_gguf

STORIES = "/work/shared/models/tinyllamas-stories-260k-f32.gguf"
HP = {"layers": 22, "d": 2048, "heads": 32, "kv_heads": 4, "ffn": 5632, "vocab": 32000, "ctx": 2048,
      "theta": 10000.0, "eps": 1e-5}
HEAD_DIM = HP["d"] // HP["heads"]
POOL_BLOCKS = 1 << 20  # 32 Mi values
WEIGHT_STD = 0.02
SEED = 1100


def quantize_q8_0(x: np.ndarray) -> np.ndarray:
    """(nblocks, 32) f32 -> (nblocks, 34) bytes as ggml's quantize_row_q8_0_ref: f16 scale d = amax/127,
    then 32 int8 roundf(x/d)."""
    amax = np.abs(x).max(axis=1, keepdims=True)
    d = amax / 127.0
    inv = np.divide(1.0, d, out=np.zeros_like(d), where=d != 0)
    scaled = x * inv
    q = (np.sign(scaled) * np.floor(np.abs(scaled) + 0.5)).astype(np.int8)  # C roundf: halves away from 0
    out = np.empty((x.shape[0], 34), dtype=np.uint8)
    out[:, 0:2] = d.astype(np.float16).view(np.uint8)
    out[:, 2:] = q.view(np.uint8)
    return out


def quantize_q4_0(x: np.ndarray) -> np.ndarray:
    """(nblocks, 32) f32 -> (nblocks, 18) bytes as ggml's quantize_row_q4_0_ref: d = max/-8 where
    max is the value of largest magnitude, q = min(15, trunc(x/d + 8.5)); byte j holds q[j] in
    its low nibble and q[j+16] in its high nibble."""
    idx = np.abs(x).argmax(axis=1)
    signed_max = x[np.arange(x.shape[0]), idx][:, None]
    d = signed_max / -8.0
    inv = np.divide(1.0, d, out=np.zeros_like(d), where=d != 0)
    q = np.minimum(15, (x * inv + 8.5).astype(np.int32)).astype(np.uint8)
    out = np.empty((x.shape[0], 18), dtype=np.uint8)
    out[:, 0:2] = d.astype(np.float16).view(np.uint8)
    out[:, 2:] = q[:, :16] | (q[:, 16:] << 4)
    return out


def tensor_list():
    """(name, row-major shape) in llama.cpp's order."""
    d, kv = HP["d"], HP["kv_heads"] * HEAD_DIM
    out = [("token_embd.weight", (HP["vocab"], d))]
    for i in range(HP["layers"]):
        p = f"blk.{i}."
        out += [(p + "attn_norm.weight", (d,)), (p + "attn_q.weight", (d, d)), (p + "attn_k.weight", (kv, d)),
                (p + "attn_v.weight", (kv, d)), (p + "attn_output.weight", (d, d)),
                (p + "ffn_norm.weight", (d,)), (p + "ffn_gate.weight", (HP["ffn"], d)),
                (p + "ffn_up.weight", (HP["ffn"], d)), (p + "ffn_down.weight", (d, HP["ffn"]))]
    out += [("output_norm.weight", (d,)), ("output.weight", (HP["vocab"], d))]
    return out


def padded_vocab(vocab_path: str):
    meta, _ = read_gguf(vocab_path)
    tokens = list(meta["tokenizer.ggml.tokens"])
    scores = list(meta["tokenizer.ggml.scores"])
    types = list(meta["tokenizer.ggml.token_type"])
    n = len(tokens)
    tokens += [f"<extra_{i}>" for i in range(n, HP["vocab"])]
    scores += [-1000.0 - i for i in range(n, HP["vocab"])]
    types += [int(gguf.TokenType.NORMAL)] * (HP["vocab"] - n)
    return tokens, scores, types


def open_writer(path: str, qtype: T, vocab) -> gguf.GGUFWriter:
    w = gguf.GGUFWriter(path, "llama")
    w.add_name(f"tinyllama-shaped-random-{qtype.name.lower()}")
    w.add_context_length(HP["ctx"])
    w.add_embedding_length(HP["d"])
    w.add_block_count(HP["layers"])
    w.add_feed_forward_length(HP["ffn"])
    w.add_head_count(HP["heads"])
    w.add_head_count_kv(HP["kv_heads"])
    w.add_rope_dimension_count(HEAD_DIM)
    w.add_rope_freq_base(HP["theta"])
    w.add_layer_norm_rms_eps(HP["eps"])
    w.add_vocab_size(HP["vocab"])
    w.add_file_type({T.F16: gguf.LlamaFileType.MOSTLY_F16, T.Q8_0: gguf.LlamaFileType.MOSTLY_Q8_0,
                     T.Q4_0: gguf.LlamaFileType.MOSTLY_Q4_0}[qtype])
    if qtype != T.F16:
        w.add_quantization_version(gguf.GGML_QUANT_VERSION)
    tokens, scores, types = vocab
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)
    return w


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out_dir", help="folder for the three files (outside the repository)")
    ap.add_argument("--types", default="f16,q8_0,q4_0", help="comma-separated subset of f16,q8_0,q4_0")
    ap.add_argument("--vocab-from", default=STORIES, help="GGUF whose tokenizer.ggml.* vocabulary is padded")
    args = ap.parse_args()
    os.makedirs(args.out_dir, exist_ok=True)
    qtypes = [{"f16": T.F16, "q8_0": T.Q8_0, "q4_0": T.Q4_0}[s] for s in args.types.split(",")]
    t0 = time.time()
    rng = np.random.default_rng(SEED)
    pool = (rng.standard_normal((POOL_BLOCKS, 32), dtype=np.float32) * WEIGHT_STD)
    pools = {T.F16: pool.astype(np.float16).view(np.uint8).reshape(POOL_BLOCKS, 64)}
    if T.Q8_0 in qtypes:
        pools[T.Q8_0] = quantize_q8_0(pool)
    if T.Q4_0 in qtypes:
        pools[T.Q4_0] = quantize_q4_0(pool)
    # the vectorised quantizers above must agree with gguf's reference implementation
    sample = pool[:4096]
    for qt in (T.Q8_0, T.Q4_0):
        if qt in pools:
            ref = gguf.quants.quantize(sample.reshape(-1, 1024), qt).reshape(4096, -1)
            if not np.array_equal(ref, pools[qt][:4096]):
                sys.exit(f"internal error: vectorised {qt.name} differs from gguf.quants.quantize")
    print(f"pool of {pool.size} values ready in {time.time() - t0:.1f}s", flush=True)

    vocab = padded_vocab(args.vocab_from)
    tensors = tensor_list()
    offsets = rng.integers(0, POOL_BLOCKS, size=len(tensors))
    norm = (1.0 + 0.1 * rng.standard_normal(HP["d"])).astype(np.float32)
    for qt in qtypes:
        path = os.path.join(args.out_dir, f"tinyllama-shaped-{qt.name.lower()}.gguf")
        w = open_writer(path, qt, vocab)
        block_bytes = pools[qt].shape[1]
        for name, shape in tensors:
            if len(shape) == 1:
                w.add_tensor_info(name, shape, np.dtype(np.float32), norm.nbytes)
            else:
                nbytes = shape[0] * shape[1] // 32 * block_bytes
                if qt == T.F16:
                    w.add_tensor_info(name, shape, np.dtype(np.float16), nbytes)
                else:
                    byte_shape = (shape[0], shape[1] // 32 * block_bytes)
                    w.add_tensor_info(name, byte_shape, np.dtype(np.uint8), nbytes, raw_dtype=qt)
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_ti_data_to_file()
        for (name, shape), offset in zip(tensors, offsets):
            if len(shape) == 1:
                w.write_tensor_data(norm)
                continue
            n_blocks = shape[0] * shape[1] // 32
            idx = (offset + np.arange(n_blocks)) % POOL_BLOCKS
            w.write_tensor_data(np.take(pools[qt], idx, axis=0))
        w.close()
        print(f"wrote {path} ({os.path.getsize(path) / 1e9:.2f} GB) at {time.time() - t0:.1f}s", flush=True)


if __name__ == "__main__":
    main()
