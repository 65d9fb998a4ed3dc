//! GGML tensor element formats: plain floats (F32, F16, BF16) and the block-quantized formats
//! Q4_0, Q4_1, Q8_0, Q4_K, Q5_K and Q6_K as laid out in GGUF files.
//!
//! Quantized weights stay packed: `matvec` (and `Tensor::linear` on a quantized weight) reads
//! the blocks directly and never expands the matrix; `dequantize_row` expands one row (or any
//! whole number of blocks) when a caller asks. `tl-models` re-exports this module.
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

use crate::error::{Result, TensorError};
use half::slice::HalfFloatSliceExt;
use half::{bf16, f16};
use matvec::{PackedRows, matvec_rows};
pub use matvec::{XPrecision, quantizes_x};

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

    /// The tensor dtype holding values of this format.
    pub fn dtype(self) -> crate::DType {
        use crate::DType;
        match self {
            GgmlType::F32 => DType::F32,
            GgmlType::F16 => DType::F16,
            GgmlType::BF16 => DType::BF16,
            GgmlType::Q4_0 => DType::Q4_0,
            GgmlType::Q4_1 => DType::Q4_1,
            GgmlType::Q8_0 => DType::Q8_0,
            GgmlType::Q4_K => DType::Q4_K,
            GgmlType::Q5_K => DType::Q5_K,
            GgmlType::Q6_K => DType::Q6_K,
        }
    }

    /// Bytes taken by `n` values, or an error when `n` is not a whole number of blocks.
    pub fn bytes_for(self, n: usize) -> Result<usize> {
        let bs = self.block_size();
        if !n.is_multiple_of(bs) {
            return Err(TensorError(format!(
                "{} values are not a whole number of {} blocks of {bs}",
                n,
                self.name()
            )));
        }
        (n / bs).checked_mul(self.block_bytes()).ok_or_else(|| {
            TensorError(format!(
                "{n} values of {} overflow the address space",
                self.name()
            ))
        })
    }
}

pub(crate) fn f16_at(b: &[u8], i: usize) -> f32 {
    f16::from_le_bytes([b[i], b[i + 1]]).to_f32()
}

/// The 6-bit scale and min of sub-block `j` (0..8) of a Q4_K / Q5_K block.
pub(crate) fn k_scale_min(scales: &[u8], j: usize) -> (f32, f32) {
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
        return Err(TensorError(format!(
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
    dequantize_blocks(kind, bytes, out);
    Ok(())
}

/// The body of [`dequantize_row`] for sizes already checked; inlined into callers compiled
/// for wider vectors.
#[inline(always)]
pub(crate) fn dequantize_blocks(kind: GgmlType, bytes: &[u8], out: &mut [f32]) {
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
                // Value e = 128 half + 32 quarter + l. Quarters 0 and 1 take the low nibbles
                // of ql[64 half + l] and ql[64 half + 32 + l], quarters 2 and 3 the high
                // nibbles of the same bytes; the two high bits come from qh[32 half + l].
                // Written a quarter of 32 values at a time so the loop vectorises.
                for half in 0..2 {
                    let hi: &[u8; 32] = qh[32 * half..32 * half + 32].try_into().expect("32");
                    for quarter in 0..4 {
                        let lo: &[u8; 32] = ql[64 * half + 32 * (quarter % 2)..][..32]
                            .try_into()
                            .expect("32 bytes");
                        let base = 128 * half + 32 * quarter;
                        let lo_shift = if quarter < 2 { 0 } else { 4 };
                        let scale = [
                            d * (sc[base / 16] as i8) as f32,
                            d * (sc[base / 16 + 1] as i8) as f32,
                        ];
                        let dst: &mut [f32; 32] =
                            (&mut o[base..base + 32]).try_into().expect("32 values");
                        for l in 0..32 {
                            let q = ((lo[l] >> lo_shift) & 0x0F)
                                | (((hi[l] >> (2 * quarter)) & 3) << 4);
                            dst[l] = scale[l / 16] * (q as i32 - 32) as f32;
                        }
                    }
                }
            }
        }
    }
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
            return Err(TensorError(format!(
                "quantize_row: quantizing to {} is not supported (F32, F16, BF16, Q8_0, Q4_0 are)",
                other.name()
            )));
        }
    }
    Ok(out)
}

#[cfg(target_arch = "x86_64")]
pub(crate) mod avx512;
pub(crate) mod matvec;
pub mod panels;
pub(crate) mod portable;
#[cfg(target_arch = "x86_64")]
pub(crate) mod simd;

/// y = W x for a row-major `rows` x `cols` weight matrix packed in `kind` (each row a whole
/// number of blocks), reading the packed blocks directly, on the worker pool. Q8_0, Q4_0 and
/// Q4_1 use integer dots with `x` quantized to 8-bit blocks ([`XPrecision::Fast`]).
pub fn matvec(
    kind: GgmlType,
    weight: &[u8],
    rows: usize,
    cols: usize,
    x: &[f32],
    y: &mut [f32],
) -> Result<()> {
    matvec_with(kind, weight, rows, cols, x, y, XPrecision::Fast, true)
}

/// `matvec` on the calling thread only (`threads` < 2) or on the worker pool.
pub fn matvec_with_threads(
    kind: GgmlType,
    weight: &[u8],
    rows: usize,
    cols: usize,
    x: &[f32],
    y: &mut [f32],
    threads: usize,
) -> Result<()> {
    matvec_with(
        kind,
        weight,
        rows,
        cols,
        x,
        y,
        XPrecision::Fast,
        threads > 1,
    )
}

/// `matvec` with a chosen treatment of `x` ([`XPrecision::F32`] keeps x exact) and threading.
#[allow(clippy::too_many_arguments)]
pub fn matvec_with(
    kind: GgmlType,
    weight: &[u8],
    rows: usize,
    cols: usize,
    x: &[f32],
    y: &mut [f32],
    precision: XPrecision,
    parallel: bool,
) -> Result<()> {
    let row_bytes = kind
        .bytes_for(cols)
        .map_err(|e| TensorError(format!("matvec: a row of {cols} columns: {}", e.0)))?;
    let total = rows
        .checked_mul(row_bytes)
        .ok_or_else(|| TensorError("matvec: size overflow".into()))?;
    if weight.len() != total {
        return Err(TensorError(format!(
            "matvec: a [{rows}, {cols}] {} matrix takes {total} bytes, but {} were given",
            kind.name(),
            weight.len()
        )));
    }
    if x.len() != cols || y.len() != rows {
        return Err(TensorError(format!(
            "matvec: a [{rows}, {cols}] matrix needs x of length {cols} and y of length {rows} (got {} and {})",
            x.len(),
            y.len()
        )));
    }
    let w = PackedRows {
        kind,
        bytes: weight,
        first: 0,
        stride: row_bytes,
        rows,
        cols,
        panels: None,
    };
    matvec_rows(&w, x, y, precision, parallel);
    Ok(())
}
