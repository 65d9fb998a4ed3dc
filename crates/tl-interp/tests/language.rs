//! The evaluator on small programs: statements, scoping, functions, values and printing.

mod common;
use common::*;

#[test]
fn print_and_format_strings() {
    let out = run_ok(
        r#"main {
    print("x = {}, y = {}", 3, 2.5)
    print(1, 2.0, "s", true, [1, "a", 2.5])
    print("no placeholders", 7)
    print("{:.3} and {{braces}}", 3.14159)
    print(format("{}-{}", "a", 1))
    print()
}
"#,
    );
    assert_eq!(
        out,
        "x = 3, y = 2.5\n1 2.0 s true [1, \"a\", 2.5]\nno placeholders 7\n3.142 and {braces}\na-1\n\n"
    );
}

#[test]
fn format_string_count_mismatch_is_an_error() {
    assert_error("main {\n  print(\"{} {}\", 1)\n}\n", "placeholders", "2:3");
}

#[test]
fn float_printing() {
    let out = run_ok("print(1.0)\nprint(0.1 + 0.2)\nprint(1e-7)\nprint(10.0 / 4)\nprint(-0.5)\n");
    assert_eq!(out, "1.0\n0.30000000000000004\n1e-7\n2.5\n-0.5\n");
}

#[test]
fn let_shadowing_and_block_scopes() {
    let out = run_ok(
        r#"main {
    let x = 1
    let x = x + 1
    {
        let x = 10
        print(x)
    }
    print(x)
    if true {
        x = 5
        let y = 7
        print(y)
    }
    print(x)
}
"#,
    );
    assert_eq!(out, "10\n2\n7\n5\n");
}

#[test]
fn block_locals_do_not_leak() {
    assert_error(
        "main {\n  if true {\n    let y = 1\n  }\n  print(y)\n}\n",
        "unknown name `y`",
        "5:9",
    );
}

#[test]
fn bind_or_rebind() {
    let out = run_ok("main {\n  x := 1\n  x := x + 41\n  print(x)\n}\n");
    assert_eq!(out, "42\n");
}

#[test]
fn assignment_to_undeclared_names_the_fix() {
    let out = run("main {\n  total = 3\n}\n");
    let diags = out.result.as_ref().expect_err("must fail");
    assert!(diags[0].message.contains("cannot assign to `total`"));
    assert!(diags[0].notes[0].contains("let total"));
    let (_, loc) = first_error(&out.interp, diags);
    assert_eq!(loc, "2:3");
}

#[test]
fn compound_assignment() {
    let out = run_ok(
        "main {\n  let a = 10\n  a += 5\n  a -= 3\n  a *= 2\n  a /= 4\n  print(a)\n  let s = \"ab\"\n  s += \"c\"\n  print(s)\n  let f = 1.5\n  f *= 2\n  print(f)\n}\n",
    );
    assert_eq!(out, "6\nabc\n3.0\n");
}

#[test]
fn if_else_if_else() {
    let src = r#"fn classify(n: int) -> string {
    if n % 15 == 0 {
        "fizzbuzz"
    } else if n % 3 == 0 {
        "fizz"
    } else if n % 5 == 0 {
        "buzz"
    } else {
        str(n)
    }
}
main {
    for i in range(1, 16) {
        print(classify(i))
    }
}
"#;
    let out = run_ok(src);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 15);
    assert_eq!(lines[2], "fizz");
    assert_eq!(lines[4], "buzz");
    assert_eq!(lines[14], "fizzbuzz");
    assert_eq!(lines[6], "7");
}

#[test]
fn loops_break_continue() {
    let out = run_ok(
        r#"main {
    let total = 0
    for i in range(10) {
        if i == 7 { break }
        if i % 2 == 0 { continue }
        total += i
    }
    print(total)
    let n = 0
    while n < 100 {
        n += 1
        if n == 3 { continue }
        if n > 5 { break }
    }
    print(n)
    for i in range(10, 0, -3) { print(i) }
    for i in range_i(2) { print(i) }
    for x in ["a", "b"] { print(x) }
    for c in "hé" { print(c) }
}
"#,
    );
    assert_eq!(out, "9\n6\n10\n7\n4\n1\n0\n1\na\nb\nh\né\n");
}

