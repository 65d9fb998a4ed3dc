//! The `Backend` trait: the operations a device must provide. `Tensor` methods check shapes,
//! broadcast and build views on the host, then hand the device work to the tensor's backend.
//! Layout-only ops (reshape of contiguous data, transpose, permute, slice, broadcast) never
//! reach a backend.

use crate::dtype::DType;
use crate::error::Result;
use crate::ops::{BinaryOp, ReduceOp, UnaryOp};
use crate::tensor::Tensor;

pub trait Backend: Send + Sync {
    /// A short name for messages and `--stats` (`cpu`, `cuda`).
    fn name(&self) -> &'static str;

    /// A contiguous copy of `x` (any layout) in the same dtype.
    fn contiguous(&self, x: &Tensor) -> Result<Tensor>;

    /// A new tensor of `shape` with every element `value` (converted to `dtype`).
    fn full(&self, shape: &[usize], value: f64, dtype: DType) -> Result<Tensor>;

    /// Elementwise `op` of `x`. Float functions get float inputs (the caller converts ints
    /// and bools); neg/abs/relu/step also take int64, not/abs/relu/step take bool.
    fn unary(&self, op: UnaryOp, x: &Tensor) -> Result<Tensor>;

    /// Elementwise `op` of `a` and `b`, which have one shape (broadcast views, strides may be
    /// 0) and one dtype. Comparisons and and/or return bool. Int division and remainder
    /// fail on a zero divisor.
    fn binary(&self, op: BinaryOp, a: &Tensor, b: &Tensor) -> Result<Tensor>;

    /// `x` converted to `dtype` (a new contiguous tensor).
    fn cast(&self, x: &Tensor, dtype: DType) -> Result<Tensor>;

    /// `x` limited to `[min, max]`; a missing bound does not limit.
    fn clamp(&self, x: &Tensor, min: Option<f64>, max: Option<f64>) -> Result<Tensor>;

    /// `a` where `cond` (bool) is true else `b`; all three of one shape, `a` and `b` of one
    /// dtype.
    fn where_cond(&self, cond: &Tensor, a: &Tensor, b: &Tensor) -> Result<Tensor>;

    /// `op` over `dims` (sorted, distinct, in range) of `x`. Output dtype: the input's for
    /// floats; f32 for the mean of ints and bools; bool for max/min of bools; else i64.
    fn reduce(&self, op: ReduceOp, x: &Tensor, dims: &[usize], keepdim: bool) -> Result<Tensor>;

    /// I64 index of the largest (`largest`) or smallest element along `dim` (non-empty).
    fn arg_reduce(&self, x: &Tensor, dim: usize, keepdim: bool, largest: bool) -> Result<Tensor>;

    /// `xs` (one dtype, equal shapes but along `dim`) joined along `dim`.
    fn concat(&self, xs: &[Tensor], dim: usize) -> Result<Tensor>;

    /// torch.gather along `dim` with an I64 `index` of `x`'s rank; out-of-range indices fail.
    fn gather(&self, x: &Tensor, dim: usize, index: &Tensor) -> Result<Tensor>;

    /// The slices `index[k]` of `x` along `dim`, for a 1-D I64 `index`; out of range fails.
    fn index_select(&self, x: &Tensor, dim: usize, index: &Tensor) -> Result<Tensor>;

    /// Copies `src` (already `dst`'s dtype; `dst`'s shape except `src.shape[dim]` along `dim`)
    /// into `dst` at `start..` along `dim`, arguments checked by
    /// `Tensor::write_slice_in_place`. The default rebuilds `dst` from views and `concat` (a
    /// copy, always correct); backends that can write in place override it.
    fn write_slice(&self, dst: &mut Tensor, dim: usize, start: usize, src: &Tensor) -> Result<()> {
        let (len, size) = (src.shape()[dim], dst.shape()[dim]);
        let mut parts = Vec::with_capacity(3);
        if start > 0 {
            parts.push(dst.narrow(dim as isize, 0, start)?);
        }
        parts.push(src.clone());
        if start + len < size {
            parts.push(dst.narrow(dim as isize, start + len, size - start - len)?);
        }
        *dst = Tensor::concat(&parts, dim as isize)?;
        Ok(())
    }

    /// The scatter-add that is the gradient of `index_select` and `embedding`: a zero tensor
    /// shaped like the float `src` but with `size` along `dim`, plus each slice
    /// `src[.., k, ..]` (along `dim`) added at position `index[k]` (1-D I64 on this device,
    /// length `src.shape[dim]`, every value in `0..size`, checked by the caller). The default
    /// multiplies by a one-hot matrix (exact, O(len * size) extra work); backends override it
    /// with a direct kernel.
    fn index_add(&self, src: &Tensor, dim: usize, index: &Tensor, size: usize) -> Result<Tensor> {
        crate::autograd::index_add_one_hot(src, dim, index, size)
    }

    // --- core ops (elementwise, reductions, copies) go above this line ---

    /// Batched matrix product of `a` [B.., m, k] and `b` [B.., k, n]: same rank, equal batch
    /// shapes (broadcast dims have stride 0), the same float dtype. Returns contiguous [B.., m, n].
    fn matmul(&self, a: &Tensor, b: &Tensor) -> Result<Tensor>;

