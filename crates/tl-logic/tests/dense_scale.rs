//! A 100k-node closure never allocates a dense tensor, even with dense evaluation forced. In a test
//! binary of its own so the process-wide tensor counters (allocations, host reads) see only this test.

use tl_logic::{DenseLimits, Engine, TensorMode, Value};

#[test]
fn a_100k_node_closure_stays_sparse_and_allocates_no_tensor() {
    let mut e = Engine::new();
    e.set_tensor_mode(TensorMode::Dense);
    // 25,000 chains of 4 nodes: 100,000 nodes, 75,000 edges, 150,000 closure tuples.
    let n = 100_000i64;
    for v in 0..n {
        if v % 4 != 3 {
            e.add_fact("Edge", &[Value::Int(v), Value::Int(v + 1)])
                .unwrap();
        }
    }
    e.add_rule_text("Path(X, Y) <- Edge(X, Y)").unwrap();
    e.add_rule_text("Path(X, Z) <- Edge(X, Y), Path(Y, Z)")
        .unwrap();
    let before = tl_tensor::stats::snapshot();
    e.run_forward().unwrap();
    let after = tl_tensor::stats::snapshot();
    assert_eq!(e.relation_len("Path"), Some(150_000));
    let r = &e.stratum_reports()[0];
    assert!(!r.dense, "{r:?}");
    let limit = DenseLimits::default().max_cells as u128;
    assert!(r.largest_tensor > limit, "{r:?}");
    assert!(
        r.reason.contains("more than 16777216"),
        "the reason names the limit: {}",
        r.reason
    );
    assert_eq!(
        after.allocations - before.allocations,
        0,
        "no tensor allocated"
    );
    assert_eq!(after.bytes_allocated, before.bytes_allocated);
    // The counters do see dense evaluation: a 100-node closure allocates tensors.
    let mut small = Engine::new();
    small.set_tensor_mode(TensorMode::Dense);
    // A ring of 100 nodes with chords: strongly connected, so the closure is all 100 x 100 pairs.
    for v in 0..100 {
        for w in [(v + 1) % 100, (v * 7 + 3) % 100] {
            small
                .add_fact("Edge", &[Value::Int(v), Value::Int(w)])
                .unwrap();
        }
    }
    small.add_rule_text("Path(X, Y) <- Edge(X, Y)").unwrap();
    small
        .add_rule_text("Path(X, Z) <- Edge(X, Y), Path(Y, Z)")
        .unwrap();
    small.run_forward().unwrap();
    let done = tl_tensor::stats::snapshot();
    let r = &small.stratum_reports()[0];
    assert!(r.dense, "{r:?}");
    assert!(done.allocations > after.allocations);
    // Tensor data is read by the host once per round (the count of new facts) and, at the end,
    // twice per relation defined (the round and the rule of each derived cell), never otherwise.
    assert!(r.rounds > 3, "{r:?}");
    assert_eq!(done.host_reads - after.host_reads, r.rounds + 2);
    assert_eq!(small.relation_len("Path"), Some(100 * 100));
}
