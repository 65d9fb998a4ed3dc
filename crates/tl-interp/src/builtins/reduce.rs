//! Reductions: `sum mean max min prod norm argmax argmin`, over all elements or over the dims
//! given (positionally or as `dim:`), with `keepdim:`.

use tl_tensor::{ReduceOp, Tensor};

use super::args::at_call;
use super::{Builtin, CallArgs};
use crate::error::Result;
use crate::interp::Interpreter;
use crate::value::Value;

macro_rules! reduce_doc {
    ($what:literal, $result:literal) => {
        concat!(
            $what,
            " `x` is a tensor (or a list of numbers). `dim` (second argument or `dim:`) is one \
             dimension or a list of them, negative counting from the end; without it every \
             element is reduced. `keepdim` (third argument or `keepdim:`, default false) keeps \
             each reduced dimension with size 1 so the result broadcasts against `x`. ",
            $result,
            " Errors: a dimension out of range for x's rank, a repeated dimension, a `dim` that \
             is not an int or list of ints, an unknown named argument."
        )
    };
}

pub static BUILTINS: &[Builtin] = &[
    Builtin {
        name: "sum",
        signature: "sum(x: tensor, dim: int | list = all, keepdim: bool = false) -> tensor",
        category: "reduction",
        doc: reduce_doc!(
            "The sum of the elements of `x`.",
            "Float tensors keep their dtype, int and bool tensors give int64; without `dim` the \
             result is a rank-0 tensor."
        ),
        func: sum,
    },
    Builtin {
        name: "mean",
        signature: "mean(x: tensor, dim: int | list = all, keepdim: bool = false) -> tensor",
        category: "reduction",
        doc: reduce_doc!(
            "The arithmetic mean of the elements of `x`.",
            "Float tensors keep their dtype; int and bool tensors give float32. Without `dim` \
             the result is a rank-0 tensor."
        ),
        func: mean,
    },
    Builtin {
        name: "prod",
        signature: "prod(x: tensor, dim: int | list = all, keepdim: bool = false) -> tensor",
        category: "reduction",
        doc: reduce_doc!(
            "The product of the elements of `x`.",
            "Float tensors keep their dtype, int and bool tensors give int64; without `dim` the \
             result is a rank-0 tensor."
        ),
        func: prod,
    },
    Builtin {
        name: "max",
        signature: "max(x: tensor, dim: int | list = all, keepdim: bool = false) -> tensor",
        category: "reduction",
        doc: reduce_doc!(
            "The largest element of `x` (values only; `argmax` gives the positions). Called \
             with two or more host numbers, `max(a, b, ...)` instead returns the largest of \
             them as a host number (an int when all are ints); `maximum(a, b)` compares two \
             tensors elementwise.",
            "The result has x's dtype; without `dim` it is a rank-0 tensor. A reduced \
             dimension of size 0 is an error."
        ),
        func: max,
    },
    Builtin {
        name: "min",
        signature: "min(x: tensor, dim: int | list = all, keepdim: bool = false) -> tensor",
        category: "reduction",
        doc: reduce_doc!(
            "The smallest element of `x` (values only; `argmin` gives the positions). Called \
             with two or more host numbers, `min(a, b, ...)` instead returns the smallest of \
             them as a host number (an int when all are ints); `minimum(a, b)` compares two \
             tensors elementwise.",
            "The result has x's dtype; without `dim` it is a rank-0 tensor. A reduced \
             dimension of size 0 is an error."
        ),
        func: min,
    },
    Builtin {
        name: "norm",
        signature: "norm(x: tensor, dim: int | list = all, keepdim: bool = false) -> tensor",
        category: "reduction",
        doc: reduce_doc!(
            "The Euclidean (L2) norm sqrt(sum(x^2)) of the elements of `x`.",
            "Float tensors keep their dtype, int tensors give float32; without `dim` the \
             result is a rank-0 tensor."
        ),
        func: norm,
    },
    Builtin {
        name: "argmax",
        signature: "argmax(x: tensor, dim: int, keepdim: bool = false) -> int | tensor",
        category: "reduction",
        doc: "The position of the largest element of `x` (the first one on ties). Without `dim` \
              the tensor is read and the index into its flattened elements is returned as a HOST \
              INT (this is the one device read per token in greedy decoding: \
              `let next = argmax(logits)`). With `dim` (second argument or `dim:`, negative counts \
              from the end) the result is an int64 tensor of x's shape without that dimension, or \
              with it kept as size 1 when `keepdim:` is true. Errors: an empty tensor, a \
              dimension out of range, a list of dims, an unknown named argument.",
        func: argmax,
    },
    Builtin {
        name: "argmin",
        signature: "argmin(x: tensor, dim: int, keepdim: bool = false) -> int | tensor",
        category: "reduction",
        doc: "The position of the smallest element of `x` (the first one on ties). Without \
              `dim` the index into the flattened elements is returned as a host int (the tensor \
              is read). With `dim` (second argument or `dim:`, negative counts from the end) the \
              result is an int64 tensor of x's shape without that dimension, or with it kept as \
              size 1 when `keepdim:` is true. Errors: an empty tensor, a dimension out of range, \
              a list of dims, an unknown named argument.",
        func: argmin,
    },
];

