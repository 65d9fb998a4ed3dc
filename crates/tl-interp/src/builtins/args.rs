//! Argument accessors shared by the tensor builtins: shapes given as lists, int tensors or
//! varargs; optional dims (positional or named); dtype names; and turning tensor-runtime
//! errors into located runtime errors.

use tl_syntax::Span;
use tl_tensor::{DType, Tensor};

use super::CallArgs;
use crate::convert;
use crate::error::{Result, RuntimeError};
use crate::value::Value;

/// Gives an error of the tensor runtime (whose message already names the op and the shapes)
/// the span of the call.
pub(crate) fn at_call<T>(args: &CallArgs, r: tl_tensor::Result<T>) -> Result<T> {
    r.map_err(|e| RuntimeError::from(e).at(args.span))
}

/// The dtype names accepted in messages.
const DTYPE_NAMES: &str = "float32 (f32), float16 (f16), bfloat16 (bf16), int64 (i64) or bool";

/// Parses a dtype from a string value (`"float16"`, `"f16"`, ...).
pub(crate) fn parse_dtype(v: &Value) -> std::result::Result<DType, String> {
    match v {
        Value::Str(s) => DType::from_name(s)
            .ok_or_else(|| format!("unknown dtype \"{s}\" (expected {DTYPE_NAMES})")),
        other => Err(format!(
            "a dtype must be a string such as \"float16\", got {}",
            other.type_name()
        )),
    }
}

/// The integers held by a list of host ints, or by an integer tensor (or a float tensor whose
/// values are all whole numbers) of rank 0 or 1. `None` when the value is neither.
fn int_items(v: &Value) -> std::result::Result<Vec<i64>, String> {
    match v {
        Value::Int(i) => Ok(vec![*i]),
        Value::List(items) => items
            .iter()
            .map(|item| {
                convert::to_int(item)
                    .ok_or_else(|| format!("expected a list of ints, found a {}", item.type_name()))
            })
            .collect(),
        Value::Tensor(t) if t.rank() <= 1 => {
            if t.dtype().is_float() {
                let values = t.to_vec_f64();
                if values.iter().all(|x| x.fract() == 0.0 && x.abs() < 9.0e15) {
                    Ok(values.into_iter().map(|x| x as i64).collect())
                } else {
                    Err("expected whole numbers, found a tensor with fractions".into())
                }
            } else {
                Ok(t.to_vec_i64())
            }
        }
        Value::Tensor(t) => Err(format!(
            "expected a list of ints or a 1-D tensor, found a tensor of shape {:?}",
            t.shape()
        )),
        other => Err(format!(
            "expected a list of ints, got {}",
            other.type_name()
        )),
    }
}

impl CallArgs {
    /// The span of positional argument `i` (the call's span when it is missing).
    pub fn arg_span(&self, i: usize) -> Span {
        self.positional.get(i).map(|p| p.1).unwrap_or(self.span)
    }

    fn named_entry(&self, name: &str) -> Option<(&Value, Span)> {
        self.named.iter().find(|n| n.0 == name).map(|n| (&n.1, n.2))
    }

    /// Positional argument `i` or the named argument `name` (an error when both are given),
    /// with its span.
    pub fn positional_or_named(&self, i: usize, name: &str) -> Result<Option<(&Value, Span)>> {
        match (self.positional.get(i), self.named_entry(name)) {
            (Some(_), Some((_, span))) => Err(RuntimeError::new(
                format!(
                    "{}: `{name}` given both as argument {} and by name",
                    self.name,
                    i + 1
                ),
                span,
            )),
            (Some((v, span)), None) => Ok(Some((v, *span))),
            (None, named) => Ok(named),
        }
    }

    fn located_error(&self, span: Span, message: impl Into<String>) -> RuntimeError {
        RuntimeError::new(format!("{}: {}", self.name, message.into()), span)
    }

    /// A list of integers from positional argument `i`: a list of ints, an int tensor of rank
    /// 0 or 1, or a single int.
    pub fn int_list(&self, i: usize) -> Result<Vec<i64>> {
        let v = self.required(i)?;
        int_items(v).map_err(|m| self.arg_error(i, format!("argument {}: {m}", i + 1)))
    }

