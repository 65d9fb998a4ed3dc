//! The fixed-point semantics of a top-level equation set (docs/language.md, "Equation sets").
//!
//! A maximal run of consecutive top-level tensor equations (`=`, `:=`, `max=`, `avg=`, no `*t`)
//! is one equation set. Its left-side tensors are computed in dependency order (a tensor read on
//! a right side is computed before the equations that read it); several equations for one left
//! side add. A recursive group (tensors that read themselves, directly or through each other)
//! starts from zeros and is iterated, every tensor of the group recomputed from the previous
//! round's values (Jacobi), until no element of a tensor changes by more than [`TOLERANCE`] times
//! max(1, the largest magnitude in that tensor) in a round; after
//! [`MAX_ROUNDS`] rounds it is an error at the group's first equation.

use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use tl_syntax::Span;
use tl_syntax::ast::{AssignOp, Expr, ExprKind, IndexArg, Stmt, StmtKind};
use tl_tensor::{BinaryOp as TBinary, DType, ReduceOp, Tensor, UnaryOp as TUnary};

use crate::error::{Result, RuntimeError};
use crate::interp::Interpreter;
use crate::value::Value;

/// A round of a recursive group converges when no element of a tensor changes by more than this
/// times max(1, the largest magnitude in the tensor).
pub(crate) const TOLERANCE: f64 = 1e-6;
/// The most rounds a recursive group may take.
pub(crate) const MAX_ROUNDS: usize = 1000;

/// One equation of a set.
pub(crate) struct SetEquation<'a> {
    name: String,
    target: &'a Expr,
    op: AssignOp,
    value: &'a Expr,
    span: Span,
}

/// A top-level tensor equation that runs once, as a statement (`+=`, `-=`, `*t`).
pub(crate) struct StatementEquation {
    name: String,
    reads: HashSet<String>,
    span: Span,
}

fn tensor_err(span: Span) -> impl Fn(tl_tensor::TensorError) -> RuntimeError {
    move |e| RuntimeError::from(e).at(span)
}

/// The names a right side reads as tensors (`A[..]`) or bare names.
fn read_names(e: &Expr, out: &mut HashSet<String>) {
    match &e.kind {
        ExprKind::Name(n) => {
            out.insert(n.clone());
        }
        ExprKind::Index { base, .. } => read_names(base, out),
        ExprKind::Binary { lhs, rhs, .. } => {
            read_names(lhs, out);
            read_names(rhs, out);
        }
        ExprKind::Unary { expr, .. } => read_names(expr, out),
        ExprKind::Call { args, .. } => {
            for a in args {
                read_names(&a.value, out);
            }
        }
        _ => {}
    }
}

