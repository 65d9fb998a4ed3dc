//! Expressions: literals, names, operators with short-circuit `and`/`or`, members, casts,
//! struct literals. Calls are in `call.rs`, indexing in `index.rs`, operators in `ops.rs`.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use tl_syntax::Span;
use tl_syntax::ast::{BinaryOp, CastTarget, Expr, ExprKind};
use tl_tensor::DType;

use super::stmt::describe_kind;
use crate::error::{Result, RuntimeError};
use crate::format::format_value;
use crate::interp::Interpreter;
use crate::value::{StructValue, Value};

impl Interpreter {
    pub(crate) fn eval(&mut self, e: &Expr) -> Result<Value> {
        match &e.kind {
            ExprKind::Int(i) => Ok(Value::Int(*i)),
            ExprKind::Float(f) => Ok(Value::Float(*f)),
            ExprKind::Str(s) => Ok(Value::str(s)),
            ExprKind::Bool(b) => Ok(Value::Bool(*b)),
            ExprKind::Array(items) => {
                let mut values = Vec::with_capacity(items.len());
                for item in items {
                    values.push(self.eval(item)?);
                }
                Ok(Value::List(Rc::new(values)))
            }
            ExprKind::Name(name) => self.eval_name(name, e.span),
            ExprKind::Path { ty, name } => self.eval_path(ty, name, e.span),
            ExprKind::Unary { op, expr } => {
                let v = self.eval(expr)?;
                self.unary(*op, v, e.span)
            }
            ExprKind::Binary {
                op: op @ (BinaryOp::And | BinaryOp::Or),
                lhs,
                rhs,
            } => self.eval_logic(*op, lhs, rhs, e.span),
            ExprKind::Binary { op, lhs, rhs } => {
                let l = self.eval(lhs)?;
                let r = self.eval(rhs)?;
                self.binary(*op, l, r, e.span)
            }
            ExprKind::Call { callee, args } => self.eval_call(callee, args, e.span),
            ExprKind::MethodCall {
                receiver,
                method,
                args,
            } => self.eval_method_call(receiver, method, args, e.span),
            ExprKind::Index { base, indices } => {
                let b = self.eval(base)?;
                let ixs = self.eval_indices(indices)?;
                super::index::index_value(&b, &ixs, e.span)
            }
            ExprKind::Member { base, name } => {
                let b = self.eval(base)?;
                member(&b, name, e.span)
            }
            ExprKind::Cast { expr, target } => {
                let v = self.eval(expr)?;
                cast(v, *target, e.span)
            }
            ExprKind::StructLit { name, fields } => self.eval_struct_lit(name, fields, e.span),
        }
    }

    fn eval_name(&self, name: &str, span: Span) -> Result<Value> {
        if let Some(v) = self.lookup_var(name) {
            return Ok(v.clone());
        }
        if let Some(f) = self.fns.get(name) {
            return Ok(Value::Function(f.clone()));
        }
        if let Some(b) = crate::builtins::lookup(name) {
            return Ok(Value::Builtin(b));
        }
        if self.structs.contains_key(name) {
            return Err(RuntimeError::new(
                format!(
                    "`{name}` is a struct, not a value; build one with `{name} {{ field: value, ... }}`"
                ),
                span,
            ));
        }
        if self.relations.contains(name) {
            return Err(RuntimeError::new(
                format!("`{name}` is a relation, not a value: ask it with `query {name}(...)`"),
                span,
            ));
        }
        Err(self.unknown_name_error(name, span))
    }

    /// "unknown name `x`", with a suggestion when a visible name is close.
    pub(crate) fn unknown_name_error(&self, name: &str, span: Span) -> RuntimeError {
        let err = RuntimeError::new(format!("unknown name `{name}`"), span);
        let candidates = self
            .scopes
            .iter()
            .flat_map(|s| s.keys())
            .chain(self.globals.keys())
            .chain(self.fns.keys())
            .map(String::as_str);
        match crate::suggest::closest(name, candidates) {
            Some(s) => err.with_note(format!("did you mean `{s}`?")),
            None => err,
        }
    }

