//! Linear algebra builtins: `matmul linear einsum dot outer`.

use tl_tensor::ops::LinearFusion;
use tl_tensor::{BinaryOp, Tensor};

use super::args::at_call;
use super::{Builtin, CallArgs};
use crate::error::Result;
use crate::interp::Interpreter;
use crate::value::Value;

pub static BUILTINS: &[Builtin] = &[
    Builtin {
        name: "matmul",
        signature: "matmul(a: tensor, b: tensor) -> tensor",
        category: "linear algebra",
        doc: "The matrix product of `a` and `b`, the same as `a @ b`, with NumPy semantics: two \
              matrices [m, k] and [k, n] give [m, n]; a 1-D operand is treated as a row (first) \
              or column (second) vector and that dimension is dropped from the result; leading \
              batch dimensions broadcast ([b, m, k] @ [k, n] gives [b, m, n]). float32, float16 \
              and bfloat16 are supported (half types accumulate in float32); mixed dtypes are \
              promoted. Errors: inner dimensions that disagree (both shapes named), batch dims \
              that cannot broadcast, int tensors, rank-0 operands.",
        func: matmul,
    },
    Builtin {
        name: "linear",
        signature: "linear(x: tensor, w: tensor | list, b: tensor = none, norm: tensor = none, eps: float = 1e-5) -> tensor | list",
        category: "linear algebra",
        doc: "A fully connected layer: x @ transpose(w) + b. The weight `w` is stored [out, in] \
              as in PyTorch and GGUF files, so x of shape [..., in] gives [..., out]; the \
              optional bias `b` (third argument or `bias:`) has shape [out], or the result's \
              shape to add a residual in the same pass (`linear(a, wo, x)` is x + a @ \
              transpose(wo)). The result has the \
              promoted dtype of x and w (x's dtype for a quantized w). With a list of weights \
              (no bias), the result is the list of x @ transpose(w) for each: \
              `linear(h, [wq, wk, wv])` gives [q, k, v], and the CUDA backend reads the weights \
              in one launch for one input row when they share a type. `norm: g` RMS-normalises \
              x first, `linear(x, w, norm: g, eps: e)` being `linear(rms_norm(x, g, e), w)` \
              (`eps` defaults to 1e-5); the CUDA backend then normalises inside the product's \
              launch for one input row. Errors: x's last dim differing from w's in-features \
              (shapes named), a bias of the wrong size or given with a list, a w that is not \
              2-D, a norm weight whose length is not x's last dim.",
        func: linear,
    },
    Builtin {
        name: "einsum",
        signature: "einsum(spec: string, operands: tensor...) -> tensor",
        category: "linear algebra",
        doc: "Einstein summation over any number of operands, as NumPy's einsum: `spec` names \
              each operand's dimensions with letters, comma-separated, and optionally the \
              output's after `->` (`einsum(\"ij,jk->ik\", a, b)` is a matrix product, \
              `einsum(\"bhqd,bhkd->bhqk\", q, k)` attention scores). Letters missing from the \
              output are summed; a letter repeated within one operand takes its diagonal \
              (`\"ii->\"` is the trace); without `->` the output lists the letters that appear \
              once, sorted. Errors: a malformed spec, a count of operands that differs from the \
              spec, a letter bound to different sizes (shapes named).",
        func: einsum,
    },
    Builtin {
        name: "dot",
        signature: "dot(a: tensor, b: tensor) -> tensor",
        category: "linear algebra",
        doc: "The inner product sum(a[i] * b[i]) of two 1-D tensors of equal length, as a \
              rank-0 tensor of their promoted dtype. Lists of numbers are accepted. Errors: an \
              operand that is not 1-D, lengths that differ (both shapes named), int tensors.",
        func: dot,
    },
    Builtin {
        name: "outer",
        signature: "outer(a: tensor, b: tensor) -> tensor",
        category: "linear algebra",
        doc: "The outer product of two 1-D tensors: out[i, j] = a[i] * b[j], of shape [len(a), \
              len(b)] and the promoted dtype. Lists of numbers are accepted. Errors: an operand \
              that is not 1-D (its shape named).",
        func: outer,
    },
];

