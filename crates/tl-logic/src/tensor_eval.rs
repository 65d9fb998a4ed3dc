//! Dense evaluation of a stratum on the tensor runtime: relations as 0/1 tensors, rules as einsums.
//!
//! A stratum (a component of mutually recursive relations) whose relations are small and dense enough is
//! evaluated with `tl_tensor` ops instead of tuple joins, so it runs on whatever device is the default
//! (CPU, CUDA):
//!
//! - **Domain.** Every value occurring in the relations the stratum reads or defines, and every constant
//!   of its rules, is numbered `0..n`. A relation of arity `k` is an `f32` tensor of shape `[1, n, ..., n]`
//!   (a leading unit axis so that a nullary relation is an ordinary tensor) holding 1 where the tuple
//!   holds, 0 elsewhere.
//! - **Rules.** A rule body is one `einsum`: each positive atom is its relation's tensor (constants
//!   selected away, a repeated variable a diagonal, `_` a label summed away), `not R(..)` is the fixed
//!   tensor `1 - step(R)` over its variables (negated relations lie in lower strata), a comparison
//!   `X < Y` is a 0/1 mask over the domain, and head constants and repeated head variables come from
//!   one-hot and identity operands. The summed indices are the variables absent from the head; `step`
//!   (`> 0`) turns the counts back into a relation. Several rules for one head are a union: each rule
//!   only adds the cells not yet known.
//! - **Semi-naive.** Round 1 evaluates every rule on the full tensors; round `t > 1` evaluates, for each
//!   positive atom over a relation of the stratum, the body with that atom reading the delta (the cells
//!   new in round `t - 1`) and the others the full tensors as they were at the start of the round. The
//!   new cells are `step(body) * (1 - known)`. The only host read inside the loop is the count of new
//!   cells, once per round; the results (and their provenance) are read once at the end.
//! - **Provenance.** Two more tensors per relation record, for each derived cell, the round and the rule
//!   that first produced it (first rule in program order within a round, as in the tuple engine), so
//!   `explain` rebuilds derivations of dense results exactly as of tuple results.
//!
//! The choice ([`TensorMode`], [`DenseLimits`]): a stratum goes dense only if every tensor its evaluation
//! would create (relations, masks, einsum intermediates, estimated from the contraction order) has at most
//! `max_cells` cells, so a 100k-node graph never allocates a 100k x 100k tensor. In `Auto` mode it must
//! also have a domain of at least `min_domain` values (tiny strata are faster as tuples) and a density
//! (facts of the relations it reads and defines over their cells) of at least `min_density`.

use std::collections::{HashMap, HashSet};

use tl_tensor::{BinaryOp, DType, ReduceOp, Tensor, UnaryOp};

use crate::engine::{Engine, Strategy};
use crate::error::LogicError;
use crate::eval::{Arg, CLit, CRule, RelId};
use crate::relation::Prov;
use crate::rule::CmpOp;
use crate::strata::Component;
use crate::value::Id;

/// Whether forward chaining evaluates a stratum on tuples (sparse) or on dense tensors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TensorMode {
    /// Dense tensors for a stratum that fits [`DenseLimits::max_cells`], has at least
    /// [`DenseLimits::min_domain`] values and at least [`DenseLimits::min_density`] density; tuples
    /// otherwise.
    #[default]
    Auto,
    /// Always tuples.
    Sparse,
    /// Dense tensors for every stratum that fits [`DenseLimits::max_cells`], however small or sparse;
    /// tuples for the others.
    Dense,
}

impl TensorMode {
    /// `auto`, `sparse` or `dense`.
    pub fn parse(text: &str) -> Option<TensorMode> {
        match text.trim().to_ascii_lowercase().as_str() {
            "auto" => Some(TensorMode::Auto),
            "sparse" | "tuples" => Some(TensorMode::Sparse),
            "dense" | "tensors" => Some(TensorMode::Dense),
            _ => None,
        }
    }