#[test]
fn return_leaves_nested_loops() {
    let out = run_ok(
        r#"fn find(xs, target) {
    let i = 0
    for x in xs {
        while true {
            if x == target { return i }
            break
        }
        i += 1
    }
    -1
}
main {
    print(find([4, 5, 6], 6))
    print(find([4, 5, 6], 9))
}
"#,
    );
    assert_eq!(out, "2\n-1\n");
}

#[test]
fn break_outside_loop_is_an_error() {
    assert_error(
        "fn f() {\n  break\n}\nmain {\n  f()\n}\n",
        "`break` outside of a loop",
        "2:3",
    );
}

#[test]
fn script_without_main_runs_in_order() {
    let out =
        run_ok("let x = 2\nfn double(v) { v * 2 }\nprint(double(x))\nx = 5\nprint(double(x))\n");
    assert_eq!(out, "4\n10\n");
}

#[test]
fn main_runs_after_top_level_declarations() {
    let out = run_ok("main {\n  print(scale * 2)\n}\nlet scale = 21\n");
    assert_eq!(out, "42\n");
}

#[test]
fn functions_see_globals_not_caller_locals() {
    assert_error(
        "fn f() { secret }\nmain {\n  let secret = 1\n  print(f())\n}\n",
        "unknown name `secret`",
        "1:10",
    );
}

#[test]
fn recursion_and_named_arguments() {
    let out = run_ok(
        r#"fn fib(n: int) -> int {
    if n < 2 { return n }
    fib(n - 1) + fib(n - 2)
}
fn sub(a, b) { a - b }
main {
    print(fib(20))
    print(sub(b: 1, a: 10))
    print(sub(10, b: 4))
}
"#,
    );
    assert_eq!(out, "6765\n9\n6\n");
}

#[test]
fn deep_recursion_within_the_limit_works() {
    let out = run_ok(
        "fn depth(n) {\n  if n == 0 { return 0 }\n  1 + depth(n - 1)\n}\nmain {\n  print(depth(5000))\n}\n",
    );
    assert_eq!(out, "5000\n");
}

#[test]
fn runaway_recursion_is_an_error_not_a_crash() {
    assert_error(
        "fn forever(n) {\n  forever(n + 1)\n}\nmain {\n  forever(0)\n}\n",
        "recursion too deep",
        "2:3",
    );
}

#[test]
fn arity_errors_in_words() {
    assert_error(
        "fn f(a, b) { a + b }\nmain {\n  f(1, 2, 3)\n}\n",
        "f expects 2 arguments, got 3",
        "3:3",
    );
    assert_error(
        "fn g(a) { a }\nmain {\n  g()\n}\n",
        "g expects 1 argument, got 0",
        "3:3",
    );
    assert_error(
        "fn h(a) { a }\nmain {\n  h(b: 2)\n}\n",
        "h has no parameter `b`",
        "3:5",
    );
}

#[test]
fn plain_parameter_types_are_checked() {
    assert_error(
        "fn f(n: int) { n }\nmain {\n  f(\"three\")\n}\n",
        "parameter `n` of f expects int, got a string",
        "3:5",
    );
    assert_error(
        "fn f(n) -> string { n }\nmain {\n  f(3)\n}\n",
        "the result of f expects string, got an int",
        "3:3",
    );
    // An int is accepted where a float is declared.
    assert_eq!(run_ok("fn f(x: float) { x }\nprint(f(2))\n"), "2.0\n");
}

#[test]
fn integer_arithmetic() {
    let out = run_ok(
        "print(7 / 2)\nprint(-7 / 2)\nprint(7 % 3)\nprint(2 ** 10)\nprint(2 ** -1)\nprint(1 + 2.5)\nprint(7.0 / 2)\nprint(3 == 3.0)\n",
    );
    assert_eq!(out, "3\n-4\n1\n1024\n0.5\n3.5\n3.5\ntrue\n");
}

