// Kernels that read GGUF blocks (Q4_0, Q4_1, Q8_0, Q4_K, Q5_K, Q6_K) directly, and the
// batch-1 float mat-vec. Appended to kernels.cu (same conventions, same helpers).
//
// A packed row is a run of blocks; every format is decoded 32 values ("a group") at a time:
// a group is one block of the 32-value formats and one eighth of a 256-value K block. Block
// layouts follow GGML (ggml-common.h), byte for byte, as tl-tensor's CPU decoder does.

#define GT_Q4_0 2
#define GT_Q4_1 3
#define GT_Q8_0 8
#define GT_Q4_K 12
#define GT_Q5_K 13
#define GT_Q6_K 14

__device__ __forceinline__ float f16_at(const unsigned char* b) {
    return h2f((unsigned short)(b[0] | (b[1] << 8)));
}

// Scale and min of sub-block j (0..8) of a Q4_K / Q5_K block (6-bit packed in 12 bytes).
__device__ __forceinline__ void k_scale_min(const unsigned char* s, int j, float* sc, float* m) {
    if (j < 4) {
        *sc = (float)(s[j] & 63);
        *m = (float)(s[j + 4] & 63);
    } else {
        *sc = (float)((s[j + 4] & 0x0F) | ((s[j - 4] >> 6) << 4));
        *m = (float)((s[j + 4] >> 4) | ((s[j] >> 6) << 4));
    }
}

// Bytes of one block of `qt` (0 for an unknown format).
__device__ __forceinline__ int q_block_bytes(int qt) {
    switch (qt) {
        case GT_Q4_0: return 18;
        case GT_Q4_1: return 20;
        case GT_Q8_0: return 34;
        case GT_Q4_K: return 144;
        case GT_Q5_K: return 176;
        case GT_Q6_K: return 210;
        default: return 0;
    }
}

// The 32 values of group g of a packed row, as v[0..32]: v = scale * q + offset. Formats with
// one scale for the group return it in sc[0] == sc[1]; Q6_K has one scale per 16 values.
// Written so that every format decodes with byte loads (blocks are only 2-byte aligned).
__device__ __forceinline__ void decode_group(int qt, const unsigned char* row, i64 g, float* v) {
    switch (qt) {
        case GT_Q4_0: {
            const unsigned char* b = row + g * 18;
            float d = f16_at(b);
#pragma unroll
            for (int j = 0; j < 16; ++j) {
                int q = b[2 + j];
                v[j] = d * (float)((q & 0x0F) - 8);
                v[j + 16] = d * (float)((q >> 4) - 8);
            }
            break;
        }
        case GT_Q4_1: {
            const unsigned char* b = row + g * 20;
            float d = f16_at(b), m = f16_at(b + 2);
#pragma unroll
            for (int j = 0; j < 16; ++j) {
                int q = b[4 + j];
                v[j] = d * (float)(q & 0x0F) + m;
                v[j + 16] = d * (float)(q >> 4) + m;
            }
            break;
        }
        case GT_Q8_0: {
            const unsigned char* b = row + g * 34;
            float d = f16_at(b);
#pragma unroll
            for (int j = 0; j < 32; ++j) v[j] = d * (float)(signed char)b[2 + j];
            break;
        }
        case GT_Q4_K:
        case GT_Q5_K: {
            int five = qt == GT_Q5_K;
            int j = (int)(g & 7);
            const unsigned char* b = row + (g >> 3) * (five ? 176 : 144);
            float d = f16_at(b), dmin = f16_at(b + 2), sc, m;
            k_scale_min(b + 4, j, &sc, &m);
            float scale = d * sc, offset = dmin * m;
            const unsigned char* qh = b + 16;
            const unsigned char* qs = b + (five ? 48 : 16) + 32 * (j >> 1);
            int shift = 4 * (j & 1);
#pragma unroll
            for (int l = 0; l < 32; ++l) {
                int q = (qs[l] >> shift) & 0x0F;
                if (five) q |= ((qh[l] >> j) & 1) << 4;
                v[l] = scale * (float)q - offset;
            }
            break;
        }
        case GT_Q6_K: {
            int j = (int)(g & 7);
            const unsigned char* b = row + (g >> 3) * 210;
            int half = j >> 2, quarter = j & 3;
            const unsigned char* lo = b + 64 * half + 32 * (quarter & 1);
            const unsigned char* hi = b + 128 + 32 * half;
            const signed char* sc = (const signed char*)(b + 192);
            float d = f16_at(b + 208);
            int base = 128 * half + 32 * quarter;
            float s0 = d * (float)sc[base / 16], s1 = d * (float)sc[base / 16 + 1];
            int lo_shift = quarter < 2 ? 0 : 4;
#pragma unroll
            for (int l = 0; l < 32; ++l) {
                int q = ((lo[l] >> lo_shift) & 0x0F) | (((hi[l] >> (2 * quarter)) & 3) << 4);
                v[l] = (l < 16 ? s0 : s1) * (float)(q - 32);
            }
            break;
        }
        default:
#pragma unroll
            for (int l = 0; l < 32; ++l) v[l] = NAN_F;
    }
}

