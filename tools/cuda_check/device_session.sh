#!/bin/bash
# One device call that checks the CUDA backend and times it beside PyTorch (issue 3):
#   1. the tl-cuda test binaries (ops incl. quantized kernels, runtime, kernel compile);
#   2. chat.tl on the tiny Llama fixture, cpu vs cuda, and greedy tokens vs transformers;
#   3. TinyLlama-shaped GGUFs (F16, Q8_0, Q4_0) written here by make_tinyllama_shaped.py;
#   4. tl's logits on cuda vs tools/bench/torch_llama.py (f32 arithmetic on the same weights);
#   5. prefill and decode timings of tl (`tl bench llama --json` on the same files) and of
#      PyTorch (eager and CUDA graph), then one table;
#   6. (replay) f16 decode at several launch-group sizes (0: direct launches; N: groups of N
#      launches, a repeated group replayed as a CUDA graph);
#   7. (products) prefill's matrix products timed alone (tools/cuda_check/prefill_products.tl).
# Run from the repository root with target-cudarun/ holding: tl (release build with
# --features cuda), ops, runtime, kernels_compile (tl-cuda test binaries), stories260k.gguf and
# py/ (the gguf Python package). Set STEPS to a subset of
# "tests tiny examples models logits bench replay products" (replay needs models).
set -u
R=target-cudarun
TL=$R/tl
export XDG_CACHE_HOME="$PWD/$R/cache" PYTHONPATH="$PWD/$R/py:${PYTHONPATH:-}"
STEPS=${STEPS:-"tests tiny examples models logits bench"}
PROMPT=${PROMPT:-512}
GEN=${GEN:-128}
M=/tmp/tl-models
has() { [[ " $STEPS " == *" $1 "* ]]; }
stamp() { echo "== $1 ($(date +%T))"; }
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader

if has tests; then
  for t in kernels_compile ops runtime; do
    stamp "tl-cuda test $t"; timeout 300 $R/$t 2>&1 | grep -E "^test |test result|panicked|error" | head -40
  done
fi

if has tiny; then
  stamp "tiny llama: chat.tl on cpu and cuda"
  for v in f32 f16 q8_0 q4_0; do
    f=tests/fixtures/tiny_llama/tiny-$v.gguf
    $TL run tools/cuda_check/llama_check.tl -- $f > /tmp/cpu_$v.txt 2>&1
    $TL run tools/cuda_check/llama_check.tl --device cuda -- $f > /tmp/cuda_$v.txt 2>&1
    python3 - "$v" /tmp/cpu_$v.txt /tmp/cuda_$v.txt <<'PY'
import json, sys, ast
v, cpu, cuda = sys.argv[1:]
ref = json.load(open("tests/fixtures/tiny_llama/reference.json"))["variants"][v]["greedy"]
def greedy(p):
    lines = [l for l in open(p) if l.startswith("greedy")]
    return ast.literal_eval(lines[0].split(" ", 1)[1].strip()) if lines else open(p).read()[-300:]
g_cpu, g_cuda = greedy(cpu), greedy(cuda)
same = sum(a == b for a, b in zip(g_cuda, ref)) if isinstance(g_cuda, list) else 0
print(f"  {v}: cuda greedy vs transformers: {same}/32 tokens equal; cuda vs cpu: "
      f"{'identical' if open(cpu).read() == open(cuda).read() else 'differ'}")
if not isinstance(g_cuda, list): print("  cuda output:", g_cuda)
PY
  done
fi