#[test]
fn integer_division_by_zero() {
    assert_error(
        "main {\n  let z = 0\n  print(1 / z)\n}\n",
        "division by zero",
        "3:9",
    );
    assert_error("main {\n  print(5 % 0)\n}\n", "division by zero", "2:9");
}

#[test]
fn integer_overflow() {
    assert_error(
        "main {\n  let big = 9223372036854775807\n  print(big + 1)\n}\n",
        "integer overflow",
        "3:9",
    );
    assert_error("main {\n  print(3 ** 100)\n}\n", "integer overflow", "2:9");
}

#[test]
fn logic_short_circuits() {
    let out = run_ok(
        "fn boom() { 1 / 0 }\nmain {\n  print(false and boom() == 1)\n  print(true or boom() == 1)\n  print(not false, !true, true && false, false || true)\n}\n",
    );
    assert_eq!(out, "false\ntrue\ntrue false false true\n");
}

#[test]
fn wrong_kinds_are_errors() {
    assert_error(
        "main {\n  let t = zeros([2])\n  print(\"a\" - 1)\n}\n",
        "`-`: cannot subtract string and int",
        "3:9",
    );
    assert_error(
        "main {\n  if 1 { print(1) }\n}\n",
        "a condition must be a bool",
        "2:6",
    );
    assert_error(
        "main {\n  let x = 3\n  x(1)\n}\n",
        "cannot call an int",
        "3:3",
    );
}

#[test]
fn strings() {
    let out = run_ok(
        r#"main {
    let s = "héllo"
    print(s + " " + 1 + " " + 2.5 + " " + true)
    print(len(s), s[1], s[-1], s[1:3], s[:2], s[::2])
    print("abc" < "abd", "b" > "a", "x" == "x")
    print("ab" * 3)
}
"#,
    );
    assert_eq!(
        out,
        "héllo 1 2.5 true\n5 é o él hé hlo\ntrue true true\nababab\n"
    );
}

#[test]
fn lists() {
    let out = run_ok(
        r#"main {
    let l = [1, 2, 3, 4, 5]
    print(l[0], l[-1], l[1:3], l[::2], l[3:], len(l))
    print(l + [6])
    let m = append(l, 9)
    print(len(l), len(m))
    l[0] = 100
    l[-1] = "end"
    print(l)
    let grid = [[1, 2], [3, 4]]
    grid[1][0] = 30
    print(grid)
    print([1, [2, "x"]] == [1, [2, "x"]])
}
"#,
    );
    assert_eq!(
        out,
        "1 5 [2, 3] [1, 3, 5] [4, 5] 5\n[1, 2, 3, 4, 5, 6]\n5 6\n[100, 2, 3, 4, \"end\"]\n[[1, 2], [30, 4]]\ntrue\n"
    );
}

#[test]
fn list_index_out_of_bounds() {
    assert_error(
        "main {\n  let l = [1, 2, 3]\n  print(l[3])\n}\n",
        "index 3 is out of bounds for a list of size 3",
        "3:11",
    );
    assert_error(
        "main {\n  let l = [1, 2, 3]\n  l[-4] = 0\n}\n",
        "index -4 is out of bounds for a list of size 3",
        "3:5",
    );
}

#[test]
fn casts() {
    let out = run_ok(
        r#"main {
    print(3.9 as int, -3.9 as int, 2 as float, 0 as bool, "42" as int, "2.5" as float, 7 as str)
    print(int("12") + 1, float(3), bool(1), str(1.5) + "!")
}
"#,
    );
    assert_eq!(out, "3 -3 2.0 false 42 2.5 7\n13 3.0 true 1.5!\n");
    assert_error(
        "main {\n  print(\"abc\" as int)\n}\n",
        "cannot convert \"abc\" to int",
        "2:9",
    );
}

