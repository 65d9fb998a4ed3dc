//! AVX-512 VNNI row dot products for Q8_0, Q4_0, Q4_1, Q4_K, Q5_K and Q6_K (x86-64 with AVX-512
//! F/BW/VL and VNNI, detected at run time; [`super::simd`]'s AVX2 kernels are used otherwise,
//! with f32 `x` for the K-quants).
//!
//! The arithmetic is the AVX2 kernels': `x` quantized once per call to 8-bit blocks of 32
//! ([`Q8Blocks`]), exact i32 sums per block (per 16 values for Q6_K), scaled in f32 by the
//! weight's and x's scales. What changes is the instruction count per block, which is what
//! bounds the AVX2 Q4_0 kernel (about 8 GB/s per core where one core reads 22): `vpdpbusd`
//! replaces the `maddubs` + `madd` pair, one 512-bit register holds 64 values, and a block's
//! scales are converted together and spread over the register's lanes by one permute.
//!
//! - Q4_0 / Q4_1: four blocks' 16 nibble bytes fill one register; its low nibbles are the first
//!   16 values of each block and its high nibbles the last 16. `x` is read in the matching
//!   order ([`Q8Blocks::reordered`]), so no shuffle runs per block.
//! - Q8_0: `vpdpbusd` multiplies unsigned by signed bytes, so the weights are offset to
//!   `q + 128` (one xor) and `128 * sum(x)` per block, known from quantizing `x`, is taken off.
//! - Q4_K / Q5_K: 64 bytes of nibbles hold four sub-blocks (low nibbles 4k and 4k + 2, high
//!   nibbles 4k + 1 and 4k + 3); `x` is reordered to match. The mins are one FMA per 256
//!   values; Q5_K's fifth bits are shifted into place from 32 bytes per block.
//! - Q6_K: the 4 low bits and 2 high bits are merged by one bit-select per 64 values; q is
//!   0..64 unsigned, and `32 * sum(x)` per 16 values ([`Q8Blocks::sum16`]) is taken off.
//!
//! [`panel_q4_0`], [`panel_q4_1`] and [`panel_q8_0`] dot 16 rows at once from
//! [`super::panels`]' layout: each 32-bit lane is one row, `x` enters as 4 broadcast bytes,
//! and a block's 16 sums are scaled by 16 `d` loaded together; 4-bit high nibbles are dotted
//! in place (`q << 4`) and shifted back once per block.

#![allow(clippy::missing_safety_doc)]

use super::GgmlType;
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
            && !turned_off()
    })
}

/// True when `TL_CPU_NO_AVX512` is set (to anything but empty or `0`): every AVX-512 path of
/// the CPU backend then steps aside for its AVX2 one, so the two can be compared.
pub(crate) fn turned_off() -> bool {
    std::env::var_os("TL_CPU_NO_AVX512").is_some_and(|v| !v.is_empty() && v != "0")
}

/// Blocks per step of the kernels below.
const GROUP: usize = 4;

/// `q` (8-bit blocks of 32) in the order the `kind` kernel below reads it, or empty where it
/// reads `q` in place:
/// - Q4_0 / Q4_1: for each group of four whole blocks, the first 16 values of each block
///   (64 bytes), then the last 16 of each (64 bytes); blocks after the last whole group are
///   left out (the kernels take them one at a time from the block order).
/// - Q4_K / Q5_K: blocks 0, 2, 1, 3 of each group of four (sub-blocks 2c and 2c + 1 share the
///   bytes of chunk c, as low and high nibbles).
pub(crate) fn reorder_for(kind: GgmlType, q: &[i8]) -> Vec<i8> {
    let whole = q.len() / (32 * GROUP) * (32 * GROUP);
    let mut out = Vec::with_capacity(whole);
    for g in q[..whole].chunks_exact(32 * GROUP) {
        match kind {
            GgmlType::Q4_0 | GgmlType::Q4_1 => {
                for half in 0..2 {
                    for blk in g.chunks_exact(32) {
                        out.extend_from_slice(&blk[16 * half..16 * half + 16]);
                    }
                }
            }
            GgmlType::Q4_K | GgmlType::Q5_K => {
                for b in [0, 2, 1, 3] {
                    out.extend_from_slice(&g[32 * b..32 * b + 32]);
                }
            }
            _ => return Vec::new(),
        }
    }
    out
}

