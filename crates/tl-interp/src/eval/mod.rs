//! The evaluator: statements (this file), expressions, calls, indexing, operators and type
//! checks (the submodules). Control flow (`break`, `continue`, `return`) travels as a [`Flow`]
//! result, never as an error or a panic.

mod call;
pub(crate) use call::arity_message;
pub(crate) mod embedding;
mod equation;
mod equation_set;
pub(crate) use equation_set::{SetEquation, StatementEquation};
mod expr;
mod index;
pub(crate) mod learn;
pub(crate) mod logic;
mod ops;
mod stmt;
mod types;

pub(crate) use expr::cast;
pub(crate) use stmt::indexes_with_variable;

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use tl_syntax::Span;

use crate::error::{Result, RuntimeError};
use crate::interp::Interpreter;
use crate::value::Value;

/// The bindings of one block. Variable lookup is the interpreter's hottest path, so scopes
/// hash names with FNV-1a (fast on short keys) rather than the default SipHash.
pub(crate) type Scope = HashMap<String, Value, BuildHasherDefault<FnvHasher>>;

/// 64-bit FNV-1a. Names come from the program's own source, so hash flooding is no concern.
pub(crate) struct FnvHasher(u64);

impl Default for FnvHasher {
    fn default() -> FnvHasher {
        FnvHasher(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for FnvHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for &b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
}

/// How a statement or block ended.
pub(crate) enum Flow {
    /// Fell through; carries the value of a trailing expression (a function's result).
    Normal(Value),
    Break(Span),
    Continue(Span),
    Return(Value),
}

impl Interpreter {
    /// The value bound to `name` in the running function's scopes or the globals.
    pub(crate) fn lookup_var(&self, name: &str) -> Option<&Value> {
        for scope in self.scopes.iter().rev() {
            if let Some(v) = scope.get(name) {
                return Some(v);
            }
        }
        self.globals.get(name)
    }

    fn lookup_var_mut(&mut self, name: &str) -> Option<&mut Value> {
        for scope in self.scopes.iter_mut().rev() {
            if let Some(v) = scope.get_mut(name) {
                return Some(v);
            }
        }
        self.globals.get_mut(name)
    }

    /// `let`: a new binding in the innermost scope (shadowing any other).
    pub(crate) fn declare(&mut self, name: &str, value: Value) {
        match self.scopes.last_mut() {
            Some(scope) => scope.insert(name.to_string(), value),
            None => self.globals.insert(name.to_string(), value),
        };
    }

    /// `x = e`: replaces an existing binding.
    pub(crate) fn rebind(&mut self, name: &str, value: Value, span: Span) -> Result<()> {
        match self.lookup_var_mut(name) {
            Some(slot) => {
                *slot = value;
                Ok(())
            }
            None => Err(RuntimeError::new(
                format!("cannot assign to `{name}`: no variable of that name is declared"),
                span,
            )
            .with_note(format!(
                "declare it first with `let {name} = ...` (or `{name} := ...`)"
            ))),
        }
    }

    /// `x := e`: rebinds a visible variable, or declares it in the innermost scope.
    pub(crate) fn bind_or_rebind(&mut self, name: &str, value: Value) {
        match self.lookup_var_mut(name) {
            Some(slot) => *slot = value,
            None => self.declare(name, value),
        }
    }

    /// Moves the value out of a variable (leaving `()`), so that an update in place does not
    /// copy a list or tensor that only the variable holds.
    pub(crate) fn take_var(&mut self, name: &str) -> Option<Value> {
        self.lookup_var_mut(name).map(std::mem::take)
    }

    /// True if `name` means something where a value is expected: a variable, a function, a
    /// builtin or a struct.
    pub(crate) fn is_bound_name(&self, name: &str) -> bool {
        self.lookup_var(name).is_some()
            || self.fns.contains_key(name)
            || crate::builtins::lookup(name).is_some()
    }

    /// Runs a block in a new scope.
    pub(crate) fn exec_block(&mut self, block: &tl_syntax::ast::Block) -> Result<Flow> {
        self.scopes.push(Scope::default());
        let result = self.exec_stmts(&block.stmts);
        self.scopes.pop();
        result
    }

    /// Runs the statements of a block in the current scope; the flow of the last statement
    /// (its value, for a trailing expression) is the block's.
    pub(crate) fn exec_stmts(&mut self, stmts: &[tl_syntax::ast::Stmt]) -> Result<Flow> {
        let mut last = Flow::Normal(Value::Unit);
        for stmt in stmts {
            last = self.exec_stmt(stmt)?;
            if !matches!(last, Flow::Normal(_)) {
                return Ok(last);
            }
        }
        Ok(last)
    }

    /// Runs the body of `main`, a test or a bench (the caller gave it an empty scope stack).
    pub(crate) fn exec_body(&mut self, block: &tl_syntax::ast::Block) -> Result<Value> {
        match self.exec_block(block)? {
            Flow::Normal(v) | Flow::Return(v) => Ok(v),
            Flow::Break(span) => Err(RuntimeError::new("`break` outside of a loop", span)),
            Flow::Continue(span) => Err(RuntimeError::new("`continue` outside of a loop", span)),
        }
    }

    /// Runs one top-level statement of a file (bindings go to the global scope).
    pub(crate) fn exec_top_stmt(&mut self, stmt: &tl_syntax::ast::Stmt) -> Result<Value> {
        match self.exec_stmt(stmt)? {
            Flow::Normal(v) => Ok(v),
            Flow::Return(_) => Err(RuntimeError::new(
                "`return` outside of a function",
                stmt.span,
            )),
            Flow::Break(span) => Err(RuntimeError::new("`break` outside of a loop", span)),
            Flow::Continue(span) => Err(RuntimeError::new("`continue` outside of a loop", span)),
        }
    }
}
