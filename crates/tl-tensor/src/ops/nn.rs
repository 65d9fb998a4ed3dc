//! Neural-network ops: softmax, norms, rotary embedding, masks, embedding lookup, the fused
//! `silu(a) * b` and grouped-head attention. Shapes are checked here; the data work runs in
//! the tensor's backend (f16/bf16 computed in f32 and rounded back).

use crate::autograd::Op;
use crate::bail;
use crate::dtype::DType;
use crate::error::{Result, shape_str};
use crate::layout::{Layout, broadcast_shapes, normalize_dim};
use crate::ops::BinaryOp;
use crate::ops::linalg::{expand_batch, require_float, to_float_dtype};
use crate::tensor::Tensor;

/// A view of `x` broadcast to `shape` (which must be a valid broadcast target).
fn broadcast_view(x: &Tensor, shape: &[usize]) -> Tensor {
    x.with_layout(expand_batch(x.layout(), 0, shape))
}

/// Checks that `p` is a 1-D parameter of length `d` for `op`.
pub(crate) fn check_param(op: &str, what: &str, p: &Tensor, x: &Tensor, d: usize) -> Result<()> {
    if p.shape() != [d] {
        bail!(
            "{op}: {what} of shape {} does not match the last dimension of input {} (expected [{d}])",
            shape_str(p.shape()),
            shape_str(x.shape())
        );
    }
    Ok(())
}

/// RoPE's checks on rows `x` (rank >= 1): an even last dimension and a positive finite theta.
pub(crate) fn check_rope(op: &str, x: &Tensor, theta: f64) -> Result<()> {
    let d = x.shape()[x.rank() - 1];
    if !d.is_multiple_of(2) {
        bail!(
            "{op}: the last dimension (head_dim) must be even, got shape {}",
            shape_str(x.shape())
        );
    }
    if !(theta > 0.0 && theta.is_finite()) {
        bail!("{op}: theta must be a positive finite number, got {theta}");
    }
    Ok(())
}

impl Tensor {
    fn softmax_impl(&self, op: &str, dim: isize, log: bool) -> Result<Tensor> {
        // A scalar is treated as one lane of length 1 (dims 0 and -1 name it, as in PyTorch).
        let d = normalize_dim(op, dim, self.rank().max(1))?;
        if self.rank() == 0 {
            let lane = self.with_layout(Layout {
                shape: vec![1],
                strides: vec![1],
                offset: self.layout().offset,
            });
            let r = self.backend().softmax(&lane, 0, log)?;
            // A constant (1, or 0 for the log): no gradient flows.
            return Ok(r.with_layout(Layout::contiguous(&[])));
        }
        let out = self.backend().softmax(self, d, log);
        crate::autograd::record_ok(out, &[self], || {
            if log {
                Op::LogSoftmax(d)
            } else {
                Op::Softmax(d)
            }
        })
    }

    /// Softmax along `dim`, computed stably (max subtracted). `-inf` entries get probability
    /// 0; a slice that is entirely `-inf` gives zeros rather than NaN.
    pub fn softmax(&self, dim: isize) -> Result<Tensor> {
        crate::ops::refuse_quantized("softmax", &[self])?;
        require_float("softmax", self)?;
        self.softmax_impl("softmax", dim, false)
    }

    /// Log of the softmax along `dim` (stable: log-sum-exp with the max subtracted). A slice
    /// that is entirely `-inf` gives `-inf`.
    pub fn log_softmax(&self, dim: isize) -> Result<Tensor> {
        crate::ops::refuse_quantized("log_softmax", &[self])?;
        require_float("log_softmax", self)?;
        self.softmax_impl("log_softmax", dim, true)
    }

    /// `x / sqrt(mean(x^2, last dim) + eps) * w`, with `w` of the last dim's size.
    pub fn rms_norm(&self, w: &Tensor, eps: f64) -> Result<Tensor> {
        crate::ops::refuse_quantized("rms_norm", &[self, w])?;
        require_float("rms_norm", self)?;
        if self.rank() == 0 {
            bail!("rms_norm: input must have at least one dimension, got shape []");
        }
        let d = self.shape()[self.rank() - 1];
        check_param("rms_norm", "weight", w, self, d)?;
        let both = crate::device::co_locate("rms_norm", &[self, w], usize::MAX)?;
        let out = both[0].backend().rms_norm(&both[0], &both[1], eps);
        crate::autograd::record_ok(out, &[self, w], || Op::RmsNorm(eps))
    }