// Expands `rows` packed rows (row r starts at w + r * row_bytes) of `groups` groups each into
// the contiguous [rows, 32 * groups] tensor `out` of dtype odt. One thread per group.
extern "C" __global__ void tl_dequant(void* out, int odt, const unsigned char* w, int qt, i64 rows, i64 groups,
                                      i64 row_bytes) {
    GRID_LOOP(t, rows * groups) {
        i64 r = t / groups, g = t - r * groups;
        float v[32];
        decode_group(qt, w + r * row_bytes, g, v);
        i64 o = t * 32;
        for (int l = 0; l < 32; ++l) stf(out, odt, o + l, v[l]);
    }
}

// Rows of a packed table picked by int64 ids: out[i, :] = table[ids[i], :] expanded to odt.
// One thread per (id, group); an id outside [0, vocab) sets ERR_INDEX and writes zeros.
extern "C" __global__ void tl_embedding_q(void* out, int odt, const unsigned char* w, int qt, i64 groups,
                                          i64 row_bytes, const i64* ids, i64 nids, i64 vocab, int* err) {
    GRID_LOOP(t, nids * groups) {
        i64 i = t / groups, g = t - i * groups;
        i64 id = ids[i];
        float v[32];
        if (id < 0 || id >= vocab) {
            atomicOr(err, ERR_INDEX);
            for (int l = 0; l < 32; ++l) v[l] = 0.0f;
        } else {
            decode_group(qt, w + id * row_bytes, g, v);
        }
        for (int l = 0; l < 32; ++l) stf(out, odt, t * 32 + l, v[l]);
    }
}

#define MV_MAX_ROWS 8
#define MV_MAX_RPB 4
#define MV_THREADS 256

// Sums acc[i] (i < count <= MV_MAX_ROWS * MV_MAX_RPB) over the block's threads; thread i of
// the block then holds the total of acc[i] in the return value (for i < count).
__device__ __forceinline__ float block_sums(float* acc, int count) {
    __shared__ float part[MV_THREADS / 32][MV_MAX_ROWS * MV_MAX_RPB];
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    for (int i = 0; i < count; ++i) {
        float v = warp_sum(acc[i]);
        if (lane == 0) part[warp][i] = v;
    }
    __syncthreads();
    float total = 0.0f;
    if (threadIdx.x < count)
        for (int w = 0; w < MV_THREADS / 32; ++w) total += part[w][threadIdx.x];
    return total;
}

