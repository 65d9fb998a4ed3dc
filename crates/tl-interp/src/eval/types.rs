//! Type annotations checked at run time: tensor types (dtype and shape; a named dimension must
//! agree wherever it appears in one call, `?` is free) and the host types.

use std::collections::HashMap;

use tl_syntax::Span;
use tl_syntax::ast::{Dim, TensorType, TypeExpr};
use tl_tensor::{DType, Tensor};

use super::stmt::describe_kind;
use crate::error::{Result, RuntimeError};
use crate::interp::Interpreter;
use crate::value::Value;

/// `float32[2, n, ?]`
pub(crate) fn tensor_type_str(ty: &TensorType) -> String {
    let dims: Vec<String> = ty
        .dims
        .iter()
        .map(|d| match d {
            Dim::Fixed(n) => n.to_string(),
            Dim::Named(n) => n.clone(),
            Dim::Any => "?".into(),
        })
        .collect();
    format!("{}[{}]", ty.dtype, dims.join(", "))
}

/// `float16[2, 4]`
fn actual_type_str(t: &Tensor) -> String {
    let dims: Vec<String> = t.shape().iter().map(|d| d.to_string()).collect();
    format!("{}[{}]", t.dtype().name(), dims.join(", "))
}

impl Interpreter {
    /// Checks `v` against `ty` and returns it, converted where the conversion is lossless and
    /// expected (a numeric array literal for a tensor type, an int for `float`). `what` names
    /// the checked thing in messages ("parameter `x` of f").
    pub(crate) fn check_type(
        &self,
        v: Value,
        ty: &TypeExpr,
        dims: &mut HashMap<String, usize>,
        what: &str,
        span: Span,
    ) -> Result<Value> {
        match ty {
            TypeExpr::Tensor(tt) => check_tensor(v, tt, dims, what, span).map(Value::Tensor),
            TypeExpr::Named(name) => self.check_named(v, name, what, span),
        }
    }

    fn check_named(&self, v: Value, name: &str, what: &str, span: Span) -> Result<Value> {
        let mismatch = |v: &Value| {
            RuntimeError::new(
                format!("{what} expects {name}, got {}", describe_kind(v)),
                span,
            )
        };
        let ok = match (name, &v) {
            ("int" | "i64" | "i32", Value::Int(_)) => true,
            ("float" | "f64" | "f32", Value::Float(_)) => true,
            ("float" | "f64" | "f32", Value::Int(i)) => return Ok(Value::Float(*i as f64)),
            ("bool", Value::Bool(_)) => true,
            ("string" | "str", Value::Str(_)) => true,
            ("list", Value::List(_)) => true,
            ("tensor" | "Tensor", Value::Tensor(_)) => true,
            ("tensor" | "Tensor", Value::List(_)) => {
                return crate::convert::to_tensor(&v)
                    .map(Value::Tensor)
                    .ok_or_else(|| mismatch(&v));
            }
            (
                "int" | "i64" | "i32" | "float" | "f64" | "f32" | "bool" | "string" | "str"
                | "list" | "tensor" | "Tensor",
                _,
            ) => false,
            (_, Value::Struct(s)) if self.structs.contains_key(name) => {
                s.borrow().type_name == name
            }
            _ if self.structs.contains_key(name) => false,
            // Other names (host objects such as `model`) are checked by the builtins using them.
            _ => true,
        };
        if ok { Ok(v) } else { Err(mismatch(&v)) }
    }
}

fn check_tensor(
    v: Value,
    ty: &TensorType,
    dims: &mut HashMap<String, usize>,
    what: &str,
    span: Span,
) -> Result<Tensor> {
    let expected = tensor_type_str(ty);
    let dtype = DType::from_name(&ty.dtype)
        .ok_or_else(|| RuntimeError::new(format!("unknown dtype `{}`", ty.dtype), ty.span))?;
    let t = match &v {
        Value::Tensor(t) => t.clone(),
        // A number or numeric array literal takes the declared dtype.
        Value::Int(_) | Value::Float(_) | Value::Bool(_) | Value::List(_) => {
            let converted = crate::convert::to_tensor(&v).ok_or_else(|| {
                RuntimeError::new(
                    format!("{what} expects {expected}, got a list that is not a rectangular array of numbers"),
                    span,
                )
            })?;
            if converted.dtype() == dtype {
                converted
            } else {
                converted
                    .cast(dtype)
                    .map_err(|e| RuntimeError::from(e).at(span))?
            }
        }
        other => {
            return Err(RuntimeError::new(
                format!("{what} expects {expected}, got {}", describe_kind(other)),
                span,
            ));
        }
    };
    if t.dtype() != dtype || t.rank() != ty.dims.len() {
        return Err(RuntimeError::new(
            format!("{what} expects {expected}, got {}", actual_type_str(&t)),
            span,
        ));
    }
    for (i, (dim, &actual)) in ty.dims.iter().zip(t.shape()).enumerate() {
        match dim {
            Dim::Fixed(n) if *n != actual => {
                return Err(RuntimeError::new(
                    format!(
                        "{what} expects {expected}, got {} (dimension {i} is {actual}, not {n})",
                        actual_type_str(&t)
                    ),
                    span,
                ));
            }
            Dim::Named(name) => match dims.get(name) {
                Some(&bound) if bound != actual => {
                    return Err(RuntimeError::new(
                        format!(
                            "{what} expects {expected}, got {} (`{name}` is {bound} elsewhere in this call but {actual} here)",
                            actual_type_str(&t)
                        ),
                        span,
                    ));
                }
                Some(_) => {}
                None => {
                    dims.insert(name.clone(), actual);
                }
            },
            _ => {}
        }
    }
    Ok(t)
}
