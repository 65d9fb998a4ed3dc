// TensorLogic CUDA kernels, compiled at run time with NVRTC (no headers needed).
//
// Conventions:
// - Element types are passed at run time as codes (DT_*): the type switch is uniform across a
//   launch, so one kernel serves every dtype. Floats are computed in f32 (as on the CPU
//   backend), sums in f64, int64 in 64-bit integer arithmetic.
// - Strided operands come with a `Lay` (shape/strides/offset, rank <= MAX_RANK) passed by
//   value; `contig` marks a row-major layout so that the common case skips the index math.
// - Errors that the host cannot see before launching (int division by zero, an index out of
//   range) set bits in `err`, which the host reads at its next sync.

#define MAX_RANK 8
#define DT_F32 0
#define DT_F16 1
#define DT_BF16 2
#define DT_I64 3
#define DT_BOOL 4

#define ERR_DIV_ZERO 1
#define ERR_INDEX 2
#define ERR_NEG_POW 4

// NaN tests and infinities without math headers (x != x is true only for NaN).
#define ISNAN(x) ((x) != (x))
#define NEG_INF_F __int_as_float((int)0xff800000u)
#define NAN_F __int_as_float(0x7fc00000)
#define NEG_INF_D __longlong_as_double((long long)0xfff0000000000000ULL)
#define POS_INF_D __longlong_as_double((long long)0x7ff0000000000000ULL)

typedef long long i64;
typedef unsigned long long u64;

struct Lay {
    int rank;
    int contig;
    i64 offset;
    i64 shape[MAX_RANK];
    i64 strides[MAX_RANK];
};

__device__ __forceinline__ i64 loc(const Lay& l, i64 i) {
    if (l.contig) return l.offset + i;
    // One dim (broadcast scalars, strided rows after merging): no 64-bit division needed.
    if (l.rank <= 1) return l.offset + (l.rank == 1 ? i * l.strides[0] : 0);
    i64 off = l.offset;
    for (int d = l.rank - 1; d >= 0; --d) {
        i64 s = l.shape[d];
        i64 q = i / s;
        off += (i - q * s) * l.strides[d];
        i = q;
    }
    return off;
}

