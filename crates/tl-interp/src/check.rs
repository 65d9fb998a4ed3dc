//! `tl check`: resolves every name in a loaded program without running it, and reports all
//! unknown variables, unknown functions and assignments to undeclared variables.

use std::collections::HashSet;

use tl_syntax::ast::{Arg, AssignOp, Block, Expr, ExprKind, IndexArg, Stmt, StmtKind};
use tl_syntax::{Diagnostic, Span};
use tl_tensor::DType;

use crate::builtins;
use crate::interp::Interpreter;
use crate::load::{LoadedProgram, TopItem};

struct Resolver<'a> {
    interp: &'a Interpreter,
    /// Names bound at top level by any loaded file (visible in every function body).
    globals: HashSet<String>,
    scopes: Vec<HashSet<String>>,
    diags: Vec<Diagnostic>,
}

pub(crate) fn check_program(interp: &Interpreter, program: &LoadedProgram) -> Vec<Diagnostic> {
    let mut globals: HashSet<String> = interp.globals.keys().cloned().collect();
    for item in &program.items {
        match item {
            TopItem::Tensor(decl, _) => {
                globals.insert(decl.name.clone());
            }
            TopItem::Stmt(stmt) => collect_top_binding(stmt, &mut globals),
            TopItem::Embedding(decl, _) => {
                globals.insert(decl.name.clone());
            }
            TopItem::Relation(..) | TopItem::Unsupported(..) => {}
        }
    }
    let mut r = Resolver {
        interp,
        globals,
        scopes: Vec::new(),
        diags: Vec::new(),
    };
    for item in &program.items {
        match item {
            TopItem::Stmt(stmt) => r.stmt(stmt),
            TopItem::Tensor(decl, _) => {
                if let Some(init) = &decl.init {
                    r.expr(init);
                }
            }
            TopItem::Relation(..) | TopItem::Unsupported(..) | TopItem::Embedding(..) => {}
        }
    }
    let mut functions: Vec<_> = interp.fns.values().cloned().collect();
    for table in interp.methods.values() {
        functions.extend(table.values().cloned());
    }
    for f in &functions {
        let params: HashSet<String> = f.decl.params.iter().map(|p| p.name.clone()).collect();
        r.scopes = vec![params];
        r.block(&f.decl.body);
    }
    let bodies = program
        .main
        .iter()
        .chain(program.tests.iter().map(|t| &t.1))
        .chain(program.benches.iter().map(|b| &b.1));
    for body in bodies {
        r.scopes = vec![HashSet::new()];
        r.block(body);
    }
    let mut diags = r.diags;
    diags.extend(crate::eval::logic::check_logic(interp, program));
    diags.sort_by_key(|d| d.span.map(|s| (s.file.0, s.start)));
    diags.dedup();
    diags
}

/// A top-level `let x`, `x := e` or bare `x = e` binds a global.
fn collect_top_binding(stmt: &Stmt, globals: &mut HashSet<String>) {
    match &stmt.kind {
        StmtKind::Let { name, .. } => {
            globals.insert(name.clone());
        }
        StmtKind::Assign {
            target,
            op: AssignOp::Bind,
            ..
        } => {
            if let ExprKind::Name(name) = &target.kind {
                globals.insert(name.clone());
            }
        }
        _ => {}
    }
}

