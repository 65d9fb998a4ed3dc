//! `learn { local := e ... objective: e, optimizer: adam(lr: 0.01), epochs: N }`.
//!
//! Each epoch: every `learnable` tensor becomes a fresh autograd leaf, the block's statements
//! run in a new scope (so locals are recomputed from the current parameters), the objective
//! is evaluated, its gradients with respect to the learnable tensors are taken
//! (`tl_tensor::autograd`), and the optimizer updates the tensors in place of the global
//! bindings. `frozen` tensors and plain tensors are never updated. Progress goes to stderr.
//!
//! Paper section 3.3: the top-level equation sets that read a learnable tensor (directly or
//! through another set's result) are run again at the start of every epoch, with the
//! parameters as autograd leaves, so a loss written as an equation (`Loss = (Y[n] - T[n])
//! ** 2`) is differentiated through the whole equation set; a recursive group is unrolled,
//! its rounds recorded like any other ops (backpropagation through the iterations). After the
//! last epoch they run once more so that their results hold for the learned values.

use std::time::Instant;

use tl_syntax::Span;
use tl_syntax::ast::{Expr, ExprKind, Stmt};
use tl_tensor::autograd;

use crate::error::{Result, RuntimeError};
use crate::interp::Interpreter;
use crate::optim::{Optimizer, Schedule};
use crate::value::Value;
use tl_tensor::optim::Schedule as LrSchedule;

/// The settings a `learn` block accepts.
const SETTINGS: &[&str] = &[
    "objective",
    "optimizer",
    "epochs",
    "tolerance",
    "schedule",
    "quiet",
    "log_every",
];

/// A call written in a setting (`adam(lr: 0.01)`): its name and evaluated arguments.
pub(crate) struct SpecCall {
    pub name: String,
    pub span: Span,
    pub positional: Vec<(Value, Span)>,
    pub named: Vec<(String, Value, Span)>,
}

impl SpecCall {
    pub fn error(&self, message: impl Into<String>) -> RuntimeError {
        RuntimeError::new(format!("{}: {}", self.name, message.into()), self.span)
    }

    /// Named argument `name` (or positional `pos`) as a number.
    pub fn float(&self, pos: Option<usize>, name: &str) -> Result<Option<f64>> {
        let found = self
            .named
            .iter()
            .find(|n| n.0 == name)
            .map(|n| (&n.1, n.2))
            .or_else(|| pos.and_then(|p| self.positional.get(p).map(|v| (&v.0, v.1))));
        match found {
            None => Ok(None),
            Some((v, span)) => match crate::convert::to_float(v) {
                Some(f) if f.is_finite() => Ok(Some(f)),
                _ => Err(RuntimeError::new(
                    format!("{}: `{name}` must be a finite number", self.name),
                    span,
                )),
            },
        }
    }

    pub fn bool(&self, name: &str) -> Result<Option<bool>> {
        match self.named.iter().find(|n| n.0 == name) {
            None => Ok(None),
            Some((_, Value::Bool(b), _)) => Ok(Some(*b)),
            Some((_, _, span)) => Err(RuntimeError::new(
                format!("{}: `{name}` must be true or false", self.name),
                *span,
            )),
        }
    }

    /// Fails on a named argument not in `allowed` or more than `max_positional` positional ones.
    pub fn expect(&self, allowed: &[&str], max_positional: usize) -> Result<()> {
        if let Some(p) = self.positional.get(max_positional) {
            return Err(RuntimeError::new(
                format!(
                    "{}: takes named arguments ({}); too many positional arguments",
                    self.name,
                    allowed.join(", ")
                ),
                p.1,
            ));
        }
        for (n, _, span) in &self.named {
            if !allowed.contains(&n.as_str()) {
                return Err(RuntimeError::new(
                    format!(
                        "{}: unknown argument `{n}` (expected one of: {})",
                        self.name,
                        allowed.join(", ")
                    ),
                    *span,
                ));
            }
        }
        Ok(())
    }
}

impl Interpreter {
    /// Evaluates a setting written as a call (`adam(lr: 0.01)`), without looking the name up
    /// as a function.
    fn spec_call(&mut self, e: &Expr, what: &str) -> Result<SpecCall> {
        let ExprKind::Call { callee, args } = &e.kind else {
            return Err(RuntimeError::new(
                format!(
                    "learn: `{what}` must be written as a call, e.g. `{what}: {}`",
                    example(what)
                ),
                e.span,
            ));
        };
        let ExprKind::Name(name) = &callee.kind else {
            return Err(RuntimeError::new(
                format!(
                    "learn: `{what}` must name one of its kinds, e.g. `{}`",
                    example(what)
                ),
                callee.span,
            ));
        };
        let mut call = SpecCall {
            name: name.clone(),
            span: callee.span,
            positional: Vec::new(),
            named: Vec::new(),
        };
        for a in args {
            let v = self.eval(&a.value)?;
            match &a.name {
                Some(n) => call.named.push((n.clone(), v, a.span)),
                None => call.positional.push((v, a.span)),
            }
        }
        Ok(call)
    }

