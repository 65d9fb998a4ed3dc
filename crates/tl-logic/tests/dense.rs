//! Dense (tensor) evaluation of strata: the same tuples as the tuple engine and as plain graph searches on
//! random graphs, the automatic choice by size, and derivations of dense results.

mod common;

use std::collections::{HashSet, VecDeque};

use common::{Program, Rng, check_derivation, engine_rows, reference_eval};
use tl_logic::{Atom, DenseLimits, Engine, Strategy, TensorMode, Term, Value};

fn closure_program(n: u64, edges: usize, seed: u64) -> (Program, Vec<(i64, i64)>) {
    let mut rng = Rng::new(seed);
    let mut p = Program::default();
    let mut list = Vec::new();
    for _ in 0..edges {
        let (a, b) = (rng.below(n) as i64, rng.below(n) as i64);
        p.int_fact("Edge", &[a, b]);
        list.push((a, b));
    }
    p.rule("Path(X, Y) <- Edge(X, Y)");
    p.rule("Path(X, Z) <- Edge(X, Y), Path(Y, Z)");
    (p, list)
}

/// Pairs (x, y) with y reachable from x in one or more steps, by breadth-first search.
fn bfs_closure(edges: &[(i64, i64)]) -> HashSet<(i64, i64)> {
    let nodes: HashSet<i64> = edges.iter().flat_map(|&(a, b)| [a, b]).collect();
    let mut out = HashSet::new();
    for &s in &nodes {
        let mut queue: VecDeque<i64> = edges.iter().filter(|e| e.0 == s).map(|e| e.1).collect();
        let mut seen = HashSet::new();
        while let Some(x) = queue.pop_front() {
            if seen.insert(x) {
                out.insert((s, x));
                queue.extend(edges.iter().filter(|e| e.0 == x).map(|e| e.1));
            }
        }
    }
    out
}

fn int_pairs(e: &Engine, rel: &str) -> HashSet<(i64, i64)> {
    e.tuples(rel)
        .into_iter()
        .map(|t| match (t[0], t[1]) {
            (Value::Int(a), Value::Int(b)) => (a, b),
            _ => panic!("integer tuples expected"),
        })
        .collect()
}

#[test]
fn reachability_on_random_graphs_dense_equals_tuples_and_bfs() {
    let mut dense_runs = 0;
    for seed in 0..12 {
        let n = 10 + seed * 7;
        let (p, edges) = closure_program(n, (n as usize * 3) / 2, seed);
        let want = bfs_closure(&edges);
        for strategy in [Strategy::SemiNaive, Strategy::Naive] {
            let mut sparse = p.engine_in(TensorMode::Sparse);
            sparse.set_strategy(strategy);
            sparse.run_forward().unwrap();
            let mut dense = p.engine_in(TensorMode::Dense);
            dense.set_strategy(strategy);
            dense.run_forward().unwrap();
            let report = &dense.stratum_reports()[0];
            assert!(report.dense, "seed {seed}: {report:?}");
            assert!(!sparse.stratum_reports()[0].dense);
            dense_runs += 1;
            assert_eq!(int_pairs(&dense, "Path"), want, "seed {seed} {strategy:?}");
            assert_eq!(int_pairs(&sparse, "Path"), want, "seed {seed} {strategy:?}");
            assert_eq!(dense.relation_len("Path"), Some(want.len()), "duplicates");
            // Same number of rounds: a tuple is new in the same round either way.
            assert_eq!(
                report.rounds,
                sparse.stratum_reports()[0].rounds,
                "seed {seed}"
            );
        }
    }
    assert_eq!(dense_runs, 24);
}

#[test]
fn same_generation_and_left_linear_closure_dense_equal_reference() {
    for seed in 0..8 {
        let mut rng = Rng::new(100 + seed);
        let mut p = Program::default();
        // A random forest of 40 nodes: each node's parent is an earlier node.
        for child in 1..40i64 {
            let parent = rng.below(child as u64) as i64;
            p.int_fact("Par", &[child, parent]);
        }
        p.rule("Sg(X, X) <- Par(X, _)");
        p.rule("Sg(X, Y) <- Par(X, P), Sg(P, Q), Par(Y, Q)");
        p.rule("Anc(X, Y) <- Par(X, Y)");
        p.rule("Anc(X, Z) <- Anc(X, Y), Anc(Y, Z)");
        p.rule("Cousin(X, Y) <- Sg(X, Y), X != Y, not Anc(X, Y)");
        let db = reference_eval(&p).unwrap();
        for strategy in [Strategy::SemiNaive, Strategy::Naive] {
            let mut e = p.engine_in(TensorMode::Dense);
            e.set_strategy(strategy);
            e.run_forward().unwrap();
            assert!(e.stratum_reports().iter().all(|r| r.dense));
            for rel in ["Sg", "Anc", "Cousin"] {
                let got: HashSet<_> = engine_rows(&e, &e.tuples(rel)).into_iter().collect();
                assert_eq!(&got, &db[rel], "seed {seed} {rel} {strategy:?}");
                assert!(!got.is_empty(), "seed {seed} {rel} empty");
            }
        }
    }
}

