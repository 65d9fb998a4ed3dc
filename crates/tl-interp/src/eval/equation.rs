//! Tensor equations run as statements: `Y[i, k] = relu(X[i, j] W[j, k])`.
//!
//! An equation statement computes its left side at once, in program order (a top-level run of
//! equations is an equation *set* run to its fixed point: `super::equation_set`). The rules,
//! precisely:
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
//!   `tanh`, `sqrt`, `abs`, `neg`, `softmax` and `lnorm` ((x - mean) / sqrt(var + 1e-5)), which
//!   normalise over the `.`-marked left-side index, else the last one.
//! - **Projection.** Indices still present at the top that are not on the left side are then
//!   reduced with sum (`=`, `+=`, `-=`), max (`max=`) or mean (`avg=`). A left-side index that
//!   the right side never mentions takes its size from the existing left-side tensor (the result
//!   broadcasts along it); with no such tensor it is an error.
//! - **Assignment.** `=`, `max=`, `avg=` create or replace the left-side tensor (float32, in the
//!   innermost scope when it is new); `+=` / `-=` add to / subtract from it, starting from zeros
//!   when it does not exist yet (elements default to 0).
//!
//! - **Functions.** At a call (`relu(..)`, `step(..)`), the indices that occur only inside the
//!   argument and not on the left side are summed before the function applies.
//! - **Index arithmetic** (`X[i, t+1]`, `I[x+dx, y+dy]`, `P[x/2] = I[x]`): an index variable's
//!   range is the size of a dimension it indexes bare on the right side, else of the left-side
//!   dimension it names (when the tensor exists), else of the first dimension whose index uses
//!   it. A right-side term with arithmetic is one gather (positions outside read 0); a
//!   left-side dimension with arithmetic (of one or more variables) scatters its variables'
//!   values to the positions it gives, combining collisions with the equation's projection.
//! - **Slices** are anonymous indices: the k-th slice of every term and of the left side.
//! - **`p'.`** marks the index softmax normalises over (or, with no softmax, the sum divides by).
//! - **`*t`** runs the equation for each t with only the current value of the tensor kept.
//! - **`Y[p, k] = concat(A[h, p, v], ...)`** (a whole right side): nothing is summed inside;
//!   each argument's indices absent from the left are flattened row-major (order of first
//!   appearance) along the one left-side index no argument uses, the arguments one after another.
//! - **`sig(x / T)`** with T = 0 is `step(x)`.
//!
//! docs/language.md ("Tensor equations and logic") states these rules for users.

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
    /// The left side's index variables, one per dimension, in order.
    lhs: Vec<String>,
    /// For each left-side dimension, the index expression when it is not a bare variable
    /// (`x/2`, `t+1`, a slice), as a function of that dimension's variable.
    lhs_exprs: Vec<Option<LhsExpr>>,
    /// The index marked `p'.` on the left side, if any, and whether a `softmax` used it.
    normalized: Option<String>,
    softmax_used: bool,
    /// The embedding whose entities each relation variable ranges over.
    domains: HashMap<String, String>,
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
        if has_virtual(target) || has_virtual(value) {
            return self.exec_virtual_equation(target, op, value, span);
        }
        let (name, new) = self.compute_equation(target, op, value, span)?;
        self.bind_or_rebind(&name, Value::Tensor(new));
        Ok(())
    }

    /// The new value of the left side of a tensor equation without `*t` (its name and tensor),
    /// computed from the current bindings; nothing is bound.
    pub(crate) fn compute_equation(
        &mut self,
        target: &Expr,
        op: AssignOp,
        value: &Expr,
        span: Span,
    ) -> Result<(String, Tensor)> {
        // A bare name on the left (`Loss = (Y[n] - T[n]) ** 2`) has no indices: every index
        // of the right side is projected away.
        let (base, indices): (&Expr, &[IndexArg]) = match &target.kind {
            ExprKind::Index { base, indices } => (base, indices),
            ExprKind::Name(_) => (target, &[]),
            _ => {
                return Err(RuntimeError::new(
                    "the left side of a tensor equation must be an indexed tensor like `Y[i, j]`",
                    target.span,
                ));
            }
        };
        let ExprKind::Name(name) = &base.kind else {
            return Err(RuntimeError::new(
                "the left side of a tensor equation must name a tensor, as in `Y[i, j]`",
                base.span,
            ));
        };
        if self.embedded_relation_shape(name).is_some() {
            return Err(RuntimeError::new(
                format!(
                    "`{name}` is a relation with an embedding, which its tuples define: state facts `{name}(a, b)` or rules to change it, or give this tensor another name"
                ),
                base.span,
            ));
        }
        if let Some(args) = self.concat_call(value) {
            let existing = self.existing_left_side(name, op, base.span)?;
            let result =
                self.concat_equation(indices, target.span, op, value, args, existing.as_ref())?;
            return self.assign_equation_result(name, op, result, existing, span);
        }
        let (lhs, lhs_exprs, normalized) = self.lhs_indices(indices, target.span)?;
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
            lhs_exprs,
            normalized,
            softmax_used: false,
            domains: HashMap::new(),
            total_counts,
            sizes: HashMap::new(),
            projection,
        };
        let existing_now = match self.lookup_var(name) {
            Some(Value::Tensor(t)) => Some(t.shape().to_vec()),
            _ => None,
        };
        self.index_sizes(value, indices, existing_now.as_deref(), &mut eq)?;
        self.lhs_slice_lengths(indices, target.span, &mut eq)?;
        let top_sums = projection == ReduceOp::Sum;
        let rhs = self.eq_part(value, &mut eq, top_sums)?;
        let existing = self.existing_left_side(name, op, base.span)?;
        let result = finish(rhs, &eq, name, existing.as_ref(), span)?;
        self.assign_equation_result(name, op, result, existing, span)
    }

    /// The tensor the left side `name` holds now, if any; `+=` / `-=` on a name bound to
    /// something that is not a tensor is an error.
    fn existing_left_side(&self, name: &str, op: AssignOp, span: Span) -> Result<Option<Tensor>> {
        Ok(match self.lookup_var(name) {
            Some(Value::Tensor(t)) => Some(t.clone()),
            Some(other) if matches!(op, AssignOp::AddAssign | AssignOp::SubAssign) => {
                return Err(RuntimeError::new(
                    format!(
                        "cannot add a tensor equation's result to `{name}`: it is {}, not a tensor",
                        super::stmt::describe_kind(other)
                    ),
                    span,
                ));
            }
            _ => None,
        })
    }

    /// The left side's new value from an equation's result: the result itself for `=`,
    /// `max=`, `avg=`; added to or subtracted from the existing tensor for `+=` / `-=`.
    fn assign_equation_result(
        &self,
        name: &str,
        op: AssignOp,
        result: Tensor,
        existing: Option<Tensor>,
        span: Span,
    ) -> Result<(String, Tensor)> {
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
        Ok((name.to_string(), new))
    }

    /// The arguments of `concat(...)` when it is a whole right side (and `concat` is not a
    /// user's function).
    fn concat_call<'e>(&self, value: &'e Expr) -> Option<&'e [tl_syntax::ast::Arg]> {
        match &value.kind {
            ExprKind::Call { callee, args } => match &callee.kind {
                ExprKind::Name(n)
                    if n == "concat"
                        && !self.fns.contains_key(n)
                        && self.lookup_var(n).is_none() =>
                {
                    Some(args)
                }
                _ => None,
            },
            _ => None,
        }
    }

    /// `Y[p, k] = concat(A[h, p, v], B[p, w], ...)`: the left side has exactly one index `k`
    /// that no argument uses. Each argument is evaluated with nothing summed (as the right
    /// side of an equation whose left side is the other left-side indices followed by the
    /// argument's own indices that are not on the left, in order of first appearance); those
    /// own indices are flattened row-major into one run of positions along `k` (`h*V + v`), and
    /// the runs of the arguments follow each other along `k`, in argument order.
    fn concat_equation(
        &mut self,
        indices: &[IndexArg],
        lhs_span: Span,
        op: AssignOp,
        call: &Expr,
        args: &[tl_syntax::ast::Arg],
        existing: Option<&Tensor>,
    ) -> Result<Tensor> {
        let projecting = match op {
            AssignOp::MaxAssign => "max=",
            AssignOp::AvgAssign => "avg=",
            AssignOp::MulAssign | AssignOp::DivAssign => {
                return Err(unsupported("`*=` and `/=` in tensor equations", call.span));
            }
            AssignOp::Assign | AssignOp::Bind | AssignOp::AddAssign | AssignOp::SubAssign => "",
        };
        if !projecting.is_empty() {
            return Err(RuntimeError::new(
                format!(
                    "`concat` keeps every index of its arguments, so `{projecting}` has nothing to project; write `=`"
                ),
                call.span,
            ));
        }
        let mut lhs: Vec<String> = Vec::with_capacity(indices.len());
        for ix in indices {
            let var = match ix {
                IndexArg::Expr(Expr {
                    kind: ExprKind::Name(n),
                    ..
                }) if self.is_index_var_name(n) => n.clone(),
                _ => {
                    return Err(unsupported(
                        "constant indices, index arithmetic, slices or `.` marks on the left side of a `concat` equation",
                        lhs_span,
                    ));
                }
            };
            if lhs.contains(&var) {
                return Err(RuntimeError::new(
                    format!(
                        "the index `{var}` appears twice on the left side of a tensor equation"
                    ),
                    lhs_span,
                ));
            }
            lhs.push(var);
        }
        if args.is_empty() {
            return Err(RuntimeError::new(
                "`concat` in a tensor equation needs at least one argument, as in `Y[p, k] = concat(X[h, p, v])`",
                call.span,
            ));
        }
        let mut arg_vars = Vec::with_capacity(args.len());
        for a in args {
            if a.name.is_some() {
                return Err(RuntimeError::new(
                    "`concat` in a tensor equation takes no named arguments",
                    a.span,
                ));
            }
            arg_vars.push(self.ordered_index_vars(&a.value));
        }
        let unused: Vec<&String> = lhs
            .iter()
            .filter(|ix| arg_vars.iter().all(|vars| !vars.contains(ix)))
            .collect();
        let along = match unused.as_slice() {
            [k] => (*k).clone(),
            [] => {
                return Err(RuntimeError::new(
                    "`concat` lays its arguments side by side along the one left-side index that none of them uses, but every left-side index here appears in an argument",
                    lhs_span,
                )
                .with_note(
                    "write a new index on the left for the joined positions, as in `Merge[p, k] = concat(Attn[h, p, v])`",
                ));
            }
            several => {
                let names: Vec<String> = several.iter().map(|n| format!("`{n}`")).collect();
                return Err(RuntimeError::new(
                    format!(
                        "`concat` lays its arguments side by side along the one left-side index that none of them uses, but several are unused here ({}), so which one is ambiguous",
                        names.join(", ")
                    ),
                    lhs_span,
                ));
            }
        };
        let others: Vec<String> = lhs.iter().filter(|ix| **ix != along).cloned().collect();
        // Each argument as a tensor over [its left-side indices..., its own indices...].
        let mut pieces: Vec<ConcatPiece> = Vec::with_capacity(args.len());
        let mut other_sizes: HashMap<String, (usize, usize)> = HashMap::new();
        for (n, (a, vars)) in args.iter().zip(&arg_vars).enumerate() {
            let own: Vec<String> = vars.iter().filter(|v| !lhs.contains(v)).cloned().collect();
            let mut total_counts = HashMap::new();
            self.count_index_vars(&a.value, &mut total_counts);
            let mut eq = Equation {
                lhs: others.iter().chain(&own).cloned().collect(),
                lhs_exprs: vec![None; others.len() + own.len()],
                normalized: None,
                softmax_used: false,
                domains: HashMap::new(),
                total_counts,
                sizes: HashMap::new(),
                projection: ReduceOp::Sum,
            };
            self.index_sizes(&a.value, &[], None, &mut eq)?;
            let part = match self.eq_part(&a.value, &mut eq, true)? {
                Part::Indexed(x) => x,
                Part::Scalar(x) => Indexed {
                    tensor: Tensor::scalar(x, DType::F32)
                        .to_default_device()
                        .map_err(tensor_err(a.span))?,
                    indices: Vec::new(),
                },
            };
            for (ix, size) in part.indices.iter().zip(part.tensor.shape()) {
                if !others.contains(ix) {
                    continue;
                }
                match other_sizes.get(ix) {
                    Some(&(known, first)) if known != *size => {
                        return Err(RuntimeError::new(
                            format!(
                                "index `{ix}` has size {known} in argument {} of `concat` but size {size} in argument {}",
                                first + 1,
                                n + 1
                            ),
                            a.span,
                        ));
                    }
                    Some(_) => {}
                    None => {
                        other_sizes.insert(ix.clone(), (*size, n));
                    }
                }
            }
            // The own indices' sizes, in the order of first appearance (the layout along k).
            let mut own_sizes = Vec::with_capacity(own.len());
            for v in &own {
                match part.indices.iter().position(|ix| ix == v) {
                    Some(dim) => own_sizes.push(part.tensor.shape()[dim]),
                    None => {
                        return Err(RuntimeError::new(
                            format!(
                                "the size of index `{v}` in this argument of `concat` is unknown"
                            ),
                            a.span,
                        ));
                    }
                }
            }
            pieces.push(ConcatPiece {
                part,
                own,
                own_sizes,
                span: a.span,
            });
        }
        let mut shape = Vec::with_capacity(others.len());
        for ix in &others {
            let size = match other_sizes.get(ix) {
                Some(&(size, _)) => size,
                None => match existing {
                    Some(t) if t.rank() == lhs.len() => {
                        t.shape()[lhs.iter().position(|l| l == ix).unwrap_or(0)]
                    }
                    _ => {
                        return Err(RuntimeError::new(
                            format!(
                                "index `{ix}` of the left side appears in no argument of `concat`, so its size is unknown"
                            ),
                            lhs_span,
                        ));
                    }
                },
            };
            shape.push(size);
        }
        let mut flat = Vec::with_capacity(pieces.len());
        for ConcatPiece {
            part,
            own,
            own_sizes,
            span,
        } in pieces
        {
            let order: Vec<String> = others.iter().chain(&own).cloned().collect();
            let mut full: Vec<usize> = shape.clone();
            full.extend(&own_sizes);
            let width: usize = own_sizes.iter().product();
            let mut flat_shape: Vec<isize> = shape.iter().map(|&s| s as isize).collect();
            flat_shape.push(width as isize);
            let piece = align_to(&part.tensor, &part.indices, &order, span)?
                .broadcast_to(&full)
                .and_then(|t| t.contiguous())
                .and_then(|t| t.reshape(&flat_shape))
                .map_err(tensor_err(span))?;
            flat.push(piece);
        }
        // The joined axis is last; move it to the position of `along` on the left side.
        let joined = Tensor::concat(&flat, others.len() as isize).map_err(tensor_err(call.span))?;
        let at = lhs.iter().position(|ix| *ix == along).unwrap_or(0);
        let perm: Vec<isize> = (0..lhs.len())
            .map(|pos| match pos.cmp(&at) {
                std::cmp::Ordering::Less => pos as isize,
                std::cmp::Ordering::Equal => others.len() as isize,
                std::cmp::Ordering::Greater => pos as isize - 1,
            })
            .collect();
        joined
            .permute(&perm)
            .and_then(|t| t.contiguous())
            .and_then(|t| t.cast(DType::F32))
            .map_err(tensor_err(call.span))
    }

    /// The left side's index variables (one per dimension, distinct), the index expression of
    /// each dimension that is not a bare variable (`x/2`, `t+1`, a slice `2:5`), and the
    /// normalised index `p'.` if there is one.
    #[allow(clippy::type_complexity)]
    fn lhs_indices(
        &mut self,
        indices: &[IndexArg],
        span: Span,
    ) -> Result<(Vec<String>, Vec<Option<LhsExpr>>, Option<String>)> {
        let mut vars: Vec<String> = Vec::with_capacity(indices.len());
        let mut exprs = Vec::with_capacity(indices.len());
        let mut normalized: Option<String> = None;
        let mut slices = 0;
        for ix in indices {
            let (dim_vars, expr): (Vec<String>, Option<IxExpr>) = match ix {
                IndexArg::Normalized(n) => {
                    if let Some(first) = &normalized {
                        return Err(RuntimeError::new(
                            format!(
                                "a tensor equation normalises over one index, but both `{first}.` and `{n}.` are marked"
                            ),
                            span,
                        ));
                    }
                    normalized = Some(n.clone());
                    (vec![n.clone()], None)
                }
                IndexArg::Virtual(n, _) => {
                    return Err(RuntimeError::new(
                        format!("the virtual index `*{n}` cannot be used here"),
                        span,
                    ));
                }
                IndexArg::Slice { start, end, step } => {
                    let var = format!(":{slices}");
                    slices += 1;
                    let (start, step) = self.lhs_slice(start, end, step, span)?;
                    let expr = IxExpr::affine(start, step, &var);
                    (vec![var], Some(expr))
                }
                IndexArg::Expr(e) => match &e.kind {
                    ExprKind::Name(n) if !self.is_constant_index(n) => (vec![n.clone()], None),
                    _ if self.mentions_index_var(e) => {
                        let expr = self.ix_expr(e)?;
                        let mut names = Vec::new();
                        expr.vars(&mut names);
                        (names, Some(expr))
                    }
                    _ => {
                        return Err(unsupported(
                            "constant indices on the left side of a tensor equation",
                            e.span,
                        ));
                    }
                },
            };
            for var in &dim_vars {
                if vars.contains(var) {
                    return Err(RuntimeError::new(
                        format!(
                            "the index `{var}` appears twice on the left side of a tensor equation"
                        ),
                        span,
                    ));
                }
                vars.push(var.clone());
            }
            exprs.push(expr.map(|e| (dim_vars, e)));
        }
        if let Some(n) = &normalized
            && exprs.iter().any(Option::is_some)
        {
            return Err(unsupported(
                &format!(
                    "the normalised index `{n}.` together with index arithmetic on the left side"
                ),
                span,
            ));
        }
        Ok((vars, exprs, normalized))
    }

    /// A left-side slice `a:b` / `a:b:s`: its start and step (its length is checked by
    /// `lhs_slice_lengths`).
    fn lhs_slice(
        &mut self,
        start: &Option<Expr>,
        _end: &Option<Expr>,
        step: &Option<Expr>,
        span: Span,
    ) -> Result<(i64, i64)> {
        let start = match start {
            Some(e) => self.const_int(e)?,
            None => 0,
        };
        let step = match step {
            Some(e) => self.const_int(e)?,
            None => 1,
        };
        if start < 0 || step <= 0 {
            return Err(unsupported(
                "negative starts or steps in a left-side slice of a tensor equation",
                span,
            ));
        }
        Ok((start, step))
    }

    /// A left-side slice with an end (`Y[i, 2:5]`) has a length: it must match the right
    /// side's matching slice, and fixes the slice index's size when nothing else does.
    fn lhs_slice_lengths(
        &mut self,
        indices: &[IndexArg],
        span: Span,
        eq: &mut Equation,
    ) -> Result<()> {
        let mut slices = 0;
        for ix in indices {
            let IndexArg::Slice { start, end, step } = ix else {
                continue;
            };
            let var = format!(":{slices}");
            slices += 1;
            let Some(end) = end else { continue };
            let (a, s) = self.lhs_slice(start, &None, step, span)?;
            let b = self.const_int(end)?;
            let len = if b > a {
                ((b - a + s - 1) / s) as usize
            } else {
                0
            };
            match eq.sizes.get(&var) {
                Some((known, owner)) if *known != len => {
                    return Err(RuntimeError::new(
                        format!(
                            "the left side's slice has {len} positions but the matching slice of `{owner}` has {known}"
                        ),
                        span,
                    ));
                }
                Some(_) => {}
                None => {
                    eq.sizes.insert(var, (len, "the left side".to_string()));
                }
            }
        }
        Ok(())
    }

    /// An index-free expression that must give a host int.
    fn const_int(&mut self, e: &Expr) -> Result<i64> {
        match self.eval(e)? {
            Value::Int(k) => Ok(k),
            other => Err(RuntimeError::new(
                format!(
                    "an index here must be an int, got {}",
                    super::stmt::describe_kind(&other)
                ),
                e.span,
            )),
        }
    }

    /// A bare name bound to a host int (or a string, a symbol) is a constant index.
    fn is_constant_index(&self, name: &str) -> bool {
        matches!(self.lookup_var(name), Some(Value::Int(_) | Value::Str(_)))
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
                        IndexArg::Normalized(_)
                        | IndexArg::Virtual(..)
                        | IndexArg::Slice { .. } => true,
                    })
            }
            ExprKind::Binary { lhs, rhs, .. } => {
                self.mentions_index_var(lhs) || self.mentions_index_var(rhs)
            }
            ExprKind::Unary { expr, .. } | ExprKind::Cast { expr, .. } => {
                self.mentions_index_var(expr)
            }
            ExprKind::Call { callee, args } => {
                // A relation atom is a Boolean tensor of its variables.
                if self.relation_callee(callee).is_some() {
                    return true;
                }
                args.iter().any(|a| self.mentions_index_var(&a.value))
            }
            _ => false,
        }
    }

    /// The relation named by a call's callee, when it names one (`R(x, y)` in an equation).
    pub(crate) fn relation_callee<'e>(&self, callee: &'e Expr) -> Option<&'e str> {
        match &callee.kind {
            ExprKind::Name(n)
                if !self.fns.contains_key(n)
                    && self.lookup_var(n).is_none()
                    && (self.relations.contains(n) || self.logic.arity(n).is_some()) =>
            {
                Some(n)
            }
            _ => None,
        }
    }

    /// Counts the occurrences of index variables in the terms of `e` (bare, inside index
    /// arithmetic, the anonymous index of each slice, and the arguments of relation atoms).
    fn count_index_vars(&self, e: &Expr, counts: &mut HashMap<String, usize>) {
        self.visit_index_vars(e, &mut |n| *counts.entry(n.to_string()).or_insert(0) += 1);
    }

    /// The distinct index variables of `e`'s terms, in order of first appearance.
    fn ordered_index_vars(&self, e: &Expr) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        self.visit_index_vars(e, &mut |n| {
            if !out.iter().any(|o| o == n) {
                out.push(n.to_string());
            }
        });
        out
    }

    /// Calls `f` on every occurrence of an index variable in the terms of `e`, left to right.
    fn visit_index_vars(&self, e: &Expr, f: &mut dyn FnMut(&str)) {
        match &e.kind {
            ExprKind::Index { indices, .. } => {
                let mut slices = 0;
                for ix in indices {
                    match ix {
                        IndexArg::Expr(ixe) => {
                            let mut names = Vec::new();
                            self.index_names(ixe, &mut names);
                            for n in &names {
                                f(n);
                            }
                        }
                        IndexArg::Slice { .. } => {
                            f(&format!(":{slices}"));
                            slices += 1;
                        }
                        IndexArg::Normalized(n) | IndexArg::Virtual(n, _) => f(n),
                    }
                }
            }
            ExprKind::Binary { lhs, rhs, .. } => {
                self.visit_index_vars(lhs, f);
                self.visit_index_vars(rhs, f);
            }
            ExprKind::Unary { expr, .. } => self.visit_index_vars(expr, f),
            ExprKind::Call { callee, args } => {
                if self.relation_callee(callee).is_some() {
                    for a in args {
                        if let ExprKind::Name(n) = &a.value.kind
                            && !self.is_bound_name(n)
                        {
                            f(n);
                        }
                    }
                    return;
                }
                for a in args {
                    self.visit_index_vars(&a.value, f);
                }
            }
            _ => {}
        }
    }

    /// The index variables an index expression uses (a bare name bound to no host int, or the
    /// names inside index arithmetic), with repeats.
    fn index_names(&self, e: &Expr, out: &mut Vec<String>) {
        match &e.kind {
            ExprKind::Name(n) if self.is_index_var_name(n) => out.push(n.clone()),
            ExprKind::Binary { lhs, rhs, .. } => {
                self.index_names(lhs, out);
                self.index_names(rhs, out);
            }
            ExprKind::Unary { expr, .. } => self.index_names(expr, out),
            _ => {}
        }
    }

    /// Index arithmetic as an [`IxExpr`]: `+ - * / %` and unary minus over index variables
    /// and ints (an index-free part is evaluated once).
    fn ix_expr(&mut self, e: &Expr) -> Result<IxExpr> {
        if !self.mentions_index_var(e) {
            return Ok(IxExpr::Const(self.const_int(e)?));
        }
        match &e.kind {
            ExprKind::Name(n) => Ok(IxExpr::Var(n.clone())),
            ExprKind::Unary {
                op: UnaryOp::Neg,
                expr,
            } => Ok(IxExpr::Neg(Box::new(self.ix_expr(expr)?))),
            ExprKind::Binary { op, lhs, rhs } => {
                let bin = match op {
                    BinaryOp::Add => TBinary::Add,
                    BinaryOp::Sub => TBinary::Sub,
                    BinaryOp::Mul => TBinary::Mul,
                    BinaryOp::Div => TBinary::Div,
                    BinaryOp::Rem => TBinary::Rem,
                    _ => return Err(bad_index_arithmetic(e.span)),
                };
                let a = self.ix_expr(lhs)?;
                let b = self.ix_expr(rhs)?;
                if matches!(bin, TBinary::Div | TBinary::Rem) && b.is_zero() {
                    return Err(RuntimeError::new(
                        "index arithmetic divides by zero",
                        rhs.span,
                    ));
                }
                Ok(IxExpr::Bin(bin, Box::new(a), Box::new(b)))
            }
            _ => Err(bad_index_arithmetic(e.span)),
        }
    }

    /// Fixes the size of every index variable before the right side is evaluated: first from
    /// the dimensions it indexes bare (or the slices it names), then from the existing left-side
    /// tensor, then, for a variable used only inside index arithmetic, from the first dimension
    /// whose index uses it.
    fn index_sizes(
        &mut self,
        value: &Expr,
        lhs: &[IndexArg],
        existing: Option<&[usize]>,
        eq: &mut Equation,
    ) -> Result<()> {
        let mut terms = Vec::new();
        collect_terms(value, &mut terms);
        let mut later: Vec<(String, usize)> = Vec::new();
        for term in &terms {
            if let ExprKind::Index { base, .. } = &term.kind
                && let ExprKind::Name(n) = &base.kind
            {
                self.materialize_embedding(n, base.span)?;
            }
        }
        eq.domains = self.embedding_domains(&terms);
        for term in &terms {
            let ExprKind::Index { base, indices } = &term.kind else {
                continue;
            };
            let shape = match &base.kind {
                ExprKind::Name(n) => match self.lookup_var(n) {
                    Some(Value::Tensor(t)) if t.rank() == indices.len() => t.shape().to_vec(),
                    None => match self.embedded_relation_shape(n) {
                        Some(shape) if shape.len() == indices.len() => shape,
                        _ => continue,
                    },
                    _ => continue,
                },
                // `model.w[..]`: the shape of the member (calls are not run twice; their
                // terms take sizes when they are evaluated).
                ExprKind::Member { .. } if !self.mentions_index_var(base) => {
                    match self.eval(base)? {
                        Value::Tensor(t) if t.rank() == indices.len() => t.shape().to_vec(),
                        _ => continue,
                    }
                }
                _ => continue,
            };
            let tname = expr_label(base);
            let mut slices = 0;
            for (dim, ix) in indices.iter().enumerate() {
                match ix {
                    IndexArg::Expr(e) => match &e.kind {
                        ExprKind::Name(n) if self.is_index_var_name(n) => {
                            eq.sizes
                                .entry(n.clone())
                                .or_insert((shape[dim], tname.clone()));
                        }
                        _ => {
                            let mut names = Vec::new();
                            self.index_names(e, &mut names);
                            later.extend(names.into_iter().map(|n| (n, shape[dim])));
                        }
                    },
                    IndexArg::Slice { start, end, step } => {
                        let var = format!(":{slices}");
                        slices += 1;
                        let (_, len, _) =
                            self.slice_range(start, end, step, shape[dim], term.span)?;
                        eq.sizes.entry(var).or_insert((len, tname.clone()));
                    }
                    _ => {}
                }
            }
        }
        if let Some(shape) = existing
            && shape.len() == lhs.len()
        {
            for (dim, ix) in lhs.iter().enumerate() {
                if let IndexArg::Expr(Expr {
                    kind: ExprKind::Name(n),
                    ..
                })
                | IndexArg::Normalized(n) = ix
                {
                    let n = match ix {
                        IndexArg::Normalized(_) => n.clone(),
                        _ if self.is_index_var_name(n) => n.clone(),
                        _ => continue,
                    };
                    eq.sizes
                        .entry(n)
                        .or_insert((shape[dim], "the left side".to_string()));
                }
            }
        }
        for (n, size) in later {
            eq.sizes
                .entry(n)
                .or_insert((size, "index arithmetic".to_string()));
        }
        Ok(())
    }

    /// A bare name in brackets that is an index variable (not a host int or string in scope).
    fn is_index_var_name(&self, n: &str) -> bool {
        !self.is_constant_index(n)
    }

    /// A slice `a:b:s` of a dimension of size `n` (Python semantics, positive steps): its
    /// start, length and step.
    fn slice_range(
        &mut self,
        start: &Option<Expr>,
        end: &Option<Expr>,
        step: &Option<Expr>,
        n: usize,
        span: Span,
    ) -> Result<(i64, usize, i64)> {
        let n = n as i64;
        let step = match step {
            Some(e) => self.const_int(e)?,
            None => 1,
        };
        if step <= 0 {
            return Err(unsupported(
                "slices with a negative or zero step in tensor equations",
                span,
            ));
        }
        let clamp = |k: i64| if k < 0 { (k + n).max(0) } else { k.min(n) };
        let a = match start {
            Some(e) => clamp(self.const_int(e)?),
            None => 0,
        };
        let b = match end {
            Some(e) => clamp(self.const_int(e)?),
            None => n,
        };
        let len = if b > a { (b - a + step - 1) / step } else { 0 };
        Ok((a, len as usize, step))
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
            ExprKind::Call { callee, .. } if self.relation_callee(callee).is_some() => {
                self.eq_product(e, eq, sums)
            }
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
            // A value being differentiated (`b[0]` of a learnable `b`) stays a tensor, so that
            // the gradient reaches it; others become host numbers.
            Value::Tensor(t) if t.numel() == 1 && t.is_tracked() => Ok(Part::Indexed(Indexed {
                tensor: t
                    .reshape(&[])
                    .and_then(|t| t.cast(DType::F32))
                    .map_err(tensor_err(e.span))?,
                indices: Vec::new(),
            })),
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
        if fname == "concat" && !user_defined {
            return Err(unsupported(
                "`concat` inside a larger expression of a tensor equation; give it an equation of its own (`M[p, k] = concat(A[h, p, v])`) and use `M`, or write the concatenation as left-side index arithmetic (`M[p, h*V + v] = A[h, p, v]`)",
                callee.span,
            ));
        }
        let known = elementwise(fname).is_some() || fname == "softmax" || fname == "lnorm";
        if user_defined || !known {
            return Err(unsupported(
                &format!(
                    "calling `{fname}` in a tensor equation (the functions are step, sig, sigmoid, relu, exp, log, tanh, sqrt, abs, neg, softmax and lnorm)"
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
        // `sig(x / T)` with T = 0 is the limit: step(x) (exact deduction).
        if matches!(fname.as_str(), "sig" | "sigmoid")
            && let ExprKind::Binary {
                op: BinaryOp::Div,
                lhs,
                rhs,
            } = &arg.value.kind
            && !self.mentions_index_var(rhs)
            && let Part::Scalar(temperature) = self.eq_scalar(rhs)?
            && temperature == 0.0
        {
            let part = self.eq_part(lhs, eq, true)?;
            let part = self.sum_local(part, lhs, eq, e.span)?;
            return map_part(part, e.span, |t| t.unary(TUnary::Step));
        }
        // Inside a function, products always sum their own indices.
        let part = self.eq_part(&arg.value, eq, true)?;
        // An index that occurs only inside the argument and not on the left side is summed
        // before the function applies (`relu(W[e, f] A[f] + V[e, f] B[f])` sums f inside).
        let part = self.sum_local(part, &arg.value, eq, e.span)?;
        if let Some(op) = elementwise(fname) {
            return map_part(part, e.span, |t| t.unary(op));
        }
        let Some(last) = eq.normalized.as_ref().or(eq.lhs.last()).cloned() else {
            return Err(RuntimeError::new(
                format!(
                    "{fname} in a tensor equation normalises over the last index of the left side, which has none"
                ),
                e.span,
            ));
        };
        let last = &last;
        if eq.normalized.is_some() {
            eq.softmax_used = true;
        }
        match part {
            Part::Indexed(x) => match x.indices.iter().position(|i| i == last) {
                Some(dim) if fname == "lnorm" => {
                    let tensor =
                        layer_normalize(&x.tensor, dim as isize).map_err(tensor_err(e.span))?;
                    Ok(Part::Indexed(Indexed {
                        tensor,
                        indices: x.indices,
                    }))
                }
                Some(dim) => {
                    let tensor = x.tensor.softmax(dim as isize).map_err(tensor_err(e.span))?;
                    Ok(Part::Indexed(Indexed {
                        tensor,
                        indices: x.indices,
                    }))
                }
                None => Err(RuntimeError::new(
                    format!(
                        "{fname} normalises over `{last}` (the `.`-marked or else the last index of the left side), but its argument does not use `{last}`"
                    ),
                    e.span,
                )),
            },
            Part::Scalar(_) => Err(RuntimeError::new(
                format!("{fname} normalises over `{last}`, but its argument is a scalar"),
                e.span,
            )),
        }
    }

    /// Sums away the indices of `part` that are not on the left side and occur only inside
    /// `within` (the argument of a function).
    fn sum_local(&self, part: Part, within: &Expr, eq: &Equation, span: Span) -> Result<Part> {
        let Part::Indexed(x) = part else {
            return Ok(part);
        };
        let mut local = HashMap::new();
        self.count_index_vars(within, &mut local);
        let dims: Vec<isize> = x
            .indices
            .iter()
            .enumerate()
            .filter(|(_, ix)| {
                !eq.lhs.contains(ix)
                    && local.contains_key(*ix)
                    && local.get(*ix) == eq.total_counts.get(*ix)
            })
            .map(|(d, _)| d as isize)
            .collect();
        if dims.is_empty() {
            return Ok(Part::Indexed(x));
        }
        let tensor = x
            .tensor
            .reduce(ReduceOp::Sum, Some(&dims), false)
            .map_err(tensor_err(span))?;
        let indices = x
            .indices
            .into_iter()
            .enumerate()
            .filter(|(d, _)| !dims.contains(&(*d as isize)))
            .map(|(_, ix)| ix)
            .collect();
        Ok(Part::Indexed(Indexed { tensor, indices }))
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
            if let ExprKind::Call { callee, args } = &f.kind
                && let Some(rel) = self.relation_callee(callee)
            {
                let rel = rel.to_string();
                operands.push(self.eq_relation(f, &rel, args, eq)?);
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
                // `R[i, j]` of a relation declared with `embed`: its embedding now.
                None => match self.relation_embedding(n, term.span)? {
                    Some(t) => Value::Tensor(t),
                    None => {
                        return Err(RuntimeError::new(
                            format!("unknown tensor `{n}` in a tensor equation"),
                            base.span,
                        ));
                    }
                },
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
        let entities = match &base.kind {
            ExprKind::Name(n) => self.embedding_entities(n),
            _ => None,
        };
        // How each dim is indexed: a variable, index arithmetic (a slice is `start + step * :k`),
        // or a constant that selects.
        let mut dims: Vec<TermDim> = Vec::with_capacity(indices.len());
        let mut slices = 0;
        for (dim, ix) in indices.iter().enumerate() {
            let ixe = match ix {
                IndexArg::Expr(ixe) => ixe,
                IndexArg::Slice { start, end, step } => {
                    let var = format!(":{slices}");
                    slices += 1;
                    let (a, len, step) =
                        self.slice_range(start, end, step, tensor.shape()[dim], term.span)?;
                    self.note_size(&var, len, &tname, term.span, eq)?;
                    dims.push(TermDim::Computed(IxExpr::affine(a, step, &var)));
                    continue;
                }
                IndexArg::Normalized(n) => {
                    return Err(RuntimeError::new(
                        format!(
                            "the normalised index `{n}.` belongs on the left side of a tensor equation; write `{n}` here"
                        ),
                        term.span,
                    ));
                }
                IndexArg::Virtual(n, _) => {
                    return Err(RuntimeError::new(
                        format!("the virtual index `*{n}` cannot be used here"),
                        term.span,
                    ));
                }
            };
            // An entity of an embedding space selects its row.
            if dim == 0
                && let Some(entities) = &entities
            {
                let symbol = match &ixe.kind {
                    ExprKind::Name(n)
                        if self.lookup_var(n).is_none() && entities.contains_key(n) =>
                    {
                        Some(n.clone())
                    }
                    ExprKind::Name(n) => match self.lookup_var(n) {
                        Some(Value::Str(s)) => Some(s.to_string()),
                        _ => None,
                    },
                    ExprKind::Str(s) => Some(s.clone()),
                    _ => None,
                };
                if let Some(symbol) = symbol {
                    let Some(&row) = entities.get(&symbol) else {
                        return Err(RuntimeError::new(
                            format!("`{symbol}` is not an entity of the embedding `{tname}`"),
                            ixe.span,
                        ));
                    };
                    dims.push(TermDim::Const(row as i64));
                    continue;
                }
            }
            match &ixe.kind {
                ExprKind::Name(n) if self.is_index_var_name(n) => {
                    dims.push(TermDim::Var(n.clone()));
                    continue;
                }
                _ if self.mentions_index_var(ixe) => {
                    dims.push(TermDim::Computed(self.ix_expr(ixe)?));
                    continue;
                }
                _ => {}
            }
            match self.eval(ixe)? {
                Value::Int(k) => dims.push(TermDim::Const(k)),
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
        }
        for (dim, d) in dims.iter().enumerate() {
            if let TermDim::Var(ixname) = d {
                self.note_size(ixname, tensor.shape()[dim], &tname, term.span, eq)?;
            }
        }
        let mut t = tensor;
        // Select from the last dim first so that earlier dims keep their positions.
        for (dim, d) in dims.iter().enumerate().rev() {
            if let TermDim::Const(k) = d {
                t = t.select(dim as isize, *k as isize).map_err(|err| {
                    let detail = err.0.trim_start_matches("select: ");
                    RuntimeError::new(format!("tensor `{tname}`: constant {detail}"), term.span)
                })?;
            }
        }
        let t = t.cast(DType::F32).map_err(tensor_err(term.span))?;
        dims.retain(|d| !matches!(d, TermDim::Const(_)));
        if dims.iter().all(|d| matches!(d, TermDim::Var(_))) {
            // Plain indices: a repeated one stays repeated (the einsum takes the diagonal).
            return Ok(Indexed {
                tensor: t,
                indices: dims
                    .into_iter()
                    .filter_map(|d| match d {
                        TermDim::Var(v) => Some(v),
                        _ => None,
                    })
                    .collect(),
            });
        }
        let exprs: Vec<IxExpr> = dims
            .into_iter()
            .map(|d| match d {
                TermDim::Var(v) => IxExpr::Var(v),
                TermDim::Computed(e) => e,
                TermDim::Const(k) => IxExpr::Const(k),
            })
            .collect();
        self.gather_term(&t, &exprs, &tname, term.span, eq)
    }

    /// Records the size of an index variable, or checks it against the size known already.
    fn note_size(
        &self,
        ixname: &str,
        size: usize,
        tname: &str,
        span: Span,
        eq: &mut Equation,
    ) -> Result<()> {
        match eq.sizes.get(ixname) {
            Some((known, owner)) if *known != size => {
                let shown = if ixname.starts_with(':') {
                    "a slice".to_string()
                } else {
                    format!("index `{ixname}`")
                };
                Err(RuntimeError::new(
                    format!("{shown} has size {known} in `{owner}` but size {size} in `{tname}`"),
                    span,
                ))
            }
            Some(_) => Ok(()),
            None => {
                eq.sizes
                    .insert(ixname.to_string(), (size, tname.to_string()));
                Ok(())
            }
        }
    }

    /// A term with index arithmetic: `t[e_1(v), ..., e_r(v)]` at every point `v` of the grid of
    /// its variables, 0 where a position falls outside the tensor. One gather: the flat
    /// position of every grid point is computed with int64 tensor ops, and positions out of
    /// range point at one zero appended to the flattened tensor.
    fn gather_term(
        &self,
        t: &Tensor,
        exprs: &[IxExpr],
        tname: &str,
        span: Span,
        eq: &Equation,
    ) -> Result<Indexed> {
        let mut vars = Vec::new();
        for e in exprs {
            e.vars(&mut vars);
        }
        let mut grid = Vec::with_capacity(vars.len());
        for v in &vars {
            match eq.sizes.get(v) {
                Some((n, _)) => grid.push((v.clone(), *n)),
                None => {
                    return Err(RuntimeError::new(
                        format!("the size of index `{v}` in `{tname}` is unknown"),
                        span,
                    ));
                }
            }
        }
        let shape = t.shape().to_vec();
        let numel: usize = shape.iter().product();
        let grid_shape: Vec<usize> = grid.iter().map(|g| g.1).collect();
        let err = tensor_err(span);
        let i64s = |k: i64| Tensor::from_i64(vec![k], &[]);
        let mut flat = i64s(0).map_err(&err)?;
        let mut valid = Tensor::from_bool(vec![true], &[]).map_err(&err)?;
        let mut stride = 1i64;
        for (dim, e) in exprs.iter().enumerate().rev() {
            let pos = e.on_grid(&grid).map_err(&err)?;
            let n = shape[dim] as i64;
            let inside = pos
                .binary(TBinary::Ge, &i64s(0).map_err(&err)?)
                .and_then(|a| a.binary(TBinary::And, &pos.binary(TBinary::Lt, &i64s(n)?)?))
                .map_err(&err)?;
            valid = valid.binary(TBinary::And, &inside).map_err(&err)?;
            flat = pos
                .binary(TBinary::Mul, &i64s(stride).map_err(&err)?)
                .and_then(|p| flat.binary(TBinary::Add, &p))
                .map_err(&err)?;
            stride *= n;
        }
        let index = Tensor::where_cond(&valid, &flat, &i64s(numel as i64).map_err(&err)?)
            .and_then(|x| x.broadcast_to(&grid_shape))
            .and_then(|x| x.contiguous())
            .and_then(|x| x.reshape(&[-1]))
            .map_err(&err)?;
        let padded = t
            .contiguous()
            .and_then(|x| x.reshape(&[-1]))
            .and_then(|x| Tensor::concat(&[x, Tensor::zeros(&[1], DType::F32)], 0))
            .map_err(&err)?;
        let tensor = padded
            .index_select(0, &index)
            .and_then(|x| x.reshape(&grid_shape.iter().map(|&n| n as isize).collect::<Vec<_>>()))
            .map_err(&err)?;
        Ok(Indexed {
            tensor,
            indices: vars,
        })
    }
}

/// A left-side dimension with index arithmetic: its variables (consecutive in `Equation::lhs`)
/// and the expression of them (`h*K + v`, `x/2`).
type LhsExpr = (Vec<String>, IxExpr);

/// One argument of `concat`: its value, its own indices (absent from the left side, in order of
/// first appearance) with their sizes, and where it is written.
struct ConcatPiece {
    part: Indexed,
    own: Vec<String>,
    own_sizes: Vec<usize>,
    span: Span,
}

/// How one dimension of a right-side term is indexed.
enum TermDim {
    Var(String),
    Const(i64),
    Computed(IxExpr),
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
                Some(t) if t.rank() == eq.lhs.len() && eq.lhs_exprs.iter().all(Option::is_none) => {
                    shape.push(t.shape()[pos])
                }
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
    let mut out = aligned
        .broadcast_to(&shape)
        .and_then(|t| t.contiguous())
        .and_then(|t| t.cast(DType::F32))
        .map_err(tensor_err(span))?;
    // Left-side arithmetic, last dimension first so that earlier axes keep their positions:
    // the axes of the dimension's variables merge into one, then move to their positions.
    let dims = eq.lhs_exprs.len();
    let mut first_axis = Vec::with_capacity(dims);
    let mut axis = 0;
    for e in &eq.lhs_exprs {
        first_axis.push(axis);
        axis += e.as_ref().map_or(1, |(vars, _)| vars.len());
    }
    for dim in (0..dims).rev() {
        let Some((vars, e)) = &eq.lhs_exprs[dim] else {
            continue;
        };
        let a = first_axis[dim];
        let err = tensor_err(span);
        let grid: Vec<(String, usize)> = vars
            .iter()
            .map(|v| (v.clone(), eq.sizes.get(v).map_or(1, |s| s.0)))
            .collect();
        let grid_shape: Vec<usize> = grid.iter().map(|g| g.1).collect();
        let merged: usize = grid_shape.iter().product();
        // (A left-side index expression always has a variable: constants are refused.)
        let targets = e
            .on_grid(&grid)
            .and_then(|t| t.broadcast_to(&grid_shape))
            .and_then(|t| t.contiguous())
            .map_err(&err)?
            .to_vec_i64();
        let mut shape: Vec<isize> = out.shape().iter().map(|&x| x as isize).collect();
        shape.splice(a..a + vars.len(), [merged as isize]);
        let flat = out.reshape(&shape).map_err(&err)?;
        let size = existing
            .filter(|t| t.rank() == dims)
            .map(|t| t.shape()[dim]);
        out = scatter_dim(&flat, a, &targets, size, eq.projection, span)?;
    }
    if let Some(n) = &eq.normalized
        && !eq.softmax_used
    {
        // Without softmax, `p'.` divides by the sum over `p'` (a zero sum stays zero).
        let dim = eq.lhs.iter().position(|ix| ix == n).unwrap_or(0) as isize;
        let err = tensor_err(span);
        let sum = out
            .reduce(ReduceOp::Sum, Some(&[dim]), true)
            .map_err(&err)?;
        let zero = sum
            .binary(TBinary::Eq, &Tensor::scalar(0.0, DType::F32))
            .map_err(&err)?;
        let safe =
            Tensor::where_cond(&zero, &Tensor::scalar(1.0, DType::F32), &sum).map_err(&err)?;
        out = out.binary(TBinary::Div, &safe).map_err(&err)?;
    }
    Ok(out)
}

/// Moves dimension `dim` of `r` to the positions `target` (one per element along `dim`) of
/// the left side: cells that several positions map to are summed (`=`, `+=`), maxed (`max=`)
/// or averaged (`avg=`); positions outside `0..size` are dropped; cells no position maps to
/// are 0. `size` is the existing tensor's, else one past the largest position.
///
/// The positions are grouped per cell on the host (index work only, O(n)); the data moves in
/// one gather: `r`, padded with one neutral slice (0, or -inf for max), is read at a
/// [cells, K] table of positions (K: the most positions one cell gets, the pad filling the
/// rest), then reduced over K. So x/2 pooling reads each element once.
fn scatter_dim(
    r: &Tensor,
    dim: usize,
    target: &[i64],
    size: Option<usize>,
    projection: ReduceOp,
    span: Span,
) -> Result<Tensor> {
    let err = tensor_err(span);
    let n = r.shape()[dim];
    let out_n = match size {
        Some(s) => s,
        None => target.iter().max().map_or(0, |m| (m + 1).max(0) as usize),
    };
    let mut groups: Vec<Vec<i64>> = vec![Vec::new(); out_n];
    for (v, &p) in target.iter().enumerate() {
        if p >= 0 && (p as usize) < out_n {
            groups[p as usize].push(v as i64);
        }
    }
    let k = groups.iter().map(Vec::len).max().unwrap_or(0).max(1);
    let mut table = Vec::with_capacity(out_n * k);
    for g in &groups {
        table.extend(g.iter().copied());
        table.extend(std::iter::repeat_n(n as i64, k - g.len()));
    }
    let device = r.device();
    let neutral = if projection == ReduceOp::Max {
        f64::NEG_INFINITY
    } else {
        0.0
    };
    let mut pad_shape = r.shape().to_vec();
    pad_shape[dim] = 1;
    let pad = Tensor::full(&pad_shape, neutral, DType::F32)
        .to_device(device)
        .map_err(&err)?;
    let index = Tensor::from_i64(table, &[out_n * k]).map_err(&err)?;
    let mut grouped_shape: Vec<isize> = r.shape().iter().map(|&x| x as isize).collect();
    grouped_shape[dim] = out_n as isize;
    grouped_shape.insert(dim + 1, k as isize);
    let reduce = if projection == ReduceOp::Max {
        ReduceOp::Max
    } else {
        ReduceOp::Sum
    };
    let mut out = Tensor::concat(&[r.clone(), pad], dim as isize)
        .and_then(|t| t.index_select(dim as isize, &index))
        .and_then(|t| t.reshape(&grouped_shape))
        .and_then(|t| t.reduce(reduce, Some(&[dim as isize + 1]), false))
        .map_err(&err)?;
    let mut along = vec![1isize; r.rank()];
    along[dim] = out_n as isize;
    let counts: Vec<f32> = groups.iter().map(|g| g.len() as f32).collect();
    match projection {
        ReduceOp::Max if counts.contains(&0.0) => {
            // Cells nothing lands in are 0, not -inf.
            let empty = Tensor::from_bool(counts.iter().map(|&c| c == 0.0).collect(), &[out_n])
                .and_then(|t| t.reshape(&along))
                .and_then(|t| t.to_device(device))
                .map_err(&err)?;
            out =
                Tensor::where_cond(&empty, &Tensor::scalar(0.0, DType::F32), &out).map_err(&err)?;
        }
        ReduceOp::Mean => {
            let denom = Tensor::from_f32(counts.iter().map(|&c| c.max(1.0)).collect(), &[out_n])
                .and_then(|t| t.reshape(&along))
                .and_then(|t| t.to_device(device))
                .map_err(&err)?;
            out = out.binary(TBinary::Div, &denom).map_err(&err)?;
        }
        _ => {}
    }
    Ok(out)
}

/// An index expression of a tensor equation: index variables and ints under `+ - * / %`.
#[derive(Clone, Debug)]
enum IxExpr {
    Var(String),
    Const(i64),
    Neg(Box<IxExpr>),
    Bin(TBinary, Box<IxExpr>, Box<IxExpr>),
}

impl IxExpr {
    /// `start + step * var`.
    fn affine(start: i64, step: i64, var: &str) -> IxExpr {
        let v = IxExpr::Var(var.to_string());
        let scaled = if step == 1 {
            v
        } else {
            IxExpr::Bin(TBinary::Mul, Box::new(IxExpr::Const(step)), Box::new(v))
        };
        if start == 0 {
            scaled
        } else {
            IxExpr::Bin(
                TBinary::Add,
                Box::new(IxExpr::Const(start)),
                Box::new(scaled),
            )
        }
    }

    fn is_zero(&self) -> bool {
        matches!(self, IxExpr::Const(0))
    }

    /// The distinct variables, in order of first appearance.
    fn vars(&self, out: &mut Vec<String>) {
        match self {
            IxExpr::Var(v) => {
                if !out.contains(v) {
                    out.push(v.clone());
                }
            }
            IxExpr::Const(_) => {}
            IxExpr::Neg(a) => a.vars(out),
            IxExpr::Bin(_, a, b) => {
                a.vars(out);
                b.vars(out);
            }
        }
    }

    /// The expression's value at every point of the grid spanned by `grid` (variables with
    /// their sizes): an int64 tensor of rank `grid.len()` that broadcasts to the grid (size 1
    /// along the variables it does not use).
    fn on_grid(&self, grid: &[(String, usize)]) -> tl_tensor::Result<Tensor> {
        match self {
            IxExpr::Var(v) => {
                let pos = grid.iter().position(|(g, _)| g == v).unwrap_or(0);
                let n = grid.get(pos).map_or(1, |g| g.1);
                let mut shape = vec![1isize; grid.len()];
                if !shape.is_empty() {
                    shape[pos] = n as isize;
                }
                host_arange(n)?.reshape(&shape)
            }
            IxExpr::Const(k) => Tensor::from_i64(vec![*k], &[])?.reshape(&vec![1isize; grid.len()]),
            IxExpr::Neg(a) => {
                Tensor::from_i64(vec![0], &[])?.binary(TBinary::Sub, &a.on_grid(grid)?)
            }
            IxExpr::Bin(op, a, b) => a.on_grid(grid)?.binary(*op, &b.on_grid(grid)?),
        }
    }
}

fn bad_index_arithmetic(span: Span) -> RuntimeError {
    RuntimeError::new(
        "an index in a tensor equation is an index variable, an int, or index arithmetic: `+ - * / %` of those (as in `t+1`, `x+dx`, `x/2`)",
        span,
    )
}

/// The indexed terms (`A[..]`) and relation atoms of a right side, in order.
fn collect_terms<'e>(e: &'e Expr, out: &mut Vec<&'e Expr>) {
    match &e.kind {
        ExprKind::Index { .. } => out.push(e),
        ExprKind::Binary { lhs, rhs, .. } => {
            collect_terms(lhs, out);
            collect_terms(rhs, out);
        }
        ExprKind::Unary { expr, .. } => collect_terms(expr, out),
        ExprKind::Call { args, .. } => {
            out.push(e);
            for a in args {
                collect_terms(&a.value, out);
            }
        }
        _ => {}
    }
}

/// True when an expression uses a virtual index `*t`.
pub(super) fn has_virtual(e: &Expr) -> bool {
    match &e.kind {
        ExprKind::Index { base, indices } => {
            has_virtual(base)
                || indices.iter().any(|ix| match ix {
                    IndexArg::Virtual(..) => true,
                    IndexArg::Expr(e) => has_virtual(e),
                    _ => false,
                })
        }
        ExprKind::Binary { lhs, rhs, .. } => has_virtual(lhs) || has_virtual(rhs),
        ExprKind::Unary { expr, .. } => has_virtual(expr),
        ExprKind::Call { args, .. } => args.iter().any(|a| has_virtual(&a.value)),
        _ => false,
    }
}

/// The virtual indices of an expression: `(name, offset, span of the term)`.
fn virtual_uses(e: &Expr, out: &mut Vec<(String, i64, Span, String)>) {
    match &e.kind {
        ExprKind::Index { base, indices } => {
            for ix in indices {
                if let IndexArg::Virtual(n, k) = ix {
                    out.push((n.clone(), *k, e.span, expr_label(base)));
                }
            }
        }
        ExprKind::Binary { lhs, rhs, .. } => {
            virtual_uses(lhs, out);
            virtual_uses(rhs, out);
        }
        ExprKind::Unary { expr, .. } => virtual_uses(expr, out),
        ExprKind::Call { args, .. } => {
            for a in args {
                virtual_uses(&a.value, out);
            }
        }
        _ => {}
    }
}

/// The expression with every virtual index dropped (`State[i, *t]` becomes `State[i]`).
fn strip_virtual(e: &Expr) -> Expr {
    let kind = match &e.kind {
        ExprKind::Index { base, indices } => ExprKind::Index {
            base: base.clone(),
            indices: indices
                .iter()
                .filter(|ix| !matches!(ix, IndexArg::Virtual(..)))
                .cloned()
                .collect(),
        },
        ExprKind::Binary { op, lhs, rhs } => ExprKind::Binary {
            op: *op,
            lhs: Box::new(strip_virtual(lhs)),
            rhs: Box::new(strip_virtual(rhs)),
        },
        ExprKind::Unary { op, expr } => ExprKind::Unary {
            op: *op,
            expr: Box::new(strip_virtual(expr)),
        },
        ExprKind::Call { callee, args } => ExprKind::Call {
            callee: callee.clone(),
            args: args
                .iter()
                .map(|a| tl_syntax::ast::Arg {
                    name: a.name.clone(),
                    value: strip_virtual(&a.value),
                    span: a.span,
                })
                .collect(),
        },
        other => other.clone(),
    };
    Expr { kind, span: e.span }
}

impl Interpreter {
    /// `State[i, *t+1] = f(State[j, *t], Input[k, t])`: the equation runs once for each
    /// t = 0, 1, ..., T-1 (T: the size of the dimension `t` indexes bare on the right side), with
    /// `t` bound to that int (so `Input[k, t]` selects) and every `*t` dropped: the tensor written
    /// keeps only its current value (a rolling buffer of one step), which is read at `*t` and
    /// replaced at `*t+1`. The tensor must have a value before (the state at t = 0).
    fn exec_virtual_equation(
        &mut self,
        target: &Expr,
        op: AssignOp,
        value: &Expr,
        span: Span,
    ) -> Result<()> {
        let mut lhs_uses = Vec::new();
        virtual_uses(target, &mut lhs_uses);
        let mut rhs_uses = Vec::new();
        virtual_uses(value, &mut rhs_uses);
        let Some((t, d, _, name)) = lhs_uses.first().cloned() else {
            // `has_virtual` also sees `*t` nested in an index expression, which has no meaning.
            let Some((n, _, sp, _)) = rhs_uses.first() else {
                return Err(RuntimeError::new(
                    "a virtual index `*t` can only be a whole index of a tensor (as in `State[i, *t+1]`), not part of an index expression",
                    span,
                ));
            };
            return Err(RuntimeError::new(
                format!(
                    "the virtual index `*{n}` is read here, but the left side has none (write it as `State[*{n}+1] = ...`)"
                ),
                *sp,
            ));
        };
        if lhs_uses.len() > 1 {
            return Err(unsupported(
                "more than one virtual index on the left side of a tensor equation",
                target.span,
            ));
        }
        for (n, k, sp, label) in &rhs_uses {
            if *n != t {
                return Err(unsupported(
                    &format!("two virtual indices (`*{t}` and `*{n}`) in one equation"),
                    *sp,
                ));
            }
            if *label == name && d - k != 1 {
                return Err(unsupported(
                    &format!(
                        "reading `{name}` at `{}` while writing it at `{}`: a virtual index keeps only the previous step (write `*{t}+1` on the left and `*{t}` on the right)",
                        show_virtual(&t, *k),
                        show_virtual(&t, d)
                    ),
                    *sp,
                ));
            }
        }
        if !matches!(self.lookup_var(&name), Some(Value::Tensor(_))) {
            return Err(RuntimeError::new(
                format!(
                    "`{name}` needs a value before this equation: a virtual index keeps only the current value of `{name}`, which starts as the value it has now"
                ),
                target.span,
            ));
        }
        let mut terms = Vec::new();
        collect_terms(value, &mut terms);
        let mut steps = None;
        for term in terms {
            if let ExprKind::Index { base, indices } = &term.kind
                && let ExprKind::Name(b) = &base.kind
                && let Some(Value::Tensor(tensor)) = self.lookup_var(b)
                && tensor.rank() == indices.len()
                && let Some(dim) = indices.iter().position(|ix| {
                    matches!(ix, IndexArg::Expr(Expr { kind: ExprKind::Name(n), .. }) if *n == t)
                })
            {
                steps = Some(tensor.shape()[dim]);
                break;
            }
        }
        let Some(steps) = steps else {
            return Err(RuntimeError::new(
                format!(
                    "the virtual index `*{t}` needs a range: index a tensor with `{t}` on the right side (as in `Input[k, {t}]`)"
                ),
                span,
            ));
        };
        let target = strip_virtual(target);
        let value = strip_virtual(value);
        for step in 0..steps {
            self.scopes.push(super::Scope::default());
            self.declare(&t, Value::Int(step as i64));
            let result = self.exec_equation(&target, op, &value, span);
            self.scopes.pop();
            result?;
        }
        Ok(())
    }

    /// A relation atom `R(x, y)` in a product: the 0/1 tensor of `R`'s tuples (facts and
    /// derived), indexed by its variables, each ranging over the entities of the embedding it
    /// indexes elsewhere in the equation. A symbol or int argument selects.
    fn eq_relation(
        &mut self,
        atom: &Expr,
        rel: &str,
        args: &[tl_syntax::ast::Arg],
        eq: &mut Equation,
    ) -> Result<Indexed> {
        // The distinct variables, in order; each column is one of them or a fixed value.
        let mut vars: Vec<String> = Vec::new();
        let mut cols = Vec::with_capacity(args.len());
        for a in args {
            let col = match &a.value.kind {
                ExprKind::Name(n) if eq.domains.contains_key(n) => {
                    let slot = match vars.iter().position(|v| v == n) {
                        Some(k) => k,
                        None => {
                            vars.push(n.clone());
                            vars.len() - 1
                        }
                    };
                    RelationColumn::Slot(slot)
                }
                ExprKind::Name(n) => match self.lookup_var(n) {
                    Some(Value::Str(s)) => RelationColumn::Fixed(s.to_string()),
                    Some(Value::Int(k)) => RelationColumn::Fixed(k.to_string()),
                    _ if eq.total_counts.get(n).copied().unwrap_or(0) > 1 || eq.lhs.contains(n) => {
                        return Err(RuntimeError::new(
                            format!(
                                "the relation variable `{n}` must index the entity dimension of an embedding in this equation (as in `Emb[{n}, i]`), which fixes its entities"
                            ),
                            a.value.span,
                        ));
                    }
                    _ => RelationColumn::Fixed(n.clone()),
                },
                ExprKind::Str(s) => RelationColumn::Fixed(s.clone()),
                ExprKind::Int(k) => RelationColumn::Fixed(k.to_string()),
                _ => {
                    return Err(RuntimeError::new(
                        "a relation atom in a tensor equation takes variables, symbols and ints",
                        a.value.span,
                    ));
                }
            };
            cols.push(col);
        }
        if let Some(arity) = self.logic.arity(rel)
            && arity != cols.len()
        {
            return Err(RuntimeError::new(
                format!("`{rel}` has {arity} arguments, not {}", cols.len()),
                atom.span,
            ));
        }
        let mut maps: Vec<HashMap<String, usize>> = Vec::with_capacity(vars.len());
        for v in &vars {
            let emb = eq.domains[v].clone();
            let map = self.embedding_entities(&emb).unwrap_or_default();
            self.note_size(v, map.len(), &emb, atom.span, eq)?;
            maps.push(map);
        }
        let tensor = self.relation_indicator(rel, &cols, &maps, None, atom.span)?;
        Ok(Indexed {
            tensor,
            indices: vars,
        })
    }

    /// The 0/1 tensor of `rel`'s tuples (facts and derived: forward chaining runs first) over
    /// the slots of `cols`: slot k ranges over the entities of `maps[k]` (its k-th dimension), a
    /// fixed column keeps only the tuples with that value. A tuple whose slot value is not an
    /// entity is left out, or, when `strict` names the embedding of each slot, an error.
    pub(crate) fn relation_indicator(
        &mut self,
        rel: &str,
        cols: &[RelationColumn],
        maps: &[HashMap<String, usize>],
        strict: Option<&[String]>,
        span: Span,
    ) -> Result<Tensor> {
        self.logic
            .run_forward()
            .map_err(|e| RuntimeError::new(e.to_string(), span))?;
        let sizes: Vec<usize> = maps.iter().map(HashMap::len).collect();
        let mut data = vec![0.0f32; sizes.iter().product()];
        'tuples: for tuple in self.logic.tuples(rel) {
            let mut at: Vec<Option<usize>> = vec![None; maps.len()];
            for (c, v) in cols.iter().zip(tuple) {
                let text = self.logic.render(v);
                match c {
                    RelationColumn::Fixed(s) if *s != text => continue 'tuples,
                    RelationColumn::Fixed(_) => {}
                    RelationColumn::Slot(k) => {
                        let Some(&row) = maps[*k].get(&text) else {
                            if let Some(embeddings) = strict {
                                return Err(RuntimeError::new(
                                    format!(
                                        "`{rel}` holds a tuple with `{text}`, which is not an entity of the embedding `{}`",
                                        embeddings[*k]
                                    ),
                                    span,
                                )
                                .with_note(
                                    "an embedding's entities are those it lists, or with `entities: auto` the symbols stated before its first use",
                                ));
                            }
                            continue 'tuples;
                        };
                        match at[*k] {
                            Some(prev) if prev != row => continue 'tuples,
                            _ => at[*k] = Some(row),
                        }
                    }
                }
            }
            let mut flat = 0;
            for (k, pos) in at.iter().enumerate() {
                flat = flat * sizes[k] + pos.unwrap_or(0);
            }
            data[flat] = 1.0;
        }
        Tensor::from_f32(data, &sizes)
            .and_then(|t| t.to_default_device())
            .map_err(tensor_err(span))
    }
}

/// One argument of a relation read as a tensor: a dimension (slot) of the result, or a fixed
/// value that selects.
pub(crate) enum RelationColumn {
    Slot(usize),
    Fixed(String),
}

/// `*t`, `*t+1`, `*t-1`.
fn show_virtual(t: &str, k: i64) -> String {
    match k {
        0 => format!("*{t}"),
        _ => format!("*{t}{k:+}"),
    }
}

/// `lnorm`: (x - mean) / sqrt(variance + 1e-5) along `dim` (no scale or shift).
fn layer_normalize(x: &Tensor, dim: isize) -> tl_tensor::Result<Tensor> {
    let mean = x.reduce(ReduceOp::Mean, Some(&[dim]), true)?;
    let centred = x.binary(TBinary::Sub, &mean)?;
    let var = centred
        .binary(TBinary::Mul, &centred)?
        .reduce(ReduceOp::Mean, Some(&[dim]), true)?;
    let denom = var
        .binary(TBinary::Add, &Tensor::scalar(1e-5, DType::F32))?
        .unary(TUnary::Sqrt)?;
    centred.binary(TBinary::Div, &denom)
}

/// `[0, 1, ..., n-1]` as an int64 tensor on the host (index arithmetic runs there; the index
/// tensors it makes follow the data to its device).
fn host_arange(n: usize) -> tl_tensor::Result<Tensor> {
    Tensor::from_i64((0..n as i64).collect(), &[n])
}
