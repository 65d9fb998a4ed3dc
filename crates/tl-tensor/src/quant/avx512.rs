//! AVX-512 VNNI row dot products for Q8_0, Q4_0 and Q4_1 (x86-64 with AVX-512 F/BW/VL and
//! VNNI, detected at run time; [`super::simd`]'s AVX2 kernels are used otherwise).
//!
//! The arithmetic is the AVX2 kernels': `x` quantized once per call to 8-bit blocks of 32
//! ([`Q8Blocks`]), exact i32 block sums, scaled by the two block scales in f32. What changes is
//! the instruction count per block, which is what bounds the AVX2 Q4_0 kernel (about 8 GB/s
//! per core where one core reads 22): `vpdpbusd` replaces the `maddubs` + `madd` pair, one
//! 512-bit register holds four blocks, and the four weight scales are converted together.
//!
//! - Q4_0 / Q4_1: four blocks' 16 nibble bytes fill one register; its low nibbles are the first
//!   16 values of each block and its high nibbles the last 16. `x` is read in the matching
//!   order ([`Q8Blocks::halves`]), so no shuffle runs per block.
//! - Q8_0: `vpdpbusd` multiplies unsigned by signed bytes, so the weights are offset to
//!   `q + 128` (one xor) and `128 * sum(x)` per block, known from quantizing `x`, is taken off.

#![allow(clippy::missing_safety_doc)]

use super::simd::Q8Blocks;
use std::arch::x86_64::*;
use std::sync::OnceLock;

/// True when the CPU has AVX-512 F, BW, VL and VNNI besides AVX2, FMA and F16C (checked once).
/// `TL_CPU_NO_AVX512=1` turns these kernels off (to compare them with the AVX2 ones).
pub(crate) fn available() -> bool {
    static HAVE: OnceLock<bool> = OnceLock::new();
    *HAVE.get_or_init(|| {
        super::simd::available()
            && is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512bw")
            && is_x86_feature_detected!("avx512vl")
            && is_x86_feature_detected!("avx512vnni")
            && std::env::var_os("TL_CPU_NO_AVX512").is_none_or(|v| v.is_empty() || v == "0")
    })
}

/// Blocks per step of the kernels below.
const GROUP: usize = 4;

/// `q` (8-bit blocks of 32) reordered for the 4-bit kernels: for each group of four whole
/// blocks, the first 16 values of each block (64 bytes), then the last 16 of each (64 bytes).
/// Blocks after the last whole group are left out (the kernels take them one at a time from
/// the block order).
pub(crate) fn nibble_halves(q: &[i8]) -> Vec<i8> {
    let groups = q.len() / (32 * GROUP);
    let mut out = Vec::with_capacity(groups * 32 * GROUP);
    for g in q.chunks_exact(32 * GROUP) {
        for half in 0..2 {
            for blk in g.chunks_exact(32) {
                out.extend_from_slice(&blk[16 * half..16 * half + 16]);
            }
        }
    }
    out
}

/// The four f16 values at `p`, `p + stride`, `p + 2 stride`, `p + 3 stride`, as f32.
#[inline(always)]
unsafe fn f16x4(p: *const u8, stride: usize) -> __m128 {
    unsafe {
        let at = |k: usize| p.add(k * stride).cast::<u16>().read_unaligned() as u64;
        let bits = at(0) | (at(1) << 16) | (at(2) << 32) | (at(3) << 48);
        _mm_cvtph_ps(_mm_cvtsi64_si128(bits as i64))
    }
}

#[inline(always)]
unsafe fn hsum128(v: __m128) -> f32 {
    unsafe {
        let s = _mm_add_ps(v, _mm_movehl_ps(v, v));
        _mm_cvtss_f32(_mm_add_ss(s, _mm_shuffle_ps(s, s, 1)))
    }
}

/// Lane -> block of a register holding four blocks' sums (4 lanes each).
#[inline(always)]
unsafe fn lanes_of_four() -> __m512i {
    unsafe { _mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0) }
}

