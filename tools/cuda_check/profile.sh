#!/bin/bash
# Where the time of chat.tl's decode and prefill goes on the GPU: TL_CUDA_PROFILE=1 tables of
# device time per kernel (events around every launch), for decode (short prompt, many tokens)
# and prefill (512 tokens, one generated), plus nsys's CUDA API summary where nsys exists.
# Same target-cudarun/ layout as device_session.sh; writes models with make_tinyllama_shaped.py.
set -u
R=target-cudarun
TL=$R/tl
export XDG_CACHE_HOME="$PWD/$R/cache" PYTHONPATH="$PWD/$R/py:${PYTHONPATH:-}"
M=/tmp/tl-models
TYPES=${TYPES:-"f16 q4_0"}
[ -f $M/tinyllama-shaped-f16.gguf ] || python3 tools/bench/make_tinyllama_shaped.py $M --vocab-from $R/stories260k.gguf 2>&1 | tail -1
for v in $TYPES; do
  f=$M/tinyllama-shaped-$v.gguf
  echo "== $v decode (prompt 8, 128 tokens)"
  TL_CUDA_PROFILE=1 $TL run examples/llama/bench.tl --device cuda --stats -- $f --prompt 8 --gen 128 2>&1 | grep -vE "^(statements|function|builtin|tensor|host|device|kernel|tokens)" | head -30
  echo "== $v prefill (512 tokens)"
  TL_CUDA_PROFILE=1 $TL run examples/llama/bench.tl --device cuda -- $f --prompt 512 --gen 1 2>&1 | head -24
done
NSYS=$(command -v nsys || ls /usr/local/cuda*/bin/nsys /opt/nvidia/nsight-systems/*/bin/nsys 2>/dev/null | head -1)
if [ -n "$NSYS" ]; then
  echo "== nsys ($NSYS): decode f16 without per-launch events"
  $NSYS profile -t cuda -o /tmp/tlprof -f true $TL run examples/llama/bench.tl --device cuda -- $M/tinyllama-shaped-f16.gguf --prompt 8 --gen 128 > /dev/null 2>&1
  $NSYS stats -r cuda_api_sum,cuda_gpu_kern_sum /tmp/tlprof.nsys-rep 2>&1 | head -60
else
  echo "no nsys on this machine"
fi