impl Interpreter {
    /// The statement as a member of a top-level equation set, or None when it is something else
    /// (it then ends the set before it).
    pub(crate) fn set_equation<'a>(&self, stmt: &'a Stmt) -> Option<SetEquation<'a>> {
        let StmtKind::Assign { target, op, value } = &stmt.kind else {
            return None;
        };
        // `Y[i] = ...`, or `Loss = (Y[n] - T[n]) ** 2` (a left side without indices).
        let (name, indexed) = match &target.kind {
            ExprKind::Index { base, indices } => match &base.kind {
                ExprKind::Name(name) => (name, self.equation_kind(indices).is_some()),
                _ => return None,
            },
            ExprKind::Name(name) => (name, self.reads_index_variable(value)),
            _ => return None,
        };
        let is_equation = match op {
            AssignOp::Assign | AssignOp::Bind => indexed,
            AssignOp::MaxAssign | AssignOp::AvgAssign => true,
            _ => false,
        };
        if !is_equation
            || super::equation::has_virtual(target)
            || super::equation::has_virtual(value)
        {
            return None;
        }
        Some(SetEquation {
            name: name.clone(),
            target,
            op: *op,
            value,
            span: stmt.span,
        })
    }

    /// The top-level equation sets run so far that depend on one of `roots` (the learnable
    /// tensors), directly or through the left sides of earlier such sets, in order: what
    /// `learn` re-runs every epoch so that the equations hold for the current parameters.
    pub(crate) fn dependent_equation_sets(&self, roots: &[String]) -> Vec<Rc<[Stmt]>> {
        let mut dirty: HashSet<String> = roots.iter().cloned().collect();
        let mut out = Vec::new();
        for set in &self.equation_sets {
            let eqs: Vec<SetEquation> = set.iter().filter_map(|s| self.set_equation(s)).collect();
            let depends = eqs.iter().any(|eq| {
                let mut reads = HashSet::new();
                read_names(eq.value, &mut reads);
                !reads.is_disjoint(&dirty)
            });
            if depends {
                dirty.extend(eqs.iter().map(|eq| eq.name.clone()));
                out.push(set.clone());
            }
        }
        out
    }

    /// Remembers a top-level tensor equation that is not part of an equation set (it runs once,
    /// as a statement), so that `learn` can refuse to differentiate through it.
    pub(crate) fn note_statement_equation(&mut self, stmt: &Stmt) {
        let StmtKind::Assign { target, op, value } = &stmt.kind else {
            return;
        };
        let ExprKind::Index { base, indices } = &target.kind else {
            return;
        };
        let ExprKind::Name(name) = &base.kind else {
            return;
        };
        let is_equation = self.equation_kind(indices).is_some()
            || super::equation::has_virtual(value)
            || matches!(op, AssignOp::MaxAssign | AssignOp::AvgAssign);
        if !is_equation || self.set_equation(stmt).is_some() {
            return;
        }
        let mut reads = HashSet::new();
        read_names(value, &mut reads);
        self.statement_equations.push(StatementEquation {
            name: name.clone(),
            reads,
            span: stmt.span,
        });
    }

    /// Fails on the first top-level equation run once as a statement (`+=`, `*t`) that reads a
    /// learnable tensor or a result computed from one: no gradient would flow through it.
    pub(crate) fn refuse_statement_equations(&self, roots: &[String]) -> Result<()> {
        let mut dirty: HashSet<String> = roots.iter().cloned().collect();
        for set in self.dependent_equation_sets(roots) {
            dirty.extend(
                set.iter()
                    .filter_map(|s| self.set_equation(s))
                    .map(|eq| eq.name),
            );
        }
        for eq in &self.statement_equations {
            if !eq.reads.is_disjoint(&dirty) {
                return Err(RuntimeError::new(
                    format!(
                        "not supported yet: learning through this equation for `{}`: a top-level `+=`, `-=` or `*t` equation runs once, as a statement, so no gradient flows through it",
                        eq.name
                    ),
                    eq.span,
                )
                .with_note(
                    "write it inside the learn block (it then runs every epoch), or after the learn block",
                ));
            }
        }
        Ok(())
    }

    /// Runs a recorded top-level equation set again, from the current bindings.
    pub(crate) fn rerun_equation_set(&mut self, stmts: &[Stmt]) -> Result<()> {
        let mut eqs = Vec::with_capacity(stmts.len());
        for stmt in stmts {
            match self.set_equation(stmt) {
                Some(eq) => eqs.push(eq),
                None => {
                    return Err(RuntimeError::new(
                        "learn: cannot run this equation again: one of its index names is now bound to a value",
                        stmt.span,
                    ));
                }
            }
        }
        self.run_equation_set(&eqs)
    }

    /// Runs an equation set to its fixed point (see the module documentation).
    pub(crate) fn run_equation_set(&mut self, eqs: &[SetEquation]) -> Result<()> {
        if let [eq] = eqs {
            let mut reads = HashSet::new();
            read_names(eq.value, &mut reads);
            if !reads.contains(&eq.name) {
                self.counters.statements += 1;
                self.current_span = eq.span;
                return self.exec_equation(eq.target, eq.op, eq.value, eq.span);
            }
        }
        // The left-side tensors in order of first appearance, and what each reads.
        let mut names: Vec<String> = Vec::new();
        for eq in eqs {
            if !names.contains(&eq.name) {
                names.push(eq.name.clone());
            }
        }
        let index: HashMap<&str, usize> = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.as_str(), i))
            .collect();
        let mut deps: Vec<Vec<usize>> = vec![Vec::new(); names.len()];
        for eq in eqs {
            let mut reads = HashSet::new();
            read_names(eq.value, &mut reads);
            let from = index[eq.name.as_str()];
            let mut targets: Vec<usize> = reads
                .iter()
                .filter_map(|r| index.get(r.as_str()).copied())
                .collect();
            targets.sort_unstable();
            for t in targets {
                if !deps[from].contains(&t) {
                    deps[from].push(t);
                }
            }
        }
        for group in strongly_connected(&deps) {
            let recursive = group.len() > 1 || deps[group[0]].contains(&group[0]);
            let members: Vec<&str> = group.iter().map(|&g| names[g].as_str()).collect();
            if recursive {
                self.iterate_group(&members, eqs)?;
            } else {
                let values = self.round(&members, eqs)?;
                for (name, t) in members.iter().zip(values) {
                    self.bind_or_rebind(name, Value::Tensor(t));
                }
            }
        }
        Ok(())
    }

    /// The new value of each member: the sum of its equations, from the current bindings.
    fn round(&mut self, members: &[&str], eqs: &[SetEquation]) -> Result<Vec<Tensor>> {
        let mut out = Vec::with_capacity(members.len());
        for m in members {
            let mut sum: Option<Tensor> = None;
            for eq in eqs.iter().filter(|e| e.name == *m) {
                self.check_interrupt()?;
                self.counters.statements += 1;
                self.current_span = eq.span;
                let (_, t) = self.compute_equation(eq.target, eq.op, eq.value, eq.span)?;
                sum = Some(match sum {
                    None => t,
                    Some(s) => {
                        if s.shape() != t.shape() {
                            return Err(RuntimeError::new(
                                format!(
                                    "equations for `{m}` disagree on its shape: {:?} here, {:?} from an earlier equation",
                                    t.shape(),
                                    s.shape()
                                ),
                                eq.span,
                            ));
                        }
                        s.binary(TBinary::Add, &t).map_err(tensor_err(eq.span))?
                    }
                });
            }
            out.push(sum.expect("every member has an equation"));
        }
        Ok(out)
    }

    /// Iterates a recursive group from zeros to its fixed point.
    fn iterate_group(&mut self, members: &[&str], eqs: &[SetEquation]) -> Result<()> {
        let first = eqs
            .iter()
            .find(|e| members.contains(&e.name.as_str()))
            .expect("a group has an equation");
        for m in members {
            let shape = self.infer_shape(m, members, eqs)?;
            let zeros =
                Tensor::try_full(&shape, 0.0, DType::F32).map_err(tensor_err(first.span))?;
            self.bind_or_rebind(m, Value::Tensor(zeros));
        }
        let mut change = f64::INFINITY;
        for round in 1..=MAX_ROUNDS {
            let values = self.round(members, eqs)?;
            change = 0.0;
            let mut converged = true;
            for (m, new) in members.iter().zip(values) {
                let old = match self.lookup_var(m) {
                    Some(Value::Tensor(t)) => t.clone(),
                    _ => unreachable!("a group member is bound to a tensor"),
                };
                let span = eqs
                    .iter()
                    .find(|e| e.name == *m)
                    .map_or(first.span, |e| e.span);
                if old.shape() != new.shape() {
                    return Err(RuntimeError::new(
                        format!(
                            "recursive tensor equation: `{m}` has shape {:?} but its right side has shape {:?}",
                            old.shape(),
                            new.shape()
                        ),
                        span,
                    ));
                }
                // The convergence test is bookkeeping: nothing of it belongs to a gradient.
                let no_grad = tl_tensor::autograd::no_grad();
                let max_abs = |t: &Tensor| {
                    t.unary(TUnary::Abs)
                        .and_then(|d| d.reduce(ReduceOp::Max, None, false))
                        .and_then(|d| d.to_scalar_f64())
                };
                let diff = new
                    .binary(
                        TBinary::Sub,
                        &old.cast(DType::F32).map_err(tensor_err(span))?,
                    )
                    .and_then(|d| max_abs(&d))
                    .map_err(tensor_err(span))?;
                let scale = max_abs(&new).map_err(tensor_err(span))?;
                if !diff.is_finite() || !scale.is_finite() {
                    return Err(RuntimeError::new(
                        format!(
                            "recursive tensor equation: `{m}` became NaN or infinite in round {round} of the fixed-point iteration"
                        ),
                        span,
                    ));
                }
                drop(no_grad);
                converged &= diff <= TOLERANCE * scale.max(1.0);
                change = change.max(diff);
                self.bind_or_rebind(m, Value::Tensor(new));
            }
            if converged {
                return Ok(());
            }
        }
        let list = members
            .iter()
            .map(|m| format!("`{m}`"))
            .collect::<Vec<_>>()
            .join(", ");
        Err(RuntimeError::new(
            format!(
                "recursive tensor equations for {list} did not converge in {MAX_ROUNDS} rounds (the cap): the last round still changed an element by {change} (the tolerance is {TOLERANCE} times max(1, the largest magnitude))"
            ),
            first.span,
        ))
    }

    /// The shape a recursive tensor starts from: each left-side index's size, from a tensor
    /// bound outside the group (or a group member whose shape is known) that the same index
    /// indexes bare in one of its equations; else the shape of an existing tensor of that name.
    fn infer_shape(&self, m: &str, members: &[&str], eqs: &[SetEquation]) -> Result<Vec<usize>> {
        let mut known: HashMap<String, Vec<usize>> = HashMap::new();
        for _ in 0..=members.len() {
            for name in members {
                if known.contains_key(*name) {
                    continue;
                }
                for eq in eqs.iter().filter(|e| e.name == *name) {
                    let ExprKind::Index { indices, .. } = &eq.target.kind else {
                        continue;
                    };
                    let mut sizes = HashMap::new();
                    self.bare_index_sizes(eq.value, members, &known, &mut sizes);
                    let shape: Option<Vec<usize>> = indices
                        .iter()
                        .map(|ix| match ix {
                            IndexArg::Expr(Expr {
                                kind: ExprKind::Name(n),
                                ..
                            })
                            | IndexArg::Normalized(n) => sizes.get(n).copied(),
                            _ => None,
                        })
                        .collect();
                    if let Some(shape) = shape {
                        known.insert(name.to_string(), shape);
                        break;
                    }
                }
            }
        }
        if let Some(shape) = known.remove(m) {
            return Ok(shape);
        }
        if let Some(Value::Tensor(t)) = self.lookup_var(m) {
            return Ok(t.shape().to_vec());
        }
        let span = eqs
            .iter()
            .find(|e| e.name == m)
            .map_or(Span::default(), |e| e.target.span);
        Err(RuntimeError::new(
            format!(
                "cannot tell the shape of `{m}`, which a recursive equation starts from zeros: no tensor of known shape indexes its left-side indices bare; bind `{m}` to a tensor of the right shape before the equations (e.g. `{m} = zeros([..])`)"
            ),
            span,
        ))
    }

    /// The size of each index variable that indexes a dimension bare in a term of `e` whose
    /// tensor is bound outside the group or is a group member of known shape.
    fn bare_index_sizes(
        &self,
        e: &Expr,
        members: &[&str],
        known: &HashMap<String, Vec<usize>>,
        sizes: &mut HashMap<String, usize>,
    ) {
        match &e.kind {
            ExprKind::Index { base, indices } => {
                let ExprKind::Name(b) = &base.kind else {
                    return;
                };
                let shape = if members.contains(&b.as_str()) {
                    known.get(b).cloned()
                } else {
                    match self.lookup_var(b) {
                        Some(Value::Tensor(t)) => Some(t.shape().to_vec()),
                        None => self.embedded_relation_shape(b),
                        _ => None,
                    }
                };
                let Some(shape) = shape else { return };
                if shape.len() != indices.len() {
                    return;
                }
                for (ix, size) in indices.iter().zip(shape) {
                    if let IndexArg::Expr(Expr {
                        kind: ExprKind::Name(n),
                        ..
                    }) = ix
                        && !self.is_bound_name(n)
                    {
                        sizes.entry(n.clone()).or_insert(size);
                    }
                }
            }
            ExprKind::Binary { lhs, rhs, .. } => {
                self.bare_index_sizes(lhs, members, known, sizes);
                self.bare_index_sizes(rhs, members, known, sizes);
            }
            ExprKind::Unary { expr, .. } => self.bare_index_sizes(expr, members, known, sizes),
            ExprKind::Call { args, .. } => {
                for a in args {
                    self.bare_index_sizes(&a.value, members, known, sizes);
                }
            }
            _ => {}
        }
    }
}