// y[i, n] = sum_k x[i, k] * W[n, k] (+ bias[n] or bias[i, n]) for m <= MV_MAX_ROWS rows of x (contiguous
// f32 [m, K], 16-byte aligned) and a packed W of `groups` 32-value groups per row. Each block
// of MV_THREADS threads owns `rpb` consecutive output features; its threads take the groups of
// those rows in turn, so each weight byte is read once for all m rows, by one thread, next to
// the bytes its neighbours read.
extern "C" __global__ void tl_matvec_q(void* y, int ydt, const float* x, int m, const unsigned char* w, int qt,
                                       i64 n_out, i64 groups, i64 row_bytes, int rpb, const void* bias, int bdt,
                                       int bias_full) {
    i64 n0 = (i64)blockIdx.x * rpb;
    i64 k = groups * 32;
    float acc[MV_MAX_ROWS * MV_MAX_RPB];
#pragma unroll
    for (int i = 0; i < MV_MAX_ROWS * MV_MAX_RPB; ++i) acc[i] = 0.0f;
    for (i64 g = threadIdx.x; g < groups; g += MV_THREADS) {
#pragma unroll
        for (int r = 0; r < MV_MAX_RPB; ++r) {
            if (r < rpb && n0 + r < n_out) {
                float v[32];
                decode_group(qt, w + (n0 + r) * row_bytes, g, v);
#pragma unroll
                for (int i = 0; i < MV_MAX_ROWS; ++i) {
                    if (i < m) {
                        const float4* xp = (const float4*)(x + i * k + g * 32);
                        float s = 0.0f;
#pragma unroll
                        for (int l = 0; l < 8; ++l) {
                            float4 q = xp[l];
                            s += v[4 * l] * q.x + v[4 * l + 1] * q.y + v[4 * l + 2] * q.z + v[4 * l + 3] * q.w;
                        }
                        acc[i * MV_MAX_RPB + r] += s;
                    }
                }
            }
        }
    }
    float total = block_sums(acc, m * MV_MAX_RPB);
    int i = threadIdx.x / MV_MAX_RPB, r = threadIdx.x % MV_MAX_RPB;
    if (threadIdx.x < m * MV_MAX_RPB && r < rpb && n0 + r < n_out) {
        // A bias [n_out] repeats for every row; a residual (bias_full) has one per output.
        if (bias) total += ldf(bias, bdt, (bias_full ? i * n_out : 0) + n0 + r);
        stf(y, ydt, i * n_out + n0 + r, total);
    }
}

// Eight weights of a float row starting at element c (a 16-byte load for f16/bf16 when `vec`).
__device__ __forceinline__ void load8(const void* w, int wdt, i64 at, int vec, float* v) {
    if (vec && wdt != DT_F32) {
        uint4 q = *(const uint4*)((const unsigned short*)w + at);
        unsigned int parts[4] = {q.x, q.y, q.z, q.w};
#pragma unroll
        for (int p = 0; p < 4; ++p) {
            unsigned short a = (unsigned short)(parts[p] & 0xffffu), b = (unsigned short)(parts[p] >> 16);
            v[2 * p] = wdt == DT_F16 ? h2f(a) : bf2f(a);
            v[2 * p + 1] = wdt == DT_F16 ? h2f(b) : bf2f(b);
        }
    } else if (vec) {
        float4 a = *(const float4*)((const float*)w + at), b = *((const float4*)((const float*)w + at) + 1);
        v[0] = a.x; v[1] = a.y; v[2] = a.z; v[3] = a.w; v[4] = b.x; v[5] = b.y; v[6] = b.z; v[7] = b.w;
    } else {
#pragma unroll
        for (int l = 0; l < 8; ++l) v[l] = ldf(w, wdt, at + l);
    }
}

