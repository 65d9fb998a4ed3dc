//! Tensor equations run as statements: `Y[i, k] = relu(X[i, j] W[j, k])`.
//!
//! An equation statement computes its left side at once, in program order (the fixed-point
//! semantics of a top-level equation *set* is a later issue). The rules, precisely:
//!
//! - **Index variables.** A bare identifier in brackets that is bound in scope to a host int is a
//!   constant index (it selects); any other bare identifier is an index variable. Integer
//!   literals and index-free expressions that evaluate to an int are constant indices too.
//!   The left side's indices must be distinct index variables.
//! - **Terms.** `A[i, j]` names a tensor bound in scope with one index per dimension. An index
//!   repeated within one term takes the diagonal (`Y[i] = A[i, i]`). Every tensor is read as
//!   float32 (bool and int tensors are cast). An index's size comes from the tensors it indexes;
//!   the same index with two sizes is an error naming both tensors.
//! - **Products and summation.** A product node is a maximal chain of `*` / juxtaposition
//!   (a lone term counts as a one-factor product). At a product node, an index is summed away
//!   when it is not on the left side and every occurrence of it in the right side lies inside
//!   that product; the other indices are kept. Hence `Y[i] = step(W[i, j] X[j])` sums `j`
//!   inside `step` (the nonlinearity applies after the summation of the product under it), and
//!   `Y[i] = W[i, j] X[j] + B[i]` adds the bias once. Under `max=` / `avg=`, products that are not
//!   inside a function keep all their indices, so that the projection sees every element.
//! - **Other operators.** `+`, `-`, `/` and `**` apply elementwise after aligning their operands'
//!   indices (an index missing on one side broadcasts); host scalars (and one-element tensors)
//!   broadcast. The elementwise functions are `step`, `sig`/`sigmoid`, `relu`, `exp`, `log`,
//!   `tanh`, `sqrt`, `abs`, `neg`, and `softmax`, which normalises over the last left-side index.
//! - **Projection.** Indices still present at the top that are not on the left side are then
//!   reduced with sum (`=`, `+=`, `-=`), max (`max=`) or mean (`avg=`). A left-side index that
//!   the right side never mentions takes its size from the existing left-side tensor (the result
//!   broadcasts along it); with no such tensor it is an error.
//! - **Assignment.** `=`, `max=`, `avg=` create or replace the left-side tensor (float32, in the
//!   innermost scope when it is new); `+=` / `-=` add to / subtract from it, starting from zeros
//!   when it does not exist yet (elements default to 0).
//!
//! Index arithmetic (`X[i, t+1]`), slices, `p'.` and `*t` are reported as not supported yet.

use std::collections::HashMap;

use tl_syntax::Span;
use tl_syntax::ast::{AssignOp, BinaryOp, Expr, ExprKind, IndexArg, UnaryOp};
use tl_tensor::{BinaryOp as TBinary, DType, ReduceOp, Tensor, UnaryOp as TUnary};

use crate::error::{Result, RuntimeError};
use crate::interp::Interpreter;
use crate::value::Value;

/// A tensor whose dimensions are named by distinct index variables, in order.
struct Indexed {
    tensor: Tensor,
    indices: Vec<String>,
}

/// The value of a sub-expression of a right side: a host scalar or an indexed tensor.
enum Part {
    Scalar(f64),
    Indexed(Indexed),
}

/// What one equation knows while its right side is evaluated.
struct Equation {
    lhs: Vec<String>,
    /// How often each index variable occurs in the right side's terms.
    total_counts: HashMap<String, usize>,
    /// The size of each index seen so far, and the tensor that fixed it.
    sizes: HashMap<String, (usize, String)>,
    projection: ReduceOp,
}

fn unsupported(what: &str, span: Span) -> RuntimeError {
    RuntimeError::new(format!("not supported yet: {what}"), span)
}

fn tensor_err(span: Span) -> impl Fn(tl_tensor::TensorError) -> RuntimeError {
    move |e| RuntimeError::from(e).at(span)
}

