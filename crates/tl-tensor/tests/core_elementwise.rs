//! Elementwise ops (unary, binary with broadcasting, cast, clamp, where) against naive f64
//! references on seeded random inputs, contiguous and not.

mod core_util;
use core_util::*;
use tl_tensor::{BinaryOp, DType, Tensor, UnaryOp};

const BINARY_OPS: [BinaryOp; 16] = [
    BinaryOp::Add,
    BinaryOp::Sub,
    BinaryOp::Mul,
    BinaryOp::Div,
    BinaryOp::Pow,
    BinaryOp::Rem,
    BinaryOp::Maximum,
    BinaryOp::Minimum,
    BinaryOp::Eq,
    BinaryOp::Ne,
    BinaryOp::Lt,
    BinaryOp::Le,
    BinaryOp::Gt,
    BinaryOp::Ge,
    BinaryOp::And,
    BinaryOp::Or,
];

const SHAPE_PAIRS: [(&[usize], &[usize]); 9] = [
    (&[7], &[7]),
    (&[129], &[129]),
    (&[3, 5], &[5]),
    (&[3, 1], &[1, 5]),
    (&[4, 1, 9], &[3, 1]),
    (&[], &[2, 3, 4, 5]),
    (&[33], &[1]),
    (&[2, 3, 4, 5], &[3, 1, 5]),
    (&[1, 1], &[6, 7]),
];

fn py_rem(a: f64, b: f64) -> f64 {
    let r = a % b;
    if r != 0.0 && ((r < 0.0) != (b < 0.0)) {
        r + b
    } else {
        r
    }
}

fn bool_of(x: f64) -> f64 {
    (x != 0.0) as u8 as f64
}

/// The reference of `op` in the dtype it computes in.
fn binary_ref(op: BinaryOp, a: f64, b: f64, dtype: DType) -> f64 {
    let b2 = |c: bool| c as u8 as f64;
    let int = matches!(dtype, DType::I64 | DType::Bool);
    match op {
        BinaryOp::Add => a + b,
        BinaryOp::Sub => a - b,
        BinaryOp::Mul => a * b,
        BinaryOp::Div if int => (a / b).floor(),
        BinaryOp::Div => a / b,
        BinaryOp::Pow => a.powf(b),
        BinaryOp::Rem => py_rem(a, b),
        BinaryOp::Maximum => a.max(b),
        BinaryOp::Minimum => a.min(b),
        BinaryOp::Eq => b2(a == b),
        BinaryOp::Ne => b2(a != b),
        BinaryOp::Lt => b2(a < b),
        BinaryOp::Le => b2(a <= b),
        BinaryOp::Gt => b2(a > b),
        BinaryOp::Ge => b2(a >= b),
        BinaryOp::And => b2(a != 0.0 && b != 0.0),
        BinaryOp::Or => b2(a != 0.0 || b != 0.0),
    }
}

fn binary_inputs(
    rng: &mut rand_chacha::ChaCha8Rng,
    op: BinaryOp,
    n: usize,
    dtype: DType,
    rhs: bool,
) -> Vec<f64> {
    let v = values_for(rng, n, dtype);
    match (op, dtype, rhs) {
        // Positive bases keep float pow real; small non-negative exponents keep int pow exact.
        (BinaryOp::Pow, DType::I64, true) => v.iter().map(|x| (x.abs() % 4.0).floor()).collect(),
        (BinaryOp::Pow, DType::I64, false) => v.iter().map(|x| (x % 5.0).trunc()).collect(),
        (BinaryOp::Pow, DType::Bool, _) => v,
        (BinaryOp::Pow, _, false) => v.iter().map(|x| x.abs()).collect(),
        // No zero divisors for bools either (they compute as ints).
        (BinaryOp::Div | BinaryOp::Rem, DType::Bool, true) => vec![1.0; n],
        _ => v,
    }
}