/// Tarjan's strongly connected components of `deps` (node -> the nodes it reads), each
/// emitted after every component it reads: dependency order. Nodes are visited in order, so
/// independent components keep the order of their first equations.
fn strongly_connected(deps: &[Vec<usize>]) -> Vec<Vec<usize>> {
    struct State<'d> {
        deps: &'d [Vec<usize>],
        index: Vec<Option<usize>>,
        low: Vec<usize>,
        on_stack: Vec<bool>,
        stack: Vec<usize>,
        next: usize,
        out: Vec<Vec<usize>>,
    }
    fn visit(s: &mut State, v: usize) {
        s.index[v] = Some(s.next);
        s.low[v] = s.next;
        s.next += 1;
        s.stack.push(v);
        s.on_stack[v] = true;
        for &w in &s.deps[v] {
            match s.index[w] {
                None => {
                    visit(s, w);
                    s.low[v] = s.low[v].min(s.low[w]);
                }
                Some(iw) if s.on_stack[w] => s.low[v] = s.low[v].min(iw),
                _ => {}
            }
        }
        if Some(s.low[v]) == s.index[v] {
            let mut group = Vec::new();
            loop {
                let w = s.stack.pop().expect("v is on the stack");
                s.on_stack[w] = false;
                group.push(w);
                if w == v {
                    break;
                }
            }
            group.sort_unstable();
            s.out.push(group);
        }
    }
    let n = deps.len();
    let mut s = State {
        deps,
        index: vec![None; n],
        low: vec![0; n],
        on_stack: vec![false; n],
        stack: Vec::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in 0..n {
        if s.index[v].is_none() {
            visit(&mut s, v);
        }
    }
    s.out
}