// ---- half conversions, written out so that no CUDA header is needed ----
__device__ __forceinline__ float h2f(unsigned short h) {
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
    return f;
}
__device__ __forceinline__ unsigned short f2h(float f) {
    unsigned short h;
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f));
    return h;
}
__device__ __forceinline__ float bf2f(unsigned short b) {
    return __uint_as_float(((unsigned int)b) << 16);
}
__device__ __forceinline__ unsigned short f2bf(float f) {
    unsigned int u = __float_as_uint(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (unsigned short)((u >> 16) | 0x40);  // quiet NaN
    u += 0x7fffu + ((u >> 16) & 1u);  // round to nearest, ties to even
    return (unsigned short)(u >> 16);
}

__device__ __forceinline__ float ldf(const void* p, int dt, i64 i) {
    switch (dt) {
        case DT_F32: return ((const float*)p)[i];
        case DT_F16: return h2f(((const unsigned short*)p)[i]);
        case DT_BF16: return bf2f(((const unsigned short*)p)[i]);
        case DT_I64: return (float)((const i64*)p)[i];
        default: return ((const unsigned char*)p)[i] ? 1.0f : 0.0f;
    }
}
__device__ __forceinline__ void stf(void* p, int dt, i64 i, float v) {
    switch (dt) {
        case DT_F32: ((float*)p)[i] = v; break;
        case DT_F16: ((unsigned short*)p)[i] = f2h(v); break;
        case DT_BF16: ((unsigned short*)p)[i] = f2bf(v); break;
        case DT_I64: ((i64*)p)[i] = (i64)v; break;
        default: ((unsigned char*)p)[i] = v != 0.0f; break;
    }
}
__device__ __forceinline__ i64 ldi(const void* p, int dt, i64 i) {
    switch (dt) {
        case DT_I64: return ((const i64*)p)[i];
        case DT_BOOL: return ((const unsigned char*)p)[i] ? 1 : 0;
        default: return (i64)ldf(p, dt, i);
    }
}
__device__ __forceinline__ void sti(void* p, int dt, i64 i, i64 v) {
    switch (dt) {
        case DT_I64: ((i64*)p)[i] = v; break;
        case DT_BOOL: ((unsigned char*)p)[i] = v != 0; break;
        default: stf(p, dt, i, (float)v); break;
    }
}

// Copies one element of `esize` bytes.
__device__ __forceinline__ void copy_elem(void* dst, i64 di, const void* src, i64 si, int esize) {
    switch (esize) {
        case 8: ((u64*)dst)[di] = ((const u64*)src)[si]; break;
        case 4: ((unsigned int*)dst)[di] = ((const unsigned int*)src)[si]; break;
        case 2: ((unsigned short*)dst)[di] = ((const unsigned short*)src)[si]; break;
        default: ((unsigned char*)dst)[di] = ((const unsigned char*)src)[si]; break;
    }
}

#define GRID_LOOP(i, n) for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (i64)gridDim.x * blockDim.x)

extern "C" __global__ void tl_fill(void* out, int dt, i64 n, float fv, i64 iv) {
    GRID_LOOP(i, n) {
        if (dt == DT_I64 || dt == DT_BOOL) sti(out, dt, i, iv); else stf(out, dt, i, fv);
    }
}

// out (layout lo) = x (layout lx), element by element in row-major order of the shape.
extern "C" __global__ void tl_copy(void* out, Lay lo, const void* x, Lay lx, int esize, i64 n) {
    GRID_LOOP(i, n) { copy_elem(out, loc(lo, i), x, loc(lx, i), esize); }
}

// ---- elementwise ----
#define U_NEG 0
#define U_ABS 1
#define U_EXP 2
#define U_LOG 3
#define U_SQRT 4
#define U_RSQRT 5
#define U_SIN 6
#define U_COS 7
#define U_TANH 8
#define U_SIGMOID 9
#define U_RELU 10
#define U_GELU 11
#define U_SILU 12
#define U_STEP 13
#define U_NOT 14

__device__ __forceinline__ float sigmoidf(float x) { return 1.0f / (1.0f + expf(-x)); }

__device__ __forceinline__ float unary_f(int op, float a) {
    switch (op) {
        case U_NEG: return -a;
        case U_ABS: return fabsf(a);
        case U_EXP: return expf(a);
        case U_LOG: return logf(a);
        case U_SQRT: return sqrtf(a);
        case U_RSQRT: return 1.0f / sqrtf(a);
        case U_SIN: return sinf(a);
        case U_COS: return cosf(a);
        case U_TANH: return tanhf(a);
        case U_SIGMOID: return sigmoidf(a);
        case U_RELU: return a < 0.0f ? 0.0f : a;
        case U_GELU: return 0.5f * a * erfcf(-a * 0.70710678118654752f);
        case U_SILU: return a * sigmoidf(a);
        case U_STEP: return a > 0.0f ? 1.0f : 0.0f;
        default: return a == 0.0f ? 1.0f : 0.0f;
    }
}

__device__ __forceinline__ i64 unary_i(int op, i64 a) {
    switch (op) {
        case U_NEG: return (i64)(0ULL - (u64)a);
        case U_ABS: return a < 0 ? (i64)(0ULL - (u64)a) : a;
        case U_RELU: return a > 0 ? a : 0;
        case U_STEP: return a > 0 ? 1 : 0;
        default: return a == 0 ? 1 : 0;
    }
}

// Float ops read and write floats; int64/bool ops (`is_int`) work on 64-bit integers.
extern "C" __global__ void tl_unary(void* out, int odt, const void* x, int xdt, Lay lx, i64 n, int op, int is_int) {
    GRID_LOOP(i, n) {
        i64 o = loc(lx, i);
        if (is_int) sti(out, odt, i, unary_i(op, ldi(x, xdt, o)));
        else stf(out, odt, i, unary_f(op, ldf(x, xdt, o)));
    }
}

#define B_ADD 0
#define B_SUB 1
#define B_MUL 2
#define B_DIV 3
#define B_POW 4
#define B_REM 5
#define B_MAX 6
#define B_MIN 7
#define B_EQ 8
#define B_NE 9
#define B_LT 10
#define B_LE 11
#define B_GT 12
#define B_GE 13
#define B_AND 14
#define B_OR 15

__device__ __forceinline__ float binary_f(int op, float p, float q) {
    switch (op) {
        case B_ADD: return p + q;
        case B_SUB: return p - q;
        case B_MUL: return p * q;
        case B_DIV: return p / q;
        case B_POW: return powf(p, q);
        case B_REM: { float r = fmodf(p, q); return (r != 0.0f && ((r < 0.0f) != (q < 0.0f))) ? r + q : r; }
        case B_MAX: return (ISNAN(p) || p > q) ? p : q;
        case B_MIN: return (ISNAN(p) || p < q) ? p : q;
        case B_EQ: return p == q;
        case B_NE: return p != q;
        case B_LT: return p < q;
        case B_LE: return p <= q;
        case B_GT: return p > q;
        case B_GE: return p >= q;
        case B_AND: return p != 0.0f && q != 0.0f;
        default: return p != 0.0f || q != 0.0f;
    }
}

__device__ __forceinline__ i64 binary_i(int op, i64 p, i64 q, int* err) {
    switch (op) {
        case B_ADD: return (i64)((u64)p + (u64)q);
        case B_SUB: return (i64)((u64)p - (u64)q);
        case B_MUL: return (i64)((u64)p * (u64)q);
        case B_DIV: {
            if (q == 0) { atomicOr(err, ERR_DIV_ZERO); return 0; }
            if (q == -1) return (i64)(0ULL - (u64)p);
            i64 d = p / q;
            return ((p % q != 0) && ((p < 0) != (q < 0))) ? d - 1 : d;
        }
        case B_REM: {
            if (q == 0) { atomicOr(err, ERR_DIV_ZERO); return 0; }
            if (q == -1) return 0;
            i64 r = p % q;
            return (r != 0 && ((r < 0) != (q < 0))) ? r + q : r;
        }
        case B_POW: {
            if (q < 0) { atomicOr(err, ERR_NEG_POW); return 0; }
            u64 result = 1, base = (u64)p;
            u64 e = q > 0xffffffffLL ? 0xffffffffULL : (u64)q;
            while (e) { if (e & 1) result *= base; base *= base; e >>= 1; }
            return (i64)result;
        }
        case B_MAX: return p > q ? p : q;
        case B_MIN: return p < q ? p : q;
        case B_EQ: return p == q;
        case B_NE: return p != q;
        case B_LT: return p < q;
        case B_LE: return p <= q;
        case B_GT: return p > q;
        case B_GE: return p >= q;
        case B_AND: return p != 0 && q != 0;
        default: return p != 0 || q != 0;
    }
}

extern "C" __global__ void tl_binary(void* out, int odt, const void* a, Lay la, const void* b, Lay lb,
                                     int dt, i64 n, int op, int is_int, int* err) {
    GRID_LOOP(i, n) {
        i64 oa = loc(la, i), ob = loc(lb, i);
        if (is_int) sti(out, odt, i, binary_i(op, ldi(a, dt, oa), ldi(b, dt, ob), err));
        else stf(out, odt, i, binary_f(op, ldf(a, dt, oa), ldf(b, dt, ob)));
    }
}

// Conversions follow Rust's `as`: float to int truncates toward zero, saturates, NaN gives 0.
extern "C" __global__ void tl_cast(void* out, int odt, const void* x, int xdt, Lay lx, i64 n) {
    GRID_LOOP(i, n) {
        i64 o = loc(lx, i);
        if (xdt == DT_I64 || xdt == DT_BOOL) {
            i64 v = ldi(x, xdt, o);
            if (odt == DT_I64 || odt == DT_BOOL) sti(out, odt, i, v); else stf(out, odt, i, (float)v);
        } else {
            float v = ldf(x, xdt, o);
            if (odt == DT_I64) {
                i64 r;
                if (ISNAN(v)) r = 0;
                else if (v >= 9.2233720368547758e18f) r = 0x7fffffffffffffffLL;
                else if (v <= -9.2233720368547758e18f) r = (i64)0x8000000000000000ULL;
                else r = (i64)v;
                ((i64*)out)[i] = r;
            } else if (odt == DT_BOOL) {
                ((unsigned char*)out)[i] = v != 0.0f;
            } else {
                stf(out, odt, i, v);
            }
        }
    }
}

extern "C" __global__ void tl_clamp(void* out, const void* x, int dt, Lay lx, i64 n, float lo, float hi, i64 ilo, i64 ihi) {
    GRID_LOOP(i, n) {
        i64 o = loc(lx, i);
        if (dt == DT_I64) {
            i64 a = ((const i64*)x)[o];
            a = a < ilo ? ilo : a;
            ((i64*)out)[i] = a > ihi ? ihi : a;
        } else {
            float a = ldf(x, dt, o);
            stf(out, dt, i, a < lo ? lo : (a > hi ? hi : a));
        }
    }
}

extern "C" __global__ void tl_where(void* out, const unsigned char* c, Lay lc, const void* a, Lay la,
                                    const void* b, Lay lb, int esize, i64 n) {
    GRID_LOOP(i, n) {
        if (c[loc(lc, i)]) copy_elem(out, i, a, loc(la, i), esize);
        else copy_elem(out, i, b, loc(lb, i), esize);
    }
}

// ---- reductions: `x` viewed with the reduced dims last, rows of k elements, one block per row ----
#define R_SUM 0
#define R_MEAN 1
#define R_MAX 2
#define R_MIN 3
#define R_PROD 4

__device__ double block_reduce_d(double v, int op, double* sh) {
    unsigned t = threadIdx.x;
    sh[t] = v;
    __syncthreads();
    for (unsigned s = blockDim.x / 2; s > 0; s >>= 1) {
        if (t < s) {
            double p = sh[t], q = sh[t + s];
            double r;
            if (op == R_SUM || op == R_MEAN) r = p + q;
            else if (op == R_PROD) r = p * q;
            else if (ISNAN(p) || ISNAN(q)) r = p + q;
            else if (op == R_MAX) r = p > q ? p : q;
            else r = p < q ? p : q;
            sh[t] = r;
        }
        __syncthreads();
    }
    double r = sh[0];
    __syncthreads();
    return r;
}

// Float inputs: f64 accumulation, output in odt. Blocks of 256 threads.
extern "C" __global__ void tl_reduce_f(void* out, int odt, const void* x, int xdt, Lay lx, i64 rows, i64 k, int op) {
    __shared__ double sh[256];
    for (i64 row = blockIdx.x; row < rows; row += gridDim.x) {
        double acc = (op == R_SUM || op == R_MEAN) ? 0.0 : (op == R_PROD ? 1.0 : (op == R_MAX ? NEG_INF_D : POS_INF_D));
        for (i64 j = threadIdx.x; j < k; j += blockDim.x) {
            double v = (double)ldf(x, xdt, loc(lx, row * k + j));
            if (op == R_SUM || op == R_MEAN) acc += v;
            else if (op == R_PROD) acc *= v;
            else if (ISNAN(v) || ISNAN(acc)) acc = acc + v;
            else if (op == R_MAX) acc = v > acc ? v : acc;
            else acc = v < acc ? v : acc;
        }
        double r = block_reduce_d(acc, op, sh);
        if (threadIdx.x == 0) {
            if (op == R_MEAN) r /= (double)k;
            stf(out, odt, row, (float)r);
        }
    }
}

// Int64/bool inputs: exact 64-bit accumulation (wrapping); mean divides in f64 into f32.
extern "C" __global__ void tl_reduce_i(void* out, int odt, const void* x, int xdt, Lay lx, i64 rows, i64 k, int op) {
    __shared__ i64 sh[256];
    for (i64 row = blockIdx.x; row < rows; row += gridDim.x) {
        i64 acc = (op == R_SUM || op == R_MEAN) ? 0 : (op == R_PROD ? 1 : (op == R_MAX ? (i64)0x8000000000000000ULL : 0x7fffffffffffffffLL));
        for (i64 j = threadIdx.x; j < k; j += blockDim.x) {
            i64 v = ldi(x, xdt, loc(lx, row * k + j));
            if (op == R_SUM || op == R_MEAN) acc = (i64)((u64)acc + (u64)v);
            else if (op == R_PROD) acc = (i64)((u64)acc * (u64)v);
            else if (op == R_MAX) acc = v > acc ? v : acc;
            else acc = v < acc ? v : acc;
        }
        unsigned t = threadIdx.x;
        sh[t] = acc;
        __syncthreads();
        for (unsigned s = blockDim.x / 2; s > 0; s >>= 1) {
            if (t < s) {
                i64 p = sh[t], q = sh[t + s];
                if (op == R_SUM || op == R_MEAN) sh[t] = (i64)((u64)p + (u64)q);
                else if (op == R_PROD) sh[t] = (i64)((u64)p * (u64)q);
                else if (op == R_MAX) sh[t] = p > q ? p : q;
                else sh[t] = p < q ? p : q;
            }
            __syncthreads();
        }
        if (t == 0) {
            if (op == R_MEAN) ((float*)out)[row] = (float)((double)sh[0] / (double)k);
            else sti(out, odt, row, sh[0]);
        }
        __syncthreads();
    }
}

// Index of the first largest (or smallest) element of each row; NaN wins at its first place.
extern "C" __global__ void tl_arg_reduce(i64* out, const void* x, int xdt, Lay lx, i64 rows, i64 k, int largest) {
    __shared__ double shv[256];
    __shared__ i64 shi[256];
    for (i64 row = blockIdx.x; row < rows; row += gridDim.x) {
        double best = 0.0;
        i64 at = -1;
        for (i64 j = threadIdx.x; j < k; j += blockDim.x) {
            i64 o = loc(lx, row * k + j);
            double v = (xdt == DT_I64) ? (double)((const i64*)x)[o] : (double)ldf(x, xdt, o);
            bool take;
            if (at < 0) take = true;
            else if (ISNAN(best)) take = false;
            else if (ISNAN(v)) take = true;
            else take = largest ? v > best : v < best;
            if (take) { best = v; at = j; }
        }
        unsigned t = threadIdx.x;
        shv[t] = best;
        shi[t] = at;
        __syncthreads();
        for (unsigned s = blockDim.x / 2; s > 0; s >>= 1) {
            if (t < s) {
                double p = shv[t], q = shv[t + s];
                i64 ip = shi[t], iq = shi[t + s];
                bool take_q;
                if (iq < 0) take_q = false;
                else if (ip < 0) take_q = true;
                else if (ISNAN(p) || ISNAN(q)) take_q = ISNAN(q) && (!ISNAN(p) || iq < ip);
                else if (p == q) take_q = iq < ip;
                else take_q = largest ? q > p : q < p;
                if (take_q) { shv[t] = q; shi[t] = iq; }
            }
            __syncthreads();
        }
        if (t == 0) out[row] = shi[0] < 0 ? 0 : shi[0];
        __syncthreads();
    }
}

// Int64 comparisons need their own exact path (large values do not fit a double).
extern "C" __global__ void tl_arg_reduce_i(i64* out, const i64* x, Lay lx, i64 rows, i64 k, int largest) {
    __shared__ i64 shv[256];
    __shared__ i64 shi[256];
    for (i64 row = blockIdx.x; row < rows; row += gridDim.x) {
        i64 best = 0, at = -1;
        for (i64 j = threadIdx.x; j < k; j += blockDim.x) {
            i64 v = x[loc(lx, row * k + j)];
            if (at < 0 || (largest ? v > best : v < best)) { best = v; at = j; }
        }
        unsigned t = threadIdx.x;
        shv[t] = best;
        shi[t] = at;
        __syncthreads();
        for (unsigned s = blockDim.x / 2; s > 0; s >>= 1) {
            if (t < s) {
                i64 p = shv[t], q = shv[t + s], ip = shi[t], iq = shi[t + s];
                bool take_q = iq >= 0 && (ip < 0 || (largest ? q > p : q < p) || (q == p && iq < ip));
                if (take_q) { shv[t] = q; shi[t] = iq; }
            }
            __syncthreads();
        }
        if (t == 0) out[row] = shi[0] < 0 ? 0 : shi[0];
        __syncthreads();
    }
}

// ---- indexing ----
// gather: out[i] = x[base(i) + index[i] * stride], where base is x addressed with index's
// shape and the gathered dim pinned to 0 (lbase).
extern "C" __global__ void tl_gather(void* out, const void* x, Lay lbase, i64 stride, i64 size,
                                     const i64* idx, Lay li, int esize, i64 n, int* err) {
    GRID_LOOP(i, n) {
        i64 j = idx[loc(li, i)];
        if (j < 0 || j >= size) { atomicOr(err, ERR_INDEX); j = 0; }
        copy_elem(out, i, x, loc(lbase, i) + j * stride, esize);
    }
}

// index_select: out has x's shape with dim `dim` replaced by m = len(index). The output
// element i is (outer o, row r, inner c) in [outer, m, inner]; lsel is x's layout with dim
// pinned (stride 0 at dim) shaped like the output.
extern "C" __global__ void tl_index_select(void* out, const void* x, Lay lsel, i64 stride, i64 size,
                                           const i64* idx, Lay li, i64 m, i64 inner, int esize, i64 n, int* err) {
    GRID_LOOP(i, n) {
        i64 r = (i / inner) % m;
        i64 j = idx[loc(li, r)];
        if (j < 0 || j >= size) { atomicOr(err, ERR_INDEX); j = 0; }
        copy_elem(out, i, x, loc(lsel, i) + j * stride, esize);
    }
}

// ---- neural-network ops ----
__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ float block_sum_f(float v, float* sh) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    int w = threadIdx.x >> 5, l = threadIdx.x & 31;
    if (l == 0) sh[w] = v;
    __syncthreads();
    int nw = (blockDim.x + 31) >> 5;
    float r = 0.0f;
    for (int k = 0; k < nw; ++k) r += sh[k];
    __syncthreads();
    return r;
}
__device__ float block_max_f(float v, float* sh) {
    for (int o = 16; o > 0; o >>= 1) { float q = __shfl_xor_sync(0xffffffffu, v, o); v = (ISNAN(v) || v > q) ? v : q; }
    int w = threadIdx.x >> 5, l = threadIdx.x & 31;
    if (l == 0) sh[w] = v;
    __syncthreads();
    int nw = (blockDim.x + 31) >> 5;
    float r = NEG_INF_F;
    for (int k = 0; k < nw; ++k) { float q = sh[k]; r = (ISNAN(r) || r > q) ? r : q; }
    __syncthreads();
    return r;
}

