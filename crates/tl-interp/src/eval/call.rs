//! Calls: user functions (arity, named arguments, parameter and result type checks, the
//! recursion limit), builtins through the registry, typed constructors (`f16::zeros(..)`),
//! `Type::method(..)` and `value.method(..)`.

use std::rc::Rc;

use tl_syntax::Span;
use tl_syntax::ast::{Arg, Expr, ExprKind};
use tl_tensor::DType;

use super::Flow;
use super::stmt::describe_kind;
use crate::builtins::{self, Builtin, CallArgs};
use crate::error::{Result, RuntimeError};
use crate::interp::{Function, Interpreter, MAX_CALL_DEPTH, STACK_RED_ZONE, STACK_SEGMENT};
use crate::value::Value;

type Positional = Vec<(Value, Span)>;
type Named = Vec<(String, Value, Span)>;

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// "f expects 2 arguments, got 3": shared by calls and by `tl check`, so both say the same.
pub(crate) fn arity_message(function: &str, expected: usize, given: usize) -> String {
    format!(
        "{function} expects {expected} argument{}, got {given}",
        plural(expected)
    )
}

impl Interpreter {
    pub(crate) fn eval_call(&mut self, callee: &Expr, args: &[Arg], span: Span) -> Result<Value> {
        match &callee.kind {
            ExprKind::Name(name) => {
                if let Some(v) = self.lookup_var(name) {
                    let v = v.clone();
                    return self.call_value(v, args, span);
                }
                if let Some(f) = self.fns.get(name).cloned() {
                    let (positional, named) = self.eval_args(args)?;
                    return self.call_function(&f, positional, named, span, false);
                }
                if let Some(b) = builtins::lookup(name) {
                    let (positional, named) = self.eval_args(args)?;
                    return self.call_builtin(b, positional, named, span);
                }
                if self.structs.contains_key(name) {
                    return Err(RuntimeError::new(
                        format!(
                            "`{name}` is a struct, not a function; build one with `{name} {{ field: value, ... }}`"
                        ),
                        callee.span,
                    ));
                }
                if self.relations.contains(name) {
                    return Err(RuntimeError::new(
                        format!(
                            "`{name}` is a relation, not a function: state a fact as a statement (`{name}(a, b)`) or ask it with `query {name}(...)`"
                        ),
                        callee.span,
                    ));
                }
                Err(self.unknown_function_error(name, callee.span))
            }
            ExprKind::Path { ty, name } => {
                if let Some(f) = self.methods.get(ty).and_then(|m| m.get(name)).cloned() {
                    let (positional, named) = self.eval_args(args)?;
                    return self.call_function(&f, positional, named, span, false);
                }
                // Constructors of host objects are registry entries named `Type::name`.
                if let Some(b) = builtins::lookup(&format!("{ty}::{name}")) {
                    let (positional, named) = self.eval_args(args)?;
                    return self.call_builtin(b, positional, named, span);
                }
                if let Some(dtype) = DType::from_name(ty) {
                    let Some(b) = builtins::lookup(name) else {
                        return Err(RuntimeError::new(
                            format!(
                                "unknown typed constructor `{ty}::{name}` (`{name}` is not a builtin)"
                            ),
                            callee.span,
                        ));
                    };
                    let (positional, mut named) = self.eval_args(args)?;
                    if let Some((_, _, s)) = named.iter().find(|n| n.0 == "dtype") {
                        return Err(RuntimeError::new(
                            format!("`{ty}::{name}` already sets the dtype; remove `dtype:`"),
                            *s,
                        ));
                    }
                    named.push(("dtype".into(), Value::str(dtype.name()), callee.span));
                    return self.call_builtin(b, positional, named, span);
                }
                let message = if self.structs.contains_key(ty) || self.methods.contains_key(ty) {
                    format!("`{ty}` has no method `{name}`")
                } else {
                    format!("unknown function `{ty}::{name}` (no struct or dtype `{ty}`)")
                };
                Err(RuntimeError::new(message, callee.span))
            }
            _ => {
                let v = self.eval(callee)?;
                self.call_value(v, args, span)
            }
        }
    }