// The float counterpart of tl_matvec_q for a row-major W [n_out, K] of dtype wdt (rows
// `row_stride` elements apart): threads take 8-element chunks of the block's rows, with 16-byte
// loads when rows are 16-byte aligned (`vec`); K % 8 != 0 takes the element loop (`vec` = 0,
// tail handled there).
extern "C" __global__ void tl_matvec_f(void* y, int ydt, const float* x, int m, const void* w, int wdt,
                                       i64 n_out, i64 k, i64 row_stride, int vec, int rpb, const void* bias, int bdt,
                                       int bias_full) {
    i64 n0 = (i64)blockIdx.x * rpb;
    float acc[MV_MAX_ROWS * MV_MAX_RPB];
#pragma unroll
    for (int i = 0; i < MV_MAX_ROWS * MV_MAX_RPB; ++i) acc[i] = 0.0f;
    if (vec) {
        for (i64 c = threadIdx.x; c < k / 8; c += MV_THREADS) {
            float wv[MV_MAX_RPB][8];
#pragma unroll
            for (int r = 0; r < MV_MAX_RPB; ++r)
                if (r < rpb && n0 + r < n_out) load8(w, wdt, (n0 + r) * row_stride + c * 8, 1, wv[r]);
#pragma unroll
            for (int i = 0; i < MV_MAX_ROWS; ++i) {
                if (i < m) {
                    const float4* xp = (const float4*)(x + i * k + c * 8);
                    float4 a = xp[0], b = xp[1];
                    float xv[8] = {a.x, a.y, a.z, a.w, b.x, b.y, b.z, b.w};
#pragma unroll
                    for (int r = 0; r < MV_MAX_RPB; ++r) {
                        if (r < rpb && n0 + r < n_out) {
                            float s = 0.0f;
#pragma unroll
                            for (int l = 0; l < 8; ++l) s += wv[r][l] * xv[l];
                            acc[i * MV_MAX_RPB + r] += s;
                        }
                    }
                }
            }
        }
    } else {
        for (i64 c = threadIdx.x; c < k; c += MV_THREADS) {
#pragma unroll
            for (int r = 0; r < MV_MAX_RPB; ++r) {
                if (r < rpb && n0 + r < n_out) {
                    float wv = ldf(w, wdt, (n0 + r) * row_stride + c);
#pragma unroll
                    for (int i = 0; i < MV_MAX_ROWS; ++i)
                        if (i < m) acc[i * MV_MAX_RPB + r] += wv * x[i * k + c];
                }
            }
        }
    }
    float total = block_sums(acc, m * MV_MAX_RPB);
    int i = threadIdx.x / MV_MAX_RPB, r = threadIdx.x % MV_MAX_RPB;
    if (threadIdx.x < m * MV_MAX_RPB && r < rpb && n0 + r < n_out) {
        // A bias [n_out] repeats for every row; a residual (bias_full) has one per output.
        if (bias) total += ldf(bias, bdt, (bias_full ? i * n_out : 0) + n0 + r);
        stf(y, ydt, i * n_out + n0 + r, total);
    }
}

// One input row (a decode step): one warp per output feature, MV1_WARPS features per block;
// lanes take the row's 16-byte chunks (float weights, `vec` layouts only) or 32-value groups
// (packed weights) in turn, and only a warp shuffle reduces: no shared memory, no barrier.
#define MV1_WARPS 8

// A warp's dot product of float row `w + off` (16-byte aligned, k % 8 == 0) with x.
__device__ __forceinline__ float dot_row_f(const void* w, int wdt, i64 off, const float* x, i64 k, int lane) {
    float acc = 0.0f;
    i64 chunks = k / 8;
#pragma unroll 4
    for (i64 c = lane; c < chunks; c += 32) {
        float wv[8];
        load8(w, wdt, off + c * 8, 1, wv);
        const float4* xp = (const float4*)(x + c * 8);
        float4 a = xp[0], b = xp[1];
        acc += wv[0] * a.x + wv[1] * a.y + wv[2] * a.z + wv[3] * a.w + wv[4] * b.x + wv[5] * b.y + wv[6] * b.z +
               wv[7] * b.w;
    }
    return warp_sum(acc);
}

// A warp's dot product of a packed row with x.
__device__ __forceinline__ float dot_row_q(const unsigned char* row, int qt, const float* x, i64 groups, int lane) {
    float acc = 0.0f;
    for (i64 g = lane; g < groups; g += 32) {
        float v[32];
        decode_group(qt, row, g, v);
        const float4* xp = (const float4*)(x + g * 32);
#pragma unroll
        for (int l = 0; l < 8; ++l) {
            float4 q = xp[l];
            acc += v[4 * l] * q.x + v[4 * l + 1] * q.y + v[4 * l + 2] * q.z + v[4 * l + 3] * q.w;
        }
    }
    return warp_sum(acc);
}

extern "C" __global__ void tl_matvec_f1(void* y, int ydt, const float* x, const void* w, int wdt, i64 n_out, i64 k,
                                        i64 row_stride, const void* bias, int bdt) {
    int lane = threadIdx.x & 31;
    i64 n = (i64)blockIdx.x * MV1_WARPS + (threadIdx.x >> 5);
    if (n >= n_out) return;
    float acc = dot_row_f(w, wdt, n * row_stride, x, k, lane);
    if (lane == 0) {
        if (bias) acc += ldf(bias, bdt, n);
        stf(y, ydt, n, acc);
    }
}

