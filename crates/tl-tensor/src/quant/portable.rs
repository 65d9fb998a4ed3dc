//! Portable per-row dot products of packed rows with f32 vectors: the reference kernels and
//! the fallback on CPUs without AVX2/FMA/F16C. Sums run in f32 within a block and f64 across
//! blocks.

use super::{GgmlType, QK_K, f16_at, k_scale_min};
use half::slice::HalfFloatSliceExt;
use half::{bf16, f16};

/// Lanes of independent partial sums in the kernels below: without them the compiler may not
/// reorder the f32 additions and so cannot vectorize the loops.
const LANES: usize = 8;

fn lane_total(acc: [f32; LANES]) -> f32 {
    acc.iter().sum()
}

/// 2^23 as f32: `f32::from_bits(MAGIC_BITS | n) - MAGIC` is `n` for small `n`.
const MAGIC: f32 = 8_388_608.0;
const MAGIC_BITS: u32 = 0x4B00_0000;

/// A byte as f32 minus `bias`. Or-ing the byte into the mantissa of 2^23 converts it without an
/// integer-to-float instruction for bytes (SSE2 has none), so loops using this vectorize.
#[inline(always)]
fn byte_to_f32(v: u8, bias: f32) -> f32 {
    f32::from_bits(MAGIC_BITS | v as u32) - (MAGIC + bias)
}

/// Dot product of two equal-length slices in `LANES` lanes.
#[inline(always)]
fn lane_dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0f32; LANES];
    let full = a.len() / LANES * LANES;
    for (ca, cb) in a[..full]
        .chunks_exact(LANES)
        .zip(b[..full].chunks_exact(LANES))
    {
        for l in 0..LANES {
            lanes[l] += ca[l] * cb[l];
        }
    }
    let tail: f32 = a[full..].iter().zip(&b[full..]).map(|(p, q)| p * q).sum();
    lane_total(lanes) + tail
}

/// Sum over a 32-value sub-block of `q(i) * x[i]` and of `x[i]`, in `LANES` lanes.
#[inline(always)]
fn sub_block_dot(x: &[f32; 32], q: impl Fn(usize) -> u8) -> (f32, f32) {
    let (mut sq, mut sx) = ([0f32; LANES], [0f32; LANES]);
    for j in 0..32 / LANES {
        for l in 0..LANES {
            let i = j * LANES + l;
            sq[l] += byte_to_f32(q(i), 0.0) * x[i];
            sx[l] += x[i];
        }
    }
    (lane_total(sq), lane_total(sx))
}

/// Plain dot of float values decoded by `value` from `row` (`width` bytes each) with `x`.
#[inline(always)]
fn float_dot(row: &[u8], x: &[f32], width: usize, value: impl Fn(&[u8]) -> f32) -> f64 {
    let mut acc = 0f64;
    for (xs, c) in x.chunks(256).zip(row.chunks(256 * width)) {
        let mut lanes = [0f32; LANES];
        let full = xs.len() / LANES * LANES;
        for j in (0..full).step_by(LANES) {
            for l in 0..LANES {
                lanes[l] += xs[j + l] * value(&c[(j + l) * width..(j + l + 1) * width]);
            }
        }
        let mut s = lane_total(lanes);
        for j in full..xs.len() {
            s += xs[j] * value(&c[j * width..(j + 1) * width]);
        }
        acc += s as f64;
    }
    acc
}

