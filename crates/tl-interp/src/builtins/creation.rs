//! Tensor creation builtins: `zeros ones full rand randn arange eye tensor`.

use tl_tensor::{DType, Tensor};

use super::args::{at_call, nested_ints};
use super::{Builtin, CallArgs};
use crate::convert;
use crate::error::Result;
use crate::interp::Interpreter;
use crate::value::Value;

pub static BUILTINS: &[Builtin] = &[
    Builtin {
        name: "zeros",
        signature: "zeros(shape..., dtype: string = \"float32\") -> tensor",
        category: "creation",
        doc: "A new tensor filled with 0. The shape is a list of ints (`zeros([2, 3])`), a 1-D \
              int tensor, or the sizes as separate int arguments (`zeros(2, 3)`); `zeros([])` is \
              a rank-0 tensor. `dtype:` names the element type: \"float32\"/\"f32\" (the default), \
              \"float16\"/\"f16\", \"bfloat16\"/\"bf16\", \"int64\"/\"i64\" or \"bool\". Errors: a \
              missing or negative size, an argument that is not an int, an unknown dtype.",
        func: zeros,
    },
    Builtin {
        name: "ones",
        signature: "ones(shape..., dtype: string = \"float32\") -> tensor",
        category: "creation",
        doc: "A new tensor filled with 1. The shape is a list of ints (`ones([2, 3])`), a 1-D int \
              tensor, or the sizes as separate int arguments (`ones(2, 3)`). `dtype:` names the \
              element type (\"float32\" by default; \"float16\", \"bfloat16\", \"int64\", \"bool\" \
              and the short forms \"f16\", \"bf16\", \"i64\" also work). Errors: a missing or \
              negative size, a non-int size, an unknown dtype.",
        func: ones,
    },
    Builtin {
        name: "full",
        signature: "full(shape, value: number, dtype: string = \"float32\") -> tensor",
        category: "creation",
        doc: "A new tensor of the given shape with every element equal to `value`. `shape` is a \
              list of ints, a 1-D int tensor or a single int (a 1-D tensor of that length); \
              `value` is a host number or a one-element tensor. `dtype:` names the element type, \
              \"float32\" by default (the value is rounded to it; int64 truncates). Errors: a \
              negative size, a value that is not a number, an unknown dtype, a wrong number of \
              arguments (exactly 2).",
        func: full,
    },
    Builtin {
        name: "rand",
        signature: "rand(shape..., dtype: string = \"float32\") -> tensor",
        category: "creation",
        doc: "A new tensor of samples drawn uniformly from [0, 1), using the interpreter's seeded \
              random generator (the same program gives the same numbers on every run). The shape \
              is a list of ints, a 1-D int tensor or the sizes as separate int arguments \
              (`rand(2, 3)`). `dtype:` must be a float type: \"float32\" (default), \"float16\" or \
              \"bfloat16\". Errors: a missing or negative size, a non-float dtype.",
        func: rand,
    },
    Builtin {
        name: "randn",
        signature: "randn(shape..., dtype: string = \"float32\") -> tensor",
        category: "creation",
        doc: "A new tensor of samples from the standard normal distribution (mean 0, standard \
              deviation 1), using the interpreter's seeded random generator. The shape is a list \
              of ints, a 1-D int tensor or the sizes as separate int arguments (`randn(4, 8)`). \
              `dtype:` must be a float type: \"float32\" (default), \"float16\" or \"bfloat16\". \
              Errors: a missing or negative size, a non-float dtype.",
        func: randn,
    },
    Builtin {
        name: "arange",
        signature: "arange(end) | arange(start, end, step = 1, dtype: string) -> tensor",
        category: "creation",
        doc: "A 1-D tensor of evenly spaced values: `arange(n)` is 0, 1, ..., n-1 and \
              `arange(start, end, step)` runs from `start` up to but excluding `end` by `step` \
              (which may be negative; default 1). Bounds are host numbers. The result is int64 \
              when every bound is an int and float32 otherwise, unless `dtype:` names another \
              type (\"float16\", \"int64\", ...). Errors: a step of 0, non-numeric bounds, more \
              than 3 arguments, an unknown dtype.",
        func: arange,
    },
    Builtin {
        name: "eye",
        signature: "eye(n: int, dtype: string = \"float32\") -> tensor",
        category: "creation",
        doc: "The n x n identity matrix: a 2-D tensor with 1 on the diagonal and 0 elsewhere. `n` \
              is a non-negative host int; `dtype:` names the element type, \"float32\" by default. \
              Errors: a negative or non-int `n`, an unknown dtype.",
        func: eye,
    },
    Builtin {
        name: "tensor",
        signature: "tensor(data, dtype: string) -> tensor",
        category: "creation",
        doc: "A tensor from host data: a (nested, rectangular) list of numbers such as \
              `tensor([[1.0, 2.0], [3.0, 4.0]])`, a host number (a rank-0 tensor) or an existing \
              tensor. The dtype is given as the second argument or as `dtype:` (\"float32\", \
              \"float16\", \"bfloat16\", \"int64\", \"bool\" or the short forms); without it a list \
              of host ints becomes int64, a list of bools becomes bool, a list with any float \
              (or an empty list) becomes float32, and a tensor keeps its dtype. Errors: a ragged \
              list, a list holding non-numbers, an unknown dtype.",
        func: tensor,
    },
];

