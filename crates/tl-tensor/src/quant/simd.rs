//! AVX2 + FMA + F16C row dot products for the mat-vec of `linear` (x86-64, detected at run
//! time; [`super::portable`] is the fallback and the reference).
//!
//! Float rows (F32, F16, BF16) are widened in registers and multiplied with f32 `x` by FMA.
//! Q8_0, Q4_0 and Q4_1 rows are dotted in integers with `x` quantized once per call to 8-bit
//! blocks of 32 ([`Q8Blocks`], llama.cpp's approach): `maddubs`/`madd` give exact i32 block
//! sums, scaled by the two block scales in f32. Measured against dequantizing each block to
//! f32 (the portable kernel compiled for AVX2) the integer path reads Q4_0 about twice as fast,
//! which is what keeps these formats at memory speed on two cores. The K-quants use the
//! portable kernel compiled for AVX2.

#![allow(clippy::missing_safety_doc)]

use super::{GgmlType, portable};
use half::{bf16, f16};
use std::arch::x86_64::*;
use std::sync::OnceLock;

/// True when the CPU has AVX2, FMA and F16C (checked once).
pub(crate) fn available() -> bool {
    static HAVE: OnceLock<bool> = OnceLock::new();
    *HAVE.get_or_init(|| {
        is_x86_feature_detected!("avx2")
            && is_x86_feature_detected!("fma")
            && is_x86_feature_detected!("f16c")
    })
}

/// `x` quantized to signed 8-bit blocks of 32 (scale `d = max|x| / 127`, kept in f32), with
/// each block's `d * sum(q)` for the formats that add a per-block offset.
pub(crate) struct Q8Blocks {
    pub q: Vec<i8>,
    pub d: Vec<f32>,
    pub sum: Vec<f32>,
    /// `q` in the order one AVX-512 kernel reads it ([`super::avx512::reorder_for`]); empty
    /// for the formats that read `q` in place.
    pub reordered: Vec<i8>,
    /// `sum(q)` over each 16 values, for the Q6_K kernel (empty for the others).
    pub sum16: Vec<f32>,
}

impl Q8Blocks {
    /// Quantizes `x`, whose length must be a multiple of 32; `vnni_kind` also builds what the
    /// AVX-512 kernel for that format reads besides `q`.
    pub fn new(x: &[f32], vnni_kind: Option<GgmlType>) -> Q8Blocks {
        let nb = x.len() / 32;
        let (mut q, mut d, mut sum) = (vec![0i8; nb * 32], vec![0f32; nb], vec![0f32; nb]);
        if available() {
            // SAFETY: the CPU has AVX2, FMA and F16C.
            unsafe { quantize_blocks_avx2(x, &mut q, &mut d, &mut sum) };
        } else {
            quantize_blocks(x, &mut q, &mut d, &mut sum);
        }
        let reordered = vnni_kind.map_or_else(Vec::new, |k| super::avx512::reorder_for(k, &q));
        let sum16 = if vnni_kind == Some(GgmlType::Q6_K) {
            q.chunks_exact(16)
                .map(|g| g.iter().map(|&v| v as i32).sum::<i32>() as f32)
                .collect()
        } else {
            Vec::new()
        };
        Q8Blocks {
            q,
            d,
            sum,
            reordered,
            sum16,
        }
    }
}

/// Fills `q`, `d` and `sum` of [`Q8Blocks`] from `x` (rounding half away from zero).
#[inline(always)]
fn quantize_blocks(x: &[f32], q: &mut [i8], d: &mut [f32], sum: &mut [f32]) {
    for (b, xs) in x.chunks_exact(32).enumerate() {
        let amax = xs.iter().fold(0f32, |a, v| a.max(v.abs()));
        let scale = amax / 127.0;
        let inv = if scale > 0.0 { 1.0 / scale } else { 0.0 };
        let mut s = 0i32;
        for (o, &v) in q[b * 32..b * 32 + 32].iter_mut().zip(xs) {
            let r = (v * inv).round() as i8;
            *o = r;
            s += r as i32;
        }
        d[b] = scale;
        sum[b] = scale * s as f32;
    }
}

/// [`quantize_blocks`] compiled for AVX2, where `round` is inlined and the loops vectorise
/// (without it every value is a call to the C library's `roundf`).
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn quantize_blocks_avx2(x: &[f32], q: &mut [i8], d: &mut [f32], sum: &mut [f32]) {
    quantize_blocks(x, q, d, sum)
}