    /// The mode named by the environment variable `TL_LOGIC_TENSORS` (`auto` when unset); an error
    /// naming the variable for any other value.
    pub fn from_env() -> Result<TensorMode, String> {
        match std::env::var("TL_LOGIC_TENSORS") {
            Err(_) => Ok(TensorMode::Auto),
            Ok(v) => TensorMode::parse(&v).ok_or_else(|| {
                format!("TL_LOGIC_TENSORS is `{v}`; expected `auto`, `sparse` or `dense`")
            }),
        }
    }
}

/// Size thresholds of dense evaluation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DenseLimits {
    /// The largest tensor (in cells) dense evaluation may create; 2^24 (64 MiB of f32) by default.
    pub max_cells: u64,
    /// `Auto` only: the smallest domain worth a tensor evaluation (64 by default).
    pub min_domain: usize,
    /// `Auto` only: the least fraction of true cells among the relations the stratum reads and
    /// defines (1/1024 by default).
    pub min_density: f64,
}

impl Default for DenseLimits {
    fn default() -> Self {
        DenseLimits {
            max_cells: 1 << 24,
            min_domain: 64,
            min_density: 1.0 / 1024.0,
        }
    }
}

/// How one stratum was evaluated, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct StratumReport {
    /// The relations the stratum defines.
    pub relations: Vec<String>,
    /// Whether it ran on dense tensors.
    pub dense: bool,
    /// Number of values numbered along each tensor axis.
    pub domain: usize,
    /// Cells of the largest tensor dense evaluation would create.
    pub largest_tensor: u128,
    /// True cells over all cells of the relations it reads and defines (before evaluation).
    pub density: f64,
    /// Fixed-point rounds run.
    pub rounds: u64,
    /// Why this representation was chosen.
    pub reason: String,
}

const LETTERS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
/// The unit axis label shared by every relation tensor and every output.
const UNIT: u8 = b'Z';
const MAX_LABELS: usize = 51;

/// An operand that does not change during the stratum's evaluation.
#[derive(Debug, Clone)]
enum Fixed {
    /// `not R(..)`: `1 - step(einsum(view -> vars))` of an input relation.
    Neg {
        rel: RelId,
        selects: Vec<(usize, usize)>,
        view: String,
        out: String,
    },
    /// `x op y` over two domain axes.
    Mask2(CmpOp),
    /// `x op c` (or `c op x` when `flipped`) over one axis; `c == None` compares `x` with itself.
    Mask1 {
        op: CmpOp,
        c: Option<usize>,
        flipped: bool,
    },
    /// One at the domain index of a constant.
    OneHot(usize),
    /// The identity matrix (a head variable repeated).
    Eye,
}

#[derive(Debug, Clone)]
enum Source {
    /// A positive body atom: its relation's tensor (full or delta) with constant axes selected.
    Atom {
        rel: RelId,
        /// (axis of the relation tensor, domain index), highest axis first.
        selects: Vec<(usize, usize)>,
    },
    Fixed(Fixed),
}

#[derive(Debug, Clone)]
struct Operand {
    source: Source,
    labels: String,
}

#[derive(Debug, Clone)]
struct DenseRule {
    head: RelId,
    source: u32,
    operands: Vec<Operand>,
    output: String,
    /// Operands over a relation of the stratum (semi-naive delta positions).
    recursive: Vec<usize>,
}

/// The dense evaluation of one stratum, planned before anything is allocated.
pub(crate) struct DensePlan {
    values: Vec<Id>,
    rules: Vec<DenseRule>,
}

/// Why a stratum stays on tuples (or the plan to run it on tensors), with the figures reported.
pub(crate) struct Decision {
    pub plan: Option<DensePlan>,
    pub report: StratumReport,
}

fn cells(n: usize, axes: usize) -> u128 {
    (n as u128).saturating_pow(axes as u32)
}

