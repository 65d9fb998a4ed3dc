//! Transitive closure at scale: `cargo bench -p tl-logic --bench closure` prints one table (also driven by
//! `tools/bench/logic_closure.sh`, which adds Soufflé when it is installed).
//!
//! Each (graph, engine) pair runs in its own child process, so its peak resident memory (VmHWM) is its
//! own, with a time limit (`TL_CLOSURE_TIMEOUT`, seconds, default 300). Graphs:
//! - `community-10k`: 10,000 nodes in 50 communities of 200, 2 random out-edges per node inside its
//!   community (cycles and self loops included): a closure of about 1.6 million tuples in 20 rounds.
//! - `functional-10k`: 10,000 nodes, one random out-edge each (trees feeding cycles): long tails, so
//!   about 300 rounds.
//! - `forest-100k`: 100,000 nodes, each linked to a random parent among the 1,000 nodes before it:
//!   about 10 million ancestor tuples over some 220 rounds. A dense 100k x 100k Boolean tensor would need
//!   10^10 cells: the dense engine declines it (and the peak memory shows none is allocated).
//! - `dense-2k`: 2,000 nodes, 20 random out-edges each (density 1%): a closure of all 4 million pairs in a
//!   few rounds, where the tensor engine (one 2k x 2k matrix product per round) wins.
//!
//! Engines: `semi` (tuples, semi-naive), `naive` (tuples, naive), `dense` (tensor mode `dense`: einsum on
//! the default tensor device, semi-naive; a stratum over the cell limit stays on tuples and the row says
//! so). Every closure size is checked against a breadth-first search written here.
//! `TL_CLOSURE_CASE=graph:engine` runs one pair; `TL_CLOSURE_DUMP=DIR` writes each graph's edges to
//! `DIR/GRAPH/Edge.facts` (tab-separated, for Soufflé) and exits.

use std::collections::VecDeque;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tl_logic::{Atom, Engine, Strategy, TensorMode, Value};

const GRAPHS: [&str; 4] = ["community-10k", "functional-10k", "forest-100k", "dense-2k"];

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
        "dense-2k" => {
            let n = 2_000u64;
            let mut edges = Vec::new();
            for v in 0..n {
                for _ in 0..20 {
                    edges.push((v as u32, rng.below(n) as u32));
                }
            }
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

fn run_case(case: &str, engine: &str) {
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
    match engine {
        "semi" => e.set_tensor_mode(TensorMode::Sparse),
        "naive" => {
            e.set_tensor_mode(TensorMode::Sparse);
            e.set_strategy(Strategy::Naive);
        }
        "dense" => e.set_tensor_mode(TensorMode::Dense),
        other => panic!("unknown engine {other}"),
    }
    let t1 = Instant::now();
    let c1 = cpu_seconds();
    e.run_forward().expect("closure");
    let run = t1.elapsed();
    let cpu = cpu_seconds() - c1;
    let size = e.relation_len("Path").unwrap_or(0);
    let expected = closure_size_bfs(n, &edges);
    assert_eq!(size, expected, "closure size disagrees with BFS");
    let report = &e.stratum_reports()[0];
    let note = if report.dense {
        format!("tensors: {}", report.reason)
    } else if engine == "dense" {
        format!("stays on tuples: {}", report.reason)
    } else {
        String::new()
    };
    if engine == "semi" {
        // A bound query by backward chaining on a fresh engine, checked against the forward answers.
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
        eprintln!(
            "{case}: backward Path({}, Y): {} answers in {:.4} s, {} tuples derived",
            n - 1,
            answers.len(),
            back.as_secs_f64(),
            b.stats().tuples_derived
        );
    }
    let s = e.stats();
    println!(
        "ROW\t{case}\t{engine}\t{n}\t{}\t{size}\t{}\t{:.3}\t{:.2}\t{:.0}\t{:.3}\t{note}",
        edges.len(),
        s.rounds,
        run.as_secs_f64(),
        cpu,
        peak_rss_mib(),
        load.as_secs_f64(),
    );
}

/// Runs one (graph, engine) pair in a child process; its table row, or why there is none.
fn run_child(exe: &std::path::Path, spec: &str, limit: Duration) -> Result<String, String> {
    let mut child = Command::new(exe)
        .env("TL_CLOSURE_CASE", spec)
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    let start = Instant::now();
    loop {
        match child.try_wait().map_err(|e| e.to_string())? {
            Some(status) => {
                let mut out = String::new();
                if let Some(mut o) = child.stdout.take() {
                    o.read_to_string(&mut out).map_err(|e| e.to_string())?;
                }
                if !status.success() {
                    return Err(format!("failed: {status}"));
                }
                return out
                    .lines()
                    .find(|l| l.starts_with("ROW\t"))
                    .map(str::to_string)
                    .ok_or_else(|| "no result line".to_string());
            }
            None if start.elapsed() > limit => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("> {} s (stopped)", limit.as_secs()));
            }
            None => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

fn main() {
    if let Ok(dir) = std::env::var("TL_CLOSURE_DUMP") {
        for g in GRAPHS {
            let (_, edges) = graph(g);
            let d = std::path::Path::new(&dir).join(g);
            std::fs::create_dir_all(&d).expect("dump directory");
            let text: String = edges.iter().map(|(a, b)| format!("{a}\t{b}\n")).collect();
            std::fs::write(d.join("Edge.facts"), text).expect("write facts");
        }
        return;
    }
    if let Ok(spec) = std::env::var("TL_CLOSURE_CASE") {
        let (case, engine) = spec.split_once(':').unwrap_or((spec.as_str(), "semi"));
        run_case(case, engine);
        return;
    }
    let limit = Duration::from_secs(
        std::env::var("TL_CLOSURE_TIMEOUT")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(300),
    );
    let exe = std::env::current_exe().expect("own path");
    let device = tl_tensor::device::default_device();
    println!("transitive closure, Path(X, Z) <- Edge(X, Y), Path(Y, Z); tensor device: {device}");
    println!(
        "{:<15} {:>7} {:>7} {:>9} {:<6} {:>6} {:>9} {:>9} {:>9}  note",
        "graph", "nodes", "edges", "closure", "engine", "rounds", "wall s", "CPU s", "peak MiB"
    );
    for g in GRAPHS {
        for engine in ["semi", "naive", "dense"] {
            match run_child(&exe, &format!("{g}:{engine}"), limit) {
                Ok(row) => {
                    let f: Vec<&str> = row.split('\t').collect();
                    println!(
                        "{:<15} {:>7} {:>7} {:>9} {:<6} {:>6} {:>9} {:>9} {:>9}  {}",
                        f[1], f[3], f[4], f[5], f[2], f[6], f[7], f[8], f[9], f[11]
                    );
                }
                Err(why) => println!("{g:<15} {:>7} {:>7} {:>9} {engine:<6} {why}", "", "", ""),
            }
        }
    }
}
