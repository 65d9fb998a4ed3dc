//! Imports (relative paths, once per file, cycles, missing files) and `tl check` (name
//! resolution without running).

mod common;
use common::*;

use tl_interp::{Interpreter, Options, SharedBuffer};

#[test]
fn imports_are_relative_to_the_importing_file() {
    let dir = temp_dir("imports");
    std::fs::create_dir_all(dir.join("lib/util")).expect("mkdir");
    write(
        &dir,
        "lib/shapes.tl",
        "import \"util/math.tl\"\nstruct Square { side: float }\nimpl Square {\n  fn area(self) -> float { sq(self.side) }\n}\nlet UNIT = 1.0\nmain {\n  print(\"the library's main must not run\")\n}\n",
    );
    write(&dir, "lib/util/math.tl", "fn sq(x) { x * x }\n");
    let main = write(
        &dir,
        "main.tl",
        "import \"lib/shapes.tl\"\nmain {\n  let s = Square { side: 3.0 }\n  print(s.area(), sq(4), UNIT)\n}\n",
    );
    let out = run_path(&main, Options::default());
    assert!(out.result.is_ok(), "{}", out.rendered());
    assert_eq!(out.stdout, "9.0 16 1.0\n");
}

#[test]
fn each_file_is_loaded_once() {
    let dir = temp_dir("once");
    write(
        &dir,
        "common.tl",
        "print(\"common loaded\")\nfn one() { 1 }\n",
    );
    write(&dir, "a.tl", "import \"common.tl\"\nfn a() { one() + 1 }\n");
    write(
        &dir,
        "b.tl",
        "import \"./common.tl\"\nfn b() { one() + 2 }\n",
    );
    let main = write(
        &dir,
        "main.tl",
        "import \"a.tl\"\nimport \"b.tl\"\nimport \"common.tl\"\nprint(a() + b())\n",
    );
    let out = run_path(&main, Options::default());
    assert!(out.result.is_ok(), "{}", out.rendered());
    assert_eq!(out.stdout, "common loaded\n5\n");
}

#[test]
fn import_cycles_name_the_chain() {
    let dir = temp_dir("cycle");
    write(&dir, "b.tl", "import \"c.tl\"\nfn b() { 2 }\n");
    write(&dir, "c.tl", "fn c() { 3 }\n\nimport \"a.tl\"\n");
    let main = write(&dir, "a.tl", "import \"b.tl\"\nprint(b())\n");
    let out = run_path(&main, Options::default());
    let diags = out.result.as_ref().expect_err("a cycle");
    assert_eq!(
        diags[0].message,
        "import cycle: a.tl -> b.tl -> c.tl -> a.tl"
    );
    let location = diags[0].location(out.interp.sources()).expect("a span");
    assert!(location.ends_with("c.tl:3:1"), "{location}");
    assert_eq!(out.stdout, "", "nothing runs when loading fails");
}

#[test]
fn a_missing_import_names_the_resolved_path() {
    let dir = temp_dir("missing");
    std::fs::create_dir_all(dir.join("sub")).expect("mkdir");
    let main = write(
        &dir,
        "sub/main.tl",
        "let x = 1\nimport \"../nowhere/lib.tl\"\n",
    );
    let out = run_path(&main, Options::default());
    let diags = out.result.as_ref().expect_err("missing file");
    let message = &diags[0].message;
    assert!(
        message.starts_with("cannot import \"../nowhere/lib.tl\": file "),
        "{message}"
    );
    assert!(message.contains("nowhere/lib.tl not found"), "{message}");
    let (_, loc) = first_error(&out.interp, diags);
    assert_eq!(loc, "2:1");
}

#[test]
fn syntax_errors_in_imports_are_reported_with_their_file() {
    let dir = temp_dir("syntax");
    write(&dir, "bad.tl", "fn broken( {\n");
    let main = write(&dir, "main.tl", "import \"bad.tl\"\nprint(1)\n");
    let out = run_path(&main, Options::default());
    let diags = out.result.as_ref().expect_err("syntax error");
    let location = diags[0].location(out.interp.sources()).expect("a span");
    assert!(location.contains("bad.tl:1:"), "{location}");
}

fn check(src: &str) -> (Result<(), Vec<tl_syntax::Diagnostic>>, Interpreter, String) {
    let dir = temp_dir("check");
    let path = write(&dir, "prog.tl", src);
    let buffer = SharedBuffer::new();
    let mut interp = Interpreter::with_output(Options::default(), Box::new(buffer.clone()));
    let result = interp.check_file(&path);
    (result, interp, buffer.contents())
}

#[test]
fn check_reports_every_unknown_name_without_running() {
    let src = r#"fn helper(a) {
    let b = a + undefined_one
    b
}
main {
    print("this must not print")
    let x = helper(1)
    for i in range(3) {
        print(i + x)
    }
    print(i)
    y = 3
    missing_fn(x)
    let z = Nope { a: 1 }
    let w = f16::zeros([2]) + Foo::bar()
}
"#;
    let (result, interp, output) = check(src);
    assert_eq!(output, "", "check must not run the program");
    let diags = result.expect_err("problems");
    let found: Vec<(String, String)> = diags
        .iter()
        .map(|d| first_error(&interp, std::slice::from_ref(d)))
        .collect();
    let expected = [
        ("unknown name `undefined_one`", "2:17"),
        ("unknown name `i`", "11:11"),
        ("cannot assign to `y`", "12:5"),
        ("unknown function `missing_fn`", "13:5"),
        ("unknown struct `Nope`", "14:13"),
        ("unknown function `Foo::bar`", "15:31"),
    ];
    assert_eq!(found.len(), expected.len(), "{found:?}");
    for ((message, loc), (want, want_loc)) in found.iter().zip(expected) {
        assert!(message.contains(want), "{message} should contain {want}");
        assert_eq!(loc, want_loc, "{message}");
    }
}

#[test]
fn check_accepts_valid_programs_and_equations() {
    let src = r#"import "lib.tl"
tensor W: float32[2, 2] = eye(2)
let scale = 2.0
struct P { x: int }
impl P {
    fn get(self) { self.x }
}
fn f(x: float32[?, 2]) -> float32[?, 2] { x @ W * scale }
main {
    let p = P { x: 1 }
    x := p.get()
    x = x + lib_fn()
    let t = f(ones([3, 2]))
    Y[i, k] = t[i, j] * W[j, k]
    let g = f
    print(g(t), P::get(p))
}
"#;
    let dir = temp_dir("check-ok");
    write(&dir, "lib.tl", "fn lib_fn() { 41 }\n");
    let path = write(&dir, "prog.tl", src);
    let mut interp = Interpreter::new(Options::default());
    let result = interp.check_file(&path);
    if let Err(diags) = result {
        panic!(
            "{}",
            diags
                .iter()
                .map(|d| d.render(interp.sources()))
                .collect::<String>()
        );
    }
}

#[test]
fn check_reports_syntax_errors() {
    let (result, _, _) = check("main {\n  let = 3\n}\n");
    assert!(result.is_err());
}