#[test]
fn binary_ops_all_dtypes_shapes_and_layouts() {
    let mut rng = rng(1);
    let mut cases = 0;
    for op in BINARY_OPS {
        for dtype in ALL_DTYPES {
            for (sa, sb) in SHAPE_PAIRS {
                for (ka, kb) in [
                    (Kind::Contiguous, Kind::Contiguous),
                    (Kind::Transposed, Kind::Strided),
                    (Kind::Strided, Kind::Transposed),
                ] {
                    let na: usize = sa.iter().product();
                    let nb: usize = sb.iter().product();
                    let va = rounded(&binary_inputs(&mut rng, op, na, dtype, false), dtype);
                    let vb = rounded(&binary_inputs(&mut rng, op, nb, dtype, true), dtype);
                    let a = make(&va, sa, dtype, ka);
                    let b = make(&vb, sb, dtype, kb);
                    let out = a
                        .binary(op, &b)
                        .unwrap_or_else(|e| panic!("{op:?} {dtype} {sa:?} {sb:?}: {e}"));
                    let shape = broadcast(sa, sb);
                    assert_eq!(out.shape(), shape.as_slice());
                    let compute = if dtype == DType::Bool
                        && !op.returns_bool()
                        && !matches!(op, BinaryOp::Maximum | BinaryOp::Minimum)
                    {
                        DType::I64
                    } else {
                        dtype
                    };
                    let expected_dtype = if op.returns_bool() {
                        DType::Bool
                    } else {
                        compute
                    };
                    assert_eq!(out.dtype(), expected_dtype, "{op:?} on {dtype}");
                    let n: usize = shape.iter().product();
                    let reference: Vec<f64> = (0..n)
                        .map(|i| {
                            let idx = unravel(i, &shape);
                            let x = broadcast_get(&va, sa, &idx);
                            let y = broadcast_get(&vb, sb, &idx);
                            binary_ref(op, x, y, compute)
                        })
                        .collect();
                    let reference = if expected_dtype.is_float() {
                        reference
                    } else {
                        reference
                            .iter()
                            .map(|&r| {
                                if expected_dtype == DType::Bool {
                                    bool_of(r)
                                } else {
                                    r
                                }
                            })
                            .collect()
                    };
                    check(
                        &format!("{op:?} {dtype} {sa:?} {sb:?} {ka:?}/{kb:?}"),
                        &out,
                        &reference,
                        dtype,
                    );
                    cases += 1;
                }
            }
        }
    }
    assert_eq!(cases, 16 * 5 * 9 * 3);
}

#[test]
fn binary_promotes_dtypes_and_keeps_tensor_dtype_for_scalars() {
    let mut rng = rng(2);
    let v = values(&mut rng, 6);
    let f16 = Tensor::from_f64(&v, &[2, 3], DType::F16).unwrap();
    let f32s = Tensor::scalar(2.5, DType::F32);
    let out = f16.binary(BinaryOp::Mul, &f32s).unwrap();
    assert_eq!(out.dtype(), DType::F16);
    let r: Vec<f64> = rounded(&v, DType::F16).iter().map(|x| x * 2.5).collect();
    check("f16 * scalar", &out, &r, DType::F16);

    let ints = Tensor::from_i64(vec![1, 2, 3], &[3]).unwrap();
    let half = Tensor::scalar(0.5, DType::F32);
    let out = ints.binary(BinaryOp::Add, &half).unwrap();
    assert_eq!(out.dtype(), DType::F32);
    assert_eq!(out.to_vec_f64(), vec![1.5, 2.5, 3.5]);

    let f = Tensor::from_f64(&v[..3], &[3], DType::F32).unwrap();
    let bf = Tensor::from_f64(&v[3..], &[3], DType::BF16).unwrap();
    assert_eq!(f.binary(BinaryOp::Sub, &bf).unwrap().dtype(), DType::F32);
    assert_eq!(
        Tensor::from_f64(&v[..3], &[3], DType::F16)
            .unwrap()
            .binary(BinaryOp::Sub, &bf)
            .unwrap()
            .dtype(),
        DType::F32
    );
    let bools = Tensor::from_bool(vec![true, false, true], &[3]).unwrap();
    let sum = bools.binary(BinaryOp::Add, &bools).unwrap();
    assert_eq!(sum.dtype(), DType::I64);
    assert_eq!(sum.to_vec_i64(), vec![2, 0, 2]);
    let and = ints.binary(BinaryOp::And, &bools).unwrap();
    assert_eq!(and.dtype(), DType::Bool);
    assert_eq!(and.to_vec_f64(), vec![1.0, 0.0, 1.0]);
}

