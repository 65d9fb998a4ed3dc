//! Statements: bindings, assignment, control flow, loops, tensor declarations.

use std::collections::HashMap;

use tl_syntax::Span;
use tl_syntax::ast::{AssignOp, BinaryOp, Block, Expr, ExprKind, IndexArg, Stmt, StmtKind};
use tl_syntax::ast::{Dim, TensorDecl, TypeExpr};
use tl_tensor::{DType, Tensor};

use super::{Flow, Scope};
use crate::error::{Result, RuntimeError};
use crate::interp::Interpreter;
use crate::value::Value;

impl Interpreter {
    pub(crate) fn exec_stmt(&mut self, stmt: &Stmt) -> Result<Flow> {
        self.counters.statements += 1;
        self.current_span = stmt.span;
        match &stmt.kind {
            StmtKind::Let { name, ty, value } => {
                let v = self.eval(value)?;
                let v = match ty {
                    Some(ty) => self.check_type(
                        v,
                        ty,
                        &mut HashMap::new(),
                        &format!("`let {name}`"),
                        value.span,
                    )?,
                    None => v,
                };
                self.declare(name, v);
                Ok(Flow::Normal(Value::Unit))
            }
            StmtKind::Assign { target, op, value } => {
                self.exec_assign(target, *op, value, stmt.span)?;
                Ok(Flow::Normal(Value::Unit))
            }
            StmtKind::If {
                cond,
                then,
                otherwise,
            } => {
                if self.eval_cond(cond)? {
                    self.exec_block(then)
                } else if let Some(otherwise) = otherwise {
                    self.exec_block(otherwise)
                } else {
                    Ok(Flow::Normal(Value::Unit))
                }
            }
            StmtKind::For { var, iter, body } => self.exec_for(var, iter, body),
            StmtKind::While { cond, body } => {
                loop {
                    self.check_interrupt()?;
                    if !self.eval_cond(cond)? {
                        break;
                    }
                    match self.exec_block(body)? {
                        Flow::Break(_) => break,
                        Flow::Return(v) => return Ok(Flow::Return(v)),
                        Flow::Normal(_) | Flow::Continue(_) => {}
                    }
                }
                Ok(Flow::Normal(Value::Unit))
            }
            StmtKind::Break => Ok(Flow::Break(stmt.span)),
            StmtKind::Continue => Ok(Flow::Continue(stmt.span)),
            StmtKind::Return(value) => {
                let v = match value {
                    Some(e) => self.eval(e)?,
                    None => Value::Unit,
                };
                Ok(Flow::Return(v))
            }
            StmtKind::Block(block) => self.exec_block(block),
            StmtKind::Query { atom, condition } => {
                self.exec_logic_query(atom, condition.as_ref(), stmt.span)?;
                Ok(Flow::Normal(Value::Unit))
            }
            StmtKind::TensorQuery(e) => {
                // `Y?` prints `Y = value` (a value of several lines starts on the next line).
                let text = crate::format::format_value(&self.eval(e)?);
                let line = match &e.kind {
                    ExprKind::Name(n) if text.contains('\n') => format!("{n} =\n{text}\n"),
                    ExprKind::Name(n) => format!("{n} = {text}\n"),
                    _ => format!("{text}\n"),
                };
                self.write_output(&line)?;
                Ok(Flow::Normal(Value::Unit))
            }
            StmtKind::Infer { direction, atom } => {
                self.exec_infer(*direction, atom, stmt.span)?;
                Ok(Flow::Normal(Value::Unit))
            }
            StmtKind::Learn { body, settings } => {
                self.exec_learn(body, settings, stmt.span)?;
                Ok(Flow::Normal(Value::Unit))
            }
            StmtKind::Rule(rule) => {
                self.exec_logic_rule(rule, stmt.span)?;
                Ok(Flow::Normal(Value::Unit))
            }
            StmtKind::Expr(e) => {
                if self.is_fact(e) {
                    self.exec_fact(e)?;
                    return Ok(Flow::Normal(Value::Unit));
                }
                Ok(Flow::Normal(self.eval(e)?))
            }
        }
    }

