//! Matrix products: `matmul` with NumPy semantics and `linear` (x @ w^T + b).
//! Operands are passed to the backend as strided views (transposes and broadcast batch dims
//! cost no copy).

use crate::bail;
use crate::dtype::DType;
use crate::error::{Result, shape_str};
use crate::layout::{Layout, broadcast_shapes};
use crate::tensor::Tensor;

/// Checks that `x` is a float tensor for `op`, with the message users see for ints/bools.
pub(crate) fn require_float(op: &str, x: &Tensor) -> Result<()> {
    if !x.dtype().is_float() {
        bail!(
            "{op}: integer tensors are not supported yet (cast to float32 first); got {}",
            x.dtype()
        );
    }
    Ok(())
}

/// `x` converted to the float dtype `dtype` (shared, no copy, when it already has it).
pub(crate) fn to_float_dtype(op: &str, x: &Tensor, dtype: DType) -> Result<Tensor> {
    debug_assert!(dtype.is_float(), "{op}: float dtype expected");
    x.cast(dtype)
}

/// A view of `layout` (whose last `keep` dims are matrix dims) with its leading batch dims
/// broadcast to `batch`: missing or size-1 dims get stride 0.
pub(crate) fn expand_batch(layout: &Layout, keep: usize, batch: &[usize]) -> Layout {
    let r = layout.rank();
    let own = r - keep;
    let mut shape = batch.to_vec();
    let mut strides = vec![0; batch.len()];
    for i in 0..own {
        let target = batch.len() - own + i;
        if layout.shape[i] == batch[target] {
            strides[target] = layout.strides[i];
        }
    }
    shape.extend_from_slice(&layout.shape[own..]);
    strides.extend_from_slice(&layout.strides[own..]);
    Layout {
        shape,
        strides,
        offset: layout.offset,
    }
}

impl Tensor {
    /// Matrix product with NumPy `matmul` semantics: 1-D operands are promoted to a row
    /// (left) or column (right) vector and that dim is removed from the result; leading batch
    /// dims broadcast. Float dtypes only; mixed float dtypes are promoted.
    pub fn matmul(&self, other: &Tensor) -> Result<Tensor> {
        crate::ops::refuse_quantized("matmul", &[self, other])?;
        let (sa, sb) = (self.shape(), other.shape());
        if self.rank() == 0 || other.rank() == 0 {
            bail!(
                "matmul: both operands need at least one dimension, got shapes {} and {}",
                shape_str(sa),
                shape_str(sb)
            );
        }
        for x in [self, other] {
            if !x.dtype().is_float() {
                bail!("matmul: integer tensors are not supported yet (cast to float32 first)");
            }
        }
        let k_a = sa[sa.len() - 1];
        let k_b = if sb.len() == 1 {
            sb[0]
        } else {
            sb[sb.len() - 2]
        };
        if k_a != k_b {
            bail!(
                "matmul: shapes {} and {} do not agree on the inner dimension ({} vs {})",
                shape_str(sa),
                shape_str(sb),
                k_a,
                k_b
            );
        }
        crate::device::co_locate("matmul", &[self, other], usize::MAX)?;
        let dtype = DType::promote(self.dtype(), other.dtype());
        let a = to_float_dtype("matmul", self, dtype)?;
        let b = to_float_dtype("matmul", other, dtype)?;

        // Promote vectors to matrices as views: [k] -> [1, k] and [k] -> [k, 1].
        let mut al = a.layout().clone();
        if al.rank() == 1 {
            al.shape.insert(0, 1);
            al.strides.insert(0, 0);
        }
        let mut bl = b.layout().clone();
        if bl.rank() == 1 {
            bl.shape.push(1);
            bl.strides.push(0);
        }
        let (ra, rb) = (al.rank(), bl.rank());
        let batch = broadcast_shapes("matmul", &al.shape[..ra - 2], &bl.shape[..rb - 2]).map_err(
            |_| {
                crate::TensorError(format!(
                    "matmul: batch dimensions of shapes {} and {} cannot be broadcast together ({} vs {})",
                    shape_str(sa),
                    shape_str(sb),
                    shape_str(&al.shape[..ra - 2]),
                    shape_str(&bl.shape[..rb - 2])
                ))
            },
        )?;
        let a_view = a.with_layout(expand_batch(&al, 2, &batch));
        let b_view = b.with_layout(expand_batch(&bl, 2, &batch));
        let out = a.backend().matmul(&a_view, &b_view)?;

        // Drop the dims that 1-D operands gained.
        let mut shape = batch;
        if sa.len() > 1 {
            shape.push(sa[sa.len() - 2]);
        }
        if sb.len() > 1 {
            shape.push(sb[sb.len() - 1]);
        }
        let out = out.with_layout(Layout::contiguous(&shape));
        Ok(crate::autograd::record(out, &[self, other], || {
            crate::autograd::Op::Matmul
        }))
    }