#[test]
fn structs_and_methods() {
    let out = run_ok(
        r#"struct Point {
    x: float,
    y: float,
}
impl Point {
    fn new(x: float, y: float) -> Point {
        Point { x: x, y: y }
    }
    fn norm2(self) -> float {
        self.x * self.x + self.y * self.y
    }
    fn shift(self, dx: float) {
        self.x = self.x + dx
    }
}
main {
    let p = Point::new(3.0, 4.0)
    print(p)
    print(p.norm2())
    let q = p
    q.shift(1.0)
    print(p.x)
    p.y += 1
    print(p)
}
"#,
    );
    assert_eq!(
        out,
        "Point { x: 3.0, y: 4.0 }\n25.0\n4.0\nPoint { x: 4.0, y: 5.0 }\n"
    );
}

#[test]
fn struct_errors() {
    assert_error(
        "struct P { x: int }\nmain {\n  let p = P { x: 1 }\n  print(p.z)\n}\n",
        "struct `P` has no field `z`",
        "4:9",
    );
    assert_error(
        "struct P { x: int, y: int }\nmain {\n  let p = P { x: 1 }\n}\n",
        "missing field `y`",
        "3:11",
    );
    assert_error(
        "struct P { x: int }\nmain {\n  let p = P { x: \"one\" }\n}\n",
        "field `x` of `P` expects int",
        "3:18",
    );
    assert_error(
        "struct P { x: int }\nmain {\n  let p = P { x: 1 }\n  p.x = 2.5\n}\n",
        "field `x` of `P` expects int, got a float",
        "4:3",
    );
}

#[test]
fn unknown_names_and_functions() {
    assert_error("main {\n  print(foo)\n}\n", "unknown name `foo`", "2:9");
    assert_error(
        "main {\n  let y = bar(1)\n}\n",
        "unknown function `bar`",
        "2:11",
    );
    let out = run("main {\n  let count = 1\n  print(cuont)\n}\n");
    let diags = out.result.expect_err("must fail");
    assert_eq!(diags[0].notes, vec!["did you mean `count`?".to_string()]);
}

#[test]
fn functions_are_values() {
    let out = run_ok(
        "fn twice(f, x) { f(f(x)) }\nfn inc(x) { x + 1 }\nmain {\n  print(twice(inc, 5))\n  let g = len\n  print(g([1, 2]))\n}\n",
    );
    assert_eq!(out, "7\n2\n");
}

#[test]
fn host_builtins() {
    let out = run_ok(
        r#"main {
    print(type_of(1), type_of(1.0), type_of("s"), type_of([1]), type_of(true), type_of(zeros([1])))
    print(range(3), range(1, 4), range(5, 0, -2))
    let t0 = now()
    let t1 = now()
    print(t1 >= t0)
    print(env("TL_SURELY_UNSET_VARIABLE_123") == "", env("TL_SURELY_UNSET_VARIABLE_123", "dflt"))
    print(args())
    assert(1 + 1 == 2, "math works")
}
"#,
    );
    assert_eq!(
        out,
        "int float string list bool tensor\n[0, 1, 2] [1, 2, 3] [5, 3, 1]\ntrue\ntrue dflt\n[]\n"
    );
}

#[test]
fn program_arguments() {
    let dir = temp_dir("args");
    let path = write(&dir, "a.tl", "print(args())\n");
    let options = tl_interp::Options {
        args: vec!["one".into(), "two".into()],
        ..Default::default()
    };
    let out = run_path(&path, options);
    assert!(out.result.is_ok(), "{}", out.rendered());
    assert_eq!(out.stdout, "[\"one\", \"two\"]\n");
}

#[test]
fn assertion_failure() {
    assert_error(
        "main {\n  let x = 2\n  assert(x == 3, \"x should be 3\")\n}\n",
        "assertion failed: x should be 3",
        "3:3",
    );
    assert_error("main {\n  assert(false)\n}\n", "assertion failed", "2:3");
}

#[test]
fn devices() {
    assert_eq!(
        run_ok("let t = to_device(ones([2]), \"cpu\")\nprint(to_host(t).shape)\n"),
        "[2]\n"
    );
    assert_error(
        "main {\n  let t = to_device(ones([2]), \"cuda\")\n}\n",
        "device cuda:0 is not available: the CUDA backend was not initialised",
        "2:32",
    );
}

