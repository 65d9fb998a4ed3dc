//! Helpers: run a program given as text (written to a fresh temporary directory) and capture
//! what it prints.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use tl_interp::{Interpreter, Options, SharedBuffer};
use tl_syntax::Diagnostic;

/// A new empty directory under the system temp dir, unique to this process and call.
pub fn temp_dir(tag: &str) -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("tl-interp-test-{}-{tag}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write test file");
    path
}

/// The outcome of running one program.
pub struct Outcome {
    pub stdout: String,
    pub result: Result<(), Vec<Diagnostic>>,
    pub interp: Interpreter,
}

impl Outcome {
    /// Every diagnostic rendered, for failure messages.
    pub fn rendered(&self) -> String {
        match &self.result {
            Ok(()) => String::new(),
            Err(diags) => diags
                .iter()
                .map(|d| d.render(self.interp.sources()))
                .collect(),
        }
    }
}

pub fn run_path(path: &Path, options: Options) -> Outcome {
    let buffer = SharedBuffer::new();
    let mut interp = Interpreter::with_output(options, Box::new(buffer.clone()));
    let result = interp.run_file(path);
    Outcome {
        stdout: buffer.contents(),
        result,
        interp,
    }
}

pub fn run(src: &str) -> Outcome {
    let dir = temp_dir("run");
    let path = write(&dir, "main.tl", src);
    run_path(&path, Options::default())
}

/// Runs `src`, which must succeed, and returns its output.
#[track_caller]
pub fn run_ok(src: &str) -> String {
    let out = run(src);
    if out.result.is_err() {
        panic!(
            "program failed:\n{}\nsource:\n{src}\noutput so far:\n{}",
            out.rendered(),
            out.stdout
        );
    }
    out.stdout
}

/// Runs `src`, which must fail, and returns (message, "line:col") of its first diagnostic.
#[track_caller]
pub fn run_err(src: &str) -> (String, String) {
    let out = run(src);
    match &out.result {
        Ok(()) => panic!(
            "program succeeded but should fail:\n{src}\noutput:\n{}",
            out.stdout
        ),
        Err(diags) => first_error(&out.interp, diags),
    }
}

pub fn first_error(interp: &Interpreter, diags: &[Diagnostic]) -> (String, String) {
    let d = &diags[0];
    let loc = d
        .location(interp.sources())
        .map(|l| {
            l.rsplitn(3, ':')
                .take(2)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join(":")
        })
        .unwrap_or_default();
    (d.message.clone(), loc)
}

/// Asserts that `src` fails with a message containing `needle` at `line:col`.
#[track_caller]
pub fn assert_error(src: &str, needle: &str, line_col: &str) {
    let (message, loc) = run_err(src);
    assert!(
        message.contains(needle),
        "expected an error containing {needle:?}, got {message:?}\nsource:\n{src}"
    );
    assert_eq!(
        loc, line_col,
        "wrong location for {message:?}\nsource:\n{src}"
    );
}
