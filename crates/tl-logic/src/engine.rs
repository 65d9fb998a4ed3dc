//! The engine: relations, facts, rules, forward chaining (semi-naive, stratum by stratum) and queries.

use std::collections::{HashMap, HashSet};

use crate::answers::Answers;
use crate::error::LogicError;
use crate::eval::{self, Arg, CAtom, CLit, CRule, Plan, Range, RelId, Stats};
use crate::relation::{NONE, Prov, Relation};
use crate::rule::{Atom, CmpOp, Literal, Rule, Term};
use crate::strata;
use crate::tensor_eval::{DenseLimits, StratumReport, TensorMode};
use crate::value::{Domain, Id, Interner, Symbol, Value};

/// How forward chaining iterates to the fixed point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strategy {
    /// Each round joins only the tuples new in the previous round (one delta per recursive body atom).
    #[default]
    SemiNaive,
    /// Each round re-joins everything (for comparison and testing).
    Naive,
}

/// A Datalog database: relations stored as sparse Boolean tensors, facts, rules and their evaluation.
#[derive(Debug, Default)]
pub struct Engine {
    pub(crate) interner: Interner,
    pub(crate) store: Vec<Relation>,
    pub(crate) by_name: HashMap<String, RelId>,
    /// Whether a relation was declared, given facts or defined by rules (otherwise only mentioned).
    pub(crate) known: Vec<bool>,
    pub(crate) rules: Vec<Rule>,
    pub(crate) compiled: Vec<CRule>,
    /// Relations headed by some rule.
    pub(crate) defined: Vec<bool>,
    /// Facts or rules changed since derived tuples were computed: derived tuples must be dropped.
    pub(crate) stale: bool,
    /// Global round counter; a derived row records the round that produced it.
    pub(crate) round: u32,
    pub(crate) stats: Stats,
    strategy: Strategy,
    pub(crate) tensor_mode: TensorMode,
    pub(crate) dense_limits: DenseLimits,
    /// How each stratum of the last evaluation ran (tuples or tensors) and why.
    reports: Vec<StratumReport>,
}

impl Engine {
    pub fn new() -> Self {
        Engine::default()
    }

    // ----- symbols and values -----

    /// Interns a symbol name.
    pub fn intern(&mut self, name: &str) -> Symbol {
        self.interner.symbol(name)
    }

    /// A symbol value (interning the name).
    pub fn sym(&mut self, name: &str) -> Value {
        Value::Sym(self.interner.symbol(name))
    }

    pub fn symbol_name(&self, s: Symbol) -> &str {
        self.interner.name(s)
    }

    /// `alice` or `42`.
    pub fn render(&self, v: Value) -> String {
        self.interner.render(v)
    }

    /// The answer order: integers numerically, then symbols by name.
    pub fn compare(&self, a: Value, b: Value) -> std::cmp::Ordering {
        self.interner.compare_values(a, b)
    }

    // ----- declarations -----

    /// Declares a relation of `arity` untyped columns. Re-declaring with the same arity is allowed.
    pub fn declare(&mut self, name: &str, arity: usize) -> Result<(), LogicError> {
        self.declare_typed(name, &vec![None; arity])
    }

    /// Declares a relation whose columns may name a type (`Person`); values in typed columns form that
    /// type's [`Domain`].
    pub fn declare_typed(&mut self, name: &str, types: &[Option<&str>]) -> Result<(), LogicError> {
        let types: Vec<Option<String>> = types.iter().map(|t| t.map(str::to_string)).collect();
        match self.by_name.get(name) {
            Some(&id) => {
                let rel = &mut self.store[id];
                if rel.arity != types.len() {
                    return Err(LogicError::ArityMismatch {
                        relation: name.to_string(),
                        expected: rel.arity,
                        found: types.len(),
                        context: "a declaration".to_string(),
                    });
                }
                let was_known = self.known[id];
                if was_known && rel.col_types.iter().any(Option::is_some) && rel.col_types != types
                {
                    return Err(LogicError::Redeclared {
                        relation: name.to_string(),
                        detail: "column types differ from the earlier declaration".to_string(),
                    });
                }
                rel.col_types = types;
                self.known[id] = true;
            }
            None => {
                let id = self.new_relation(name, types.len());
                self.store[id].col_types = types;
                self.known[id] = true;
            }
        }
        Ok(())
    }

