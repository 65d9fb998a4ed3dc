#!/usr/bin/env python3
"""Builds the tiny random Llama test checkpoint of issue 7 and its reference outputs.

A `LlamaForCausalLM` from Hugging Face `transformers` (2 layers, hidden 64, 4 heads, 2 KV heads,
FFN 192, vocab 512, RoPE theta 10000, RMSNorm eps 1e-5, untied output) with weights drawn from a
seeded NumPy generator, the stories260K SentencePiece vocabulary as its tokenizer, saved

- as Hugging Face safetensors (`save_pretrained`, f32) with config.json and the tokenizer files;
- as GGUF F32, F16, Q8_0 and Q4_0, laid out as llama.cpp's converter does (Q/K rows permuted
  from rotate-half to adjacent pairs, norms f32, every 2-D matrix in the file's type, the token
  embedding and the output matrix included);
- with reference.json: the prompt, its ids, the logits at every prompt position and the 32-token
  greedy continuation of each variant, computed by transformers in float64 on the exact weights
  each file holds (f16-rounded or GGUF-dequantized), so a reader of a file is compared with the
  function that file defines.

Run from anywhere (writes tests/fixtures/tiny_llama/ of this repository):
    /work/venv-ref/bin/python tools/llama_fixture/make_tiny_llama.py [--check]
--check rebuilds into a temporary folder and fails unless every file is byte-identical to the
committed one.
"""

from __future__ import annotations

import argparse
import filecmp
import json
import os
import sys
import tempfile
from importlib.metadata import version

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(REPO, "tools", "reference"))

import gguf
import torch
from gguf import GGMLQuantizationType as T
from gguf_io import TOKENIZER_ARRAY_TYPES, read_gguf
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

PINNED = {"gguf": "0.17.1", "transformers": "5.23.0", "torch": "2.15.0", "numpy": "2.4.6",
          "safetensors": "0.8.0"}
for _pkg, _want in PINNED.items():
    if version(_pkg) != _want:
        sys.exit(f"expected {_pkg}=={_want}, found {version(_pkg)}: install tools/llama_fixture/requirements.txt")

OUT = os.path.join(REPO, "tests", "fixtures", "tiny_llama")
STORIES = "/work/shared/models/tinyllamas-stories-260k-f32.gguf"
SEED = 20261123
WEIGHT_STD = 0.15
PROMPT = "Once upon a time, there was a little girl"
N_GREEDY = 32

HP = {"vocab": 512, "d": 64, "layers": 2, "heads": 4, "kv_heads": 2, "ffn": 192, "ctx": 256, "theta": 10000.0,
      "eps": 1e-5}
HEAD_DIM = HP["d"] // HP["heads"]


def llama_config() -> LlamaConfig:
    return LlamaConfig(
        vocab_size=HP["vocab"], hidden_size=HP["d"], intermediate_size=HP["ffn"],
        num_hidden_layers=HP["layers"], num_attention_heads=HP["heads"],
        num_key_value_heads=HP["kv_heads"], head_dim=HEAD_DIM, max_position_embeddings=HP["ctx"],
        rms_norm_eps=HP["eps"], rope_parameters={"rope_type": "default", "rope_theta": HP["theta"]},
        tie_word_embeddings=False, bos_token_id=1, eos_token_id=2, pad_token_id=0,
        hidden_act="silu", attention_bias=False, mlp_bias=False, initializer_range=WEIGHT_STD,
        dtype="float32",
    )