#[test]
fn int_division_is_floor_division_and_rejects_zero() {
    let a = Tensor::from_i64(vec![7, -7, 7, -7, 6], &[5]).unwrap();
    let b = Tensor::from_i64(vec![2, 2, -2, -2, 3], &[5]).unwrap();
    assert_eq!(
        a.binary(BinaryOp::Div, &b).unwrap().to_vec_i64(),
        vec![3, -4, -4, 3, 2]
    );
    assert_eq!(
        a.binary(BinaryOp::Rem, &b).unwrap().to_vec_i64(),
        vec![1, 1, -1, -1, 0]
    );
    let z = Tensor::from_i64(vec![1, 0, 1, 1, 1], &[5]).unwrap();
    let e = a.binary(BinaryOp::Div, &z).unwrap_err();
    assert_eq!(e.0, "div: integer division by zero");
    let e = a
        .binary(BinaryOp::Rem, &Tensor::scalar(0.0, DType::I64))
        .unwrap_err();
    assert!(e.0.starts_with("rem: integer division by zero"), "{e}");
    // A zero that the broadcast view never reads does not count... but one it reads does.
    let e = a
        .binary(BinaryOp::Pow, &Tensor::scalar(-1.0, DType::I64))
        .unwrap_err();
    assert!(e.0.starts_with("pow:"), "{e}");
    // Float division by zero is IEEE.
    let f = Tensor::from_f32(vec![1.0, -1.0], &[2]).unwrap();
    let out = f
        .binary(BinaryOp::Div, &Tensor::scalar(0.0, DType::F32))
        .unwrap()
        .to_vec_f64();
    assert_eq!(out, vec![f64::INFINITY, f64::NEG_INFINITY]);
}

#[test]
fn binary_shape_mismatch_names_op_and_shapes() {
    let a = Tensor::zeros(&[2, 3], DType::F32);
    let b = Tensor::zeros(&[4], DType::F32);
    let e = a.binary(BinaryOp::Add, &b).unwrap_err();
    assert!(
        e.0.starts_with("add: shapes [2, 3] and [4] cannot be broadcast together"),
        "{e}"
    );
    let e = a.binary(BinaryOp::Lt, &b).unwrap_err();
    assert!(e.0.starts_with("lt: shapes [2, 3] and [4]"), "{e}");
    let e = Tensor::where_cond(&Tensor::zeros(&[5], DType::Bool), &a, &a).unwrap_err();
    assert!(e.0.starts_with("where: shapes [5] and [2, 3]"), "{e}");
}