    fn new_relation(&mut self, name: &str, arity: usize) -> RelId {
        let id = self.store.len();
        self.store
            .push(Relation::new(name, arity, vec![None; arity]));
        self.known.push(false);
        self.defined.push(false);
        self.by_name.insert(name.to_string(), id);
        id
    }

    /// The relation id for a use with `arity` arguments, creating it (unknown until declared, given facts
    /// or rules) on first mention.
    fn relation_for_use(
        &mut self,
        name: &str,
        arity: usize,
        context: &dyn Fn() -> String,
    ) -> Result<RelId, LogicError> {
        match self.by_name.get(name) {
            Some(&id) => {
                let expected = self.store[id].arity;
                if expected != arity {
                    return Err(LogicError::ArityMismatch {
                        relation: name.to_string(),
                        expected,
                        found: arity,
                        context: context(),
                    });
                }
                Ok(id)
            }
            None => Ok(self.new_relation(name, arity)),
        }
    }

    pub(crate) fn existing_relation(
        &self,
        atom: &Atom,
        context: &str,
    ) -> Result<RelId, LogicError> {
        match self.by_name.get(&atom.relation) {
            Some(&id) if self.known[id] => {
                let expected = self.store[id].arity;
                if expected != atom.args.len() {
                    return Err(LogicError::ArityMismatch {
                        relation: atom.relation.clone(),
                        expected,
                        found: atom.args.len(),
                        context: format!("{context} `{atom}`"),
                    });
                }
                Ok(id)
            }
            _ => Err(LogicError::UnknownRelation {
                relation: atom.relation.clone(),
                context: format!("{context} `{atom}`"),
            }),
        }
    }

    // ----- facts and rules -----

    /// Adds a fact; returns whether it was new. The relation is created with this arity if unknown.
    pub fn add_fact(&mut self, relation: &str, args: &[Value]) -> Result<bool, LogicError> {
        let id =
            self.relation_for_use(relation, args.len(), &|| format!("a fact of `{relation}`"))?;
        for v in args {
            if let Value::Sym(s) = v
                && !self.interner.has_symbol(*s)
            {
                return Err(LogicError::ForeignSymbol(s.0));
            }
        }
        self.known[id] = true;
        let tuple: Vec<Id> = args.iter().map(|&v| self.interner.id(v)).collect();
        self.insert_fact(id, &tuple)
    }

    /// Adds a ground atom (`Parent(alice, bob)`) as a fact.
    pub fn add_fact_atom(&mut self, atom: &Atom) -> Result<bool, LogicError> {
        if !atom.is_ground() {
            return Err(LogicError::NotGround {
                atom: atom.to_string(),
            });
        }
        let values: Vec<Value> = atom.args.iter().map(|t| self.const_value(t)).collect();
        self.add_fact(&atom.relation, &values)
    }

    fn const_value(&mut self, t: &Term) -> Value {
        match t {
            Term::Sym(s) => Value::Sym(self.interner.symbol(s)),
            Term::Int(i) => Value::Int(*i),
            Term::Var(_) | Term::Wildcard => unreachable!("caller checked groundness"),
        }
    }

    fn insert_fact(&mut self, id: RelId, tuple: &[Id]) -> Result<bool, LogicError> {
        let rel = &mut self.store[id];
        if let Some(r) = rel.find(tuple) {
            // Already derived: it is now also a base fact, kept when derived tuples are dropped.
            let was_fact = rel.prov[r as usize].is_fact();
            rel.prov[r as usize] = Prov::FACT;
            return Ok(!was_fact);
        }
        rel.insert(tuple, Prov::FACT);
        if self.defined.iter().any(|&d| d) {
            self.mark_stale();
        }
        Ok(true)
    }