    pub(crate) fn exec_learn(
        &mut self,
        body: &[Stmt],
        settings: &[(String, Expr)],
        span: Span,
    ) -> Result<()> {
        let mut objective = None;
        let mut optimizer_expr = None;
        let mut schedule_expr = None;
        let mut epochs = None;
        let mut tolerance = None;
        let mut quiet = self.options.quiet;
        let mut log_every = None;
        for (key, e) in settings {
            match key.as_str() {
                "objective" => objective = Some(e),
                "optimizer" => optimizer_expr = Some(e),
                "schedule" => schedule_expr = Some(e),
                "epochs" => {
                    let n = self.setting_int(e, "epochs")?;
                    if n < 1 {
                        return Err(RuntimeError::new(
                            "learn: `epochs` must be at least 1",
                            e.span,
                        ));
                    }
                    epochs = Some(n as usize);
                }
                "log_every" => {
                    let n = self.setting_int(e, "log_every")?;
                    if n < 1 {
                        return Err(RuntimeError::new(
                            "learn: `log_every` must be at least 1",
                            e.span,
                        ));
                    }
                    log_every = Some(n as usize);
                }
                "tolerance" => {
                    let v = self.eval(e)?;
                    match crate::convert::to_float(&v) {
                        Some(t) if t >= 0.0 => tolerance = Some(t),
                        _ => {
                            return Err(RuntimeError::new(
                                "learn: `tolerance` must be a number >= 0",
                                e.span,
                            ));
                        }
                    }
                }
                "quiet" => match self.eval(e)? {
                    Value::Bool(b) => quiet = quiet || b,
                    _ => {
                        return Err(RuntimeError::new(
                            "learn: `quiet` must be true or false",
                            e.span,
                        ));
                    }
                },
                other => {
                    let err =
                        RuntimeError::new(format!("learn: unknown setting `{other}`"), e.span);
                    return Err(
                        match crate::suggest::closest(other, SETTINGS.iter().copied()) {
                            Some(s) => err.with_note(format!("did you mean `{s}`?")),
                            None => {
                                err.with_note(format!("the settings are: {}", SETTINGS.join(", ")))
                            }
                        },
                    );
                }
            }
        }
        let Some(objective) = objective else {
            return Err(RuntimeError::new(
                "learn: the block needs an `objective: expr` (the loss to minimise)",
                span,
            ));
        };
        let Some(epochs) = epochs else {
            return Err(RuntimeError::new(
                "learn: the block needs `epochs: N` (how many optimizer steps to take)",
                span,
            ));
        };
        let mut optimizer = match optimizer_expr {
            Some(e) => {
                let call = self.spec_call(e, "optimizer")?;
                Optimizer::from_call(&call)?
            }
            None => {
                return Err(RuntimeError::new(
                    "learn: the block needs an `optimizer:` (sgd(lr: ..), adam(lr: ..) or adamw(lr: ..))",
                    span,
                ));
            }
        };
        let schedule = match schedule_expr {
            Some(e) => {
                let call = self.spec_call(e, "schedule")?;
                Schedule::from_call(&call, epochs)?
            }
            None => LrSchedule::Constant,
        };
        let names = self.learnable.clone();
        if names.is_empty() {
            return Err(RuntimeError::new(
                "learn: there is no learnable tensor to learn (declare one with `tensor W: float32[..]`, without a value, or `tensor W: float32[..] learnable = ...`)",
                span,
            ));
        }
        self.refuse_statement_equations(&names)?;
        let sets = self.dependent_equation_sets(&names);
        let every = log_every.unwrap_or((epochs / 10).max(1));
        let started = Instant::now();
        let mut last_report = Instant::now();
        let mut since_report = 0usize;
        let mut previous: Option<f64> = None;
        let result = (|| -> Result<()> {
            for epoch in 0..epochs {
                self.check_interrupt()?;
                let mut leaves = Vec::with_capacity(names.len());
                for name in &names {
                    let Some(Value::Tensor(t)) = self.globals.get(name) else {
                        return Err(RuntimeError::new(
                            format!("learn: the learnable `{name}` is no longer a tensor"),
                            span,
                        ));
                    };
                    let leaf = t.detach().requires_grad().map_err(|e| {
                        RuntimeError::new(format!("learn: learnable `{name}`: {}", e.0), span)
                    })?;
                    self.globals
                        .insert(name.clone(), Value::Tensor(leaf.clone()));
                    leaves.push(leaf);
                }
                for set in &sets {
                    self.rerun_equation_set(set)?;
                }
                self.scopes.push(crate::eval::Scope::default());
                let loss = self.exec_stmts(body).and_then(|_| self.eval(objective));
                self.scopes.pop();
                let loss = match loss? {
                    Value::Tensor(t) => t,
                    other => {
                        return Err(RuntimeError::new(
                            format!(
                                "learn: the objective must be a tensor computed from the learnable tensors, got {}",
                                super::stmt::describe_kind(&other)
                            ),
                            objective.span,
                        ));
                    }
                };
                if loss.numel() != 1 {
                    return Err(RuntimeError::new(
                        format!(
                            "learn: the objective must be a single number, got a tensor of shape {:?} (reduce it with sum or mean)",
                            loss.shape()
                        ),
                        objective.span,
                    ));
                }
                let refs: Vec<&tl_tensor::Tensor> = leaves.iter().collect();
                let grads = autograd::gradients(&loss, &refs)
                    .map_err(|e| RuntimeError::new(format!("learn: {}", e.0), objective.span))?;
                if grads.iter().all(Option::is_none) {
                    return Err(RuntimeError::new(
                        format!(
                            "learn: the objective does not depend on any learnable tensor ({})",
                            names.join(", ")
                        ),
                        objective.span,
                    )
                    .with_note(
                        "compute it inside the learn block (`pred := ...`), where every epoch sees the current parameters",
                    ));
                }
                let value = loss.to_scalar_f64()?;
                if !value.is_finite() {
                    return Err(RuntimeError::new(
                        format!(
                            "learn: the objective became {value} at epoch {} (try a smaller learning rate)",
                            epoch + 1
                        ),
                        objective.span,
                    ));
                }
                let lr = schedule.lr(optimizer.lr(), epoch);
                let updated = optimizer
                    .step(&leaves, &grads, lr)
                    .map_err(|e| RuntimeError::new(format!("learn: {}", e.0), span))?;
                for (name, t) in names.iter().zip(updated) {
                    self.globals.insert(name.clone(), Value::Tensor(t));
                }
                drop(loss);
                since_report += 1;
                let last = epoch + 1 == epochs;
                let converged = tolerance
                    .zip(previous)
                    .is_some_and(|(tol, p)| (p - value).abs() <= tol);
                if !quiet && ((epoch + 1) % every == 0 || epoch == 0 || last || converged) {
                    let per = last_report.elapsed().as_secs_f64() / since_report as f64;
                    eprintln!(
                        "epoch {:>w$}/{epochs}  loss {}  ({}/epoch)",
                        epoch + 1,
                        format_loss(value),
                        format_time(per),
                        w = epochs.to_string().len()
                    );
                    last_report = Instant::now();
                    since_report = 0;
                }
                if converged {
                    if !quiet {
                        eprintln!(
                            "converged at epoch {} (the loss changed by at most {:e}), {:.2} s in all",
                            epoch + 1,
                            tolerance.unwrap_or(0.0),
                            started.elapsed().as_secs_f64()
                        );
                    }
                    break;
                }
                previous = Some(value);
            }
            Ok(())
        })();
        // Whatever happened, the learnable tensors are left without a graph.
        for name in &names {
            if let Some(Value::Tensor(t)) = self.globals.get(name) {
                let plain = t.detach();
                self.globals.insert(name.clone(), Value::Tensor(plain));
            }
        }
        result?;
        // The equations that read the parameters now hold for the learned values (and their
        // results carry no graph).
        let _off = autograd::no_grad();
        for set in &sets {
            self.rerun_equation_set(set)?;
        }
        Ok(())
    }

    fn setting_int(&mut self, e: &Expr, what: &str) -> Result<i64> {
        let v = self.eval(e)?;
        crate::convert::to_int(&v)
            .filter(|_| !matches!(v, Value::Bool(_)))
            .ok_or_else(|| RuntimeError::new(format!("learn: `{what}` must be an int"), e.span))
    }
}

fn example(what: &str) -> &'static str {
    match what {
        "optimizer" => "adam(lr: 0.01)",
        _ => "cosine(warmup: 10)",
    }
}

fn format_loss(v: f64) -> String {
    if v != 0.0 && (v.abs() < 1e-3 || v.abs() >= 1e6) {
        format!("{v:.4e}")
    } else {
        format!("{v:.6}")
    }
}

fn format_time(seconds: f64) -> String {
    if seconds < 1e-3 {
        format!("{:.0} us", seconds * 1e6)
    } else if seconds < 1.0 {
        format!("{:.2} ms", seconds * 1e3)
    } else {
        format!("{seconds:.2} s")
    }
}
