// Mat-vec kernel variants for one decode step of a TinyLlama-shaped model (22 layers of
// QKV 2560x2048, O 2048x2048, gate+up 11264x2048, down 2048x5632, then lm_head 32000x2048),
// each layer with its own weights (2 GB in f16, so nothing stays in L2). Every variant is
// checked against a double-precision reference on random data, then timed as a whole step,
// launched directly and as one CUDA graph. Build and run on the device:
//   nvcc -O3 -arch=sm_90 -o /tmp/mv_bench tools/cuda_check/mv_bench.cu && /tmp/mv_bench
#include <cuda_fp16.h>
#include <cstdio>
#include <cstdlib>
#include <cmath>
#include <vector>
#include <cstdint>

#define CK(x) do { cudaError_t e = (x); if (e != cudaSuccess) { printf("%s:%d %s\n", __FILE__, __LINE__, cudaGetErrorString(e)); exit(1); } } while (0)

__device__ __forceinline__ float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
__device__ __forceinline__ uint4 ld_stream(const uint4* p) {
    uint4 r;
    asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];" : "=r"(r.x), "=r"(r.y), "=r"(r.z), "=r"(r.w) : "l"(p));
    return r;
}
__device__ __forceinline__ float dot8(uint4 q, const float* xs) {
    const __half2* h = (const __half2*)&q;
    float4 a = *(const float4*)xs, b = *(const float4*)(xs + 4);
    float2 f0 = __half22float2(h[0]), f1 = __half22float2(h[1]), f2 = __half22float2(h[2]), f3 = __half22float2(h[3]);
    return f0.x * a.x + f0.y * a.y + f1.x * a.z + f1.y * a.w + f2.x * b.x + f2.y * b.y + f3.x * b.z + f3.y * b.w;
}

// A: the current kernel: a warp per row, x read from global memory, `unroll 4`.
__global__ void mv_a(float* y, const float* x, const __half* w, int n, int k) {
    int lane = threadIdx.x & 31;
    long row = (long)blockIdx.x * 8 + (threadIdx.x >> 5);
    if (row >= n) return;
    const uint4* wr = (const uint4*)(w + row * k);
    float acc = 0;
#pragma unroll 4
    for (int c = lane; c < k / 8; c += 32) acc += dot8(wr[c], x + c * 8);
    acc = warp_sum(acc);
    if (lane == 0) y[row] = acc;
}

// B<U, WARPS>: x staged in shared memory (optionally RMS-normalised with g), a warp per row,
// U 16-byte streaming loads in flight per lane before any arithmetic.
template <int U, int WARPS, bool NORM>
__global__ void mv_b(float* y, const float* x, const __half* w, int n, int k, const float* g) {
    extern __shared__ float xs[];
    __shared__ float red[WARPS];
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    float ss = 0;
    for (int i = threadIdx.x; i < k / 4; i += WARPS * 32) {
        float4 v = ((const float4*)x)[i];
        ((float4*)xs)[i] = v;
        if (NORM) ss += v.x * v.x + v.y * v.y + v.z * v.z + v.w * v.w;
    }
    if (NORM) {
        ss = warp_sum(ss);
        if (lane == 0) red[warp] = ss;
        __syncthreads();
        float t = 0;
        for (int i = 0; i < WARPS; ++i) t += red[i];
        float r = rsqrtf(t / k + 1e-5f);
        for (int i = threadIdx.x; i < k; i += WARPS * 32) xs[i] *= r * g[i];
    }
    __syncthreads();
    long row = (long)blockIdx.x * WARPS + warp;
    if (row >= n) return;
    const uint4* wr = (const uint4*)(w + row * k);
    int chunks = k / 8;
    float acc = 0;
    for (int base = 0; base < chunks; base += 32 * U) {
        uint4 q[U];
#pragma unroll
        for (int u = 0; u < U; ++u) {
            int c = base + u * 32 + lane;
            if (c < chunks) q[u] = ld_stream(wr + c); else q[u] = make_uint4(0, 0, 0, 0);
        }
#pragma unroll
        for (int u = 0; u < U; ++u) {
            int c = base + u * 32 + lane;
            if (c < chunks) acc += dot8(q[u], xs + c * 8);
        }
    }
    acc = warp_sum(acc);
    if (lane == 0) y[row] = acc;
}