    fn mark_stale(&mut self) {
        self.stale = true;
        for (id, rel) in self.store.iter_mut().enumerate() {
            if self.defined[id] {
                rel.complete = false;
            }
        }
    }

    /// Adds a rule after checking it (arities, safety). A rule with an empty body and a ground head is a
    /// fact. Returns the rule's index (its id in derivations).
    pub fn add_rule(&mut self, rule: Rule) -> Result<usize, LogicError> {
        if rule.body.is_empty() && rule.head.is_ground() {
            self.add_fact_atom(&rule.head)?;
        }
        let compiled = self.compile_rule(&rule, self.rules.len() as u32)?;
        let head = compiled.head.rel;
        self.known[head] = true;
        self.defined[head] = true;
        self.rules.push(rule);
        self.compiled.push(compiled);
        self.mark_stale();
        Ok(self.rules.len() - 1)
    }

    /// Parses and adds a rule written as text (see [`Rule::parse`]).
    pub fn add_rule_text(&mut self, text: &str) -> Result<usize, LogicError> {
        self.add_rule(Rule::parse(text)?)
    }

    /// The rules in the order added (a derivation's rule index points here).
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The join order the engine would use now to evaluate rule `rule` over whole relations (its first
    /// round), one line per positive body atom: `Atom   [N rows, scan | index on column C | probe]`.
    /// Negations and comparisons are checked as soon as their variables are bound. The order is chosen
    /// by cost: the smallest relation first, then repeatedly the smallest atom sharing a bound variable,
    /// read through a hash index on its bound columns. (A semi-naive round starts from the delta atom.)
    pub fn join_plan(&mut self, rule: usize) -> Option<Vec<String>> {
        let c = self.compiled.get(rule)?.clone();
        let ranges = eval::full_ranges(&self.store, &c.body);
        let plan = self.plan_for(&c, &ranges, &vec![false; c.nvars]);
        let steps = plan.describe(&self.store);
        Some(
            steps
                .into_iter()
                .map(|(lit, rows, how)| {
                    format!("{}   [{rows} rows, {how}]", self.rules[rule].body[lit])
                })
                .collect(),
        )
    }

    fn compile_rule(&mut self, rule: &Rule, source: u32) -> Result<CRule, LogicError> {
        let text = rule.to_string();
        // Safety: every variable outside positive atoms must occur in one, or be equated (`V == e`) to a
        // constant or a safe variable.
        let mut positive: HashSet<&str> = HashSet::new();
        for lit in &rule.body {
            if let Literal::Pos(a) = lit {
                positive.extend(a.args.iter().filter_map(Term::var_name));
            }
        }
        loop {
            let before = positive.len();
            for lit in &rule.body {
                if let Literal::Cmp(l, CmpOp::Eq, r) = lit {
                    let safe = |t: &Term| match t {
                        Term::Var(v) => positive.contains(v.as_str()),
                        Term::Sym(_) | Term::Int(_) => true,
                        Term::Wildcard => false,
                    };
                    let newly: Vec<&str> = [(l, r), (r, l)]
                        .into_iter()
                        .filter(|(a, b)| !safe(a) && safe(b))
                        .filter_map(|(a, _)| a.var_name())
                        .collect();
                    positive.extend(newly);
                }
            }
            if positive.len() == before {
                break;
            }
        }
        let unsafe_var = |terms: &mut dyn Iterator<Item = &Term>, place: &'static str| {
            for t in terms {
                if let Term::Var(v) = t
                    && !positive.contains(v.as_str())
                {
                    return Err(LogicError::UnsafeVariable {
                        variable: v.clone(),
                        place,
                        rule: text.clone(),
                    });
                }
            }
            Ok(())
        };
        if rule.head.args.contains(&Term::Wildcard) {
            return Err(LogicError::Wildcard {
                place: "a rule head",
                rule: text,
            });
        }
        unsafe_var(&mut rule.head.args.iter(), "the head")?;
        for lit in &rule.body {
            match lit {
                Literal::Pos(_) => {}
                Literal::Neg(a) => unsafe_var(&mut a.args.iter(), "a negated atom")?,
                Literal::Cmp(l, _, r) => {
                    if matches!(l, Term::Wildcard) || matches!(r, Term::Wildcard) {
                        return Err(LogicError::Wildcard {
                            place: "a comparison",
                            rule: text,
                        });
                    }
                    unsafe_var(&mut [l, r].into_iter(), "a comparison")?;
                }
            }
        }

        let mut vars: Vec<String> = Vec::new();
        let ctx = || format!("rule `{text}`");
        let head = self.compile_atom(&rule.head, &mut vars, &ctx)?;
        let mut body = Vec::new();
        for lit in &rule.body {
            body.push(match lit {
                Literal::Pos(a) => CLit::Pos(self.compile_atom(a, &mut vars, &ctx)?),
                Literal::Neg(a) => CLit::Neg(self.compile_atom(a, &mut vars, &ctx)?),
                Literal::Cmp(l, op, r) => CLit::Cmp(
                    self.compile_term(l, &mut vars),
                    *op,
                    self.compile_term(r, &mut vars),
                ),
            });
        }
        Ok(CRule {
            head,
            body,
            nvars: vars.len(),
            source,
        })
    }

