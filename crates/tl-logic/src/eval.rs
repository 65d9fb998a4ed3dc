//! Compiled rules, join planning and the nested-loop index join that evaluates one rule body.
//!
//! A rule body is a join (the tensor product summed over the variables absent from the head); the head
//! projection with deduplication is the `step`. Each evaluation is planned like a database query: the
//! delta atom (or the smallest relation) first, then repeatedly the smallest atom sharing a bound variable,
//! each probed through a hash index on its bound columns; negations and comparisons are checked as soon as
//! their variables are bound.

use crate::relation::{NONE, Relation};
use crate::rule::CmpOp;
use crate::value::{Id, Interner};

pub(crate) type RelId = usize;

/// An argument after compilation: a variable slot, an interned constant, or `_`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Arg {
    Var(usize),
    Const(Id),
    Wild,
}

#[derive(Debug, Clone)]
pub(crate) struct CAtom {
    pub rel: RelId,
    pub args: Vec<Arg>,
}

impl CAtom {
    pub fn vars(&self) -> impl Iterator<Item = usize> + '_ {
        self.args.iter().filter_map(|a| match a {
            Arg::Var(v) => Some(*v),
            _ => None,
        })
    }
}

#[derive(Debug, Clone)]
pub(crate) enum CLit {
    Pos(CAtom),
    Neg(CAtom),
    Cmp(Arg, CmpOp, Arg),
}

impl CLit {
    fn vars(&self) -> Vec<usize> {
        match self {
            CLit::Pos(a) | CLit::Neg(a) => a.vars().collect(),
            CLit::Cmp(l, _, r) => [l, r]
                .iter()
                .filter_map(|a| match a {
                    Arg::Var(v) => Some(*v),
                    _ => None,
                })
                .collect(),
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct CRule {
    pub head: CAtom,
    pub body: Vec<CLit>,
    pub nvars: usize,
    /// Index of the source rule in the engine (the provenance id); `NONE` for internal rewritten rules.
    pub source: u32,
}

/// The row range of an atom's relation one evaluation may read: `[lo, hi)`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Range {
    pub lo: u32,
    pub hi: u32,
}

/// Ranges that let every positive atom of `body` read its whole relation (negations and
/// comparisons read no rows).
pub(crate) fn full_ranges(store: &[Relation], body: &[CLit]) -> Vec<Range> {
    body.iter()
        .map(|l| match l {
            CLit::Pos(a) => Range {
                lo: 0,
                hi: store[a.rel].len() as u32,
            },
            _ => Range { lo: 0, hi: 0 },
        })
        .collect()
}

#[derive(Debug, Clone, Copy)]
enum Access {
    Scan,
    /// All columns bound: one probe of the relation's tuple set.
    Exact,
    Index(usize),
}

#[derive(Debug, Clone)]
struct Step {
    /// Position of the literal in the rule body.
    lit: usize,
    rel: RelId,
    range: Range,
    access: Access,
    /// Bound arguments forming the lookup key, in column order (Index) or for every column (Exact).
    key: Vec<Arg>,
    /// Columns binding a variable for the first time.
    binds: Vec<(usize, usize)>,
    /// Columns that must equal an earlier column of the same row (a variable repeated in the atom).
    same: Vec<(usize, usize)>,
    /// Filters (negations, comparisons) first decidable after this step.
    filters: Vec<Filter>,
}

#[derive(Debug, Clone)]
enum Filter {
    Cmp(Arg, CmpOp, Arg),
    /// `V == e` binding `V`.
    Assign(usize, Arg),
    /// `not R(...)`: absent when no row matches the bound (non-wildcard) columns.
    Neg {
        rel: RelId,
        access: Access,
        key: Vec<Arg>,
    },
}

#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pre_filters: Vec<Filter>,
    steps: Vec<Step>,
    /// Only rows derived before this round may be used (explanations); `u32::MAX` when unrestricted.
    pub max_round: u32,
}

impl Plan {
    /// Body literal positions of the positive atoms in join order.
    pub fn step_literals(&self) -> Vec<usize> {
        self.steps.iter().map(|s| s.lit).collect()
    }

