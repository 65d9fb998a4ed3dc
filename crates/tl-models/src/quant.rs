//! GGML tensor element formats: plain floats (F32, F16, BF16) and the block-quantized formats
//! Q4_0, Q4_1, Q8_0, Q4_K, Q5_K and Q6_K as laid out in GGUF files.
//!
//! Quantized weights stay packed: `matvec` reads the blocks directly and never expands the
//! matrix; `dequantize_row` expands one row (or any whole number of blocks) when a caller asks.
//!
//! Block layouts (little-endian, `f16` scales):
//! - Q4_0 (32 values, 18 bytes): `d`, 16 bytes of nibbles; value j < 16 is the low nibble of
//!   byte j, value j + 16 the high nibble; x = d * (q - 8).
//! - Q4_1 (32 values, 20 bytes): `d`, `m`, 16 bytes of nibbles as Q4_0; x = d * q + m.
//! - Q8_0 (32 values, 34 bytes): `d`, 32 signed bytes; x = d * q.
//! - Q4_K (256 values, 144 bytes): `d`, `dmin`, 12 bytes of packed 6-bit sub-block scales and
//!   mins (8 sub-blocks of 32), 128 bytes of nibbles: each 32-byte chunk c holds sub-block 2c in
//!   its low nibbles and 2c + 1 in its high nibbles; x = d * sc * q - dmin * m.
//! - Q5_K (256 values, 176 bytes): as Q4_K plus 32 bytes `qh` after the scales; bit s of
//!   `qh[l]` is the fifth bit of value l of sub-block s.
//! - Q6_K (256 values, 210 bytes): 128 bytes low nibbles `ql`, 64 bytes high 2-bit pairs `qh`,
//!   16 signed 8-bit scales (one per 16 values), then `d`; x = d * scale * (q - 32).

use crate::error::{ModelError, Result};
use half::slice::HalfFloatSliceExt;
use half::{bf16, f16};

/// Values per super-block of the K-quant formats.
pub const QK_K: usize = 256;

/// The tensor element types this crate can read. Ids are GGML's.
// Named as GGML names them (`Q4_K`), which is how users and files refer to them.
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GgmlType {
    F32,
    F16,
    BF16,
    Q4_0,
    Q4_1,
    Q8_0,
    Q4_K,
    Q5_K,
    Q6_K,
}

/// Every supported type, for iteration in tests and tools.
pub const ALL_TYPES: [GgmlType; 9] = [
    GgmlType::F32,
    GgmlType::F16,
    GgmlType::BF16,
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q8_0,
    GgmlType::Q4_K,
    GgmlType::Q5_K,
    GgmlType::Q6_K,
];

/// GGML's name for a type id, including types this crate does not read (for error messages).
pub fn ggml_type_name(id: u32) -> Option<&'static str> {
    Some(match id {
        0 => "F32",
        1 => "F16",
        2 => "Q4_0",
        3 => "Q4_1",
        6 => "Q5_0",
        7 => "Q5_1",
        8 => "Q8_0",
        9 => "Q8_1",
        10 => "Q2_K",
        11 => "Q3_K",
        12 => "Q4_K",
        13 => "Q5_K",
        14 => "Q6_K",
        15 => "Q8_K",
        16 => "IQ2_XXS",
        17 => "IQ2_XS",
        18 => "IQ3_XXS",
        19 => "IQ1_S",
        20 => "IQ4_NL",
        21 => "IQ3_S",
        22 => "IQ2_S",
        23 => "IQ4_XS",
        24 => "I8",
        25 => "I16",
        26 => "I32",
        27 => "I64",
        28 => "F64",
        29 => "IQ1_M",
        30 => "BF16",
        34 => "TQ1_0",
        35 => "TQ2_0",
        _ => return None,
    })
}

impl GgmlType {
    /// GGML's numeric id of the type, as stored in GGUF tensor infos.
    pub fn id(self) -> u32 {
        match self {
            GgmlType::F32 => 0,
            GgmlType::F16 => 1,
            GgmlType::Q4_0 => 2,
            GgmlType::Q4_1 => 3,
            GgmlType::Q8_0 => 8,
            GgmlType::Q4_K => 12,
            GgmlType::Q5_K => 13,
            GgmlType::Q6_K => 14,
            GgmlType::BF16 => 30,
        }
    }