    fn compile_term(&mut self, t: &Term, vars: &mut Vec<String>) -> Arg {
        match t {
            Term::Var(v) => Arg::Var(match vars.iter().position(|x| x == v) {
                Some(i) => i,
                None => {
                    vars.push(v.clone());
                    vars.len() - 1
                }
            }),
            Term::Sym(s) => {
                let v = Value::Sym(self.interner.symbol(s));
                Arg::Const(self.interner.id(v))
            }
            Term::Int(i) => Arg::Const(self.interner.id(Value::Int(*i))),
            Term::Wildcard => Arg::Wild,
        }
    }

    fn compile_atom(
        &mut self,
        a: &Atom,
        vars: &mut Vec<String>,
        ctx: &dyn Fn() -> String,
    ) -> Result<CAtom, LogicError> {
        let rel = self.relation_for_use(&a.relation, a.args.len(), ctx)?;
        let args = a.args.iter().map(|t| self.compile_term(t, vars)).collect();
        Ok(CAtom { rel, args })
    }

    // ----- evaluation -----

    pub fn set_strategy(&mut self, strategy: Strategy) {
        self.strategy = strategy;
    }

    pub fn strategy(&self) -> Strategy {
        self.strategy
    }

    /// Chooses tuples, dense tensors, or either by size ([`TensorMode::Auto`], the default) for the
    /// strata evaluated from now on. Derived tuples are the same whichever runs.
    pub fn set_tensor_mode(&mut self, mode: TensorMode) {
        self.tensor_mode = mode;
    }

    pub fn tensor_mode(&self) -> TensorMode {
        self.tensor_mode
    }

    pub fn set_dense_limits(&mut self, limits: DenseLimits) {
        self.dense_limits = limits;
    }

    pub fn dense_limits(&self) -> DenseLimits {
        self.dense_limits
    }

    /// How each stratum of the last forward evaluation ran (tuples or dense tensors) and why, in
    /// evaluation order.
    pub fn stratum_reports(&self) -> &[StratumReport] {
        &self.reports
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }

    pub fn reset_stats(&mut self) {
        self.stats = Stats::default();
    }

    pub(crate) fn rel_name(&self, id: RelId) -> String {
        self.store[id].name.clone()
    }