    fn unknown_function_error(&self, name: &str, span: Span) -> RuntimeError {
        let err = RuntimeError::new(format!("unknown function `{name}`"), span);
        let builtin_names: Vec<&'static str> = builtins::all().iter().map(|b| b.name).collect();
        let candidates = self
            .fns
            .keys()
            .map(String::as_str)
            .chain(builtin_names.iter().copied());
        match crate::suggest::closest(name, candidates) {
            Some(s) => err.with_note(format!("did you mean `{s}`?")),
            None => err,
        }
    }

    /// Calls a function value (a variable holding a function or builtin).
    fn call_value(&mut self, v: Value, args: &[Arg], span: Span) -> Result<Value> {
        match v {
            Value::Function(f) => {
                let (positional, named) = self.eval_args(args)?;
                self.call_function(&f, positional, named, span, false)
            }
            Value::Builtin(b) => {
                let (positional, named) = self.eval_args(args)?;
                self.call_builtin(b, positional, named, span)
            }
            other => Err(RuntimeError::new(
                format!(
                    "cannot call {}: it is not a function",
                    describe_kind(&other)
                ),
                span,
            )),
        }
    }

    fn eval_args(&mut self, args: &[Arg]) -> Result<(Positional, Named)> {
        let mut positional = Vec::with_capacity(args.len());
        let mut named = Vec::new();
        for arg in args {
            let v = self.eval(&arg.value)?;
            match &arg.name {
                Some(n) => {
                    if named.iter().any(|(m, _, _): &(String, Value, Span)| m == n) {
                        return Err(RuntimeError::new(
                            format!("argument `{n}` is given twice"),
                            arg.span,
                        ));
                    }
                    named.push((n.clone(), v, arg.span));
                }
                None => positional.push((v, arg.span)),
            }
        }
        Ok((positional, named))
    }

    /// Calls a builtin; errors without a place (from the tensor runtime) get the call's span.
    pub(crate) fn call_builtin(
        &mut self,
        b: &'static Builtin,
        positional: Positional,
        named: Named,
        span: Span,
    ) -> Result<Value> {
        self.count_builtin();
        let mut call = CallArgs {
            name: b.name,
            span,
            positional,
            named,
        };
        (b.func)(self, &mut call).map_err(|e| e.at(span))
    }