    /// The supported type with this GGML id, or `None` (unknown or unsupported).
    pub fn from_id(id: u32) -> Option<GgmlType> {
        ALL_TYPES.into_iter().find(|t| t.id() == id)
    }

    /// The type's name (`Q4_K`, `F16`, ...), as GGML spells it.
    pub fn name(self) -> &'static str {
        ggml_type_name(self.id()).unwrap_or("?")
    }

    /// Parses a GGML type name (case-insensitive).
    pub fn from_name(name: &str) -> Option<GgmlType> {
        ALL_TYPES
            .into_iter()
            .find(|t| t.name().eq_ignore_ascii_case(name))
    }

    /// Values per block (1 for the float types).
    pub fn block_size(self) -> usize {
        match self {
            GgmlType::F32 | GgmlType::F16 | GgmlType::BF16 => 1,
            GgmlType::Q4_0 | GgmlType::Q4_1 | GgmlType::Q8_0 => 32,
            GgmlType::Q4_K | GgmlType::Q5_K | GgmlType::Q6_K => QK_K,
        }
    }

    /// Bytes per block.
    pub fn block_bytes(self) -> usize {
        match self {
            GgmlType::F32 => 4,
            GgmlType::F16 | GgmlType::BF16 => 2,
            GgmlType::Q4_0 => 18,
            GgmlType::Q4_1 => 20,
            GgmlType::Q8_0 => 34,
            GgmlType::Q4_K => 144,
            GgmlType::Q5_K => 176,
            GgmlType::Q6_K => 210,
        }
    }

    pub fn is_quantized(self) -> bool {
        self.block_size() > 1
    }

    /// Bytes taken by `n` values, or an error when `n` is not a whole number of blocks.
    pub fn bytes_for(self, n: usize) -> Result<usize> {
        let bs = self.block_size();
        if !n.is_multiple_of(bs) {
            return Err(ModelError::new(format!(
                "{} values are not a whole number of {} blocks of {bs}",
                n,
                self.name()
            )));
        }
        (n / bs).checked_mul(self.block_bytes()).ok_or_else(|| {
            ModelError::new(format!(
                "{n} values of {} overflow the address space",
                self.name()
            ))
        })
    }
}

fn f16_at(b: &[u8], i: usize) -> f32 {
    f16::from_le_bytes([b[i], b[i + 1]]).to_f32()
}

/// The 6-bit scale and min of sub-block `j` (0..8) of a Q4_K / Q5_K block.
fn k_scale_min(scales: &[u8], j: usize) -> (f32, f32) {
    if j < 4 {
        ((scales[j] & 63) as f32, (scales[j + 4] & 63) as f32)
    } else {
        let sc = (scales[j + 4] & 0x0F) | ((scales[j - 4] >> 6) << 4);
        let m = (scales[j + 4] >> 4) | ((scales[j] >> 6) << 4);
        (sc as f32, m as f32)
    }
}

fn check_sizes(kind: GgmlType, bytes: usize, values: usize, what: &str) -> Result<()> {
    let need = kind.bytes_for(values)?;
    if bytes != need {
        return Err(ModelError::new(format!(
            "{what}: {values} values of {} take {need} bytes, but {bytes} were given",
            kind.name()
        )));
    }
    Ok(())
}

