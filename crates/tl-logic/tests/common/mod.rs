//! Test helpers: a seeded random generator and a naive reference Datalog evaluator over sets of tuples,
//! independent of the engine (no indexes, no deltas, no rewriting).

#![allow(dead_code)]

use std::collections::{BTreeSet, HashMap, HashSet};

use tl_logic::{Atom, CmpOp, Engine, Literal, Rule, Term, Value};

/// SplitMix64: small, seeded, good enough for test data.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RVal {
    // Declared first so that every integer sorts before every symbol, as in the engine.
    Int(i64),
    Sym(String),
}

pub type Tuple = Vec<RVal>;
pub type Db = HashMap<String, HashSet<Tuple>>;

/// A program for both evaluators: facts and rules.
#[derive(Default, Clone)]
pub struct Program {
    pub facts: Vec<(String, Tuple)>,
    pub rules: Vec<Rule>,
}

impl Program {
    pub fn fact(&mut self, rel: &str, args: &[&str]) {
        self.facts.push((
            rel.to_string(),
            args.iter().map(|a| sym_or_int(a)).collect(),
        ));
    }

    pub fn int_fact(&mut self, rel: &str, args: &[i64]) {
        self.facts.push((
            rel.to_string(),
            args.iter().map(|&a| RVal::Int(a)).collect(),
        ));
    }

    pub fn rule(&mut self, text: &str) {
        self.rules
            .push(Rule::parse(text).unwrap_or_else(|e| panic!("{text}: {e}")));
    }

    pub fn engine(&self) -> Engine {
        self.engine_in(tl_logic::TensorMode::Auto)
    }

    /// An engine holding the program, evaluating strata as `mode` says.
    pub fn engine_in(&self, mode: tl_logic::TensorMode) -> Engine {
        let mut e = Engine::new();
        e.set_tensor_mode(mode);
        for (rel, t) in &self.facts {
            let vals: Vec<Value> = t.iter().map(|v| to_value(&mut e, v)).collect();
            e.add_fact(rel, &vals).unwrap();
        }
        for r in &self.rules {
            e.add_rule(r.clone()).unwrap();
        }
        e
    }
}

fn sym_or_int(a: &str) -> RVal {
    match a.parse::<i64>() {
        Ok(i) => RVal::Int(i),
        Err(_) => RVal::Sym(a.to_string()),
    }
}

pub fn to_value(e: &mut Engine, v: &RVal) -> Value {
    match v {
        RVal::Int(i) => Value::Int(*i),
        RVal::Sym(s) => e.sym(s),
    }
}

pub fn from_value(e: &Engine, v: Value) -> RVal {
    match v {
        Value::Int(i) => RVal::Int(i),
        Value::Sym(s) => RVal::Sym(e.symbol_name(s).to_string()),
    }
}

fn term_value(t: &Term, env: &HashMap<String, RVal>) -> Option<RVal> {
    match t {
        Term::Var(v) => env.get(v).cloned(),
        Term::Sym(s) => Some(RVal::Sym(s.clone())),
        Term::Int(i) => Some(RVal::Int(*i)),
        Term::Wildcard => None,
    }
}

/// Extends `env` so that `atom` matches `tuple`; `None` if it cannot.
fn unify(atom: &Atom, tuple: &Tuple, env: &HashMap<String, RVal>) -> Option<HashMap<String, RVal>> {
    let mut env = env.clone();
    for (t, v) in atom.args.iter().zip(tuple) {
        match t {
            Term::Wildcard => {}
            Term::Var(name) => match env.get(name) {
                Some(b) if b != v => return None,
                Some(_) => {}
                None => {
                    env.insert(name.clone(), v.clone());
                }
            },
            _ => {
                if term_value(t, &env).as_ref() != Some(v) {
                    return None;
                }
            }
        }
    }
    Some(env)
}