#[test]
fn auto_mode_chooses_by_domain_size_and_density() {
    // 100 nodes, 400 edges: density 0.04 of 10^4 cells, dense in auto mode.
    let (p, _) = closure_program(100, 400, 7);
    let mut e = p.engine();
    assert_eq!(e.tensor_mode(), TensorMode::Auto);
    e.run_forward().unwrap();
    let r = e.stratum_reports()[0].clone();
    assert!(r.dense, "{r:?}");
    assert_eq!(r.relations, vec!["Path".to_string()]);
    assert_eq!(r.largest_tensor, (r.domain * r.domain) as u128);
    // A tiny program stays on tuples in auto mode (fewer values than min_domain)...
    let (small, _) = closure_program(10, 15, 1);
    let mut e = small.engine();
    e.run_forward().unwrap();
    let r = &e.stratum_reports()[0];
    assert!(!r.dense && r.reason.contains("fewer than"), "{r:?}");
    // ...and so does a sparse one (3000 nodes, 1500 edges: density about 2e-4).
    let (sparse, _) = closure_program(3000, 1500, 2);
    let mut e = sparse.engine();
    e.run_forward().unwrap();
    let r = &e.stratum_reports()[0];
    assert!(!r.dense && r.reason.contains("density"), "{r:?}");
    // A limit below the relation's cells keeps even forced dense mode on tuples.
    let mut e = p.engine_in(TensorMode::Dense);
    e.set_dense_limits(DenseLimits {
        max_cells: 99 * 99,
        ..DenseLimits::default()
    });
    e.run_forward().unwrap();
    let r = &e.stratum_reports()[0];
    assert!(!r.dense && r.reason.contains("more than 9801"), "{r:?}");
    assert_eq!(TensorMode::parse("Dense"), Some(TensorMode::Dense));
    assert_eq!(TensorMode::parse("sparse"), Some(TensorMode::Sparse));
    assert_eq!(TensorMode::parse("gpu"), None);
}

#[test]
fn a_three_way_join_is_planned_within_the_cell_limit() {
    // T(X, Z) <- A(X, Y), B(Y, W), C(W, Z): einsum intermediates have two axes, never three.
    let mut p = Program::default();
    let mut rng = Rng::new(5);
    for rel in ["A", "B", "C"] {
        for _ in 0..60 {
            p.int_fact(rel, &[rng.below(30) as i64, rng.below(30) as i64]);
        }
    }
    p.rule("T(X, Z) <- A(X, Y), B(Y, W), C(W, Z)");
    p.rule("U(X) <- T(X, X)");
    p.rule("V(X, a, X) <- U(X), A(X, _)");
    let db = reference_eval(&p).unwrap();
    let mut e = p.engine_in(TensorMode::Dense);
    e.run_forward().unwrap();
    for r in e.stratum_reports() {
        assert!(r.dense, "{r:?}");
        assert!(r.largest_tensor <= (r.domain as u128).pow(3), "{r:?}");
    }
    let t = &e.stratum_reports()[0];
    assert_eq!(t.largest_tensor, (t.domain as u128).pow(2), "{t:?}");
    for rel in ["T", "U", "V"] {
        let got: HashSet<_> = engine_rows(&e, &e.tuples(rel)).into_iter().collect();
        assert_eq!(&got, &db[rel], "{rel}");
    }
}

