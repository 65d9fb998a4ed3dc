//! The engine (forward, backward, naive) against the naive reference evaluator.

mod common;

use common::{Program, Rng, check_all_relations, check_program};

/// A random family: generations of people, each child with one or two parents from the previous one.
fn family(seed: u64, generations: usize, width: usize) -> Program {
    let mut rng = Rng::new(seed);
    let mut p = Program::default();
    let name = |g: usize, i: usize| format!("p{g}_{i}");
    for g in 1..generations {
        for i in 0..width {
            let child = name(g, i);
            let a = rng.below(width as u64) as usize;
            p.fact("Parent", &[&name(g - 1, a), &child]);
            if rng.below(3) > 0 {
                let b = rng.below(width as u64) as usize;
                p.fact("Parent", &[&name(g - 1, b), &child]);
            }
        }
    }
    for g in 0..generations {
        for i in 0..width {
            let gender = if rng.below(2) == 0 { "Female" } else { "Male" };
            p.fact(gender, &[&name(g, i)]);
        }
    }
    p.rule("Ancestor(X, Y) <- Parent(X, Y)");
    p.rule("Ancestor(X, Z) <- Parent(X, Y), Ancestor(Y, Z)");
    p.rule("Sibling(X, Y) <- Parent(P, X), Parent(P, Y), X != Y");
    p.rule("Sister(X, Y) <- Sibling(X, Y), Female(X)");
    p.rule("Aunt(X, Z) <- Sister(X, Y), Parent(Y, Z)");
    p.rule("Cousin(X, Y) <- Parent(A, X), Parent(B, Y), Sibling(A, B)");
    p.rule("Grandparent(X, Z) <- Parent(X, Y), Parent(Y, Z)");
    p
}

#[test]
fn family_trees_match_reference() {
    for seed in 1..4 {
        let p = family(seed, 5, 6);
        check_all_relations(&p);
        check_program(
            &p,
            &[
                "Ancestor(p0_1, X)",
                "Ancestor(X, p4_2)",
                "Ancestor(X, Y)",
                "Sibling(p2_3, Y)",
                "Aunt(X, p3_0)",
                "Cousin(X, Y)",
                "Cousin(p3_1, Y)",
                "Grandparent(p0_0, p2_0)",
                "Ancestor(p0_0, p4_5)",
            ],
        );
    }
}

#[test]
fn named_family_answers() {
    let mut p = Program::default();
    for (a, b) in [
        ("alice", "bob"),
        ("bob", "carol"),
        ("carol", "dave"),
        ("alice", "eve"),
    ] {
        p.fact("Parent", &[a, b]);
    }
    p.rule("Ancestor(X, Y) <- Parent(X, Y)");
    p.rule("Ancestor(X, Z) <- Parent(X, Y), Ancestor(Y, Z)");
    let mut e = p.engine();
    let ans = e
        .query(&tl_logic::Atom::parse("Ancestor(alice, X)").unwrap())
        .unwrap();
    let names: Vec<String> = ans.text_rows().iter().map(|r| r[0].clone()).collect();
    assert_eq!(names, ["bob", "carol", "dave", "eve"]);
    let shown = ans.to_string();
    assert!(shown.starts_with("X\n-"), "{shown}");
    assert!(
        shown.contains("carol") && shown.contains("(4 answers)"),
        "{shown}"
    );
    let yes = e
        .query(&tl_logic::Atom::parse("Ancestor(alice, dave)").unwrap())
        .unwrap();
    assert!(yes.holds());
    assert_eq!(yes.to_string().trim(), "true");
    let no = e
        .query(&tl_logic::Atom::parse("Ancestor(dave, alice)").unwrap())
        .unwrap();
    assert!(!no.holds());
    assert_eq!(no.to_string().trim(), "false");
}

fn random_graph(seed: u64, nodes: u64, edges: usize, self_loops: bool) -> Program {
    let mut rng = Rng::new(seed);
    let mut p = Program::default();
    for _ in 0..edges {
        let a = rng.below(nodes) as i64;
        let mut b = rng.below(nodes) as i64;
        if !self_loops && a == b {
            b = (b + 1) % nodes as i64;
        }
        p.int_fact("Edge", &[a, b]);
    }
    p
}