/// Sizes of the einsum's tensors, mirroring `Tensor::einsum`: each operand with its private labels
/// summed away, then left-to-right pairwise contraction keeping the labels needed later. Returns the
/// number of non-unit labels of the largest tensor.
fn einsum_peak(operands: &[String], output: &str) -> usize {
    let width = |labels: &HashSet<u8>| labels.iter().filter(|&&l| l != UNIT).count();
    let sets: Vec<HashSet<u8>> = operands.iter().map(|o| o.bytes().collect()).collect();
    let out: HashSet<u8> = output.bytes().collect();
    let mut peak = sets.iter().map(width).max().unwrap_or(0);
    let reduced: Vec<HashSet<u8>> = sets
        .iter()
        .enumerate()
        .map(|(i, s)| {
            s.iter()
                .copied()
                .filter(|l| {
                    out.contains(l)
                        || sets
                            .iter()
                            .enumerate()
                            .any(|(j, t)| j != i && t.contains(l))
                })
                .collect()
        })
        .collect();
    let mut acc = reduced[0].clone();
    for i in 1..reduced.len() {
        let keep = |l: &u8| out.contains(l) || reduced[i + 1..].iter().any(|t| t.contains(l));
        let a: HashSet<u8> = acc
            .iter()
            .copied()
            .filter(|l| keep(l) || reduced[i].contains(l))
            .collect();
        acc = a.union(&reduced[i]).copied().filter(|l| keep(l)).collect();
        peak = peak.max(width(&a)).max(width(&acc));
    }
    peak.max(width(&out))
}

/// Orders operands so each one shares labels with those before it where possible (a join order:
/// connected atoms first), which keeps einsum intermediates small.
fn order_operands(ops: Vec<Operand>) -> Vec<Operand> {
    let mut rest = ops;
    let first = rest
        .iter()
        .position(|o| matches!(o.source, Source::Atom { .. }))
        .unwrap_or(0);
    let mut out = vec![rest.remove(first)];
    let mut seen: HashSet<u8> = out[0].labels.bytes().collect();
    while !rest.is_empty() {
        let best = (0..rest.len())
            .max_by_key(|&i| {
                let labels: HashSet<u8> = rest[i].labels.bytes().filter(|&l| l != UNIT).collect();
                let shared = labels.iter().filter(|l| seen.contains(l)).count();
                let new = labels.len() - shared;
                // Most shared labels, then fewest new ones, then program order.
                (shared, usize::MAX - new, usize::MAX - i)
            })
            .expect("rest is not empty");
        let o = rest.remove(best);
        seen.extend(o.labels.bytes());
        out.push(o);
    }
    out
}