// Rows of length k: lx addresses x with the softmax dim last, lo the output likewise.
extern "C" __global__ void tl_softmax(void* out, Lay lo, const void* x, Lay lx, int dt, i64 rows, i64 k, int log_mode) {
    __shared__ float sh[32];
    for (i64 row = blockIdx.x; row < rows; row += gridDim.x) {
        float m = NEG_INF_F;
        for (i64 j = threadIdx.x; j < k; j += blockDim.x) {
            float v = ldf(x, dt, loc(lx, row * k + j));
            m = (ISNAN(m) || m > v) ? m : v;
        }
        m = block_max_f(m, sh);
        float s = 0.0f;
        if (!ISNAN(m) && m != NEG_INF_F)
            for (i64 j = threadIdx.x; j < k; j += blockDim.x) s += expf(ldf(x, dt, loc(lx, row * k + j)) - m);
        s = block_sum_f(s, sh);
        float inv = 1.0f / s, ls = logf(s);
        for (i64 j = threadIdx.x; j < k; j += blockDim.x) {
            float r;
            if (ISNAN(m)) r = NAN_F;
            else if (m == NEG_INF_F) r = log_mode ? NEG_INF_F : 0.0f;
            else {
                float v = ldf(x, dt, loc(lx, row * k + j)) - m;
                r = log_mode ? v - ls : expf(v) * inv;
            }
            stf(out, dt, loc(lo, row * k + j), r);
        }
    }
}