#[test]
fn random_graph_reachability_left_and_right_linear() {
    for seed in 0..6 {
        let mut p = random_graph(seed, 30, 45, seed % 2 == 0);
        p.rule("Path(X, Y) <- Edge(X, Y)");
        p.rule("Path(X, Z) <- Edge(X, Y), Path(Y, Z)");
        p.rule("PathL(X, Y) <- Edge(X, Y)");
        p.rule("PathL(X, Z) <- PathL(X, Y), Edge(Y, Z)");
        p.rule("PathQ(X, Y) <- Edge(X, Y)");
        p.rule("PathQ(X, Z) <- PathQ(X, Y), PathQ(Y, Z)");
        p.rule("OnCycle(X) <- Path(X, X)");
        check_all_relations(&p);
        check_program(
            &p,
            &[
                "Path(3, X)",
                "Path(X, 7)",
                "PathL(X, Y)",
                "PathQ(5, X)",
                "PathQ(X, X)",
                "OnCycle(X)",
                "Path(1, 2)",
            ],
        );
    }
}

#[test]
fn same_generation_on_random_trees() {
    for seed in 10..14 {
        let mut rng = Rng::new(seed);
        let mut p = Program::default();
        // A random forest: node i > 0 has parent below it, some nodes two parents.
        for i in 1..40i64 {
            p.int_fact("Par", &[rng.below(i as u64) as i64, i]);
            if rng.below(4) == 0 {
                p.int_fact("Par", &[rng.below(i as u64) as i64, i]);
            }
        }
        p.rule("Node(X) <- Par(X, _)");
        p.rule("Node(Y) <- Par(_, Y)");
        p.rule("Sg(X, X) <- Node(X)");
        p.rule("Sg(X, Y) <- Par(A, X), Sg(A, B), Par(B, Y)");
        check_all_relations(&p);
        check_program(&p, &["Sg(5, Y)", "Sg(X, 12)", "Sg(X, Y)"]);
    }
}

#[test]
fn stratified_negation_unreachable_and_non_ancestors() {
    for seed in 20..24 {
        let mut p = random_graph(seed, 25, 30, false);
        p.int_fact("Source", &[0]);
        p.rule("Node(X) <- Edge(X, _)");
        p.rule("Node(Y) <- Edge(_, Y)");
        p.rule("Reach(X) <- Source(X)");
        p.rule("Reach(Y) <- Reach(X), Edge(X, Y)");
        p.rule("Unreachable(X) <- Node(X), not Reach(X)");
        p.rule("Path(X, Y) <- Edge(X, Y)");
        p.rule("Path(X, Z) <- Edge(X, Y), Path(Y, Z)");
        p.rule("NotAncestor(X, Y) <- Node(X), Node(Y), not Path(X, Y), X != Y");
        // Two negation levels: nodes that reach no unreachable node.
        p.rule("ReachesUnreachable(X) <- Path(X, Y), Unreachable(Y)");
        p.rule("Clean(X) <- Node(X), not ReachesUnreachable(X)");
        p.rule("Sink(X) <- Node(X), not Edge(X, _)");
        check_all_relations(&p);
        check_program(
            &p,
            &[
                "Unreachable(X)",
                "NotAncestor(3, Y)",
                "NotAncestor(X, Y)",
                "Clean(X)",
                "Sink(X)",
                "Clean(4)",
            ],
        );
    }
}

#[test]
fn constants_comparisons_wildcards_and_multiple_rules() {
    let mut p = random_graph(31, 20, 40, true);
    for i in 0..20i64 {
        p.int_fact("Weight", &[i, (i * 7) % 11]);
    }
    p.fact("Color", &["1", "red"]);
    p.fact("Color", &["2", "blue"]);
    p.fact("Color", &["3", "red"]);
    p.rule("FromZero(Y) <- Edge(0, Y)");
    p.rule("FromZero(Y) <- FromZero(X), Edge(X, Y)");
    p.rule("Tagged(X, hub) <- Edge(X, _), Edge(_, X)");
    p.rule("Tagged(X, red) <- Color(X, red)");
    p.rule("Tagged(5, special) <- Edge(_, _)");
    p.rule("Up(X, Y) <- Edge(X, Y), X < Y");
    p.rule("Heavy(X) <- Weight(X, W), W >= 6, W != 9");
    p.rule("Light(X, Y) <- Edge(X, Y), Weight(X, A), Weight(Y, B), A <= B, X != Y");
    p.rule("Loop(X) <- Edge(X, X)");
    p.rule("Mixed(X, Y) <- Tagged(X, Y), Y > 3");
    check_all_relations(&p);
    check_program(
        &p,
        &[
            "FromZero(X)",
            "Tagged(X, hub)",
            "Tagged(5, T)",
            "Up(X, Y)",
            "Heavy(X)",
            "Light(2, Y)",
            "Loop(X)",
            "Mixed(X, Y)",
        ],
    );
}