    /// `(x - mean) / sqrt(var + eps) * w + b` over the last dim (biased variance); `w` and
    /// `b` are optional.
    pub fn layer_norm(&self, w: Option<&Tensor>, b: Option<&Tensor>, eps: f64) -> Result<Tensor> {
        let given: Vec<&Tensor> = [Some(self), w, b].into_iter().flatten().collect();
        crate::ops::refuse_quantized("layer_norm", &given)?;
        require_float("layer_norm", self)?;
        if self.rank() == 0 {
            bail!("layer_norm: input must have at least one dimension, got shape []");
        }
        let d = self.shape()[self.rank() - 1];
        if let Some(w) = w {
            check_param("layer_norm", "weight", w, self, d)?;
        }
        if let Some(b) = b {
            check_param("layer_norm", "bias", b, self, d)?;
        }
        let params: Vec<&Tensor> = [Some(self), w, b].into_iter().flatten().collect();
        crate::device::co_locate("layer_norm", &params, usize::MAX)?;
        let out = self.backend().layer_norm(self, w, b, eps);
        crate::autograd::record_ok(out, &params, || Op::LayerNorm {
            eps,
            weight: w.is_some(),
            bias: b.is_some(),
        })
    }

    fn rope_impl(&self, op: &str, pos: usize, theta: f64, neox: bool) -> Result<Tensor> {
        require_float(op, self)?;
        let r = self.rank();
        if r == 0 {
            bail!("{op}: input must have at least one dimension, got shape []");
        }
        check_rope(op, self, theta)?;
        let seq_dim = match r {
            1 => None,
            2 => Some(0),
            _ => Some(r - 3),
        };
        let out = self.backend().rope(self, seq_dim, pos, theta, neox);
        crate::autograd::record_ok(out, &[self], || Op::Rope {
            seq_dim,
            pos,
            theta,
            neox,
        })
    }

    /// Rotary position embedding of the last dim (head_dim, even), rotating adjacent pairs
    /// (x[2i], x[2i+1]) by angle (pos + s) * theta^(-2i/head_dim), where s indexes dim -3 for
    /// rank >= 3 ([.., seq, heads, head_dim]), dim -2 for rank 2 and is 0 for rank 1.
    pub fn rope(&self, pos: usize, theta: f64) -> Result<Tensor> {
        crate::ops::refuse_quantized("rope", &[self])?;
        self.rope_impl("rope", pos, theta, false)
    }

    /// Like [`Tensor::rope`] with the rotate-half pairing (x[i], x[i + d/2]) of GPT-NeoX and
    /// Hugging Face Llama.
    pub fn rope_neox(&self, pos: usize, theta: f64) -> Result<Tensor> {
        crate::ops::refuse_quantized("rope", &[self])?;
        self.rope_impl("rope_neox", pos, theta, true)
    }

    /// The additive causal mask [n, n + offset]: 0 where key j <= offset + i, -inf elsewhere.
    /// A bool dtype gives the keep-mask instead (true where attending is allowed).
    pub fn causal_mask(n: usize, offset: usize, dtype: DType) -> Result<Tensor> {
        crate::stats::count_op();
        let cols = n.checked_add(offset);
        let Some(cols) = cols.filter(|&c| {
            n.checked_mul(c)
                .is_some_and(|e| e <= isize::MAX as usize / 8)
        }) else {
            bail!("causal_mask: a [{n}, {n} + {offset}] mask is too large");
        };
        let allowed = |i: usize, j: usize| j <= offset + i;
        match dtype {
            DType::Bool => {
                let data = (0..n * cols).map(|e| allowed(e / cols, e % cols)).collect();
                Tensor::from_bool(data, &[n, cols])?.to_default_device()
            }
            DType::I64 => {
                bail!("causal_mask: dtype int64 cannot hold -inf (use a float dtype or bool)")
            }
            _ => {
                let data: Vec<f64> = (0..n * cols)
                    .map(|e| {
                        if allowed(e / cols, e % cols) {
                            0.0
                        } else {
                            f64::NEG_INFINITY
                        }
                    })
                    .collect();
                Tensor::from_f64(&data, &[n, cols], dtype)?.to_default_device()
            }
        }
    }

    /// Applies an attention mask with broadcasting (like an add): a float mask is added
    /// (0 keeps, -inf removes); a bool mask keeps entries where it is true and sets the
    /// others to -inf. The result keeps `self`'s dtype.
    pub fn apply_attention_mask(&self, mask: &Tensor) -> Result<Tensor> {
        crate::ops::refuse_quantized("attention mask", &[self, mask])?;
        require_float("apply_attention_mask", self)?;
        // Checked here so the message names this op rather than the add it becomes.
        broadcast_shapes("apply_attention_mask", self.shape(), mask.shape())?;
        if mask.dtype() == DType::Bool {
            let masked = Tensor::scalar(f64::NEG_INFINITY, self.dtype());
            return Tensor::where_cond(mask, self, &masked);
        }
        let additive = to_float_dtype("apply_attention_mask", mask, self.dtype())?;
        self.binary(crate::ops::BinaryOp::Add, &additive)
    }