extern "C" __global__ void tl_matvec_q1(void* y, int ydt, const float* x, const unsigned char* w, int qt, i64 n_out,
                                        i64 groups, i64 row_bytes, const void* bias, int bdt) {
    int lane = threadIdx.x & 31;
    i64 n = (i64)blockIdx.x * MV1_WARPS + (threadIdx.x >> 5);
    if (n >= n_out) return;
    float acc = dot_row_q(w + n * row_bytes, qt, x, groups, lane);
    if (lane == 0) {
        if (bias) acc += ldf(bias, bdt, n);
        stf(y, ydt, n, acc);
    }
}

// Up to three weights of one type read by one launch for one input row (a layer's Q, K and V
// projections, or its gate and up projections; the staged kernels below): output feature n
// of the launch is feature n - (features before it) of the part it falls in. `step` is each part's row stride, in
// elements (float) or bytes (packed).
struct Parts {
    const unsigned char* w[3];
    void* y[3];
    i64 n[3];
    i64 step[3];
    int count;
};

__device__ __forceinline__ int part_of(const Parts& p, i64* n) {
    for (int i = 0; i < p.count; ++i) {
        if (*n < p.n[i]) return i;
        *n -= p.n[i];
    }
    return -1;
}

// ---- one input row, x staged in shared memory (the decode path) ---------------------------
// The kernels below copy x (k floats) into shared memory once per block, RMS-normalising it
// there when given a norm weight (so the norm costs no launch and no round trip through
// memory), then give each warp one output feature (or, for `swiglu`, feature n of both the
// gate and the up weight, combined as silu(gate) * up). Weight rows are read with 16-byte
// streaming loads, MVS_UNROLL of them in flight per lane before any arithmetic: a decode step
// is bound by how many weight bytes are in flight, not by the arithmetic.
#define MVS_UNROLL 4

__device__ __forceinline__ uint4 ld_stream16(const void* p) {
    uint4 r;
    asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];"
                 : "=r"(r.x), "=r"(r.y), "=r"(r.z), "=r"(r.w)
                 : "l"(p));
    return r;
}

// The staged input: x (k floats, 16-byte aligned) copied to `xs`, times rsqrt(mean(x^2) + eps)
// * g when g is given. With `padded`, element i goes to xs[i + i / 32] (a gap after every 32
// values), so that lanes reading the same element of consecutive 32-value groups hit distinct
// shared-memory banks. Ends with a barrier; every thread of the block must call it.
__device__ void stage_input(float* xs, const float* x, i64 k, const void* g, int gdt, float eps, int padded) {
    __shared__ float red[32];
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    float ss = 0.0f;
    for (i64 i = threadIdx.x; i < k / 4; i += blockDim.x) {
        float4 v = ((const float4*)x)[i];
        if (padded) {
            i64 at = 4 * i + (4 * i) / 32;
            xs[at] = v.x; xs[at + 1] = v.y; xs[at + 2] = v.z; xs[at + 3] = v.w;
        } else {
            ((float4*)xs)[i] = v;
        }
        ss += v.x * v.x + v.y * v.y + v.z * v.z + v.w * v.w;
    }
    if (g) {
        ss = warp_sum(ss);
        if (lane == 0) red[warp] = ss;
        __syncthreads();
        float total = 0.0f;
        for (int i = 0; i < warps; ++i) total += red[i];
        float r = rsqrtf(total / (float)k + eps);
        for (i64 i = threadIdx.x; i < k; i += blockDim.x) {
            i64 at = padded ? i + i / 32 : i;
            xs[at] = xs[at] * r * ldf(g, gdt, i);
        }
    }
    __syncthreads();
}

