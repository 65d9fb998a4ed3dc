//! Elementwise builtins: the functions of one tensor (`neg abs exp ... step`), `clamp`,
//! `pow`, `maximum`, `minimum` and `where`. Given host numbers they compute on the host and
//! return host numbers; given tensors they broadcast like NumPy.

use tl_tensor::{BinaryOp, DType, Tensor, UnaryOp};

use super::args::at_call;
use super::{Builtin, CallArgs};
use crate::error::Result;
use crate::interp::Interpreter;
use crate::value::Value;

macro_rules! unary_builtin {
    ($name:literal, $func:ident, $op:ident, $what:literal) => {
        Builtin {
            name: $name,
            signature: concat!($name, "(x: tensor | number) -> tensor | number"),
            category: "elementwise",
            doc: concat!(
                $what,
                " `x` is a tensor, a (nested) list of numbers (made a float32 tensor) or a host \
                 number. A tensor gives a tensor of the same shape; float tensors keep their \
                 dtype, int and bool tensors are computed as float32 (except for neg, abs, \
                 relu and step, which keep int64). A host number gives a host number. Errors: \
                 an argument that is not a number or tensor, a number of arguments other than 1, \
                 any named argument."
            ),
            func: $func,
        }
    };
}

pub static BUILTINS: &[Builtin] = &[
    unary_builtin!("neg", neg, Neg, "Negation, -x, of every element."),
    unary_builtin!("abs", abs, Abs, "Absolute value |x| of every element."),
    unary_builtin!("exp", exp, Exp, "The exponential e^x of every element."),
    unary_builtin!(
        "log",
        log,
        Log,
        "The natural logarithm of every element (NaN below 0, -inf at 0)."
    ),
    unary_builtin!(
        "sqrt",
        sqrt,
        Sqrt,
        "The square root of every element (NaN below 0)."
    ),
    unary_builtin!(
        "rsqrt",
        rsqrt,
        Rsqrt,
        "The reciprocal square root 1/sqrt(x) of every element (inf at 0)."
    ),
    unary_builtin!("sin", sin, Sin, "The sine of every element (radians)."),
    unary_builtin!("cos", cos, Cos, "The cosine of every element (radians)."),
    unary_builtin!(
        "tanh",
        tanh,
        Tanh,
        "The hyperbolic tangent of every element."
    ),
    unary_builtin!(
        "sigmoid",
        sigmoid,
        Sigmoid,
        "The logistic sigmoid 1 / (1 + e^-x) of every element."
    ),
    unary_builtin!(
        "relu",
        relu,
        Relu,
        "The rectifier max(x, 0) of every element."
    ),
    unary_builtin!(
        "gelu",
        gelu,
        Gelu,
        "The Gaussian error linear unit x * (1 + erf(x / sqrt(2))) / 2 of every element (the \
         exact erf form, PyTorch's default)."
    ),
    unary_builtin!(
        "silu",
        silu,
        Silu,
        "The sigmoid linear unit (swish) x * sigmoid(x) of every element."
    ),
    unary_builtin!(
        "step",
        step,
        Step,
        "The Heaviside step of every element: 1 where x > 0, else 0 (the tensor-logic \
         threshold that turns counts into truth values)."
    ),
    Builtin {
        name: "clamp",
        signature: "clamp(x: tensor | number, min: number, max: number) -> tensor | number",
        category: "elementwise",
        doc: "Limits every element of `x` to the range [min, max]: min(max(x, min), max). \
              `min` and `max` are host numbers, given positionally or as `min:` / `max:`; either \
              may be left out (`clamp(x, max: 1.0)`) but not both. A tensor keeps its shape and \
              dtype; a host number gives a host number (an int when x and both bounds are ints). \
              Errors: non-numeric bounds, no bound at all, more than 3 arguments, an unknown \
              named argument.",
        func: clamp,
    },
    Builtin {
        name: "pow",
        signature: "pow(x: tensor | number, y: tensor | number) -> tensor | number",
        category: "elementwise",
        doc: "x raised to the power y elementwise, the same as `x ** y`. `x` and `y` are tensors \
              or host numbers and broadcast together like NumPy; a host number next to a float \
              tensor takes the tensor's dtype. Two host numbers give a host number: an int when \
              both are ints and y >= 0, else a float. Errors: shapes that cannot be broadcast \
              (both shapes named), an int power that overflows, arguments that are not numbers \
              or tensors.",
        func: pow,
    },
    Builtin {
        name: "maximum",
        signature: "maximum(a: tensor | number, b: tensor | number) -> tensor | number",
        category: "elementwise",
        doc: "The larger of `a` and `b` at every position, broadcasting the two like NumPy (a \
              host number next to a float tensor takes the tensor's dtype; otherwise the result \
              has the promoted dtype). Two host numbers give a host number. For the largest \
              element of one tensor use `max`. Errors: shapes that cannot be broadcast (both \
              named), arguments that are not numbers or tensors.",
        func: maximum,
    },
    Builtin {
        name: "minimum",
        signature: "minimum(a: tensor | number, b: tensor | number) -> tensor | number",
        category: "elementwise",
        doc: "The smaller of `a` and `b` at every position, broadcasting the two like NumPy (a \
              host number next to a float tensor takes the tensor's dtype; otherwise the result \
              has the promoted dtype). Two host numbers give a host number. For the smallest \
              element of one tensor use `min`. Errors: shapes that cannot be broadcast (both \
              named), arguments that are not numbers or tensors.",
        func: minimum,
    },
    Builtin {
        name: "where",
        signature: "where(cond: tensor, a: tensor | number, b: tensor | number) -> tensor",
        category: "elementwise",
        doc: "Chooses elementwise: `a` where `cond` is true (non-zero) and `b` elsewhere. The \
              three broadcast together like NumPy; `cond` is usually a bool tensor from a \
              comparison such as `x > 0`. The result has the promoted dtype of `a` and `b` (a host \
              number next to a float tensor takes the tensor's dtype). Errors: shapes that cannot \
              be broadcast, arguments that are not tensors or numbers, a count other than 3.",
        func: where_,
    },
];