#[test]
fn dense_results_have_derivations() {
    let (p, _) = closure_program(30, 45, 11);
    let mut e = p.engine_in(TensorMode::Dense);
    e.run_forward().unwrap();
    assert!(e.stratum_reports()[0].dense);
    let mut sparse = p.engine_in(TensorMode::Sparse);
    sparse.run_forward().unwrap();
    let tuples = e.tuples("Path");
    assert!(tuples.len() > 100, "{}", tuples.len());
    for t in tuples {
        let goal = Atom::new(
            "Path",
            t.iter()
                .map(|v| match v {
                    Value::Int(i) => Term::Int(*i),
                    Value::Sym(_) => unreachable!(),
                })
                .collect(),
        );
        let d = e.explain(&goal).unwrap().expect("a derivation");
        check_derivation(&mut e, &p, &d);
        // The proof has the same depth as the tuple engine's: both record the round of first derivation.
        let ds = sparse.explain(&goal).unwrap().expect("a derivation");
        assert_eq!(d.depth(), ds.depth(), "{goal}");
    }
}

#[test]
fn joins_start_from_the_smallest_relation_and_probe_indexes() {
    // Big has 400 rows, Mid 40, Small 4: the chain join starts from Small whichever way it is written,
    // and each further atom is read through an index on the column its bound variable occupies.
    let mut e = Engine::new();
    let mut rng = Rng::new(9);
    for (rel, n) in [("Big", 400), ("Mid", 40), ("Small", 4)] {
        for _ in 0..n {
            let (a, b) = (rng.below(50) as i64, rng.below(50) as i64);
            e.add_fact(rel, &[Value::Int(a), Value::Int(b)]).unwrap();
        }
    }
    let r = e
        .add_rule_text("Out(X, W) <- Big(X, Y), Mid(Y, Z), Small(Z, W), X != W")
        .unwrap();
    let plan = e.join_plan(r).unwrap();
    let big = e.relation_len("Big").unwrap();
    let mid = e.relation_len("Mid").unwrap();
    let small = e.relation_len("Small").unwrap();
    assert_eq!(
        plan,
        vec![
            format!("Small(Z, W)   [{small} rows, scan]"),
            format!("Mid(Y, Z)   [{mid} rows, index on column 1]"),
            format!("Big(X, Y)   [{big} rows, index on column 1]"),
        ]
    );
    // An atom with a constant is bound from the start: it is read through an index on the constant's
    // column before any scan, and the rest is probed by the variables it binds.
    let r2 = e
        .add_rule_text("Out2(X) <- Small(X, _), Big(X, 7)")
        .unwrap();
    assert_eq!(
        e.join_plan(r2).unwrap(),
        vec![
            format!("Big(X, 7)   [{big} rows, index on column 1]"),
            format!("Small(X, _)   [{small} rows, index on column 0]"),
        ]
    );
    // Every column bound: one probe of the tuple set.
    let r3 = e
        .add_rule_text("Out3(X) <- Small(X, Y), Big(X, Y)")
        .unwrap();
    assert_eq!(
        e.join_plan(r3).unwrap(),
        vec![
            format!("Small(X, Y)   [{small} rows, scan]"),
            format!("Big(X, Y)   [{big} rows, probe]"),
        ]
    );
}

#[test]
fn nullary_relations_and_bodies_without_atoms() {
    let mut p = Program::default();
    for (a, b) in [(1, 2), (2, 3), (3, 1), (4, 4)] {
        p.int_fact("E", &[a, b]);
    }
    p.rule("Cycle() <- E(X, Y), E(Y, Z), E(Z, X), X != Y");
    p.rule("Loop() <- E(X, X)");
    p.rule("Both() <- Cycle(), Loop()");
    p.rule("Tagged(X, yes) <- E(X, _), Both()");
    p.rule("NoCycleFrom(X) <- E(X, _), not Cycle()");
    p.rule("Always(one) <- 1 < 2");
    p.rule("Never(one) <- 2 < 1");
    let db = reference_eval(&p).unwrap();
    for mode in [TensorMode::Sparse, TensorMode::Dense] {
        let mut e = p.engine_in(mode);
        e.run_forward().unwrap();
        for rel in [
            "Cycle",
            "Loop",
            "Both",
            "Tagged",
            "NoCycleFrom",
            "Always",
            "Never",
        ] {
            let got: HashSet<_> = engine_rows(&e, &e.tuples(rel)).into_iter().collect();
            let want = db.get(rel).cloned().unwrap_or_default();
            assert_eq!(got, want, "{rel} ({mode:?})");
        }
        if mode == TensorMode::Dense {
            let reports = e.stratum_reports();
            assert!(
                reports.iter().filter(|r| r.dense).count() >= 5,
                "{reports:?}"
            );
        }
    }
}
