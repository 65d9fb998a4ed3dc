//! The builtin registry: one table of every builtin function, each with its name, signature,
//! one-paragraph doc and implementation. `tl help` lists this table and `tl help NAME` prints
//! one entry, so the doc here is the only documentation of a builtin.

mod args;
pub mod creation;
pub mod device;
pub mod elementwise;
pub mod host;
pub mod learn;
pub mod linalg;
pub mod llm;
pub mod nn;
pub mod reduce;
pub mod sampling;
pub mod shape;
pub mod text;

use std::collections::HashMap;
use std::sync::OnceLock;

use tl_syntax::Span;
use tl_tensor::Tensor;

use crate::error::{Result, RuntimeError};
use crate::interp::Interpreter;
use crate::value::Value;

/// An implementation receives the interpreter (for output, the random generator, the current
/// device) and the evaluated arguments.
pub type BuiltinFn = fn(&mut Interpreter, &mut CallArgs) -> Result<Value>;

pub struct Builtin {
    pub name: &'static str,
    /// As shown by `tl help`: `matmul(a: tensor, b: tensor) -> tensor`.
    pub signature: &'static str,
    /// Grouping in `tl help`: `creation`, `elementwise`, `reduction`, `shape`, `linear algebra`,
    /// `neural`, `host`, ...
    pub category: &'static str,
    /// One paragraph: what it does, each argument, defaults, errors.
    pub doc: &'static str,
    pub func: BuiltinFn,
}

/// Every builtin, grouped by the module that implements it.
fn all_tables() -> Vec<&'static [Builtin]> {
    vec![
        host::HOST_BUILTINS,
        creation::BUILTINS,
        elementwise::BUILTINS,
        reduce::BUILTINS,
        shape::BUILTINS,
        linalg::BUILTINS,
        nn::BUILTINS,
        sampling::BUILTINS,
        llm::BUILTINS,
        text::BUILTINS,
        device::BUILTINS,
        learn::BUILTINS,
    ]
}

fn index() -> &'static HashMap<&'static str, &'static Builtin> {
    static INDEX: OnceLock<HashMap<&'static str, &'static Builtin>> = OnceLock::new();
    INDEX.get_or_init(|| {
        let mut map = HashMap::new();
        for table in all_tables() {
            for b in table {
                let previous = map.insert(b.name, b);
                assert!(previous.is_none(), "builtin {} registered twice", b.name);
            }
        }
        map
    })
}

/// The builtin called `name`, if any.
pub fn lookup(name: &str) -> Option<&'static Builtin> {
    index().get(name).copied()
}

/// All builtins, sorted by category then name.
pub fn all() -> Vec<&'static Builtin> {
    let mut v: Vec<_> = index().values().copied().collect();
    v.sort_by_key(|b| (b.category, b.name));
    v
}

/// The evaluated arguments of one call, with their spans for error messages.
pub struct CallArgs {
    /// The builtin's name, for messages.
    pub name: &'static str,
    /// The span of the whole call.
    pub span: Span,
    pub positional: Vec<(Value, Span)>,
    pub named: Vec<(String, Value, Span)>,
}

impl CallArgs {
    pub fn len(&self) -> usize {
        self.positional.len()
    }

    pub fn is_empty(&self) -> bool {
        self.positional.is_empty()
    }

    /// An error located at the call.
    pub fn error(&self, message: impl Into<String>) -> RuntimeError {
        RuntimeError::new(format!("{}: {}", self.name, message.into()), self.span)
    }

    /// An error located at positional argument `i` (or the call if it is missing).
    pub fn arg_error(&self, i: usize, message: impl Into<String>) -> RuntimeError {
        let span = self.positional.get(i).map(|p| p.1).unwrap_or(self.span);
        RuntimeError::new(format!("{}: {}", self.name, message.into()), span)
    }

    /// Fails unless there are between `min` and `max` positional arguments.
    pub fn expect_count(&self, min: usize, max: usize) -> Result<()> {
        let n = self.positional.len();
        if n < min || n > max {
            let expected = if min == max {
                format!("{min}")
            } else {
                format!("{min} to {max}")
            };
            return Err(self.error(format!(
                "expected {expected} argument{}, got {n}",
                if max == 1 { "" } else { "s" }
            )));
        }
        Ok(())
    }

    /// Fails if a named argument is not one of `allowed`.
    pub fn expect_named(&self, allowed: &[&str]) -> Result<()> {
        for (name, _, span) in &self.named {
            if !allowed.contains(&name.as_str()) {
                return Err(RuntimeError::new(
                    format!("{}: unknown named argument `{name}`", self.name),
                    *span,
                ));
            }
        }
        Ok(())
    }

    pub fn get(&self, i: usize) -> Option<&Value> {
        self.positional.get(i).map(|p| &p.0)
    }

    /// Positional argument `i`, or the named argument `name`.
    pub fn get_or_named(&self, i: usize, name: &str) -> Option<&Value> {
        self.get(i).or_else(|| self.named(name))
    }

    pub fn named(&self, name: &str) -> Option<&Value> {
        self.named.iter().find(|n| n.0 == name).map(|n| &n.1)
    }

    fn required(&self, i: usize) -> Result<&Value> {
        self.get(i)
            .ok_or_else(|| self.error(format!("missing argument {}", i + 1)))
    }

    fn kind_error(&self, i: usize, want: &str, got: &Value) -> RuntimeError {
        self.arg_error(
            i,
            format!("argument {} must be {want}, got {}", i + 1, got.type_name()),
        )
    }

    /// Argument `i` as a tensor. Host numbers and (nested) lists of numbers become float32
    /// tensors; bools become bool tensors.
    pub fn tensor(&self, i: usize) -> Result<Tensor> {
        let v = self.required(i)?;
        crate::convert::to_tensor(v).ok_or_else(|| self.kind_error(i, "a tensor", v))
    }

    /// Argument `i` as a host object of type `T`; `what` names the type in the message
    /// (`"a model"`).
    pub fn object<T: crate::value::Object>(&self, i: usize, what: &str) -> Result<&T> {
        let v = self.required(i)?;
        match v {
            Value::Object(o) => o
                .as_any()
                .downcast_ref::<T>()
                .ok_or_else(|| self.kind_error(i, what, v)),
            _ => Err(self.kind_error(i, what, v)),
        }
    }

    pub fn int(&self, i: usize) -> Result<i64> {
        let v = self.required(i)?;
        crate::convert::to_int(v).ok_or_else(|| self.kind_error(i, "an int", v))
    }

    pub fn float(&self, i: usize) -> Result<f64> {
        let v = self.required(i)?;
        crate::convert::to_float(v).ok_or_else(|| self.kind_error(i, "a number", v))
    }

    pub fn bool(&self, i: usize) -> Result<bool> {
        let v = self.required(i)?;
        match v {
            Value::Bool(b) => Ok(*b),
            _ => Err(self.kind_error(i, "a bool", v)),
        }
    }

    pub fn string(&self, i: usize) -> Result<String> {
        let v = self.required(i)?;
        match v {
            Value::Str(s) => Ok(s.to_string()),
            _ => Err(self.kind_error(i, "a string", v)),
        }
    }
}