    /// The signed integers of a shape written either as one argument at `start` (a list of
    /// ints or an int tensor) or as the ints of every positional argument from `start` on.
    /// Fails when there is none.
    pub fn signed_shape_arg(&self, start: usize) -> Result<Vec<i64>> {
        self.int_varargs(start, "shape")
    }

    /// Integers written either as one list (or 1-D int tensor) argument at `start`, or as the
    /// ints of every positional argument from `start` on (`permute(x, 1, 0)` or
    /// `permute(x, [1, 0])`). `what` names them in messages (`shape`, `dims`).
    pub fn int_varargs(&self, start: usize, what: &str) -> Result<Vec<i64>> {
        match self.positional.get(start) {
            None => Err(self.error(format!("missing the {what} (argument {})", start + 1))),
            Some((Value::List(_) | Value::Tensor(_), _)) if self.positional.len() == start + 1 => {
                self.int_list(start)
            }
            Some(_) => (start..self.positional.len())
                .map(|i| {
                    let v = &self.positional[i].0;
                    convert::to_int(v).ok_or_else(|| {
                        self.arg_error(
                            i,
                            format!(
                                "the {what} is a list of ints or ints as separate arguments; \
                                 argument {} is {}",
                                i + 1,
                                v.type_name()
                            ),
                        )
                    })
                })
                .collect(),
        }
    }

    /// A shape as in [`CallArgs::signed_shape_arg`] whose sizes must all be non-negative.
    pub fn shape_arg(&self, start: usize) -> Result<Vec<usize>> {
        let dims = self.signed_shape_arg(start)?;
        dims.iter()
            .map(|&d| {
                usize::try_from(d).map_err(|_| {
                    self.arg_error(
                        start,
                        format!("shape sizes must be non-negative, got {dims:?}"),
                    )
                })
            })
            .collect()
    }

    /// An optional dimension: positional argument `i` or the named argument `name`
    /// (negative counts from the end).
    pub fn opt_dim(&self, i: usize, name: &str) -> Result<Option<isize>> {
        match self.positional_or_named(i, name)? {
            None => Ok(None),
            Some((v, span)) => convert::to_int(v).map(|d| Some(d as isize)).ok_or_else(|| {
                self.located_error(
                    span,
                    format!("`{name}` must be an int, got {}", v.type_name()),
                )
            }),
        }
    }

    /// Optional dimensions for a reduction: one int or a list of ints, positional argument `i`
    /// or named `name`.
    pub fn opt_dims(&self, i: usize, name: &str) -> Result<Option<Vec<isize>>> {
        match self.positional_or_named(i, name)? {
            None => Ok(None),
            Some((v, span)) => int_items(v)
                .map(|ds| Some(ds.into_iter().map(|d| d as isize).collect()))
                .map_err(|m| self.located_error(span, format!("`{name}`: {m}"))),
        }
    }

    /// An optional bool: positional argument `i` (if `Some`) or named `name`, else `default`.
    pub fn opt_bool(&self, i: Option<usize>, name: &str, default: bool) -> Result<bool> {
        let entry = match i {
            Some(i) => self.positional_or_named(i, name)?,
            None => self.named_entry(name),
        };
        match entry {
            None => Ok(default),
            Some((Value::Bool(b), _)) => Ok(*b),
            Some((v, span)) => Err(self.located_error(
                span,
                format!("`{name}` must be a bool, got {}", v.type_name()),
            )),
        }
    }

    /// An optional number: positional argument `i` (if `Some`) or named `name`.
    pub fn opt_float(&self, i: Option<usize>, name: &str) -> Result<Option<f64>> {
        let entry = match i {
            Some(i) => self.positional_or_named(i, name)?,
            None => self.named_entry(name),
        };
        match entry {
            None => Ok(None),
            Some((v, span)) => convert::to_float(v).map(Some).ok_or_else(|| {
                self.located_error(
                    span,
                    format!("`{name}` must be a number, got {}", v.type_name()),
                )
            }),
        }
    }

