//! Golden tests: runs the built `tl` binary on every program and compares what it prints with
//! the expected text, exactly.
//!
//! - `tests/programs/NAME.tl` (at the repository root) with `NAME.out` (expected stdout) and/or
//!   `NAME.err` (expected stderr). The expected exit code is 1 when `NAME.err` exists, else 0.
//!   A missing `.out` means stdout must be empty; a missing `.err` means stderr must be empty.
//!   Files in subfolders (`tests/programs/lib/`) are helpers for imports, not run themselves.
//! - `examples/NAME.tl` with the expected text in `tests/examples/NAME.out` / `NAME.err`.
//!
//! Each program runs from the repository root as `tl run tests/programs/NAME.tl`, so paths in
//! diagnostics are stable. Directives in `//` comments at the top of a program:
//! `// tl-flags: --test` (extra flags for `tl run`), `// tl-args: a b c` (program arguments
//! after `--`), `// tl-exit: N` (expected exit code).
//!
//! `TL_BLESS=1 cargo test -p tl-cli --test golden` writes the actual output as the expected
//! one. Read every blessed file before committing it: a wrong expected output is a bug.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A program that runs longer than this is reported as hung.
const TIMEOUT: Duration = Duration::from_secs(120);

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repository root")
}

/// One program and where its expected outputs live.
struct Case {
    /// Path relative to the repository root, as passed to `tl run`.
    program: String,
    expected_out: PathBuf,
    expected_err: PathBuf,
}

/// The `.tl` files directly in `dir` (relative to the root), sorted.
fn programs_in(root: &Path, dir: &str, expected_dir: &str) -> Vec<Case> {
    let mut cases = Vec::new();
    for entry in fs::read_dir(root.join(dir)).unwrap_or_else(|e| panic!("read {dir}: {e}")) {
        let path = entry.expect("directory entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("tl") || !path.is_file() {
            continue;
        }
        let stem = path.file_stem().unwrap().to_string_lossy().to_string();
        let file = path.file_name().unwrap().to_string_lossy().to_string();
        cases.push(Case {
            program: format!("{dir}/{file}"),
            expected_out: root.join(expected_dir).join(format!("{stem}.out")),
            expected_err: root.join(expected_dir).join(format!("{stem}.err")),
        });
    }
    cases.sort_by(|a, b| a.program.cmp(&b.program));
    cases
}

/// Directives from the leading `// tl-...:` comments (the file may not be UTF-8).
#[derive(Default)]
struct Directives {
    flags: Vec<String>,
    args: Vec<String>,
    exit: Option<i32>,
}

fn directives(path: &Path) -> Directives {
    let bytes = fs::read(path).unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes);
    let mut d = Directives::default();
    for line in text.lines() {
        let Some(rest) = line.trim().strip_prefix("// tl-") else {
            continue;
        };
        let Some((key, value)) = rest.split_once(':') else {
            continue;
        };
        let words = value.split_whitespace().map(str::to_string);
        match key.trim() {
            "flags" => d.flags.extend(words),
            "args" => d.args.extend(words),
            "exit" => d.exit = Some(value.trim().parse().expect("tl-exit: a number")),
            other => panic!("{}: unknown directive tl-{other}", path.display()),
        }
    }
    d
}

struct Outcome {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn run_tl(root: &Path, program: &str, d: &Directives) -> Outcome {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tl"));
    cmd.current_dir(root)
        .arg("run")
        .args(&d.flags)
        .arg(program)
        .env("TL_GOLDEN_GREETING", "hello from the environment")
        .env_remove("TL_GOLDEN_UNSET")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if !d.args.is_empty() {
        cmd.arg("--").args(&d.args);
    }
    let mut child = cmd.spawn().expect("start tl");
    // Read both pipes on threads so a chatty program cannot block on a full pipe.
    let mut out_pipe = child.stdout.take().unwrap();
    let mut err_pipe = child.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = out_pipe.read_to_end(&mut buf);
        buf
    });
    let err_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = err_pipe.read_to_end(&mut buf);
        buf
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for tl") {
            break Some(status);
        }
        if start.elapsed() > TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let stdout = String::from_utf8_lossy(&out_reader.join().unwrap()).into_owned();
    let mut stderr = String::from_utf8_lossy(&err_reader.join().unwrap()).into_owned();
    if status.is_none() {
        stderr.push_str(&format!("\n<killed after {} s>\n", TIMEOUT.as_secs()));
    }
    Outcome {
        code: status.and_then(|s| s.code()),
        stdout,
        stderr,
    }
}

