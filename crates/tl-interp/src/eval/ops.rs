//! Operators on values. Host ints stay ints (overflow is an error, `/` truncates toward zero),
//! ints with floats give floats, `+` joins strings and lists, and any tensor operand makes the
//! operation a broadcasting tensor op.

use std::rc::Rc;

use tl_syntax::Span;
use tl_syntax::ast::{BinaryOp, UnaryOp};
use tl_tensor::{DType, Tensor};

use crate::error::{Result, RuntimeError};
use crate::format::format_value;
use crate::interp::Interpreter;
use crate::value::Value;

fn verb(op: BinaryOp) -> &'static str {
    match op {
        BinaryOp::Add => "add",
        BinaryOp::Sub => "subtract",
        BinaryOp::Mul => "multiply",
        BinaryOp::Div => "divide",
        BinaryOp::Rem => "take the remainder of",
        BinaryOp::Pow => "raise",
        BinaryOp::MatMul => "multiply as matrices",
        BinaryOp::And | BinaryOp::Or => "combine",
        _ => "compare",
    }
}

fn kind_error(op: BinaryOp, l: &Value, r: &Value, span: Span) -> RuntimeError {
    RuntimeError::new(
        format!(
            "`{}`: cannot {} {} and {}",
            op.symbol(),
            verb(op),
            l.type_name(),
            r.type_name()
        ),
        span,
    )
}

/// The longest string `s * n` builds.
const MAX_STRING_BYTES: usize = 1 << 30;

fn overflow(span: Span) -> RuntimeError {
    RuntimeError::new("integer overflow", span)
}

fn division_by_zero(span: Span) -> RuntimeError {
    RuntimeError::new("division by zero", span)
}

/// True for a list whose leaves are all numbers (it converts to a tensor in arithmetic).
fn is_numeric_list(v: &Value) -> bool {
    match v {
        Value::List(items) => items
            .iter()
            .all(|i| matches!(i, Value::Int(_) | Value::Float(_)) || is_numeric_list(i)),
        _ => false,
    }
}

impl Interpreter {
    pub(crate) fn binary(&mut self, op: BinaryOp, l: Value, r: Value, span: Span) -> Result<Value> {
        match (&l, &r) {
            (Value::Int(a), Value::Int(b)) => int_op(op, *a, *b, span),
            (Value::Int(_) | Value::Float(_), Value::Int(_) | Value::Float(_)) => {
                let a = number(&l);
                let b = number(&r);
                float_op(op, a, b, span).ok_or_else(|| kind_error(op, &l, &r, span))
            }
            (Value::Tensor(_), _) | (_, Value::Tensor(_)) => tensor_op(op, &l, &r, span),
            (Value::Str(a), Value::Str(b)) => match op {
                BinaryOp::Add => {
                    let mut s = String::with_capacity(a.len() + b.len());
                    s.push_str(a);
                    s.push_str(b);
                    Ok(Value::str(s))
                }
                _ => compare(op, a.as_ref().cmp(b.as_ref()))
                    .map(Value::Bool)
                    .ok_or_else(|| kind_error(op, &l, &r, span)),
            },
            // String + anything formats the other side as print would.
            (Value::Str(a), other) if op == BinaryOp::Add => {
                Ok(Value::str(format!("{a}{}", format_value(other))))
            }
            (other, Value::Str(b)) if op == BinaryOp::Add => {
                Ok(Value::str(format!("{}{b}", format_value(other))))
            }
            (Value::Str(s), Value::Int(n)) | (Value::Int(n), Value::Str(s))
                if op == BinaryOp::Mul =>
            {
                let n = usize::try_from(*n)
                    .ok()
                    .filter(|&n| s.len().saturating_mul(n) <= MAX_STRING_BYTES)
                    .ok_or_else(|| {
                    RuntimeError::new(
                        "`*`: a string repeats a non-negative number of times, up to 1 GiB of text",
                        span,
                    )
                })?;
                Ok(Value::str(s.repeat(n)))
            }
            (Value::List(a), Value::List(b)) if op == BinaryOp::Add => {
                let mut joined = Vec::with_capacity(a.len() + b.len());
                joined.extend(a.iter().cloned());
                joined.extend(b.iter().cloned());
                Ok(Value::List(Rc::new(joined)))
            }
            _ if matches!(op, BinaryOp::Eq | BinaryOp::Ne) => {
                let equal = values_equal(&l, &r, 0);
                Ok(Value::Bool(equal == (op == BinaryOp::Eq)))
            }
            (Value::List(_), _) | (_, Value::List(_))
                if (is_numeric_list(&l) || number_like(&l))
                    && (is_numeric_list(&r) || number_like(&r)) =>
            {
                // Arithmetic with a numeric array literal treats it as a tensor.
                tensor_op(op, &l, &r, span)
            }
            (Value::Bool(a), Value::Bool(b)) => compare(op, a.cmp(b))
                .map(Value::Bool)
                .ok_or_else(|| kind_error(op, &l, &r, span)),
            _ => Err(kind_error(op, &l, &r, span)),
        }
    }