    /// Every relation mentioned in a rule must be declared, have facts or have rules.
    pub(crate) fn check_known(&self) -> Result<(), LogicError> {
        for (rule, c) in self.rules.iter().zip(&self.compiled) {
            for lit in &c.body {
                if let CLit::Pos(a) | CLit::Neg(a) = lit
                    && !self.known[a.rel]
                {
                    return Err(LogicError::UnknownRelation {
                        relation: self.rel_name(a.rel),
                        context: format!("rule `{rule}`"),
                    });
                }
            }
        }
        Ok(())
    }

    /// The evaluation order of the defined relations: components (mutually recursive relations) in
    /// dependency order. Fails, naming the cycle, if negation occurs through recursion.
    pub fn stratify(&self) -> Result<Vec<Vec<String>>, LogicError> {
        self.check_known()?;
        let comps = strata::components(&self.compiled, &|id| self.rel_name(id))?;
        Ok(comps
            .into_iter()
            .map(|c| c.rels.into_iter().map(|r| self.rel_name(r)).collect())
            .collect())
    }

    /// Drops derived tuples if facts or rules changed since they were computed.
    pub(crate) fn refresh(&mut self) {
        if !self.stale {
            return;
        }
        for (id, rel) in self.store.iter_mut().enumerate() {
            if self.defined[id] {
                rel.reset_to_facts();
                rel.complete = false;
            }
        }
        self.stale = false;
    }

    /// Forward chaining: computes every defined relation to its fixed point, stratum by stratum.
    pub fn run_forward(&mut self) -> Result<(), LogicError> {
        let all: Vec<RelId> = (0..self.store.len()).collect();
        self.ensure_complete(&all)
    }

    /// Computes the given relations and everything they depend on (and nothing else).
    pub(crate) fn ensure_complete(&mut self, targets: &[RelId]) -> Result<(), LogicError> {
        self.check_known()?;
        // Stratify the whole program first so an unstratifiable program fails the same way everywhere.
        strata::components(&self.compiled, &|id| self.rel_name(id))?;
        self.refresh();
        let mut needed = vec![false; self.store.len()];
        let mut work: Vec<RelId> = targets.to_vec();
        while let Some(r) = work.pop() {
            if needed[r] || self.store[r].complete {
                continue;
            }
            needed[r] = true;
            for c in self.compiled.iter().filter(|c| c.head.rel == r) {
                for lit in &c.body {
                    if let CLit::Pos(a) | CLit::Neg(a) = lit {
                        work.push(a.rel);
                    }
                }
            }
        }
        let rules: Vec<CRule> = self
            .compiled
            .iter()
            .filter(|c| needed[c.head.rel])
            .cloned()
            .collect();
        if rules.is_empty() {
            return Ok(());
        }
        self.evaluate(&rules)?;
        for (id, n) in needed.into_iter().enumerate() {
            if n {
                self.store[id].complete = true;
            }
        }
        Ok(())
    }

    /// Evaluates a rule set to its fixed point; relations not headed by these rules are inputs.
    pub(crate) fn evaluate(&mut self, rules: &[CRule]) -> Result<(), LogicError> {
        let comps = strata::components(rules, &|id| self.rel_name(id))?;
        self.reports.clear();
        for comp in comps {
            let decision = self.decide(rules, &comp);
            let mut report = decision.report;
            let rounds_before = self.stats.rounds;
            match decision.plan {
                Some(plan) => {
                    self.evaluate_dense(&comp, &plan)?;
                }
                None => self.evaluate_component(rules, &comp)?,
            }
            report.rounds = self.stats.rounds - rounds_before;
            self.reports.push(report);
        }
        Ok(())
    }