fn gelu(x: f64) -> f64 {
    0.5 * x * (1.0 + libm::erf(x / std::f64::consts::SQRT_2))
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

fn unary_ref(op: UnaryOp, x: f64) -> f64 {
    match op {
        UnaryOp::Neg => -x,
        UnaryOp::Abs => x.abs(),
        UnaryOp::Exp => x.exp(),
        UnaryOp::Log => x.ln(),
        UnaryOp::Sqrt => x.sqrt(),
        UnaryOp::Rsqrt => 1.0 / x.sqrt(),
        UnaryOp::Sin => x.sin(),
        UnaryOp::Cos => x.cos(),
        UnaryOp::Tanh => x.tanh(),
        UnaryOp::Sigmoid => sigmoid(x),
        UnaryOp::Relu => x.max(0.0),
        UnaryOp::Gelu => gelu(x),
        UnaryOp::Silu => x * sigmoid(x),
        UnaryOp::Step => (x > 0.0) as u8 as f64,
        UnaryOp::Not => (x == 0.0) as u8 as f64,
    }
}

const UNARY_OPS: [UnaryOp; 15] = [
    UnaryOp::Neg,
    UnaryOp::Abs,
    UnaryOp::Exp,
    UnaryOp::Log,
    UnaryOp::Sqrt,
    UnaryOp::Rsqrt,
    UnaryOp::Sin,
    UnaryOp::Cos,
    UnaryOp::Tanh,
    UnaryOp::Sigmoid,
    UnaryOp::Relu,
    UnaryOp::Gelu,
    UnaryOp::Silu,
    UnaryOp::Step,
    UnaryOp::Not,
];

#[test]
fn unary_ops_all_dtypes_shapes_and_layouts() {
    let mut rng = rng(3);
    for op in UNARY_OPS {
        for dtype in ALL_DTYPES {
            if dtype == DType::Bool && op == UnaryOp::Neg {
                continue;
            }
            for shape in SHAPES {
                for kind in KINDS {
                    let n: usize = shape.iter().product();
                    let mut v = values_for(&mut rng, n, dtype);
                    if matches!(op, UnaryOp::Log | UnaryOp::Sqrt | UnaryOp::Rsqrt) {
                        v.iter_mut().for_each(|x| *x = x.abs());
                    }
                    let v = rounded(&v, dtype);
                    let x = make(&v, shape, dtype, kind);
                    let out = x
                        .unary(op)
                        .unwrap_or_else(|e| panic!("{op:?} {dtype}: {e}"));
                    assert_eq!(out.shape(), shape);
                    let expected_dtype = if op == UnaryOp::Not {
                        DType::Bool
                    } else if op.is_float_function() && !dtype.is_float() {
                        DType::F32
                    } else {
                        dtype
                    };
                    assert_eq!(out.dtype(), expected_dtype, "{op:?} on {dtype}");
                    let reference: Vec<f64> = v.iter().map(|&a| unary_ref(op, a)).collect();
                    check(
                        &format!("{op:?} {dtype} {shape:?} {kind:?}"),
                        &out,
                        &reference,
                        expected_dtype,
                    );
                }
            }
        }
    }
}

#[test]
fn unary_keeps_nan_and_rejects_neg_of_bool() {
    let x = Tensor::from_f32(vec![f32::NAN, -1.0, 2.0], &[3]).unwrap();
    let r = x.unary(UnaryOp::Relu).unwrap().to_vec_f64();
    assert!(r[0].is_nan() && r[1] == 0.0 && r[2] == 2.0);
    let e = Tensor::from_bool(vec![true], &[1])
        .unwrap()
        .unary(UnaryOp::Neg)
        .unwrap_err();
    assert!(e.0.starts_with("neg:"), "{e}");
}

#[test]
fn cast_between_all_dtypes() {
    let mut rng = rng(4);
    for from in ALL_DTYPES {
        for to in ALL_DTYPES {
            for kind in KINDS {
                let shape = [5, 7];
                let v = rounded(
                    &values_for(&mut rng, 35, from)
                        .iter()
                        .map(|x| x * 3.0)
                        .collect::<Vec<_>>(),
                    from,
                );
                let x = make(&v, &shape, from, kind);
                let out = x.cast(to).unwrap();
                assert_eq!(out.dtype(), to);
                assert_eq!(out.shape(), &shape);
                let reference: Vec<f64> = v
                    .iter()
                    .map(|&a| match to {
                        DType::I64 => a.trunc(),
                        DType::Bool => bool_of(a),
                        _ => a,
                    })
                    .collect();
                check(
                    &format!("cast {from} -> {to} {kind:?}"),
                    &out,
                    &reference,
                    to,
                );
            }
        }
    }
    // Same dtype: shared, no copy.
    let x = Tensor::zeros(&[3], DType::F16);
    assert!(x.cast(DType::F16).unwrap().same_storage(&x));
}

#[test]
fn clamp_and_where_against_reference() {
    let mut rng = rng(5);
    for dtype in [DType::F32, DType::F16, DType::BF16, DType::I64] {
        for shape in SHAPES {
            for kind in KINDS {
                let n: usize = shape.iter().product();
                let v = rounded(&values_for(&mut rng, n, dtype), dtype);
                let x = make(&v, shape, dtype, kind);
                for (lo, hi) in [
                    (Some(-0.5), Some(1.25)),
                    (None, Some(0.3)),
                    (Some(-1.5), None),
                ] {
                    let out = x.clamp(lo, hi).unwrap();
                    assert_eq!(out.dtype(), dtype);
                    let reference: Vec<f64> = v
                        .iter()
                        .map(|&a| {
                            let (l, h) = if dtype == DType::I64 {
                                (lo.map(f64::ceil), hi.map(f64::floor))
                            } else {
                                (lo, hi)
                            };
                            a.max(l.unwrap_or(f64::NEG_INFINITY))
                                .min(h.unwrap_or(f64::INFINITY))
                        })
                        .collect();
                    let reference = rounded(&reference, dtype);
                    check(
                        &format!("clamp {dtype} {shape:?} {kind:?}"),
                        &out,
                        &reference,
                        dtype,
                    );
                }
            }
        }
    }
    for dtype in ALL_DTYPES {
        for (sc, sa, sb) in [
            (&[4usize, 5][..], &[4usize, 5][..], &[4usize, 5][..]),
            (&[4, 1], &[5], &[]),
            (&[7], &[3, 7], &[1, 7]),
        ] {
            let nc: usize = sc.iter().product();
            let na: usize = sa.iter().product();
            let nb: usize = sb.iter().product();
            let c = bool_values(&mut rng, nc);
            let va = rounded(&values_for(&mut rng, na, dtype), dtype);
            let vb = rounded(&values_for(&mut rng, nb, dtype), dtype);
            let ct = make(&c, sc, DType::Bool, Kind::Transposed);
            let at = make(&va, sa, dtype, Kind::Strided);
            let bt = make(&vb, sb, dtype, Kind::Contiguous);
            let out = Tensor::where_cond(&ct, &at, &bt).unwrap();
            let shape = broadcast(sc, &broadcast(sa, sb));
            assert_eq!(out.shape(), shape.as_slice());
            let reference: Vec<f64> = (0..shape.iter().product())
                .map(|i| {
                    let idx = unravel(i, &shape);
                    if broadcast_get(&c, sc, &idx) != 0.0 {
                        broadcast_get(&va, sa, &idx)
                    } else {
                        broadcast_get(&vb, sb, &idx)
                    }
                })
                .collect();
            check(&format!("where {dtype}"), &out, &reference, dtype);
        }
    }
}

#[test]
fn large_binary_matches_reference() {
    // Large enough for the threaded path, if any, and long runs.
    let mut rng = rng(6);
    let n = 1 << 20;
    let va = values(&mut rng, n + 3);
    let vb = values(&mut rng, n + 3);
    let a = Tensor::from_f64(&va, &[n + 3], DType::F32).unwrap();
    let b = Tensor::from_f64(&vb, &[n + 3], DType::F32).unwrap();
    let out = a.binary(BinaryOp::Mul, &b).unwrap();
    let va = rounded(&va, DType::F32);
    let vb = rounded(&vb, DType::F32);
    let reference: Vec<f64> = va.iter().zip(&vb).map(|(x, y)| x * y).collect();
    check("large mul", &out, &reference, DType::F32);
    let neg = a.unary(UnaryOp::Neg).unwrap();
    let reference: Vec<f64> = va.iter().map(|x| -x).collect();
    check("large neg", &neg, &reference, DType::F32);
    let gt = a.binary(BinaryOp::Gt, &b).unwrap();
    let reference: Vec<f64> = va
        .iter()
        .zip(&vb)
        .map(|(x, y)| (x > y) as u8 as f64)
        .collect();
    check("large gt", &gt, &reference, DType::Bool);
}

#[test]
fn large_transposed_operands_match_reference() {
    let mut rng = rng(7);
    for dtype in [DType::F32, DType::F16, DType::I64] {
        let (m, n) = (130usize, 129usize);
        let va = rounded(&values_for(&mut rng, m * n, dtype), dtype);
        let vb = rounded(&values_for(&mut rng, m * n, dtype), dtype);
        let a = make(&va, &[m, n], dtype, Kind::Transposed);
        let b = make(&vb, &[m, n], dtype, Kind::Contiguous);
        for (x, y, flip) in [(&a, &b, false), (&b, &a, true)] {
            let out = x.binary(BinaryOp::Sub, y).unwrap();
            let reference: Vec<f64> = va
                .iter()
                .zip(&vb)
                .map(|(p, q)| if flip { q - p } else { p - q })
                .collect();
            check(&format!("transposed sub {dtype}"), &out, &reference, dtype);
        }
    }
}

#[test]
fn exp_is_accurate_over_the_whole_f32_range() {
    // Every value of a fine grid from -86 to 88.7, each compared on its own.
    let xs: Vec<f32> = (0..=17_470).map(|i| -86.0 + i as f32 * 0.01).collect();
    let t = Tensor::from_f32(xs.clone(), &[xs.len()]).unwrap();
    let out = t.unary(UnaryOp::Exp).unwrap().to_vec_f64();
    for (&x, &y) in xs.iter().zip(&out) {
        let r = (x as f64).exp();
        assert!(((y - r) / r).abs() < 1e-6, "exp({x}) = {y}, expected {r}");
    }
    let edge = Tensor::from_f32(
        vec![
            -1000.0,
            -90.0,
            89.0,
            1000.0,
            f32::NAN,
            0.0,
            f32::NEG_INFINITY,
            f32::INFINITY,
        ],
        &[8],
    )
    .unwrap();
    let e = edge.unary(UnaryOp::Exp).unwrap().to_vec_f64();
    assert_eq!(&e[..4], &[0.0, 0.0, f64::INFINITY, f64::INFINITY]);
    assert!(e[4].is_nan());
    assert_eq!(&e[5..], &[1.0, 0.0, f64::INFINITY]);
    let s = edge.unary(UnaryOp::Sigmoid).unwrap().to_vec_f64();
    assert_eq!(&s[..4], &[0.0, 0.0, 1.0, 1.0]);
    assert!(s[4].is_nan());
}

#[test]
fn tanh_is_accurate_over_the_whole_f32_range() {
    // A fine grid over [-20, 20], a log grid down to 1e-30 on both sides, and the switch
    // point between the series and the exp formula; each element on its own, against f64.
    let mut xs: Vec<f32> = (0..=40_000).map(|i| -20.0 + i as f32 * 0.001).collect();
    for k in 0..=300 {
        let m = 10f32.powf(-(k as f32) / 10.0);
        xs.extend([m, -m]);
    }
    xs.extend([0.549_999_9, 0.55, 0.550_000_1, -0.55]);
    let t = Tensor::from_f32(xs.clone(), &[xs.len()]).unwrap();
    let out = t.unary(UnaryOp::Tanh).unwrap().to_vec_f64();
    for (&x, &y) in xs.iter().zip(&out) {
        let r = (x as f64).tanh();
        let err = if r == 0.0 {
            y.abs()
        } else {
            ((y - r) / r).abs()
        };
        assert!(
            err < 4e-7,
            "tanh({x}) = {y}, expected {r} (relative error {err:.1e})"
        );
    }
    let edge = Tensor::from_f32(
        vec![
            f32::NAN,
            0.0,
            -0.0,
            f32::INFINITY,
            f32::NEG_INFINITY,
            1e30,
            -1e30,
        ],
        &[7],
    )
    .unwrap();
    let e = edge.unary(UnaryOp::Tanh).unwrap().to_vec_f64();
    assert!(e[0].is_nan());
    assert_eq!(&e[1..], &[0.0, 0.0, 1.0, -1.0, 1.0, -1.0]);
}
