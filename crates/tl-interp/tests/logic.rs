//! Logic programs through the interpreter: facts, rules, queries, `infer`, `--explain`, errors at
//! the statement that caused them, and `tl check` on logic.

mod common;
use common::*;

use tl_interp::{Interpreter, Options, SharedBuffer};

const FAMILY: &str = r#"relation Parent(x: Person, y: Person)
Parent(alice, bob)
Parent(bob, carol)
Parent(carol, dave)
Ancestor(X, Y) <- Parent(X, Y)
Ancestor(X, Z) <- Parent(X, Y), Ancestor(Y, Z)
"#;

#[test]
fn query_prints_the_answer_table() {
    let out = run_ok(&format!("{FAMILY}query Ancestor(bob, X)\n"));
    assert_eq!(out, "X\n-----\ncarol\ndave\n(2 answers)\n");
}

#[test]
fn ground_queries_print_true_or_false() {
    let out = run_ok(&format!(
        "{FAMILY}Ancestor(alice, dave)?\nquery Ancestor(dave, alice)\n"
    ));
    assert_eq!(out, "true\nfalse\n");
}

#[test]
fn forward_backward_and_plain_queries_agree() {
    let goals = ["Ancestor(X, dave)", "Ancestor(alice, X)", "Ancestor(X, Y)"];
    for goal in goals {
        let plain = run_ok(&format!("{FAMILY}query {goal}\n"));
        let forward = run_ok(&format!("{FAMILY}infer forward {goal}?\n"));
        let backward = run_ok(&format!("{FAMILY}infer backward {goal}?\n"));
        assert_eq!(plain, forward, "{goal}");
        assert_eq!(plain, backward, "{goal}");
        assert!(plain.contains("answer"), "{goal}: {plain}");
    }
}

#[test]
fn a_query_sees_only_what_was_stated_before_it() {
    let out = run_ok("Edge(a, b)\nquery Edge(a, X)\nEdge(a, c)\nquery Edge(a, X)\n");
    assert_eq!(out, "X\n-\nb\n(1 answer)\nX\n-\nb\nc\n(2 answers)\n");
}

#[test]
fn main_sees_every_top_level_fact_and_rule() {
    let out = run_ok(
        "main {\n  query Reach(a, X)\n}\nEdge(a, b)\nEdge(b, c)\nReach(X, Y) <- Edge(X, Y)\nReach(X, Z) <- Edge(X, Y), Reach(Y, Z)\n",
    );
    assert_eq!(out, "X\n-\nb\nc\n(2 answers)\n");
}

#[test]
fn facts_take_host_values_in_blocks() {
    let out = run_ok(
        "main {\n  for i in range(3) {\n    Next(i, i + 1)\n  }\n  let s = \"start\"\n  Next(s, 0)\n  query Next(X, Y) where X != s\n}\n",
    );
    // `s` in the query is a symbol named s, not the host variable: every row differs from it.
    assert_eq!(
        out,
        "X     | Y\n------+--\n0     | 1\n1     | 2\n2     | 3\nstart | 0\n(4 answers)\n"
    );
}

#[test]
fn where_clause_with_atoms_and_negation() {
    let out = run_ok(
        "Likes(a, b)\nLikes(b, a)\nLikes(c, a)\nquery Likes(X, Y) where Likes(Y, X)\nquery Likes(X, _) where not Likes(_, X)\n",
    );
    assert_eq!(
        out,
        "X | Y\n--+--\na | b\nb | a\n(2 answers)\nX\n-\nc\n(1 answer)\n"
    );
}

#[test]
fn equation_form_rules() {
    let out = run_ok(
        "Sister(beth, bob)\nParent(bob, carol)\nAunt(x, z) = step(Sister(x, y) Parent(y, z))\nquery Aunt(A, C)\n",
    );
    assert_eq!(out, "A    | C\n-----+------\nbeth | carol\n(1 answer)\n");
}

fn run_with_explain(src: &str) -> String {
    let dir = temp_dir("explain");
    let path = write(&dir, "main.tl", src);
    let buffer = SharedBuffer::new();
    let options = Options {
        explain: true,
        ..Default::default()
    };
    let mut interp = Interpreter::with_output(options, Box::new(buffer.clone()));
    let result = interp.run_file(&path);
    assert!(result.is_ok(), "{:?}", result.err());
    buffer.contents()
}

#[test]
fn explain_prints_a_derivation_under_each_answer() {
    let out = run_with_explain(&format!("{FAMILY}query Ancestor(bob, X)\n"));
    let expected = "X\n-----\ncarol\ndave\n(2 answers)\n\
why Ancestor(bob, carol):\n\
\x20 Ancestor(bob, carol)   [rule 0: Ancestor(X, Y) <- Parent(X, Y)]\n\
\x20   Parent(bob, carol)   [fact]\n\
why Ancestor(bob, dave):\n\
\x20 Ancestor(bob, dave)   [rule 1: Ancestor(X, Z) <- Parent(X, Y), Ancestor(Y, Z)]\n\
\x20   Parent(bob, carol)   [fact]\n\
\x20   Ancestor(carol, dave)   [rule 0: Ancestor(X, Y) <- Parent(X, Y)]\n\
\x20     Parent(carol, dave)   [fact]\n";
    assert_eq!(out, expected);
}