impl Resolver<'_> {
    fn is_variable(&self, name: &str) -> bool {
        self.scopes.iter().any(|s| s.contains(name)) || self.globals.contains(name)
    }

    fn is_known(&self, name: &str) -> bool {
        self.is_variable(name)
            || self.interp.fns.contains_key(name)
            || builtins::lookup(name).is_some()
            || self.interp.structs.contains_key(name)
            || self.interp.relations.contains(name)
    }

    fn declare(&mut self, name: &str) {
        match self.scopes.last_mut() {
            Some(s) => {
                s.insert(name.to_string());
            }
            None => {
                self.globals.insert(name.to_string());
            }
        }
    }

    fn visible_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self
            .scopes
            .iter()
            .flat_map(|s| s.iter())
            .chain(self.globals.iter())
            .chain(self.interp.fns.keys())
            .map(String::as_str)
            .collect();
        names.extend(builtins::all().iter().map(|b| b.name));
        names
    }

    fn report(&mut self, message: String, name: &str, span: Span) {
        let mut d = Diagnostic::error(message, span);
        if let Some(s) = crate::suggest::closest(name, self.visible_names().into_iter()) {
            d = d.with_note(format!("did you mean `{s}`?"));
        }
        self.diags.push(d);
    }

    fn block(&mut self, block: &Block) {
        self.scopes.push(HashSet::new());
        for stmt in &block.stmts {
            self.stmt(stmt);
        }
        self.scopes.pop();
    }

    fn stmt(&mut self, stmt: &Stmt) {
        match &stmt.kind {
            StmtKind::Let { name, value, .. } => {
                self.expr(value);
                self.declare(name);
            }
            StmtKind::Assign { target, op, value } => self.assign(target, *op, value),
            StmtKind::If {
                cond,
                then,
                otherwise,
            } => {
                self.expr(cond);
                self.block(then);
                if let Some(o) = otherwise {
                    self.block(o);
                }
            }
            StmtKind::For { var, iter, body } => {
                self.expr(iter);
                self.scopes.push(HashSet::from([var.clone()]));
                self.block(body);
                self.scopes.pop();
            }
            StmtKind::While { cond, body } => {
                self.expr(cond);
                self.block(body);
            }
            StmtKind::Return(Some(e)) => self.expr(e),
            StmtKind::Block(b) => self.block(b),
            StmtKind::Expr(e) => {
                if self.is_fact(e) {
                    self.fact_args(e);
                } else {
                    self.expr(e);
                }
            }
            // Logic: names in atoms are variables or symbols; only the shape is checked.
            StmtKind::Rule(rule) => {
                if let Err(e) = crate::eval::logic::convert_rule(rule) {
                    self.diags.push(e.to_diagnostic());
                }
            }
            StmtKind::Query {
                condition: Some(c), ..
            } => {
                if let Err(e) = crate::eval::logic::condition_literals(c, &mut Vec::new()) {
                    self.diags.push(e.to_diagnostic());
                }
            }
            // `learn`: the body in its own scope, then the settings; `optimizer:` and
            // `schedule:` name kinds, not functions, so only their arguments are checked.
            StmtKind::Learn { body, settings } => {
                self.scopes.push(HashSet::new());
                for s in body {
                    self.stmt(s);
                }
                for (key, e) in settings {
                    match (&e.kind, key.as_str()) {
                        (ExprKind::Call { args, .. }, "optimizer" | "schedule") => {
                            for a in args {
                                self.expr(&a.value);
                            }
                        }
                        _ => self.expr(e),
                    }
                }
                self.scopes.pop();
            }
            StmtKind::Return(None)
            | StmtKind::Break
            | StmtKind::Continue
            | StmtKind::Query { .. }
            | StmtKind::TensorQuery(_)
            | StmtKind::Infer { .. } => {}
        }
    }

    fn is_fact(&self, e: &Expr) -> bool {
        let ExprKind::Call { callee, .. } = &e.kind else {
            return false;
        };
        let ExprKind::Name(name) = &callee.kind else {
            return false;
        };
        !self.is_variable(name)
            && !self.interp.fns.contains_key(name)
            && builtins::lookup(name).is_none()
            && (self.interp.relations.contains(name)
                || name.starts_with(|c: char| c.is_ascii_uppercase()))
    }

    /// A fact's arguments: a bare name is a symbol (or a bound value); other expressions
    /// (`Edge(i, i + 1)`) are evaluated, so their names must resolve.
    fn fact_args(&mut self, e: &Expr) {
        if let ExprKind::Call { args, .. } = &e.kind {
            for a in args {
                if !matches!(a.value.kind, ExprKind::Name(_)) {
                    self.expr(&a.value);
                }
            }
        }
    }

    /// True when an index names no variable: the statement is a tensor equation.
    fn is_equation_index(&self, indices: &[IndexArg]) -> bool {
        indices.iter().any(|ix| match ix {
            IndexArg::Normalized(_) | IndexArg::Virtual(..) => true,
            IndexArg::Expr(e) => self.has_unbound(e),
            IndexArg::Slice { start, end, step } => [start, end, step]
                .into_iter()
                .flatten()
                .any(|e| self.has_unbound(e)),
        })
    }

    /// True when a right side indexes a tensor with an unbound name (an index variable).
    fn reads_index_variable(&self, e: &Expr) -> bool {
        crate::eval::indexes_with_variable(e, &|indices| self.is_equation_index(indices))
    }

    fn has_unbound(&self, e: &Expr) -> bool {
        match &e.kind {
            ExprKind::Name(n) => !self.is_known(n),
            ExprKind::Binary { lhs, rhs, .. } => self.has_unbound(lhs) || self.has_unbound(rhs),
            ExprKind::Unary { expr, .. } => self.has_unbound(expr),
            _ => false,
        }
    }

    fn assign(&mut self, target: &Expr, op: AssignOp, value: &Expr) {
        if matches!(op, AssignOp::MaxAssign | AssignOp::AvgAssign) {
            self.declare_equation_target(target);
            return;
        }
        match &target.kind {
            // A relation head or a tensor equation: its names are index variables.
            ExprKind::Call { .. } => return,
            ExprKind::Index { indices, .. } if self.is_equation_index(indices) => {
                self.declare_equation_target(target);
                return;
            }
            // `Loss = (Y[n] - T[n]) ** 2`: an equation whose left side has no indices.
            ExprKind::Name(_)
                if matches!(op, AssignOp::Assign | AssignOp::Bind)
                    && self.reads_index_variable(value) =>
            {
                self.declare_equation_target(target);
                return;
            }
            _ => {}
        }
        self.expr(value);
        match &target.kind {
            ExprKind::Name(name) => {
                if op == AssignOp::Bind {
                    if !self.is_variable(name) {
                        self.declare(name);
                    }
                } else if !self.is_variable(name) {
                    let d = Diagnostic::error(
                        format!("cannot assign to `{name}`: no variable of that name is declared"),
                        target.span,
                    )
                    .with_note(format!(
                        "declare it first with `let {name} = ...` (or `{name} := ...`)"
                    ));
                    self.diags.push(d);
                }
            }
            _ => self.expr(target),
        }
    }

    /// A tensor equation `Y[i, k] = ...` binds `Y` (later statements may read it).
    fn declare_equation_target(&mut self, target: &Expr) {
        let base = match &target.kind {
            ExprKind::Index { base, .. } => base,
            _ => target,
        };
        if let ExprKind::Name(name) = &base.kind
            && !self.is_variable(name)
        {
            self.declare(name);
        }
    }

    fn index_args(&mut self, indices: &[IndexArg]) {
        for ix in indices {
            match ix {
                IndexArg::Expr(e) => self.expr(e),
                IndexArg::Slice { start, end, step } => {
                    for e in [start, end, step].into_iter().flatten() {
                        self.expr(e);
                    }
                }
                IndexArg::Normalized(_) | IndexArg::Virtual(..) => {}
            }
        }
    }

    fn path_known(&self, ty: &str, name: &str) -> bool {
        self.interp
            .methods
            .get(ty)
            .is_some_and(|m| m.contains_key(name))
            || (DType::from_name(ty).is_some() && builtins::lookup(name).is_some())
    }

    /// A call of a user function with positional arguments only must match its parameter
    /// count (with named arguments the run-time check, which also names them, decides).
    fn user_fn_arity(&mut self, name: &str, args: &[Arg], span: Span) {
        let Some(f) = self.interp.fns.get(name) else {
            return;
        };
        let expected = f.decl.params.len();
        if args.iter().all(|a| a.name.is_none()) && args.len() != expected {
            self.diags.push(Diagnostic::error(
                crate::eval::arity_message(&f.display_name(), expected, args.len()),
                span,
            ));
        }
    }

    fn expr(&mut self, e: &Expr) {
        match &e.kind {
            ExprKind::Int(_) | ExprKind::Float(_) | ExprKind::Str(_) | ExprKind::Bool(_) => {}
            ExprKind::Array(items) => items.iter().for_each(|i| self.expr(i)),
            ExprKind::Name(name) => {
                if !self.is_known(name) {
                    self.report(format!("unknown name `{name}`"), name, e.span);
                }
            }
            ExprKind::Path { ty, name } => {
                if !self.path_known(ty, name) {
                    self.diags.push(Diagnostic::error(
                        format!("unknown function `{ty}::{name}`"),
                        e.span,
                    ));
                }
            }
            ExprKind::Unary { expr, .. } => self.expr(expr),
            ExprKind::Binary { lhs, rhs, .. } => {
                self.expr(lhs);
                self.expr(rhs);
            }
            ExprKind::Call { callee, args } => {
                match &callee.kind {
                    ExprKind::Name(name) => {
                        if !self.is_known(name) {
                            self.report(format!("unknown function `{name}`"), name, callee.span);
                        } else if !self.is_variable(name) {
                            self.user_fn_arity(name, args, e.span);
                        }
                    }
                    _ => self.expr(callee),
                }
                args.iter().for_each(|a| self.expr(&a.value));
            }
            ExprKind::MethodCall { receiver, args, .. } => {
                self.expr(receiver);
                args.iter().for_each(|a| self.expr(&a.value));
            }
            ExprKind::Index { base, indices } => {
                self.expr(base);
                self.index_args(indices);
            }
            ExprKind::Member { base, .. } => self.expr(base),
            ExprKind::Cast { expr, .. } => self.expr(expr),
            ExprKind::StructLit { name, fields } => {
                if !self.interp.structs.contains_key(name) {
                    self.diags.push(Diagnostic::error(
                        format!("unknown struct `{name}`"),
                        e.span,
                    ));
                }
                fields.iter().for_each(|(_, v)| self.expr(v));
            }
        }
    }
}