fn host_number(v: &Value) -> Option<f64> {
    match v {
        Value::Int(i) => Some(*i as f64),
        Value::Float(f) => Some(*f),
        _ => None,
    }
}

/// `op` applied to a host number on the host, in f64 (ints stay ints where the result is
/// always an int).
fn host_unary(args: &CallArgs, op: UnaryOp, v: &Value) -> Result<Value> {
    if let Value::Int(i) = v {
        let int_result = match op {
            UnaryOp::Neg => Some(i.checked_neg()),
            UnaryOp::Abs => Some(i.checked_abs()),
            UnaryOp::Relu => Some(Some((*i).max(0))),
            UnaryOp::Step => Some(Some((*i > 0) as i64)),
            _ => None,
        };
        if let Some(r) = int_result {
            return r
                .map(Value::Int)
                .ok_or_else(|| args.error(format!("integer overflow on {i}")));
        }
    }
    let x = host_number(v).unwrap_or(f64::NAN);
    let y = match op {
        UnaryOp::Neg => -x,
        UnaryOp::Abs => x.abs(),
        UnaryOp::Exp => x.exp(),
        UnaryOp::Log => x.ln(),
        UnaryOp::Sqrt => x.sqrt(),
        UnaryOp::Rsqrt => 1.0 / x.sqrt(),
        UnaryOp::Sin => x.sin(),
        UnaryOp::Cos => x.cos(),
        UnaryOp::Tanh => x.tanh(),
        UnaryOp::Sigmoid => 1.0 / (1.0 + (-x).exp()),
        UnaryOp::Relu => x.max(0.0),
        UnaryOp::Silu => x / (1.0 + (-x).exp()),
        UnaryOp::Step => (x > 0.0) as u8 as f64,
        // erf is not in std: the runtime's kernel computes it (in float32).
        UnaryOp::Gelu | UnaryOp::Not => {
            let t = at_call(args, Tensor::scalar(x, DType::F32).unary(op))?;
            at_call(args, t.to_scalar_f64())?
        }
    };
    Ok(Value::Float(y))
}

fn unary(args: &CallArgs, op: UnaryOp) -> Result<Value> {
    args.expect_named(&[])?;
    args.expect_count(1, 1)?;
    match args.get(0) {
        Some(v @ (Value::Int(_) | Value::Float(_))) => host_unary(args, op, v),
        _ => {
            let x = args.tensor(0)?;
            at_call(args, x.unary(op)).map(Value::Tensor)
        }
    }
}

macro_rules! unary_fns {
    ($($func:ident => $op:ident),* $(,)?) => {
        $(
            fn $func(_: &mut Interpreter, args: &mut CallArgs) -> Result<Value> {
                unary(args, UnaryOp::$op)
            }
        )*
    };
}

unary_fns! {
    neg => Neg, abs => Abs, exp => Exp, log => Log, sqrt => Sqrt, rsqrt => Rsqrt, sin => Sin,
    cos => Cos, tanh => Tanh, sigmoid => Sigmoid, relu => Relu, gelu => Gelu, silu => Silu,
    step => Step,
}

/// Argument `i` as a tensor; a host number next to the float tensor `other` takes its dtype, so
/// that `pow(x_f16, 2.0)` stays float16 (host numbers are weakly typed, as in PyTorch).
pub(crate) fn tensor_like(args: &CallArgs, i: usize, other: Option<&Tensor>) -> Result<Tensor> {
    match (args.get(i), other) {
        (Some(Value::Float(f)), Some(o)) if o.dtype().is_float() => {
            Ok(Tensor::scalar(*f, o.dtype()))
        }
        (Some(Value::Int(n)), Some(o)) if o.dtype().is_float() => {
            Ok(Tensor::scalar(*n as f64, o.dtype()))
        }
        _ => args.tensor(i),
    }
}

