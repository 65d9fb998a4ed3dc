#!/bin/bash
# One device call for the model path on CUDA: chat.tl's forward pass on the tiny Llama fixture
# (F32, F16) on cpu and cuda, compared with each other and with transformers' greedy tokens,
# then stories260K decoding on cuda with per-token counters. Run from the repository root with the
# CUDA build of tl at target-cudarun/tl.
set -u
TL=target-cudarun/tl
export XDG_CACHE_HOME="$PWD/target-cudarun/cache"
nvidia-smi --query-gpu=name --format=csv,noheader
for v in f32 f16; do
  f=tests/fixtures/tiny_llama/tiny-$v.gguf
  $TL run tools/cuda_check/llama_check.tl -- $f > /tmp/cpu_$v.txt 2>&1
  $TL run tools/cuda_check/llama_check.tl --device cuda -- $f > /tmp/cuda_$v.txt 2>&1
  echo "== tiny $v: cpu vs cuda"; diff /tmp/cpu_$v.txt /tmp/cuda_$v.txt && echo "identical"
  python3 - "$v" /tmp/cuda_$v.txt <<'PY'
import json, sys, ast
v, path = sys.argv[1], sys.argv[2]
ref = json.load(open("tests/fixtures/tiny_llama/reference.json"))["variants"][v]["greedy"]
line = [l for l in open(path) if l.startswith("greedy")][0]
got = ast.literal_eval(line.split(" ", 1)[1].strip())
print(f"cuda greedy vs transformers ({v}):", "identical" if got == ref else f"DIFFERS {got} vs {ref}")
PY
done
echo "== stories260K decode on cuda, counters per generated token"
$TL run examples/llama/bench.tl --device cuda --stats -- target-cudarun/stories260k.gguf --prompt 64 --gen 64 2>&1 | tail -14