impl Engine {
    /// Decides how to evaluate a component and, for a dense one, plans its einsums. Allocates no tensor.
    pub(crate) fn decide(&self, rules: &[CRule], comp: &Component) -> Decision {
        let mut report = StratumReport {
            relations: comp.rels.iter().map(|&r| self.rel_name(r)).collect(),
            dense: false,
            domain: 0,
            largest_tensor: 0,
            density: 0.0,
            rounds: 0,
            reason: String::new(),
        };
        let sparse = |mut report: StratumReport, reason: String| {
            report.reason = reason;
            Decision { plan: None, report }
        };
        if self.tensor_mode == TensorMode::Sparse {
            return sparse(report, "tensor mode `sparse`".to_string());
        }
        // The relations read or defined, and the constants of the rules.
        let mut rels: Vec<RelId> = comp.rels.clone();
        let mut consts: Vec<Id> = Vec::new();
        let arg_const = |a: &Arg, consts: &mut Vec<Id>| {
            if let Arg::Const(c) = a {
                consts.push(*c);
            }
        };
        for &ri in &comp.rules {
            let rule = &rules[ri];
            rule.head
                .args
                .iter()
                .for_each(|a| arg_const(a, &mut consts));
            for lit in &rule.body {
                match lit {
                    CLit::Pos(a) | CLit::Neg(a) => {
                        if !rels.contains(&a.rel) {
                            rels.push(a.rel);
                        }
                        a.args.iter().for_each(|x| arg_const(x, &mut consts));
                    }
                    CLit::Cmp(l, _, r) => {
                        arg_const(l, &mut consts);
                        arg_const(r, &mut consts);
                    }
                }
            }
        }
        // An upper bound first: no domain can exceed the distinct values interned, nor the values the
        // relations can hold; a stratum far too large is rejected without scanning its tuples.
        let max_arity = rels.iter().map(|&r| self.store[r].arity).max().unwrap_or(0);
        let bound = (rels
            .iter()
            .map(|&r| self.store[r].len() * self.store[r].arity)
            .sum::<usize>()
            + consts.len())
        .min(self.interner.value_count());
        let limit = self.dense_limits.max_cells as u128;
        if max_arity >= 2 && cells(bound, max_arity) > limit {
            // The domain is at least the largest column's distinct values: count them to be sure.
            let mut largest = 0;
            for &r in &rels {
                let rel = &self.store[r];
                for c in 0..rel.arity {
                    let distinct: HashSet<Id> =
                        (0..rel.len() as u32).map(|i| rel.row(i)[c]).collect();
                    largest = largest.max(distinct.len());
                }
            }
            if cells(largest, max_arity) > limit {
                report.domain = largest;
                report.largest_tensor = cells(largest, max_arity);
                return sparse(
                    report,
                    format!(
                        "a relation of arity {max_arity} over at least {largest} values needs {} cells, more than {limit}",
                        cells(largest, max_arity)
                    ),
                );
            }
        }
        // The domain.
        let mut index: HashMap<Id, u32> = HashMap::new();
        let mut values: Vec<Id> = Vec::new();
        let mut add = |id: Id, values: &mut Vec<Id>| {
            index.entry(id).or_insert_with(|| {
                values.push(id);
                values.len() as u32 - 1
            });
        };
        let mut facts = 0u128;
        let mut all_cells = 0u128;
        for &r in &rels {
            let rel = &self.store[r];
            for i in 0..rel.len() as u32 {
                for &id in rel.row(i) {
                    add(id, &mut values);
                }
            }
            facts += rel.len() as u128;
        }
        for &c in &consts {
            add(c, &mut values);
        }
        let n = values.len();
        for &r in &rels {
            all_cells += cells(n, self.store[r].arity);
        }
        report.domain = n;
        report.density = if all_cells == 0 {
            0.0
        } else {
            facts as f64 / all_cells as f64
        };
        if n == 0 {
            return sparse(report, "empty domain".to_string());
        }
        // Plan every rule; the largest tensor decides.
        let mut planned = Vec::new();
        let mut peak_axes = rels.iter().map(|&r| self.store[r].arity).max().unwrap_or(0);
        for &ri in &comp.rules {
            match self.plan_dense_rule(&rules[ri], comp, &index) {
                Ok(Some((rule, axes))) => {
                    peak_axes = peak_axes.max(axes);
                    planned.push(rule);
                }
                Ok(None) => {} // a rule whose constant comparison is false never fires
                Err(why) => return sparse(report, why),
            }
        }
        report.largest_tensor = cells(n, peak_axes);
        if report.largest_tensor > limit {
            let why = format!(
                "its largest tensor would have {} cells ({n} values, {peak_axes} axes), more than {limit}",
                report.largest_tensor
            );
            return sparse(report, why);
        }
        if self.tensor_mode == TensorMode::Auto {
            let l = &self.dense_limits;
            if n < l.min_domain {
                let why = format!("{n} values, fewer than {} (auto)", l.min_domain);
                return sparse(report, why);
            }
            if report.density < l.min_density {
                let why = format!(
                    "density {:.2e} below {:.2e} (auto)",
                    report.density, l.min_density
                );
                return sparse(report, why);
            }
        }
        report.dense = true;
        report.reason = format!(
            "{n} values, largest tensor {} cells, density {:.2e}",
            report.largest_tensor, report.density
        );
        Decision {
            plan: Some(DensePlan {
                values,
                rules: planned,
            }),
            report,
        }
    }