/// The two operands of a binary builtin as tensors, host numbers taking the other's dtype.
pub(crate) fn tensor_pair(args: &CallArgs, i: usize, j: usize) -> Result<(Tensor, Tensor)> {
    let a_is_host = matches!(args.get(i), Some(Value::Int(_) | Value::Float(_)));
    if a_is_host {
        let b = args.tensor(j)?;
        let a = tensor_like(args, i, Some(&b))?;
        Ok((a, b))
    } else {
        let a = args.tensor(i)?;
        let b = tensor_like(args, j, Some(&a))?;
        Ok((a, b))
    }
}

fn binary(args: &CallArgs, op: BinaryOp) -> Result<Value> {
    let (a, b) = tensor_pair(args, 0, 1)?;
    at_call(args, a.binary(op, &b)).map(Value::Tensor)
}

fn host_pair(args: &CallArgs) -> Option<(&Value, &Value)> {
    match (args.get(0), args.get(1)) {
        (
            Some(a @ (Value::Int(_) | Value::Float(_))),
            Some(b @ (Value::Int(_) | Value::Float(_))),
        ) => Some((a, b)),
        _ => None,
    }
}

fn clamp(_: &mut Interpreter, args: &mut CallArgs) -> Result<Value> {
    args.expect_named(&["min", "max"])?;
    args.expect_count(1, 3)?;
    let lo = args.opt_float(Some(1), "min")?;
    let hi = args.opt_float(Some(2), "max")?;
    if lo.is_none() && hi.is_none() {
        return Err(args.error("give at least one bound, `min` or `max`"));
    }
    match args.get(0) {
        Some(Value::Int(x)) => {
            let int_bound = |i: usize, name: &str| match args.get(i).or_else(|| args.named(name)) {
                None => Some(None),
                Some(Value::Int(b)) => Some(Some(*b)),
                Some(_) => None,
            };
            if let (Some(lo_i), Some(hi_i)) = (int_bound(1, "min"), int_bound(2, "max")) {
                let mut y = *x;
                if let Some(l) = lo_i {
                    y = y.max(l);
                }
                if let Some(h) = hi_i {
                    y = y.min(h);
                }
                return Ok(Value::Int(y));
            }
            Ok(Value::Float(clamp_f64(*x as f64, lo, hi)))
        }
        Some(Value::Float(x)) => Ok(Value::Float(clamp_f64(*x, lo, hi))),
        _ => {
            let x = args.tensor(0)?;
            at_call(args, x.clamp(lo, hi)).map(Value::Tensor)
        }
    }
}

fn clamp_f64(x: f64, lo: Option<f64>, hi: Option<f64>) -> f64 {
    let mut y = x;
    if let Some(l) = lo {
        y = y.max(l);
    }
    if let Some(h) = hi {
        y = y.min(h);
    }
    y
}

fn pow(_: &mut Interpreter, args: &mut CallArgs) -> Result<Value> {
    args.expect_named(&[])?;
    args.expect_count(2, 2)?;
    if let Some((a, b)) = host_pair(args) {
        if let (Value::Int(x), Value::Int(y)) = (a, b)
            && *y >= 0
        {
            return u32::try_from(*y)
                .ok()
                .and_then(|e| x.checked_pow(e))
                .map(Value::Int)
                .ok_or_else(|| args.error(format!("integer overflow in {x} ** {y}")));
        }
        let (x, y) = (host_number(a).unwrap_or(0.0), host_number(b).unwrap_or(0.0));
        return Ok(Value::Float(x.powf(y)));
    }
    binary(args, BinaryOp::Pow)
}

fn host_extreme(args: &CallArgs, larger: bool) -> Option<Value> {
    let (a, b) = host_pair(args)?;
    Some(match (a, b) {
        (Value::Int(x), Value::Int(y)) => Value::Int(if larger { *x.max(y) } else { *x.min(y) }),
        _ => {
            let (x, y) = (host_number(a)?, host_number(b)?);
            Value::Float(if larger { x.max(y) } else { x.min(y) })
        }
    })
}

fn maximum(_: &mut Interpreter, args: &mut CallArgs) -> Result<Value> {
    args.expect_named(&[])?;
    args.expect_count(2, 2)?;
    if let Some(v) = host_extreme(args, true) {
        return Ok(v);
    }
    binary(args, BinaryOp::Maximum)
}

fn minimum(_: &mut Interpreter, args: &mut CallArgs) -> Result<Value> {
    args.expect_named(&[])?;
    args.expect_count(2, 2)?;
    if let Some(v) = host_extreme(args, false) {
        return Ok(v);
    }
    binary(args, BinaryOp::Minimum)
}

fn where_(_: &mut Interpreter, args: &mut CallArgs) -> Result<Value> {
    args.expect_named(&[])?;
    args.expect_count(3, 3)?;
    let cond = args.tensor(0)?;
    let (a, b) = tensor_pair(args, 1, 2)?;
    at_call(args, Tensor::where_cond(&cond, &a, &b)).map(Value::Tensor)
}