    /// Each join step: its body literal, the rows it may read, and how it reads them (`scan`,
    /// `index on columns 1` (0-based columns), or `probe` when every column is bound).
    pub fn describe(&self, store: &[Relation]) -> Vec<(usize, u32, String)> {
        self.steps
            .iter()
            .map(|s| {
                let how = match s.access {
                    Access::Scan => "scan".to_string(),
                    Access::Exact => "probe".to_string(),
                    Access::Index(ix) => {
                        let cols: Vec<String> = store[s.rel].indexes[ix]
                            .cols
                            .iter()
                            .map(usize::to_string)
                            .collect();
                        format!(
                            "index on column{} {}",
                            if cols.len() == 1 { "" } else { "s" },
                            cols.join(", ")
                        )
                    }
                };
                (s.lit, s.range.hi.saturating_sub(s.range.lo), how)
            })
            .collect()
    }
}

/// Work counters, cumulative over an engine's life until reset.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Fixed-point rounds run (over all strata and evaluations).
    pub rounds: u64,
    /// Rule bodies evaluated (one per semi-naive variant per round).
    pub rule_evaluations: u64,
    /// Candidate rows read from relations during joins.
    pub rows_examined: u64,
    /// Hash-index and tuple-set probes during joins.
    pub index_probes: u64,
    /// Head tuples produced by joins, duplicates included.
    pub tuples_emitted: u64,
    /// Head tuples that were new.
    pub tuples_derived: u64,
}

fn filter_for(store: &mut [Relation], lit: &CLit, bound: &[bool]) -> Filter {
    match lit {
        CLit::Cmp(l, op, r) => Filter::Cmp(*l, *op, *r),
        CLit::Neg(atom) => {
            let (access, key) = access_for(store, atom, bound);
            Filter::Neg {
                rel: atom.rel,
                access,
                key,
            }
        }
        CLit::Pos(_) => unreachable!("positive atoms are join steps"),
    }
}

fn is_bound(arg: Arg, bound: &[bool]) -> bool {
    match arg {
        Arg::Const(_) => true,
        Arg::Var(v) => bound[v],
        Arg::Wild => false,
    }
}

/// How to read an atom given the variables bound so far (repeated new variables are not key columns).
fn access_for(store: &mut [Relation], atom: &CAtom, bound: &[bool]) -> (Access, Vec<Arg>) {
    let cols: Vec<usize> = (0..atom.args.len())
        .filter(|&c| is_bound(atom.args[c], bound))
        .collect();
    let key: Vec<Arg> = cols.iter().map(|&c| atom.args[c]).collect();
    if cols.is_empty() {
        (Access::Scan, key)
    } else if cols.len() == atom.args.len() {
        (Access::Exact, key)
    } else {
        (Access::Index(store[atom.rel].index_on(&cols)), key)
    }
}

/// Removes from `pending` the negations and comparisons decidable with the variables bound so far, and
/// the equalities `V == e` that can bind an unbound `V` (which then counts as bound), as filters.
fn take_ready(
    store: &mut [Relation],
    rule: &CRule,
    pending: &mut Vec<usize>,
    bound: &mut [bool],
) -> Vec<Filter> {
    let mut out = Vec::new();
    loop {
        let mut progressed = false;
        let mut k = 0;
        while k < pending.len() {
            let lit = &rule.body[pending[k]];
            if lit.vars().iter().all(|&v| bound[v]) {
                out.push(filter_for(store, lit, bound));
            } else if let Some((v, value)) = assignment(lit, bound) {
                out.push(Filter::Assign(v, value));
                bound[v] = true;
                progressed = true;
            } else {
                k += 1;
                continue;
            }
            pending.remove(k);
        }
        if !progressed {
            return out;
        }
    }
}