#[inline(always)]
unsafe fn hsum(v: __m256) -> f32 {
    unsafe {
        let lo = _mm256_castps256_ps128(v);
        let hi = _mm256_extractf128_ps(v, 1);
        let s = _mm_add_ps(lo, hi);
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
        _mm_cvtss_f32(s)
    }
}

/// The f16 at `p` (little-endian) as f32, through F16C.
#[inline(always)]
pub(crate) unsafe fn f16_at(p: *const u8) -> f32 {
    unsafe {
        let bits = u16::from_le_bytes([*p, *p.add(1)]);
        _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(bits as i32)))
    }
}

/// Dot of a row of little-endian f32 bytes (any alignment) with `x`.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn dot_f32(row: &[u8], x: &[f32]) -> f32 {
    unsafe {
        let n = (row.len() / 4).min(x.len());
        let (wp, xp) = (row.as_ptr().cast::<f32>(), x.as_ptr());
        let mut acc = [_mm256_setzero_ps(); 4];
        let mut i = 0;
        while i + 32 <= n {
            for (k, a) in acc.iter_mut().enumerate() {
                let wv = _mm256_loadu_ps(wp.add(i + 8 * k));
                *a = _mm256_fmadd_ps(wv, _mm256_loadu_ps(xp.add(i + 8 * k)), *a);
            }
            i += 32;
        }
        while i + 8 <= n {
            acc[0] = _mm256_fmadd_ps(
                _mm256_loadu_ps(wp.add(i)),
                _mm256_loadu_ps(xp.add(i)),
                acc[0],
            );
            i += 8;
        }
        let mut s = hsum(_mm256_add_ps(
            _mm256_add_ps(acc[0], acc[1]),
            _mm256_add_ps(acc[2], acc[3]),
        ));
        for (j, &xj) in x.iter().enumerate().take(n).skip(i) {
            s += wp.add(j).read_unaligned() * xj;
        }
        s
    }
}

/// Dot of a row of little-endian f16 bytes (any alignment) with `x`.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn dot_f16(row: &[u8], x: &[f32]) -> f32 {
    unsafe {
        let n = (row.len() / 2).min(x.len());
        let (wp, xp) = (row.as_ptr().cast::<__m128i>(), x.as_ptr());
        let mut acc = [_mm256_setzero_ps(); 4];
        let mut i = 0;
        while i + 32 <= n {
            for (k, a) in acc.iter_mut().enumerate() {
                let wv = _mm256_cvtph_ps(_mm_loadu_si128(wp.byte_add(2 * (i + 8 * k))));
                *a = _mm256_fmadd_ps(wv, _mm256_loadu_ps(xp.add(i + 8 * k)), *a);
            }
            i += 32;
        }
        while i + 8 <= n {
            let wv = _mm256_cvtph_ps(_mm_loadu_si128(wp.byte_add(2 * i)));
            acc[0] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(xp.add(i)), acc[0]);
            i += 8;
        }
        let mut s = hsum(_mm256_add_ps(
            _mm256_add_ps(acc[0], acc[1]),
            _mm256_add_ps(acc[2], acc[3]),
        ));
        for j in i..n {
            s += f16::from_le_bytes([row[2 * j], row[2 * j + 1]]).to_f32() * x[j];
        }
        s
    }
}

/// Dot of a row of little-endian bf16 bytes (any alignment) with `x`: a bf16 is the top
/// half of an f32.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn dot_bf16(row: &[u8], x: &[f32]) -> f32 {
    unsafe {
        let n = (row.len() / 2).min(x.len());
        let (wp, xp) = (row.as_ptr().cast::<__m128i>(), x.as_ptr());
        let widen = |p: *const __m128i| {
            _mm256_castsi256_ps(_mm256_slli_epi32(
                _mm256_cvtepu16_epi32(_mm_loadu_si128(p)),
                16,
            ))
        };
        let mut acc = [_mm256_setzero_ps(); 4];
        let mut i = 0;
        while i + 32 <= n {
            for (k, a) in acc.iter_mut().enumerate() {
                let wv = widen(wp.byte_add(2 * (i + 8 * k)));
                *a = _mm256_fmadd_ps(wv, _mm256_loadu_ps(xp.add(i + 8 * k)), *a);
            }
            i += 32;
        }
        while i + 8 <= n {
            let wv = widen(wp.byte_add(2 * i));
            acc[0] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(xp.add(i)), acc[0]);
            i += 8;
        }
        let mut s = hsum(_mm256_add_ps(
            _mm256_add_ps(acc[0], acc[1]),
            _mm256_add_ps(acc[2], acc[3]),
        ));
        for j in i..n {
            s += bf16::from_le_bytes([row[2 * j], row[2 * j + 1]]).to_f32() * x[j];
        }
        s
    }
}