    /// One rule as an einsum: its operands and output labels, and the widest tensor (in non-unit axes)
    /// it creates. `Ok(None)`: the rule can never fire.
    fn plan_dense_rule(
        &self,
        rule: &CRule,
        comp: &Component,
        index: &HashMap<Id, u32>,
    ) -> Result<Option<(DenseRule, usize)>, String> {
        let mut next = rule.nvars;
        let mut fresh = || {
            let l = next;
            next += 1;
            l
        };
        let letter = |i: usize| LETTERS[i] as char;
        let dom = |id: Id| index[&id] as usize;
        let mut ops: Vec<Operand> = Vec::new();
        let view = |args: &[Arg], fresh: &mut dyn FnMut() -> usize| {
            // Labels of a relation tensor with its constant axes selected away.
            let mut labels = String::from(UNIT as char);
            let mut selects = Vec::new();
            for (c, a) in args.iter().enumerate() {
                match *a {
                    Arg::Var(v) => labels.push(letter(v)),
                    Arg::Wild => labels.push(letter(fresh())),
                    Arg::Const(id) => selects.push((c + 1, dom(id))),
                }
            }
            selects.reverse();
            (labels, selects)
        };
        for lit in &rule.body {
            match lit {
                CLit::Pos(a) => {
                    let (labels, selects) = view(&a.args, &mut fresh);
                    ops.push(Operand {
                        source: Source::Atom {
                            rel: a.rel,
                            selects,
                        },
                        labels,
                    });
                }
                CLit::Neg(a) => {
                    let (labels, selects) = view(&a.args, &mut fresh);
                    let mut out = String::from(UNIT as char);
                    for v in a.vars() {
                        if !out.contains(letter(v)) {
                            out.push(letter(v));
                        }
                    }
                    ops.push(Operand {
                        source: Source::Fixed(Fixed::Neg {
                            rel: a.rel,
                            selects,
                            view: labels,
                            out: out.clone(),
                        }),
                        labels: out,
                    });
                }
                CLit::Cmp(l, op, r) => match (*l, *r) {
                    (Arg::Var(x), Arg::Var(y)) if x == y => ops.push(Operand {
                        source: Source::Fixed(Fixed::Mask1 {
                            op: *op,
                            c: None,
                            flipped: false,
                        }),
                        labels: letter(x).to_string(),
                    }),
                    (Arg::Var(x), Arg::Var(y)) => ops.push(Operand {
                        source: Source::Fixed(Fixed::Mask2(*op)),
                        labels: format!("{}{}", letter(x), letter(y)),
                    }),
                    (Arg::Var(x), Arg::Const(c)) | (Arg::Const(c), Arg::Var(x)) => {
                        ops.push(Operand {
                            source: Source::Fixed(Fixed::Mask1 {
                                op: *op,
                                c: Some(dom(c)),
                                flipped: matches!(l, Arg::Const(_)),
                            }),
                            labels: letter(x).to_string(),
                        })
                    }
                    (Arg::Const(a), Arg::Const(b)) => {
                        if !self.compare_holds(a, *op, b) {
                            return Ok(None);
                        }
                    }
                    _ => return Err("a comparison with `_`".to_string()),
                },
            }
        }
        // The head: one output label per column.
        let mut output = String::from(UNIT as char);
        for a in &rule.head.args {
            match *a {
                Arg::Var(v) if !output.contains(letter(v)) => output.push(letter(v)),
                Arg::Var(v) => {
                    let l = letter(fresh());
                    ops.push(Operand {
                        source: Source::Fixed(Fixed::Eye),
                        labels: format!("{}{l}", letter(v)),
                    });
                    output.push(l);
                }
                Arg::Const(c) => {
                    let l = letter(fresh());
                    ops.push(Operand {
                        source: Source::Fixed(Fixed::OneHot(dom(c))),
                        labels: l.to_string(),
                    });
                    output.push(l);
                }
                Arg::Wild => return Err("a head with `_`".to_string()),
            }
        }
        if next > MAX_LABELS {
            return Err(format!(
                "a rule with {next} index labels (einsum takes at most {MAX_LABELS})"
            ));
        }
        if !ops.iter().any(|o| o.labels.contains(UNIT as char)) {
            // Only comparisons and head constants: nothing carries the unit axis. Rare; tuples do it.
            return Err("a rule with no atom in its body".to_string());
        }
        let ops = order_operands(ops);
        let recursive = ops
            .iter()
            .enumerate()
            .filter(
                |(_, o)| matches!(o.source, Source::Atom { rel, .. } if comp.rels.contains(&rel)),
            )
            .map(|(i, _)| i)
            .collect();
        let labels: Vec<String> = ops.iter().map(|o| o.labels.clone()).collect();
        let mut axes = einsum_peak(&labels, &output);
        for o in &ops {
            if let Source::Fixed(Fixed::Neg { view, .. }) = &o.source {
                axes = axes.max(view.len() - 1);
            }
        }
        Ok(Some((
            DenseRule {
                head: rule.head.rel,
                source: rule.source,
                operands: ops,
                output,
                recursive,
            },
            axes,
        )))
    }