    /// `self @ w^T + b` with `w` stored [out, in] and `b` of shape `[out]` (a bias) or of the
    /// result's shape (a residual, added in the same pass where the backend can). `self` is a
    /// float tensor [.., in]; `w` is float or quantized (read in place, never expanded whole);
    /// `b` is float. The result has `self`'s leading dims and the promoted float dtype (`self`'s
    /// dtype for a quantized `w`).
    pub fn linear(&self, w: &Tensor, b: Option<&Tensor>) -> Result<Tensor> {
        self.check_linear(w, b)?;
        let out = {
            let _off = crate::autograd::no_grad();
            self.backend().linear(self, w, b)
        };
        let mut inputs = vec![self, w];
        inputs.extend(b);
        crate::autograd::record_ok(out, &inputs, || crate::autograd::Op::Linear)
    }

    /// `self @ w^T` for each weight of `ws` (each as in [`Tensor::linear`], no bias): one
    /// result per weight, computed in one pass over the weights where the backend can (the
    /// CUDA backend does for one input row and weights of one type).
    pub fn linear_many(&self, ws: &[&Tensor]) -> Result<Vec<Tensor>> {
        for w in ws {
            self.check_linear(w, None)?;
        }
        // Under differentiation each product is recorded on its own.
        if self.is_tracked() || ws.iter().any(|w| w.is_tracked()) {
            return ws.iter().map(|w| self.linear(w, None)).collect();
        }
        self.backend().linear_many(self, ws)
    }

    /// `x @ w^T` for each of `ws` with what `fusion` adds around the products: the input
    /// RMS-normalised first (`rms_norm(x, g, eps)`), a bias or residual added to a single
    /// product, or two products (gate, up) combined as `silu(gate) * up`. A backend with a
    /// kernel for the operands does it in one pass (the CUDA backend for one input row); any
    /// other case, and anything under differentiation, composes `rms_norm`, `linear` and
    /// `silu_mul`. Returns one tensor per weight, or one for `swiglu`.
    pub fn linear_fused(&self, ws: &[&Tensor], fusion: &LinearFusion) -> Result<Vec<Tensor>> {
        if ws.is_empty() {
            bail!("linear: no weights given");
        }
        if fusion.bias.is_some() && ws.len() != 1 {
            bail!(
                "linear: a bias is added to one product, got {} weights",
                ws.len()
            );
        }
        // Nothing to fuse: the plain products, which check their own arguments (the CUDA
        // backend's one-row `linear` and `linear_many` already take the staged kernels).
        if fusion.norm.is_none() && !fusion.swiglu {
            return match ws {
                [w] => Ok(vec![self.linear(w, fusion.bias)?]),
                _ => self.linear_many(ws),
            };
        }
        if fusion.swiglu {
            if ws.len() != 2 || ws[0].shape() != ws[1].shape() {
                bail!(
                    "swiglu: needs a gate and an up weight of one shape, got {}",
                    ws.iter()
                        .map(|w| shape_str(w.shape()))
                        .collect::<Vec<_>>()
                        .join(" and ")
                );
            }
            if fusion.bias.is_some() {
                bail!("swiglu: takes no bias");
            }
        }
        for w in ws {
            self.check_linear(w, fusion.bias)?;
        }
        if let Some((g, _)) = fusion.norm {
            let op = if fusion.swiglu { "swiglu" } else { "linear" };
            crate::ops::refuse_quantized(op, &[g])?;
            require_float(op, g)?;
            let d = self.shape()[self.rank() - 1];
            crate::ops::nn::check_param(op, "norm weight", g, self, d)?;
        }
        let tracked = self.is_tracked()
            || ws.iter().any(|w| w.is_tracked())
            || fusion.norm.is_some_and(|(g, _)| g.is_tracked())
            || fusion.bias.is_some_and(|b| b.is_tracked());
        if !tracked && let Some(out) = self.backend().linear_fused(self, ws, fusion) {
            return out;
        }
        let h = match fusion.norm {
            Some((g, eps)) => self.rms_norm(g, eps)?,
            None => self.clone(),
        };
        if fusion.swiglu {
            let ys = h.linear_many(ws)?;
            return Ok(vec![Tensor::silu_mul(&ys[0], &ys[1])?]);
        }
        if ws.len() == 1 {
            return Ok(vec![h.linear(ws[0], fusion.bias)?]);
        }
        h.linear_many(ws)
    }

