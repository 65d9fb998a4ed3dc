//! Neural-network builtins: `softmax log_softmax rms_norm layer_norm embedding rope
//! causal_mask apply_attention_mask attention silu_mul swiglu`.

use tl_tensor::{DType, Tensor};

use super::args::at_call;
use super::{Builtin, CallArgs};
use crate::error::Result;
use crate::interp::Interpreter;
use crate::value::Value;

pub static BUILTINS: &[Builtin] = &[
    Builtin {
        name: "softmax",
        signature: "softmax(x: tensor, dim: int = -1) -> tensor",
        category: "neural",
        doc: "exp(x) normalised to sum 1 along `dim` (second argument or `dim:`, default -1, the \
              last; negative counts from the end), computed stably (the maximum is subtracted \
              first, in float32 for half types). The result has x's shape and dtype; int inputs \
              give float32. A row that is all -inf (fully masked) gives zeros, never NaN. Errors: \
              a dim out of range, a rank-0 tensor.",
        func: softmax,
    },
    Builtin {
        name: "log_softmax",
        signature: "log_softmax(x: tensor, dim: int = -1) -> tensor",
        category: "neural",
        doc: "The logarithm of softmax along `dim` (second argument or `dim:`, default -1), \
              computed stably as x - max - log(sum(exp(x - max))) rather than log(softmax(x)). \
              The result has x's shape and dtype (int inputs give float32). Errors: a dim out of \
              range, a rank-0 tensor.",
        func: log_softmax,
    },
    Builtin {
        name: "rms_norm",
        signature: "rms_norm(x: tensor, w: tensor, eps: float = 1e-5) -> tensor",
        category: "neural",
        doc: "Root-mean-square normalisation over the last dimension, as in Llama: \
              x / sqrt(mean(x^2) + eps) * w. `w` is the learned scale of shape [d] where d is \
              x's last dimension; `eps` (third argument or `eps:`) defaults to 1e-5. The result \
              has x's shape and dtype (half types are accumulated in float32). Errors: a weight \
              whose length differs from x's last dimension (both shapes named), a rank-0 x.",
        func: rms_norm,
    },
    Builtin {
        name: "layer_norm",
        signature: "layer_norm(x: tensor, w: tensor = none, b: tensor = none, eps: float = 1e-5) -> tensor",
        category: "neural",
        doc: "Layer normalisation over the last dimension: (x - mean) / sqrt(var + eps) * w + b, \
              with the biased variance as in PyTorch. The scale `w` (second argument or \
              `weight:`) and shift `b` (third or `bias:`) are optional tensors of shape [d], d \
              being x's last dimension; `eps` (fourth argument or `eps:`) defaults to 1e-5. The \
              result has x's shape and dtype. Errors: w or b of the wrong length (shapes named), \
              a rank-0 x.",
        func: layer_norm,
    },
    Builtin {
        name: "embedding",
        signature: "embedding(table: tensor, ids: tensor | list | int) -> tensor",
        category: "neural",
        doc: "Looks up rows of an embedding `table` of shape [vocab, d]: the result has shape \
              ids.shape + [d] and the table's dtype. `ids` is an int tensor of any shape, a list \
              of ints (shape [n, d] out) or one host int (shape [d] out); float tensors of whole \
              numbers are accepted. Errors: an id below 0 or at least vocab (the id and vocab \
              size named), a table that is not 2-D, ids that are not whole numbers.",
        func: embedding,
    },
    Builtin {
        name: "rope",
        signature: "rope(x: tensor, pos: int, theta: float = 10000.0, neox: bool = false) -> tensor",
        category: "neural",
        doc: "Rotary position embedding of the last dimension (head_dim, even). Element pairs \
              (x[2i], x[2i+1]) are rotated by the angle p * theta^(-2i/head_dim), where p is \
              `pos` (a host int, the position of the first row) plus the row's index along the \
              sequence dim: dim -3 for x of shape [.., seq, heads, head_dim], dim -2 for \
              [seq, head_dim], and a single position for a 1-D x. `theta` (third argument or \
              `theta:`) defaults to 10000.0. `neox: true` rotates the halves (x[i], x[i + d/2]) \
              instead, as Hugging Face Llama checkpoints expect. Result: x's shape and dtype. \
              Errors: an odd last dimension, a negative pos.",
        func: rope,
    },
    Builtin {
        name: "causal_mask",
        signature: "causal_mask(n: int, offset: int = 0, dtype: string = \"float32\") -> tensor",
        category: "neural",
        doc: "An additive attention mask of shape [n, n + offset] for n new queries following \
              `offset` cached positions: 0 where key j <= offset + i (the key is not in the \
              query's future) and -inf elsewhere. Add it to the scores (`apply_attention_mask`) \
              before softmax. `n` and `offset` (second argument or `offset:`, default 0) are \
              non-negative host ints; `dtype:` defaults to \"float32\". Errors: negative sizes, an \
              unknown or non-float dtype.",
        func: causal_mask,
    },
    Builtin {
        name: "apply_attention_mask",
        signature: "apply_attention_mask(scores: tensor, mask: tensor) -> tensor",
        category: "neural",
        doc: "The attention `scores` (e.g. [heads, q, k]) plus an additive `mask` broadcast to \
              them (e.g. [q, k] from `causal_mask`): masked positions become -inf so that \
              softmax gives them zero weight, also in float16 (no NaN). The result has the \
              scores' shape and dtype. Errors: a mask that cannot be broadcast to the scores \
              (both shapes named).",
        func: apply_attention_mask,
    },
    Builtin {
        name: "attention",
        signature: "attention(q: tensor, k: tensor, v: tensor, mask: tensor = none) -> tensor",
        category: "neural",
        doc: "Scaled dot-product attention softmax(q @ k^T / sqrt(d) + mask) @ v, fused. q has \
              shape [.., hq, sq, d] and k, v [.., hkv, sk, d] with hq a multiple of hkv (grouped \
              query attention: query head h reads kv head h / (hq / hkv)); the optional additive \
              `mask` (fourth argument or `mask:`, e.g. `causal_mask(sq, sk - sq)`) broadcasts to \
              [.., hq, sq, sk]. The softmax runs in float32; the result has shape [.., hq, sq, d] \
              and q's dtype. Errors: head dims or batch dims that disagree, hq not a multiple of \
              hkv, a mask that does not broadcast (shapes named).",
        func: attention,
    },
    Builtin {
        name: "silu_mul",
        signature: "silu_mul(a: tensor, b: tensor) -> tensor",
        category: "neural",
        doc: "silu(a) * b in one pass: the gated activation of a SwiGLU feed-forward layer \
              (`silu_mul(gate, up)`), cheaper than the two ops apart. `a` and `b` broadcast like \
              NumPy; the result has the broadcast shape and promoted dtype. Errors: shapes that \
              cannot be broadcast (both named).",
        func: silu_mul,
    },
    Builtin {
        name: "swiglu",
        signature: "swiglu(x: tensor, w_gate: tensor, w_up: tensor, norm: tensor = none, eps: float = 1e-5) -> tensor",
        category: "neural",
        doc: "The gated input of a SwiGLU feed-forward layer: silu(linear(x, w_gate)) * \
              linear(x, w_up), the weights stored [hidden, in] as for `linear` (float or \
              quantized, of one shape). `norm: g` RMS-normalises x first (`eps:` defaults to \
              1e-5), as `linear` does. The CUDA backend reads both weights and applies the norm \
              and the activation in one launch for one input row; elsewhere it is the same as \
              `silu_mul(linear(h, w_gate), linear(h, w_up))`. Result: [.., hidden] in the \
              promoted float dtype. Errors: weights of different shapes (both named), x's last \
              dim differing from their in-features, a norm weight of the wrong length.",
        func: swiglu,
    },
];