    fn compare_holds(&self, a: Id, op: CmpOp, b: Id) -> bool {
        let ord = self.interner.compare_ids(a, b);
        match op {
            CmpOp::Eq => a == b,
            CmpOp::Ne => a != b,
            CmpOp::Lt => ord.is_lt(),
            CmpOp::Le => ord.is_le(),
            CmpOp::Gt => ord.is_gt(),
            CmpOp::Ge => ord.is_ge(),
        }
    }

    /// A relation's current tuples as a `[1, n, ..., n]` 0/1 tensor on the default device.
    fn relation_tensor(
        &self,
        rel: RelId,
        plan: &DensePlan,
        index: &HashMap<Id, u32>,
    ) -> Result<Tensor, LogicError> {
        let r = &self.store[rel];
        let n = plan.values.len();
        let mut shape = vec![1];
        shape.extend(std::iter::repeat_n(n, r.arity));
        let mut data = vec![0f32; cells(n, r.arity) as usize];
        for i in 0..r.len() as u32 {
            let flat = r
                .row(i)
                .iter()
                .fold(0usize, |acc, id| acc * n + index[id] as usize);
            data[flat] = 1.0;
        }
        host_to_device(data, &shape)
    }

    fn fixed_tensor(
        &self,
        fixed: &Fixed,
        plan: &DensePlan,
        inputs: &HashMap<RelId, Tensor>,
    ) -> Result<Tensor, LogicError> {
        let n = plan.values.len();
        let v = &plan.values;
        match fixed {
            Fixed::Neg {
                rel,
                selects,
                view,
                out,
            } => {
                let t = select_all(&inputs[rel], selects)?;
                let t = if view == out {
                    t
                } else {
                    Tensor::einsum(&format!("{view}->{out}"), &[&t]).map_err(tensor_err)?
                };
                let t = t.unary(UnaryOp::Step).map_err(tensor_err)?;
                one_minus(&t)
            }
            Fixed::Mask2(op) => {
                let mut data = vec![0f32; n * n];
                for i in 0..n {
                    for j in 0..n {
                        data[i * n + j] = f32::from(u8::from(self.compare_holds(v[i], *op, v[j])));
                    }
                }
                host_to_device(data, &[n, n])
            }
            Fixed::Mask1 { op, c, flipped } => {
                let data = (0..n)
                    .map(|i| {
                        let (a, b) = match c {
                            None => (v[i], v[i]),
                            Some(c) if *flipped => (v[*c], v[i]),
                            Some(c) => (v[i], v[*c]),
                        };
                        f32::from(u8::from(self.compare_holds(a, *op, b)))
                    })
                    .collect();
                host_to_device(data, &[n])
            }
            Fixed::OneHot(i) => {
                let mut data = vec![0f32; n];
                data[*i] = 1.0;
                host_to_device(data, &[n])
            }
            Fixed::Eye => {
                let mut data = vec![0f32; n * n];
                for i in 0..n {
                    data[i * n + i] = 1.0;
                }
                host_to_device(data, &[n, n])
            }
        }
    }