#[test]
fn unsupported_constructs_say_so() {
    assert_error(
        "main {\n  let X = ones([2, 5])\n  Y[i] *= X[i, t]\n}\n",
        "not supported yet: `*=` and `/=` in tensor equations",
        "3:3",
    );
}

#[test]
fn test_blocks() {
    let dir = temp_dir("tests");
    let path = write(
        &dir,
        "t.tl",
        "fn sq(x) { x * x }\ntest squares {\n  assert(sq(3) == 9)\n}\ntest broken {\n  assert(sq(2) == 5, \"wrong\")\n}\n",
    );
    let buffer = tl_interp::SharedBuffer::new();
    let mut interp = tl_interp::Interpreter::with_output(
        tl_interp::Options::default(),
        Box::new(buffer.clone()),
    );
    let summary = interp.run_tests(&path).expect("tests run");
    assert_eq!(summary.passed, 1);
    assert_eq!(summary.failed, 1);
    let out = buffer.contents();
    assert!(
        out.starts_with("test squares ... ok\ntest broken ... FAILED: assertion failed: wrong ("),
        "{out}"
    );
    assert!(out.contains("t.tl:6:3)"), "{out}");
}

#[test]
fn interrupt_flag_stops_a_loop() {
    let dir = temp_dir("interrupt");
    let path = write(
        &dir,
        "loop.tl",
        "main {\n  let n = 0\n  while true {\n    n += 1\n  }\n}\n",
    );
    let mut interp = tl_interp::Interpreter::new(tl_interp::Options::default());
    let flag = interp.interrupt_flag();
    let setter = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(200));
        flag.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    let result = interp.run_file(&path);
    setter.join().expect("setter thread");
    let diags = result.expect_err("interrupted");
    assert_eq!(diags[0].message, "interrupted");
    assert!(diags[0].location(interp.sources()).is_some());
}

#[test]
fn repl_keeps_state() {
    let buffer = tl_interp::SharedBuffer::new();
    let mut interp = tl_interp::Interpreter::with_output(
        tl_interp::Options::default(),
        Box::new(buffer.clone()),
    );
    assert!(interp.eval_repl("let x = 40").expect("let").is_none());
    assert!(
        interp
            .eval_repl("fn inc(v) { v + 1 }")
            .expect("fn")
            .is_none()
    );
    let v = interp
        .eval_repl("inc(x) + 1")
        .expect("expr")
        .expect("a value");
    assert_eq!(tl_interp::format_value(&v), "42");
    assert!(interp.eval_repl("print(x)").expect("print").is_none());
    assert_eq!(buffer.contents(), "40\n");
    let err = interp.eval_repl("nope + 1").expect_err("unknown name");
    assert!(err[0].message.contains("unknown name `nope`"));
    // The failed entry left no half state behind.
    let v = interp.eval_repl("x").expect("expr").expect("a value");
    assert_eq!(tl_interp::format_value(&v), "40");
}

#[test]
fn stats_report_counts() {
    let out = run("main {\n  let s = 0\n  for i in range(10) { s += i }\n  print(s)\n}\n");
    assert!(out.result.is_ok());
    let report = out.interp.stats_report();
    let statements: u64 = report
        .lines()
        .find_map(|l| l.strip_prefix("statements executed: "))
        .expect("statements line")
        .parse()
        .expect("a number");
    // let, for, 10 additions, print
    assert_eq!(statements, 13);
    assert!(report.contains("builtin calls: 1"), "{report}");
    assert!(report.contains("tensor ops dispatched"), "{report}");
}

#[test]
fn non_utf8_and_missing_files() {
    let dir = temp_dir("files");
    let path = dir.join("bad.tl");
    std::fs::write(&path, b"print(1)\n\xff\xfe\n").expect("write");
    let out = run_path(&path, tl_interp::Options::default());
    let diags = out.result.expect_err("not UTF-8");
    assert!(
        diags[0].message.starts_with("cannot read "),
        "{}",
        diags[0].message
    );
    assert!(diags[0].message.contains("not valid UTF-8"));
    assert!(diags[0].span.is_none());
    let out = run_path(&dir.join("missing.tl"), tl_interp::Options::default());
    let diags = out.result.expect_err("missing");
    assert!(
        diags[0].message.contains("no such file"),
        "{}",
        diags[0].message
    );
}