/// The elementwise functions an equation may apply, by name.
fn elementwise(name: &str) -> Option<TUnary> {
    Some(match name {
        "step" => TUnary::Step,
        "sig" | "sigmoid" => TUnary::Sigmoid,
        "relu" => TUnary::Relu,
        "exp" => TUnary::Exp,
        "log" => TUnary::Log,
        "tanh" => TUnary::Tanh,
        "sqrt" => TUnary::Sqrt,
        "abs" => TUnary::Abs,
        "neg" => TUnary::Neg,
        _ => return None,
    })
}

impl Interpreter {
    /// Runs `target op value` as a tensor equation (see the module documentation).
    pub(crate) fn exec_equation(
        &mut self,
        target: &Expr,
        op: AssignOp,
        value: &Expr,
        span: Span,
    ) -> Result<()> {
        let ExprKind::Index { base, indices } = &target.kind else {
            return Err(RuntimeError::new(
                "the left side of a tensor equation must be an indexed tensor like `Y[i, j]`",
                target.span,
            ));
        };
        let ExprKind::Name(name) = &base.kind else {
            return Err(RuntimeError::new(
                "the left side of a tensor equation must name a tensor, as in `Y[i, j]`",
                base.span,
            ));
        };
        let lhs = self.lhs_indices(indices, target.span)?;
        let projection = match op {
            AssignOp::Assign | AssignOp::Bind | AssignOp::AddAssign | AssignOp::SubAssign => {
                ReduceOp::Sum
            }
            AssignOp::MaxAssign => ReduceOp::Max,
            AssignOp::AvgAssign => ReduceOp::Mean,
            AssignOp::MulAssign | AssignOp::DivAssign => {
                return Err(unsupported("`*=` and `/=` in tensor equations", span));
            }
        };
        let mut total_counts = HashMap::new();
        self.count_index_vars(value, &mut total_counts);
        let mut eq = Equation {
            lhs,
            total_counts,
            sizes: HashMap::new(),
            projection,
        };
        let top_sums = projection == ReduceOp::Sum;
        let rhs = self.eq_part(value, &mut eq, top_sums)?;
        let existing = match self.lookup_var(name) {
            Some(Value::Tensor(t)) => Some(t.clone()),
            Some(other) if matches!(op, AssignOp::AddAssign | AssignOp::SubAssign) => {
                return Err(RuntimeError::new(
                    format!(
                        "cannot add a tensor equation's result to `{name}`: it is {}, not a tensor",
                        super::stmt::describe_kind(other)
                    ),
                    base.span,
                ));
            }
            _ => None,
        };
        let result = finish(rhs, &eq, name, existing.as_ref(), span)?;
        let new = match op {
            AssignOp::AddAssign | AssignOp::SubAssign => match existing {
                Some(current) => {
                    if current.shape() != result.shape() {
                        return Err(RuntimeError::new(
                            format!(
                                "tensor equation: `{name}` has shape {:?} but the right side has shape {:?}",
                                current.shape(),
                                result.shape()
                            ),
                            span,
                        ));
                    }
                    let current = current.cast(DType::F32).map_err(tensor_err(span))?;
                    let bin = if op == AssignOp::AddAssign {
                        TBinary::Add
                    } else {
                        TBinary::Sub
                    };
                    current.binary(bin, &result).map_err(tensor_err(span))?
                }
                None if op == AssignOp::SubAssign => {
                    result.unary(TUnary::Neg).map_err(tensor_err(span))?
                }
                None => result,
            },
            _ => result,
        };
        self.bind_or_rebind(name, Value::Tensor(new));
        Ok(())
    }

    /// The left side's index variables: distinct bare names bound to no host int.
    fn lhs_indices(&mut self, indices: &[IndexArg], span: Span) -> Result<Vec<String>> {
        let mut out: Vec<String> = Vec::with_capacity(indices.len());
        for ix in indices {
            let e = match ix {
                IndexArg::Expr(e) => e,
                other => return Err(unsupported_index(other, span)),
            };
            let ExprKind::Name(n) = &e.kind else {
                return Err(if self.mentions_index_var(e) {
                    unsupported("index arithmetic in tensor equations", e.span)
                } else {
                    unsupported(
                        "constant indices on the left side of a tensor equation",
                        e.span,
                    )
                });
            };
            if self.is_constant_index(n) {
                return Err(unsupported(
                    "constant indices on the left side of a tensor equation",
                    e.span,
                ));
            }
            if out.contains(n) {
                return Err(unsupported(
                    "a repeated index on the left side of a tensor equation",
                    e.span,
                ));
            }
            out.push(n.clone());
        }
        Ok(out)
    }