if has examples; then
  stamp "examples and logic programs: cpu vs cuda"
  for f in examples/*.tl examples/logic/*.tl; do
    [ "$(basename $f)" = errors.tl ] && continue
    $TL run "$f" > /tmp/ex_cpu.txt 2>&1
    $TL run "$f" --device cuda > /tmp/ex_cuda.txt 2>&1
    if cmp -s /tmp/ex_cpu.txt /tmp/ex_cuda.txt; then echo "  $f: identical"; else echo "  $f: DIFFERS; cuda printed:"; tail -4 /tmp/ex_cuda.txt; fi
  done
  stamp "learning programs: cpu vs cuda (--quiet)"
  for f in examples/learn/*.tl tests/programs/learn_*.tl; do
    $TL run "$f" --quiet > /tmp/ex_cpu.txt 2>&1
    $TL run "$f" --quiet --device cuda > /tmp/ex_cuda.txt 2>&1
    if cmp -s /tmp/ex_cpu.txt /tmp/ex_cuda.txt; then echo "  $f: identical"; else echo "  $f: DIFFERS"; diff /tmp/ex_cpu.txt /tmp/ex_cuda.txt | head -6; fi
  done
  stamp "MLP training epoch time: cpu vs cuda"
  for cfg in "" "--points 4096 --hidden 256 --epochs 100"; do
    $TL run examples/learn/bench/mlp.tl --quiet -- $cfg 2>&1 | tail -1
    $TL run examples/learn/bench/mlp.tl --quiet --device cuda -- $cfg 2>&1 | tail -1
    python3 tools/bench/learn_mlp_torch.py $cfg 2>&1 | tail -1
    python3 tools/bench/learn_mlp_torch.py $cfg --device cuda 2>&1 | tail -1
  done
  for f in tests/programs/logic_*.tl; do
    out=${f%.tl}.out; [ -f "$out" ] || continue
    flags=$(sed -n 's|^// tl-flags: ||p' "$f" | head -1)
    [[ "$flags" == *--logic-tensors* ]] || flags="$flags --logic-tensors dense"
    if $TL run "$f" $flags --device cuda 2>&1 | cmp -s - "$out"; then echo "  $f dense on cuda: matches .out"; else echo "  $f dense on cuda: DIFFERS"; fi
  done
  stamp "dense transitive closure (2000 nodes): cuda tensors vs cpu tensors vs tuples"
  for mode in "--logic-tensors dense --device cuda" "--logic-tensors dense" "--logic-tensors sparse"; do
    /usr/bin/time -f "  $mode: %e s wall, %M KB peak" $TL run tools/bench/logic_dense.tl $mode > /tmp/logic_out.txt 2>/tmp/logic_time.txt; tail -1 /tmp/logic_time.txt; tail -2 /tmp/logic_out.txt | head -1
  done
fi

if has models; then
  stamp "writing TinyLlama-shaped GGUFs"
  python3 tools/bench/make_tinyllama_shaped.py $M --vocab-from $R/stories260k.gguf 2>&1 | tail -3
  ls -la $M
fi

if has logits; then
  for v in f16 q8_0 q4_0; do
    stamp "logits $v: tl on cuda vs PyTorch (f32 arithmetic, same weights)"
    $TL run tools/cuda_check/logits.tl --device cuda -- $M/tinyllama-shaped-$v.gguf > /tmp/tl_logits_$v.txt 2>&1 || tail -5 /tmp/tl_logits_$v.txt
    python3 tools/bench/torch_llama.py $M/tinyllama-shaped-$v.gguf --check /tmp/tl_logits_$v.txt > /tmp/check_$v.json 2>/tmp/check_$v.err || tail -5 /tmp/check_$v.err
    python3 -c "
import json; r = json.load(open('/tmp/check_$v.json'))['check']
for p, c in r.items(): print(f'  position {p}: relative error {c[\"rel_err\"]:.2e}, max abs {c[\"max_abs\"]:.3f}, same argmax {c[\"argmax_same\"]}, top5 tl {c[\"top5_tl\"]} torch {c[\"top5_ref\"]}')
"
  done
fi

if has bench; then
  for v in f16 q8_0 q4_0; do
    stamp "tl bench llama $v"
    $TL bench llama --device cuda --model $M/tinyllama-shaped-$v.gguf --prompt $PROMPT --gen $GEN --json > /tmp/tl_bench_$v.json 2>/tmp/tl_bench_$v.err || tail -5 /tmp/tl_bench_$v.err
    cat /tmp/tl_bench_$v.json
  done
  stamp "tl bench f16 with every kernel launched directly (--compute-per-buffer 0)"
  $TL run examples/llama/bench.tl --device cuda --stats --compute-per-buffer 0 -- $M/tinyllama-shaped-f16.gguf --prompt $PROMPT --gen $GEN 2>&1 | grep -E "prefill|decode|per generated token"
  for g in 1024 0; do
    stamp "host time in driver calls, f16 decode, --compute-per-buffer $g (TL_CUDA_PROFILE=host)"
    TL_CUDA_PROFILE=host $TL run examples/llama/bench.tl --device cuda --compute-per-buffer $g -- $M/tinyllama-shaped-f16.gguf --prompt 8 --gen $GEN 2>&1 | grep -E "decode:|calls"
  done
  stamp "device time per kernel, f16 decode (TL_CUDA_PROFILE=1: launches timed one by one)"
  TL_CUDA_PROFILE=1 $TL run examples/llama/bench.tl --device cuda -- $M/tinyllama-shaped-f16.gguf --prompt 8 --gen $GEN 2>&1 | grep -A14 "cuda profile"
  stamp "PyTorch bench f16 (eager and CUDA graph)"
  python3 tools/bench/torch_llama.py $M/tinyllama-shaped-f16.gguf --bench --prompt $PROMPT --gen $GEN > /tmp/torch_bench.json 2>/tmp/torch_bench.err || tail -5 /tmp/torch_bench.err
  stamp "table"
  PROMPT=$PROMPT python3 - <<'PY'
import json, os
PROMPT = os.environ["PROMPT"]
t = json.load(open("/tmp/torch_bench.json"))["bench"]
print(f"| system | dtype | prefill {PROMPT} ms | decode tok/s | syncs/token | launches/token | submissions/token | weight GB/s | % of copy |")
print(f"| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
for v in ["f16", "q8_0", "q4_0"]:
    try:
        b = json.load(open(f"/tmp/tl_bench_{v}.json"))
    except (OSError, ValueError):
        print(f"| tl | {v} | ? | ? | ? | ? | ? | ? | ? |")
        continue
    print(f"| tl | {v} | {b['prefill_ms']:.1f} | {b['decode_tok_s']:.1f} | {b['syncs_per_token']:.1f} | "
          f"{b['launches_per_token']:.1f} | {b['submissions_per_token']:.1f} | {b['achieved_gb_s']:.0f} | {b['percent_of_copy']:.1f} |")
print(f"| PyTorch eager | f16 | {t['prefill_ms']:.1f} | {t['decode_eager_tok_s']:.1f} | 1 | - | - | - | - |")
print(f"| PyTorch CUDA graph | f16 | - | {t['decode_graph_tok_s']:.1f} | 1 | - | 1 | - | - |")
PY
fi

if has replay; then
  for g in ${GROUPS_SWEEP:-0 16 32 64 128 1024}; do
    stamp "f16 decode, --compute-per-buffer $g"
    $TL run examples/llama/bench.tl --device cuda --stats --compute-per-buffer $g -- $M/tinyllama-shaped-f16.gguf --prompt $PROMPT --gen $GEN 2>&1 | grep -E "prefill:|decode:|per generated token"
  done
fi

if has products; then
  stamp "prefill products alone ($PROMPT tokens, f16)"
  $TL run tools/cuda_check/prefill_products.tl --device cuda -- $PROMPT 2>&1 | tail -6
fi