    /// The argument checks of [`Tensor::linear`].
    fn check_linear(&self, w: &Tensor, b: Option<&Tensor>) -> Result<()> {
        crate::ops::refuse_quantized("linear (as input)", &[self])?;
        if let Some(b) = b {
            crate::ops::refuse_quantized("linear (as bias)", &[b])?;
            require_float("linear", b)?;
        }
        require_float("linear", self)?;
        if !w.dtype().is_quantized() {
            require_float("linear", w)?;
        }
        if w.rank() != 2 {
            bail!(
                "linear: weight must be 2-D [out, in], got shape {}",
                shape_str(w.shape())
            );
        }
        let (out_f, in_f) = (w.shape()[0], w.shape()[1]);
        if self.rank() == 0 || self.shape()[self.rank() - 1] != in_f {
            bail!(
                "linear: input {} and weight {} do not agree on the input features ({} vs {})",
                shape_str(self.shape()),
                shape_str(w.shape()),
                self.shape().last().copied().unwrap_or(0),
                in_f
            );
        }
        let mut out_shape = self.shape().to_vec();
        *out_shape.last_mut().expect("rank >= 1") = out_f;
        if let Some(b) = b
            && b.shape() != [out_f]
            && b.shape() != out_shape.as_slice()
        {
            bail!(
                "linear: bias {} does not match weight {} (expected [{}], or the output's shape {} to add a residual)",
                shape_str(b.shape()),
                shape_str(w.shape()),
                out_f,
                shape_str(&out_shape)
            );
        }
        Ok(())
    }
}

/// What [`Tensor::linear_fused`] does around its products.
#[derive(Clone, Copy, Default)]
pub struct LinearFusion<'a> {
    /// RMS-normalise the input first, as `rms_norm(x, weight, eps)`.
    pub norm: Option<(&'a Tensor, f64)>,
    /// Added to the product of a single weight: a bias `[out]` or a residual of its shape.
    pub bias: Option<&'a Tensor>,
    /// Two weights (gate, up) of one shape: the one result is `silu(x @ gate^T) * (x @ up^T)`.
    pub swiglu: bool,
}

/// `linear` through `matmul` with a transposed view of a float `w` (no copy of `w`), then a
/// broadcast add of `b`: the general path every backend has (arguments already checked).
pub(crate) fn linear_via_matmul(x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> Result<Tensor> {
    if w.dtype().is_quantized() {
        return Err(crate::ops::quantized_unsupported("linear", w.dtype()));
    }
    let (out_f, in_f) = (w.shape()[0], w.shape()[1]);
    let wl = w.layout();
    let wt = w.with_layout(Layout {
        shape: vec![in_f, out_f],
        strides: vec![wl.strides[1], wl.strides[0]],
        offset: wl.offset,
    });
    let y = x.matmul(&wt)?;
    match b {
        None => Ok(y),
        Some(b) => {
            let b = to_float_dtype("linear", b, y.dtype())?;
            y.binary(crate::ops::BinaryOp::Add, &b)
        }
    }
}