    fn evaluate_component(
        &mut self,
        rules: &[CRule],
        comp: &strata::Component,
    ) -> Result<(), LogicError> {
        let in_comp = |rel: RelId| comp.rels.contains(&rel);
        // First round: every rule over everything (recursive relations hold only their base facts).
        let mut delta_lo: HashMap<RelId, u32> = comp
            .rels
            .iter()
            .map(|&r| (r, self.store[r].len() as u32))
            .collect();
        self.round += 1;
        self.stats.rounds += 1;
        let mut jobs: Vec<(usize, Vec<Range>, Option<usize>)> = comp
            .rules
            .iter()
            .map(|&ri| (ri, eval::full_ranges(&self.store, &rules[ri].body), None))
            .collect();
        for (ri, ranges, first) in jobs.drain(..) {
            self.fire(&rules[ri], &ranges, first);
        }
        let recursive_atoms = |rule: &CRule| -> Vec<usize> {
            (0..rule.body.len())
                .filter(|&i| matches!(&rule.body[i], CLit::Pos(a) if in_comp(a.rel)))
                .collect()
        };
        loop {
            // The delta of each relation: rows added by the last round.
            let delta: HashMap<RelId, Range> = comp
                .rels
                .iter()
                .map(|&r| {
                    (
                        r,
                        Range {
                            lo: delta_lo[&r],
                            hi: self.store[r].len() as u32,
                        },
                    )
                })
                .collect();
            if delta.values().all(|d| d.lo == d.hi) {
                break;
            }
            for (&r, d) in &delta {
                delta_lo.insert(r, d.hi);
            }
            self.round += 1;
            self.stats.rounds += 1;
            for &ri in &comp.rules {
                let rule = &rules[ri];
                let rec = recursive_atoms(rule);
                if rec.is_empty() {
                    continue;
                }
                if self.strategy == Strategy::Naive {
                    let mut ranges = eval::full_ranges(&self.store, &rule.body);
                    for &i in &rec {
                        let CLit::Pos(a) = &rule.body[i] else {
                            unreachable!()
                        };
                        ranges[i].hi = delta[&a.rel].hi;
                    }
                    jobs.push((ri, ranges, None));
                    continue;
                }
                // Variant k: atom k reads the delta, earlier recursive atoms the rows before it, later
                // ones everything up to the end of the delta; each new combination is joined once.
                for (k, &dk) in rec.iter().enumerate() {
                    let CLit::Pos(ak) = &rule.body[dk] else {
                        unreachable!()
                    };
                    if delta[&ak.rel].lo == delta[&ak.rel].hi {
                        continue;
                    }
                    let mut ranges = eval::full_ranges(&self.store, &rule.body);
                    for (j, &dj) in rec.iter().enumerate() {
                        let CLit::Pos(a) = &rule.body[dj] else {
                            unreachable!()
                        };
                        let d = delta[&a.rel];
                        ranges[dj] = match j.cmp(&k) {
                            std::cmp::Ordering::Less => Range { lo: 0, hi: d.lo },
                            std::cmp::Ordering::Equal => d,
                            std::cmp::Ordering::Greater => Range { lo: 0, hi: d.hi },
                        };
                    }
                    jobs.push((ri, ranges, Some(dk)));
                }
            }
            for (ri, ranges, first) in jobs.drain(..) {
                self.fire(&rules[ri], &ranges, first);
            }
        }
        Ok(())
    }

    /// Evaluates one rule body over the given row ranges and inserts the new head tuples.
    fn fire(&mut self, rule: &CRule, ranges: &[Range], first: Option<usize>) {
        let plan = eval::plan(
            &mut self.store,
            rule,
            ranges,
            first,
            &vec![false; rule.nvars],
        );
        let arity = rule.head.args.len();
        let mut out: Vec<Id> = Vec::new();
        let mut binding = vec![0; rule.nvars];
        let head = &rule.head.args;
        let mut emitted = 0u64;
        eval::execute(
            &self.store,
            &self.interner,
            &plan,
            &mut binding,
            &mut self.stats,
            &mut |b, _| {
                emitted += 1;
                out.extend(head.iter().map(|a| match *a {
                    Arg::Var(v) => b[v],
                    Arg::Const(c) => c,
                    Arg::Wild => unreachable!("heads have no wildcards"),
                }));
                false
            },
        );
        let prov = Prov {
            rule: rule.source,
            round: self.round,
        };
        let rel = &mut self.store[rule.head.rel];
        let derived = if arity == 0 {
            u64::from(emitted > 0 && rel.insert(&[], prov))
        } else {
            rel.insert_batch(&out, prov)
        };
        self.stats.tuples_derived += derived;
    }