    /// A bare name bound to a host int is a constant index.
    fn is_constant_index(&self, name: &str) -> bool {
        matches!(self.lookup_var(name), Some(Value::Int(_)))
    }

    /// True when `e` uses an index variable (so it cannot be evaluated as an ordinary value).
    fn mentions_index_var(&self, e: &Expr) -> bool {
        match &e.kind {
            ExprKind::Name(n) => !self.is_bound_name(n),
            ExprKind::Index { base, indices } => {
                self.mentions_index_var(base)
                    || indices.iter().any(|ix| match ix {
                        IndexArg::Expr(e) => match &e.kind {
                            ExprKind::Name(n) => !self.is_constant_index(n),
                            _ => self.mentions_index_var(e),
                        },
                        IndexArg::Normalized(_) | IndexArg::Virtual(_) => true,
                        IndexArg::Slice { start, end, step } => [start, end, step]
                            .into_iter()
                            .flatten()
                            .any(|e| self.mentions_index_var(e)),
                    })
            }
            ExprKind::Binary { lhs, rhs, .. } => {
                self.mentions_index_var(lhs) || self.mentions_index_var(rhs)
            }
            ExprKind::Unary { expr, .. } | ExprKind::Cast { expr, .. } => {
                self.mentions_index_var(expr)
            }
            ExprKind::Call { args, .. } => args.iter().any(|a| self.mentions_index_var(&a.value)),
            _ => false,
        }
    }

    /// Counts the occurrences of index variables in the terms of `e`.
    fn count_index_vars(&self, e: &Expr, counts: &mut HashMap<String, usize>) {
        match &e.kind {
            ExprKind::Index { indices, .. } => {
                for ix in indices {
                    if let IndexArg::Expr(Expr {
                        kind: ExprKind::Name(n),
                        ..
                    }) = ix
                        && !self.is_constant_index(n)
                    {
                        *counts.entry(n.clone()).or_insert(0) += 1;
                    }
                }
            }
            ExprKind::Binary { lhs, rhs, .. } => {
                self.count_index_vars(lhs, counts);
                self.count_index_vars(rhs, counts);
            }
            ExprKind::Unary { expr, .. } => self.count_index_vars(expr, counts),
            ExprKind::Call { args, .. } => {
                for a in args {
                    self.count_index_vars(&a.value, counts);
                }
            }
            _ => {}
        }
    }

    /// Evaluates a sub-expression of a right side. `sums` is false for the top-level products
    /// of a `max=` / `avg=` equation, which keep every index for the projection.
    fn eq_part(&mut self, e: &Expr, eq: &mut Equation, sums: bool) -> Result<Part> {
        if !self.mentions_index_var(e) {
            return self.eq_scalar(e);
        }
        match &e.kind {
            ExprKind::Binary {
                op: BinaryOp::Mul, ..
            }
            | ExprKind::Index { .. } => self.eq_product(e, eq, sums),
            ExprKind::Binary { op, lhs, rhs } => {
                let bin = match op {
                    BinaryOp::Add => TBinary::Add,
                    BinaryOp::Sub => TBinary::Sub,
                    BinaryOp::Div => TBinary::Div,
                    BinaryOp::Pow => TBinary::Pow,
                    _ => {
                        return Err(unsupported(
                            &format!("the operator `{}` in tensor equations", op.symbol()),
                            e.span,
                        ));
                    }
                };
                let a = self.eq_part(lhs, eq, sums)?;
                let b = self.eq_part(rhs, eq, sums)?;
                combine(bin, a, b, e.span)
            }
            ExprKind::Unary {
                op: UnaryOp::Neg,
                expr,
            } => {
                let part = self.eq_part(expr, eq, sums)?;
                map_part(part, e.span, |t| t.unary(TUnary::Neg))
            }
            ExprKind::Call { callee, args } => self.eq_call(e, callee, args, eq),
            ExprKind::Name(n) => Err(RuntimeError::new(
                format!(
                    "`{n}` is not defined (an index variable must appear inside brackets, as in `A[{n}]`)"
                ),
                e.span,
            )),
            _ => Err(unsupported(
                "this kind of expression in tensor equations",
                e.span,
            )),
        }
    }

