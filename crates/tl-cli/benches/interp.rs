//! Interpreter overhead: TensorLogic loops of 1e6 scalar additions run through the
//! interpreter, reported as nanoseconds per executed statement and statements per second.
//!
//! Run with `cargo bench -p tl-cli --bench interp`. `TL_BENCH_ITERS` changes the loop count
//! (the test suite's smoke run uses a small one).

use std::io::Write;
use std::time::Instant;

use tl_interp::Interpreter;
use tl_interp::interp::{Options, SharedBuffer};

/// One benchmark: a program (with `{n}` for the loop count), the statements it executes per
/// iteration, and what it must print (so a broken loop cannot look fast).
struct Case {
    name: &'static str,
    source: &'static str,
    statements_per_iteration: u64,
    expected: fn(u64) -> String,
}

const CASES: &[Case] = &[
    Case {
        name: "for-range int add (s += i)",
        source: "let s = 0\nfor i in range({n}) {\n    s += i\n}\nprint(s)\n",
        statements_per_iteration: 1,
        expected: |n| format!("{}\n", n * (n - 1) / 2),
    },
    Case {
        name: "while float add (s = s + 1.0; i += 1)",
        source: "let s = 0.0\nlet i = 0\nwhile i < {n} {\n    s = s + 1.0\n    i += 1\n}\nprint(s)\n",
        statements_per_iteration: 2,
        expected: |n| format!("{}.0\n", n),
    },
];

fn main() {
    let iterations: u64 = std::env::var("TL_BENCH_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir = std::env::temp_dir().join(format!("tl-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temporary directory");
    println!("interpreter overhead, {iterations} iterations per loop");
    for case in CASES {
        let path = dir.join("bench.tl");
        let source = case.source.replace("{n}", &iterations.to_string());
        std::fs::File::create(&path)
            .and_then(|mut f| f.write_all(source.as_bytes()))
            .expect("write the benchmark program");
        // Best of three runs: the first warms caches and the allocator.
        let mut best = f64::INFINITY;
        for _ in 0..3 {
            let out = SharedBuffer::new();
            let mut interp = Interpreter::with_output(Options::default(), Box::new(out.clone()));
            let start = Instant::now();
            if let Err(diags) = interp.run_file(&path) {
                for d in diags {
                    eprint!("{}", d.render(interp.sources()));
                }
                std::process::exit(1);
            }
            let seconds = start.elapsed().as_secs_f64();
            assert_eq!(
                out.contents(),
                (case.expected)(iterations),
                "{}: wrong result",
                case.name
            );
            best = best.min(seconds);
        }
        let statements = (iterations * case.statements_per_iteration) as f64;
        println!(
            "{:<42} {:>8.1} ns/statement {:>12.0} statements/s  ({:.3} s total)",
            case.name,
            best * 1e9 / statements,
            statements / best,
            best
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