/// A line diff (longest common subsequence): `-` expected only, `+` actual only.
fn diff(expected: &str, actual: &str) -> String {
    let a: Vec<&str> = expected.lines().collect();
    let b: Vec<&str> = actual.lines().collect();
    if a.len() * b.len() > 4_000_000 {
        return format!("--- expected\n{expected}\n+++ actual\n{actual}\n");
    }
    // lcs[i][j] = LCS length of a[i..] and b[j..]
    let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let mut out = String::from("--- expected\n+++ actual\n");
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            out.push_str(&format!("  {}\n", a[i]));
            i += 1;
            j += 1;
        } else if j < b.len() && (i == a.len() || lcs[i][j + 1] >= lcs[i + 1][j]) {
            out.push_str(&format!("+ {}\n", b[j]));
            j += 1;
        } else {
            out.push_str(&format!("- {}\n", a[i]));
            i += 1;
        }
    }
    if expected.ends_with('\n') != actual.ends_with('\n') {
        out.push_str("(the two differ in the final newline)\n");
    }
    out
}

/// Writes `text` as the expected output, or removes the file when `text` is empty.
fn bless(path: &Path, text: &str) {
    if text.is_empty() {
        let _ = fs::remove_file(path);
    } else {
        fs::write(path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }
}

/// Runs one case; returns a description of every way it failed.
fn check(root: &Path, case: &Case, blessing: bool) -> Option<String> {
    let d = directives(&root.join(&case.program));
    let expected_out = fs::read_to_string(&case.expected_out).unwrap_or_default();
    let expected_err = fs::read_to_string(&case.expected_err).unwrap_or_default();
    let expected_code = d
        .exit
        .unwrap_or(if case.expected_err.exists() { 1 } else { 0 });
    let outcome = run_tl(root, &case.program, &d);
    if blessing {
        bless(&case.expected_out, &outcome.stdout);
        bless(&case.expected_err, &outcome.stderr);
    }
    let mut problems = String::new();
    if outcome.code != Some(expected_code) {
        problems.push_str(&format!(
            "exit code {:?}, expected {expected_code}\n",
            outcome.code
        ));
        if expected_code == 0 && !outcome.stderr.is_empty() && expected_err.is_empty() {
            problems.push_str(&format!("stderr:\n{}\n", outcome.stderr));
        }
    }
    if !blessing {
        if outcome.stdout != expected_out {
            problems.push_str(&format!(
                "stdout differs:\n{}",
                diff(&expected_out, &outcome.stdout)
            ));
        }
        if outcome.stderr != expected_err {
            problems.push_str(&format!(
                "stderr differs:\n{}",
                diff(&expected_err, &outcome.stderr)
            ));
        }
    }
    if problems.is_empty() {
        None
    } else {
        Some(format!("==== {} ====\n{problems}", case.program))
    }
}

/// Runs every case (in parallel) and fails once, listing every failure.
fn run_all(cases: &[Case]) {
    let root = repo_root();
    let blessing = std::env::var("TL_BLESS").is_ok_and(|v| v == "1");
    let failures = Mutex::new(Vec::new());
    let next = Mutex::new(0usize);
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                loop {
                    let i = {
                        let mut n = next.lock().unwrap();
                        *n += 1;
                        *n - 1
                    };
                    let Some(case) = cases.get(i) else { break };
                    if let Some(f) = check(&root, case, blessing) {
                        failures.lock().unwrap().push(f);
                    }
                }
            });
        }
    });
    let mut failures = failures.into_inner().unwrap();
    failures.sort();
    if !failures.is_empty() {
        panic!(
            "{} of {} programs failed:\n\n{}",
            failures.len(),
            cases.len(),
            failures.join("\n")
        );
    }
}