    /// Evaluates one component on dense tensors (see the module documentation) and stores the derived
    /// tuples with their provenance. Returns the number of rounds.
    pub(crate) fn evaluate_dense(
        &mut self,
        comp: &Component,
        plan: &DensePlan,
    ) -> Result<u64, LogicError> {
        let n = plan.values.len();
        let index: HashMap<Id, u32> = plan
            .values
            .iter()
            .enumerate()
            .map(|(i, &id)| (id, i as u32))
            .collect();
        // Every relation read or defined, as it is now.
        let mut inputs: HashMap<RelId, Tensor> = HashMap::new();
        let mut wanted: Vec<RelId> = comp.rels.clone();
        for r in &plan.rules {
            wanted.push(r.head);
            for o in &r.operands {
                match &o.source {
                    Source::Atom { rel, .. } | Source::Fixed(Fixed::Neg { rel, .. }) => {
                        wanted.push(*rel)
                    }
                    _ => {}
                }
            }
        }
        for rel in wanted {
            if let std::collections::hash_map::Entry::Vacant(e) = inputs.entry(rel) {
                e.insert(self.relation_tensor(rel, plan, &index)?);
            }
        }
        let fixed: Vec<Vec<Option<Tensor>>> = plan
            .rules
            .iter()
            .map(|r| {
                r.operands
                    .iter()
                    .map(|o| match &o.source {
                        Source::Fixed(f) => self.fixed_tensor(f, plan, &inputs).map(Some),
                        Source::Atom { .. } => Ok(None),
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .collect::<Result<_, _>>()?;
        let specs: Vec<String> = plan
            .rules
            .iter()
            .map(|r| {
                let ins: Vec<&str> = r.operands.iter().map(|o| o.labels.as_str()).collect();
                format!("{}->{}", ins.join(","), r.output)
            })
            .collect();
        let shape_of = |rel: RelId| {
            let mut s = vec![1];
            s.extend(std::iter::repeat_n(n, self.store[rel].arity));
            s
        };
        let mut full: HashMap<RelId, Tensor> =
            comp.rels.iter().map(|&r| (r, inputs[&r].clone())).collect();
        let mut delta: HashMap<RelId, Tensor> = HashMap::new();
        let mut rule_of: HashMap<RelId, Tensor> = HashMap::new();
        let mut round_of: HashMap<RelId, Tensor> = HashMap::new();
        for &r in &comp.rels {
            rule_of.insert(r, Tensor::zeros(&shape_of(r), DType::F32));
            round_of.insert(r, Tensor::zeros(&shape_of(r), DType::F32));
        }
        let naive = self.strategy() == Strategy::Naive;
        let mut t = 0u64;
        loop {
            t += 1;
            let old = full.clone();
            let mut known = full.clone();
            let mut new: HashMap<RelId, Tensor> = HashMap::new();
            for (ri, rule) in plan.rules.iter().enumerate() {
                // Which operand reads the delta, for each evaluation of this rule this round.
                let variants: Vec<Option<usize>> =
                    if t == 1 || (naive && !rule.recursive.is_empty()) {
                        vec![None]
                    } else if naive {
                        vec![]
                    } else {
                        rule.recursive.iter().map(|&k| Some(k)).collect()
                    };
                for variant in variants {
                    let mut operands: Vec<Tensor> = Vec::with_capacity(rule.operands.len());
                    for (k, o) in rule.operands.iter().enumerate() {
                        operands.push(match &o.source {
                            Source::Fixed(_) => fixed[ri][k].clone().expect("fixed operand built"),
                            Source::Atom { rel, selects } => {
                                let base = if variant == Some(k) {
                                    &delta[rel]
                                } else if let Some(f) = old.get(rel) {
                                    f
                                } else {
                                    &inputs[rel]
                                };
                                select_all(base, selects)?
                            }
                        });
                    }
                    let refs: Vec<&Tensor> = operands.iter().collect();
                    let body = Tensor::einsum(&specs[ri], &refs)
                        .and_then(|b| b.unary(UnaryOp::Step))
                        .map_err(tensor_err)?;
                    self.stats.rule_evaluations += 1;
                    let h = rule.head;
                    let fresh = body
                        .binary(BinaryOp::Mul, &one_minus(&known[&h])?)
                        .map_err(tensor_err)?;
                    known.insert(h, add(&known[&h], &fresh)?);
                    let tagged = fresh
                        .binary(BinaryOp::Mul, &scalar(ri as f64 + 1.0))
                        .map_err(tensor_err)?;
                    rule_of.insert(h, add(&rule_of[&h], &tagged)?);
                    let sum = match new.remove(&h) {
                        Some(prev) => add(&prev, &fresh)?,
                        None => fresh,
                    };
                    new.insert(h, sum);
                }
            }
            // One host read per round: the number of new cells.
            let mut total: Option<Tensor> = None;
            for (&h, cells_new) in &new {
                let stamped = cells_new
                    .binary(BinaryOp::Mul, &scalar(t as f64))
                    .map_err(tensor_err)?;
                round_of.insert(h, add(&round_of[&h], &stamped)?);
                let s = cells_new
                    .reduce(ReduceOp::Sum, None, false)
                    .map_err(tensor_err)?;
                total = Some(match total {
                    Some(acc) => add(&acc, &s)?,
                    None => s,
                });
            }
            full = known;
            delta = new;
            let count = match &total {
                Some(s) => s.to_scalar_f64().map_err(tensor_err)?,
                None => 0.0,
            };
            if count <= 0.0 {
                break;
            }
        }
        // Results: derived cells with their round and rule, inserted round by round.
        let base_round = self.round;
        let mut derived = 0u64;
        for &h in &comp.rels {
            let rounds = round_of[&h].to_vec_f32();
            let rules = rule_of[&h].to_vec_f32();
            let arity = self.store[h].arity;
            let mut cells_new: Vec<(u32, usize)> = rounds
                .iter()
                .enumerate()
                .filter(|(_, r)| **r > 0.0)
                .map(|(i, r)| (*r as u32, i))
                .collect();
            cells_new.sort_unstable();
            let mut tuple = vec![0 as Id; arity];
            for (round, cell) in cells_new {
                let mut rest = cell;
                for c in (0..arity).rev() {
                    tuple[c] = plan.values[rest % n];
                    rest /= n;
                }
                let local = rules[cell] as usize;
                let Some(rule) = local.checked_sub(1).and_then(|i| plan.rules.get(i)) else {
                    return Err(LogicError::Internal(format!(
                        "dense cell of `{}` without a rule",
                        self.rel_name(h)
                    )));
                };
                let prov = Prov {
                    rule: rule.source,
                    round: base_round + round,
                };
                derived += u64::from(self.store[h].insert(&tuple, prov));
            }
        }
        self.round += t as u32;
        self.stats.rounds += t;
        self.stats.tuples_derived += derived;
        Ok(t)
    }
}

fn tensor_err(e: tl_tensor::TensorError) -> LogicError {
    LogicError::Tensor(e.to_string())
}

fn host_to_device(data: Vec<f32>, shape: &[usize]) -> Result<Tensor, LogicError> {
    Tensor::from_f32(data, shape)
        .and_then(|t| t.to_default_device())
        .map_err(tensor_err)
}

fn scalar(v: f64) -> Tensor {
    Tensor::full(&[], v, DType::F32)
}

fn add(a: &Tensor, b: &Tensor) -> Result<Tensor, LogicError> {
    a.binary(BinaryOp::Add, b).map_err(tensor_err)
}

fn one_minus(t: &Tensor) -> Result<Tensor, LogicError> {
    scalar(1.0).binary(BinaryOp::Sub, t).map_err(tensor_err)
}

fn select_all(t: &Tensor, selects: &[(usize, usize)]) -> Result<Tensor, LogicError> {
    let mut t = t.clone();
    for &(axis, i) in selects {
        t = t.select(axis as isize, i as isize).map_err(tensor_err)?;
    }
    Ok(t)
}