    /// Softmax (`log` = false) or log-softmax of a float tensor along `dim` (in range).
    fn softmax(&self, x: &Tensor, dim: usize, log: bool) -> Result<Tensor>;

    /// RMS norm over the last dim of `x`; `w` has the last dim's size.
    fn rms_norm(&self, x: &Tensor, w: &Tensor, eps: f64) -> Result<Tensor>;

    /// Layer norm over the last dim of `x`; `w` and `b` (if given) have the last dim's size.
    fn layer_norm(
        &self,
        x: &Tensor,
        w: Option<&Tensor>,
        b: Option<&Tensor>,
        eps: f64,
    ) -> Result<Tensor>;

    /// The append of a decoder layer's keys and values to its cache, arguments checked by
    /// `Tensor::write_kv_rope_in_place`: `k` rotated by RoPE (row r at position `pos + r`, as
    /// `rope`, then converted to `k_dst`'s dtype) into rows `start..` of `k_dst`, and `v` (of
    /// `v_dst`'s dtype) into the same rows of `v_dst`. The
    /// default composes `rope` and two `write_slice` calls; a backend may do it in one pass.
    #[allow(clippy::too_many_arguments)]
    fn write_kv_rope(
        &self,
        k_dst: &mut Tensor,
        v_dst: &mut Tensor,
        start: usize,
        k: &Tensor,
        v: &Tensor,
        rope: (usize, f64, bool),
    ) -> Result<()> {
        let (pos, theta, neox) = rope;
        let seq_dim = if k.rank() >= 3 {
            Some(k.rank() - 3)
        } else {
            Some(0)
        };
        let kr = self
            .rope(k, seq_dim, pos, theta, neox)?
            .cast(k_dst.dtype())?;
        self.write_slice(k_dst, 0, start, &kr)?;
        self.write_slice(v_dst, 0, start, v)
    }

    /// Rotary embedding of the (even) last dim; `seq_dim` indexes positions (`None`: one
    /// position), `neox` selects the rotate-half pairing instead of adjacent pairs.
    fn rope(
        &self,
        x: &Tensor,
        seq_dim: Option<usize>,
        pos: usize,
        theta: f64,
        neox: bool,
    ) -> Result<Tensor>;

    /// Rows of `table` [vocab, d] picked by I64 `ids` (any shape); fails on out-of-range ids.
    fn embedding(&self, table: &Tensor, ids: &Tensor) -> Result<Tensor>;

    /// `silu(a) * b` for two views of one shape, produced in `dtype`.
    fn silu_mul(&self, a: &Tensor, b: &Tensor, dtype: crate::DType) -> Result<Tensor>;

    /// Grouped-head attention: `q` [B.., hq, sq, d], `k` [B.., hkv, sk, d], `v` [B.., hkv, sk, dv]
    /// with equal batch shapes and hq % hkv == 0; `mask` broadcast to [B.., hq, sq, sk]
    /// (float: added, bool: true keeps). Softmax in f32; result [B.., hq, sq, dv] in q's dtype.
    fn attention(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        mask: Option<&Tensor>,
        scale: f64,
    ) -> Result<Tensor>;

    /// Causal attention of rank-3 operands of one float dtype (q [hq, sq, d], k [hkv, sk, d],
    /// v [hkv, sk, dv], sk = offset + sq, checked by `Tensor::causal_attention`): query row s
    /// sees keys 0..=offset + s. `None` where this backend has no kernel for it; the caller
    /// then runs `attention` with a causal mask, which gives the same result.
    fn attention_causal(
        &self,
        _q: &Tensor,
        _k: &Tensor,
        _v: &Tensor,
        _offset: usize,
        _scale: f64,
    ) -> Option<Result<Tensor>> {
        None
    }

    /// `x @ w^T + b` for float `x` [.., in], `w` [out, in] (float or quantized) and float
    /// `b` `[out]`, arguments checked by `Tensor::linear`. The default goes through `matmul`
    /// for float weights and refuses quantized ones; backends with packed kernels override it.
    fn linear(&self, x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> Result<Tensor> {
        if w.dtype().is_quantized() {
            crate::bail!(
                "not supported yet: linear with a {} weight on the {} backend (cast it to float32 first)",
                w.dtype(),
                self.name()
            );
        }
        crate::ops::linalg::linear_via_matmul(x, w, b)
    }

    /// `x @ w^T` for each of `ws` (arguments checked by `Tensor::linear_many`). The default is
    /// one `linear` per weight; a backend may read all the weights in one pass (one launch for
    /// a layer's Q/K/V projections).
    fn linear_many(&self, x: &Tensor, ws: &[&Tensor]) -> Result<Vec<Tensor>> {
        ws.iter().map(|w| self.linear(x, w, None)).collect()
    }

    /// One pass doing what `fusion` adds around `x @ w^T` for each of `ws` (arguments checked
    /// by `Tensor::linear_fused`, nothing under differentiation), or `None` where this backend
    /// has no such kernel for these operands: the caller then composes `rms_norm`, `linear`
    /// and `silu_mul`, which give the same result. The default has none.
    fn linear_fused(
        &self,
        _x: &Tensor,
        _ws: &[&Tensor],
        _fusion: &crate::ops::LinearFusion,
    ) -> Option<Result<Vec<Tensor>>> {
        None
    }

    // --- linear algebra and neural ops go above this line ---
}
