#!/usr/bin/env python3
"""Writes the GGUF and safetensors test fixtures of crates/tl-models with independent writers
(the `gguf` and `safetensors` packages from PyPI), so the Rust readers are checked against
files they did not write. The outputs are committed; the Rust tests need no Python.

Install (once), then run from the repository root:
    python3 -m venv /tmp/gguf-venv
    /tmp/gguf-venv/bin/pip install gguf==0.17.1 numpy safetensors==0.8.0
    /tmp/gguf-venv/bin/python tools/gguf_fixtures/make_fixtures.py

Outputs in crates/tl-models/tests/fixtures/:
- quant_v3.gguf: GGUF v3 with one tensor per type (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K,
  Q5_K, Q6_K), the f32 sources of the Q8_0/Q4_0 tensors (`src.*`, for checking our quantizer
  byte for byte), and metadata of every value type (`test.*`) plus llama hyper-parameters.
- quant_v3.<tensor>.f32: gguf's numpy dequantization of each tensor, raw little-endian f32.
- quant_v2.gguf: the same file with its version field set to 2 (v2 and v3 share the layout).
- align64.gguf: two tensors with general.alignment = 64.
- st_llama/model.safetensors + config.json: a tiny random Llama checkpoint under Hugging Face
  names (F32 and F16) written by the safetensors package.
"""

import json
import os
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T, GGUFValueType as V
from safetensors.numpy import save_file

from importlib.metadata import version

# The fixtures were made with these versions; another gguf may lay files out differently.
assert version("gguf") == "0.17.1", f"expected gguf 0.17.1, found {version('gguf')}"

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "crates", "tl-models", "tests", "fixtures")
OUT = os.path.normpath(OUT)
rng = np.random.default_rng(20261123)


def k_quant_blocks(qtype, rows, cols):
    """Random K-quant rows: random packed bytes with sane f16 super-block scales (random bytes
    there could be inf or NaN)."""
    block_values, block_bytes = gguf.GGML_QUANT_SIZES[qtype]
    nb = cols // block_values
    data = rng.integers(0, 256, size=(rows, nb, block_bytes), dtype=np.uint8)
    def f16_bytes(lo, hi):
        return rng.uniform(lo, hi, size=(rows, nb)).astype(np.float16).view(np.uint8).reshape(rows, nb, 2)
    if qtype in (T.Q4_K, T.Q5_K):
        data[:, :, 0:2] = f16_bytes(0.002, 0.02)  # d
        data[:, :, 2:4] = f16_bytes(0.001, 0.01)  # dmin
    elif qtype == T.Q6_K:
        data[:, :, 208:210] = f16_bytes(0.001, 0.01)  # d
    return data.reshape(rows, nb * block_bytes)