/// Expands packed values of `kind` into `out` (whose length is the number of values; it must be
/// a whole number of blocks and `bytes` exactly their size).
pub fn dequantize_row(kind: GgmlType, bytes: &[u8], out: &mut [f32]) -> Result<()> {
    check_sizes(kind, bytes.len(), out.len(), "dequantize_row")?;
    let bb = kind.block_bytes();
    match kind {
        GgmlType::F32 => {
            for (o, c) in out.iter_mut().zip(bytes.chunks_exact(4)) {
                *o = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
            }
        }
        GgmlType::F16 => {
            let halves: Vec<f16> = bytes
                .chunks_exact(2)
                .map(|c| f16::from_le_bytes([c[0], c[1]]))
                .collect();
            halves.convert_to_f32_slice(out);
        }
        GgmlType::BF16 => {
            for (o, c) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                *o = bf16::from_le_bytes([c[0], c[1]]).to_f32();
            }
        }
        GgmlType::Q4_0 => {
            for (o, b) in out.chunks_exact_mut(32).zip(bytes.chunks_exact(bb)) {
                let d = f16_at(b, 0);
                for j in 0..16 {
                    let q = b[2 + j];
                    o[j] = d * ((q & 0x0F) as i32 - 8) as f32;
                    o[j + 16] = d * ((q >> 4) as i32 - 8) as f32;
                }
            }
        }
        GgmlType::Q4_1 => {
            for (o, b) in out.chunks_exact_mut(32).zip(bytes.chunks_exact(bb)) {
                let (d, m) = (f16_at(b, 0), f16_at(b, 2));
                for j in 0..16 {
                    let q = b[4 + j];
                    o[j] = d * (q & 0x0F) as f32 + m;
                    o[j + 16] = d * (q >> 4) as f32 + m;
                }
            }
        }
        GgmlType::Q8_0 => {
            for (o, b) in out.chunks_exact_mut(32).zip(bytes.chunks_exact(bb)) {
                let d = f16_at(b, 0);
                for j in 0..32 {
                    o[j] = d * (b[2 + j] as i8) as f32;
                }
            }
        }
        GgmlType::Q4_K | GgmlType::Q5_K => {
            let five = kind == GgmlType::Q5_K;
            for (o, b) in out.chunks_exact_mut(QK_K).zip(bytes.chunks_exact(bb)) {
                let (d, dmin) = (f16_at(b, 0), f16_at(b, 2));
                let scales = &b[4..16];
                let (qh, qs) = if five {
                    (&b[16..48], &b[48..176])
                } else {
                    (&b[0..0], &b[16..144])
                };
                for s in 0..8 {
                    let (sc, m) = k_scale_min(scales, s);
                    let (scale, offset) = (d * sc, dmin * m);
                    let chunk = &qs[32 * (s / 2)..32 * (s / 2) + 32];
                    let shift = 4 * (s % 2);
                    for l in 0..32 {
                        let mut q = (chunk[l] >> shift) & 0x0F;
                        if five {
                            q |= ((qh[l] >> s) & 1) << 4;
                        }
                        o[32 * s + l] = scale * q as f32 - offset;
                    }
                }
            }
        }
        GgmlType::Q6_K => {
            for (o, b) in out.chunks_exact_mut(QK_K).zip(bytes.chunks_exact(bb)) {
                let (ql, qh, sc) = (&b[0..128], &b[128..192], &b[192..208]);
                let d = f16_at(b, 208);
                for (e, v) in o.iter_mut().enumerate() {
                    let q = q6k_value(ql, qh, e);
                    *v = (d * (sc[e / 16] as i8) as f32) * q as f32;
                }
            }
        }
    }
    Ok(())
}

/// The signed 6-bit value `e` (0..256) of a Q6_K block, already offset by -32.
#[inline]
fn q6k_value(ql: &[u8], qh: &[u8], e: usize) -> i32 {
    let (half, r) = (e / 128, e % 128);
    let (quarter, l) = (r / 32, r % 32);
    // Quarters 0 and 1 use the low nibbles of ql[64h + l] and ql[64h + 32 + l], quarters 2 and 3
    // the high nibbles of the same bytes; the two high bits come from qh[32h + l].
    let lo_byte = ql[64 * half + 32 * (quarter % 2) + l];
    let lo = if quarter < 2 {
        lo_byte & 0x0F
    } else {
        lo_byte >> 4
    };
    let hi = (qh[32 * half + l] >> (2 * quarter)) & 3;
    (lo | (hi << 4)) as i32 - 32
}