def random_state_dict() -> dict[str, np.ndarray]:
    """Every weight from one seeded NumPy generator, so the model does not depend on torch's
    initialisers. Norm weights are 1 + noise so a reader that skips them is caught."""
    rng = np.random.default_rng(SEED)
    d, ffn, hd = HP["d"], HP["ffn"], HEAD_DIM

    def mat(rows, cols):
        return (rng.standard_normal((rows, cols)) * WEIGHT_STD).astype(np.float32)

    def norm():
        return (1.0 + 0.1 * rng.standard_normal(d)).astype(np.float32)

    sd = {"model.embed_tokens.weight": (rng.standard_normal((HP["vocab"], d))).astype(np.float32)}
    for i in range(HP["layers"]):
        p = f"model.layers.{i}."
        sd[p + "input_layernorm.weight"] = norm()
        sd[p + "self_attn.q_proj.weight"] = mat(HP["heads"] * hd, d)
        sd[p + "self_attn.k_proj.weight"] = mat(HP["kv_heads"] * hd, d)
        sd[p + "self_attn.v_proj.weight"] = mat(HP["kv_heads"] * hd, d)
        sd[p + "self_attn.o_proj.weight"] = mat(d, HP["heads"] * hd)
        sd[p + "post_attention_layernorm.weight"] = norm()
        sd[p + "mlp.gate_proj.weight"] = mat(ffn, d)
        sd[p + "mlp.up_proj.weight"] = mat(ffn, d)
        sd[p + "mlp.down_proj.weight"] = mat(d, ffn)
    sd["model.norm.weight"] = norm()
    sd["lm_head.weight"] = mat(HP["vocab"], d)
    return sd


# --- Hugging Face <-> GGUF names and the RoPE row order --------------------------------------

def gguf_name(hf: str) -> str:
    fixed = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
             "lm_head.weight": "output.weight"}
    if hf in fixed:
        return fixed[hf]
    parts = hf.split(".")  # model.layers.N.<module>.<sub>.weight
    n, rest = parts[2], ".".join(parts[3:])
    per_layer = {
        "input_layernorm.weight": "attn_norm.weight", "self_attn.q_proj.weight": "attn_q.weight",
        "self_attn.k_proj.weight": "attn_k.weight", "self_attn.v_proj.weight": "attn_v.weight",
        "self_attn.o_proj.weight": "attn_output.weight", "post_attention_layernorm.weight": "ffn_norm.weight",
        "mlp.gate_proj.weight": "ffn_gate.weight", "mlp.up_proj.weight": "ffn_up.weight",
        "mlp.down_proj.weight": "ffn_down.weight",
    }
    return f"blk.{n}.{per_layer[rest]}"


def rope_heads(hf: str) -> int | None:
    if hf.endswith("q_proj.weight"):
        return HP["heads"]
    if hf.endswith("k_proj.weight"):
        return HP["kv_heads"]
    return None