    /// A call statement naming no function: a declared relation, or a capitalised name as
    /// Datalog writes facts (`Parent(alice, bob)`).
    fn is_fact(&self, e: &Expr) -> bool {
        let ExprKind::Call { callee, .. } = &e.kind else {
            return false;
        };
        let ExprKind::Name(name) = &callee.kind else {
            return false;
        };
        if self.is_bound_name(name) || self.structs.contains_key(name) {
            return false;
        }
        self.relations.contains(name) || name.starts_with(|c: char| c.is_ascii_uppercase())
    }

    /// The value of a condition: a bool, or a one-element tensor (non-zero is true).
    pub(crate) fn eval_cond(&mut self, cond: &Expr) -> Result<bool> {
        match self.eval(cond)? {
            Value::Bool(b) => Ok(b),
            Value::Tensor(t) if t.numel() == 1 => Ok(t.to_scalar_f64()? != 0.0),
            other => Err(RuntimeError::new(
                format!("a condition must be a bool, got {}", describe_kind(&other)),
                cond.span,
            )),
        }
    }

    fn exec_assign(&mut self, target: &Expr, op: AssignOp, value: &Expr, span: Span) -> Result<()> {
        if matches!(op, AssignOp::MaxAssign | AssignOp::AvgAssign) {
            return self.exec_equation(target, op, value, span);
        }
        match &target.kind {
            ExprKind::Call { .. } => {
                return self.exec_relation_equation(target, op, value, span);
            }
            ExprKind::Index { indices, .. } if self.equation_kind(indices).is_some() => {
                return self.exec_equation(target, op, value, span);
            }
            ExprKind::Name(_)
                if matches!(op, AssignOp::Assign | AssignOp::Bind)
                    && self.reads_index_variable(value) =>
            {
                return self.exec_equation(target, op, value, span);
            }
            _ => {}
        }
        let compound = match op {
            AssignOp::AddAssign => Some(BinaryOp::Add),
            AssignOp::SubAssign => Some(BinaryOp::Sub),
            AssignOp::MulAssign => Some(BinaryOp::Mul),
            AssignOp::DivAssign => Some(BinaryOp::Div),
            _ => None,
        };
        if let Some(bin) = compound {
            let current = self.eval(target)?;
            let rhs = self.eval(value)?;
            let new = self.binary(bin, current, rhs, span)?;
            return self.assign_to(target, new);
        }
        if matches!(op, AssignOp::Assign | AssignOp::Bind) && self.append_in_place(target, value)? {
            return Ok(());
        }
        let v = self.eval(value)?;
        if op == AssignOp::Bind
            && let ExprKind::Name(name) = &target.kind
        {
            self.bind_or_rebind(name, v);
            return Ok(());
        }
        self.assign_to(target, v)
    }

    /// `xs = append(xs, e)`: pushes onto the list the variable holds instead of copying it, so
    /// that growing a list in a loop is linear. False when the statement has another shape.
    fn append_in_place(&mut self, target: &Expr, value: &Expr) -> Result<bool> {
        let (ExprKind::Name(name), ExprKind::Call { callee, args }) = (&target.kind, &value.kind)
        else {
            return Ok(false);
        };
        let ExprKind::Name(callee_name) = &callee.kind else {
            return Ok(false);
        };
        let [list_arg, item_arg] = args.as_slice() else {
            return Ok(false);
        };
        let is_same_var = matches!(&list_arg.value.kind, ExprKind::Name(n) if n == name);
        if callee_name != "append"
            || !is_same_var
            || list_arg.name.is_some()
            || item_arg.name.is_some()
            || self.lookup_var(callee_name).is_some()
            || self.fns.contains_key(callee_name)
            || self.lookup_var(name).is_none()
        {
            return Ok(false);
        }
        let Some(builtin) = crate::builtins::lookup("append") else {
            return Ok(false);
        };
        // The item first: it may read the list.
        let item = self.eval(&item_arg.value)?;
        let list = self.take_var(name).unwrap_or_default();
        if !matches!(list, Value::List(_)) {
            // Not a list: `append` reports the error; the variable keeps its value.
            let result = self.call_builtin(
                builtin,
                vec![(list.clone(), list_arg.span), (item, item_arg.span)],
                Vec::new(),
                value.span,
            );
            self.rebind(name, list, target.span)?;
            let updated = result?;
            self.rebind(name, updated, target.span)?;
            return Ok(true);
        }
        // The variable handed over the only reference, so `append` pushes without a copy.
        let updated = self.call_builtin(
            builtin,
            vec![(list, list_arg.span), (item, item_arg.span)],
            Vec::new(),
            value.span,
        )?;
        self.rebind(name, updated, target.span)?;
        Ok(true)
    }