/// Exact i32 sums of 4 adjacent products of unsigned `a` and signed `b` bytes, as f32.
#[inline(always)]
unsafe fn dot_u8_i8(a: __m256i, b: __m256i) -> __m256 {
    unsafe {
        // maddubs pairs stay below 2 * 255 * 127 < 2^16 only for a <= 128, true here.
        let p16 = _mm256_maddubs_epi16(a, b);
        _mm256_cvtepi32_ps(_mm256_madd_epi16(p16, _mm256_set1_epi16(1)))
    }
}

/// Scaled products of Q8_0 block `b` (at `blk`) with block `b` of `x`.
#[inline(always)]
unsafe fn q8_0_block(blk: *const u8, x: &Q8Blocks, b: usize) -> (__m256, __m256) {
    unsafe {
        let qw = _mm256_loadu_si256(blk.add(2).cast());
        let qx = _mm256_loadu_si256(x.q.as_ptr().add(32 * b).cast());
        // Signed times signed through the unsigned-signed multiply: |w| * (x * sign(w)).
        let p = dot_u8_i8(_mm256_sign_epi8(qw, qw), _mm256_sign_epi8(qx, qw));
        (_mm256_set1_ps(f16_at(blk) * *x.d.get_unchecked(b)), p)
    }
}

/// Dot of the one Q8_0 block at `blk` with block `b` of `x` (the AVX-512 kernel's tail).
#[inline(always)]
pub(crate) unsafe fn dot_q8_0_block(blk: *const u8, x: &Q8Blocks, b: usize) -> f32 {
    unsafe {
        let (s, p) = q8_0_block(blk, x, b);
        hsum(_mm256_mul_ps(s, p))
    }
}

/// Dot of one Q8_0 row with quantized `x` (the row holds `x.d.len()` blocks). Two blocks
/// per step into two accumulators, so the FMA latency chains overlap.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn dot_q8_0(row: &[u8], x: &Q8Blocks) -> f32 {
    unsafe {
        let nb = x.d.len().min(row.len() / 34);
        let rp = row.as_ptr();
        let (mut acc0, mut acc1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
        let mut b = 0;
        while b + 2 <= nb {
            let (s0, p0) = q8_0_block(rp.add(34 * b), x, b);
            let (s1, p1) = q8_0_block(rp.add(34 * (b + 1)), x, b + 1);
            acc0 = _mm256_fmadd_ps(s0, p0, acc0);
            acc1 = _mm256_fmadd_ps(s1, p1, acc1);
            b += 2;
        }
        if b < nb {
            let (s0, p0) = q8_0_block(rp.add(34 * b), x, b);
            acc0 = _mm256_fmadd_ps(s0, p0, acc0);
        }
        hsum(_mm256_add_ps(acc0, acc1))
    }
}

/// Scale, integer products and offset term of Q4_0 / Q4_1 block `b` (at `blk`) with block `b`
/// of `x`. Q4_0: w = d (q - 8), so sum w x = d sum(q x) - 8 d sum(x); Q4_1: w = d q + m.
#[inline(always)]
unsafe fn q4_block<const Q4_1: bool>(
    blk: *const u8,
    x: &Q8Blocks,
    b: usize,
) -> (__m256, __m256, f32) {
    unsafe {
        let qs_at = if Q4_1 { 4 } else { 2 };
        let raw = _mm_loadu_si128(blk.add(qs_at).cast());
        // Low nibbles are values 0..16, high nibbles values 16..32.
        let q = _mm256_and_si256(
            _mm256_set_m128i(_mm_srli_epi16(raw, 4), raw),
            _mm256_set1_epi8(0x0F),
        );
        let p = dot_u8_i8(q, _mm256_loadu_si256(x.q.as_ptr().add(32 * b).cast()));
        let d = f16_at(blk);
        let m = if Q4_1 { f16_at(blk.add(2)) } else { -8.0 * d };
        (
            _mm256_set1_ps(d * *x.d.get_unchecked(b)),
            p,
            m * *x.sum.get_unchecked(b),
        )
    }
}