// out = x / sqrt(mean(x^2) + eps) * w over rows of d (x contiguous in rows via lx).
extern "C" __global__ void tl_rms_norm(void* out, const void* x, Lay lx, int dt, const void* w, Lay lw, int wdt,
                                      i64 rows, i64 d, float eps) {
    __shared__ float sh[32];
    for (i64 row = blockIdx.x; row < rows; row += gridDim.x) {
        float s = 0.0f;
        for (i64 j = threadIdx.x; j < d; j += blockDim.x) { float v = ldf(x, dt, loc(lx, row * d + j)); s += v * v; }
        s = block_sum_f(s, sh);
        float scale = 1.0f / sqrtf(s / (float)d + eps);
        for (i64 j = threadIdx.x; j < d; j += blockDim.x)
            stf(out, dt, row * d + j, ldf(x, dt, loc(lx, row * d + j)) * scale * ldf(w, wdt, loc(lw, j)));
    }
}

extern "C" __global__ void tl_layer_norm(void* out, const void* x, Lay lx, int dt, const void* w, Lay lw, int wdt,
                                        const void* b, Lay lb, int bdt, int has_w, int has_b, i64 rows, i64 d, float eps) {
    __shared__ float sh[32];
    for (i64 row = blockIdx.x; row < rows; row += gridDim.x) {
        float s = 0.0f;
        for (i64 j = threadIdx.x; j < d; j += blockDim.x) s += ldf(x, dt, loc(lx, row * d + j));
        float mean = block_sum_f(s, sh) / (float)d;
        float v2 = 0.0f;
        for (i64 j = threadIdx.x; j < d; j += blockDim.x) { float v = ldf(x, dt, loc(lx, row * d + j)) - mean; v2 += v * v; }
        float inv = 1.0f / sqrtf(block_sum_f(v2, sh) / (float)d + eps);
        for (i64 j = threadIdx.x; j < d; j += blockDim.x) {
            float y = (ldf(x, dt, loc(lx, row * d + j)) - mean) * inv;
            if (has_w) y *= ldf(w, wdt, loc(lw, j));
            if (has_b) y += ldf(b, bdt, loc(lb, j));
            stf(out, dt, row * d + j, y);
        }
    }
}