    /// Rows of `table` [vocab, d] for the int64 `ids` (any shape): result `ids.shape + [d]`.
    /// An id outside `0..vocab` is an error.
    pub fn embedding(table: &Tensor, ids: &Tensor) -> Result<Tensor> {
        if table.rank() != 2 {
            bail!(
                "embedding: table must be 2-D [vocab, d], got shape {}",
                shape_str(table.shape())
            );
        }
        if ids.dtype() != DType::I64 {
            bail!("embedding: ids must be int64, got {}", ids.dtype());
        }
        let both = crate::device::co_locate("embedding", &[table, ids], 1)?;
        let out = both[0].backend().embedding(&both[0], &both[1]);
        crate::autograd::record_ok(out, &[table, ids], || Op::Embedding)
    }

    /// `silu(a) * b` in one pass (the gated MLP of Llama); shapes broadcast, dtypes promote.
    pub fn silu_mul(a: &Tensor, b: &Tensor) -> Result<Tensor> {
        crate::ops::refuse_quantized("silu_mul", &[a, b])?;
        require_float("silu_mul", a)?;
        require_float("silu_mul", b)?;
        let shape = broadcast_shapes("silu_mul", a.shape(), b.shape())?;
        let dtype = DType::promote(a.dtype(), b.dtype());
        let both = crate::device::co_locate("silu_mul", &[a, b], usize::MAX)?;
        let av = broadcast_view(&both[0], &shape);
        let bv = broadcast_view(&both[1], &shape);
        let out = av.backend().silu_mul(&av, &bv, dtype);
        crate::autograd::record_ok(out, &[a, b], || Op::SiluMul)
    }

    /// `attention(q, k, v, causal_mask(sq, offset))` for rank-3 q [hq, sq, d], k and v
    /// [hkv, offset + sq, ..]: query row s sees keys 0..=offset + s (a prefill over a KV cache).
    /// A backend with a causal kernel reads only the visible keys, once per group of query
    /// heads; anything else (other ranks, mixed dtypes or devices, differentiation) runs
    /// `attention` with the mask, which also reports any argument error.
    pub fn causal_attention(q: &Tensor, k: &Tensor, v: &Tensor, offset: usize) -> Result<Tensor> {
        let plain = [q, k, v].iter().all(|t| t.rank() == 3 && !t.is_tracked())
            && q.dtype().is_float()
            && k.dtype() == q.dtype()
            && v.dtype() == q.dtype()
            && q.device() == k.device()
            && q.device() == v.device();
        if plain {
            let (qs, ks, vs) = (q.shape(), k.shape(), v.shape());
            let fits = qs[2] == ks[2]
                && vs[0] == ks[0]
                && vs[1] == ks[1]
                && ks[0] > 0
                && qs[0].is_multiple_of(ks[0])
                && ks[1] == offset + qs[1];
            let scale = 1.0 / (qs[2].max(1) as f64).sqrt();
            if fits && let Some(out) = q.backend().attention_causal(q, k, v, offset, scale) {
                return out;
            }
        }
        let sq = if q.rank() >= 2 {
            q.shape()[q.rank() - 2]
        } else {
            0
        };
        // The mask is made on the default device; attention wants it beside q.
        let mask = Tensor::causal_mask(sq, offset, DType::F32)?.to_device(q.device())?;
        Tensor::attention(q, k, v, Some(&mask))
    }