    pub(crate) fn unary(&mut self, op: UnaryOp, v: Value, span: Span) -> Result<Value> {
        match (op, v) {
            (UnaryOp::Neg, Value::Int(i)) => i
                .checked_neg()
                .map(Value::Int)
                .ok_or_else(|| overflow(span)),
            (UnaryOp::Neg, Value::Float(f)) => Ok(Value::Float(-f)),
            (UnaryOp::Neg, Value::Tensor(t)) => Ok(Value::Tensor(
                t.unary(tl_tensor::UnaryOp::Neg)
                    .map_err(|e| RuntimeError::from(e).at(span))?,
            )),
            (UnaryOp::Neg, l @ Value::List(_)) if is_numeric_list(&l) => {
                let t = crate::convert::to_tensor(&l)
                    .ok_or_else(|| RuntimeError::new("`-`: the list is not rectangular", span))?;
                Ok(Value::Tensor(
                    t.unary(tl_tensor::UnaryOp::Neg)
                        .map_err(|e| RuntimeError::from(e).at(span))?,
                ))
            }
            (UnaryOp::Not, Value::Bool(b)) => Ok(Value::Bool(!b)),
            (UnaryOp::Not, Value::Tensor(t)) => Ok(Value::Tensor(
                t.unary(tl_tensor::UnaryOp::Not)
                    .map_err(|e| RuntimeError::from(e).at(span))?,
            )),
            (UnaryOp::Neg, other) => Err(RuntimeError::new(
                format!("`-`: cannot negate {}", super::stmt::describe_kind(&other)),
                span,
            )),
            (UnaryOp::Not, other) => Err(RuntimeError::new(
                format!(
                    "`not`: needs a bool, got {}",
                    super::stmt::describe_kind(&other)
                ),
                span,
            )),
        }
    }
}

fn number_like(v: &Value) -> bool {
    matches!(v, Value::Int(_) | Value::Float(_))
}

fn number(v: &Value) -> f64 {
    match v {
        Value::Int(i) => *i as f64,
        Value::Float(f) => *f,
        _ => f64::NAN,
    }
}

fn compare(op: BinaryOp, ord: std::cmp::Ordering) -> Option<bool> {
    use std::cmp::Ordering::*;
    Some(match op {
        BinaryOp::Eq => ord == Equal,
        BinaryOp::Ne => ord != Equal,
        BinaryOp::Lt => ord == Less,
        BinaryOp::Gt => ord == Greater,
        BinaryOp::Le => ord != Greater,
        BinaryOp::Ge => ord != Less,
        _ => return None,
    })
}

