//! CPU kernels for quantized (GGUF block) tensors that are not products: contiguous copies,
//! casts (dequantize to a float type, or quantize floats to Q8_0/Q4_0), embedding lookups that
//! expand only the picked rows, and host reads.

use super::nn::{from_f32_as, host_storage, read_f32};
use crate::bail;
use crate::dtype::DType;
use crate::error::{Result, shape_str};
use crate::layout::Layout;
use crate::ops::quantized_unsupported;
use crate::quant::{GgmlType, dequantize_row, quantize_row};
use crate::storage::CpuStorage;
use crate::tensor::Tensor;

/// The packed rows (along the last dimension) of a quantized tensor view.
pub(crate) struct QuantRows<'a> {
    pub kind: GgmlType,
    pub bytes: &'a [u8],
    /// Values per row (the last dimension).
    pub cols: usize,
    /// Bytes per row.
    pub row_bytes: usize,
    /// Byte offset of every row, in row-major order of the leading dimensions.
    pub starts: Vec<usize>,
}

impl QuantRows<'_> {
    pub fn row(&self, i: usize) -> &[u8] {
        &self.bytes[self.starts[i]..self.starts[i] + self.row_bytes]
    }
}

/// The rows of quantized `x`, or an error naming `op` when `x` is not quantized.
pub(crate) fn quant_rows<'a>(op: &str, x: &'a Tensor) -> Result<QuantRows<'a>> {
    let CpuStorage::Quantized(kind, bytes, _) = host_storage(op, x)? else {
        bail!(
            "{op}: internal: expected a quantized tensor, got {}",
            x.dtype()
        );
    };
    let l = x.layout();
    let (bs, bb) = (kind.block_size(), kind.block_bytes());
    let r = l.rank();
    if r == 0 {
        bail!("{op}: a {} tensor needs at least one dimension", x.dtype());
    }
    let cols = l.shape[r - 1];
    let lead = Layout {
        shape: l.shape[..r - 1].to_vec(),
        strides: l.strides[..r - 1].to_vec(),
        offset: l.offset,
    };
    let mut starts = Vec::with_capacity(lead.numel());
    lead.for_each_offset(|o| starts.push(o / bs * bb));
    Ok(QuantRows {
        kind: *kind,
        bytes,
        cols,
        row_bytes: cols / bs * bb,
        starts,
    })
}

/// All elements of quantized `x`, dequantized, in row-major order.
pub(crate) fn dequantize_all(op: &str, x: &Tensor) -> Result<Vec<f32>> {
    let rows = quant_rows(op, x)?;
    let mut out = vec![0f32; rows.starts.len() * rows.cols];
    if rows.cols > 0 {
        for (i, o) in out.chunks_exact_mut(rows.cols).enumerate() {
            dequantize_row(rows.kind, rows.row(i), o)?;
        }
    }
    Ok(out)
}

/// A contiguous copy of a quantized view (its rows' blocks, one after another).
pub(crate) fn contiguous(x: &Tensor) -> Result<Tensor> {
    let rows = quant_rows("contiguous", x)?;
    let mut out = Vec::with_capacity(rows.starts.len() * rows.row_bytes);
    for i in 0..rows.starts.len() {
        out.extend_from_slice(rows.row(i));
    }
    Tensor::from_quantized(rows.kind, out.into(), x.shape())
}

/// `x` cast to `dtype` where either side is quantized: dequantize to a float (or int/bool
/// through f32), or quantize a float tensor to Q8_0 / Q4_0 (the last dim whole blocks).
pub(crate) fn cast(x: &Tensor, dtype: DType) -> Result<Tensor> {
    if x.dtype() == dtype {
        return contiguous(x);
    }
    let values = if x.dtype().is_quantized() {
        dequantize_all("cast", x)?
    } else if x.dtype().is_float() {
        read_f32("cast", x)?.into_owned()
    } else {
        bail!(
            "cast: {} tensors cannot be quantized to {dtype} (cast to float32 first)",
            x.dtype()
        );
    };
    if !dtype.is_quantized() {
        let f = Tensor::from_f32(values, x.shape())?;
        return if dtype == DType::F32 {
            Ok(f)
        } else {
            super::elementwise::cast(&f, dtype)
        };
    }
    let kind = dtype
        .ggml_type()
        .expect("quantized dtypes have a GGML format");
    if !matches!(kind, GgmlType::Q8_0 | GgmlType::Q4_0) {
        return Err(quantized_unsupported("cast to", dtype));
    }
    let cols = x.shape().last().copied().unwrap_or(0);
    if x.rank() == 0 || !cols.is_multiple_of(kind.block_size()) {
        bail!(
            "cast: shape {} cannot be quantized to {dtype}: the last dimension must be a whole number of blocks of {}",
            shape_str(x.shape()),
            kind.block_size()
        );
    }
    let bytes = quantize_row(kind, &values)?;
    Tensor::from_quantized(kind, bytes.into(), x.shape())
}

/// Rows of a quantized `table` [vocab, d] picked by I64 `ids`, dequantized to f32: only the
/// picked rows are expanded. Shape `ids.shape + [d]`.
pub(crate) fn embedding(table: &Tensor, ids: &Tensor) -> Result<Tensor> {
    let rows = quant_rows("embedding", table)?;
    let (vocab, d) = (table.shape()[0], rows.cols);
    let CpuStorage::I64(id_data) = host_storage("embedding", ids)? else {
        bail!("embedding: ids must be int64, got {}", ids.dtype());
    };
    let mut out = vec![0f32; ids.numel() * d];
    let mut k = 0;
    let mut result = Ok(());
    ids.layout().for_each_offset(|o| {
        let id = id_data[o];
        if result.is_err() {
            return;
        }
        if id < 0 || id as u64 >= vocab as u64 {
            result = Err(crate::TensorError(format!(
                "embedding: id {id} is out of range for a table of {vocab} rows (shape {})",
                shape_str(table.shape())
            )));
            return;
        }
        result = dequantize_row(
            rows.kind,
            rows.row(id as usize),
            &mut out[k * d..(k + 1) * d],
        );
        k += 1;
    });
    result?;
    let mut shape = ids.shape().to_vec();
    shape.push(d);
    from_f32_as(out, &shape, DType::F32)
}