/// A writer whose reader has gone away, as stdout piped into `head` after it exits.
struct ClosedPipe;

impl std::io::Write for ClosedPipe {
    fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
        Err(std::io::Error::from(std::io::ErrorKind::BrokenPipe))
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_closed_output_ends_the_program_quietly() {
    let dir = temp_dir("pipe");
    let path = write(
        &dir,
        "p.tl",
        "main {\n  while true {\n    print(\"y\")\n  }\n}\n",
    );
    let mut interp =
        tl_interp::Interpreter::with_output(tl_interp::Options::default(), Box::new(ClosedPipe));
    assert_eq!(interp.run_file(&path), Ok(()));
}

#[test]
fn index_expressions_may_read_the_assigned_variable() {
    let out = run_ok("main {\n  let l = [1, 2, 3]\n  l[len(l) - 1] = l[0] + 10\n  print(l)\n}\n");
    assert_eq!(out, "[1, 2, 11]\n");
}

#[test]
fn loop_bodies_start_fresh_each_iteration() {
    let out = run_ok(
        "main {\n  let seen = []\n  for i in range(3) {\n    let doubled = i * 2\n    seen = append(seen, doubled)\n  }\n  print(seen)\n}\n",
    );
    assert_eq!(out, "[0, 2, 4]\n");
    assert_error(
        "main {\n  for i in range(2) {\n    let d = i\n  }\n  print(i + d)\n}\n",
        "unknown name `i`",
        "5:9",
    );
}

#[test]
fn a_struct_holding_itself_prints_without_crashing() {
    let out = run_ok(
        "struct Node { next: any }\nmain {\n  let n = Node { next: 0 }\n  n.next = n\n  let s = str(n)\n  print(len(s) > 0, n == n)\n  print(\"ab\" * 2)\n}\n",
    );
    assert_eq!(out, "true true\nabab\n");
    assert_error(
        "main {\n  let s = \"ab\" * 9000000000000\n}\n",
        "up to 1 GiB",
        "2:11",
    );
}

#[test]
fn bench_blocks_report_time_per_iteration() {
    let dir = temp_dir("bench");
    let path = write(
        &dir,
        "b.tl",
        "let n = 10\nbench small_loop {\n  let s = 0\n  for i in range(n) { s += i }\n}\nmain {\n  print(\"main is not run by --bench\")\n}\n",
    );
    let buffer = tl_interp::SharedBuffer::new();
    let mut interp = tl_interp::Interpreter::with_output(
        tl_interp::Options::default(),
        Box::new(buffer.clone()),
    );
    interp.run_benches(&path).expect("benches run");
    let out = buffer.contents();
    assert!(out.starts_with("bench small_loop ... "), "{out}");
    assert!(out.contains("/iter ("), "{out}");
    assert!(!out.contains("main is not run"), "{out}");
    assert_eq!(out.lines().count(), 1);
}

#[test]
fn growing_a_list_with_append_is_linear() {
    // 200 000 appends would take minutes if each copied the list.
    let started = std::time::Instant::now();
    let out = run_ok(
        "main {\n  let xs = []\n  for i in range(200000) {\n    xs = append(xs, len(xs) % 7)\n  }\n  print(len(xs), xs[6], xs[7])\n  let keep = xs\n  xs = append(xs, 1)\n  print(len(keep), len(xs))\n}\n",
    );
    assert_eq!(out, "200000 6 0\n200000 200001\n");
    assert!(
        started.elapsed().as_secs() < 20,
        "took {:?}",
        started.elapsed()
    );
    assert_error(
        "main {\n  let n = 3\n  n = append(n, 1)\n}\n",
        "append: argument 1 must be a list, got int",
        "3:14",
    );
}