    fn eval_path(&self, ty: &str, name: &str, span: Span) -> Result<Value> {
        if let Some(f) = self.methods.get(ty).and_then(|m| m.get(name)) {
            return Ok(Value::Function(f.clone()));
        }
        if DType::from_name(ty).is_some() && crate::builtins::lookup(name).is_some() {
            return Err(RuntimeError::new(
                format!(
                    "`{ty}::{name}` is a typed constructor; call it, e.g. `{ty}::{name}([2, 3])`"
                ),
                span,
            ));
        }
        Err(RuntimeError::new(
            format!("unknown name `{ty}::{name}`"),
            span,
        ))
    }

    fn eval_logic(&mut self, op: BinaryOp, lhs: &Expr, rhs: &Expr, span: Span) -> Result<Value> {
        let word = if op == BinaryOp::And { "and" } else { "or" };
        let l = self.eval(lhs)?;
        match l {
            Value::Bool(b) => {
                // Short circuit: `false and _` and `true or _` do not evaluate the right side.
                if (op == BinaryOp::And) != b {
                    return Ok(Value::Bool(b));
                }
                match self.eval(rhs)? {
                    Value::Bool(r) => Ok(Value::Bool(r)),
                    Value::Tensor(t) => self.binary(op, Value::Bool(b), Value::Tensor(t), span),
                    other => Err(RuntimeError::new(
                        format!("`{word}` needs bools, got bool and {}", other.type_name()),
                        rhs.span,
                    )),
                }
            }
            Value::Tensor(_) => {
                let r = self.eval(rhs)?;
                self.binary(op, l, r, span)
            }
            other => Err(RuntimeError::new(
                format!("`{word}` needs bools, got {}", describe_kind(&other)),
                lhs.span,
            )),
        }
    }

    fn eval_struct_lit(
        &mut self,
        name: &str,
        fields: &[(String, Expr)],
        span: Span,
    ) -> Result<Value> {
        let decl = self
            .structs
            .get(name)
            .cloned()
            .ok_or_else(|| RuntimeError::new(format!("unknown struct `{name}`"), span))?;
        for (i, (field, e)) in fields.iter().enumerate() {
            if !decl.fields.iter().any(|f| f.name == *field) {
                return Err(RuntimeError::new(
                    format!("struct `{name}` has no field `{field}`"),
                    e.span,
                ));
            }
            if fields[..i].iter().any(|(f, _)| f == field) {
                return Err(RuntimeError::new(
                    format!("field `{field}` is given twice"),
                    e.span,
                ));
            }
        }
        let mut dims = HashMap::new();
        let mut values = Vec::with_capacity(decl.fields.len());
        for param in &decl.fields {
            let Some((_, e)) = fields.iter().find(|(f, _)| *f == param.name) else {
                return Err(RuntimeError::new(
                    format!("missing field `{}` in `{name} {{ ... }}`", param.name),
                    span,
                ));
            };
            let mut v = self.eval(e)?;
            if let Some(ty) = &param.ty {
                let what = format!("field `{}` of `{name}`", param.name);
                v = self.check_type(v, ty, &mut dims, &what, e.span)?;
            }
            values.push((param.name.clone(), v));
        }
        Ok(Value::Struct(Rc::new(RefCell::new(StructValue {
            type_name: name.to_string(),
            fields: values,
        }))))
    }
}

