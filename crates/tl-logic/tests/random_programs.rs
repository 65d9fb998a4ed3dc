//! Random stratified programs (recursion, negation of lower strata, constants, wildcards, comparisons)
//! checked against the reference evaluator, forward and backward, on tuples and on dense tensors.

mod common;

use common::{
    MODES, Program, Rng, check_derivation, check_relations, engine_rows, reference_answers,
    reference_eval,
};
use tl_logic::Atom;

const VARS: [&str; 4] = ["X", "Y", "Z", "W"];

fn random_program(seed: u64) -> (Program, Vec<(String, usize)>) {
    let mut rng = Rng::new(seed);
    let mut p = Program::default();
    let mut rels: Vec<(String, usize)> = vec![("E".into(), 2), ("F".into(), 2), ("U".into(), 1)];
    for _ in 0..25 {
        p.int_fact("E", &[rng.below(8) as i64, rng.below(8) as i64]);
    }
    for _ in 0..15 {
        p.int_fact("F", &[rng.below(8) as i64, rng.below(8) as i64]);
    }
    for _ in 0..4 {
        p.int_fact("U", &[rng.below(8) as i64]);
    }
    let edb = rels.len();
    for i in 0..4 {
        let arity = 1 + rng.below(2) as usize;
        let name = format!("R{i}");
        rels.push((name.clone(), arity));
        // Positive atoms may use this relation (recursion) and anything before it; negation only
        // what is strictly before it, so the program is stratified.
        let visible = rels.len();
        for r in 0..(2 + rng.below(2)) {
            let mut body: Vec<String> = Vec::new();
            let mut bound: Vec<&str> = Vec::new();
            let natoms = 1 + rng.below(3) as usize;
            for k in 0..natoms {
                // Keep a base case: a relation's first rule reads only lower relations.
                let choices = if r == 0 { visible - 1 } else { visible };
                let (rel, ar) = rels[rng.below(choices as u64) as usize].clone();
                let args: Vec<String> = (0..ar)
                    .map(|_| match rng.below(10) {
                        0 => rng.below(8).to_string(),
                        1 if k > 0 => "_".to_string(),
                        _ => {
                            let v = VARS[rng.below(3) as usize];
                            if !bound.contains(&v) {
                                bound.push(v);
                            }
                            v.to_string()
                        }
                    })
                    .collect();
                body.push(format!("{rel}({})", args.join(", ")));
            }
            if bound.is_empty() {
                continue;
            }
            let pick = |rng: &mut Rng, bound: &[&'static str]| {
                bound[rng.below(bound.len() as u64) as usize]
            };
            if rng.below(3) == 0 {
                let (rel, ar) = rels[rng.below((visible - 1).max(edb) as u64) as usize].clone();
                let args: Vec<String> = (0..ar)
                    .map(|_| {
                        if rng.below(4) == 0 {
                            "_".to_string()
                        } else {
                            pick(&mut rng, &bound).to_string()
                        }
                    })
                    .collect();
                body.push(format!("not {rel}({})", args.join(", ")));
            }
            if rng.below(4) == 0 {
                // An equality binding a fresh variable, usable in the head.
                let rhs = if rng.below(2) == 0 {
                    pick(&mut rng, &bound).to_string()
                } else {
                    rng.below(8).to_string()
                };
                body.push(format!("W == {rhs}"));
                bound.push("W");
            }
            if rng.below(3) == 0 {
                let ops = ["!=", "<", "<=", ">", ">=", "=="];
                let op = ops[rng.below(ops.len() as u64) as usize];
                let rhs = if rng.below(2) == 0 {
                    pick(&mut rng, &bound).to_string()
                } else {
                    rng.below(8).to_string()
                };
                body.push(format!("{} {op} {rhs}", pick(&mut rng, &bound)));
            }
            let head: Vec<String> = (0..arity)
                .map(|_| {
                    if rng.below(8) == 0 {
                        rng.below(8).to_string()
                    } else {
                        pick(&mut rng, &bound).to_string()
                    }
                })
                .collect();
            p.rule(&format!(
                "{name}({}) <- {}",
                head.join(", "),
                body.join(", ")
            ));
        }
    }
    (p, rels)
}

#[test]
fn random_stratified_programs_match_reference() {
    let mut nonempty = 0;
    let mut goals_checked = 0;
    let mut explained = 0;
    let mut dense_strata = 0;
    for seed in 0..60 {
        let (p, rels) = random_program(seed);
        let db = reference_eval(&p).expect("generated programs are stratified");
        check_relations(&p, false);
        let mut rng = Rng::new(seed ^ 0xabc);
        for (rel, ar) in rels.iter().skip(3) {
            if !p.rules.iter().any(|r| &r.head.relation == rel) {
                continue;
            }
            nonempty += usize::from(db.get(rel).is_some_and(|s| !s.is_empty()));
            for _ in 0..3 {
                let args: Vec<String> = (0..*ar)
                    .map(|i| {
                        if rng.below(2) == 0 {
                            rng.below(8).to_string()
                        } else {
                            VARS[i].to_string()
                        }
                    })
                    .collect();
                let goal = Atom::parse(&format!("{rel}({})", args.join(", "))).unwrap();
                let want = reference_answers(&db, &goal);
                for mode in MODES {
                    let mut e = p.engine_in(mode);
                    let got = e
                        .query_backward(&goal)
                        .unwrap_or_else(|err| panic!("seed {seed} {goal} ({mode:?}): {err}"));
                    assert_eq!(
                        engine_rows(&e, &got.rows),
                        want,
                        "seed {seed} backward {goal} ({mode:?})\n{:#?}",
                        p.rules
                    );
                }
                for mode in MODES {
                    let mut f = p.engine_in(mode);
                    let got = f.query(&goal).unwrap();
                    assert_eq!(
                        engine_rows(&f, &got.rows),
                        want,
                        "seed {seed} forward {goal} ({mode:?})"
                    );
                }
                goals_checked += 1;
            }
            // Every derived tuple of the relation has a valid derivation, whether tuples or dense
            // tensors derived it.
            for mode in MODES {
                let mut e = p.engine_in(mode);
                e.run_forward().unwrap();
                dense_strata += e.stratum_reports().iter().filter(|r| r.dense).count();
                for t in e.tuples(rel) {
                    let goal = Atom::new(
                        rel,
                        t.iter()
                            .map(|&v| match common::from_value(&e, v) {
                                common::RVal::Int(i) => tl_logic::Term::Int(i),
                                common::RVal::Sym(s) => tl_logic::Term::Sym(s),
                            })
                            .collect(),
                    );
                    let d = e
                        .explain(&goal)
                        .unwrap()
                        .expect("derived tuples have derivations");
                    check_derivation(&mut e, &p, &d);
                    explained += 1;
                }
            }
        }
    }
    assert!(nonempty > 60, "{nonempty} non-empty derived relations");
    assert!(goals_checked > 300, "{goals_checked}");
    assert!(explained > 1000, "{explained}");
    assert!(
        dense_strata > 100,
        "{dense_strata} strata ran on dense tensors"
    );
}
