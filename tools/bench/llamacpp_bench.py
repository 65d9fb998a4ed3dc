#!/usr/bin/env python3
"""Prefill and decode speed of llama.cpp (through llama-cpp-python) on GGUF files, for the table
that puts `tl`'s CPU numbers beside it (issue 7).

For each file: load it (mmap), warm up once, then `--reps` times: clear the KV cache, evaluate a
fixed 128-token prompt (BOS + 127 seeded random ids) in one batch (prefill), then generate 64
tokens one at a time with greedy argmax (decode). Threads: `--threads` (2 by default) for both
batch and single-token evaluation. Speeds are tokens / wall-clock seconds around llama.cpp's
decode calls, and llama.cpp's own perf counters are printed beside them. The median over the
reps is reported, and the best.

    /work/venv-ref/bin/python tools/bench/llamacpp_bench.py /work/bench-models/tinyllama-shaped-*.gguf
    ... --json out.json   # also write the numbers as JSON
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from importlib.metadata import version

import numpy as np

try:
    import llama_cpp
    from llama_cpp import Llama
except ImportError as e:  # pragma: no cover - a missing install is reported, not raised
    sys.exit(f"llama-cpp-python is not installed ({e}): pip install -r tools/bench/requirements.txt")


def prompt_ids(n: int, vocab: int, seed: int) -> list[int]:
    rng = np.random.default_rng(seed)
    return [1] + [int(t) for t in rng.integers(3, vocab, size=n - 1)]


def last_logits(llm: Llama) -> np.ndarray:
    """The logits row of the last evaluated token, read from the context (llama-cpp-python keeps
    no copy of it unless logits_all is set)."""
    ptr = llama_cpp.llama_get_logits_ith(llm.ctx, -1)
    return np.ctypeslib.as_array(ptr, shape=(llm.n_vocab(),))


def one_run(llm: Llama, prompt: list[int], n_decode: int):
    llm.reset()  # n_tokens = 0: the next eval drops every cached position
    llama_cpp.llama_perf_context_reset(llm.ctx)
    t0 = time.perf_counter()
    llm.eval(prompt)
    t1 = time.perf_counter()
    tokens = []
    for _ in range(n_decode):
        tok = int(np.argmax(last_logits(llm)))
        tokens.append(tok)
        llm.eval([tok])
    t2 = time.perf_counter()
    perf = llama_cpp.llama_perf_context(llm.ctx)
    return {
        "prefill_tok_s": len(prompt) / (t1 - t0),
        "decode_tok_s": n_decode / (t2 - t1),
        "llama_prefill_tok_s": perf.n_p_eval / (perf.t_p_eval_ms / 1e3) if perf.t_p_eval_ms > 0 else None,
        "llama_decode_tok_s": perf.n_eval / (perf.t_eval_ms / 1e3) if perf.t_eval_ms > 0 else None,
        "greedy_first8": tokens[:8],
    }


def bench_file(path: str, args) -> dict:
    llm = Llama(model_path=path, n_ctx=args.prompt + args.decode + 16, n_batch=args.prompt,
                n_ubatch=args.prompt, n_threads=args.threads, n_threads_batch=args.threads,
                verbose=False)
    prompt = prompt_ids(args.prompt, llm.n_vocab(), args.seed)
    llm.reset()
    llm.eval(prompt[:16])  # warm-up: touches the mapped weights once
    llm.eval([int(np.argmax(last_logits(llm)))])
    runs = []
    for rep in range(args.reps):
        runs.append(one_run(llm, prompt, args.decode))
        print(f"    run {rep + 1}: prefill {runs[-1]['prefill_tok_s']:.2f} tok/s, decode {runs[-1]['decode_tok_s']:.2f} tok/s",
              file=sys.stderr, flush=True)
    result = {"file": os.path.basename(path), "bytes": os.path.getsize(path), "prompt_ids": prompt, "runs": runs}
    for key in ("prefill_tok_s", "decode_tok_s", "llama_prefill_tok_s", "llama_decode_tok_s"):
        values = [r[key] for r in runs if r[key] is not None]
        result[key] = statistics.median(values) if values else None
        result[key + "_best"] = max(values) if values else None
    result["greedy_first8"] = runs[0]["greedy_first8"]
    del llm
    return result


def fmt(x):
    return "-" if x is None else f"{x:.2f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("gguf", nargs="+")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--prompt", type=int, default=128, help="prompt length in tokens (BOS included)")
    ap.add_argument("--decode", type=int, default=64, help="tokens generated one at a time")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--json", help="also write the results to this file")
    args = ap.parse_args()
    for p in args.gguf:
        if not os.path.isfile(p):
            sys.exit(f"{p}: no such file")
    info = {
        "llama_cpp_python": version("llama-cpp-python"),
        "system_info": llama_cpp.llama_print_system_info().decode(errors="replace").strip(),
        "cpu": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "load_avg_before": os.getloadavg(),
        "threads": args.threads, "prompt_tokens": args.prompt, "decode_tokens": args.decode, "reps": args.reps,
    }
    print(f"llama-cpp-python {info['llama_cpp_python']}, {args.threads} threads, load average "
          f"{info['load_avg_before'][0]:.1f} on {info['cpus']} CPUs", flush=True)
    print(info["system_info"], flush=True)
    results = []
    for p in args.gguf:
        print(f"... {os.path.basename(p)}", file=sys.stderr, flush=True)
        results.append(bench_file(p, args))
    info["load_avg_after"] = os.getloadavg()
    header = (f"| file | size GB | prefill tok/s ({args.prompt} tok) | decode tok/s ({args.decode} tok) | "
              "llama.cpp perf: prefill / decode tok/s | best of reps: prefill / decode |")
    print()
    print(header)
    print("|" + "---|" * 6)
    for r in results:
        print(f"| {r['file']} | {r['bytes'] / 1e9:.2f} | {fmt(r['prefill_tok_s'])} | {fmt(r['decode_tok_s'])} | "
              f"{fmt(r['llama_prefill_tok_s'])} / {fmt(r['llama_decode_tok_s'])} | "
              f"{fmt(r['prefill_tok_s_best'])} / {fmt(r['decode_tok_s_best'])} |")
    print(f"\n(median of {args.reps} runs; load average before/after: {info['load_avg_before'][0]:.1f} / "
          f"{info['load_avg_after'][0]:.1f})")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"info": info, "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
