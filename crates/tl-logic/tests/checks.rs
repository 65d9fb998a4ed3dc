//! Validation errors, stratification errors, backward chaining's restricted work, explanations, and the
//! small pieces of the API (parsing, display, domains, dense views).

mod common;

use common::{
    Program, RVal, Rng, check_derivation, engine_rows, from_value, reference_answers,
    reference_eval,
};
use tl_logic::{Atom, Engine, LogicError, Rule, Term, Value};

fn engine_with(rules: &[&str]) -> Engine {
    let mut e = Engine::new();
    for r in rules {
        e.add_rule_text(r)
            .unwrap_or_else(|err| panic!("{r}: {err}"));
    }
    e
}

#[test]
fn arity_mismatch_names_relation_and_both_arities() {
    let mut e = Engine::new();
    let a = e.sym("a");
    e.add_fact("Parent", &[a, a]).unwrap();
    let err = e.add_fact("Parent", &[a]).unwrap_err();
    assert!(
        matches!(&err, LogicError::ArityMismatch { relation, expected: 2, found: 1, .. } if relation == "Parent")
    );
    let err = e.add_rule_text("Anc(X, Y) <- Parent(X, Y, Z)").unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("`Parent` has arity 2") && msg.contains("3 arguments"),
        "{msg}"
    );
    assert!(msg.contains("Anc(X, Y) <- Parent(X, Y, Z)"), "{msg}");
    e.declare("Q", 1).unwrap();
    assert!(matches!(
        e.declare("Q", 3),
        Err(LogicError::ArityMismatch {
            expected: 1,
            found: 3,
            ..
        })
    ));
    let err = e.query(&Atom::parse("Parent(X)").unwrap()).unwrap_err();
    assert!(err.to_string().contains("arity 2"), "{err}");
}

#[test]
fn unsafe_rules_are_rejected_with_the_variable_named() {
    let mut e = Engine::new();
    for (text, var, place) in [
        ("P(X, Y) <- Q(X)", "Y", "the head"),
        ("P(X) <- Q(X), not R(Y)", "Y", "a negated atom"),
        ("P(X) <- Q(X), X < Z", "Z", "a comparison"),
        ("P(X) <- not Q(X)", "X", "the head"),
    ] {
        let err = e.add_rule_text(text).unwrap_err();
        match &err {
            LogicError::UnsafeVariable {
                variable, place: p, ..
            } => {
                assert_eq!((variable.as_str(), *p), (var, place), "{text}");
            }
            other => panic!("{text}: {other}"),
        }
        assert!(err.to_string().contains(text), "{err}");
    }
    assert!(matches!(
        e.add_rule_text("P(_) <- Q(_)"),
        Err(LogicError::Wildcard { .. })
    ));
    assert!(matches!(
        e.add_rule_text("P(X) <- Q(X), X != _"),
        Err(LogicError::Wildcard { .. })
    ));
    // Rejected rules leave no trace.
    assert!(e.rules().is_empty());
    // An equality binds a variable from a constant or a safe variable, transitively.
    e.add_rule_text("T(X, Y, Z) <- Q(X), Y == 3, Z == Y")
        .unwrap();
    e.add_rule_text("T(X, Y, Z) <- Q(X), red == Y, Z = X")
        .unwrap();
    assert!(matches!(
        e.add_rule_text("T(X, Y, Z) <- Q(X), Y == Z, Z == Y"),
        Err(LogicError::UnsafeVariable { .. })
    ));
    let a = e.sym("a");
    e.add_fact("Q", &[a]).unwrap();
    let got = e.query(&Atom::parse("T(X, Y, Z)").unwrap()).unwrap();
    assert_eq!(got.text_rows(), [["a", "3", "3"], ["a", "red", "a"]]);
}