/// Shared by `zeros`, `ones`, `rand` and `randn`: the shape from the positional arguments and
/// the dtype from `dtype:`.
fn shape_and_dtype(args: &CallArgs) -> Result<(Vec<usize>, DType)> {
    args.expect_named(&["dtype"])?;
    let shape = args.shape_arg(0)?;
    let dtype = args.dtype_named(DType::F32)?;
    Ok((shape, dtype))
}

fn zeros(_: &mut Interpreter, args: &mut CallArgs) -> Result<Value> {
    let (shape, dtype) = shape_and_dtype(args)?;
    let t = Tensor::try_full(&shape, 0.0, dtype).map_err(|e| args.error(e.to_string()))?;
    Ok(Value::Tensor(t))
}

fn ones(_: &mut Interpreter, args: &mut CallArgs) -> Result<Value> {
    let (shape, dtype) = shape_and_dtype(args)?;
    let t = Tensor::try_full(&shape, 1.0, dtype).map_err(|e| args.error(e.to_string()))?;
    Ok(Value::Tensor(t))
}

fn full(_: &mut Interpreter, args: &mut CallArgs) -> Result<Value> {
    args.expect_named(&["dtype"])?;
    args.expect_count(2, 2)?;
    let shape: Vec<usize> = args
        .int_list(0)?
        .into_iter()
        .map(|d| {
            usize::try_from(d).map_err(|_| args.arg_error(0, "shape sizes must be non-negative"))
        })
        .collect::<Result<_>>()?;
    let value = args.float(1)?;
    let dtype = args.dtype_named(DType::F32)?;
    let t = Tensor::try_full(&shape, value, dtype).map_err(|e| args.error(e.to_string()))?;
    Ok(Value::Tensor(t))
}

fn random_dtype(args: &CallArgs, dtype: DType) -> Result<()> {
    if dtype.is_float() {
        Ok(())
    } else {
        Err(args.error(format!(
            "random samples need a float dtype, got {}",
            dtype.name()
        )))
    }
}

fn rand(interp: &mut Interpreter, args: &mut CallArgs) -> Result<Value> {
    let (shape, dtype) = shape_and_dtype(args)?;
    random_dtype(args, dtype)?;
    let t = Tensor::try_rand(&shape, dtype, interp.rng()).map_err(|e| args.error(e.to_string()))?;
    Ok(Value::Tensor(t))
}