    /// Scaled dot-product attention with grouped heads: `q` [.., hq, sq, d], `k` [.., hkv, sk, d],
    /// `v` [.., hkv, sk, dv] with hq % hkv == 0 (query head h reads kv head h / (hq / hkv));
    /// scores scaled by 1/sqrt(d), `mask` (float, added; or bool, true keeps) broadcast to
    /// [.., hq, sq, sk], softmax in f32. Returns [.., hq, sq, dv] in q's dtype (promoted).
    pub fn attention(q: &Tensor, k: &Tensor, v: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
        crate::ops::refuse_quantized("attention", &[q, k, v])?;
        let op = "attention";
        for x in [q, k, v] {
            require_float(op, x)?;
            if x.rank() < 3 {
                bail!(
                    "attention: q, k and v need at least 3 dims [.., heads, seq, head_dim], got shapes {}, {} and {}",
                    shape_str(q.shape()),
                    shape_str(k.shape()),
                    shape_str(v.shape())
                );
            }
        }
        let (qs, ks, vs) = (q.shape(), k.shape(), v.shape());
        let (rq, rk, rv) = (qs.len(), ks.len(), vs.len());
        let (hq, d) = (qs[rq - 3], qs[rq - 1]);
        let (hkv, sk, dk) = (ks[rk - 3], ks[rk - 2], ks[rk - 1]);
        let shapes = || {
            format!(
                "q {}, k {}, v {}",
                shape_str(qs),
                shape_str(ks),
                shape_str(vs)
            )
        };
        if d != dk {
            bail!(
                "attention: q and k head dims differ ({d} vs {dk}): {}",
                shapes()
            );
        }
        if vs[rv - 3] != hkv || vs[rv - 2] != sk {
            bail!(
                "attention: k and v disagree on kv heads or keys ([{hkv}, {sk}] vs [{}, {}]): {}",
                vs[rv - 3],
                vs[rv - 2],
                shapes()
            );
        }
        if hkv == 0 || !hq.is_multiple_of(hkv) {
            bail!(
                "attention: {hq} query heads are not a multiple of {hkv} kv heads: {}",
                shapes()
            );
        }
        let batch_err = |_| {
            crate::TensorError(format!(
                "attention: batch dimensions cannot be broadcast together: {}",
                shapes()
            ))
        };
        let batch = broadcast_shapes(op, &qs[..rq - 3], &ks[..rk - 3]).map_err(batch_err)?;
        let batch = broadcast_shapes(op, &batch, &vs[..rv - 3]).map_err(batch_err)?;
        let dtype = DType::promote(DType::promote(q.dtype(), k.dtype()), v.dtype());
        let mut operands = vec![q, k, v];
        operands.extend(mask);
        crate::device::co_locate(op, &operands, usize::MAX)?;
        let q = to_float_dtype(op, q, dtype)?;
        let (k, v) = (to_float_dtype(op, k, dtype)?, to_float_dtype(op, v, dtype)?);
        let qv = q.with_layout(expand_batch(q.layout(), 3, &batch));
        let kv = k.with_layout(expand_batch(k.layout(), 3, &batch));
        let vv = v.with_layout(expand_batch(v.layout(), 3, &batch));
        let mask_view = match mask {
            None => None,
            Some(m) => {
                let mut scores_shape = batch.clone();
                scores_shape.extend_from_slice(&[hq, qs[rq - 2], sk]);
                let full = broadcast_shapes(op, &scores_shape, m.shape())?;
                if full != scores_shape {
                    bail!(
                        "attention: mask {} does not broadcast to the scores {}",
                        shape_str(m.shape()),
                        shape_str(&scores_shape)
                    );
                }
                Some(broadcast_view(m, &scores_shape))
            }
        };
        let scale = 1.0 / (d.max(1) as f64).sqrt();
        if crate::autograd::is_recording(&[&q, &k, &v]) {
            // Being differentiated: the same attention from ops that each have a gradient.
            return attention_from_ops(&q, &k, &v, mask, hq / hkv, scale);
        }
        q.backend()
            .attention(&qv, &kv, &vv, mask_view.as_ref(), scale)
    }
}

/// [`Tensor::attention`] (shapes already checked, q/k/v in one float dtype) written with
/// matmul, softmax and broadcasting, which the autograd tape records: used when an input is
/// tracked, so that attention's gradient is the composition of theirs (on any backend). Each
/// kv head serves `group` consecutive query heads; the softmax runs in f32 as the kernel's does.
fn attention_from_ops(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    mask: Option<&Tensor>,
    group: usize,
    scale: f64,
) -> Result<Tensor> {
    let heads = |t: &Tensor| -> Result<Tensor> {
        if group == 1 {
            return Ok(t.clone());
        }
        let r = t.rank();
        let mut wide = t.shape().to_vec();
        wide.insert(r - 2, group);
        let mut merged: Vec<isize> = t.shape().iter().map(|&n| n as isize).collect();
        merged[r - 3] *= group as isize;
        t.unsqueeze(r as isize - 2)?
            .broadcast_to(&wide)?
            .reshape(&merged)
    };
    let (k, v) = (heads(k)?, heads(v)?);
    let scores = q
        .matmul(&k.transpose(-1, -2)?)?
        .cast(DType::F32)?
        .binary(BinaryOp::Mul, &Tensor::scalar(scale, DType::F32))?;
    let scores = match mask {
        None => scores,
        Some(m) if m.dtype() == DType::Bool => {
            let hidden = Tensor::scalar(f64::NEG_INFINITY, DType::F32);
            Tensor::where_cond(m, &scores, &hidden)?
        }
        Some(m) => scores.binary(BinaryOp::Add, &m.cast(DType::F32)?)?,
    };
    scores.softmax(-1)?.cast(q.dtype())?.matmul(&v)
}