// Rotary embedding; one thread per rotated pair. Row r (of d elements, row-major over x's
// shape) takes position pos + (r * d / seq_stride) % seq_len. Angles are computed in f64.
extern "C" __global__ void tl_rope(void* out, const void* x, Lay lx, int dt, i64 pairs, i64 d, i64 seq_stride,
                                  i64 seq_len, i64 pos, double theta, int neox) {
    i64 half = d / 2;
    GRID_LOOP(p, pairs) {
        i64 r = p / half, i = p - r * half;
        i64 s = (r * d / seq_stride) % seq_len;
        double freq = pow(theta, -2.0 * (double)i / (double)d);
        double angle = (double)(pos + s) * freq;
        float c = (float)cos(angle), sn = (float)sin(angle);
        i64 a = neox ? i : 2 * i, b = neox ? i + half : 2 * i + 1;
        float x0 = ldf(x, dt, loc(lx, r * d + a)), x1 = ldf(x, dt, loc(lx, r * d + b));
        stf(out, dt, r * d + a, x0 * c - x1 * sn);
        stf(out, dt, r * d + b, x0 * sn + x1 * c);
    }
}

// The KV-cache append of a decoder layer with RoPE on the keys, one thread per rotated pair:
// contiguous rows k, v [n, row_elems] (heads of d values) go to rows start.. of the contiguous
// caches kd, vd (dtype cdt; v already in it). Angles as tl_rope, so the result is the same as
// rope followed by two copies.
extern "C" __global__ void tl_write_kv_rope(void* kd, void* vd, int cdt, const void* k, int kdt, const void* v,
                                           i64 pairs, i64 d, i64 row_elems, i64 start, i64 pos, double theta,
                                           int neox) {
    i64 half = d / 2;
    GRID_LOOP(p, pairs) {
        i64 h = p / half, i = p - h * half;
        i64 r = h * d / row_elems;
        double freq = pow(theta, -2.0 * (double)i / (double)d);
        double angle = (double)(pos + r) * freq;
        float c = (float)cos(angle), sn = (float)sin(angle);
        i64 a = neox ? i : 2 * i, b = neox ? i + half : 2 * i + 1;
        i64 src = h * d, dst = start * row_elems + h * d;
        float x0 = ldf(k, kdt, src + a), x1 = ldf(k, kdt, src + b);
        stf(kd, cdt, dst + a, x0 * c - x1 * sn);
        stf(kd, cdt, dst + b, x0 * sn + x1 * c);
        stf(vd, cdt, dst + a, ldf(v, cdt, src + a));
        stf(vd, cdt, dst + b, ldf(v, cdt, src + b));
    }
}

