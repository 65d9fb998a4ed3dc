//! Syntax errors: their messages, their positions (`line:col` and the rendered caret), and
//! recovery so that several errors in one file are all reported.

mod common;

use common::{errors, parse_err};

#[track_caller]
fn check(text: &str, expected: &[&str]) {
    assert_eq!(errors(text), expected, "for {text:?}");
}

#[test]
fn lexical_errors() {
    check("x = \"abc", &["1:5: unterminated string"]);
    check("x = 1e", &["1:5: invalid number literal `1e`"]);
    check("x = 1e+", &["1:5: invalid number literal `1e+`"]);
    check("x = 3x", &["1:5: invalid number literal `3x`"]);
    check(
        "x = 99999999999999999999",
        &[
            "1:5: integer literal `99999999999999999999` is too large (the largest is 9223372036854775807)",
        ],
    );
    check("x = \"a\\qb\"", &["1:7: unknown escape `\\q` in string"]);
    check("/* never closed", &["1:1: unterminated block comment"]);
    check("/* a /* b */", &["1:1: unterminated block comment"]);
    // What an unterminated string or comment swallows is not reported again as unclosed
    // brackets at the end of the file.
    check(
        "main {\n    print(\"hello)\n}\n",
        &["2:11: unterminated string"],
    );
    check(
        "let y = (\n/* never closed\n",
        &["2:1: unterminated block comment"],
    );
    // One error per line when the lexer already failed there.
    check(
        "x = 1 & 2",
        &["1:7: unexpected character `&` (did you mean `&&`?)"],
    );
    check(
        "x = y # note",
        &["1:7: unexpected character `#` (comments start with `//`)"],
    );
}

#[test]
fn bracket_errors() {
    check(
        "f(1, 2",
        &["1:7: expected `)` to close the call started here, found end of file"],
    );
    check(
        "main {\n  print(1)\n",
        &["2:11: unexpected end of file: `{` opened at line 1 is never closed"],
    );
    check(
        "main {\n  foo(1, 2 }\n",
        &["2:12: expected `)` to close the call started here, found `}`"],
    );
    check(
        "x = (1 + 2\ny = 3",
        &["2:1: expected `)` to close the parenthesis started here, found `y`"],
    );
    check(
        "x = a[1, 2",
        &["1:11: expected `]` to close the index started here, found end of file"],
    );
    check("}", &["1:1: unexpected `}`: there is no open `{` to close"]);
    check(
        "x = [1, 2,, 3]",
        &["1:11: expected an expression, found `,`"],
    );
}

#[test]
fn bracket_error_notes_point_at_the_opening() {
    let (sources, diags) = parse_err("let y = 1\nprint(a,\n  b }\n");
    assert_eq!(diags.len(), 2, "{diags:?}");
    assert_eq!(
        diags[0].message,
        "expected `)` to close the call started here, found `}`"
    );
    assert_eq!(diags[0].notes, ["the call started at line 2, column 6"]);
    assert_eq!(
        diags[0].render(&sources),
        "error: expected `)` to close the call started here, found `}`\n --> test.tl:3:5\n  |\n3 |   b }\n  |     ^\n  = note: the call started at line 2, column 6\n"
    );
    assert_eq!(
        diags[1].message,
        "unexpected `}`: there is no open `{` to close"
    );
}

#[test]
fn statement_errors() {
    check(
        "let = 3",
        &["1:5: expected a variable name after `let`, found `=`"],
    );
    check(
        "let x 3",
        &["1:7: expected `=` and a value after `let x`, found `3`"],
    );
    check(
        "let in = 3",
        &["1:5: expected a variable name after `let`, found keyword `in`"],
    );
    check(
        "1 + 2 = 3",
        &[
            "1:1: cannot assign to this expression (the left side of `=` must be a name, an index like `x[i]`, a field like `a.b`, or a relation head)",
        ],
    );
    check(
        "f(x) += 1",
        &["1:6: `+=` cannot be used with this left side"],
    );
    check(
        "x += 1 += 2",
        &["1:8: expected the end of the statement (a new line or `;`), found `+=`"],
    );
    check(
        "let a = 3 4",
        &["1:11: expected the end of the statement (a new line or `;`), found `4`"],
    );
    check(
        "x = a as vector",
        &["1:10: expected a cast target (`int`, `float`, `bool` or `str`), found `vector`"],
    );
    check(
        "if x { } else",
        &["1:14: expected `{` to start a block, found end of file"],
    );
    check("else { }", &["1:1: `else` without a preceding `if`"]);
    check(
        "for in range(3) { }",
        &["1:5: expected a loop variable after `for`, found keyword `in`"],
    );
    check(
        "for i range(3) { }",
        &["1:7: expected `in` after the loop variable, found `range`"],
    );
    check(
        "main { fn g() { } }",
        &["1:8: `fn` declarations are only allowed at the top level of a file"],
    );
    check(
        "x = Foo.",
        &["1:9: expected a field or method name after `.`, found end of file"],
    );
    check(
        "x = x[1:2:3:4]",
        &["1:12: expected `]` to close the index started here, found `:`"],
    );
}