def to_adjacent_pairs(w: np.ndarray, n_head: int) -> np.ndarray:
    """HF rotate-half rows (per head: first halves, then second halves) -> GGUF's interleaved
    pairs (row 2i and 2i+1 are the two halves' i-th rows), as llama.cpp's converter permutes."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def to_rotate_half(w: np.ndarray, n_head: int) -> np.ndarray:
    """The inverse of to_adjacent_pairs."""
    return w.reshape(n_head, w.shape[0] // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


# --- tokenizer ------------------------------------------------------------------------------

def stories_tokenizer_meta() -> dict:
    meta, _ = read_gguf(STORIES)
    return {k: v for k, v in meta.items() if k.startswith("tokenizer.")}


def add_tokenizer_meta(w: gguf.GGUFWriter, tok_meta: dict) -> None:
    w.add_tokenizer_model(tok_meta["tokenizer.ggml.model"])
    w.add_token_list(tok_meta["tokenizer.ggml.tokens"])
    w.add_token_scores(tok_meta["tokenizer.ggml.scores"])
    w.add_token_types(tok_meta["tokenizer.ggml.token_type"])
    w.add_bos_token_id(tok_meta["tokenizer.ggml.bos_token_id"])
    w.add_eos_token_id(tok_meta["tokenizer.ggml.eos_token_id"])
    w.add_unk_token_id(0)
    w.add_pad_token_id(tok_meta["tokenizer.ggml.padding_token_id"])
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)
    assert set(TOKENIZER_ARRAY_TYPES) >= {k for k, v in tok_meta.items() if isinstance(v, list)}


def save_tokenizer(out_dir: str, tok_meta: dict, work: str):
    """transformers reads a GGUF vocabulary only from v2/v3 files, and stories260K is v1: copy
    its tokenizer metadata into a tensor-less v3 file, load that, save the HF tokenizer files."""
    path = os.path.join(work, "vocab.gguf")
    w = gguf.GGUFWriter(path, "llama")
    add_llama_hparams(w)
    add_tokenizer_meta(w, tok_meta)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    tok = AutoTokenizer.from_pretrained(work, gguf_file="vocab.gguf")
    tok.save_pretrained(out_dir)
    return tok


# --- GGUF -----------------------------------------------------------------------------------

FILE_TYPES = {T.F32: gguf.LlamaFileType.ALL_F32, T.F16: gguf.LlamaFileType.MOSTLY_F16,
              T.Q8_0: gguf.LlamaFileType.MOSTLY_Q8_0, T.Q4_0: gguf.LlamaFileType.MOSTLY_Q4_0}


def add_llama_hparams(w: gguf.GGUFWriter) -> None:
    w.add_name("tiny-random-llama")
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


def gguf_tensor(name: str, w: np.ndarray, qtype: T):
    """(array to write, raw_dtype or None, float32 values the file then holds)."""
    if w.ndim == 1 or qtype == T.F32:
        return w.astype(np.float32), None, w.astype(np.float32)
    if qtype == T.F16:
        h = w.astype(np.float16)
        return h, None, h.astype(np.float32)
    if w.shape[-1] % 32 != 0:
        raise ValueError(f"{name}: row length {w.shape[-1]} is not a multiple of 32")
    packed = gguf.quants.quantize(w, qtype)
    return packed, qtype, np.asarray(gguf.quants.dequantize(packed, qtype), dtype=np.float32)


def write_gguf(path: str, sd: dict, qtype: T, tok_meta: dict) -> dict[str, np.ndarray]:
    """Writes one GGUF file; returns the HF state dict of the values the file holds."""
    w = gguf.GGUFWriter(path, "llama")
    add_llama_hparams(w)
    w.add_file_type(FILE_TYPES[qtype])
    if qtype in (T.Q8_0, T.Q4_0):
        w.add_quantization_version(gguf.GGML_QUANT_VERSION)
    add_tokenizer_meta(w, tok_meta)
    held = {}
    for hf, value in sd.items():
        heads = rope_heads(hf)
        stored = to_adjacent_pairs(value, heads) if heads else value
        data, raw, values = gguf_tensor(hf, stored, qtype)
        if raw is None:
            w.add_tensor(gguf_name(hf), data)
        else:
            w.add_tensor(gguf_name(hf), data, raw_dtype=raw)
        held[hf] = to_rotate_half(values, heads) if heads else values
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return held


# --- reference outputs ----------------------------------------------------------------------

def run_reference(model: LlamaForCausalLM, sd: dict, ids: list[int]) -> dict:
    """Logits of every prompt position and the greedy continuation (recomputed from scratch at
    every step, without a cache, and without stopping at EOS)."""
    model.load_state_dict({k: torch.from_numpy(v.astype(np.float64)) for k, v in sd.items()}, strict=True)
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0].numpy()
        seq = list(ids)
        margins = []
        for _ in range(N_GREEDY):
            last = model(torch.tensor([seq])).logits[0, -1].numpy()
            top2 = np.sort(last)[-2:]
            margins.append(float(top2[1] - top2[0]))
            seq.append(int(np.argmax(last)))
    greedy = seq[len(ids):]
    if len(set(greedy)) < 4:
        raise RuntimeError(f"greedy continuation is nearly constant: {greedy}")
    return {
        "logits": [[float(f"{x:.6g}") for x in row] for row in logits],
        "greedy": greedy,
        "greedy_min_top2_margin": float(f"{min(margins):.6g}"),
    }


def build(out_dir: str) -> None:
    os.makedirs(out_dir, exist_ok=True)
    torch.manual_seed(SEED)
    sd = random_state_dict()
    config = llama_config()
    model = LlamaForCausalLM(config).eval()
    model.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()}, strict=True)
    model.save_pretrained(out_dir, safe_serialization=True)
    for extra in ("generation_config.json",):
        p = os.path.join(out_dir, extra)
        if os.path.exists(p):
            os.remove(p)

    tok_meta = stories_tokenizer_meta()
    with tempfile.TemporaryDirectory() as work:
        tok = save_tokenizer(out_dir, tok_meta, work)
    ids = tok(PROMPT)["input_ids"]
    assert ids[0] == 1, f"expected BOS first, got {ids}"

    variants = {"f32": sd}
    for qtype, tag in ((T.F32, "f32"), (T.F16, "f16"), (T.Q8_0, "q8_0"), (T.Q4_0, "q4_0")):
        held = write_gguf(os.path.join(out_dir, f"tiny-{tag}.gguf"), sd, qtype, tok_meta)
        if tag == "f32":
            assert all(np.array_equal(held[k], sd[k]) for k in sd)
        else:
            variants[tag] = held

    model64 = LlamaForCausalLM(config).to(torch.float64).eval()
    files = {"f32": ["model.safetensors", "tiny-f32.gguf"], "f16": ["tiny-f16.gguf"],
             "q8_0": ["tiny-q8_0.gguf"], "q4_0": ["tiny-q4_0.gguf"]}
    weights = {"f32": "the f32 weights", "f16": "the f32 weights rounded to f16 (norms kept f32)",
               "q8_0": "gguf 0.17.1's dequantization of the Q8_0 file (norms f32)",
               "q4_0": "gguf 0.17.1's dequantization of the Q4_0 file (norms f32)"}
    ref = {
        "about": "Reference outputs of the tiny random Llama in this folder. Each variant is computed by "
                 "transformers' LlamaForCausalLM in float64 on the exact values its file holds, so the only "
                 "difference left to a reader is its own arithmetic. logits[p] is the next-token logits row "
                 "after prompt position p (6 significant digits). greedy is the argmax continuation of the "
                 "prompt ids, recomputed without cache and not stopped at EOS; greedy_min_top2_margin is the "
                 "smallest gap between the best and second-best logit over those steps.",
        "generator": {"script": "tools/llama_fixture/make_tiny_llama.py", "seed": SEED, "weight_std": WEIGHT_STD,
                      "versions": PINNED, "compute_dtype": "float64"},
        "config": {**HP, "head_dim": HEAD_DIM, "tie_word_embeddings": False, "bos_token_id": 1, "eos_token_id": 2},
        "prompt": PROMPT,
        "prompt_ids": ids,
        "add_bos": True,
        "tokenizer": "stories260K SentencePiece vocabulary (512 tokens)",
        "variants": {},
    }
    for tag, held in variants.items():
        r = run_reference(model64, held, ids)
        ref["variants"][tag] = {"files": files[tag], "weights": weights[tag], **r}
    with open(os.path.join(out_dir, "reference.json"), "w") as f:
        json.dump(ref, f, separators=(",", ":"))
        f.write("\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="rebuild in a temp dir and compare byte for byte")
    args = ap.parse_args()
    if not args.check:
        build(OUT)
        total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
        print(f"wrote {OUT} ({total} bytes)")
        return
    with tempfile.TemporaryDirectory() as tmp:
        build(tmp)
        names = sorted(set(os.listdir(tmp)) | set(os.listdir(OUT)))
        _, mismatch, errors = filecmp.cmpfiles(OUT, tmp, names, shallow=False)
        if mismatch or errors:
            sys.exit(f"not reproducible: differs {mismatch}, missing {errors}")
        print(f"all {len(names)} files byte-identical")


if __name__ == "__main__":
    main()