extern "C" __global__ void tl_silu_mul(void* out, int odt, const void* a, Lay la, int adt, const void* b, Lay lb, int bdt, i64 n) {
    GRID_LOOP(i, n) {
        float x = ldf(a, adt, loc(la, i));
        stf(out, odt, i, x / (1.0f + expf(-x)) * ldf(b, bdt, loc(lb, i)));
    }
}

// Offset of element (batch b, head h, row s, col c) of a rank-r layout whose last three
// dims are [heads, seq, cols] and whose leading dims are the batch.
__device__ __forceinline__ i64 off4(const Lay& l, i64 b, i64 h, i64 s, i64 c) {
    int r = l.rank;
    i64 off = l.offset + h * l.strides[r - 3] + s * l.strides[r - 2] + c * l.strides[r - 1];
    for (int d = r - 4; d >= 0; --d) {
        i64 sz = l.shape[d];
        i64 q = b / sz;
        off += (b - q * sz) * l.strides[d];
        b = q;
    }
    return off;
}

// One block per (batch, query head, query row); scores for all sk keys in dynamic shared
// memory; softmax in f32; each thread then owns output columns.
// Softmax of the block's scores[0..n) in shared memory, all but the division: the scores
// become exp(score - max) and the return is 1 / their sum (0 for a row that is all -inf, NaN
// for a row with a NaN). Every thread of the block must call it.
__device__ float softmax_in_place(float* scores, i64 n, float* sh) {
    float m = NEG_INF_F;
    for (i64 j = threadIdx.x; j < n; j += blockDim.x) { float x = scores[j]; m = (ISNAN(m) || m > x) ? m : x; }
    m = block_max_f(m, sh);
    float sum = 0.0f;
    for (i64 j = threadIdx.x; j < n; j += blockDim.x) {
        float p;
        if (ISNAN(m)) p = NAN_F;
        else if (m == NEG_INF_F) p = 0.0f;
        else p = expf(scores[j] - m);
        scores[j] = p;
        sum += p;
    }
    sum = block_sum_f(sum, sh);
    float inv = (sum > 0.0f) ? 1.0f / sum : 0.0f;
    if (ISNAN(m)) inv = NAN_F;
    return inv;
}

// scores[j] = sum_c qs[c] * k[kb + j * ks + c] for keys j < n, a thread per key: each thread
// reads its whole key row with independent loads (16-byte ones for unit-stride f32 rows), so
// the loads of every key are in flight at once; a warp per key waited on each key in turn.
__device__ void key_scores(float* scores, const float* qs, const void* k, int dt, i64 kb, i64 ks, i64 n, i64 d) {
    int vec = dt == DT_F32 && (d & 3) == 0 && (kb & 3) == 0 && (ks & 3) == 0;
    for (i64 j = threadIdx.x; j < n; j += blockDim.x) {
        i64 base = kb + j * ks;
        float acc = 0.0f;
        if (vec) {
            const float4* row = (const float4*)((const float*)k + base);
#pragma unroll 16
            for (i64 c = 0; c < d / 4; ++c) {
                float4 x = row[c];
                acc += qs[4 * c] * x.x + qs[4 * c + 1] * x.y + qs[4 * c + 2] * x.z + qs[4 * c + 3] * x.w;
            }
        } else {
#pragma unroll 8
            for (i64 c = 0; c < d; ++c) acc += qs[c] * ldf(k, dt, base + c);
        }
        scores[j] = acc;
    }
}

// Each warp of the block sums p_j * v_j over its keys j = warp, warp + warps, ... < n into
// its own row part[warp * dv + c] (lanes split the dv channels; value row j starts at
// vb + j * vs). The caller syncs, then adds the warps' rows.
__device__ void warp_weighted_values(float* part, const float* scores, i64 n, const void* v, int dt, i64 vb,
                                     i64 vs, i64 dv) {
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    for (i64 c0 = 0; c0 < dv; c0 += 32 * 8) {
        float acc[8];
#pragma unroll
        for (int t = 0; t < 8; ++t) acc[t] = 0.0f;
        // Unrolled so that several keys' value loads are in flight per warp.
#pragma unroll 4
        for (i64 j = warp; j < n; j += warps) {
            float p = scores[j];
#pragma unroll
            for (int t = 0; t < 8; ++t) {
                i64 c = c0 + lane + 32 * t;
                if (c < dv) acc[t] += p * ldf(v, dt, vb + j * vs + c);
            }
        }
#pragma unroll
        for (int t = 0; t < 8; ++t) {
            i64 c = c0 + lane + 32 * t;
            if (c < dv) part[warp * dv + c] = acc[t];
        }
    }
}

extern "C" __global__ void tl_attention(void* out, const void* q, Lay lq, const void* k, Lay lk, const void* v, Lay lv,
                                       int dt, const void* mask, Lay lm, int mdt, int has_mask,
                                       i64 batch, i64 hq, i64 sq, i64 sk, i64 d, i64 dv, i64 group, float scale) {
    extern __shared__ float scores[];
    __shared__ float sh[32];
    i64 row = blockIdx.x;
    i64 s = row % sq;
    i64 h = (row / sq) % hq;
    i64 b = row / (sq * hq);
    i64 kvh = h / group;
    for (i64 j = threadIdx.x; j < sk; j += blockDim.x) {
        float acc = 0.0f;
        for (i64 c = 0; c < d; ++c)
            acc += ldf(q, dt, off4(lq, b, h, s, c)) * ldf(k, dt, off4(lk, b, kvh, j, c));
        acc *= scale;
        if (has_mask) {
            float mv = ldf(mask, mdt, off4(lm, b, h, s, j));
            if (mdt == DT_BOOL) acc = mv != 0.0f ? acc : NEG_INF_F; else acc += mv;
        }
        scores[j] = acc;
    }
    __syncthreads();
    float inv = softmax_in_place(scores, sk, sh);
    for (i64 c = threadIdx.x; c < dv; c += blockDim.x) {
        float acc = 0.0f;
        for (i64 j = 0; j < sk; ++j) acc += scores[j] * ldf(v, dt, off4(lv, b, kvh, j, c));
        stf(out, dt, row * dv + c, acc * inv);
    }
}