#[test]
fn logic_errors() {
    check(
        "Foo(x + 1) <- Bar(x)",
        &["1:5: expected a term (a variable, a symbol, an integer, a string or `_`) in an atom"],
    );
    check(
        "Foo(x) <- Bar(x), 3",
        &[
            "1:19: expected an atom like `Parent(X, Y)` or a comparison like `X != Y` in the rule body",
        ],
    );
    check(
        "rule Foo(x)",
        &["1:12: expected `<-` or `:-` after the rule head, found end of file"],
    );
    check(
        "query Parent(f(x), Y)",
        &["1:14: expected a term (a variable, a symbol, an integer, a string or `_`)"],
    );
}

#[test]
fn declaration_errors() {
    check(
        "tensor W: int = 3",
        &["1:11: expected a tensor type such as `float32[4, 4]`, found `int`"],
    );
    check(
        "tensor W: f32[3]",
        &[
            "1:11: `f32` is not a tensor element type (expected one of float16, float32, float64, bfloat16, int32, int64, bool)",
        ],
    );
    check(
        "tensor W: float32[3, -1]",
        &["1:22: expected a dimension (an integer, a name or `?`), found `-`"],
    );
    check(
        "embedding E { entities: {a}, size: 3 }",
        &["1:30: unknown embedding setting `size` (expected `entities`, `dimension` or `init`)"],
    );
    check(
        "embedding E { entities: {a} }",
        &["1:1: embedding `E` needs a `dimension` setting"],
    );
    check(
        "embedding E { dimension: 3 }",
        &["1:1: embedding `E` needs an `entities` setting (a list or `auto`)"],
    );
    check(
        "embedding E { entities: {a}, dimension: 0 }",
        &["1:41: expected a positive integer dimension, found `0`"],
    );
    check(
        "fn f(a b) { }",
        &["1:8: expected `)` to close the parameter list started here, found `b`"],
    );
    check("fn (a) { }", &["1:4: expected a function name, found `(`"]);
    check(
        "impl P { x = 1 }",
        &["1:10: expected `fn` (only methods go inside `impl`), found `x`"],
    );
    check(
        "struct P { x }",
        &["1:14: expected `:` and a type after `x`, found `}`"],
    );
    check(
        "import lib",
        &["1:8: expected a quoted path after `import` (`import \"lib.tl\"`), found `lib`"],
    );
}

#[test]
fn rendered_error_has_location_source_line_and_carets() {
    let (sources, diags) = parse_err("main {\n    let total = 3 +* 4\n}\n");
    assert_eq!(diags.len(), 1);
    assert_eq!(
        diags[0].render(&sources),
        "error: expected an expression, found `*`\n --> test.tl:2:20\n  |\n2 |     let total = 3 +* 4\n  |                    ^\n"
    );
    let (sources, diags) = parse_err("x = 2.5e\n");
    assert_eq!(
        diags[0].render(&sources),
        "error: invalid number literal `2.5e`\n --> test.tl:1:5\n  |\n1 | x = 2.5e\n  |     ^^^^\n"
    );
    // Columns count characters, not bytes.
    let (sources, diags) = parse_err("s = \"héllo\" \"x\"\n");
    assert_eq!(diags[0].location(&sources).as_deref(), Some("test.tl:1:13"));
}

#[test]
fn three_separate_errors_are_all_reported() {
    let text = "\
fn first(a) {
    let x = (a + ) * 2
    return x
}

fn second(b) {
    b = b +* 1
    print(b)
}

main {
    let ok = first(1)
    let bad = [1, 2
    print(ok)
}
let tail = 7 7
";
    let found = errors(text);
    assert_eq!(
        found,
        [
            "2:18: expected an expression, found `)`",
            "7:12: expected an expression, found `*`",
            "14:5: expected `]` to close the array started here, found `print`",
            "16:14: expected the end of the statement (a new line or `;`), found `7`",
        ]
    );
}

#[test]
fn recovery_keeps_parsing_the_rest_of_a_block() {
    let text = "main {\n  x = = 1\n  y = )\n  z = 3 +\n}\nfn ok() { 1 }\n";
    let found = errors(text);
    assert_eq!(
        found,
        [
            "2:7: expected an expression, found `=`",
            "3:7: expected an expression, found `)`",
            "5:1: expected an expression, found `}`",
        ]
    );
}

#[test]
fn unclosed_braces_report_one_end_of_file_error() {
    let found = errors("main {\n  if a {\n    while b {\n      c = 1\n");
    assert_eq!(
        found,
        ["4:12: unexpected end of file: `{` opened at line 3 is never closed"]
    );
}

#[test]
fn too_deep_nesting_is_an_error_not_a_crash() {
    let deep = format!("x = {}1{}", "(".repeat(5000), ")".repeat(5000));
    let found = errors(&deep);
    assert_eq!(found.len(), 1);
    assert!(found[0].contains("nested too deeply"), "{found:?}");
    let minus = format!("x = {}1", "-".repeat(5000));
    assert!(errors(&minus)[0].contains("nested too deeply"));
    let blocks = format!("main {}{}", "{".repeat(5000), "}".repeat(5000));
    assert!(errors(&blocks)[0].contains("nested too deeply"));
    let ifs = format!("main {{ {} }}", "if a { ".repeat(3000) + &"}".repeat(3000));
    assert!(errors(&ifs)[0].contains("nested too deeply"));
    let powers = format!("x = 2{}", " ** 2".repeat(5000));
    assert!(errors(&powers)[0].contains("nested too deeply"));
    let elses = format!("if a {{ }}{}", " else if b { }".repeat(5000));
    assert!(errors(&elses)[0].contains("nested too deeply"));
}