fn swiglu(_: &mut Interpreter, args: &mut CallArgs) -> Result<Value> {
    args.expect_named(&["norm", "eps"])?;
    args.expect_count(3, 3)?;
    let x = args.tensor(0)?;
    let gate = args.tensor(1)?;
    let up = args.tensor(2)?;
    let norm = super::linalg::norm_args(args)?;
    let fusion = tl_tensor::ops::LinearFusion {
        norm: norm.as_ref().map(|(g, eps)| (g, *eps)),
        swiglu: true,
        ..Default::default()
    };
    let mut ys = at_call(args, x.linear_fused(&[&gate, &up], &fusion))?;
    Ok(Value::Tensor(ys.remove(0)))
}

fn softmax_args(args: &CallArgs) -> Result<(Tensor, isize)> {
    args.expect_named(&["dim"])?;
    args.expect_count(1, 2)?;
    let x = args.tensor(0)?;
    let dim = args.opt_dim(1, "dim")?.unwrap_or(-1);
    Ok((x, dim))
}

fn softmax(_: &mut Interpreter, args: &mut CallArgs) -> Result<Value> {
    let (x, dim) = softmax_args(args)?;
    at_call(args, x.softmax(dim)).map(Value::Tensor)
}

fn log_softmax(_: &mut Interpreter, args: &mut CallArgs) -> Result<Value> {
    let (x, dim) = softmax_args(args)?;
    at_call(args, x.log_softmax(dim)).map(Value::Tensor)
}