#[test]
fn programs() {
    let root = repo_root();
    let cases = programs_in(&root, "tests/programs", "tests/programs");
    run_all(&cases);
    // The suite is the acceptance bar; keep it from shrinking by accident.
    let errors = cases.iter().filter(|c| c.expected_err.exists()).count();
    assert!(cases.len() >= 60, "only {} golden programs", cases.len());
    assert!(errors >= 20, "only {errors} golden error cases");
}

#[test]
fn examples() {
    let root = repo_root();
    let mut cases = programs_in(&root, "examples", "tests/examples");
    assert!(cases.len() >= 8, "only {} examples", cases.len());
    let logic = programs_in(&root, "examples/logic", "tests/examples/logic");
    assert!(logic.len() >= 5, "only {} logic examples", logic.len());
    cases.extend(logic);
    run_all(&cases);
    for case in &cases {
        assert!(
            case.expected_out.exists() || case.expected_err.exists(),
            "{} has no expected output in tests/examples/",
            case.program
        );
    }
}

/// `examples/learn/*.tl` (training runs with a fixed seed) against `tests/examples/learn/`.
#[test]
fn learn_examples() {
    let root = repo_root();
    let cases = programs_in(&root, "examples/learn", "tests/examples/learn");
    assert!(cases.len() >= 3, "only {} learning examples", cases.len());
    run_all(&cases);
    for case in &cases {
        assert!(
            case.expected_out.exists(),
            "{} has no expected output in tests/examples/learn/",
            case.program
        );
    }
}

#[test]
fn diff_marks_changed_lines() {
    let d = diff("a\nb\nc\n", "a\nx\nc\n");
    assert!(d.contains("- b\n"), "{d}");
    assert!(d.contains("+ x\n"), "{d}");
    assert!(d.contains("  a\n") && d.contains("  c\n"), "{d}");
    let d = diff("a\n", "a");
    assert!(d.contains("final newline"), "{d}");
}

/// Error programs whose error `tl check` finds without running: it must print exactly what
/// `tl run` prints.
const STATIC_ERRORS: &[&str] = &[
    "err_error_in_import",
    "err_import_cycle",
    "err_missing_import",
    "err_non_utf8",
    "err_syntax_caret",
    "err_syntax_multiple",
    "err_undeclared_assign",
    "err_unknown_function",
    "err_unknown_name",
    "err_unterminated_string",
    "err_user_fn_arg_count",
];

/// `tl check` accepts every program that runs, and reports the static errors as `tl run` does.
#[test]
fn check_agrees_with_run() {
    let root = repo_root();
    let mut cases = programs_in(&root, "tests/programs", "tests/programs");
    cases.extend(programs_in(&root, "examples/learn", "tests/examples/learn"));
    cases.extend(programs_in(&root, "examples", "tests/examples"));
    cases.extend(programs_in(&root, "examples/logic", "tests/examples/logic"));
    let mut failures = Vec::new();
    for case in &cases {
        let stem = Path::new(&case.program)
            .file_stem()
            .unwrap()
            .to_string_lossy()
            .to_string();
        let out = Command::new(env!("CARGO_BIN_EXE_tl"))
            .current_dir(&root)
            .args(["check", &case.program])
            .output()
            .expect("run tl check");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        if STATIC_ERRORS.contains(&stem.as_str()) {
            let expected = fs::read_to_string(&case.expected_err).unwrap_or_default();
            if out.status.code() != Some(1) || stderr != expected {
                failures.push(format!(
                    "==== tl check {} (exit {:?})\n{}",
                    case.program,
                    out.status.code(),
                    diff(&expected, &stderr)
                ));
            }
        } else if !case.expected_err.exists()
            && (!out.status.success() || stdout != format!("{}: ok\n", case.program))
        {
            failures.push(format!(
                "==== tl check {} rejects a program that runs:\n{stderr}",
                case.program
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