    // ----- queries -----

    /// The answers to `atom` (e.g. `Parent(alice, X)`) after forward chaining what it needs: one column
    /// per distinct variable, rows sorted and deduplicated. A ground atom gives one empty row if true.
    pub fn query(&mut self, atom: &Atom) -> Result<Answers, LogicError> {
        self.query_where(atom, &[])
    }

    /// `query Atom where X != Y ...`: the atom's answers filtered by extra literals (comparisons,
    /// negated atoms, further positive atoms), all of whose relations are computed first.
    pub fn query_where(&mut self, atom: &Atom, extra: &[Literal]) -> Result<Answers, LogicError> {
        let mut rels = vec![self.existing_relation(atom, "query")?];
        for lit in extra {
            if let Literal::Pos(a) | Literal::Neg(a) = lit {
                rels.push(self.existing_relation(a, "query")?);
            }
        }
        self.ensure_complete(&rels)?;
        self.answers_from(atom, None, extra)
    }

    /// Matches `atom` (against relation `rel_override` when given, e.g. an adorned copy) with extra
    /// literals, collecting the bindings of the atom's variables.
    pub(crate) fn answers_from(
        &mut self,
        atom: &Atom,
        rel_override: Option<RelId>,
        extra: &[Literal],
    ) -> Result<Answers, LogicError> {
        let columns = atom.variables();
        let head = Atom::new(
            "__answer",
            columns.iter().map(|v| Term::Var(v.clone())).collect(),
        );
        let mut body = vec![Literal::Pos(atom.clone())];
        body.extend(extra.iter().cloned());
        let rule = Rule::new(head, body);
        // Compile against the real relation, then point the first atom at the override.
        let mut vars = Vec::new();
        let ctx = || format!("query `{atom}`");
        let mut body_c = Vec::new();
        for lit in &rule.body {
            body_c.push(match lit {
                Literal::Pos(a) => CLit::Pos(self.compile_query_atom(a, &mut vars, &ctx)?),
                Literal::Neg(a) => CLit::Neg(self.compile_query_atom(a, &mut vars, &ctx)?),
                Literal::Cmp(l, op, r) => {
                    for t in [l, r] {
                        if let Term::Var(v) = t
                            && !columns.contains(v)
                            && !extra
                                .iter()
                                .any(|x| matches!(x, Literal::Pos(a) if a.args.contains(t)))
                        {
                            return Err(LogicError::UnsafeVariable {
                                variable: v.clone(),
                                place: "a comparison",
                                rule: rule.to_string(),
                            });
                        }
                    }
                    CLit::Cmp(
                        self.compile_term(l, &mut vars),
                        *op,
                        self.compile_term(r, &mut vars),
                    )
                }
            });
        }
        if let (Some(r), CLit::Pos(a)) = (rel_override, &mut body_c[0]) {
            a.rel = r;
        }
        let nvars = vars.len();
        let col_slots: Vec<usize> = columns
            .iter()
            .map(|c| {
                vars.iter()
                    .position(|v| v == c)
                    .expect("answer variables occur in the atom")
            })
            .collect();
        let crule = CRule {
            head: CAtom {
                rel: NONE as usize,
                args: col_slots.iter().map(|&s| Arg::Var(s)).collect(),
            },
            body: body_c,
            nvars,
            source: NONE,
        };
        let ranges = eval::full_ranges(&self.store, &crule.body);
        let plan = eval::plan(&mut self.store, &crule, &ranges, None, &vec![false; nvars]);
        let mut found: Vec<Vec<Id>> = Vec::new();
        let mut seen: HashSet<Vec<Id>> = HashSet::new();
        let mut binding = vec![0; nvars];
        eval::execute(
            &self.store,
            &self.interner,
            &plan,
            &mut binding,
            &mut self.stats,
            &mut |b, _| {
                let row: Vec<Id> = col_slots.iter().map(|&s| b[s]).collect();
                if seen.insert(row.clone()) {
                    found.push(row);
                }
                false
            },
        );
        let mut rows: Vec<Vec<Value>> = found
            .into_iter()
            .map(|r| r.into_iter().map(|id| self.interner.value(id)).collect())
            .collect();
        rows.sort_by(|a, b| {
            a.iter()
                .zip(b)
                .map(|(x, y)| self.interner.compare_values(*x, *y))
                .find(|o| o.is_ne())
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        Ok(Answers::new(columns, rows, &self.interner))
    }

    fn compile_query_atom(
        &mut self,
        a: &Atom,
        vars: &mut Vec<String>,
        ctx: &dyn Fn() -> String,
    ) -> Result<CAtom, LogicError> {
        let rel = self.existing_relation(a, &ctx())?;
        let args = a.args.iter().map(|t| self.compile_term(t, vars)).collect();
        Ok(CAtom { rel, args })
    }

    // ----- inspection -----

    pub fn relation_names(&self) -> Vec<String> {
        (0..self.store.len())
            .filter(|&i| self.known[i])
            .map(|i| self.rel_name(i))
            .collect()
    }

    pub fn arity(&self, relation: &str) -> Option<usize> {
        self.by_name.get(relation).map(|&i| self.store[i].arity)
    }

    /// Number of tuples stored now (base facts plus whatever has been derived).
    pub fn relation_len(&self, relation: &str) -> Option<usize> {
        self.by_name.get(relation).map(|&i| self.store[i].len())
    }

    /// The tuples stored now, in insertion order.
    pub fn tuples(&self, relation: &str) -> Vec<Vec<Value>> {
        let Some(&id) = self.by_name.get(relation) else {
            return Vec::new();
        };
        let rel = &self.store[id];
        (0..rel.len() as u32)
            .map(|r| rel.row(r).iter().map(|&x| self.interner.value(x)).collect())
            .collect()
    }

    /// Approximate heap bytes of all relations (rows, provenance, hash tables, indexes).
    pub fn heap_bytes(&self) -> usize {
        self.store.iter().map(Relation::heap_bytes).sum()
    }

    /// The values currently present in columns declared with type `ty`, densely numbered.
    pub fn domain(&self, ty: &str) -> Domain {
        let mut d = Domain::default();
        for rel in &self.store {
            let cols: Vec<usize> = (0..rel.arity)
                .filter(|&c| rel.col_types[c].as_deref() == Some(ty))
                .collect();
            if cols.is_empty() {
                continue;
            }
            for r in 0..rel.len() as u32 {
                let row = rel.row(r);
                for &c in &cols {
                    d.add(self.interner.value(row[c]));
                }
            }
        }
        d
    }

    pub(crate) fn symbol_known(&self, name: &str) -> Option<Symbol> {
        self.interner.lookup_symbol(name)
    }

    pub(crate) fn new_temp_relation(&mut self, name: String, arity: usize) -> RelId {
        let id = self.store.len();
        let mut rel = Relation::new(&name, arity, vec![None; arity]);
        rel.complete = false;
        self.store.push(rel);
        self.known.push(true);
        self.defined.push(false);
        id
    }

    pub(crate) fn drop_temp_relations(&mut self, keep: usize) {
        self.store.truncate(keep);
        self.known.truncate(keep);
        self.defined.truncate(keep);
    }

    pub(crate) fn plan_for(&mut self, rule: &CRule, ranges: &[Range], prebound: &[bool]) -> Plan {
        eval::plan(&mut self.store, rule, ranges, None, prebound)
    }
}
