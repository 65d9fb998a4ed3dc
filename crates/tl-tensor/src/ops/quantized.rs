//! Quantized (GGUF block) tensors: construction from packed bytes and the rules for views.
//!
//! A quantized tensor has a logical shape whose last dimension is a whole number of blocks
//! (`[rows, cols]` for a weight matrix) and packed storage. Views must keep every row starting
//! on a block boundary and the last dimension unit-strided, so that row views along dim 0
//! (`narrow`, `select`) work and transposes do not. `linear`, `embedding`, `cast` to a float
//! type, `contiguous`, printing and `to_vec_f64` read the blocks; every other op fails with
//! "not supported yet: OP on a q4_0 tensor (cast it to float32 first)".

use crate::bail;
use crate::dtype::DType;
use crate::error::{Result, TensorError, shape_str};
use crate::hostbuf::HostBuf;
use crate::layout::Layout;
use crate::quant::GgmlType;
use crate::storage::CpuStorage;
use crate::tensor::Tensor;

/// The error every op without a quantized kernel returns.
pub(crate) fn quantized_unsupported(op: &str, dtype: DType) -> TensorError {
    TensorError(format!(
        "not supported yet: {op} on a {dtype} tensor (cast it to float32 first)"
    ))
}

/// Fails with the quantized-tensor error for `op` when any of `xs` is quantized.
pub(crate) fn refuse_quantized(op: &str, xs: &[&Tensor]) -> Result<()> {
    match xs.iter().find(|x| x.dtype().is_quantized()) {
        Some(x) => Err(quantized_unsupported(op, x.dtype())),
        None => Ok(()),
    }
}

/// Checks that `layout` keeps a quantized tensor's blocks addressable: unit stride on a last
/// dimension of whole blocks, and every other stride and the offset on block boundaries.
pub(crate) fn check_block_view(op: &str, dtype: DType, layout: &Layout) -> Result<()> {
    let Some(kind) = dtype.ggml_type() else {
        return Ok(());
    };
    let bs = kind.block_size();
    let rank = layout.rank();
    let ok = rank >= 1
        && layout.shape[rank - 1].is_multiple_of(bs)
        && (layout.strides[rank - 1] == 1 || layout.shape[rank - 1] <= 1)
        && layout.offset.is_multiple_of(bs)
        && layout.strides[..rank - 1]
            .iter()
            .zip(&layout.shape)
            .all(|(&s, &d)| d <= 1 || s.is_multiple_of(bs));
    if ok || layout.numel() == 0 {
        Ok(())
    } else {
        Err(TensorError(format!(
            "not supported yet: {op} giving shape {} on a {dtype} tensor (views of quantized tensors must keep whole blocks of {bs} along the last dimension; cast it to float32 first)",
            shape_str(&layout.shape)
        )))
    }
}

impl Tensor {
    /// A quantized tensor of logical `shape` over packed GGUF blocks of `kind` (owned bytes or
    /// a view of a memory-mapped file). The last dimension must be a whole number of blocks
    /// and `blocks` exactly the bytes of `shape`'s elements.
    pub fn from_quantized(kind: GgmlType, blocks: HostBuf<u8>, shape: &[usize]) -> Result<Tensor> {
        if !kind.is_quantized() {
            bail!(
                "from_quantized: {} is not a quantized format (use from_f32/from_f16/from_bf16)",
                kind.name()
            );
        }
        let bs = kind.block_size();
        let Some(&cols) = shape.last() else {
            bail!(
                "from_quantized: a {} tensor needs at least one dimension",
                kind.name()
            );
        };
        if !cols.is_multiple_of(bs) {
            bail!(
                "from_quantized: the last dimension of shape {} is not a whole number of {} blocks of {bs}",
                shape_str(shape),
                kind.name()
            );
        }
        let numel: usize = shape.iter().product();
        let need = numel / bs * kind.block_bytes();
        if blocks.len() != need {
            bail!(
                "from_quantized: shape {} of {} takes {need} bytes, but {} were given",
                shape_str(shape),
                kind.name(),
                blocks.len()
            );
        }
        Tensor::from_cpu_storage(
            CpuStorage::Quantized(kind, blocks, Default::default()),
            shape,
        )
    }
}