// C<U>: a warp computes two rows (their loads interleaved): twice the bytes in flight.
template <int U>
__global__ void mv_c(float* y, const float* x, const __half* w, int n, int k) {
    extern __shared__ float xs[];
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    for (int i = threadIdx.x; i < k / 4; i += 256) ((float4*)xs)[i] = ((const float4*)x)[i];
    __syncthreads();
    long row = ((long)blockIdx.x * 8 + warp) * 2;
    if (row >= n) return;
    const uint4* w0 = (const uint4*)(w + row * k);
    const uint4* w1 = (const uint4*)(w + (row + 1) * k);
    int chunks = k / 8;
    float a0 = 0, a1 = 0;
    for (int base = 0; base < chunks; base += 32 * U) {
        uint4 q0[U], q1[U];
#pragma unroll
        for (int u = 0; u < U; ++u) {
            int c = base + u * 32 + lane;
            if (c < chunks) { q0[u] = ld_stream(w0 + c); q1[u] = ld_stream(w1 + c); }
            else { q0[u] = make_uint4(0, 0, 0, 0); q1[u] = q0[u]; }
        }
#pragma unroll
        for (int u = 0; u < U; ++u) {
            int c = base + u * 32 + lane;
            if (c < chunks) { a0 += dot8(q0[u], xs + c * 8); a1 += dot8(q1[u], xs + c * 8); }
        }
    }
    a0 = warp_sum(a0); a1 = warp_sum(a1);
    if (lane == 0) { y[row] = a0; y[row + 1] = a1; }
}

// Q8_0 (34-byte blocks of an f16 scale and 32 int8): the current way (a lane per block, byte
// loads) and a staged way (the warp copies 32 blocks = 1088 bytes with 16-byte loads into
// shared memory, then each lane decodes one block from there).
__device__ __forceinline__ float f16_at(const unsigned char* b) {
    unsigned short u = (unsigned short)(b[0] | (b[1] << 8));
    return __half2float(*(const __half*)&u);
}
__global__ void mvq8_a(float* y, const float* x, const unsigned char* w, int n, int k) {
    int lane = threadIdx.x & 31;
    long row = (long)blockIdx.x * 8 + (threadIdx.x >> 5);
    if (row >= n) return;
    int groups = k / 32;
    const unsigned char* r = w + row * (long)groups * 34;
    float acc = 0;
    for (int g = lane; g < groups; g += 32) {
        const unsigned char* b = r + g * 34;
        float d = f16_at(b), s = 0;
#pragma unroll
        for (int j = 0; j < 32; ++j) s += (float)(signed char)b[2 + j] * x[g * 32 + j];
        acc += d * s;
    }
    acc = warp_sum(acc);
    if (lane == 0) y[row] = acc;
}
template <int WARPS>
__global__ void mvq8_b(float* y, const float* x, const unsigned char* w, int n, int k) {
    extern __shared__ float xs[];
    __shared__ uint4 stage[WARPS][68 + 1];
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    for (int i = threadIdx.x; i < k / 4; i += WARPS * 32) ((float4*)xs)[i] = ((const float4*)x)[i];
    __syncthreads();
    long row = (long)blockIdx.x * WARPS + warp;
    if (row >= n) return;
    int groups = k / 32;
    const uint4* r = (const uint4*)(w + row * (long)groups * 34);
    float acc = 0;
    for (int g0 = 0; g0 < groups; g0 += 32) {
        // 32 blocks are 68 uint4 (a partial last chunk copies only what exists).
        int words = (min(32, groups - g0) * 34 + 15) / 16;
        const uint4* src = r + (g0 * 34) / 16;
        uint4 t0 = lane < words ? ld_stream(src + lane) : make_uint4(0, 0, 0, 0);
        uint4 t1 = lane + 32 < words ? ld_stream(src + lane + 32) : make_uint4(0, 0, 0, 0);
        uint4 t2 = lane + 64 < words ? ld_stream(src + lane + 64) : make_uint4(0, 0, 0, 0);
        stage[warp][lane] = t0; stage[warp][lane + 32] = t1;
        if (lane + 64 < 68) stage[warp][lane + 64] = t2;
        __syncwarp();
        int g = g0 + lane;
        if (g < groups) {
            const unsigned char* b = (const unsigned char*)stage[warp] + lane * 34;
            float d = f16_at(b), s = 0;
            const float* xg = xs + g * 32;
#pragma unroll
            for (int j = 0; j < 32; j += 2) {
                unsigned short u = *(const unsigned short*)(b + 2 + j);
                s += (float)(signed char)(u & 0xff) * xg[j] + (float)(signed char)(u >> 8) * xg[j + 1];
            }
            acc += d * s;
        }
        __syncwarp();
    }
    acc = warp_sum(acc);
    if (lane == 0) y[row] = acc;
}

struct Shape { int n, k; };