#[test]
fn explain_a_ground_query_and_wildcards() {
    let out = run_with_explain(&format!(
        "{FAMILY}Ancestor(dave, alice)?\nParent(carol, _)?\n"
    ));
    assert_eq!(
        out,
        "false\ntrue\nwhy Parent(carol, dave):\n  Parent(carol, dave)   [fact]\n"
    );
}

#[test]
fn explain_is_off_by_default() {
    let out = run_ok(&format!("{FAMILY}Ancestor(alice, dave)?\n"));
    assert_eq!(out, "true\n");
}

#[test]
fn unstratifiable_program_points_at_the_closing_rule() {
    assert_error(
        "Move(a, b)\nWin(X) <- Move(X, Y), not Lose(Y)\nLose(X) <- Move(X, Y), not Win(Y)\n",
        "unstratifiable program",
        "3:1",
    );
    let (message, _) = run_err("Move(a, b)\nWin(X) <- Move(X, Y), not Win(Y)\n");
    assert!(message.contains("Win -> Win"), "{message}");
}

#[test]
fn engine_errors_carry_the_statement_span() {
    assert_error(
        "Parent(alice, bob)\nBad(X, Z) <- Parent(X, Y)\n",
        "variable Z in the head",
        "2:1",
    );
    assert_error(
        "Parent(alice, bob)\nmain {\n  query Parent(alice)\n}\n",
        "arity 2 but is used with 1 argument",
        "3:3",
    );
    assert_error(
        "Parent(alice, bob)\nParent(a, b, c)\n",
        "arity 2 but is used with 3 arguments",
        "2:1",
    );
    assert_error("query Nowhere(X)\n", "unknown relation `Nowhere`", "1:1");
}

#[test]
fn conversion_errors_point_at_the_bad_part() {
    assert_error(
        "Parent(alice, bob)\nP(X) <- Parent(X, Y), X != f(Y)\n",
        "expected a logic term",
        "2:28",
    );
    assert_error("Parent(alice, X)\n", "a fact must be ground", "1:15");
    assert_error("let w = 1.5\nR(w)\n", "`w` is bound to a float", "2:3");
    assert_error(
        "Parent(alice, bob)\nquery Parent(X, Y) where X + Y\n",
        "expected a comparison",
        "2:26",
    );
}

#[test]
fn check_accepts_logic_programs_and_reports_bad_terms() {
    let dir = temp_dir("check");
    let good = write(
        &dir,
        "good.tl",
        &format!(
            "{FAMILY}Sib(X, Y) <- Parent(P, X), Parent(P, Y), X != Y\nquery Sib(X, Y) where X != alice\nmain {{\n  for i in range(2) {{ Step(i, i + 1) }}\n  infer backward Ancestor(alice, X)?\n}}\n"
        ),
    );
    let mut interp = Interpreter::new(Options::default());
    let result = interp.check_file(&good);
    assert!(result.is_ok(), "{result:?}");

    let bad = write(
        &dir,
        "bad.tl",
        "P(X) <- Q(X), X != g(X)\nmain {\n  Step(j + 1, 2)\n}\n",
    );
    let mut interp = Interpreter::new(Options::default());
    let diags = interp.check_file(&bad).expect_err("bad terms");
    let messages: Vec<&str> = diags.iter().map(|d| d.message.as_str()).collect();
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert!(
        messages[0].contains("expected a logic term"),
        "{messages:?}"
    );
    assert!(messages[1].contains("unknown name `j`"), "{messages:?}");
}

#[test]
fn repl_keeps_facts_and_rules_between_entries() {
    let buffer = SharedBuffer::new();
    let mut interp = Interpreter::with_output(Options::default(), Box::new(buffer.clone()));
    interp.eval_repl("Edge(a, b)").expect("fact");
    interp.eval_repl("Path(X, Y) <- Edge(X, Y)").expect("rule");
    interp.eval_repl("Edge(b, c)").expect("fact");
    interp
        .eval_repl("Path(X, Z) <- Edge(X, Y), Path(Y, Z)")
        .expect("rule");
    interp.eval_repl("Path(a, X)?").expect("query");
    assert_eq!(buffer.contents(), "X\n-\nb\nc\n(2 answers)\n");
}

#[test]
fn check_reports_engine_errors_without_running() {
    let dir = temp_dir("check-engine");
    let path = write(
        &dir,
        "bad.tl",
        "relation Parent(x: Person, y: Person)\nParent(a, b)\nBad(X, Z) <- Parent(X, Y)\nmain {\n  Parent(a, b, c)\n  Win(X) <- Parent(X, Y), not Win(Y)\n  query Parent(X)\n  print(\"never printed\")\n}\n",
    );
    let buffer = SharedBuffer::new();
    let mut interp = Interpreter::with_output(Options::default(), Box::new(buffer.clone()));
    let diags = interp.check_file(&path).expect_err("engine errors");
    let found: Vec<(String, String)> = diags
        .iter()
        .map(|d| first_error(&interp, std::slice::from_ref(d)))
        .collect();
    let expected = [
        ("variable Z in the head", "3:1"),
        ("arity 2 but is used with 3 arguments", "5:3"),
        ("Win -> Win", "6:3"),
        ("arity 2 but is used with 1 argument in query", "7:3"),
    ];
    assert_eq!(found.len(), expected.len(), "{found:?}");
    for ((message, place), (needle, at)) in found.iter().zip(expected) {
        assert!(message.contains(needle), "{message:?} lacks {needle:?}");
        assert_eq!(place, at, "{message}");
    }
    assert_eq!(buffer.contents(), "", "check must not run the program");
}