    /// Calls a user function. `as_method`: the receiver is the first positional argument
    /// (`self`), left out of the counts in messages.
    pub(crate) fn call_function(
        &mut self,
        f: &Rc<Function>,
        positional: Positional,
        named: Named,
        span: Span,
        as_method: bool,
    ) -> Result<Value> {
        let params = &f.decl.params;
        let shown = |n: usize| if as_method { n.saturating_sub(1) } else { n };
        let given = positional.len() + named.len();
        let arity_error = || {
            RuntimeError::new(
                arity_message(&f.display_name(), shown(params.len()), shown(given)),
                span,
            )
        };
        if positional.len() > params.len() {
            return Err(arity_error());
        }
        let mut slots: Vec<Option<(Value, Span)>> = Vec::with_capacity(params.len());
        slots.extend(positional.into_iter().map(Some));
        slots.resize_with(params.len(), || None);
        for (name, v, s) in named {
            match params.iter().position(|p| p.name == name) {
                Some(i) if slots[i].is_none() => slots[i] = Some((v, s)),
                Some(_) => {
                    return Err(RuntimeError::new(
                        format!("argument `{name}` of {} is given twice", f.display_name()),
                        s,
                    ));
                }
                None => {
                    return Err(RuntimeError::new(
                        format!("{} has no parameter `{name}`", f.display_name()),
                        s,
                    ));
                }
            }
        }
        if slots.iter().any(Option::is_none) {
            return Err(arity_error());
        }
        if self.depth >= MAX_CALL_DEPTH {
            return Err(RuntimeError::new(
                format!(
                    "recursion too deep: more than {MAX_CALL_DEPTH} nested calls (in {})",
                    f.display_name()
                ),
                span,
            ));
        }
        self.check_interrupt()?;
        let mut dims = std::collections::HashMap::new();
        let mut scope = super::Scope::with_capacity_and_hasher(params.len(), Default::default());
        for (param, slot) in params.iter().zip(slots) {
            let Some((mut v, arg_span)) = slot else {
                return Err(arity_error());
            };
            if let Some(ty) = &param.ty {
                let what = format!("parameter `{}` of {}", param.name, f.display_name());
                v = self.check_type(v, ty, &mut dims, &what, arg_span)?;
            }
            scope.insert(param.name.clone(), v);
        }
        self.counters.function_calls += 1;
        let saved_scopes = std::mem::replace(&mut self.scopes, vec![scope]);
        let saved_span = self.current_span;
        self.depth += 1;
        // Deep recursion in a program recurses in the evaluator too: grow the stack on demand
        // (on any thread) so that the depth limit, not a stack overflow, stops it.
        let result = stacker::maybe_grow(STACK_RED_ZONE, STACK_SEGMENT, || {
            self.exec_block(&f.decl.body)
        });
        self.depth -= 1;
        self.scopes = saved_scopes;
        self.current_span = saved_span;
        let v = match result? {
            Flow::Normal(v) | Flow::Return(v) => v,
            Flow::Break(s) => return Err(RuntimeError::new("`break` outside of a loop", s)),
            Flow::Continue(s) => return Err(RuntimeError::new("`continue` outside of a loop", s)),
        };
        match &f.decl.ret {
            Some(ret) => {
                let what = format!("the result of {}", f.display_name());
                self.check_type(v, ret, &mut dims, &what, span)
            }
            None => Ok(v),
        }
    }

    pub(crate) fn eval_method_call(
        &mut self,
        receiver: &Expr,
        method: &str,
        args: &[Arg],
        span: Span,
    ) -> Result<Value> {
        let recv = self.eval(receiver)?;
        if let Value::Struct(s) = &recv {
            let type_name = s.borrow().type_name.clone();
            if let Some(f) = self
                .methods
                .get(&type_name)
                .and_then(|m| m.get(method))
                .cloned()
            {
                if !f.takes_self() {
                    return Err(RuntimeError::new(
                        format!(
                            "`{type_name}::{method}` has no `self` parameter; call it as `{type_name}::{method}(...)`"
                        ),
                        span,
                    ));
                }
                let (mut positional, named) = self.eval_args(args)?;
                positional.insert(0, (recv, receiver.span));
                return self.call_function(&f, positional, named, span, true);
            }
            // A field holding a function: `s.handler(x)`.
            let field = s.borrow().get(method).cloned();
            if let Some(v @ (Value::Function(_) | Value::Builtin(_))) = field {
                return self.call_value(v, args, span);
            }
        }
        // Methods of host objects are registry entries named `Type.method` (`KVCache.append`).
        if let Value::Object(o) = &recv {
            if let Some(b) = builtins::lookup(&format!("{}.{method}", o.type_name())) {
                let (mut positional, named) = self.eval_args(args)?;
                positional.insert(0, (recv, receiver.span));
                return self.call_builtin(b, positional, named, span);
            }
            if builtins::lookup(method).is_none() {
                return Err(RuntimeError::new(
                    format!("a {} has no method `{method}`", o.type_name()),
                    span,
                )
                .with_note(format!("`tl help {}` lists its methods", o.type_name())));
            }
        }
        // Builtins as methods: `x.sum()`, `x.reshape([2, 3])`, `l.len()`.
        if let Some(b) = builtins::lookup(method) {
            let (mut positional, named) = self.eval_args(args)?;
            positional.insert(0, (recv, receiver.span));
            return self.call_builtin(b, positional, named, span);
        }
        Err(RuntimeError::new(
            format!("{} has no method `{method}`", describe_kind(&recv)),
            span,
        ))
    }
}