/// `base.name` on a struct, a record, or a tensor (`shape`, `dtype`, `rank`, `device`).
pub(crate) fn member(base: &Value, name: &str, span: Span) -> Result<Value> {
    match base {
        Value::Struct(s) => {
            let s = s.borrow();
            s.get(name).cloned().ok_or_else(|| {
                RuntimeError::new(
                    format!("struct `{}` has no field `{name}`", s.type_name),
                    span,
                )
            })
        }
        Value::Record(fields) => fields.get(name).cloned().ok_or_else(|| {
            let known: Vec<&str> = fields.keys().map(String::as_str).collect();
            RuntimeError::new(format!("the record has no field `{name}`"), span)
                .with_note(format!("its fields: {}", known.join(", ")))
        }),
        Value::Tensor(t) => match name {
            "shape" => Ok(Value::List(Rc::new(
                t.shape().iter().map(|&d| Value::Int(d as i64)).collect(),
            ))),
            "dtype" => Ok(Value::str(t.dtype().name())),
            "rank" | "ndim" => Ok(Value::Int(t.rank() as i64)),
            "device" => Ok(Value::str(t.device().name())),
            _ => Err(RuntimeError::new(
                format!("a tensor has no field `{name}` (it has shape, dtype, rank, device)"),
                span,
            )),
        },
        Value::Object(o) => match o.member(name) {
            Some(r) => r.map_err(|m| RuntimeError::new(m, span)),
            None => Err(RuntimeError::new(
                format!("a {} has no field `{name}`", o.type_name()),
                span,
            )),
        },
        other => Err(RuntimeError::new(
            format!("{} has no field `{name}`", describe_kind(other)),
            span,
        )),
    }
}

/// `e as int|float|bool|str`. A tensor must have one element (its value is read).
pub(crate) fn cast(v: Value, target: CastTarget, span: Span) -> Result<Value> {
    let target_name = match target {
        CastTarget::Int => "int",
        CastTarget::Float => "float",
        CastTarget::Bool => "bool",
        CastTarget::Str => "str",
    };
    if target == CastTarget::Str {
        return Ok(Value::str(format_value(&v)));
    }
    let fail =
        |what: String| RuntimeError::new(format!("cannot convert {what} to {target_name}"), span);
    // A one-element tensor casts as its value.
    let v = match v {
        Value::Tensor(t) => {
            if t.numel() != 1 {
                return Err(fail(format!(
                    "a tensor of shape {:?} (only one-element tensors convert)",
                    t.shape()
                )));
            }
            match t.dtype() {
                DType::I64 => Value::Int(t.to_vec_i64()[0]),
                DType::Bool => Value::Bool(t.to_scalar_f64()? != 0.0),
                _ => Value::Float(t.to_scalar_f64()?),
            }
        }
        other => other,
    };
    match (target, v) {
        (CastTarget::Int, Value::Int(i)) => Ok(Value::Int(i)),
        (CastTarget::Int, Value::Float(f)) => {
            // Truncates toward zero; values outside i64 are an error rather than saturating.
            if (-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&f) {
                Ok(Value::Int(f.trunc() as i64))
            } else {
                Err(fail(crate::format::format_float(f)))
            }
        }
        (CastTarget::Int, Value::Bool(b)) => Ok(Value::Int(b as i64)),
        (CastTarget::Int, Value::Str(s)) => s
            .trim()
            .parse::<i64>()
            .map(Value::Int)
            .map_err(|_| fail(format!("\"{s}\""))),
        (CastTarget::Float, Value::Int(i)) => Ok(Value::Float(i as f64)),
        (CastTarget::Float, Value::Float(f)) => Ok(Value::Float(f)),
        (CastTarget::Float, Value::Bool(b)) => Ok(Value::Float(b as i64 as f64)),
        (CastTarget::Float, Value::Str(s)) => s
            .trim()
            .parse::<f64>()
            .map(Value::Float)
            .map_err(|_| fail(format!("\"{s}\""))),
        (CastTarget::Bool, Value::Bool(b)) => Ok(Value::Bool(b)),
        (CastTarget::Bool, Value::Int(i)) => Ok(Value::Bool(i != 0)),
        (CastTarget::Bool, Value::Float(f)) => Ok(Value::Bool(f != 0.0)),
        (CastTarget::Bool, Value::Str(s)) => match s.trim() {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            _ => Err(fail(format!("\"{s}\""))),
        },
        (_, other) => Err(fail(describe_kind(&other))),
    }
}
