//! `needs_more_input`: when the REPL should read another line before parsing.

use tl_syntax::needs_more_input;

#[test]
fn complete_inputs() {
    for text in [
        "",
        "x = 1",
        "print(x)",
        "fn f() { 1 }",
        "if a { b } else { c }",
        "let s = \"a { b\"",
        "x = 1 // trailing (",
        "/* { */ y = 2",
        "x = [1, 2]\n",
        "Y?",
        "return",
        "x = a]", // mismatched: let the parser report it
        "f(a}",
    ] {
        assert!(!needs_more_input(text), "{text:?} should be complete");
    }
}

#[test]
fn unfinished_inputs() {
    for text in [
        "fn f() {",
        "if a {\n  b = 1",
        "if a { b } else {",
        "print(1,",
        "x = [1,\n 2",
        "f(",
        "x = 1 +",
        "x = 1 *",
        "x = a and",
        "x = a ||",
        "x =",
        "x :=",
        "x +=",
        "f(a) <-",
        "let s = \"unterminated",
        "let s = \"line one\nline two",
        "/* a comment",
        "/* outer /* inner */ still open",
        "a,",
        "x = y.\n",
        "x = 1 +   // comment\n",
    ] {
        assert!(needs_more_input(text), "{text:?} should need more input");
    }
}