/// `V == e` (or `e == V`) with `V` unbound and `e` a constant or bound variable: binds `V` to `e`.
pub(crate) fn assignment(lit: &CLit, bound: &[bool]) -> Option<(usize, Arg)> {
    let CLit::Cmp(l, CmpOp::Eq, r) = lit else {
        return None;
    };
    match (*l, *r) {
        (Arg::Var(v), other) | (other, Arg::Var(v)) if !bound[v] && is_bound(other, bound) => {
            Some((v, other))
        }
        _ => None,
    }
}

/// Plans one evaluation of `rule`. `ranges[i]` is the row range of body literal `i` (positive atoms only),
/// `first` forces the join to start with that literal (the delta), `prebound` marks variables bound before
/// the join (an explanation binds the head).
pub(crate) fn plan(
    store: &mut [Relation],
    rule: &CRule,
    ranges: &[Range],
    first: Option<usize>,
    prebound: &[bool],
) -> Plan {
    let mut bound = prebound.to_vec();
    let mut pending: Vec<usize> = (0..rule.body.len())
        .filter(|&i| !matches!(rule.body[i], CLit::Pos(_)))
        .collect();
    let mut remaining: Vec<usize> = (0..rule.body.len())
        .filter(|&i| matches!(rule.body[i], CLit::Pos(_)))
        .collect();

    let pre_filters = take_ready(store, rule, &mut pending, &mut bound);

    let mut steps = Vec::new();
    while !remaining.is_empty() {
        let pick = match first.filter(|f| steps.is_empty() && remaining.contains(f)) {
            Some(f) => f,
            None => *remaining
                .iter()
                .min_by_key(|&&i| {
                    let CLit::Pos(atom) = &rule.body[i] else {
                        unreachable!()
                    };
                    let nbound = atom.args.iter().filter(|a| is_bound(**a, &bound)).count();
                    let size = ranges[i].hi.saturating_sub(ranges[i].lo);
                    // Connected atoms (sharing a bound value) before cross products, then the smallest.
                    (nbound == 0, size, usize::MAX - nbound)
                })
                .expect("remaining is not empty"),
        };
        remaining.retain(|&i| i != pick);
        let CLit::Pos(atom) = &rule.body[pick] else {
            unreachable!()
        };
        let (access, key) = access_for(store, atom, &bound);
        let mut binds = Vec::new();
        let mut same = Vec::new();
        for (c, arg) in atom.args.iter().enumerate() {
            if let Arg::Var(v) = *arg
                && !bound[v]
            {
                match binds.iter().find(|&&(_, bv)| bv == v) {
                    Some(&(first_col, _)) => same.push((c, first_col)),
                    None => binds.push((c, v)),
                }
            }
        }
        for &(_, v) in &binds {
            bound[v] = true;
        }
        let filters = take_ready(store, rule, &mut pending, &mut bound);
        steps.push(Step {
            lit: pick,
            rel: atom.rel,
            range: ranges[pick],
            access,
            key,
            binds,
            same,
            filters,
        });
    }
    Plan {
        pre_filters,
        steps,
        max_round: u32::MAX,
    }
}

/// Runs a plan. `emit(binding, rows)` receives each satisfying binding and the row chosen at each step;
/// returning `true` stops the search.
pub(crate) fn execute(
    store: &[Relation],
    interner: &Interner,
    plan: &Plan,
    binding: &mut [Id],
    stats: &mut Stats,
    emit: &mut dyn FnMut(&[Id], &[u32]) -> bool,
) {
    let mut ex = Exec {
        store,
        interner,
        plan,
        stats,
        rows: vec![NONE; plan.steps.len()],
        keys: plan
            .steps
            .iter()
            .map(|s| Vec::with_capacity(s.key.len()))
            .collect(),
        stop: false,
    };
    stats_bump(&mut ex.stats.rule_evaluations);
    if plan.pre_filters.iter().all(|f| ex.filter_holds(f, binding)) {
        ex.step(0, binding, emit);
    }
}

fn stats_bump(c: &mut u64) {
    *c += 1;
}

struct Exec<'a> {
    store: &'a [Relation],
    interner: &'a Interner,
    plan: &'a Plan,
    stats: &'a mut Stats,
    rows: Vec<u32>,
    keys: Vec<Vec<Id>>,
    stop: bool,
}