    /// An index-free sub-expression: a host number or a one-element tensor.
    fn eq_scalar(&mut self, e: &Expr) -> Result<Part> {
        let v = self.eval(e)?;
        match &v {
            Value::Int(n) => Ok(Part::Scalar(*n as f64)),
            Value::Float(x) => Ok(Part::Scalar(*x)),
            Value::Bool(b) => Ok(Part::Scalar(if *b { 1.0 } else { 0.0 })),
            Value::Tensor(t) if t.numel() == 1 => {
                Ok(Part::Scalar(t.to_scalar_f64().map_err(tensor_err(e.span))?))
            }
            Value::Tensor(t) => Err(RuntimeError::new(
                format!(
                    "a tensor of shape {:?} in a tensor equation must be indexed, as in `T[i, j]`",
                    t.shape()
                ),
                e.span,
            )),
            other => Err(RuntimeError::new(
                format!(
                    "a tensor equation can use numbers and indexed tensors, not {}",
                    super::stmt::describe_kind(other)
                ),
                e.span,
            )),
        }
    }

    /// `f(expr)` for an elementwise function `f`, or `softmax(expr)`.
    fn eq_call(
        &mut self,
        e: &Expr,
        callee: &Expr,
        args: &[tl_syntax::ast::Arg],
        eq: &mut Equation,
    ) -> Result<Part> {
        let ExprKind::Name(fname) = &callee.kind else {
            return Err(unsupported(
                "this kind of call in tensor equations",
                callee.span,
            ));
        };
        let user_defined = self.fns.contains_key(fname) || self.lookup_var(fname).is_some();
        let known = elementwise(fname).is_some() || fname == "softmax";
        if user_defined || !known {
            return Err(unsupported(
                &format!(
                    "calling `{fname}` in a tensor equation (the functions are step, sig, sigmoid, relu, exp, log, tanh, sqrt, abs, neg and softmax)"
                ),
                callee.span,
            ));
        }
        let [arg] = args else {
            return Err(RuntimeError::new(
                format!(
                    "`{fname}` in a tensor equation takes one argument, got {}",
                    args.len()
                ),
                e.span,
            ));
        };
        if arg.name.is_some() {
            return Err(RuntimeError::new(
                format!("`{fname}` in a tensor equation takes no named arguments"),
                arg.span,
            ));
        }
        // Inside a function, products always sum their own indices.
        let part = self.eq_part(&arg.value, eq, true)?;
        if let Some(op) = elementwise(fname) {
            return map_part(part, e.span, |t| t.unary(op));
        }
        let Some(last) = eq.lhs.last() else {
            return Err(RuntimeError::new(
                "softmax in a tensor equation normalises over the last index of the left side, which has none",
                e.span,
            ));
        };
        match part {
            Part::Indexed(x) => match x.indices.iter().position(|i| i == last) {
                Some(dim) => {
                    let tensor = x.tensor.softmax(dim as isize).map_err(tensor_err(e.span))?;
                    Ok(Part::Indexed(Indexed {
                        tensor,
                        indices: x.indices,
                    }))
                }
                None => Err(RuntimeError::new(
                    format!(
                        "softmax normalises over `{last}` (the last index of the left side), but its argument does not use `{last}`"
                    ),
                    e.span,
                )),
            },
            Part::Scalar(_) => Err(RuntimeError::new(
                format!("softmax normalises over `{last}`, but its argument is a scalar"),
                e.span,
            )),
        }
    }