/// Dot product of one packed row with `x` (both `x.len()` values long), reading the blocks
/// directly. Sums run in f32 within a block and f64 across blocks.
#[inline(always)]
pub(crate) fn dot_row(kind: GgmlType, row: &[u8], x: &[f32]) -> f32 {
    let bb = kind.block_bytes();
    let mut acc = 0f64;
    match kind {
        GgmlType::F32 => {
            acc = float_dot(row, x, 4, |b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        }
        GgmlType::F16 => {
            // Decode a chunk at a time with `half`'s slice conversion, which uses the CPU's
            // F16C instructions when present (per-value conversion is several times slower).
            let (mut halves, mut floats) = ([f16::ZERO; 256], [0f32; 256]);
            for (xs, c) in x.chunks(256).zip(row.chunks(512)) {
                let n = xs.len();
                for (h, b) in halves.iter_mut().zip(c.chunks_exact(2)) {
                    *h = f16::from_le_bytes([b[0], b[1]]);
                }
                halves[..n].convert_to_f32_slice(&mut floats[..n]);
                acc += lane_dot(&floats[..n], xs) as f64;
            }
        }
        GgmlType::BF16 => {
            acc = float_dot(row, x, 2, |b| bf16::from_le_bytes([b[0], b[1]]).to_f32())
        }
        GgmlType::Q4_0 | GgmlType::Q4_1 => {
            // Q4_0 values are d * (q - 8); Q4_1 values are d * q + m.
            let (q_at, zero) = if kind == GgmlType::Q4_0 {
                (2, 8.0)
            } else {
                (4, 0.0)
            };
            for (xs, b) in x.chunks_exact(32).zip(row.chunks_exact(bb)) {
                let xs: &[f32; 32] = xs.try_into().expect("32 values");
                let q: &[u8; 16] = b[q_at..q_at + 16].try_into().expect("16 bytes");
                // Low nibbles hold values 0..16, high nibbles values 16..32.
                let mut qv = [0f32; 32];
                for i in 0..16 {
                    qv[i] = byte_to_f32(q[i] & 0x0F, zero);
                    qv[i + 16] = byte_to_f32(q[i] >> 4, zero);
                }
                let sq = lane_dot(&qv, xs);
                let sx = if kind == GgmlType::Q4_1 {
                    xs.iter().sum::<f32>()
                } else {
                    0.0
                };
                let d = f16_at(b, 0);
                let min_term = if kind == GgmlType::Q4_1 {
                    f16_at(b, 2) * sx
                } else {
                    0.0
                };
                acc += (d * sq + min_term) as f64;
            }
        }
        GgmlType::Q8_0 => {
            for (xs, b) in x.chunks_exact(32).zip(row.chunks_exact(bb)) {
                let xs: &[f32; 32] = xs.try_into().expect("32 values");
                let q: &[u8; 32] = b[2..34].try_into().expect("32 bytes");
                // Flipping the sign bit maps the signed byte q to the unsigned q + 128.
                let mut qv = [0f32; 32];
                for i in 0..32 {
                    qv[i] = byte_to_f32(q[i] ^ 0x80, 128.0);
                }
                acc += (f16_at(b, 0) * lane_dot(&qv, xs)) as f64;
            }
        }
        GgmlType::Q4_K | GgmlType::Q5_K => {
            let five = kind == GgmlType::Q5_K;
            for (xs, b) in x.chunks_exact(QK_K).zip(row.chunks_exact(bb)) {
                let (d, dmin) = (f16_at(b, 0), f16_at(b, 2));
                let scales = &b[4..16];
                let (qh, qs): (&[u8], &[u8]) = if five {
                    (&b[16..48], &b[48..176])
                } else {
                    (&[0u8; 32], &b[16..144])
                };
                let qh: &[u8; 32] = qh.try_into().expect("32 bytes");
                let mut block = 0f32;
                for s in 0..8 {
                    let (sc, m) = k_scale_min(scales, s);
                    let chunk: &[u8; 32] = qs[32 * (s / 2)..32 * (s / 2) + 32]
                        .try_into()
                        .expect("32 bytes");
                    let xv: &[f32; 32] = xs[32 * s..32 * s + 32].try_into().expect("32 values");
                    let shift = 4 * (s % 2);
                    let (sq, sx) = sub_block_dot(xv, |l| {
                        ((chunk[l] >> shift) & 0x0F) | (((qh[l] >> s) & 1) << 4)
                    });
                    block += d * sc * sq - dmin * m * sx;
                }
                acc += block as f64;
            }
        }
        GgmlType::Q6_K => {
            for (xs, b) in x.chunks_exact(QK_K).zip(row.chunks_exact(bb)) {
                let (ql, qh, sc) = (&b[0..128], &b[128..192], &b[192..208]);
                let d = f16_at(b, 208);
                let mut block = 0f32;
                for half in 0..2 {
                    let hi_bytes: &[u8; 32] =
                        qh[32 * half..32 * half + 32].try_into().expect("32 bytes");
                    for quarter in 0..4 {
                        let lo_bytes: &[u8; 32] = ql[64 * half + 32 * (quarter % 2)..][..32]
                            .try_into()
                            .expect("32 bytes");
                        let base = 128 * half + 32 * quarter;
                        let xv: &[f32; 32] = xs[base..base + 32].try_into().expect("32 values");
                        let lo_shift = if quarter < 2 { 0 } else { 4 };
                        // Decode the quarter's 32 values, then dot each 16-value scale group.
                        let mut qv = [0f32; 32];
                        for (i, v) in qv.iter_mut().enumerate() {
                            let q = ((lo_bytes[i] >> lo_shift) & 0x0F)
                                | (((hi_bytes[i] >> (2 * quarter)) & 3) << 4);
                            *v = byte_to_f32(q, 32.0);
                        }
                        for g in 0..2 {
                            let group = 16 * g..16 * g + 16;
                            let s = lane_dot(&qv[group.clone()], &xv[group]);
                            block += (sc[(base + 16 * g) / 16] as i8) as f32 * s;
                        }
                    }
                }
                acc += (d * block) as f64;
            }
        }
    }
    acc as f32
}