fn int_op(op: BinaryOp, a: i64, b: i64, span: Span) -> Result<Value> {
    let v = match op {
        BinaryOp::Add => a.checked_add(b).ok_or_else(|| overflow(span))?,
        BinaryOp::Sub => a.checked_sub(b).ok_or_else(|| overflow(span))?,
        BinaryOp::Mul => a.checked_mul(b).ok_or_else(|| overflow(span))?,
        BinaryOp::Div => {
            if b == 0 {
                return Err(division_by_zero(span));
            }
            // Floor division, as int tensors and Python do, so that `a / b` agrees on host
            // ints and int tensors.
            let q = a.checked_div(b).ok_or_else(|| overflow(span))?;
            if a % b != 0 && ((a < 0) != (b < 0)) {
                q - 1
            } else {
                q
            }
        }
        BinaryOp::Rem => {
            if b == 0 {
                return Err(division_by_zero(span));
            }
            // The remainder takes the divisor's sign, matching floor division.
            let r = a.checked_rem(b).ok_or_else(|| overflow(span))?;
            if r != 0 && ((r < 0) != (b < 0)) {
                r + b
            } else {
                r
            }
        }
        BinaryOp::Pow => {
            if b < 0 {
                // A negative exponent has no int result.
                return Ok(Value::Float((a as f64).powf(b as f64)));
            }
            let e = u32::try_from(b).map_err(|_| overflow(span))?;
            a.checked_pow(e).ok_or_else(|| overflow(span))?
        }
        BinaryOp::MatMul => {
            return Err(kind_error(op, &Value::Int(a), &Value::Int(b), span));
        }
        _ => {
            return compare(op, a.cmp(&b))
                .map(Value::Bool)
                .ok_or_else(|| kind_error(op, &Value::Int(a), &Value::Int(b), span));
        }
    };
    Ok(Value::Int(v))
}

fn float_op(op: BinaryOp, a: f64, b: f64, _span: Span) -> Option<Value> {
    Some(Value::Float(match op {
        BinaryOp::Add => a + b,
        BinaryOp::Sub => a - b,
        BinaryOp::Mul => a * b,
        BinaryOp::Div => a / b,
        BinaryOp::Rem => a % b,
        BinaryOp::Pow => a.powf(b),
        BinaryOp::Eq => return Some(Value::Bool(a == b)),
        BinaryOp::Ne => return Some(Value::Bool(a != b)),
        BinaryOp::Lt => return Some(Value::Bool(a < b)),
        BinaryOp::Gt => return Some(Value::Bool(a > b)),
        BinaryOp::Le => return Some(Value::Bool(a <= b)),
        BinaryOp::Ge => return Some(Value::Bool(a >= b)),
        _ => return None,
    }))
}

/// Structural equality of host values (tensors are compared elementwise by `tensor_op`).
pub(crate) fn values_equal(a: &Value, b: &Value, depth: usize) -> bool {
    // Structs can contain themselves; past this depth values are taken as different.
    if depth > 64 {
        return false;
    }
    let depth = depth + 1;
    match (a, b) {
        (Value::Unit, Value::Unit) => true,
        (Value::Int(x), Value::Int(y)) => x == y,
        (Value::Int(_) | Value::Float(_), Value::Int(_) | Value::Float(_)) => {
            number(a) == number(b)
        }
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Str(x), Value::Str(y)) => x == y,
        (Value::List(x), Value::List(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y.iter())
                    .all(|(p, q)| values_equal(p, q, depth))
        }
        (Value::Struct(x), Value::Struct(y)) => {
            Rc::ptr_eq(x, y) || {
                let (x, y) = (x.borrow(), y.borrow());
                x.type_name == y.type_name
                    && x.fields.len() == y.fields.len()
                    && x.fields
                        .iter()
                        .zip(y.fields.iter())
                        .all(|(p, q)| p.0 == q.0 && values_equal(&p.1, &q.1, depth))
            }
        }
        (Value::Record(x), Value::Record(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y.iter())
                    .all(|(p, q)| p.0 == q.0 && values_equal(p.1, q.1, depth))
        }
        (Value::Function(x), Value::Function(y)) => Rc::ptr_eq(x, y),
        (Value::Builtin(x), Value::Builtin(y)) => std::ptr::eq(*x, *y),
        _ => false,
    }
}