#[test]
fn mutual_recursion_even_odd_and_alternating_paths() {
    for seed in 40..44 {
        let mut rng = Rng::new(seed);
        let mut p = Program::default();
        for _ in 0..30 {
            let (a, b) = (rng.below(15) as i64, rng.below(15) as i64);
            if rng.below(2) == 0 {
                p.int_fact("Red", &[a, b]);
            } else {
                p.int_fact("Blue", &[a, b]);
            }
        }
        p.int_fact("Start", &[0]);
        p.rule("Even(X) <- Start(X)");
        p.rule("Odd(Y) <- Even(X), Red(X, Y)");
        p.rule("Odd(Y) <- Even(X), Blue(X, Y)");
        p.rule("Even(Y) <- Odd(X), Red(X, Y)");
        p.rule("Even(Y) <- Odd(X), Blue(X, Y)");
        // Red-blue alternating paths: two relations defined through each other.
        p.rule("RB(X, Y) <- Red(X, Y)");
        p.rule("RB(X, Z) <- Red(X, Y), BR(Y, Z)");
        p.rule("BR(X, Y) <- Blue(X, Y)");
        p.rule("BR(X, Z) <- Blue(X, Y), RB(Y, Z)");
        p.rule("Both(X) <- Even(X), Odd(X)");
        check_all_relations(&p);
        check_program(
            &p,
            &["Even(X)", "Odd(X)", "RB(3, Y)", "BR(X, 4)", "Both(X)"],
        );
    }
}

#[test]
fn symbols_strings_and_repeated_variables() {
    let mut p = Program::default();
    p.fact("Likes", &["ann", "ann"]);
    p.fact("Likes", &["ann", "bo"]);
    p.fact("Likes", &["bo", "ann"]);
    p.fact("Likes", &["cy", "cy"]);
    p.fact("Likes", &["New York", "cy"]);
    p.rule("Narcissist(X) <- Likes(X, X)");
    p.rule("Mutual(X, Y) <- Likes(X, Y), Likes(Y, X)");
    p.rule("LikesNY(X) <- Likes(\"New York\", X)");
    p.rule("Before(X, Y) <- Likes(X, _), Likes(Y, _), X < Y");
    check_all_relations(&p);
    check_program(
        &p,
        &[
            "Narcissist(X)",
            "Mutual(X, Y)",
            "Mutual(X, X)",
            "LikesNY(X)",
            "Before(ann, Y)",
            "Likes(_, X)",
        ],
    );
}

#[test]
fn facts_of_defined_relations_and_facts_added_after_running() {
    let mut p = random_graph(50, 12, 14, false);
    p.rule("Path(X, Y) <- Edge(X, Y)");
    p.rule("Path(X, Z) <- Edge(X, Y), Path(Y, Z)");
    p.int_fact("Path", &[100, 101]);
    p.int_fact("Path", &[0, 1]);
    check_all_relations(&p);
    check_program(&p, &["Path(100, X)", "Path(0, X)", "Path(X, Y)"]);

    // Adding an edge after a run recomputes the closure from the facts.
    let mut e = p.engine();
    e.run_forward().unwrap();
    let before = e.relation_len("Path").unwrap();
    e.add_fact(
        "Edge",
        &[tl_logic::Value::Int(101), tl_logic::Value::Int(0)],
    )
    .unwrap();
    let goal = tl_logic::Atom::parse("Path(100, X)").unwrap();
    let got = e.query(&goal).unwrap();
    let mut p2 = p.clone();
    p2.int_fact("Edge", &[101, 0]);
    let db = common::reference_eval(&p2).unwrap();
    assert_eq!(
        common::engine_rows(&e, &got.rows),
        common::reference_answers(&db, &goal)
    );
    assert!(e.relation_len("Path").unwrap() > before);
}

#[test]
fn naive_and_semi_naive_agree_but_semi_naive_does_less_work() {
    let mut p = random_graph(60, 60, 90, false);
    p.rule("Path(X, Y) <- Edge(X, Y)");
    p.rule("Path(X, Z) <- Path(X, Y), Path(Y, Z)");
    let mut semi = p.engine();
    semi.run_forward().unwrap();
    let mut naive = p.engine();
    naive.set_strategy(tl_logic::Strategy::Naive);
    naive.run_forward().unwrap();
    let a: std::collections::HashSet<_> = semi.tuples("Path").into_iter().collect();
    let b: std::collections::HashSet<_> = naive.tuples("Path").into_iter().collect();
    assert_eq!(a, b);
    assert!(!a.is_empty());
    let (s, n) = (semi.stats(), naive.stats());
    assert_eq!(s.tuples_derived, n.tuples_derived);
    assert!(
        s.tuples_emitted < n.tuples_emitted,
        "semi {s:?} naive {n:?}"
    );
}
