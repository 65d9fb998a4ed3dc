#!/usr/bin/env python3
"""A hand-written PyTorch Llama decoder over a GGUF file: the reference that `tl` is checked
and timed against on the device (same weights, same GPU).

The weights are read with the `gguf` package and expanded to f32 (quantized files give their
dequantized values: PyTorch has no kernels for GGUF blocks); the check computes in f32, the
benchmark in f16. GGUF stores Q and K rows in the
order of llama.cpp's RoPE, which rotates adjacent pairs (2i, 2i+1); this decoder does the same,
so it reads the file as `tl`'s chat.tl does, without the Hugging Face permutation.

    # logits at two positions, in f32 arithmetic, compared with tl's (tools/cuda_check/logits.tl)
    python torch_llama.py MODEL.gguf --check TL_LOGITS.txt
    # prefill ms and decode tok/s, eager and with the decode step captured in one CUDA graph
    python torch_llama.py MODEL.gguf --bench --prompt 512 --gen 128

Prompts are the fixed pseudo-random ids of examples/llama/bench.tl and logits.tl.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import torch
import gguf
from gguf import quants

# The ids logits.tl feeds: a 12-token prompt in one pass, then 4 tokens one at a time.
CHECK_IDS = [1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 288, 401, 311]
CHECK_PROMPT = 12


def bench_ids(n: int, vocab: int) -> list[int]:
    return [(i * 7919 + 13) % vocab for i in range(n)]


def read_model(path: str, device: str):
    r = gguf.GGUFReader(path)

    def meta(key):
        f = r.fields[key]
        v = f.parts[f.data[0]]
        return v.tolist()[0] if len(v) == 1 else v.tolist()

    arch = bytes(r.fields["general.architecture"].parts[-1]).decode()
    hp = {
        "layers": meta(f"{arch}.block_count"),
        "d": meta(f"{arch}.embedding_length"),
        "heads": meta(f"{arch}.attention.head_count"),
        "kv_heads": meta(f"{arch}.attention.head_count_kv"),
        "eps": meta(f"{arch}.attention.layer_norm_rms_epsilon"),
        "theta": meta(f"{arch}.rope.freq_base") if f"{arch}.rope.freq_base" in r.fields else 10000.0,
    }
    weights = {}
    for t in r.tensors:
        shape = [int(x) for x in reversed(t.shape.tolist())]
        values = quants.dequantize(t.data, t.tensor_type).reshape(shape)
        weights[t.name] = torch.from_numpy(np.array(values, dtype=np.float32)).to(device)
    if "output.weight" not in weights:
        weights["output.weight"] = weights["token_embd.weight"]
    hp["vocab"] = weights["token_embd.weight"].shape[0]
    return hp, weights


class Llama:
    """Decoder with a preallocated KV cache [layers][kv_heads, max_len, head_dim]."""

    def __init__(self, hp, w, dtype, max_len, device):
        self.hp, self.dtype, self.max_len = hp, dtype, max_len
        self.w = {k: v.to(dtype) for k, v in w.items()}
        hd = hp["d"] // hp["heads"]
        self.hd = hd
        inv = 1.0 / (hp["theta"] ** (torch.arange(0, hd, 2, device=device, dtype=torch.float64) / hd))
        ang = torch.arange(max_len, device=device, dtype=torch.float64)[:, None] * inv[None, :]
        self.cos, self.sin = ang.cos().to(torch.float32), ang.sin().to(torch.float32)
        self.k = [torch.zeros(hp["kv_heads"], max_len, hd, device=device, dtype=dtype) for _ in range(hp["layers"])]
        self.v = [torch.zeros_like(c) for c in self.k]

    def norm(self, x, w):
        xf = x.float()
        return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.hp["eps"])).to(self.dtype) * w

    def rope(self, x, pos):  # x [n, h, hd], pos [n] (long, on the device)
        c, s = self.cos[pos][:, None, :], self.sin[pos][:, None, :]
        xf = x.float()
        a, b = xf[..., 0::2], xf[..., 1::2]
        out = torch.stack((a * c - b * s, a * s + b * c), dim=-1).flatten(-2)
        return out.to(self.dtype)

    def forward(self, ids, pos):
        """Logits [n, vocab] of ids (long [n]) at positions pos (long [n], increasing). Keys
        and values go into the cache at pos; each query attends to cache positions <= its own
        (all max_len slots, masked, so that the shapes never change: graph-capturable)."""
        hp, hd = self.hp, self.hd
        h = self.w["token_embd.weight"][ids]
        n = ids.shape[0]
        rep = hp["heads"] // hp["kv_heads"]
        mask = torch.arange(self.max_len, device=ids.device)[None, :] <= pos[:, None]  # [n, L]
        for l in range(hp["layers"]):
            p = f"blk.{l}."
            a = self.norm(h, self.w[p + "attn_norm.weight"])
            q = (a @ self.w[p + "attn_q.weight"].T).view(n, hp["heads"], hd)
            k = (a @ self.w[p + "attn_k.weight"].T).view(n, hp["kv_heads"], hd)
            v = (a @ self.w[p + "attn_v.weight"].T).view(n, hp["kv_heads"], hd)
            q, k = self.rope(q, pos), self.rope(k, pos)
            self.k[l].index_copy_(1, pos, k.transpose(0, 1))
            self.v[l].index_copy_(1, pos, v.transpose(0, 1))
            kk = self.k[l].repeat_interleave(rep, 0)  # [H, L, hd]
            vv = self.v[l].repeat_interleave(rep, 0)
            s = torch.einsum("nhd,hld->hnl", q.float(), kk.float()) / hd ** 0.5
            s = s.masked_fill(~mask[None], float("-inf")).softmax(-1)
            o = torch.einsum("hnl,hld->nhd", s, vv.float()).to(self.dtype).reshape(n, hp["d"])
            h = h + o @ self.w[p + "attn_output.weight"].T
            a = self.norm(h, self.w[p + "ffn_norm.weight"])
            g = torch.nn.functional.silu(a @ self.w[p + "ffn_gate.weight"].T)
            h = h + (g * (a @ self.w[p + "ffn_up.weight"].T)) @ self.w[p + "ffn_down.weight"].T
        h = self.norm(h, self.w["output_norm.weight"])
        return (h @ self.w["output.weight"].T).float()


def read_tl_logits(path):
    rows = {}
    for line in open(path):
        parts = line.split()
        if parts and parts[0] == "logits":
            rows.setdefault(int(parts[1]), []).append([float(x) for x in parts[2:]])
    return {p: np.concatenate([np.array(c) for c in chunks]) for p, chunks in rows.items()}


def check(hp, w, tl_path, device):
    ids = torch.tensor(CHECK_IDS, device=device)
    m = Llama(hp, w, torch.float32, 64, device)
    with torch.no_grad():
        ref = m.forward(ids, torch.arange(len(CHECK_IDS), device=device)).cpu().numpy().astype(np.float64)
    got = read_tl_logits(tl_path)
    report = {}
    for pos, values in sorted(got.items()):
        want = ref[pos]
        rel = float(np.linalg.norm(values - want) / np.linalg.norm(want))
        top_ref, top_got = np.argsort(-want)[:5].tolist(), np.argsort(-values)[:5].tolist()
        report[pos] = {"rel_err": rel, "max_abs": float(np.abs(values - want).max()),
                       "argmax_same": top_ref[0] == top_got[0], "top5_ref": top_ref, "top5_tl": top_got}
    return report


def timed(fn, reps=1):
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(reps):
        out = fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - t) / reps, out


def bench(hp, w, n_prompt, n_gen, device):
    ids = torch.tensor(bench_ids(n_prompt, hp["vocab"]), device=device)
    max_len = n_prompt + n_gen + 8
    m = Llama(hp, w, torch.float16, max_len, device)
    out = {}
    with torch.no_grad():
        m.forward(ids[:8], torch.arange(8, device=device))  # warm-up (cuBLAS handles, caches)
        t, logits = timed(lambda: m.forward(ids, torch.arange(n_prompt, device=device)), reps=3)
        out["prefill_ms"] = t * 1e3
        # Eager decode: one sync per token (argmax read back), as a chat loop does.
        nxt = int(logits[-1].argmax())
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for i in range(n_gen):
            pos = torch.tensor([n_prompt + i], device=device)
            lg = m.forward(torch.tensor([nxt], device=device), pos)
            nxt = int(lg[0].argmax())
        out["decode_eager_tok_s"] = n_gen / (time.perf_counter() - t0)
        # The decode step captured once in a CUDA graph, replayed with the token and position
        # written into its static input tensors.
        tok = torch.zeros(1, dtype=torch.long, device=device)
        pos = torch.zeros(1, dtype=torch.long, device=device)
        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):
            for _ in range(2):
                m.forward(tok, pos)
        torch.cuda.current_stream().wait_stream(s)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            static_logits = m.forward(tok, pos)
        nxt = int(logits[-1].argmax())
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for i in range(n_gen):
            tok.fill_(nxt)
            pos.fill_(n_prompt + i)
            graph.replay()
            nxt = int(static_logits[0].argmax())
        out["decode_graph_tok_s"] = n_gen / (time.perf_counter() - t0)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("--check", metavar="TL_LOGITS")
    ap.add_argument("--bench", action="store_true")
    ap.add_argument("--prompt", type=int, default=512)
    ap.add_argument("--gen", type=int, default=128)
    a = ap.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    hp, w = read_model(a.model, device)
    result = {"model": a.model, "torch": torch.__version__, "device": torch.cuda.get_device_name() if device == "cuda" else "cpu"}
    if a.check:
        result["check"] = check(hp, w, a.check, device)
    if a.bench:
        result["bench"] = bench(hp, w, a.prompt, a.gen, device)
    json.dump(result, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