int main() {
    const int layers = 22;
    std::vector<Shape> step;
    for (int l = 0; l < layers; ++l) {
        step.push_back({2560, 2048});
        step.push_back({2048, 2048});
        step.push_back({11264, 2048});
        step.push_back({2048, 5632});
    }
    step.push_back({32000, 2048});
    size_t total = 0;
    for (auto s : step) total += (size_t)s.n * s.k;
    printf("step: %zu matrices, %.3f GB of f16 weights\n", step.size(), total * 2 / 1e9);
    // f16 weights: one buffer, random in [-1, 1).
    std::vector<__half> hw(total);
    uint64_t st = 12345;
    auto rnd = [&]() { st = st * 6364136223846793005ull + 1442695040888963407ull; return (float)((st >> 40) & 0xffffff) / 8388608.0f - 1.0f; };
    for (size_t i = 0; i < total; ++i) hw[i] = __float2half(rnd());
    __half* dw; CK(cudaMalloc(&dw, total * 2)); CK(cudaMemcpy(dw, hw.data(), total * 2, cudaMemcpyHostToDevice));
    // Q8_0 copy of the same number of values.
    size_t qbytes = total / 32 * 34;
    std::vector<unsigned char> hq(qbytes);
    for (size_t b = 0; b < total / 32; ++b) {
        __half d = __float2half(0.01f * (1 + (b % 7)));
        memcpy(&hq[b * 34], &d, 2);
        for (int j = 0; j < 32; ++j) hq[b * 34 + 2 + j] = (unsigned char)(signed char)(int)(rnd() * 127);
    }
    unsigned char* dq; CK(cudaMalloc(&dq, qbytes)); CK(cudaMemcpy(dq, hq.data(), qbytes, cudaMemcpyHostToDevice));
    std::vector<float> hx(5632), hg(5632);
    for (auto& v : hx) v = rnd();
    for (auto& v : hg) v = 1 + 0.5f * rnd();
    float *dx, *dg, *dy; CK(cudaMalloc(&dx, 5632 * 4)); CK(cudaMalloc(&dg, 5632 * 4)); CK(cudaMalloc(&dy, 32000 * 4));
    CK(cudaMemcpy(dx, hx.data(), 5632 * 4, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(dg, hg.data(), 5632 * 4, cudaMemcpyHostToDevice));

    // Reference for the first matrix of each kind (f16 and q8) with and without the norm.
    auto check = [&](const char* name, auto launch, bool q8, bool norm) {
        Shape s = step[3];  // 2048 x 5632 (k not a multiple of 32*U*8 for some U)
        size_t off = (size_t)step[0].n * step[0].k + (size_t)step[1].n * step[1].k + (size_t)step[2].n * step[2].k;
        launch(s, off);
        CK(cudaDeviceSynchronize());
        std::vector<float> out(s.n);
        CK(cudaMemcpy(out.data(), dy, s.n * 4, cudaMemcpyDeviceToHost));
        double r = 1;
        if (norm) { double t = 0; for (int i = 0; i < s.k; ++i) t += (double)hx[i] * hx[i]; r = 1 / sqrt(t / s.k + 1e-5); }
        double num = 0, den = 0;
        for (int i = 0; i < s.n; ++i) {
            double a = 0;
            for (int j = 0; j < s.k; ++j) {
                double wv;
                size_t e = off + (size_t)i * s.k + j;
                if (q8) { size_t b = e / 32; __half d; memcpy(&d, &hq[b * 34], 2); wv = (double)__half2float(d) * (signed char)hq[b * 34 + 2 + e % 32]; }
                else wv = __half2float(hw[e]);
                a += wv * hx[j] * (norm ? r * hg[j] : 1);
            }
            num += (out[i] - a) * (out[i] - a); den += a * a;
        }
        printf("  %-28s rel err vs f64 %.2e\n", name, sqrt(num / den));
    };
    auto time_step = [&](const char* name, auto launch, double bytes) {
        cudaStream_t s; CK(cudaStreamCreate(&s));
        cudaEvent_t e0, e1; CK(cudaEventCreate(&e0)); CK(cudaEventCreate(&e1));
        auto run = [&]() { size_t off = 0; for (auto sh : step) { launch(sh, off, s); off += (size_t)sh.n * sh.k; } };
        for (int i = 0; i < 3; ++i) run();
        CK(cudaStreamSynchronize(s));
        const int reps = 20;
        CK(cudaEventRecord(e0, s));
        for (int i = 0; i < reps; ++i) run();
        CK(cudaEventRecord(e1, s)); CK(cudaEventSynchronize(e1));
        float ms; CK(cudaEventElapsedTime(&ms, e0, e1)); ms /= reps;
        cudaGraph_t g; cudaGraphExec_t ge;
        CK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal)); run(); CK(cudaStreamEndCapture(s, &g));
        CK(cudaGraphInstantiate(&ge, g, 0));
        CK(cudaGraphLaunch(ge, s)); CK(cudaStreamSynchronize(s));
        CK(cudaEventRecord(e0, s));
        for (int i = 0; i < reps; ++i) CK(cudaGraphLaunch(ge, s));
        CK(cudaEventRecord(e1, s)); CK(cudaEventSynchronize(e1));
        float gms; CK(cudaEventElapsedTime(&gms, e0, e1)); gms /= reps;
        printf("  %-28s direct %.3f ms (%.0f GB/s)  graph %.3f ms (%.0f GB/s)\n", name, ms, bytes / ms / 1e6, gms, bytes / gms / 1e6);
        CK(cudaGraphExecDestroy(ge)); CK(cudaGraphDestroy(g)); CK(cudaStreamDestroy(s));
    };
    // Copy bandwidth for reference (1 GB device to device).
    {
        void* a; void* b; size_t n = 1ull << 30; CK(cudaMalloc(&a, n)); CK(cudaMalloc(&b, n));
        cudaEvent_t e0, e1; CK(cudaEventCreate(&e0)); CK(cudaEventCreate(&e1));
        CK(cudaMemcpy(b, a, n, cudaMemcpyDeviceToDevice));
        CK(cudaEventRecord(e0)); for (int i = 0; i < 5; ++i) CK(cudaMemcpy(b, a, n, cudaMemcpyDeviceToDevice)); CK(cudaEventRecord(e1)); CK(cudaEventSynchronize(e1));
        float ms; CK(cudaEventElapsedTime(&ms, e0, e1));
        printf("device copy: %.0f GB/s (read + write)\n", 2.0 * n * 5 / ms / 1e6);
        CK(cudaFree(a)); CK(cudaFree(b));
    }
    double fbytes = total * 2.0, qb = (double)qbytes;