fn compare(a: &RVal, op: CmpOp, b: &RVal) -> bool {
    match op {
        CmpOp::Eq => a == b,
        CmpOp::Ne => a != b,
        CmpOp::Lt => a < b,
        CmpOp::Le => a <= b,
        CmpOp::Gt => a > b,
        CmpOp::Ge => a >= b,
    }
}

/// All bindings satisfying the body: positive atoms by nested loops, then negations and comparisons.
pub fn body_bindings(body: &[Literal], db: &Db) -> Vec<HashMap<String, RVal>> {
    let empty = HashSet::new();
    let mut envs = vec![HashMap::new()];
    for lit in body {
        if let Literal::Pos(a) = lit {
            let tuples = db.get(&a.relation).unwrap_or(&empty);
            envs = envs
                .iter()
                .flat_map(|env| tuples.iter().filter_map(|t| unify(a, t, env)))
                .collect();
        }
    }
    // Equalities binding a variable not bound by a positive atom (`V == e`), to a fixed point.
    for env in &mut envs {
        loop {
            let mut progressed = false;
            for lit in body {
                if let Literal::Cmp(l, CmpOp::Eq, r) = lit {
                    for (a, b) in [(l, r), (r, l)] {
                        if let (Term::Var(v), Some(val)) = (a, term_value(b, env))
                            && !env.contains_key(v)
                        {
                            env.insert(v.clone(), val);
                            progressed = true;
                        }
                    }
                }
            }
            if !progressed {
                break;
            }
        }
    }
    envs.retain(|env| {
        body.iter().all(|lit| match lit {
            Literal::Pos(_) => true,
            Literal::Neg(a) => !db
                .get(&a.relation)
                .unwrap_or(&empty)
                .iter()
                .any(|t| unify(a, t, env).is_some()),
            Literal::Cmp(l, op, r) => match (term_value(l, env), term_value(r, env)) {
                (Some(x), Some(y)) => compare(&x, *op, &y),
                _ => false,
            },
        })
    });
    envs
}

/// Strata by the textbook fixpoint: a head is at least as high as a positive body relation and higher
/// than a negated one; `None` if that cannot be satisfied (negation through recursion).
pub fn reference_strata(rules: &[Rule]) -> Option<HashMap<String, usize>> {
    let mut level: HashMap<String, usize> = HashMap::new();
    let names: BTreeSet<&str> = rules.iter().map(|r| r.head.relation.as_str()).collect();
    loop {
        let mut changed = false;
        for r in rules {
            let mut need = 0;
            for lit in &r.body {
                match lit {
                    Literal::Pos(a) => need = need.max(*level.get(&a.relation).unwrap_or(&0)),
                    Literal::Neg(a) => need = need.max(level.get(&a.relation).unwrap_or(&0) + 1),
                    Literal::Cmp(..) => {}
                }
            }
            let h = level.entry(r.head.relation.clone()).or_insert(0);
            if *h < need {
                *h = need;
                changed = true;
                if need > names.len() {
                    return None;
                }
            }
        }
        if !changed {
            return Some(level);
        }
    }
}

/// Naive bottom-up evaluation: each stratum applies all its rules until nothing changes.
pub fn reference_eval(p: &Program) -> Option<Db> {
    let mut db: Db = HashMap::new();
    for (rel, t) in &p.facts {
        db.entry(rel.clone()).or_default().insert(t.clone());
    }
    let level = reference_strata(&p.rules)?;
    let top = level.values().copied().max().unwrap_or(0);
    for s in 0..=top {
        loop {
            let mut new = Vec::new();
            for r in p.rules.iter().filter(|r| level[&r.head.relation] == s) {
                for env in body_bindings(&r.body, &db) {
                    let t: Tuple = r
                        .head
                        .args
                        .iter()
                        .map(|a| term_value(a, &env).expect("safe head"))
                        .collect();
                    if !db.get(&r.head.relation).is_some_and(|s| s.contains(&t)) {
                        new.push((r.head.relation.clone(), t));
                    }
                }
            }
            if new.is_empty() {
                break;
            }
            for (rel, t) in new {
                db.entry(rel).or_default().insert(t);
            }
        }
    }
    Some(db)
}