fn matmul(_: &mut Interpreter, args: &mut CallArgs) -> Result<Value> {
    args.expect_named(&[])?;
    args.expect_count(2, 2)?;
    let a = args.tensor(0)?;
    let b = args.tensor(1)?;
    at_call(args, a.matmul(&b)).map(Value::Tensor)
}

/// Positional index that no call reaches: `opt_tensor` and `opt_float` then read only the
/// named argument.
const NAMED_ONLY: usize = usize::MAX;

/// The `norm:` and `eps:` named arguments of `linear` and `swiglu`: an RMS norm applied to the
/// input first.
pub(super) fn norm_args(args: &CallArgs) -> Result<Option<(Tensor, f64)>> {
    let eps = args.opt_float(None, "eps")?;
    match args.opt_tensor(NAMED_ONLY, "norm")? {
        Some(g) => Ok(Some((g, eps.unwrap_or(super::nn::DEFAULT_EPS)))),
        None if eps.is_some() => Err(args.error("`eps:` is only taken with `norm:`")),
        None => Ok(None),
    }
}

fn linear(_: &mut Interpreter, args: &mut CallArgs) -> Result<Value> {
    args.expect_named(&["bias", "norm", "eps"])?;
    args.expect_count(2, 3)?;
    let x = args.tensor(0)?;
    let norm = norm_args(args)?;
    let mut fusion = LinearFusion {
        norm: norm.as_ref().map(|(g, eps)| (g, *eps)),
        ..LinearFusion::default()
    };
    if let Some(Value::List(items)) = args.get(1)
        && items.iter().all(|v| matches!(v, Value::Tensor(_)))
    {
        if args.opt_tensor(2, "bias")?.is_some() {
            return Err(args.arg_error(2, "a bias is not taken with a list of weights"));
        }
        let ws: Vec<Tensor> = items.iter().filter_map(crate::convert::to_tensor).collect();
        let refs: Vec<&Tensor> = ws.iter().collect();
        let ys = at_call(args, x.linear_fused(&refs, &fusion))?;
        return Ok(Value::List(std::rc::Rc::new(
            ys.into_iter().map(Value::Tensor).collect(),
        )));
    }
    let w = args.tensor(1)?;
    let b = args.opt_tensor(2, "bias")?;
    fusion.bias = b.as_ref();
    let mut ys = at_call(args, x.linear_fused(&[&w], &fusion))?;
    Ok(Value::Tensor(ys.remove(0)))
}

fn einsum(_: &mut Interpreter, args: &mut CallArgs) -> Result<Value> {
    args.expect_named(&[])?;
    if args.is_empty() {
        return Err(args.error("missing the spec string (argument 1)"));
    }
    let spec = args.string(0)?;
    let operands = (1..args.len())
        .map(|i| args.tensor(i))
        .collect::<Result<Vec<_>>>()?;
    let refs: Vec<&Tensor> = operands.iter().collect();
    at_call(args, Tensor::einsum(&spec, &refs)).map(Value::Tensor)
}

/// Both operands as 1-D tensors, or an error naming the offending shapes.
fn two_vectors(args: &CallArgs) -> Result<(Tensor, Tensor)> {
    args.expect_named(&[])?;
    args.expect_count(2, 2)?;
    let a = args.tensor(0)?;
    let b = args.tensor(1)?;
    if a.rank() != 1 || b.rank() != 1 {
        return Err(args.error(format!(
            "needs two 1-D tensors, got shapes {:?} and {:?}",
            a.shape(),
            b.shape()
        )));
    }
    Ok((a, b))
}

fn dot(_: &mut Interpreter, args: &mut CallArgs) -> Result<Value> {
    let (a, b) = two_vectors(args)?;
    if a.numel() != b.numel() {
        return Err(args.error(format!(
            "shapes {:?} and {:?} differ in length ({} vs {})",
            a.shape(),
            b.shape(),
            a.numel(),
            b.numel()
        )));
    }
    at_call(args, a.matmul(&b)).map(Value::Tensor)
}

fn outer(_: &mut Interpreter, args: &mut CallArgs) -> Result<Value> {
    let (a, b) = two_vectors(args)?;
    // A column times a row broadcasts to the [len(a), len(b)] product: exact, no reduction.
    let column = at_call(args, a.unsqueeze(1))?;
    let row = at_call(args, b.unsqueeze(0))?;
    at_call(args, column.binary(BinaryOp::Mul, &row)).map(Value::Tensor)
}