// Eight weights (one 16-byte chunk of f16/bf16, two of f32) times xs[0..8].
__device__ __forceinline__ float dot_chunk(uint4 a, uint4 b, int wdt, const float* xs) {
    float4 x0 = *(const float4*)xs, x1 = *(const float4*)(xs + 4);
    if (wdt == DT_F32) {
        return __uint_as_float(a.x) * x0.x + __uint_as_float(a.y) * x0.y + __uint_as_float(a.z) * x0.z +
               __uint_as_float(a.w) * x0.w + __uint_as_float(b.x) * x1.x + __uint_as_float(b.y) * x1.y +
               __uint_as_float(b.z) * x1.z + __uint_as_float(b.w) * x1.w;
    }
    unsigned int p[4] = {a.x, a.y, a.z, a.w};
    float xv[8] = {x0.x, x0.y, x0.z, x0.w, x1.x, x1.y, x1.z, x1.w};
    float s = 0.0f;
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        unsigned short lo = (unsigned short)(p[i] & 0xffffu), hi = (unsigned short)(p[i] >> 16);
        s += (wdt == DT_F16 ? h2f(lo) : bf2f(lo)) * xv[2 * i] + (wdt == DT_F16 ? h2f(hi) : bf2f(hi)) * xv[2 * i + 1];
    }
    return s;
}

// A warp's dot products of ROWS (1 or 2) float rows (16-byte aligned, k % 8 == 0; f32 when
// WIDE, else f16/bf16) with the staged xs; every lane gets the sums in out[].
template <int WIDE, int ROWS>
__device__ __forceinline__ void dot_rows_staged(const unsigned char* w0, const unsigned char* w1, int wdt,
                                                const float* xs, i64 k, int lane, float* out) {
    i64 chunks = k / 8;
    float acc[ROWS];
#pragma unroll
    for (int r = 0; r < ROWS; ++r) acc[r] = 0.0f;
    const unsigned char* rows[2] = {w0, w1};
    for (i64 base = 0; base < chunks; base += 32 * MVS_UNROLL) {
        uint4 q[MVS_UNROLL][ROWS][1 + WIDE];
#pragma unroll
        for (int u = 0; u < MVS_UNROLL; ++u) {
            i64 c = base + u * 32 + lane;
#pragma unroll
            for (int r = 0; r < ROWS; ++r)
#pragma unroll
                for (int h = 0; h <= WIDE; ++h)
                    q[u][r][h] = c < chunks ? ld_stream16(rows[r] + (c << (4 + WIDE)) + 16 * h) : make_uint4(0, 0, 0, 0);
        }
#pragma unroll
        for (int u = 0; u < MVS_UNROLL; ++u) {
            i64 c = base + u * 32 + lane;
            if (c < chunks) {
#pragma unroll
                for (int r = 0; r < ROWS; ++r) acc[r] += dot_chunk(q[u][r][0], q[u][r][WIDE], wdt, xs + c * 8);
            }
        }
    }
#pragma unroll
    for (int r = 0; r < ROWS; ++r) out[r] = warp_sum(acc[r]);
}

// The staged counterpart of dot_row_q (xs padded, see stage_input). For the 32-value formats whose 32 blocks are a whole
// number of 16-byte words (`staged`: Q4_0, Q4_1, Q8_0 rows 16-byte aligned), the warp first
// copies 32 blocks into `stage` with 16-byte loads, and each lane decodes one from there.
__device__ __forceinline__ float dot_row_q_staged(const unsigned char* row, int qt, const float* xs, i64 groups,
                                                  int lane, int staged, uint4* stage) {
    float acc = 0.0f;
    if (staged) {
        int bb = q_block_bytes(qt);
        for (i64 g0 = 0; g0 < groups; g0 += 32) {
            i64 left = groups - g0;
            int words = (int)(((left < 32 ? left : 32) * bb + 15) / 16);
            const unsigned char* src = row + g0 * bb;
            uint4 t[3];
#pragma unroll
            for (int j = 0; j < 3; ++j)
                t[j] = lane + 32 * j < words ? ld_stream16(src + 16 * (lane + 32 * j)) : make_uint4(0, 0, 0, 0);
#pragma unroll
            for (int j = 0; j < 3; ++j)
                if (lane + 32 * j < words) stage[lane + 32 * j] = t[j];
            __syncwarp();
            if (g0 + lane < groups) {
                float v[32];
                decode_group(qt, (const unsigned char*)stage, lane, v);
                const float* xg = xs + (g0 + lane) * 33;
#pragma unroll
                for (int l = 0; l < 32; ++l) acc += v[l] * xg[l];
            }
            __syncwarp();
        }
    } else {
        for (i64 g = lane; g < groups; g += 32) {
            float v[32];
            decode_group(qt, row, g, v);
            const float* xg = xs + g * 33;
#pragma unroll
            for (int l = 0; l < 32; ++l) acc += v[l] * xg[l];
        }
    }
    return warp_sum(acc);
}