#define F16(NAME, ROWS_PER_BLOCK, THREADS, SMEM, ...)                                                         \
    {                                                                                                        \
        auto l = [&](Shape sh, size_t off, cudaStream_t s = 0) {                                             \
            __VA_ARGS__<<<(sh.n + ROWS_PER_BLOCK - 1) / ROWS_PER_BLOCK, THREADS, SMEM, s>>>ARGS;                  \
        };                                                                                                   \
        check(NAME, [&](Shape sh, size_t off) { l(sh, off); }, false, NORMED);                               \
        time_step(NAME, l, fbytes);                                                                          \
    }
#define ARGS (dy, dx, dw + off, sh.n, sh.k)
#define NORMED false
    F16("A current", 8, 256, 0, mv_a);
    F16("C two rows/warp U=4", 16, 256, sh.k * 4, mv_c<4>);
    F16("C two rows/warp U=2", 16, 256, sh.k * 4, mv_c<2>);
#undef ARGS
#define ARGS (dy, dx, dw + off, sh.n, sh.k, dg)
    F16("B U=2 8 warps", 8, 256, sh.k * 4, mv_b<2, 8, false>);
    F16("B U=4 8 warps", 8, 256, sh.k * 4, mv_b<4, 8, false>);
    F16("B U=8 8 warps", 8, 256, sh.k * 4, mv_b<8, 8, false>);
    F16("B U=4 4 warps", 4, 128, sh.k * 4, mv_b<4, 4, false>);
    F16("B U=4 16 warps", 16, 512, sh.k * 4, mv_b<4, 16, false>);
    F16("B U=8 4 warps", 4, 128, sh.k * 4, mv_b<8, 4, false>);
#undef NORMED
#define NORMED true
    F16("B U=4 8 warps + rmsnorm", 8, 256, sh.k * 4, mv_b<4, 8, true>);
    F16("B U=8 4 warps + rmsnorm", 4, 128, sh.k * 4, mv_b<8, 4, true>);
#undef NORMED
#undef ARGS
    {
        auto l = [&](Shape sh, size_t off, cudaStream_t s = 0) { mvq8_a<<<(sh.n + 7) / 8, 256, 0, s>>>(dy, dx, dq + off / 32 * 34, sh.n, sh.k); };
        check("Q8_0 current", [&](Shape sh, size_t off) { l(sh, off); }, true, false);
        time_step("Q8_0 current", l, qb);
    }
    {
        auto l = [&](Shape sh, size_t off, cudaStream_t s = 0) { mvq8_b<8><<<(sh.n + 7) / 8, 256, sh.k * 4, s>>>(dy, dx, dq + off / 32 * 34, sh.n, sh.k); };
        check("Q8_0 staged 8 warps", [&](Shape sh, size_t off) { l(sh, off); }, true, false);
        time_step("Q8_0 staged 8 warps", l, qb);
    }
    {
        auto l = [&](Shape sh, size_t off, cudaStream_t s = 0) { mvq8_b<4><<<(sh.n + 3) / 4, 128, sh.k * 4, s>>>(dy, dx, dq + off / 32 * 34, sh.n, sh.k); };
        check("Q8_0 staged 4 warps", [&](Shape sh, size_t off) { l(sh, off); }, true, false);
        time_step("Q8_0 staged 4 warps", l, qb);
    }
    return 0;
}