#[test]
fn unknown_relations_are_reported() {
    let mut e = engine_with(&["P(X) <- Qq(X)"]);
    let err = e.run_forward().unwrap_err();
    assert!(
        matches!(&err, LogicError::UnknownRelation { relation, .. } if relation == "Qq"),
        "{err}"
    );
    assert!(err.to_string().contains("P(X) <- Qq(X)"), "{err}");
    let err = e.query(&Atom::parse("Nope(X)").unwrap()).unwrap_err();
    assert!(matches!(&err, LogicError::UnknownRelation { relation, .. } if relation == "Nope"));
    // Declaring the relation (with no facts) makes the program valid and empty.
    e.declare("Qq", 1).unwrap();
    assert!(e.query(&Atom::parse("P(X)").unwrap()).unwrap().is_empty());
}

#[test]
fn unstratifiable_programs_name_the_cycle() {
    let mut e = engine_with(&["Win(X) <- Move(X, Y), not Win(Y)"]);
    e.declare("Move", 2).unwrap();
    let err = e.run_forward().unwrap_err();
    assert_eq!(
        err,
        LogicError::Unstratifiable {
            cycle: vec!["Win".into(), "Win".into()],
            negated: "Win".into()
        }
    );
    assert!(
        err.to_string()
            .contains("Win depends negatively on itself via Win -> Win"),
        "{err}"
    );

    let mut e = engine_with(&["A(X) <- N(X), not B(X)", "B(X) <- C(X)", "C(X) <- A(X)"]);
    e.declare("N", 1).unwrap();
    let err = e.stratify().unwrap_err();
    assert!(err.to_string().contains("A -> B -> C -> A"), "{err}");
    assert!(e.query(&Atom::parse("A(X)").unwrap()).is_err());
    assert!(e.query_backward(&Atom::parse("A(1)").unwrap()).is_err());

    // The reference agrees these are unstratifiable, and a stratified variant is accepted.
    let rules: Vec<Rule> = ["A(X) <- N(X), not B(X)", "B(X) <- C(X)", "C(X) <- A(X)"]
        .iter()
        .map(|r| Rule::parse(r).unwrap())
        .collect();
    assert!(common::reference_strata(&rules).is_none());
    let mut e = engine_with(&["A(X) <- N(X), not B(X)", "B(X) <- C(X)", "C(X) <- N(X)"]);
    e.declare("N", 1).unwrap();
    let strata = e.stratify().unwrap();
    let pos = |r: &str| {
        strata
            .iter()
            .position(|s| s.contains(&r.to_string()))
            .unwrap()
    };
    assert!(pos("C") < pos("B") && pos("B") < pos("A"), "{strata:?}");
}

fn chains(chains: i64, len: i64) -> Program {
    let mut p = Program::default();
    for c in 0..chains {
        for i in 0..len - 1 {
            p.int_fact("Edge", &[c * len + i, c * len + i + 1]);
        }
    }
    p.rule("Path(X, Y) <- Edge(X, Y)");
    p.rule("Path(X, Z) <- Edge(X, Y), Path(Y, Z)");
    p
}

#[test]
fn backward_chaining_does_less_work_for_a_bound_goal() {
    let p = chains(20, 30);
    // On disjoint chains, Path(a, b) holds exactly when a and b lie on one chain with a before b (the
    // naive reference evaluator is too slow for this size).
    let path = |a: i64, b: i64| a / 30 == b / 30 && a < b;
    let mut db: common::Db = std::collections::HashMap::new();
    let all: std::collections::HashSet<Vec<RVal>> = (0..600)
        .flat_map(|a| {
            (0..600)
                .filter(move |&b| path(a, b))
                .map(move |b| vec![RVal::Int(a), RVal::Int(b)])
        })
        .collect();
    db.insert("Path".into(), all);
    let goal = Atom::parse("Path(45, X)").unwrap();
    let want = reference_answers(&db, &goal);
    assert_eq!(want.len(), 14);

    let mut fwd = p.engine();
    let f = fwd.query(&goal).unwrap();
    let mut bwd = p.engine();
    let b = bwd.query_backward(&goal).unwrap();
    assert_eq!(engine_rows(&fwd, &f.rows), want);
    assert_eq!(engine_rows(&bwd, &b.rows), want);
    let (fs, bs) = (fwd.stats(), bwd.stats());
    assert!(
        bs.tuples_derived * 10 < fs.tuples_derived,
        "backward {bs:?} forward {fs:?}"
    );
    assert!(
        bs.rows_examined * 5 < fs.rows_examined,
        "backward {bs:?} forward {fs:?}"
    );
    // Backward chaining leaves the full relation uncomputed.
    assert_eq!(bwd.relation_len("Path"), Some(0));

    // Bound on the second argument, and both: same answers as forward.
    for g in ["Path(X, 45)", "Path(40, 45)", "Path(45, 40)", "Path(X, Y)"] {
        let goal = Atom::parse(g).unwrap();
        let mut b = p.engine();
        let got = b.query_backward(&goal).unwrap();
        assert_eq!(
            engine_rows(&b, &got.rows),
            reference_answers(&db, &goal),
            "{g}"
        );
    }
}