// Attention for operands whose last dim is unit-stride (the common case), one block of
// ATT_THREADS threads per query row: a thread per key for the scores (key_scores), then each
// warp takes keys in turn with its lanes splitting the value channels; scores stay in shared
// memory. Same results as
// tl_attention (softmax in f32; a fully masked row gives zeros, a NaN row NaN).
#define ATT_THREADS 256
extern "C" __global__ void tl_attention_rows(void* out, const void* q, Lay lq, const void* k, Lay lk, const void* v,
                                             Lay lv, int dt, const void* mask, Lay lm, int mdt, int has_mask,
                                             i64 hq, i64 sq, i64 sk, i64 d, i64 dv, i64 group, float scale) {
    extern __shared__ float smem[];
    float* scores = smem;                 // sk
    float* qs = smem + sk;                // d
    float* part = qs + d;                 // (ATT_THREADS / 32) * dv
    __shared__ float sh[32];
    const int warps = ATT_THREADS / 32;
    i64 row = blockIdx.x;
    i64 s = row % sq, h = (row / sq) % hq, b = row / (sq * hq), kvh = h / group;
    int r = lq.rank;
    i64 qb = off4(lq, b, h, s, 0);
    i64 kb = off4(lk, b, kvh, 0, 0), ks = lk.strides[r - 2];
    i64 vb = off4(lv, b, kvh, 0, 0), vs = lv.strides[r - 2];
    for (i64 c = threadIdx.x; c < d; c += ATT_THREADS) qs[c] = ldf(q, dt, qb + c) * scale;
    __syncthreads();
    key_scores(scores, qs, k, dt, kb, ks, sk, d);
    if (has_mask) {
        for (i64 j = threadIdx.x; j < sk; j += ATT_THREADS) {
            float mv = ldf(mask, mdt, off4(lm, b, h, s, j));
            scores[j] = mdt == DT_BOOL ? (mv != 0.0f ? scores[j] : NEG_INF_F) : scores[j] + mv;
        }
    }
    __syncthreads();
    float inv = softmax_in_place(scores, sk, sh);
    // Each warp sums p_j v_j over its keys for every channel (lanes split the channels), then
    // the warps' partial rows are added.
    warp_weighted_values(part, scores, sk, v, dt, vb, vs, dv);
    __syncthreads();
    for (i64 c = threadIdx.x; c < dv; c += ATT_THREADS) {
        float total = 0.0f;
        for (int w = 0; w < warps; ++w) total += part[w * dv + c];
        stf(out, dt, row * dv + c, total * inv);
    }
}

// Causal attention of rank-3 [heads, seq, dim] operands with unit-stride rows (a prefill):
// one block per (kv head, query row s) computes the `group` query heads that share the kv
// head, so each key and value row is read once for all of them, and only the keys the row
// may see (j <= offset + s) are read at all. A thread per key scores it against every
// query head (qs and scores in shared memory); a warp per head takes the softmax; then
// threads own one value channel for a quarter (ATTC_KEY_GROUPS) of the keys, accumulating
// every head at once, and the quarters are added. group <= ATTC_MAX_GROUP, dv <= 64.
#define ATTC_THREADS 256
#define ATTC_MAX_GROUP 8
#define ATTC_KEY_GROUPS 4
extern "C" __global__ void tl_attention_causal(void* out, const void* q, Lay lq, const void* k, Lay lk,
                                               const void* v, Lay lv, int dt, i64 hq, i64 sq, i64 sk,
                                               i64 d, i64 dv, i64 group, i64 offset, float scale) {
    extern __shared__ float smem[];
    i64 kvh = blockIdx.x / sq, s = blockIdx.x % sq;
    i64 nk = offset + s + 1;
    if (nk > sk) nk = sk;
    float* qs = smem;                              // group * d
    float* scores = qs + group * d;                // group * nk
    float* part = scores + group * nk;             // ATTC_KEY_GROUPS * group * dv
    __shared__ float inv[ATTC_MAX_GROUP];
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    for (i64 t = threadIdx.x; t < group * d; t += ATTC_THREADS) {
        i64 g = t / d, c = t - g * d;
        qs[t] = ldf(q, dt, off4(lq, 0, kvh * group + g, s, c)) * scale;
    }
    __syncthreads();
    i64 kb = off4(lk, 0, kvh, 0, 0), ks = lk.strides[1];
    for (i64 j = threadIdx.x; j < nk; j += ATTC_THREADS) {
        float acc[ATTC_MAX_GROUP];
#pragma unroll
        for (int g = 0; g < ATTC_MAX_GROUP; ++g) acc[g] = 0.0f;
#pragma unroll 8
        for (i64 c = 0; c < d; ++c) {
            float kv = ldf(k, dt, kb + j * ks + c);
#pragma unroll
            for (int g = 0; g < ATTC_MAX_GROUP; ++g)
                if (g < group) acc[g] += qs[g * d + c] * kv;
        }
#pragma unroll
        for (int g = 0; g < ATTC_MAX_GROUP; ++g)
            if (g < group) scores[g * nk + j] = acc[g];
    }
    __syncthreads();
    // A warp per head: max, exp and sum with warp reductions only.
    for (i64 g = warp; g < group; g += ATTC_THREADS / 32) {
        float* row = scores + g * nk;
        float m = NEG_INF_F;
        for (i64 j = lane; j < nk; j += 32) { float x = row[j]; m = (ISNAN(m) || m > x) ? m : x; }
        for (int o = 16; o > 0; o >>= 1) {
            float y = __shfl_xor_sync(0xffffffffu, m, o);
            m = (ISNAN(m) || m > y) ? m : y;
        }
        float sum = 0.0f;
        for (i64 j = lane; j < nk; j += 32) {
            float p = ISNAN(m) ? NAN_F : expf(row[j] - m);
            row[j] = p;
            sum += p;
        }
        sum = warp_sum(sum);
        if (lane == 0) inv[g] = ISNAN(m) ? NAN_F : (sum > 0.0f ? 1.0f / sum : 0.0f);
    }
    __syncthreads();
    i64 vb = off4(lv, 0, kvh, 0, 0), vs = lv.strides[1];
    int c = threadIdx.x % 64, kg = threadIdx.x / 64;
    if (c < dv) {
        float acc[ATTC_MAX_GROUP];
#pragma unroll
        for (int g = 0; g < ATTC_MAX_GROUP; ++g) acc[g] = 0.0f;
#pragma unroll 4
        for (i64 j = kg; j < nk; j += ATTC_KEY_GROUPS) {
            float x = ldf(v, dt, vb + j * vs + c);
#pragma unroll
            for (int g = 0; g < ATTC_MAX_GROUP; ++g)
                if (g < group) acc[g] += scores[g * nk + j] * x;
        }
#pragma unroll
        for (int g = 0; g < ATTC_MAX_GROUP; ++g)
            if (g < group) part[(kg * group + g) * dv + c] = acc[g];
    }
    __syncthreads();
    for (i64 t = threadIdx.x; t < group * dv; t += ATTC_THREADS) {
        i64 g = t / dv, cc = t - g * dv;
        float total = 0.0f;
        for (int q4 = 0; q4 < ATTC_KEY_GROUPS; ++q4) total += part[(q4 * group + g) * dv + cc];
        stf(out, dt, ((kvh * group + g) * sq + s) * dv + cc, total * inv[g]);
    }
}