    /// An optional int: positional argument `i` (if `Some`) or named `name`.
    pub fn opt_int(&self, i: Option<usize>, name: &str) -> Result<Option<i64>> {
        let entry = match i {
            Some(i) => self.positional_or_named(i, name)?,
            None => self.named_entry(name),
        };
        match entry {
            None => Ok(None),
            Some((v, span)) => convert::to_int(v).map(Some).ok_or_else(|| {
                self.located_error(
                    span,
                    format!("`{name}` must be an int, got {}", v.type_name()),
                )
            }),
        }
    }

    /// An optional tensor: positional argument `i` or named `name`.
    pub fn opt_tensor(&self, i: usize, name: &str) -> Result<Option<Tensor>> {
        match self.positional_or_named(i, name)? {
            None => Ok(None),
            Some((v, span)) => convert::to_tensor(v).map(Some).ok_or_else(|| {
                self.located_error(
                    span,
                    format!("`{name}` must be a tensor, got {}", v.type_name()),
                )
            }),
        }
    }

    /// The `dtype:` named argument parsed as a dtype name (`"float16"`, `"f16"`, ...), or
    /// `default` when absent.
    pub fn dtype_named(&self, default: DType) -> Result<DType> {
        self.dtype_arg(None, default)
    }

    /// A dtype from positional argument `i` (if `Some`) or the `dtype:` named argument, or
    /// `default` when neither is given.
    pub fn dtype_arg(&self, i: Option<usize>, default: DType) -> Result<DType> {
        let entry = match i {
            Some(i) => self.positional_or_named(i, "dtype")?,
            None => self.named_entry("dtype"),
        };
        match entry {
            None => Ok(default),
            Some((v, span)) => parse_dtype(v).map_err(|m| self.located_error(span, m)),
        }
    }

    /// A tensor of integer indices from positional argument `i`: an int tensor, a list of ints
    /// or a host int (a rank-0 tensor). Float tensors are accepted when every value is whole.
    pub fn index_tensor(&self, i: usize) -> Result<Tensor> {
        let v = self.required(i)?;
        match v {
            Value::Int(n) => Ok(Tensor::scalar(*n as f64, DType::I64)),
            Value::Tensor(t) if !t.dtype().is_float() => {
                if t.dtype() == DType::I64 {
                    Ok(t.clone())
                } else {
                    at_call(self, t.cast(DType::I64))
                }
            }
            Value::Tensor(t) => {
                if t.to_vec_f64().iter().all(|x| x.fract() == 0.0) {
                    at_call(self, t.cast(DType::I64))
                } else {
                    Err(self.arg_error(
                        i,
                        format!("argument {} must hold whole-number indices", i + 1),
                    ))
                }
            }
            Value::List(_) => {
                let mut shape = Vec::new();
                let mut data = Vec::new();
                if !nested_ints(v, 0, &mut shape, &mut data) {
                    return Err(self.arg_error(
                        i,
                        format!("argument {} must be a rectangular list of ints", i + 1),
                    ));
                }
                at_call(self, Tensor::from_i64(data, &shape))
            }
            other => Err(self.kind_error(i, "an int tensor or a list of ints", other)),
        }
    }
}

/// Flattens a rectangular nested list of host ints, recording its shape. False when the list
/// is ragged or holds something other than ints.
pub(crate) fn nested_ints(
    v: &Value,
    depth: usize,
    shape: &mut Vec<usize>,
    data: &mut Vec<i64>,
) -> bool {
    match v {
        Value::List(items) => {
            if shape.len() == depth {
                shape.push(items.len());
            } else if shape.len() < depth || shape[depth] != items.len() {
                return false;
            }
            items
                .iter()
                .all(|item| nested_ints(item, depth + 1, shape, data))
        }
        _ => {
            if shape.len() != depth {
                return false;
            }
            match convert::to_int(v) {
                Some(n) => {
                    data.push(n);
                    true
                }
                None => false,
            }
        }
    }
}