// Writes feature n of part i: plus bias[n] (one weight only), or silu(a) * b (swiglu).
__device__ __forceinline__ void store_feature(const Parts& p, int i, i64 n, int ydt, float a, float b, int swiglu,
                                              const void* bias, int bdt) {
    if (swiglu) {
        stf(p.y[0], ydt, n, a / (1.0f + expf(-a)) * b);
        return;
    }
    if (bias) a += ldf(bias, bdt, n);
    stf(p.y[i], ydt, n, a);
}

// Float weights of one dtype (1 to 3 parts, rows `step` elements apart): see above. With
// `swiglu`, parts 0 and 1 have the same number of rows and only y[0] is written.
extern "C" __global__ void tl_matvec_f1_staged(int ydt, const float* x, Parts p, int wdt, i64 k, const void* g,
                                               int gdt, float eps, const void* bias, int bdt, int swiglu) {
    extern __shared__ __align__(16) float xs[];
    stage_input(xs, x, k, g, gdt, eps, 0);
    int lane = threadIdx.x & 31;
    i64 n = (i64)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    int es = wdt == DT_F32 ? 4 : 2;
    float r[2];
    if (swiglu) {
        if (n >= p.n[0]) return;
        const unsigned char *a = p.w[0] + n * p.step[0] * es, *b = p.w[1] + n * p.step[1] * es;
        if (wdt == DT_F32) dot_rows_staged<1, 2>(a, b, wdt, xs, k, lane, r);
        else dot_rows_staged<0, 2>(a, b, wdt, xs, k, lane, r);
        if (lane == 0) store_feature(p, 0, n, ydt, r[0], r[1], 1, bias, bdt);
        return;
    }
    int i = part_of(p, &n);
    if (i < 0) return;
    const unsigned char* a = p.w[i] + n * p.step[i] * es;
    if (wdt == DT_F32) dot_rows_staged<1, 1>(a, a, wdt, xs, k, lane, r);
    else dot_rows_staged<0, 1>(a, a, wdt, xs, k, lane, r);
    if (lane == 0) store_feature(p, i, n, ydt, r[0], 0.0f, 0, bias, bdt);
}

// Packed weights of one format (1 to 3 parts, rows `step` bytes apart): see above.
extern "C" __global__ void tl_matvec_q1_staged(int ydt, const float* x, Parts p, int qt, i64 groups, const void* g,
                                               int gdt, float eps, const void* bias, int bdt, int swiglu,
                                               int staged) {
    extern __shared__ __align__(16) float xs[];
    __shared__ uint4 stage[MV1_WARPS][3 * 32];
    stage_input(xs, x, groups * 32, g, gdt, eps, 1);
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    i64 n = (i64)blockIdx.x * (blockDim.x >> 5) + warp;
    if (swiglu) {
        if (n >= p.n[0]) return;
        float a = dot_row_q_staged(p.w[0] + n * p.step[0], qt, xs, groups, lane, staged, stage[warp]);
        float b = dot_row_q_staged(p.w[1] + n * p.step[1], qt, xs, groups, lane, staged, stage[warp]);
        if (lane == 0) store_feature(p, 0, n, ydt, a, b, 1, bias, bdt);
        return;
    }
    int i = part_of(p, &n);
    if (i < 0) return;
    float a = dot_row_q_staged(p.w[i] + n * p.step[i], qt, xs, groups, lane, staged, stage[warp]);
    if (lane == 0) store_feature(p, i, n, ydt, a, 0.0f, 0, bias, bdt);
}