    /// A product node: its factors joined by one einsum, summing the indices that occur only
    /// inside it and not on the left side (when `sums`).
    fn eq_product(&mut self, e: &Expr, eq: &mut Equation, sums: bool) -> Result<Part> {
        let mut factors = Vec::new();
        flatten_product(e, &mut factors);
        let mut scale = 1.0;
        let mut operands: Vec<Indexed> = Vec::new();
        for f in factors {
            if let ExprKind::Index { base, indices } = &f.kind
                && self.mentions_index_var(f)
            {
                operands.push(self.eq_term(f, base, indices, eq)?);
                continue;
            }
            match self.eq_part(f, eq, sums)? {
                Part::Scalar(x) => scale *= x,
                Part::Indexed(x) => operands.push(x),
            }
        }
        // The indices of this product, in order of first appearance, and how often each occurs.
        let mut order: Vec<String> = Vec::new();
        let mut local_counts: HashMap<String, usize> = HashMap::new();
        self.count_index_vars(e, &mut local_counts);
        for op in &operands {
            for ix in &op.indices {
                if !order.contains(ix) {
                    order.push(ix.clone());
                }
            }
        }
        let kept: Vec<String> = order
            .iter()
            .filter(|ix| {
                !sums
                    || eq.lhs.contains(ix)
                    || local_counts.get(*ix) != eq.total_counts.get(*ix)
                    || !eq.total_counts.contains_key(*ix)
            })
            .cloned()
            .collect();
        if operands.is_empty() {
            return Ok(Part::Scalar(scale));
        }
        let letter = |ix: &String| -> Result<char> {
            let pos = order.iter().position(|o| o == ix).unwrap_or(0);
            index_letter(pos).ok_or_else(|| {
                RuntimeError::new(
                    "a product in a tensor equation may use at most 52 distinct indices",
                    e.span,
                )
            })
        };
        let mut spec = String::new();
        for (n, op) in operands.iter().enumerate() {
            if n > 0 {
                spec.push(',');
            }
            for ix in &op.indices {
                spec.push(letter(ix)?);
            }
        }
        spec.push_str("->");
        for ix in &kept {
            spec.push(letter(ix)?);
        }
        let refs: Vec<&Tensor> = operands.iter().map(|o| &o.tensor).collect();
        let mut tensor = Tensor::einsum(&spec, &refs).map_err(tensor_err(e.span))?;
        if scale != 1.0 {
            tensor = tensor
                .binary(TBinary::Mul, &Tensor::scalar(scale, DType::F32))
                .map_err(tensor_err(e.span))?;
        }
        Ok(Part::Indexed(Indexed {
            tensor,
            indices: kept,
        }))
    }

