//! Transitive closure at scale: `cargo bench -p tl-logic --bench closure`.
//!
//! Each case runs in its own child process so its peak resident memory (VmHWM) is its own. Cases:
//! - `community-10k`: 10,000 nodes in 50 communities of 200, 2 random out-edges per node inside its
//!   community (cycles and self loops included): a closure of about 1.6 million tuples in 20 rounds,
//!   evaluated semi-naively and naively.
//! - `functional-10k`: 10,000 nodes, one random out-edge each (trees feeding cycles): long tails, so
//!   about 300 rounds (naive evaluation is left out here: it re-joins the whole closure each round, some
//!   300 million tuples; run it with `TL_CLOSURE_CASE=functional-10k:naive`).
//! - `forest-100k`: 100,000 nodes, each linked to a random parent among the 1,000 nodes before it:
//!   about 10 million ancestor tuples over some 220 rounds. A dense 100k x 100k Boolean tensor would need
//!   10^10 cells; the peak memory printed shows none is allocated.
//!
//! Every closure size is checked against a breadth-first search written here.

use std::collections::VecDeque;
use std::process::Command;
use std::time::Instant;

use tl_logic::{Atom, Engine, Strategy, Value};

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) % n
    }
}

fn graph(case: &str) -> (usize, Vec<(u32, u32)>) {
    let mut rng = Rng(0x7e57_0000 + case.len() as u64);
    match case {
        "community-10k" => {
            let (n, size) = (10_000u64, 200u64);
            let mut edges = Vec::new();
            for v in 0..n {
                let base = v / size * size;
                for _ in 0..2 {
                    edges.push((v as u32, (base + rng.below(size)) as u32));
                }
            }
            (n as usize, edges)
        }
        "functional-10k" => {
            let n = 10_000u64;
            (
                n as usize,
                (0..n).map(|v| (v as u32, rng.below(n) as u32)).collect(),
            )
        }
        "forest-100k" => {
            let (n, window) = (100_000u64, 1_000u64);
            let edges = (1..n)
                .map(|v| {
                    let lo = v.saturating_sub(window);
                    (v as u32, (lo + rng.below(v - lo)) as u32)
                })
                .collect();
            (n as usize, edges)
        }
        other => panic!("unknown case {other}"),
    }
}

/// Number of (x, y) with y reachable from x by one or more edges.
fn closure_size_bfs(n: usize, edges: &[(u32, u32)]) -> usize {
    let mut adj = vec![Vec::new(); n];
    for &(a, b) in edges {
        adj[a as usize].push(b as usize);
    }
    let mut seen = vec![usize::MAX; n];
    let mut total = 0;
    let mut queue = VecDeque::new();
    for s in 0..n {
        queue.extend(adj[s].iter().copied());
        while let Some(x) = queue.pop_front() {
            if seen[x] == s {
                continue;
            }
            seen[x] = s;
            total += 1;
            queue.extend(adj[x].iter().copied().filter(|&y| seen[y] != s));
        }
    }
    total
}

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// CPU seconds (user + system) this process has used: the machine may be shared, so wall time alone
/// can mislead.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th of them.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    (ticks(11) + ticks(12)) / 100.0
}

fn run_case(case: &str, strategy: Strategy) {
    let (n, edges) = graph(case);
    let mut e = Engine::new();
    let t0 = Instant::now();
    for &(a, b) in &edges {
        e.add_fact("Edge", &[Value::Int(a as i64), Value::Int(b as i64)])
            .expect("edge fact");
    }
    e.add_rule_text("Path(X, Y) <- Edge(X, Y)").expect("rule");
    e.add_rule_text("Path(X, Z) <- Edge(X, Y), Path(Y, Z)")
        .expect("rule");
    let load = t0.elapsed();
    e.set_strategy(strategy);
    let t1 = Instant::now();
    let c1 = cpu_seconds();
    e.run_forward().expect("closure");
    let run = t1.elapsed();
    let cpu = cpu_seconds() - c1;
    let size = e.relation_len("Path").unwrap_or(0);
    let expected = closure_size_bfs(n, &edges);
    assert_eq!(size, expected, "closure size disagrees with BFS");
    // A bound query by backward chaining on a fresh engine, for comparison.
    let mut b = Engine::new();
    for &(a, bb) in &edges {
        b.add_fact("Edge", &[Value::Int(a as i64), Value::Int(bb as i64)])
            .expect("edge fact");
    }
    b.add_rule_text("Path(X, Y) <- Edge(X, Y)").expect("rule");
    b.add_rule_text("Path(X, Z) <- Edge(X, Y), Path(Y, Z)")
        .expect("rule");
    let goal = Atom::parse(&format!("Path({}, Y)", n - 1)).expect("goal");
    let t2 = Instant::now();
    let answers = b.query_backward(&goal).expect("backward query");
    let back = t2.elapsed();
    let forward_answers = e.query(&goal).expect("forward query");
    assert_eq!(answers, forward_answers, "backward and forward disagree");
    let s = e.stats();
    println!(
        "{case:<15} {:<9} nodes {n:>6}  edges {:>6}  closure {size:>9}  rounds {:>4}  forward {:>8.3} s wall {:>8.2} s CPU  ({:.1} M tuples/CPU-s, join rows {:>10}, emitted {:>10})  load {:.3} s  heap {:>6.0} MiB  peak RSS {:>6.0} MiB  | backward Path({}, Y): {} answers in {:.4} s, {} tuples derived",
        format!("{strategy:?}"),
        edges.len(),
        s.rounds,
        run.as_secs_f64(),
        cpu,
        size as f64 / cpu / 1e6,
        s.rows_examined,
        s.tuples_emitted,
        load.as_secs_f64(),
        e.heap_bytes() as f64 / (1024.0 * 1024.0),
        peak_rss_mib(),
        n - 1,
        answers.len(),
        back.as_secs_f64(),
        b.stats().tuples_derived,
    );
}

fn main() {
    if let Ok(spec) = std::env::var("TL_CLOSURE_CASE") {
        let (case, strategy) = spec.split_once(':').unwrap_or((spec.as_str(), "semi"));
        let strategy = if strategy == "naive" {
            Strategy::Naive
        } else {
            Strategy::SemiNaive
        };
        run_case(case, strategy);
        return;
    }
    let exe = std::env::current_exe().expect("own path");
    for spec in [
        "community-10k:semi",
        "community-10k:naive",
        "functional-10k:semi",
        "forest-100k:semi",
    ] {
        let status = Command::new(&exe)
            .env("TL_CLOSURE_CASE", spec)
            .status()
            .expect("run case");
        if !status.success() {
            eprintln!("case {spec} failed: {status}");
            std::process::exit(1);
        }
    }
}
