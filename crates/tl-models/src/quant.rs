//! GGML tensor element formats, re-exported from [`tl_tensor::quant`], which owns the block
//! types and kernels (dequantize, quantize to Q8_0/Q4_0, packed mat-vec). The functions here
//! are the same kernels with errors as [`ModelError`], for callers working in this crate's
//! error type.

use crate::error::{ModelError, Result};
pub use tl_tensor::quant::{ALL_TYPES, GgmlType, QK_K, ggml_type_name};

fn model_error(e: tl_tensor::TensorError) -> ModelError {
    ModelError::new(e.0)
}

/// Expands packed values of `kind` into `out` (whose length is the number of values; it must be
/// a whole number of blocks and `bytes` exactly their size).
pub fn dequantize_row(kind: GgmlType, bytes: &[u8], out: &mut [f32]) -> Result<()> {
    tl_tensor::quant::dequantize_row(kind, bytes, out).map_err(model_error)
}

/// Packs `x` (a whole number of blocks) into `kind` (the float types, Q8_0 and Q4_0).
pub fn quantize_row(kind: GgmlType, x: &[f32]) -> Result<Vec<u8>> {
    tl_tensor::quant::quantize_row(kind, x).map_err(model_error)
}

/// y = W x for a row-major `rows` x `cols` weight matrix packed in `kind`, reading the packed
/// blocks directly, on every core, with `x` kept in f32 (exact up to f32 rounding;
/// `Tensor::linear` uses the faster 8-bit-x kernels, see [`tl_tensor::quant::XPrecision`]).
pub fn matvec(
    kind: GgmlType,
    weight: &[u8],
    rows: usize,
    cols: usize,
    x: &[f32],
    y: &mut [f32],
) -> Result<()> {
    let exact = tl_tensor::quant::XPrecision::F32;
    tl_tensor::quant::matvec_with(kind, weight, rows, cols, x, y, exact, true).map_err(model_error)
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
    let exact = tl_tensor::quant::XPrecision::F32;
    tl_tensor::quant::matvec_with(kind, weight, rows, cols, x, y, exact, threads > 1)
        .map_err(model_error)
}