    /// A term `A[i, j, 0]`: the tensor as float32 with its constant indices selected. An index
    /// repeated in the term is kept repeated here (the einsum takes the diagonal).
    fn eq_term(
        &mut self,
        term: &Expr,
        base: &Expr,
        indices: &[IndexArg],
        eq: &mut Equation,
    ) -> Result<Indexed> {
        let tname = expr_label(base);
        let tensor = match &base.kind {
            ExprKind::Name(n) => match self.lookup_var(n) {
                Some(v) => v.clone(),
                None => {
                    return Err(RuntimeError::new(
                        format!("unknown tensor `{n}` in a tensor equation"),
                        base.span,
                    ));
                }
            },
            _ if !self.mentions_index_var(base) => self.eval(base)?,
            _ => {
                return Err(unsupported(
                    "index variables inside the indexed expression of a tensor equation",
                    base.span,
                ));
            }
        };
        let tensor = match tensor {
            Value::Tensor(t) => t,
            other => {
                return Err(RuntimeError::new(
                    format!(
                        "`{tname}` in a tensor equation must be a tensor, got {}",
                        super::stmt::describe_kind(&other)
                    ),
                    base.span,
                ));
            }
        };
        if tensor.rank() != indices.len() {
            return Err(RuntimeError::new(
                format!(
                    "tensor `{tname}` has rank {} (shape {:?}) but is indexed with {} indices",
                    tensor.rank(),
                    tensor.shape(),
                    indices.len()
                ),
                term.span,
            ));
        }
        // Which dims keep an index variable, and which a constant selects.
        let mut names: Vec<Option<String>> = Vec::with_capacity(indices.len());
        let mut selects: Vec<(usize, i64)> = Vec::new();
        for (dim, ix) in indices.iter().enumerate() {
            let ixe = match ix {
                IndexArg::Expr(ixe) => ixe,
                other => return Err(unsupported_index(other, term.span)),
            };
            match &ixe.kind {
                ExprKind::Name(n) if !self.is_constant_index(n) => {
                    names.push(Some(n.clone()));
                    continue;
                }
                _ if self.mentions_index_var(ixe) => {
                    return Err(unsupported(
                        "index arithmetic in tensor equations",
                        ixe.span,
                    ));
                }
                _ => {}
            }
            match self.eval(ixe)? {
                Value::Int(k) => selects.push((dim, k)),
                other => {
                    return Err(RuntimeError::new(
                        format!(
                            "a constant index must be an int, got {}",
                            super::stmt::describe_kind(&other)
                        ),
                        ixe.span,
                    ));
                }
            }
            names.push(None);
        }
        for (dim, ixname) in names.iter().enumerate() {
            let Some(ixname) = ixname else { continue };
            let size = tensor.shape()[dim];
            match eq.sizes.get(ixname) {
                Some((known, owner)) if *known != size => {
                    return Err(RuntimeError::new(
                        format!(
                            "index `{ixname}` has size {known} in `{owner}` but size {size} in `{tname}`"
                        ),
                        term.span,
                    ));
                }
                Some(_) => {}
                None => {
                    eq.sizes.insert(ixname.clone(), (size, tname.clone()));
                }
            }
        }
        let mut t = tensor;
        // Select from the last dim first so that earlier dims keep their positions.
        for &(dim, k) in selects.iter().rev() {
            t = t.select(dim as isize, k as isize).map_err(|err| {
                let detail = err.0.trim_start_matches("select: ");
                RuntimeError::new(format!("tensor `{tname}`: constant {detail}"), term.span)
            })?;
        }
        let t = t.cast(DType::F32).map_err(tensor_err(term.span))?;
        Ok(Indexed {
            tensor: t,
            indices: names.into_iter().flatten().collect(),
        })
    }
}

/// How messages name an indexed expression: `W`, `model.w`, or `expression` for anything else.
fn expr_label(e: &Expr) -> String {
    match &e.kind {
        ExprKind::Name(n) => n.clone(),
        ExprKind::Member { base, name } => format!("{}.{name}", expr_label(base)),
        _ => "expression".to_string(),
    }
}

/// Collects the factors of a chain of `*`.
fn flatten_product<'e>(e: &'e Expr, out: &mut Vec<&'e Expr>) {
    match &e.kind {
        ExprKind::Binary {
            op: BinaryOp::Mul,
            lhs,
            rhs,
        } => {
            flatten_product(lhs, out);
            flatten_product(rhs, out);
        }
        _ => out.push(e),
    }
}

fn index_letter(pos: usize) -> Option<char> {
    const LETTERS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    LETTERS.get(pos).map(|&b| b as char)
}

fn unsupported_index(ix: &IndexArg, span: Span) -> RuntimeError {
    match ix {
        IndexArg::Normalized(n) => unsupported(
            &format!("the normalized index `{n}'.` in tensor equations"),
            span,
        ),
        IndexArg::Virtual(n) => unsupported(
            &format!("the virtual index `*{n}` in tensor equations"),
            span,
        ),
        IndexArg::Slice { .. } => unsupported("slices in tensor equations", span),
        IndexArg::Expr(e) => unsupported("index arithmetic in tensor equations", e.span),
    }
}

fn map_part(
    part: Part,
    span: Span,
    f: impl Fn(&Tensor) -> tl_tensor::Result<Tensor>,
) -> Result<Part> {
    match part {
        Part::Scalar(x) => {
            let t = f(&Tensor::scalar(x, DType::F32)).map_err(tensor_err(span))?;
            Ok(Part::Scalar(t.to_scalar_f64().map_err(tensor_err(span))?))
        }
        Part::Indexed(x) => Ok(Part::Indexed(Indexed {
            tensor: f(&x.tensor).map_err(tensor_err(span))?,
            indices: x.indices,
        })),
    }
}