#[test]
fn backward_chaining_with_negation_and_constants_matches_forward() {
    for seed in 0..5 {
        let mut rng = Rng::new(seed);
        let mut p = Program::default();
        for _ in 0..40 {
            p.int_fact("Edge", &[rng.below(25) as i64, rng.below(25) as i64]);
        }
        p.int_fact("Blocked", &[3]);
        p.int_fact("Blocked", &[7]);
        p.rule("Node(X) <- Edge(X, _)");
        p.rule("Node(X) <- Edge(_, X)");
        p.rule("Open(X) <- Node(X), not Blocked(X)");
        p.rule("Walk(X, Y) <- Edge(X, Y), Open(Y)");
        p.rule("Walk(X, Z) <- Walk(X, Y), Edge(Y, Z), Open(Z)");
        p.rule("Stuck(X) <- Node(X), not Walk(X, _)");
        p.rule("Reach2(X) <- Walk(2, X)");
        p.rule("Far(X, Y) <- Walk(X, Y), not Edge(X, Y), X != Y");
        let db = reference_eval(&p).unwrap();
        for g in [
            "Walk(2, X)",
            "Walk(X, 5)",
            "Stuck(X)",
            "Stuck(4)",
            "Reach2(X)",
            "Far(1, Y)",
            "Far(X, 6)",
        ] {
            let goal = Atom::parse(g).unwrap();
            let mut b = p.engine();
            let got = b.query_backward(&goal).unwrap();
            assert_eq!(
                engine_rows(&b, &got.rows),
                reference_answers(&db, &goal),
                "seed {seed} {g}"
            );
            // After forward chaining, backward reads the computed relation and agrees.
            b.run_forward().unwrap();
            let again = b.query_backward(&goal).unwrap();
            assert_eq!(again, got, "seed {seed} {g}");
        }
    }
}

