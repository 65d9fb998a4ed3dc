//! A 100k-node closure never allocates a dense tensor, even with dense evaluation forced. In a test
//! binary of its own so the process-wide tensor allocation counters see only this test.

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
    for v in 0..100 {
        small
            .add_fact("Edge", &[Value::Int(v), Value::Int((v * 7 + 3) % 100)])
            .unwrap();
    }
    small.add_rule_text("Path(X, Y) <- Edge(X, Y)").unwrap();
    small
        .add_rule_text("Path(X, Z) <- Edge(X, Y), Path(Y, Z)")
        .unwrap();
    small.run_forward().unwrap();
    assert!(small.stratum_reports()[0].dense);
    assert!(tl_tensor::stats::snapshot().allocations > after.allocations);
}