/// The tensor, the dims and keepdim of a reduction call.
fn reduction_args(args: &CallArgs) -> Result<(Tensor, Option<Vec<isize>>, bool)> {
    args.expect_named(&["dim", "keepdim"])?;
    args.expect_count(1, 3)?;
    let x = args.tensor(0)?;
    let dims = args.opt_dims(1, "dim")?;
    let keepdim = args.opt_bool(Some(2), "keepdim", false)?;
    Ok((x, dims, keepdim))
}

fn reduce(args: &CallArgs, op: ReduceOp) -> Result<Value> {
    let (x, dims, keepdim) = reduction_args(args)?;
    at_call(args, x.reduce(op, dims.as_deref(), keepdim)).map(Value::Tensor)
}

fn sum(_: &mut Interpreter, args: &mut CallArgs) -> Result<Value> {
    reduce(args, ReduceOp::Sum)
}

fn mean(_: &mut Interpreter, args: &mut CallArgs) -> Result<Value> {
    reduce(args, ReduceOp::Mean)
}

fn prod(_: &mut Interpreter, args: &mut CallArgs) -> Result<Value> {
    reduce(args, ReduceOp::Prod)
}

/// `max(a, b, ...)` / `min(a, b, ...)` of two or more host numbers.
fn host_extreme(args: &CallArgs, larger: bool) -> Option<Value> {
    if args.len() < 2 || !args.named.is_empty() {
        return None;
    }
    let values: Vec<&Value> = args.positional.iter().map(|p| &p.0).collect();
    if values.iter().all(|v| matches!(v, Value::Int(_))) {
        let ints = values.iter().filter_map(|v| match v {
            Value::Int(i) => Some(*i),
            _ => None,
        });
        let best = if larger { ints.max() } else { ints.min() };
        return best.map(Value::Int);
    }
    let mut best: Option<f64> = None;
    for v in values {
        let x = match v {
            Value::Int(i) => *i as f64,
            Value::Float(f) => *f,
            _ => return None,
        };
        best = Some(match best {
            None => x,
            Some(b) if larger => b.max(x),
            Some(b) => b.min(x),
        });
    }
    best.map(Value::Float)
}

fn max(_: &mut Interpreter, args: &mut CallArgs) -> Result<Value> {
    if let Some(v) = host_extreme(args, true) {
        return Ok(v);
    }
    reduce(args, ReduceOp::Max)
}

fn min(_: &mut Interpreter, args: &mut CallArgs) -> Result<Value> {
    if let Some(v) = host_extreme(args, false) {
        return Ok(v);
    }
    reduce(args, ReduceOp::Min)
}

fn norm(_: &mut Interpreter, args: &mut CallArgs) -> Result<Value> {
    let (x, dims, keepdim) = reduction_args(args)?;
    at_call(args, x.norm(dims.as_deref(), keepdim)).map(Value::Tensor)
}

/// `argmax`/`argmin`: a host int over all elements, an int64 tensor along one dim.
fn arg_extreme(args: &CallArgs, largest: bool) -> Result<Value> {
    args.expect_named(&["dim", "keepdim"])?;
    args.expect_count(1, 3)?;
    let x = args.tensor(0)?;
    let dim = args.opt_dim(1, "dim")?;
    let keepdim = args.opt_bool(Some(2), "keepdim", false)?;
    let r = if largest {
        x.argmax(dim, keepdim)
    } else {
        x.argmin(dim, keepdim)
    };
    let r = at_call(args, r)?;
    match dim {
        Some(_) => Ok(Value::Tensor(r)),
        None => {
            let index = r.to_vec_i64();
            match index.as_slice() {
                [i] => Ok(Value::Int(*i)),
                _ => Err(args.error(format!(
                    "expected one index, got a tensor of shape {:?}",
                    r.shape()
                ))),
            }
        }
    }
}

fn argmax(_: &mut Interpreter, args: &mut CallArgs) -> Result<Value> {
    arg_extreme(args, true)
}

fn argmin(_: &mut Interpreter, args: &mut CallArgs) -> Result<Value> {
    arg_extreme(args, false)
}