def write_quant_file(path):
    w = gguf.GGUFWriter(path, "llama")
    w.add_context_length(128)
    w.add_embedding_length(64)
    w.add_block_count(1)
    w.add_head_count(4)
    w.add_head_count_kv(2)
    w.add_rope_freq_base(500000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_uint8("test.u8", 200)
    w.add_int8("test.i8", -100)
    w.add_uint16("test.u16", 60000)
    w.add_int16("test.i16", -30000)
    w.add_uint32("test.u32", 4000000000)
    w.add_int32("test.i32", -2000000000)
    w.add_float32("test.f32", 1.5)
    w.add_bool("test.bool_true", True)
    w.add_bool("test.bool_false", False)
    w.add_string("test.string", "h\u00e9llo w\u00f6rld \u2713")
    w.add_uint64("test.u64", 2**40 + 3)
    w.add_int64("test.i64", -(2**40))
    w.add_float64("test.f64", 3.141592653589793)
    w.add_array("test.array_i32", [1, -2, 3])
    w.add_array("test.array_f32", [0.5, 0.25, -1.0])
    w.add_array("test.array_str", ["a", "bc", "d\u00e9f"])
    w.add_array("test.array_bool", [True, False, True])
    w.add_key_value("test.array_u8", [1, 2, 255], V.ARRAY, sub_type=V.UINT8)
    w.add_key_value("test.array_i64", [-(2**40), 7], V.ARRAY, sub_type=V.INT64)
    w.add_array("test.array_nested", [[1, 2], [3]])
    w.add_token_list(["<unk>", "<s>", "</s>", "hello", "\u2581world"])

    expected = {}
    specs = [("t.f32", T.F32, 4, 64), ("t.f16", T.F16, 4, 64), ("t.bf16", T.BF16, 4, 64),
             ("t.q8_0", T.Q8_0, 4, 64), ("t.q4_0", T.Q4_0, 4, 64), ("t.q4_1", T.Q4_1, 4, 64),
             ("t.q4_k", T.Q4_K, 3, 512), ("t.q5_k", T.Q5_K, 3, 512), ("t.q6_k", T.Q6_K, 3, 512)]
    for name, qtype, rows, cols in specs:
        src = rng.standard_normal((rows, cols)).astype(np.float32)
        if qtype == T.F32:
            w.add_tensor(name, src)
            expected[name] = src
        elif qtype == T.F16:
            w.add_tensor(name, src.astype(np.float16))
            expected[name] = src.astype(np.float16).astype(np.float32)
        elif qtype in (T.Q4_K, T.Q5_K, T.Q6_K):
            packed = k_quant_blocks(qtype, rows, cols)
            w.add_tensor(name, packed, raw_dtype=qtype)
            expected[name] = gguf.quants.dequantize(packed, qtype)
        else:
            packed = gguf.quants.quantize(src, qtype)
            w.add_tensor(name, packed, raw_dtype=qtype)
            expected[name] = gguf.quants.dequantize(packed, qtype)
            if qtype in (T.Q8_0, T.Q4_0):
                w.add_tensor("src." + name[2:], src)
        assert expected[name].shape == (rows, cols), (name, expected[name].shape)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    for name, values in expected.items():
        values.astype("<f4").tofile(os.path.join(OUT, f"quant_v3.{name}.f32"))


def write_align64(path):
    w = gguf.GGUFWriter(path, "llama")
    w.add_custom_alignment(64)
    w.add_tensor("a", rng.standard_normal(5).astype(np.float32))
    w.add_tensor("b", rng.standard_normal((2, 3)).astype(np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def write_safetensors_llama(folder):
    os.makedirs(folder, exist_ok=True)
    vocab, d, heads, kv_heads, ffn = 32, 16, 4, 2, 24
    hd = d // heads
    def r(*shape, dtype=np.float32):
        return rng.standard_normal(shape).astype(dtype)
    tensors = {
        "model.embed_tokens.weight": r(vocab, d),
        "model.layers.0.self_attn.q_proj.weight": r(heads * hd, d),
        "model.layers.0.self_attn.k_proj.weight": r(kv_heads * hd, d, dtype=np.float16),
        "model.layers.0.self_attn.v_proj.weight": r(kv_heads * hd, d),
        "model.layers.0.self_attn.o_proj.weight": r(d, heads * hd),
        "model.layers.0.mlp.gate_proj.weight": r(ffn, d),
        "model.layers.0.mlp.up_proj.weight": r(ffn, d, dtype=np.float16),
        "model.layers.0.mlp.down_proj.weight": r(d, ffn),
        "model.layers.0.input_layernorm.weight": r(d),
        "model.layers.0.post_attention_layernorm.weight": r(d),
        "model.norm.weight": r(d),
        "lm_head.weight": r(vocab, d),
    }
    save_file(tensors, os.path.join(folder, "model.safetensors"), metadata={"format": "np"})
    config = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": d,
        "intermediate_size": ffn, "num_attention_heads": heads, "num_key_value_heads": kv_heads,
        "num_hidden_layers": 1, "vocab_size": vocab, "max_position_embeddings": 256,
        "rope_theta": 10000.0, "rms_norm_eps": 1e-6, "bos_token_id": 1, "eos_token_id": 2,
        "tie_word_embeddings": False, "torch_dtype": "float32",
    }
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(config, f, indent=2)


def main():
    os.makedirs(OUT, exist_ok=True)
    v3 = os.path.join(OUT, "quant_v3.gguf")
    write_quant_file(v3)
    data = bytearray(open(v3, "rb").read())
    assert data[:4] == b"GGUF" and int.from_bytes(data[4:8], "little") == 3
    data[4:8] = (2).to_bytes(4, "little")
    open(os.path.join(OUT, "quant_v2.gguf"), "wb").write(bytes(data))
    write_align64(os.path.join(OUT, "align64.gguf"))
    write_safetensors_llama(os.path.join(OUT, "st_llama"))
    total = sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(OUT) for f in fs)
    print(f"wrote fixtures to {OUT} ({total} bytes)", file=sys.stderr)


if __name__ == "__main__":
    main()