/// The reference answers of a goal: distinct bindings of its variables, sorted.
pub fn reference_answers(db: &Db, goal: &Atom) -> Vec<Tuple> {
    let vars = goal.variables();
    let set: BTreeSet<Tuple> = body_bindings(&[Literal::Pos(goal.clone())], db)
        .into_iter()
        .map(|env| vars.iter().map(|v| env[v].clone()).collect())
        .collect();
    set.into_iter().collect()
}

pub fn engine_rows(e: &Engine, rows: &[Vec<Value>]) -> Vec<Tuple> {
    rows.iter()
        .map(|r| r.iter().map(|&v| from_value(e, v)).collect())
        .collect()
}

/// Both ways of evaluating a stratum: tuples, and dense tensors (wherever the stratum fits).
pub const MODES: [tl_logic::TensorMode; 2] =
    [tl_logic::TensorMode::Sparse, tl_logic::TensorMode::Dense];

/// Checks forward, backward and naive-strategy answers of `goals` against the reference, with tuples
/// and with dense tensors.
pub fn check_program(p: &Program, goals: &[&str]) {
    for mode in MODES {
        check_program_in(p, goals, mode);
    }
}

fn check_program_in(p: &Program, goals: &[&str], mode: tl_logic::TensorMode) {
    let db = reference_eval(p).expect("reference: program is stratifiable");
    let mut answered = 0;
    for g in goals {
        let goal = Atom::parse(g).unwrap();
        let want = reference_answers(&db, &goal);
        answered += usize::from(!want.is_empty());

        let mut fwd = p.engine_in(mode);
        fwd.run_forward().unwrap();
        let got = fwd.query(&goal).unwrap();
        assert_eq!(got.columns, goal.variables(), "columns of {g}");
        assert_eq!(
            engine_rows(&fwd, &got.rows),
            want,
            "forward answers of {g} ({mode:?})"
        );

        let mut bwd = p.engine_in(mode);
        let got = bwd.query_backward(&goal).unwrap();
        assert_eq!(
            engine_rows(&bwd, &got.rows),
            want,
            "backward answers of {g} ({mode:?})"
        );

        let mut naive = p.engine_in(mode);
        naive.set_strategy(tl_logic::Strategy::Naive);
        let got = naive.query(&goal).unwrap();
        assert_eq!(
            engine_rows(&naive, &got.rows),
            want,
            "naive answers of {g} ({mode:?})"
        );
    }
    // Guard against a vacuous comparison: most goals of each test program have answers.
    assert!(
        answered * 2 >= goals.len(),
        "only {answered} of {} goals have answers",
        goals.len()
    );
}

/// Every tuple of every relation of the reference equals the engine's stored relation after forward.
pub fn check_all_relations(p: &Program) {
    check_relations(p, true);
}

/// As [`check_all_relations`]; `require_derived` also asserts that the program derives something.
pub fn check_relations(p: &Program, require_derived: bool) {
    for mode in MODES {
        check_relations_in(p, require_derived, mode);
    }
}

fn check_relations_in(p: &Program, require_derived: bool, mode: tl_logic::TensorMode) {
    let db = reference_eval(p).expect("reference: program is stratifiable");
    let mut e = p.engine_in(mode);
    e.run_forward().unwrap();
    assert!(
        !require_derived || db.values().map(HashSet::len).sum::<usize>() > p.facts.len(),
        "nothing derived"
    );
    for (rel, want) in &db {
        let got: HashSet<Tuple> = engine_rows(&e, &e.tuples(rel)).into_iter().collect();
        assert_eq!(
            got.len(),
            e.relation_len(rel).unwrap(),
            "{rel} has duplicates"
        );
        assert_eq!(&got, want, "relation {rel} ({mode:?})");
    }
}

