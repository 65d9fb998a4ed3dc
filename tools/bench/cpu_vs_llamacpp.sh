#!/bin/bash
# CPU decode of tl beside llama.cpp's llama-bench on the same GGUF files, alternating, so that
# both see the same machine (on a shared host the memory bandwidth varies from minute to minute).
#   LLAMA_BENCH=/path/to/llama-bench tools/bench/cpu_vs_llamacpp.sh [FILE.gguf ...]
# Without files it uses the TinyLlama-shaped models `tl bench llama` writes (q4_0, q8_0, f16;
# run `tl bench llama --dtype D` once for each). Building llama-bench from the llama-cpp-python
# sdist (vendor/llama.cpp) takes about 20 minutes on 2 cores:
#   cmake -B build -DGGML_NATIVE=ON -DLLAMA_CURL=OFF -DGGML_OPENMP=OFF -DCMAKE_BUILD_TYPE=Release
#   cmake --build build --target llama-bench -j2
set -u
TL=${TL:-target/release/tl}
LB=${LLAMA_BENCH:?set LLAMA_BENCH to the path of llama-bench}
GEN=${GEN:-64}
ROUNDS=${ROUNDS:-2}
files=("$@")
if [ ${#files[@]} -eq 0 ]; then
  for d in q4_0 q8_0 f16; do files+=("$HOME/.cache/tensorlogic/bench/llama-tinyllama-$d-seed1100-v1.gguf"); done
fi
echo "| file | round | tl decode tok/s | llama.cpp decode tok/s (2 threads) |"
echo "| --- | --- | --- | --- |"
for r in $(seq 1 "$ROUNDS"); do
  for f in "${files[@]}"; do
    t=$($TL bench llama --model "$f" --prompt 8 --gen "$GEN" 2>&1 | sed -n 's/.*decode \([0-9.]*\) tok\/s.*/\1/p' | head -1)
    l=$($LB -m "$f" -p 0 -n "$GEN" -t 2 -r 1 -o csv 2>/dev/null | tail -1 | tr -d '"' | awk -F, '{print $(NF-1)}')
    echo "| $(basename "$f") | $r | $t | $l |"
  done
done