/// `tensor` (indexed by `from`) viewed with the dims of `to`, size 1 where it lacks an index.
fn align_to(tensor: &Tensor, from: &[String], to: &[String], span: Span) -> Result<Tensor> {
    let perm: Vec<isize> = to
        .iter()
        .filter_map(|ix| from.iter().position(|f| f == ix).map(|p| p as isize))
        .collect();
    let permuted = tensor.permute(&perm).map_err(tensor_err(span))?;
    let shape: Vec<isize> = to
        .iter()
        .map(|ix| match from.iter().position(|f| f == ix) {
            Some(p) => tensor.shape()[p] as isize,
            None => 1,
        })
        .collect();
    permuted.reshape(&shape).map_err(tensor_err(span))
}

/// `a op b` elementwise, with their indices aligned (an index one side lacks broadcasts).
fn combine(op: TBinary, a: Part, b: Part, span: Span) -> Result<Part> {
    let scalar = |x: f64| Tensor::scalar(x, DType::F32);
    match (a, b) {
        (Part::Scalar(x), Part::Scalar(y)) => {
            let t = scalar(x).binary(op, &scalar(y)).map_err(tensor_err(span))?;
            Ok(Part::Scalar(t.to_scalar_f64().map_err(tensor_err(span))?))
        }
        (Part::Indexed(x), Part::Scalar(y)) => Ok(Part::Indexed(Indexed {
            tensor: x.tensor.binary(op, &scalar(y)).map_err(tensor_err(span))?,
            indices: x.indices,
        })),
        (Part::Scalar(x), Part::Indexed(y)) => Ok(Part::Indexed(Indexed {
            tensor: scalar(x).binary(op, &y.tensor).map_err(tensor_err(span))?,
            indices: y.indices,
        })),
        (Part::Indexed(x), Part::Indexed(y)) => {
            let mut union = x.indices.clone();
            for ix in &y.indices {
                if !union.contains(ix) {
                    union.push(ix.clone());
                }
            }
            let xa = align_to(&x.tensor, &x.indices, &union, span)?;
            let ya = align_to(&y.tensor, &y.indices, &union, span)?;
            Ok(Part::Indexed(Indexed {
                tensor: xa.binary(op, &ya).map_err(tensor_err(span))?,
                indices: union,
            }))
        }
    }
}

/// The left side's value from the right side's: projects away the indices the left side lacks,
/// orders the dims as the left side, and broadcasts along left-side indices the right side
/// never mentions (their size taken from the existing tensor).
fn finish(
    rhs: Part,
    eq: &Equation,
    name: &str,
    existing: Option<&Tensor>,
    span: Span,
) -> Result<Tensor> {
    let (mut tensor, mut indices) = match rhs {
        Part::Scalar(x) => (Tensor::scalar(x, DType::F32), Vec::new()),
        Part::Indexed(x) => (x.tensor, x.indices),
    };
    let extra: Vec<isize> = indices
        .iter()
        .enumerate()
        .filter(|(_, ix)| !eq.lhs.contains(ix))
        .map(|(d, _)| d as isize)
        .collect();
    if !extra.is_empty() {
        tensor = tensor
            .reduce(eq.projection, Some(&extra), false)
            .map_err(tensor_err(span))?;
        indices.retain(|ix| eq.lhs.contains(ix));
    }
    let mut shape = Vec::with_capacity(eq.lhs.len());
    for (pos, ix) in eq.lhs.iter().enumerate() {
        match eq.sizes.get(ix) {
            Some((size, _)) => shape.push(*size),
            None => match existing {
                Some(t) if t.rank() == eq.lhs.len() => shape.push(t.shape()[pos]),
                _ => {
                    return Err(RuntimeError::new(
                        format!(
                            "index `{ix}` of `{name}` does not appear on the right side, so its size is unknown"
                        ),
                        span,
                    )
                    .with_note(format!(
                        "index a tensor with `{ix}` on the right side, or create `{name}` first so that the result broadcasts along `{ix}`"
                    )));
                }
            },
        }
    }
    let aligned = align_to(&tensor, &indices, &eq.lhs, span)?;
    aligned
        .broadcast_to(&shape)
        .and_then(|t| t.contiguous())
        .and_then(|t| t.cast(DType::F32))
        .map_err(tensor_err(span))
}