/// Dot of the one Q4_0 / Q4_1 block at `blk` with block `b` of `x` (the AVX-512 kernel's tail).
#[inline(always)]
pub(crate) unsafe fn dot_q4_block<const Q4_1: bool>(blk: *const u8, x: &Q8Blocks, b: usize) -> f32 {
    unsafe {
        let (s, p, o) = q4_block::<Q4_1>(blk, x, b);
        hsum(_mm256_mul_ps(s, p)) + o
    }
}

/// Dot of one Q4_0 (`Q4_1` false) or Q4_1 row with quantized `x`, two blocks per step.
#[inline(always)]
unsafe fn dot_q4<const Q4_1: bool>(row: &[u8], x: &Q8Blocks) -> f32 {
    unsafe {
        let bb = if Q4_1 { 20 } else { 18 };
        let nb = x.d.len().min(row.len() / bb);
        let rp = row.as_ptr();
        let (mut acc0, mut acc1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
        let (mut off0, mut off1) = (0f32, 0f32);
        let mut b = 0;
        while b + 2 <= nb {
            let (s0, p0, o0) = q4_block::<Q4_1>(rp.add(bb * b), x, b);
            let (s1, p1, o1) = q4_block::<Q4_1>(rp.add(bb * (b + 1)), x, b + 1);
            acc0 = _mm256_fmadd_ps(s0, p0, acc0);
            acc1 = _mm256_fmadd_ps(s1, p1, acc1);
            off0 += o0;
            off1 += o1;
            b += 2;
        }
        if b < nb {
            let (s0, p0, o0) = q4_block::<Q4_1>(rp.add(bb * b), x, b);
            acc0 = _mm256_fmadd_ps(s0, p0, acc0);
            off0 += o0;
        }
        hsum(_mm256_add_ps(acc0, acc1)) + off0 + off1
    }
}

#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn dot_q4_0(row: &[u8], x: &Q8Blocks) -> f32 {
    unsafe { dot_q4::<false>(row, x) }
}

#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn dot_q4_1(row: &[u8], x: &Q8Blocks) -> f32 {
    unsafe { dot_q4::<true>(row, x) }
}

/// Dot of one K-quant row (Q4_K, Q5_K, Q6_K) with f32 `x`: each 256-value block is expanded
/// into registers-sized stack memory by the portable decoder (vectorised here) and dotted
/// by FMA, which is several times faster than decoding value by value inside the dot.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn dot_kquant(kind: GgmlType, row: &[u8], x: &[f32]) -> f32 {
    unsafe {
        let bb = kind.block_bytes();
        let mut block = [0f32; super::QK_K];
        let mut acc = [_mm256_setzero_ps(); 4];
        for (b, xs) in row.chunks_exact(bb).zip(x.chunks_exact(super::QK_K)) {
            super::dequantize_blocks(kind, b, &mut block);
            let (bp, xp) = (block.as_ptr(), xs.as_ptr());
            for i in (0..super::QK_K).step_by(32) {
                for (k, a) in acc.iter_mut().enumerate() {
                    let wv = _mm256_loadu_ps(bp.add(i + 8 * k));
                    *a = _mm256_fmadd_ps(wv, _mm256_loadu_ps(xp.add(i + 8 * k)), *a);
                }
            }
        }
        hsum(_mm256_add_ps(
            _mm256_add_ps(acc[0], acc[1]),
            _mm256_add_ps(acc[2], acc[3]),
        ))
    }
}

/// The portable kernel for any format, compiled with AVX2/FMA so its lane loops vectorise.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn dot_row_generic(kind: GgmlType, row: &[u8], x: &[f32]) -> f32 {
    portable::dot_row(kind, row, x)
}

/// Expands one row of packed values with the portable decoder compiled for AVX2.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn dequantize_row_avx2(kind: GgmlType, row: &[u8], out: &mut [f32]) {
    super::dequantize_blocks(kind, row, out);
}