/// Packs `x` (a whole number of blocks) into `kind`. Supported for the float types, Q8_0 and Q4_0,
/// following GGML's reference quantizers (Q8_0: d = max|x| / 127, q = round(x / d); Q4_0: d = the
/// value of largest magnitude / -8, q = min(15, trunc(x / d + 8.5))).
pub fn quantize_row(kind: GgmlType, x: &[f32]) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(kind.bytes_for(x.len())?);
    match kind {
        GgmlType::F32 => x
            .iter()
            .for_each(|v| out.extend_from_slice(&v.to_le_bytes())),
        GgmlType::F16 => x
            .iter()
            .for_each(|v| out.extend_from_slice(&f16::from_f32(*v).to_le_bytes())),
        GgmlType::BF16 => x
            .iter()
            .for_each(|v| out.extend_from_slice(&bf16::from_f32(*v).to_le_bytes())),
        GgmlType::Q8_0 => {
            for blk in x.chunks_exact(32) {
                let amax = blk.iter().fold(0f32, |a, v| a.max(v.abs()));
                let d = amax / 127.0;
                let id = if d != 0.0 { 1.0 / d } else { 0.0 };
                out.extend_from_slice(&f16::from_f32(d).to_le_bytes());
                out.extend(blk.iter().map(|v| (v * id).round() as i8 as u8));
            }
        }
        GgmlType::Q4_0 => {
            for blk in x.chunks_exact(32) {
                let max = blk
                    .iter()
                    .fold(0f32, |m, &v| if v.abs() > m.abs() { v } else { m });
                let d = max / -8.0;
                let id = if d != 0.0 { 1.0 / d } else { 0.0 };
                out.extend_from_slice(&f16::from_f32(d).to_le_bytes());
                let q = |v: f32| ((v * id + 8.5) as i32).clamp(0, 15) as u8;
                out.extend((0..16).map(|j| q(blk[j]) | (q(blk[j + 16]) << 4)));
            }
        }
        other => {
            return Err(ModelError::new(format!(
                "quantize_row: quantizing to {} is not supported (F32, F16, BF16, Q8_0, Q4_0 are)",
                other.name()
            )));
        }
    }
    Ok(out)
}

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
fn dot_row(kind: GgmlType, row: &[u8], x: &[f32]) -> f32 {
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

/// Below this many weights a mat-vec runs on the calling thread.
const PARALLEL_THRESHOLD: usize = 1 << 18;

/// y = W x for a row-major `rows` x `cols` weight matrix packed in `kind` (each row a whole
/// number of blocks), reading the packed blocks directly. Large matrices are split by rows over
/// as many threads as the machine has.
pub fn matvec(
    kind: GgmlType,
    weight: &[u8],
    rows: usize,
    cols: usize,
    x: &[f32],
    y: &mut [f32],
) -> Result<()> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    matvec_with_threads(kind, weight, rows, cols, x, y, threads)
}

/// `matvec` using at most `threads` threads (1 = the calling thread only).
pub fn matvec_with_threads(
    kind: GgmlType,
    weight: &[u8],
    rows: usize,
    cols: usize,
    x: &[f32],
    y: &mut [f32],
    threads: usize,
) -> Result<()> {
    let row_bytes = kind
        .bytes_for(cols)
        .map_err(|e| ModelError::new(format!("matvec: a row of {cols} columns: {}", e.problem)))?;
    let total = rows
        .checked_mul(row_bytes)
        .ok_or_else(|| ModelError::new("matvec: size overflow"))?;
    if weight.len() != total {
        return Err(ModelError::new(format!(
            "matvec: a [{rows}, {cols}] {} matrix takes {total} bytes, but {} were given",
            kind.name(),
            weight.len()
        )));
    }
    if x.len() != cols || y.len() != rows {
        return Err(ModelError::new(format!(
            "matvec: a [{rows}, {cols}] matrix needs x of length {cols} and y of length {rows} (got {} and {})",
            x.len(),
            y.len()
        )));
    }
    if rows * cols < PARALLEL_THRESHOLD || threads < 2 || rows < 2 {
        for (r, out) in y.iter_mut().enumerate() {
            *out = dot_row(kind, &weight[r * row_bytes..(r + 1) * row_bytes], x);
        }
        return Ok(());
    }
    let rows_per_thread = rows.div_ceil(threads.min(rows));
    std::thread::scope(|scope| {
        for (chunk_index, ys) in y.chunks_mut(rows_per_thread).enumerate() {
            let first = chunk_index * rows_per_thread;
            let w = &weight[first * row_bytes..(first + ys.len()) * row_bytes];
            scope.spawn(move || {
                for (out, row) in ys.iter_mut().zip(w.chunks_exact(row_bytes)) {
                    *out = dot_row(kind, row, x);
                }
            });
        }
    });
    Ok(())
}