// Decoding attention over a long key sequence, split over the keys (flash-decoding): block
// (row, split) takes keys [split * chunk, ...) of one query row (no mask), and writes its
// running max, its sum of exp(score - max) and its unnormalised sum of p * v; then
// tl_attention_combine merges the splits of each row. Unit-stride rows as tl_attention_rows.
#define SPLIT_THREADS 128
extern "C" __global__ void tl_attention_split(float* part, const void* q, Lay lq, const void* k, Lay lk,
                                              const void* v, Lay lv, int dt, i64 hq, i64 sk, i64 d, i64 dv,
                                              i64 group, float scale, i64 chunk, i64 splits) {
    extern __shared__ float smem[];
    float* scores = smem;        // chunk
    float* qs = smem + chunk;    // d
    float* acc_w = qs + d;       // (SPLIT_THREADS / 32) * dv
    __shared__ float sh[32];
    const int warps = SPLIT_THREADS / 32;
    i64 row = blockIdx.x / splits, split = blockIdx.x % splits;
    i64 h = row % hq, b = row / hq, kvh = h / group;
    int r = lq.rank;
    i64 qb = off4(lq, b, h, 0, 0);
    i64 kb = off4(lk, b, kvh, 0, 0), ks = lk.strides[r - 2];
    i64 vb = off4(lv, b, kvh, 0, 0), vs = lv.strides[r - 2];
    i64 j0 = split * chunk, n = sk - j0 < chunk ? sk - j0 : chunk;
    for (i64 c = threadIdx.x; c < d; c += SPLIT_THREADS) qs[c] = ldf(q, dt, qb + c) * scale;
    __syncthreads();
    key_scores(scores, qs, k, dt, kb + j0 * ks, ks, n, d);
    __syncthreads();
    float m = NEG_INF_F;
    for (i64 j = threadIdx.x; j < n; j += SPLIT_THREADS) { float x = scores[j]; m = (ISNAN(m) || m > x) ? m : x; }
    m = block_max_f(m, sh);
    float l = 0.0f;
    for (i64 j = threadIdx.x; j < n; j += SPLIT_THREADS) {
        float p = (m == NEG_INF_F) ? 0.0f : expf(scores[j] - m);
        scores[j] = p;
        l += p;
    }
    l = block_sum_f(l, sh);
    float* out = part + (row * splits + split) * (dv + 2);
    warp_weighted_values(acc_w, scores, n, v, dt, vb + j0 * vs, vs, dv);
    __syncthreads();
    for (i64 c = threadIdx.x; c < dv; c += SPLIT_THREADS) {
        float total = 0.0f;
        for (int w = 0; w < warps; ++w) total += acc_w[w * dv + c];
        out[2 + c] = total;
    }
    if (threadIdx.x == 0) { out[0] = m; out[1] = l; }
}

// Merges the splits of tl_attention_split: out[row, c] = sum_s e^(m_s - M) o_s[c] / sum_s e^(m_s - M) l_s.
extern "C" __global__ void tl_attention_combine(void* out, int dt, const float* part, i64 splits, i64 dv) {
    i64 row = blockIdx.x;
    const float* p = part + row * splits * (dv + 2);
    float big = NEG_INF_F;
    for (i64 s = 0; s < splits; ++s) { float x = p[s * (dv + 2)]; big = (ISNAN(big) || big > x) ? big : x; }
    float total = 0.0f;
    for (i64 s = 0; s < splits; ++s) {
        float x = p[s * (dv + 2)];
        total += (x == NEG_INF_F) ? 0.0f : expf(x - big) * p[s * (dv + 2) + 1];
    }
    float inv = total > 0.0f ? 1.0f / total : 0.0f;
    if (ISNAN(big)) inv = NAN_F;
    for (i64 c = threadIdx.x; c < dv; c += blockDim.x) {
        float acc = 0.0f;
        for (i64 s = 0; s < splits; ++s) {
            float x = p[s * (dv + 2)];
            if (x != NEG_INF_F) acc += expf(x - big) * p[s * (dv + 2) + 2 + c];
        }
        stf(out, dt, row * dv + c, acc * inv);
    }
}
