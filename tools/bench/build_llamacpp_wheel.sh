#!/usr/bin/env bash
# Builds the llama-cpp-python 0.3.36 wheel for tools/bench/llamacpp_bench.py on a machine with
# more cores (a plain `pip install llama-cpp-python==0.3.36` compiles llama.cpp and takes over an
# hour on 2 busy cores), in a form that also loads on the development machine:
#   - CPU features fixed to the development machine's (AVX2, FMA, F16C, BMI2; no AVX-512)
#     instead of -march=native of the build machine;
#   - OpenMP off (ggml's own thread pool), libstdc++/libgcc linked statically;
#   - no glibc >= 2.38 symbols: headers are kept from redirecting strtol & co. to __isoc23_*,
#     and the static libstdc++'s own __isoc23_* calls get local definitions.
# Usage: build_llamacpp_wheel.sh SOURCE_DIR OUT_DIR
#   SOURCE_DIR: the unpacked llama-cpp-python-0.3.36 sdist
#     (pip download --no-deps --no-binary :all: llama-cpp-python==0.3.36)
#   needs: gcc/g++, cmake >= 3.21, ninja, pip with scikit-build-core installed.
# Then, on the development machine: pip install --no-deps OUT_DIR/llama_cpp_python-*.whl diskcache
set -euo pipefail
SRC=$(cd "$1" && pwd)
OUT=$(mkdir -p "$2" && cd "$2" && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

cat > "$WORK/noc23.h" <<'EOF'
#include <features.h>
#undef __GLIBC_USE_C2X_STRTOL
#define __GLIBC_USE_C2X_STRTOL 0
EOF
cat > "$WORK/isoc23_shim.c" <<'EOF'
#include <stdlib.h>
#define HIDDEN __attribute__((visibility("hidden")))
HIDDEN long __isoc23_strtol(const char *s, char **e, int b) { return strtol(s, e, b); }
HIDDEN unsigned long __isoc23_strtoul(const char *s, char **e, int b) { return strtoul(s, e, b); }
HIDDEN long long __isoc23_strtoll(const char *s, char **e, int b) { return strtoll(s, e, b); }
HIDDEN unsigned long long __isoc23_strtoull(const char *s, char **e, int b) { return strtoull(s, e, b); }
EOF
gcc -std=c11 -O2 -fPIC -c "$WORK/isoc23_shim.c" -o "$WORK/isoc23_shim.o"

export CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}
export CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON \
-DGGML_AVX512=OFF -DGGML_OPENMP=OFF -DLLAVA_BUILD=OFF \
-DCMAKE_C_FLAGS=-include\ $WORK/noc23.h -DCMAKE_CXX_FLAGS=-include\ $WORK/noc23.h \
-DCMAKE_SHARED_LINKER_FLAGS=-static-libstdc++\ -static-libgcc\ $WORK/isoc23_shim.o"
(cd "$SRC" && python3 -m pip wheel --no-build-isolation --no-deps -w "$OUT" .)

# Report the newest glibc symbol version each library needs (2.36 or older loads on Debian 12).
mkdir -p "$WORK/x"
python3 -c "import zipfile, glob, sys; zipfile.ZipFile(glob.glob(sys.argv[1] + '/llama_cpp_python-*.whl')[0]).extractall(sys.argv[2])" "$OUT" "$WORK/x"
for f in "$WORK"/x/llama_cpp/lib/lib*.so; do
    echo "$(basename "$f"): $(objdump -T "$f" | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -1)"
done