/// Checks that a derivation is a proof: every rule node instantiates its rule with the premises as the
/// positive body atoms, the negated atoms absent and the comparisons true; every leaf is a base fact.
pub fn check_derivation(e: &mut Engine, p: &Program, d: &tl_logic::Derivation) {
    let facts: std::collections::HashSet<(String, Vec<RVal>)> = p.facts.iter().cloned().collect();
    for node in &d.nodes {
        let values: Vec<RVal> = node.values.iter().map(|&v| from_value(e, v)).collect();
        let Some(ri) = node.rule else {
            assert!(
                facts.contains(&(node.relation.clone(), values)),
                "leaf {} is not a fact",
                node.text
            );
            assert!(node.premises.is_empty());
            continue;
        };
        let rule = e.rules()[ri].clone();
        let mut env: HashMap<String, RVal> = HashMap::new();
        let bind = |atom: &Atom, vals: &[RVal], env: &mut HashMap<String, RVal>| {
            assert_eq!(atom.args.len(), vals.len());
            for (t, v) in atom.args.iter().zip(vals) {
                match t {
                    Term::Var(x) => {
                        let old = env.entry(x.clone()).or_insert(v.clone());
                        assert_eq!(old, v, "{} binds {x} twice differently", node.text);
                    }
                    Term::Sym(s) => assert_eq!(&RVal::Sym(s.clone()), v),
                    Term::Int(i) => assert_eq!(&RVal::Int(*i), v),
                    Term::Wildcard => {}
                }
            }
        };
        assert_eq!(node.relation, rule.head.relation);
        bind(&rule.head, &values, &mut env);
        let positives: Vec<&Atom> = rule
            .body
            .iter()
            .filter_map(|l| {
                if let Literal::Pos(a) = l {
                    Some(a)
                } else {
                    None
                }
            })
            .collect();
        assert_eq!(positives.len(), node.premises.len(), "{}", node.text);
        for (atom, &pi) in positives.iter().zip(&node.premises) {
            let prem = &d.nodes[pi];
            assert_eq!(prem.relation, atom.relation);
            let pv: Vec<RVal> = prem.values.iter().map(|&v| from_value(e, v)).collect();
            bind(atom, &pv, &mut env);
        }
        // Variables bound by equalities (`W == e`) take their values from them.
        loop {
            let mut progressed = false;
            for lit in &rule.body {
                if let Literal::Cmp(l, CmpOp::Eq, r) = lit {
                    for (a, b) in [(l, r), (r, l)] {
                        if let (Term::Var(v), Some(val)) = (a, term_value(b, &env))
                            && !env.contains_key(v)
                        {
                            env.insert(v.clone(), val);
                            progressed = true;
                        }
                    }
                }
            }
            if !progressed {
                break;
            }
        }
        let ground = |t: &Term, env: &HashMap<String, RVal>| match t {
            Term::Var(x) => match &env[x] {
                RVal::Int(i) => Term::Int(*i),
                RVal::Sym(s) => Term::Sym(s.clone()),
            },
            other => other.clone(),
        };
        for lit in &rule.body {
            match lit {
                Literal::Neg(a) => {
                    let inst = Atom::new(
                        &a.relation,
                        a.args.iter().map(|t| ground(t, &env)).collect(),
                    );
                    assert!(
                        e.query(&inst).unwrap().is_empty(),
                        "{inst} should be absent"
                    );
                }
                Literal::Cmp(l, op, r) => {
                    let v = |t: &Term| match ground(t, &env) {
                        Term::Int(i) => RVal::Int(i),
                        Term::Sym(s) => RVal::Sym(s),
                        _ => unreachable!(),
                    };
                    let (a, b) = (v(l), v(r));
                    let ok = match op {
                        tl_logic::CmpOp::Eq => a == b,
                        tl_logic::CmpOp::Ne => a != b,
                        tl_logic::CmpOp::Lt => a < b,
                        tl_logic::CmpOp::Le => a <= b,
                        tl_logic::CmpOp::Gt => a > b,
                        tl_logic::CmpOp::Ge => a >= b,
                    };
                    assert!(ok, "{} violates {lit}", node.text);
                }
                Literal::Pos(_) => {}
            }
        }
    }
}