fn randn(interp: &mut Interpreter, args: &mut CallArgs) -> Result<Value> {
    let (shape, dtype) = shape_and_dtype(args)?;
    random_dtype(args, dtype)?;
    let t =
        Tensor::try_randn(&shape, dtype, interp.rng()).map_err(|e| args.error(e.to_string()))?;
    Ok(Value::Tensor(t))
}

fn arange(_: &mut Interpreter, args: &mut CallArgs) -> Result<Value> {
    args.expect_named(&["dtype"])?;
    args.expect_count(1, 3)?;
    let all_ints = args
        .positional
        .iter()
        .all(|(v, _)| matches!(v, Value::Int(_)));
    let (start, end, step) = match args.len() {
        1 => (0.0, args.float(0)?, 1.0),
        2 => (args.float(0)?, args.float(1)?, 1.0),
        _ => (args.float(0)?, args.float(1)?, args.float(2)?),
    };
    let default = if all_ints { DType::I64 } else { DType::F32 };
    let dtype = args.dtype_named(default)?;
    at_call(args, Tensor::arange(start, end, step, dtype)).map(Value::Tensor)
}

fn eye(_: &mut Interpreter, args: &mut CallArgs) -> Result<Value> {
    args.expect_named(&["dtype"])?;
    args.expect_count(1, 1)?;
    let n = args.int(0)?;
    let n = usize::try_from(n)
        .map_err(|_| args.arg_error(0, format!("the size must be non-negative, got {n}")))?;
    let dtype = args.dtype_named(DType::F32)?;
    Ok(Value::Tensor(Tensor::eye(n, dtype)))
}

/// `tensor(data)`: made on the host, then placed on the run's default device (`--device`).
fn tensor(interp: &mut Interpreter, args: &mut CallArgs) -> Result<Value> {
    match tensor_on_host(interp, args)? {
        Value::Tensor(t) => at_call(args, t.to_default_device()).map(Value::Tensor),
        other => Ok(other),
    }
}

fn tensor_on_host(_: &mut Interpreter, args: &mut CallArgs) -> Result<Value> {
    args.expect_named(&["dtype"])?;
    args.expect_count(1, 2)?;
    let explicit = if args.len() == 2 || args.named("dtype").is_some() {
        Some(args.dtype_arg(Some(1), DType::F32)?)
    } else {
        None
    };
    let data = args.get(0).cloned().unwrap_or(Value::Unit);
    // A list of host ints keeps exact int64 values (no detour through float32).
    if let Value::List(_) = &data {
        let mut shape = Vec::new();
        let mut ints = Vec::new();
        if nested_ints(&data, 0, &mut shape, &mut ints) {
            let mut t = at_call(args, Tensor::from_i64(ints, &shape))?;
            if explicit.is_none() {
                if t.numel() == 0 {
                    t = at_call(args, t.cast(DType::F32))?;
                } else if all_bools(&data) {
                    t = at_call(args, t.cast(DType::Bool))?;
                }
            }
            return match explicit {
                Some(dtype) if dtype != DType::I64 => {
                    at_call(args, t.cast(dtype)).map(Value::Tensor)
                }
                _ => Ok(Value::Tensor(t)),
            };
        }
    }
    let t = match &data {
        Value::List(_) => convert::to_tensor(&data).ok_or_else(|| {
            args.arg_error(
                0,
                "argument 1 must be a rectangular (not ragged) list of numbers",
            )
        })?,
        _ => args.tensor(0)?,
    };
    match explicit {
        Some(dtype) if dtype != t.dtype() => at_call(args, t.cast(dtype)).map(Value::Tensor),
        _ => Ok(Value::Tensor(t)),
    }
}

/// True when every leaf of a (nested) list is a bool.
fn all_bools(v: &Value) -> bool {
    match v {
        Value::List(items) => items.iter().all(all_bools),
        Value::Bool(_) => true,
        _ => false,
    }
}