#[test]
fn explain_gives_valid_derivations() {
    let mut p = chains(3, 8);
    p.int_fact("Edge", &[7, 0]); // a cycle in the first chain
    p.int_fact("Bad", &[5]);
    p.rule("Node(X) <- Edge(X, _)");
    p.rule("Good(X, Y) <- Path(X, Y), not Bad(Y), X < Y");
    let mut e = p.engine();
    e.run_forward().unwrap();
    let mut checked = 0;
    for t in e
        .tuples("Path")
        .into_iter()
        .chain(e.tuples("Good"))
        .collect::<Vec<_>>()
    {
        let rel = if e.query(&atom_of("Good", &e, &t)).unwrap().holds() {
            "Good"
        } else {
            "Path"
        };
        let d = e
            .explain(&atom_of(rel, &e, &t))
            .unwrap()
            .expect("a derived tuple has a derivation");
        assert_eq!(d.root().values, t);
        check_derivation(&mut e, &p, &d);
        checked += 1;
    }
    assert!(checked > 60, "{checked}");
    // The longest chain proof: Path(0, 7) through 7 edges.
    let d = e
        .explain(&Atom::parse("Path(0, 7)").unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(d.depth(), 8);
    let shown = d.to_string();
    assert!(
        shown.starts_with("Path(0, 7)   [rule 1: Path(X, Z) <- Edge(X, Y), Path(Y, Z)]"),
        "{shown}"
    );
    assert!(shown.contains("\n  Edge(0, 1)   [fact]"), "{shown}");
    let d = e
        .explain(&Atom::parse("Good(1, 3)").unwrap())
        .unwrap()
        .unwrap();
    assert!(d.to_string().contains("not Bad(3)   [absent]"), "{d}");
    // Facts explain as themselves; false or unknown goals have none; variables are rejected.
    let d = e
        .explain(&Atom::parse("Edge(0, 1)").unwrap())
        .unwrap()
        .unwrap();
    assert_eq!((d.nodes.len(), d.root().rule), (1, None));
    assert!(
        e.explain(&Atom::parse("Path(7, 8)").unwrap())
            .unwrap()
            .is_none()
    );
    assert!(
        e.explain(&Atom::parse("Path(zed, 1)").unwrap())
            .unwrap()
            .is_none()
    );
    assert!(matches!(
        e.explain(&Atom::parse("Path(0, X)").unwrap()),
        Err(LogicError::NotGround { .. })
    ));
}

fn atom_of(rel: &str, e: &Engine, t: &[Value]) -> Atom {
    Atom::new(
        rel,
        t.iter()
            .map(|&v| match from_value(e, v) {
                RVal::Int(i) => Term::Int(i),
                RVal::Sym(s) => Term::Sym(s),
            })
            .collect(),
    )
}

#[test]
fn explain_on_random_family_programs() {
    for seed in 0..3 {
        let mut rng = Rng::new(seed);
        let mut p = Program::default();
        for i in 1..30i64 {
            p.int_fact("Parent", &[rng.below(i as u64) as i64, i]);
        }
        p.rule("Anc(X, Y) <- Parent(X, Y)");
        p.rule("Anc(X, Z) <- Anc(X, Y), Anc(Y, Z)");
        p.rule("Sib(X, Y) <- Parent(P, X), Parent(P, Y), X != Y");
        p.rule("Unrelated(A, B) <- Sib(A, _), Sib(B, _), not Anc(A, B), not Anc(B, A), A < B");
        let mut e = p.engine();
        e.run_forward().unwrap();
        for rel in ["Anc", "Sib", "Unrelated"] {
            let tuples = e.tuples(rel);
            assert!(!tuples.is_empty(), "{rel}");
            for t in tuples {
                let d = e.explain(&atom_of(rel, &e, &t)).unwrap().unwrap();
                check_derivation(&mut e, &p, &d);
            }
        }
    }
}

#[test]
fn parse_and_display_round_trip() {
    for text in [
        "Aunt(X, Z) <- Sister(X, Y), Parent(Y, Z)",
        "P(X, 3, alice) <- Q(X, _), not R(X, \"New York\"), X != 3, X <= -2",
        "Fact(a, b)",
    ] {
        let r = Rule::parse(text).unwrap();
        assert_eq!(r.to_string(), text);
        assert_eq!(Rule::parse(&r.to_string()).unwrap(), r);
    }
    let r = Rule::parse("A(X) :- B(X), !C(X), X > 1.").unwrap();
    assert_eq!(r.to_string(), "A(X) <- B(X), not C(X), X > 1");
    assert!(matches!(Rule::parse("A(X) <- "), Err(LogicError::Parse(_))));
    assert!(matches!(Atom::parse("A(X"), Err(LogicError::Parse(_))));
    // A body-less ground rule is a fact.
    let mut e = Engine::new();
    e.add_rule_text("Likes(ann, bo)").unwrap();
    assert!(
        e.query(&Atom::parse("Likes(ann, bo)").unwrap())
            .unwrap()
            .holds()
    );
}

#[test]
fn answer_table_is_aligned() {
    let mut p = Program::default();
    p.fact("Parent", &["alice", "bob"]);
    p.fact("Parent", &["alexandra", "bo"]);
    p.fact("Parent", &["bob", "carol"]);
    let mut e = p.engine();
    let ans = e
        .query(&Atom::parse("Parent(Parent_, Child)").unwrap())
        .unwrap();
    assert_eq!(
        ans.to_string(),
        "Parent_   | Child\n----------+------\nalexandra | bo\nalice     | bob\nbob       | carol\n(3 answers)\n"
    );
}

#[test]
fn typed_domains_and_dense_views() {
    let mut e = Engine::new();
    e.declare_typed("Parent", &[Some("Person"), Some("Person")])
        .unwrap();
    e.declare_typed("Age", &[Some("Person"), None]).unwrap();
    e.add_rule_text("Grand(X, Z) <- Parent(X, Y), Parent(Y, Z)")
        .unwrap();
    let mut rng = Rng::new(7);
    let people: Vec<Value> = (0..6).map(|i| e.sym(&format!("q{i}"))).collect();
    let mut want = std::collections::HashSet::new();
    for _ in 0..8 {
        let (a, b) = (people[rng.below(6) as usize], people[rng.below(6) as usize]);
        e.add_fact("Parent", &[a, b]).unwrap();
        want.insert((a, b));
    }
    for (i, &pp) in people.iter().enumerate() {
        e.add_fact("Age", &[pp, Value::Int(20 + i as i64)]).unwrap();
    }
    let dom = e.domain("Person");
    assert_eq!(dom.len(), 6);
    let dense = e.dense("Parent", 1 << 20).unwrap();
    assert_eq!(dense.shape, vec![6, 6]);
    for &a in &people {
        for &b in &people {
            let ix = [
                dense.axes[0].index_of(a).unwrap(),
                dense.axes[1].index_of(b).unwrap(),
            ];
            assert_eq!(dense.get(&ix), Some(want.contains(&(a, b))));
        }
    }
    assert_eq!(dense.data.iter().filter(|&&x| x).count(), want.len());
    // The derived relation's dense form agrees with its sparse answers.
    let grand = e.dense("Grand", 1 << 20).unwrap();
    let ans = e.query(&Atom::parse("Grand(X, Y)").unwrap()).unwrap();
    assert_eq!(grand.data.iter().filter(|&&x| x).count(), ans.len());
    assert!(matches!(
        e.dense("Parent", 10),
        Err(LogicError::TooLarge { .. })
    ));
}

#[test]
fn nullary_relations_and_bodies_without_positive_atoms() {
    let mut e = Engine::new();
    e.add_rule_text("Raining()").unwrap();
    e.add_rule_text("Wet() <- Raining()").unwrap();
    e.add_rule_text("Dry() <- not Wet()").unwrap();
    e.add_rule_text("Sunny(today) <- not Raining()").unwrap();
    e.add_rule_text("Umbrella(X) <- Person(X), Wet()").unwrap();
    let (a, b) = (e.sym("ann"), e.sym("bo"));
    e.add_fact("Person", &[a]).unwrap();
    e.add_fact("Person", &[b]).unwrap();
    let holds = |e: &mut Engine, g: &str| e.query(&Atom::parse(g).unwrap()).unwrap().holds();
    assert!(holds(&mut e, "Wet()"));
    assert!(!holds(&mut e, "Dry()"));
    assert!(!holds(&mut e, "Sunny(today)"));
    assert_eq!(
        e.query(&Atom::parse("Umbrella(X)").unwrap()).unwrap().len(),
        2
    );
    assert_eq!(
        e.query_backward(&Atom::parse("Umbrella(bo)").unwrap())
            .unwrap()
            .len(),
        1
    );
    let d = e
        .explain(&Atom::parse("Umbrella(ann)").unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(d.depth(), 3, "{d}");
    // A symbol of another engine is refused rather than misread.
    let mut other = Engine::new();
    for i in 0..5 {
        other.sym(&format!("s{i}"));
    }
    let foreign = other.sym("zed");
    assert!(matches!(
        e.add_fact("Person", &[foreign]),
        Err(LogicError::ForeignSymbol(_))
    ));
}