pub(super) const DEFAULT_EPS: f64 = 1e-5;

fn rms_norm(_: &mut Interpreter, args: &mut CallArgs) -> Result<Value> {
    args.expect_named(&["eps"])?;
    args.expect_count(2, 3)?;
    let x = args.tensor(0)?;
    let w = args.tensor(1)?;
    let eps = args.opt_float(Some(2), "eps")?.unwrap_or(DEFAULT_EPS);
    at_call(args, x.rms_norm(&w, eps)).map(Value::Tensor)
}

fn layer_norm(_: &mut Interpreter, args: &mut CallArgs) -> Result<Value> {
    args.expect_named(&["weight", "bias", "eps"])?;
    args.expect_count(1, 4)?;
    let x = args.tensor(0)?;
    let w = args.opt_tensor(1, "weight")?;
    let b = args.opt_tensor(2, "bias")?;
    let eps = args.opt_float(Some(3), "eps")?.unwrap_or(DEFAULT_EPS);
    at_call(args, x.layer_norm(w.as_ref(), b.as_ref(), eps)).map(Value::Tensor)
}

fn embedding(_: &mut Interpreter, args: &mut CallArgs) -> Result<Value> {
    args.expect_named(&[])?;
    args.expect_count(2, 2)?;
    let table = args.tensor(0)?;
    let ids = args.index_tensor(1)?;
    at_call(args, Tensor::embedding(&table, &ids)).map(Value::Tensor)
}

fn rope(_: &mut Interpreter, args: &mut CallArgs) -> Result<Value> {
    args.expect_named(&["theta", "neox"])?;
    args.expect_count(2, 3)?;
    let x = args.tensor(0)?;
    let pos = args.int(1)?;
    let pos = usize::try_from(pos)
        .map_err(|_| args.arg_error(1, format!("the position must be non-negative, got {pos}")))?;
    let theta = args.opt_float(Some(2), "theta")?.unwrap_or(10000.0);
    let neox = args.opt_bool(None, "neox", false)?;
    let r = if neox {
        x.rope_neox(pos, theta)
    } else {
        x.rope(pos, theta)
    };
    at_call(args, r).map(Value::Tensor)
}

fn causal_mask(_: &mut Interpreter, args: &mut CallArgs) -> Result<Value> {
    args.expect_named(&["offset", "dtype"])?;
    args.expect_count(1, 2)?;
    let n = args.int(0)?;
    let offset = args.opt_int(Some(1), "offset")?.unwrap_or(0);
    let (Ok(n), Ok(offset)) = (usize::try_from(n), usize::try_from(offset)) else {
        return Err(args.error(format!(
            "sizes must be non-negative, got n = {n} and offset = {offset}"
        )));
    };
    let dtype = args.dtype_named(DType::F32)?;
    if !dtype.is_float() {
        return Err(args.error(format!(
            "a mask needs a float dtype (it holds -inf), got {}",
            dtype.name()
        )));
    }
    at_call(args, Tensor::causal_mask(n, offset, dtype)).map(Value::Tensor)
}

fn apply_attention_mask(_: &mut Interpreter, args: &mut CallArgs) -> Result<Value> {
    args.expect_named(&[])?;
    args.expect_count(2, 2)?;
    let scores = args.tensor(0)?;
    let mask = args.tensor(1)?;
    at_call(args, scores.apply_attention_mask(&mask)).map(Value::Tensor)
}

fn attention(_: &mut Interpreter, args: &mut CallArgs) -> Result<Value> {
    args.expect_named(&["mask"])?;
    args.expect_count(3, 4)?;
    let q = args.tensor(0)?;
    let k = args.tensor(1)?;
    let v = args.tensor(2)?;
    let mask = args.opt_tensor(3, "mask")?;
    at_call(args, Tensor::attention(&q, &k, &v, mask.as_ref())).map(Value::Tensor)
}

fn silu_mul(_: &mut Interpreter, args: &mut CallArgs) -> Result<Value> {
    args.expect_named(&[])?;
    args.expect_count(2, 2)?;
    let a = args.tensor(0)?;
    let b = args.tensor(1)?;
    at_call(args, Tensor::silu_mul(&a, &b)).map(Value::Tensor)
}