    /// Why an indexed assignment is a tensor equation (which a later issue runs): an index that
    /// names no variable (`Y[i, k] = ...` with `i` unbound), or the `p'.` / `*t` forms.
    pub(crate) fn equation_kind(&self, indices: &[IndexArg]) -> Option<&'static str> {
        for ix in indices {
            match ix {
                IndexArg::Normalized(_) => {
                    return Some("tensor equations (normalized index `p'.`)");
                }
                IndexArg::Virtual(..) => return Some("tensor equations (virtual index `*t`)"),
                IndexArg::Expr(e) => {
                    if self.has_unbound_name(e) {
                        return Some("tensor equations");
                    }
                }
                IndexArg::Slice { start, end, step } => {
                    for e in [start, end, step].into_iter().flatten() {
                        if self.has_unbound_name(e) {
                            return Some("tensor equations");
                        }
                    }
                }
            }
        }
        None
    }

    /// True when a right side indexes a tensor with an index variable (`Y[n]` with `n` bound
    /// to nothing): `Loss = (Y[n] - T[n]) ** 2` is then a tensor equation whose left side has
    /// no indices (every index is summed), not an assignment.
    pub(crate) fn reads_index_variable(&self, e: &Expr) -> bool {
        indexes_with_variable(e, &|indices| self.equation_kind(indices).is_some())
    }

    fn has_unbound_name(&self, e: &Expr) -> bool {
        match &e.kind {
            ExprKind::Name(n) => !self.is_bound_name(n),
            ExprKind::Binary { lhs, rhs, .. } => {
                self.has_unbound_name(lhs) || self.has_unbound_name(rhs)
            }
            ExprKind::Unary { expr, .. } => self.has_unbound_name(expr),
            _ => false,
        }
    }

    /// Stores `value` into a place: a variable, an element or slice (`x[i] = v`, copy on
    /// write), or a struct field (`self.w = v`, visible to every holder of the struct).
    pub(crate) fn assign_to(&mut self, target: &Expr, value: Value) -> Result<()> {
        match &target.kind {
            ExprKind::Name(name) => self.rebind(name, value, target.span),
            ExprKind::Index { base, indices } => {
                let ixs = self.eval_indices(indices)?;
                // Take the container out of its variable so that an unshared list or tensor is
                // updated without a copy (`set_index` leaves it unchanged when it fails).
                if let ExprKind::Name(name) = &base.kind
                    && let Some(mut current) = self.take_var(name)
                {
                    let result = super::index::set_index(&mut current, &ixs, value, target.span);
                    self.rebind(name, current, base.span)?;
                    return result;
                }
                let mut current = self.eval(base)?;
                super::index::set_index(&mut current, &ixs, value, target.span)?;
                self.assign_to(base, current)
            }
            ExprKind::Member { base, name } => {
                let object = self.eval(base)?;
                match &object {
                    Value::Struct(s) => {
                        // A typed field keeps its type.
                        let type_name = s.borrow().type_name.clone();
                        let declared = self.structs.get(&type_name).and_then(|d| {
                            d.fields
                                .iter()
                                .find(|f| f.name == *name)
                                .and_then(|f| f.ty.clone())
                        });
                        let value = match declared {
                            Some(ty) => {
                                let what = format!("field `{name}` of `{type_name}`");
                                self.check_type(
                                    value,
                                    &ty,
                                    &mut HashMap::new(),
                                    &what,
                                    target.span,
                                )?
                            }
                            None => value,
                        };
                        let mut s = s.borrow_mut();
                        if s.set(name, value) {
                            Ok(())
                        } else {
                            Err(RuntimeError::new(
                                format!("struct `{}` has no field `{name}`", s.type_name),
                                target.span,
                            ))
                        }
                    }
                    other => Err(RuntimeError::new(
                        format!(
                            "cannot assign to field `{name}` of a {} (only struct fields can be assigned)",
                            other.type_name()
                        ),
                        target.span,
                    )),
                }
            }
            _ => Err(RuntimeError::new(
                "cannot assign to this expression (assign to a variable, an element `x[i]` or a field `s.f`)",
                target.span,
            )),
        }
    }

    fn exec_for(&mut self, var: &str, iter: &Expr, body: &Block) -> Result<Flow> {
        // One scope for the whole loop, emptied at each iteration (no allocation per step).
        self.scopes.push(Scope::default());
        let result = self.exec_for_in_scope(var, iter, body);
        self.scopes.pop();
        result
    }

    fn exec_for_in_scope(&mut self, var: &str, iter: &Expr, body: &Block) -> Result<Flow> {
        if let Some((start, end, step)) = self.lazy_range(iter)? {
            let mut i = start;
            while (step > 0 && i < end) || (step < 0 && i > end) {
                if let Some(flow) = self.run_iteration(var, Value::Int(i), body)? {
                    return Ok(flow);
                }
                i = match i.checked_add(step) {
                    Some(next) => next,
                    None => break,
                };
            }
            return Ok(Flow::Normal(Value::Unit));
        }
        let collection = self.eval(iter)?;
        match collection {
            Value::List(items) => {
                for item in items.iter() {
                    if let Some(flow) = self.run_iteration(var, item.clone(), body)? {
                        return Ok(flow);
                    }
                }
            }
            Value::Tensor(t) => {
                if t.rank() == 0 {
                    return Err(RuntimeError::new(
                        "cannot iterate over a rank-0 tensor (it has no dimension 0)",
                        iter.span,
                    ));
                }
                for i in 0..t.shape()[0] {
                    let row = t
                        .select(0, i as isize)
                        .map_err(|e| RuntimeError::from(e).at(iter.span))?;
                    if let Some(flow) = self.run_iteration(var, Value::Tensor(row), body)? {
                        return Ok(flow);
                    }
                }
            }
            Value::Str(s) => {
                for c in s.chars() {
                    if let Some(flow) = self.run_iteration(var, Value::str(c.to_string()), body)? {
                        return Ok(flow);
                    }
                }
            }
            other => {
                return Err(RuntimeError::new(
                    format!(
                        "cannot iterate over {} (use range(n), a list, a tensor or a string)",
                        describe_kind(&other)
                    ),
                    iter.span,
                ));
            }
        }
        Ok(Flow::Normal(Value::Unit))
    }

    /// One loop iteration in the loop's scope (the innermost); `Some(flow)` ends the loop with
    /// that flow (`return`).
    fn run_iteration(&mut self, var: &str, value: Value, body: &Block) -> Result<Option<Flow>> {
        self.check_interrupt()?;
        if let Some(scope) = self.scopes.last_mut() {
            // Forget the previous iteration's `let`s, keep the loop variable's slot.
            if scope.len() > 1 {
                scope.retain(|k, _| k == var);
            }
            match scope.get_mut(var) {
                Some(slot) => *slot = value,
                None => {
                    scope.insert(var.to_string(), value);
                }
            }
        }
        match self.exec_stmts(&body.stmts)? {
            Flow::Break(_) => Ok(Some(Flow::Normal(Value::Unit))),
            Flow::Return(v) => Ok(Some(Flow::Return(v))),
            Flow::Normal(_) | Flow::Continue(_) => Ok(None),
        }
    }

    /// `for i in range(..)` / `range_i(..)` runs without building the list, unless the program
    /// defines its own `range`.
    fn lazy_range(&mut self, iter: &Expr) -> Result<Option<(i64, i64, i64)>> {
        let ExprKind::Call { callee, args } = &iter.kind else {
            return Ok(None);
        };
        let ExprKind::Name(name) = &callee.kind else {
            return Ok(None);
        };
        if !(name == "range" || name == "range_i")
            || self.fns.contains_key(name)
            || self.lookup_var(name).is_some()
            || args.iter().any(|a| a.name.is_some())
        {
            return Ok(None);
        }
        let mut bounds = Vec::with_capacity(args.len());
        for (i, arg) in args.iter().enumerate() {
            let v = self.eval(&arg.value)?;
            match crate::convert::to_int(&v) {
                Some(n) if !matches!(v, Value::Bool(_)) => bounds.push(n),
                _ => {
                    return Err(RuntimeError::new(
                        format!(
                            "{name}: argument {} must be an int, got {}",
                            i + 1,
                            v.type_name()
                        ),
                        arg.span,
                    ));
                }
            }
        }
        crate::builtins::host::range_bounds(&bounds)
            .map(Some)
            .map_err(|m| RuntimeError::new(format!("{name}: {m}"), iter.span))
    }

    /// `tensor W: float32[3, 4] = e`: evaluates, checks the type, binds globally. Without a
    /// value the tensor starts as zeros (its shape must then be fixed) and, when it is a float
    /// tensor and not `frozen`, is learnable.
    pub(crate) fn exec_tensor_decl(&mut self, decl: &TensorDecl, span: Span) -> Result<()> {
        self.counters.statements += 1;
        self.current_span = span;
        let value = match &decl.init {
            Some(e) => self.eval(e)?,
            None => {
                let mut shape = Vec::with_capacity(decl.ty.dims.len());
                for d in &decl.ty.dims {
                    match d {
                        Dim::Fixed(n) => shape.push(*n),
                        _ => {
                            return Err(RuntimeError::new(
                                format!(
                                    "tensor `{}` has no value, so its shape must be fixed (no named or `?` dimensions)",
                                    decl.name
                                ),
                                decl.ty.span,
                            ));
                        }
                    }
                }
                let dtype = DType::from_name(&decl.ty.dtype).ok_or_else(|| {
                    RuntimeError::new(format!("unknown dtype `{}`", decl.ty.dtype), decl.ty.span)
                })?;
                let zeros = Tensor::try_full(&shape, 0.0, dtype).map_err(|e| {
                    RuntimeError::new(format!("tensor `{}`: {e}", decl.name), decl.ty.span)
                })?;
                Value::Tensor(zeros)
            }
        };
        let ty = TypeExpr::Tensor(decl.ty.clone());
        let what = format!("tensor `{}`", decl.name);
        let value = self.check_type(value, &ty, &mut HashMap::new(), &what, span)?;
        self.learnable.retain(|n| n != &decl.name);
        // Paper section 3.3: a float tensor not given as data (declared without a value) is a
        // parameter, learnable unless `frozen`.
        let parameter = decl.init.is_none()
            && decl.role.is_none()
            && matches!(&value, Value::Tensor(t) if t.dtype().is_float());
        if parameter || decl.role == Some(tl_syntax::ast::TensorRole::Learnable) {
            match &value {
                Value::Tensor(t) if t.dtype().is_float() => self.learnable.push(decl.name.clone()),
                _ => {
                    return Err(RuntimeError::new(
                        format!("learnable tensor `{}` must have a float dtype", decl.name),
                        decl.ty.span,
                    ));
                }
            }
        }
        self.declare(&decl.name, value);
        Ok(())
    }
}

/// `an int`, `a string`, `a tensor`, ... for messages.
pub(crate) fn describe_kind(v: &Value) -> String {
    let name = v.type_name();
    let article = if name.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {name}")
}

/// True when `e` indexes something with indices that `is_equation_index` calls an equation's
/// (an index variable): shared by the interpreter and `tl check`, which know bound names
/// differently.
pub(crate) fn indexes_with_variable(
    e: &Expr,
    is_equation_index: &dyn Fn(&[IndexArg]) -> bool,
) -> bool {
    let recurse = |e: &Expr| indexes_with_variable(e, is_equation_index);
    match &e.kind {
        ExprKind::Index { base, indices } => {
            recurse(base)
                || is_equation_index(indices)
                || indices.iter().any(|ix| match ix {
                    IndexArg::Expr(ixe) => recurse(ixe),
                    _ => false,
                })
        }
        ExprKind::Binary { lhs, rhs, .. } => recurse(lhs) || recurse(rhs),
        ExprKind::Unary { expr, .. } => recurse(expr),
        ExprKind::Call { args, .. } => args.iter().any(|a| recurse(&a.value)),
        _ => false,
    }
}
