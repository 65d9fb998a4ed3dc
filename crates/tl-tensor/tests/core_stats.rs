//! The `--stats` counters. One test in its own binary: the counters are process-wide.

use tl_tensor::stats;
use tl_tensor::{BinaryOp, DType, ReduceOp, Tensor};

#[test]
fn counters_follow_ops_allocations_and_reads() {
    stats::reset();
    assert_eq!(stats::snapshot(), stats::Stats::default());

    let a = Tensor::ones(&[4, 8], DType::F32); // 1 op, 1 allocation of 128 bytes
    let s = stats::snapshot();
    assert_eq!(
        (s.ops_dispatched, s.allocations, s.bytes_allocated),
        (1, 1, 128)
    );

    // Views dispatch nothing and allocate nothing.
    let t = a
        .transpose(0, 1)
        .unwrap()
        .slice(0, Some(1), None, 2)
        .unwrap()
        .reshape(&[2, 2, 4])
        .unwrap();
    assert!(t.same_storage(&a));
    let v = a
        .reshape(&[32])
        .unwrap()
        .unsqueeze(0)
        .unwrap()
        .broadcast_to(&[3, 32])
        .unwrap();
    assert_eq!(stats::snapshot(), s);

    // One binary op (same dtype, broadcast as views): one dispatch, one allocation.
    let b = v
        .binary(BinaryOp::Add, &Tensor::scalar(1.0, DType::F32))
        .unwrap();
    let s2 = stats::snapshot().since(&s);
    // The scalar is one allocation (not an op); the add is one op and one allocation.
    assert_eq!((s2.ops_dispatched, s2.allocations), (1, 2));
    assert_eq!(s2.bytes_allocated, 4 + 3 * 32 * 4);

    let before = stats::snapshot();
    let total = b
        .reduce(ReduceOp::Sum, None, false)
        .unwrap()
        .to_scalar_f64()
        .unwrap();
    assert_eq!(total, 192.0);
    let d = stats::snapshot().since(&before);
    assert_eq!((d.ops_dispatched, d.host_reads), (1, 1));
    let _ = b.to_vec_i64();
    let _ = format!("{b}");
    // Printing an int tensor is one read too.
    let _ = format!("{}", Tensor::from_i64(vec![1, 2], &[2]).unwrap());
    assert_eq!(stats::snapshot().since(&before).host_reads, 4);

    let text = stats::snapshot().to_string();
    assert!(
        text.contains("ops dispatched") && text.contains("host reads"),
        "{text}"
    );
    stats::reset();
    assert_eq!(stats::snapshot().ops_dispatched, 0);
}