fn arg_value(arg: Arg, binding: &[Id]) -> Id {
    match arg {
        Arg::Var(v) => binding[v],
        Arg::Const(c) => c,
        Arg::Wild => unreachable!("wildcards are never key columns"),
    }
}

impl Exec<'_> {
    fn filter_holds(&mut self, f: &Filter, binding: &mut [Id]) -> bool {
        match f {
            Filter::Assign(v, value) => {
                binding[*v] = arg_value(*value, binding);
                true
            }
            Filter::Cmp(l, op, r) => {
                let (a, b) = (arg_value(*l, binding), arg_value(*r, binding));
                match op {
                    CmpOp::Eq => a == b,
                    CmpOp::Ne => a != b,
                    _ => {
                        let ord = self.interner.compare_ids(a, b);
                        match op {
                            CmpOp::Lt => ord.is_lt(),
                            CmpOp::Le => ord.is_le(),
                            CmpOp::Gt => ord.is_gt(),
                            _ => ord.is_ge(),
                        }
                    }
                }
            }
            Filter::Neg { rel, access, key } => {
                let rel = &self.store[*rel];
                let k: Vec<Id> = key.iter().map(|&a| arg_value(a, binding)).collect();
                self.stats.index_probes += 1;
                let present = match access {
                    Access::Scan => rel.len() > 0,
                    Access::Exact => rel.find(&k).is_some(),
                    Access::Index(ix) => rel.chain_head(*ix, &k) != NONE,
                };
                !present
            }
        }
    }

    fn step(&mut self, k: usize, binding: &mut [Id], emit: &mut dyn FnMut(&[Id], &[u32]) -> bool) {
        if k == self.plan.steps.len() {
            self.stats.tuples_emitted += 1;
            if emit(binding, &self.rows) {
                self.stop = true;
            }
            return;
        }
        let step = &self.plan.steps[k];
        let rel = &self.store[step.rel];
        let Range { lo, hi } = step.range;
        match step.access {
            Access::Scan => {
                for r in lo..hi.min(rel.len() as u32) {
                    self.try_row(k, r, binding, emit);
                    if self.stop {
                        return;
                    }
                }
            }
            Access::Exact => {
                let mut key = std::mem::take(&mut self.keys[k]);
                key.clear();
                key.extend(step.key.iter().map(|&a| arg_value(a, binding)));
                self.stats.index_probes += 1;
                if let Some(r) = rel.find(&key)
                    && r >= lo
                    && r < hi
                {
                    self.try_row(k, r, binding, emit);
                }
                self.keys[k] = key;
            }
            Access::Index(ix) => {
                let mut key = std::mem::take(&mut self.keys[k]);
                key.clear();
                key.extend(step.key.iter().map(|&a| arg_value(a, binding)));
                self.stats.index_probes += 1;
                // Chains run newest row first: skip rows past the range, stop below it.
                let mut r = rel.chain_head(ix, &key);
                while r != NONE && r >= hi {
                    r = rel.next_in_chain(ix, r);
                }
                while r != NONE && r >= lo {
                    self.try_row(k, r, binding, emit);
                    if self.stop {
                        break;
                    }
                    r = rel.next_in_chain(ix, r);
                }
                self.keys[k] = key;
            }
        }
    }

    fn try_row(
        &mut self,
        k: usize,
        r: u32,
        binding: &mut [Id],
        emit: &mut dyn FnMut(&[Id], &[u32]) -> bool,
    ) {
        self.stats.rows_examined += 1;
        let step = &self.plan.steps[k];
        let rel = &self.store[step.rel];
        if rel.prov[r as usize].round >= self.plan.max_round {
            return;
        }
        let row = rel.row(r);
        if step.same.iter().any(|&(c, c0)| row[c] != row[c0]) {
            return;
        }
        for &(c, v) in &step.binds {
            binding[v] = row[c];
        }
        for f in &step.filters {
            if !self.filter_holds(f, binding) {
                return;
            }
        }
        self.rows[k] = r;
        self.step(k + 1, binding, emit);
    }
}