/// A host operand of a tensor op as a tensor: a scalar takes the tensor side's dtype (a float
/// with an integer or bool tensor gives float32; an int with a bool tensor gives int64).
fn operand_tensor(v: &Value, other: Option<DType>, op: BinaryOp, span: Span) -> Result<Tensor> {
    let other = other.unwrap_or(DType::F32);
    let t = match v {
        Value::Tensor(t) => return Ok(t.clone()),
        Value::Int(i) => match other {
            DType::Bool | DType::I64 => {
                Tensor::from_i64(vec![*i], &[]).map_err(RuntimeError::from)?
            }
            dt => Tensor::scalar(*i as f64, dt),
        },
        Value::Float(f) => {
            let dt = if other.is_float() { other } else { DType::F32 };
            Tensor::scalar(*f, dt)
        }
        Value::Bool(b) => Tensor::scalar(f64::from(u8::from(*b)), other),
        Value::List(_) => match crate::convert::to_tensor(v) {
            Some(t) if t.dtype() != other && other.is_float() => {
                t.cast(other).map_err(|e| RuntimeError::from(e).at(span))?
            }
            Some(t) => t,
            None => {
                return Err(RuntimeError::new(
                    format!(
                        "`{}`: the list is not a rectangular array of numbers, so it cannot be used as a tensor",
                        op.symbol()
                    ),
                    span,
                ));
            }
        },
        _ => {
            return Err(RuntimeError::new(
                format!(
                    "`{}`: cannot {} {} and tensor",
                    op.symbol(),
                    verb(op),
                    v.type_name()
                ),
                span,
            ));
        }
    };
    Ok(t)
}

fn tensor_dtype(v: &Value) -> Option<DType> {
    match v {
        Value::Tensor(t) => Some(t.dtype()),
        _ => None,
    }
}

fn tensor_op(op: BinaryOp, l: &Value, r: &Value, span: Span) -> Result<Value> {
    let (lt, rt) = (tensor_dtype(l), tensor_dtype(r));
    if !matches!(
        l,
        Value::Tensor(_) | Value::Int(_) | Value::Float(_) | Value::Bool(_) | Value::List(_)
    ) || !matches!(
        r,
        Value::Tensor(_) | Value::Int(_) | Value::Float(_) | Value::Bool(_) | Value::List(_)
    ) {
        return Err(kind_error(op, l, r, span));
    }
    let a = operand_tensor(l, rt.or(lt), op, span)?;
    let b = operand_tensor(r, lt.or(rt), op, span)?;
    let tensor_op = match op {
        BinaryOp::Add => tl_tensor::BinaryOp::Add,
        BinaryOp::Sub => tl_tensor::BinaryOp::Sub,
        BinaryOp::Mul => tl_tensor::BinaryOp::Mul,
        BinaryOp::Div => tl_tensor::BinaryOp::Div,
        BinaryOp::Rem => tl_tensor::BinaryOp::Rem,
        BinaryOp::Pow => tl_tensor::BinaryOp::Pow,
        BinaryOp::Eq => tl_tensor::BinaryOp::Eq,
        BinaryOp::Ne => tl_tensor::BinaryOp::Ne,
        BinaryOp::Lt => tl_tensor::BinaryOp::Lt,
        BinaryOp::Gt => tl_tensor::BinaryOp::Gt,
        BinaryOp::Le => tl_tensor::BinaryOp::Le,
        BinaryOp::Ge => tl_tensor::BinaryOp::Ge,
        BinaryOp::And => tl_tensor::BinaryOp::And,
        BinaryOp::Or => tl_tensor::BinaryOp::Or,
        BinaryOp::MatMul => {
            return a
                .matmul(&b)
                .map(Value::Tensor)
                .map_err(|e| RuntimeError::from(e).at(span));
        }
    };
    a.binary(tensor_op, &b)
        .map(Value::Tensor)
        .map_err(|e| RuntimeError::from(e).at(span))
}