/// True when [`PreparedX`](super::matvec::PreparedX) has an AVX-512 kernel for `kind`.
pub(crate) fn has_kernel(kind: GgmlType) -> bool {
    matches!(
        kind,
        GgmlType::Q8_0
            | GgmlType::Q4_0
            | GgmlType::Q4_1
            | GgmlType::Q4_K
            | GgmlType::Q5_K
            | GgmlType::Q6_K
    )
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

/// Dot of one Q4_0 (`Q4_1` false) or Q4_1 row with quantized `x` (reordered for it).
#[inline(always)]
unsafe fn dot_q4<const Q4_1: bool>(row: &[u8], x: &Q8Blocks) -> f32 {
    unsafe {
        let (bb, qs_at) = if Q4_1 { (20, 4) } else { (18, 2) };
        let nb = x.d.len().min(row.len() / bb);
        let groups = (nb / GROUP).min(x.reordered.len() / (32 * GROUP));
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
            let xh = x.reordered.as_ptr().add(32 * GROUP * g);
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

/// `out[r] = dot(row r, x)` for the 16 rows of one panel ([`super::panels`]' layout) of Q4_0
/// (`FORMAT` 0), Q4_1 (1) or Q8_0 (2).
#[inline(always)]
unsafe fn panel_dot<const FORMAT: u8>(panel: &[u8], x: &Q8Blocks, out: &mut [f32]) {
    unsafe {
        // Header and quant bytes of the 16 rows' block, as `panels` lays them out.
        let (header, quants) = match FORMAT {
            0 => (32, 256),
            1 => (64, 256),
            _ => (32, 512),
        };
        let pair_bytes = 2 * (header + quants);
        let nb = x.d.len();
        debug_assert!(panel.len() >= nb.div_ceil(2) * pair_bytes && out.len() >= 16);
        let low = _mm512_set1_epi8(0x0F);
        let high = _mm512_set1_epi8(0xF0u8 as i8);
        let flip = _mm512_set1_epi8(-128);
        let xq = x.q.as_ptr().cast::<i32>();
        let mut acc = [_mm512_setzero_ps(); 2];
        for b in 0..nb {
            let pair = panel.as_ptr().add(pair_bytes * (b / 2));
            let slot = b % 2;
            let heads = pair.add(header * slot);
            let qs = pair.add(2 * header + quants * slot);
            // Two chains per block so the dot products of one block overlap.
            let (mut p0, mut p1) = (_mm512_setzero_si512(), _mm512_setzero_si512());
            let sums = if FORMAT == 2 {
                // Signed q: dotted as q + 128 (unsigned), 128 sum(x) taken off below.
                for j in 0..4 {
                    let v0 = _mm512_loadu_si512(qs.add(128 * j).cast());
                    let v1 = _mm512_loadu_si512(qs.add(128 * j + 64).cast());
                    let x0 = _mm512_set1_epi32(xq.add(8 * b + 2 * j).read_unaligned());
                    let x1 = _mm512_set1_epi32(xq.add(8 * b + 2 * j + 1).read_unaligned());
                    p0 = _mm512_dpbusd_epi32(p0, _mm512_xor_si512(v0, flip), x0);
                    p1 = _mm512_dpbusd_epi32(p1, _mm512_xor_si512(v1, flip), x1);
                }
                _mm512_add_epi32(p0, p1)
            } else {
                for j in 0..4 {
                    let v = _mm512_loadu_si512(qs.add(64 * j).cast());
                    let x_lo = _mm512_set1_epi32(xq.add(8 * b + j).read_unaligned());
                    let x_hi = _mm512_set1_epi32(xq.add(8 * b + 4 + j).read_unaligned());
                    p0 = _mm512_dpbusd_epi32(p0, _mm512_and_si512(v, low), x_lo);
                    p1 = _mm512_dpbusd_epi32(p1, _mm512_and_si512(v, high), x_hi);
                }
                // The high nibbles were dotted as 16 q: exact, so one shift restores them.
                _mm512_add_epi32(p0, _mm512_srai_epi32::<4>(p1))
            };
            let d = _mm512_cvtph_ps(_mm256_loadu_si256(heads.cast()));
            let xd = _mm512_set1_ps(*x.d.get_unchecked(b));
            // x.sum = xd sum(q_x): the offset terms are multiples of it.
            let xs = _mm512_set1_ps(*x.sum.get_unchecked(b));
            let dots = _mm512_cvtepi32_ps(sums);
            acc[slot] = match FORMAT {
                // w = d (q - 8): d (xd sum(q q_x) - 8 x.sum).
                0 => _mm512_fmadd_ps(
                    d,
                    _mm512_fnmadd_ps(_mm512_set1_ps(8.0), xs, _mm512_mul_ps(dots, xd)),
                    acc[slot],
                ),
                // w = d q + m: d xd sum(q q_x) + m x.sum.
                1 => {
                    let m = _mm512_cvtph_ps(_mm256_loadu_si256(heads.add(32).cast()));
                    _mm512_fmadd_ps(
                        m,
                        xs,
                        _mm512_fmadd_ps(d, _mm512_mul_ps(dots, xd), acc[slot]),
                    )
                }
                // w = d q, dotted as q + 128: d (xd sum((q + 128) q_x) - 128 x.sum).
                _ => _mm512_fmadd_ps(
                    d,
                    _mm512_fnmadd_ps(_mm512_set1_ps(128.0), xs, _mm512_mul_ps(dots, xd)),
                    acc[slot],
                ),
            };
        }
        _mm512_storeu_ps(out.as_mut_ptr(), _mm512_add_ps(acc[0], acc[1]));
    }
}

/// `out[r] = dot(row r, x)` for the 16 rows of one Q4_K panel ([`super::panels`]' layout: per
/// super-block, 8 header fields of 16 rows (`d`, `dmin`, then the 12 packed scale bytes two
/// at a time) and 32 quant registers). The 6-bit scales and mins are unpacked lane by lane
/// (one row per 32-bit lane) with the same shifts as [`q4_k_scales_mins`].
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
pub(crate) unsafe fn panel_q4_k(panel: &[u8], x: &Q8Blocks, out: &mut [f32]) {
    unsafe {
        const HEADER: usize = 256;
        const QUANTS: usize = 2048;
        const PAIR: usize = 2 * (HEADER + QUANTS);
        let nb = x.d.len() / 8;
        debug_assert!(panel.len() >= nb.div_ceil(2) * PAIR && out.len() >= 16);
        let low = _mm512_set1_epi8(0x0F);
        let high = _mm512_set1_epi8(0xF0u8 as i8);
        let six = _mm512_set1_epi32(0x3F3F_3F3F);
        let four = _mm512_set1_epi32(0x0F0F_0F0F);
        let top = _mm512_set1_epi32(0x3030_3030);
        let byte = _mm512_set1_epi32(0xFF);
        let xq = x.q.as_ptr().cast::<i32>();
        let mut acc = _mm512_setzero_ps();
        for b in 0..nb {
            let pair = panel.as_ptr().add(PAIR * (b / 2));
            let slot = b % 2;
            let heads = pair.add(HEADER * slot);
            let qs = pair.add(2 * HEADER + QUANTS * slot);
            let field =
                |f: usize| _mm512_cvtepu16_epi32(_mm256_loadu_si256(heads.add(32 * f).cast()));
            let word = |f: usize| _mm512_or_si512(field(f), _mm512_slli_epi32::<16>(field(f + 1)));
            // Scale bytes 0..4, 4..8 and 8..12 of each row, one row per lane.
            let (a, bw, c) = (word(2), word(4), word(6));
            let sc = [
                _mm512_and_si512(a, six),
                _mm512_or_si512(
                    _mm512_and_si512(c, four),
                    _mm512_and_si512(_mm512_srli_epi32::<2>(a), top),
                ),
            ];
            let mn = [
                _mm512_and_si512(bw, six),
                _mm512_or_si512(
                    _mm512_and_si512(_mm512_srli_epi32::<4>(c), four),
                    _mm512_and_si512(_mm512_srli_epi32::<2>(bw), top),
                ),
            ];
            // Byte s % 4 of word s / 4, as f32.
            let pick = |w: &[__m512i; 2], s: usize| {
                let v = match s % 4 {
                    0 => w[s / 4],
                    1 => _mm512_srli_epi32::<8>(w[s / 4]),
                    2 => _mm512_srli_epi32::<16>(w[s / 4]),
                    _ => _mm512_srli_epi32::<24>(w[s / 4]),
                };
                _mm512_cvtepi32_ps(_mm512_and_si512(v, byte))
            };
            let mut sums = _mm512_setzero_ps();
            let mut mins = _mm512_setzero_ps();
            for chunk in 0..4 {
                // Chunk c: low nibbles are sub-block 2c, high nibbles 2c + 1.
                let (mut p0, mut p1) = (_mm512_setzero_si512(), _mm512_setzero_si512());
                for k in 0..8 {
                    let v = _mm512_loadu_si512(qs.add(64 * (8 * chunk + k)).cast());
                    let x0 = _mm512_set1_epi32(xq.add(64 * b + 16 * chunk + k).read_unaligned());
                    let x1 =
                        _mm512_set1_epi32(xq.add(64 * b + 16 * chunk + 8 + k).read_unaligned());
                    p0 = _mm512_dpbusd_epi32(p0, _mm512_and_si512(v, low), x0);
                    p1 = _mm512_dpbusd_epi32(p1, _mm512_and_si512(v, high), x1);
                }
                let dots = [p0, _mm512_srai_epi32::<4>(p1)];
                for (half, dot) in dots.iter().enumerate() {
                    let s = 2 * chunk + half;
                    let xd = _mm512_set1_ps(*x.d.get_unchecked(8 * b + s));
                    let xs = _mm512_set1_ps(*x.sum.get_unchecked(8 * b + s));
                    sums = _mm512_fmadd_ps(
                        _mm512_cvtepi32_ps(*dot),
                        _mm512_mul_ps(pick(&sc, s), xd),
                        sums,
                    );
                    mins = _mm512_fmadd_ps(pick(&mn, s), xs, mins);
                }
            }
            let d = _mm512_cvtph_ps(_mm256_loadu_si256(heads.cast()));
            let dmin = _mm512_cvtph_ps(_mm256_loadu_si256(heads.add(32).cast()));
            // w = d sc q - dmin m: d sum(sc xd sum(q q_x)) - dmin sum(m x.sum).
            acc = _mm512_fnmadd_ps(dmin, mins, _mm512_fmadd_ps(d, sums, acc));
        }
        _mm512_storeu_ps(out.as_mut_ptr(), acc);
    }
}

/// [`panel_dot`] for Q4_0 panels.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
pub(crate) unsafe fn panel_q4_0(panel: &[u8], x: &Q8Blocks, out: &mut [f32]) {
    unsafe { panel_dot::<0>(panel, x, out) }
}

/// [`panel_dot`] for Q4_1 panels.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
pub(crate) unsafe fn panel_q4_1(panel: &[u8], x: &Q8Blocks, out: &mut [f32]) {
    unsafe { panel_dot::<1>(panel, x, out) }
}

/// [`panel_dot`] for Q8_0 panels.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
pub(crate) unsafe fn panel_q8_0(panel: &[u8], x: &Q8Blocks, out: &mut [f32]) {
    unsafe { panel_dot::<2>(panel, x, out) }
}

#[inline(always)]
unsafe fn hsum256(v: __m256) -> f32 {
    unsafe {
        hsum128(_mm_add_ps(
            _mm256_castps256_ps128(v),
            _mm256_extractf128_ps::<1>(v),
        ))
    }
}

/// The eight 6-bit scales and the eight 6-bit mins of a Q4_K block, from its 12 scale bytes at
/// `p`, as one byte each (sub-block j in byte j). Bytes 0..4 hold scales 0..4 in their low
/// 6 bits, bytes 4..8 mins 0..4; bytes 8..12 hold the low 4 bits of scales and mins 4..8, whose
/// top 2 bits are the top bits of bytes 0..4 (scales) and 4..8 (mins).
#[inline(always)]
unsafe fn q4_k_scales_mins(p: *const u8) -> (u64, u64) {
    unsafe {
        let word = |k: usize| p.add(4 * k).cast::<u32>().read_unaligned();
        let (a, b, c) = (word(0), word(1), word(2));
        let sc = (a & 0x3F3F_3F3F) as u64
            | ((((c & 0x0F0F_0F0F) | ((a >> 2) & 0x3030_3030)) as u64) << 32);
        let m = (b & 0x3F3F_3F3F) as u64
            | (((((c >> 4) & 0x0F0F_0F0F) | ((b >> 2) & 0x3030_3030)) as u64) << 32);
        (sc, m)
    }
}

/// Eight bytes as eight f32.
#[inline(always)]
unsafe fn bytes_to_f32x8(v: u64) -> __m256 {
    unsafe { _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128(v as i64))) }
}

/// Dot of one Q4_K (`FIVE` false) or Q5_K row with quantized `x` (reordered for it), a
/// 256-value block per step. Sub-block j (32 values) is `d * sc_j * q - dmin * m_j`: its
/// integer sum with x's block j is scaled by `d * sc_j * dx_j`, and `dmin * m_j * dx_j *
/// sum(x_j)` is taken off. Q5_K adds a fifth bit per value: bit j of `qh[l]` for value l of
/// sub-block j.
#[inline(always)]
unsafe fn dot_k4<const FIVE: bool>(row: &[u8], x: &Q8Blocks) -> f32 {
    unsafe {
        let (bb, qs_at) = if FIVE { (176, 48) } else { (144, 16) };
        let nb = (x.d.len() / 8)
            .min(row.len() / bb)
            .min(x.reordered.len() / 256);
        let rp = row.as_ptr();
        let (nibble, fifth) = (_mm512_set1_epi8(0x0F), _mm512_set1_epi8(0x10));
        // Chunk pair k (sub-blocks 4k..4k+4): the low nibbles are sub-blocks 4k and 4k + 2,
        // the high nibbles 4k + 1 and 4k + 3, 8 lanes each.
        let lanes =
            |a: i32, b: i32| _mm512_set_epi32(b, b, b, b, b, b, b, b, a, a, a, a, a, a, a, a);
        let spread = [[lanes(0, 2), lanes(1, 3)], [lanes(4, 6), lanes(5, 7)]];
        let mut acc = [_mm512_setzero_ps(); 2];
        let mut off = _mm256_setzero_ps();
        for b in 0..nb {
            let blk = rp.add(bb * b);
            let d = _mm256_set1_ps(super::simd::f16_at(blk));
            let dmin = _mm256_set1_ps(super::simd::f16_at(blk.add(2)));
            let (sc, m) = q4_k_scales_mins(blk.add(4));
            let s = _mm256_mul_ps(
                _mm256_mul_ps(bytes_to_f32x8(sc), d),
                _mm256_loadu_ps(x.d.as_ptr().add(8 * b)),
            );
            off = _mm256_fmadd_ps(
                _mm256_mul_ps(bytes_to_f32x8(m), dmin),
                _mm256_loadu_ps(x.sum.as_ptr().add(8 * b)),
                off,
            );
            let s = _mm512_castps256_ps512(s);
            // Q5_K: qh beside qh >> 2, so bit j of the first half and bit j + 2 of the second
            // land at the same position (sub-blocks 4k + j and 4k + j + 2 of one register).
            let qh = if FIVE {
                let h = _mm256_loadu_si256(blk.add(16).cast());
                _mm512_inserti64x4::<1>(_mm512_castsi256_si512(h), _mm256_srli_epi16::<2>(h))
            } else {
                _mm512_setzero_si512()
            };
            let xq = x.reordered.as_ptr().add(256 * b);
            for (pair, idx) in spread.iter().enumerate() {
                let w = _mm512_loadu_si512(blk.add(qs_at + 64 * pair).cast());
                let mut lo = _mm512_and_si512(w, nibble);
                let mut hi = _mm512_and_si512(_mm512_srli_epi16::<4>(w), nibble);
                if FIVE {
                    // Bit 4k (low nibbles) and bit 4k + 1 (high nibbles) moved to bit 4.
                    let (lo5, hi5) = if pair == 0 {
                        (_mm512_slli_epi16::<4>(qh), _mm512_slli_epi16::<3>(qh))
                    } else {
                        (qh, _mm512_srli_epi16::<1>(qh))
                    };
                    lo = _mm512_or_si512(lo, _mm512_and_si512(lo5, fifth));
                    hi = _mm512_or_si512(hi, _mm512_and_si512(hi5, fifth));
                }
                let xp = xq.add(128 * pair);
                let plo =
                    _mm512_dpbusd_epi32(_mm512_setzero_si512(), lo, _mm512_loadu_si512(xp.cast()));
                let phi = _mm512_dpbusd_epi32(
                    _mm512_setzero_si512(),
                    hi,
                    _mm512_loadu_si512(xp.add(64).cast()),
                );
                acc[0] = _mm512_fmadd_ps(
                    _mm512_cvtepi32_ps(plo),
                    _mm512_permutexvar_ps(idx[0], s),
                    acc[0],
                );
                acc[1] = _mm512_fmadd_ps(
                    _mm512_cvtepi32_ps(phi),
                    _mm512_permutexvar_ps(idx[1], s),
                    acc[1],
                );
            }
        }
        _mm512_reduce_add_ps(_mm512_add_ps(acc[0], acc[1])) - hsum256(off)
    }
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
pub(crate) unsafe fn dot_q4_k(row: &[u8], x: &Q8Blocks) -> f32 {
    unsafe { dot_k4::<false>(row, x) }
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
pub(crate) unsafe fn dot_q5_k(row: &[u8], x: &Q8Blocks) -> f32 {
    unsafe { dot_k4::<true>(row, x) }
}

/// Dot of one Q6_K row with quantized `x` (with its `sum16`), a 256-value block per step.
/// Value group g (16 values) is `d * sc_g * (q - 32)` with q in 0..64: its integer sum with x
/// is scaled by `d * sc_g * dx`, and `32 * d * sc_g * dx * sum16(x)_g` is taken off.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
pub(crate) unsafe fn dot_q6_k(row: &[u8], x: &Q8Blocks) -> f32 {
    unsafe {
        const BB: usize = 210;
        let nb = (x.d.len() / 8).min(row.len() / BB).min(x.sum16.len() / 16);
        let rp = row.as_ptr();
        let (low4, six) = (_mm512_set1_epi8(0x0F), _mm512_set1_epi8(0x3F));
        // Register k of a block (64 values) holds groups 4k..4k+4, 4 lanes each.
        let groups = |k: i32| {
            _mm512_set_epi32(
                4 * k + 3,
                4 * k + 3,
                4 * k + 3,
                4 * k + 3,
                4 * k + 2,
                4 * k + 2,
                4 * k + 2,
                4 * k + 2,
                4 * k + 1,
                4 * k + 1,
                4 * k + 1,
                4 * k + 1,
                4 * k,
                4 * k,
                4 * k,
                4 * k,
            )
        };
        let spread = [groups(0), groups(1), groups(2), groups(3)];
        // Group g of 16 values lies in x's block g / 2.
        let block_of_group = _mm512_set_epi32(7, 7, 6, 6, 5, 5, 4, 4, 3, 3, 2, 2, 1, 1, 0, 0);
        let mut acc = [_mm512_setzero_ps(); 2];
        let mut off = _mm512_setzero_ps();
        for b in 0..nb {
            let blk = rp.add(BB * b);
            let d = _mm512_set1_ps(super::simd::f16_at(blk.add(208)));
            let sc = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(blk.add(192).cast())));
            let dx = _mm512_permutexvar_ps(
                block_of_group,
                _mm512_castps256_ps512(_mm256_loadu_ps(x.d.as_ptr().add(8 * b))),
            );
            let s = _mm512_mul_ps(_mm512_mul_ps(sc, d), dx);
            off = _mm512_fmadd_ps(s, _mm512_loadu_ps(x.sum16.as_ptr().add(16 * b)), off);
            let xq = x.q.as_ptr().add(256 * b);
            for half in 0..2 {
                // 64 bytes of low nibbles: values 0..64 of the half in their low nibbles,
                // values 64..128 in their high nibbles; 32 bytes of 2-bit pairs: bits 0-1 for
                // values 0..32, 2-3 for 32..64, 4-5 for 64..96, 6-7 for 96..128.
                let l = _mm512_loadu_si512(blk.add(64 * half).cast());
                let h = _mm256_loadu_si256(blk.add(128 + 32 * half).cast());
                let h =
                    _mm512_inserti64x4::<1>(_mm512_castsi256_si512(h), _mm256_srli_epi16::<2>(h));
                // 0xCA selects bits of the second operand where the first is set, else the third.
                let first = _mm512_and_si512(
                    _mm512_ternarylogic_epi32::<0xCA>(low4, l, _mm512_slli_epi16::<4>(h)),
                    six,
                );
                let second = _mm512_and_si512(
                    _mm512_ternarylogic_epi32::<0xCA>(low4, _mm512_srli_epi16::<4>(l), h),
                    six,
                );
                let xp = xq.add(128 * half);
                let p0 = _mm512_dpbusd_epi32(
                    _mm512_setzero_si512(),
                    first,
                    _mm512_loadu_si512(xp.cast()),
                );
                let p1 = _mm512_dpbusd_epi32(
                    _mm512_setzero_si512(),
                    second,
                    _mm512_loadu_si512(xp.add(64).cast()),
                );
                let s = [
                    _mm512_permutexvar_ps(spread[2 * half], s),
                    _mm512_permutexvar_ps(spread[2 * half + 1], s),
                ];
                acc[0] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p0), s[0], acc[0]);
                acc[1] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p1), s[1], acc[1]);
            }
        }
        _mm512_reduce_add_ps(_mm512_add_ps(acc[0], acc[1])) - 32.0 * _mm512_reduce_add_ps(off)
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
        let scales: &[usize] = match kind {
            GgmlType::Q4_1 | GgmlType::Q4_K | GgmlType::Q5_K => &[0, 2],
            GgmlType::Q6_K => &[208],
            _ => &[0],
        };
        for blk in row.chunks_exact_mut(bb) {
            for &at in scales {
                let v = f16::from_f32(rng.random_range(-0.05f32..0.05));
                blk[at..at + 2].copy_from_slice(&v.to_le_bytes());
            }
        }
        row
    }

    /// The row expanded to f32 by the reference decoder.
    fn expand(kind: GgmlType, row: &[u8], n: usize) -> Vec<f32> {
        let mut w = vec![0f32; n];
        dequantize_blocks(kind, row, &mut w);
        w
    }

    #[test]
    fn vnni_dots_match_an_f64_reference_for_every_block_count() {
        if !available() {
            eprintln!("skipped: this CPU has no AVX-512 VNNI (or TL_CPU_NO_AVX512 is set)");
            return;
        }
        let mut rng = ChaCha8Rng::seed_from_u64(12);
        let cases: [(GgmlType, &[usize]); 6] = [
            // Whole groups of four blocks, and 1 to 3 blocks after them.
            (GgmlType::Q8_0, &[1, 2, 3, 4, 5, 7, 8, 11, 64, 67, 176]),
            (GgmlType::Q4_0, &[1, 2, 3, 4, 5, 7, 8, 11, 64, 67, 176]),
            (GgmlType::Q4_1, &[1, 2, 3, 4, 5, 7, 8, 11, 64, 67, 176]),
            (GgmlType::Q4_K, &[1, 2, 3, 8, 22]),
            (GgmlType::Q5_K, &[1, 2, 3, 8, 22]),
            (GgmlType::Q6_K, &[1, 2, 3, 8, 22]),
        ];
        for (kind, counts) in cases {
            assert!(has_kernel(kind));
            for &blocks in counts {
                let n = blocks * kind.block_size();
                let xv: Vec<f32> = (0..n).map(|_| rng.random_range(-2.0f32..2.0)).collect();
                let x = Q8Blocks::new(&xv, Some(kind));
                let mut worst = 0f64;
                for _ in 0..8 {
                    let row = random_row(kind, blocks, &mut rng);
                    let w = expand(kind, &row, n);
                    // The dot in f64 with x as the kernels see it (its 8-bit blocks).
                    let want: f64 = (0..n)
                        .map(|i| w[i] as f64 * x.q[i] as f64 * x.d[i / 32] as f64)
                        .sum();
                    // SAFETY: `available()` checked the CPU; row and x hold `n` values.
                    let got = unsafe {
                        match kind {
                            GgmlType::Q8_0 => dot_q8_0(&row, &x),
                            GgmlType::Q4_0 => dot_q4_0(&row, &x),
                            GgmlType::Q4_1 => dot_q4_1(&row, &x),
                            GgmlType::Q4_K => dot_q4_k(&row, &x),
                            GgmlType::Q5_K => dot_q5_k(&row, &x),
                            _ => dot_q6_k(&row, &x),
                        }
                    } as f64;
                    // Relative to sum |w x| (the dot itself may cancel to near zero).
                    let scale: f64 = w.iter().zip(&xv).map(|(a, b)| (a * b).abs() as f64).sum();
                    worst = worst.max((got - want).abs() / scale.max(1e-30));
                }
                assert!(worst < 1e-5, "{kind:?} with {blocks} blocks: error {worst}");
            }
        }
    }
}