/// Dot of one Q4_0 (`Q4_1` false) or Q4_1 row with quantized `x` whose `halves` were built.
#[inline(always)]
unsafe fn dot_q4<const Q4_1: bool>(row: &[u8], x: &Q8Blocks) -> f32 {
    unsafe {
        let (bb, qs_at) = if Q4_1 { (20, 4) } else { (18, 2) };
        let nb = x.d.len().min(row.len() / bb);
        let groups = (nb / GROUP).min(x.halves.len() / (32 * GROUP));
        let rp = row.as_ptr();
        let nibble = _mm512_set1_epi8(0x0F);
        let spread = lanes_of_four();
        let mut acc = [_mm512_setzero_ps(); 2];
        let mut off = _mm_setzero_ps();
        for g in 0..groups {
            let blk = rp.add(bb * GROUP * g);
            let mut w = _mm512_castsi128_si512(_mm_loadu_si128(blk.add(qs_at).cast()));
            w = _mm512_inserti32x4::<1>(w, _mm_loadu_si128(blk.add(bb + qs_at).cast()));
            w = _mm512_inserti32x4::<2>(w, _mm_loadu_si128(blk.add(2 * bb + qs_at).cast()));
            w = _mm512_inserti32x4::<3>(w, _mm_loadu_si128(blk.add(3 * bb + qs_at).cast()));
            let lo = _mm512_and_si512(w, nibble);
            let hi = _mm512_and_si512(_mm512_srli_epi16::<4>(w), nibble);
            let xh = x.halves.as_ptr().add(32 * GROUP * g);
            let p = _mm512_dpbusd_epi32(_mm512_setzero_si512(), lo, _mm512_loadu_si512(xh.cast()));
            let p = _mm512_dpbusd_epi32(p, hi, _mm512_loadu_si512(xh.add(64).cast()));
            let d = f16x4(blk, bb);
            let s = _mm_mul_ps(d, _mm_loadu_ps(x.d.as_ptr().add(GROUP * g)));
            let s = _mm512_permutexvar_ps(spread, _mm512_castps128_ps512(s));
            // Two accumulators so consecutive groups' FMAs do not wait on each other.
            acc[g & 1] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), s, acc[g & 1]);
            // Q4_0: w = d (q - 8), so the offset term is -8 d sum(x); Q4_1: w = d q + m.
            let m = if Q4_1 { f16x4(blk.add(2), bb) } else { d };
            off = _mm_fmadd_ps(m, _mm_loadu_ps(x.sum.as_ptr().add(GROUP * g)), off);
        }
        let mut s = _mm512_reduce_add_ps(_mm512_add_ps(acc[0], acc[1]))
            + hsum128(off) * if Q4_1 { 1.0 } else { -8.0 };
        for b in GROUP * groups..nb {
            s += super::simd::dot_q4_block::<Q4_1>(rp.add(bb * b), x, b);
        }
        s
    }
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
pub(crate) unsafe fn dot_q4_0(row: &[u8], x: &Q8Blocks) -> f32 {
    unsafe { dot_q4::<false>(row, x) }
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
pub(crate) unsafe fn dot_q4_1(row: &[u8], x: &Q8Blocks) -> f32 {
    unsafe { dot_q4::<true>(row, x) }
}

/// Dot of one Q8_0 row with quantized `x`, four blocks (two registers) per step.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
pub(crate) unsafe fn dot_q8_0(row: &[u8], x: &Q8Blocks) -> f32 {
    unsafe {
        const BB: usize = 34;
        let nb = x.d.len().min(row.len() / BB);
        let groups = nb / GROUP;
        let rp = row.as_ptr();
        let flip = _mm512_set1_epi8(-128);
        // Lanes 0..8 take the first block's scale, 8..16 the second's.
        let first_pair = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
        let second_pair = _mm512_set_epi32(3, 3, 3, 3, 3, 3, 3, 3, 2, 2, 2, 2, 2, 2, 2, 2);
        let two_blocks = |blk: *const u8| {
            let w = _mm512_castsi256_si512(_mm256_loadu_si256(blk.add(2).cast()));
            let w = _mm512_inserti64x4::<1>(w, _mm256_loadu_si256(blk.add(BB + 2).cast()));
            _mm512_xor_si512(w, flip)
        };
        let mut acc = [_mm512_setzero_ps(); 2];
        let mut off = _mm_setzero_ps();
        for g in 0..groups {
            let blk = rp.add(BB * GROUP * g);
            let xq = x.q.as_ptr().add(32 * GROUP * g);
            let p01 = _mm512_dpbusd_epi32(
                _mm512_setzero_si512(),
                two_blocks(blk),
                _mm512_loadu_si512(xq.cast()),
            );
            let p23 = _mm512_dpbusd_epi32(
                _mm512_setzero_si512(),
                two_blocks(blk.add(2 * BB)),
                _mm512_loadu_si512(xq.add(64).cast()),
            );
            let d = f16x4(blk, BB);
            let s =
                _mm512_castps128_ps512(_mm_mul_ps(d, _mm_loadu_ps(x.d.as_ptr().add(GROUP * g))));
            acc[0] = _mm512_fmadd_ps(
                _mm512_cvtepi32_ps(p01),
                _mm512_permutexvar_ps(first_pair, s),
                acc[0],
            );
            acc[1] = _mm512_fmadd_ps(
                _mm512_cvtepi32_ps(p23),
                _mm512_permutexvar_ps(second_pair, s),
                acc[1],
            );
            // The sums used q + 128: take off 128 d sum(x) per block.
            off = _mm_fmadd_ps(d, _mm_loadu_ps(x.sum.as_ptr().add(GROUP * g)), off);
        }
        let mut s = _mm512_reduce_add_ps(_mm512_add_ps(acc[0], acc[1])) - 128.0 * hsum128(off);
        for b in GROUP * groups..nb {
            s += super::simd::dot_q8_0_block(rp.add(BB * b), x, b);
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::super::{GgmlType, dequantize_blocks};
    use super::*;
    use half::f16;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// Random blocks of `kind` with finite scales of a sensible size.
    fn random_row(kind: GgmlType, blocks: usize, rng: &mut ChaCha8Rng) -> Vec<u8> {
        let bb = kind.block_bytes();
        let mut row: Vec<u8> = (0..blocks * bb).map(|_| rng.random()).collect();
        let scales: &[usize] = if kind == GgmlType::Q4_1 {
            &[0, 2]
        } else {
            &[0]
        };
        for blk in row.chunks_exact_mut(bb) {
            for &at in scales {
                let v = f16::from_f32(rng.random_range(-0.05f32..0.05));
                blk[at..at + 2].copy_from_slice(&v.to_le_bytes());
            }
        }
        row
    }

    /// The dot in f64 of the expanded row with x as the kernels see it (dequantized 8-bit).
    fn reference(kind: GgmlType, row: &[u8], x: &Q8Blocks) -> f64 {
        let mut w = vec![0f32; x.q.len()];
        dequantize_blocks(kind, row, &mut w);
        w.iter()
            .zip(&x.q)
            .enumerate()
            .map(|(i, (&wv, &qv))| wv as f64 * qv as f64 * x.d[i / 32] as f64)
            .sum()
    }

    #[test]
    fn vnni_dots_match_an_f64_reference_for_every_block_count() {
        if !available() {
            eprintln!("skipped: this CPU has no AVX-512 VNNI (or TL_CPU_NO_AVX512 is set)");
            return;
        }
        let mut rng = ChaCha8Rng::seed_from_u64(12);
        for kind in [GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::Q4_1] {
            // Whole groups of four blocks, and 1 to 3 blocks after them.
            for blocks in [1, 2, 3, 4, 5, 7, 8, 11, 64, 67, 176] {
                let xv: Vec<f32> = (0..32 * blocks)
                    .map(|_| rng.random_range(-2.0f32..2.0))
                    .collect();
                let x = Q8Blocks::new(&xv, true);
                let mut worst = 0f64;
                for _ in 0..8 {
                    let row = random_row(kind, blocks, &mut rng);
                    let want = reference(kind, &row, &x);
                    // SAFETY: `available()` checked the CPU; row and x hold `blocks` blocks.
                    let got = unsafe {
                        match kind {
                            GgmlType::Q8_0 => dot_q8_0(&row, &x),
                            GgmlType::Q4_0 => dot_q4_0(&row, &x),
                            _ => dot_q4_1(&row, &x),
                        }
                    } as f64;
                    let scale: f64 = {
                        let mut w = vec![0f32; xv.len()];
                        dequantize_blocks(kind, &row, &mut w);
                        w.iter().zip(&xv).map(|(a, b)| (a * b).abs() as f64).sum()
                    };
                    worst = worst.max((got - want).abs() / scale.max(1e-30));
                }
                // Relative to sum |w x| (the dot itself may cancel to near zero).
                assert!(worst < 1e-5, "{kind:?} with {blocks} blocks: error {worst}");
            }
        }
    }
}
