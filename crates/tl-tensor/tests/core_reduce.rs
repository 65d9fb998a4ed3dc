//! Reductions, argmax/argmin and norm against naive f64 references, for every dtype, dims
//! subsets (negative too), keepdim on and off, and non-contiguous inputs.

mod core_util;
use core_util::*;
use tl_tensor::{DType, ReduceOp, Tensor};

const OPS: [ReduceOp; 5] = [
    ReduceOp::Sum,
    ReduceOp::Mean,
    ReduceOp::Max,
    ReduceOp::Min,
    ReduceOp::Prod,
];

/// Naive reduction of `v` (row-major in `shape`) over `dims`; returns (kept shape, values).
fn reference(op: ReduceOp, v: &[f64], shape: &[usize], dims: &[usize]) -> (Vec<usize>, Vec<f64>) {
    let out_shape: Vec<usize> = shape
        .iter()
        .enumerate()
        .map(|(d, &s)| if dims.contains(&d) { 1 } else { s })
        .collect();
    let n_out: usize = out_shape.iter().product();
    let mut groups: Vec<Vec<f64>> = vec![Vec::new(); n_out];
    for (i, &x) in v.iter().enumerate() {
        let mut idx = unravel(i, shape);
        for &d in dims {
            idx[d] = 0;
        }
        groups[ravel(&idx, &out_shape)].push(x);
    }
    let values = groups
        .iter()
        .map(|g| match op {
            ReduceOp::Sum => g.iter().sum(),
            ReduceOp::Mean => g.iter().sum::<f64>() / g.len() as f64,
            ReduceOp::Max => g.iter().cloned().fold(f64::NEG_INFINITY, f64::max),
            ReduceOp::Min => g.iter().cloned().fold(f64::INFINITY, f64::min),
            ReduceOp::Prod => g.iter().product(),
        })
        .collect();
    (out_shape, values)
}

fn dim_sets(rank: usize) -> Vec<Option<Vec<isize>>> {
    let mut sets = vec![None];
    if rank >= 1 {
        sets.push(Some(vec![0]));
        sets.push(Some(vec![-1]));
    }
    if rank >= 2 {
        sets.push(Some(vec![0, -1]));
    }
    if rank >= 3 {
        sets.push(Some(vec![1]));
        sets.push(Some(vec![-1, -3]));
    }
    if rank >= 4 {
        sets.push(Some(vec![1, 2]));
    }
    sets
}

#[test]
fn reductions_match_reference() {
    let mut r = rng(30);
    let mut cases = 0;
    for op in OPS {
        for dtype in ALL_DTYPES {
            for shape in SHAPES {
                for kind in KINDS {
                    let n: usize = shape.iter().product();
                    let mut v = values_for(&mut r, n, dtype);
                    if op == ReduceOp::Prod {
                        // Keep products of up to 129 factors in range: magnitudes near 1.
                        v.iter_mut().for_each(|x| {
                            if dtype.is_float() {
                                *x = x.signum() * (0.9 + x.abs() * 0.1)
                            } else if dtype == DType::I64 {
                                *x = x.signum()
                            }
                        });
                    }
                    let v = rounded(&v, dtype);
                    let x = make(&v, shape, dtype, kind);
                    for dims in dim_sets(shape.len()) {
                        let norm: Vec<usize> = match &dims {
                            None => (0..shape.len()).collect(),
                            Some(d) => d
                                .iter()
                                .map(|&d| {
                                    if d < 0 {
                                        (d + shape.len() as isize) as usize
                                    } else {
                                        d as usize
                                    }
                                })
                                .collect(),
                        };
                        let (kept, refv) = reference(op, &v, shape, &norm);
                        for keepdim in [false, true] {
                            let out = x.reduce(op, dims.as_deref(), keepdim).unwrap();
                            let expect_shape: Vec<usize> = if keepdim {
                                kept.clone()
                            } else {
                                shape
                                    .iter()
                                    .enumerate()
                                    .filter(|(d, _)| !norm.contains(d))
                                    .map(|(_, &s)| s)
                                    .collect()
                            };
                            assert_eq!(
                                out.shape(),
                                expect_shape.as_slice(),
                                "{op:?} {dims:?} keepdim {keepdim}"
                            );
                            assert_eq!(out.dtype(), op.output_dtype(dtype));
                            let tol_dtype = if op == ReduceOp::Mean && !dtype.is_float() {
                                DType::F32
                            } else {
                                op.output_dtype(dtype)
                            };
                            check(
                                &format!("{op:?} {dtype} {shape:?} {kind:?} {dims:?}"),
                                &out,
                                &refv,
                                tol_dtype,
                            );
                            cases += 1;
                        }
                    }
                }
            }
        }
    }
    assert!(cases > 1000);
}

#[test]
fn large_sums_stay_accurate() {
    let mut r = rng(31);
    let n = 1 << 20;
    let v = rounded(&values(&mut r, n), DType::F32);
    let x = Tensor::from_f64(&v, &[1024, 1024], DType::F32).unwrap();
    for dims in [Some(&[0isize][..]), Some(&[1][..]), None] {
        let norm: Vec<usize> = match dims {
            Some(d) => vec![d[0] as usize],
            None => vec![0, 1],
        };
        let (_, refv) = reference(ReduceOp::Sum, &v, &[1024, 1024], &norm);
        check(
            "large sum",
            &x.reduce(ReduceOp::Sum, dims, false).unwrap(),
            &refv,
            DType::F32,
        );
        let (_, refv) = reference(ReduceOp::Mean, &v, &[1024, 1024], &norm);
        check(
            "large mean",
            &x.reduce(ReduceOp::Mean, dims, false).unwrap(),
            &refv,
            DType::F32,
        );
    }
}

#[test]
fn reduction_edge_cases() {
    let e = Tensor::zeros(&[0, 3], DType::F32);
    assert_eq!(
        e.reduce(ReduceOp::Sum, Some(&[0]), false)
            .unwrap()
            .to_vec_f64(),
        vec![0.0; 3]
    );
    assert_eq!(
        e.reduce(ReduceOp::Prod, Some(&[0]), false)
            .unwrap()
            .to_vec_f64(),
        vec![1.0; 3]
    );
    assert!(e.reduce(ReduceOp::Mean, None, false).unwrap().to_vec_f64()[0].is_nan());
    let err = e.reduce(ReduceOp::Max, Some(&[0]), false).unwrap_err();
    assert_eq!(
        err.0,
        "max: cannot reduce over dimension 0 of size 0 (shape [0, 3])"
    );
    // Reducing the non-empty dim of an empty tensor is fine.
    assert_eq!(
        e.reduce(ReduceOp::Max, Some(&[1]), false).unwrap().shape(),
        &[0]
    );
    let x = Tensor::zeros(&[2, 3], DType::F32);
    assert_eq!(
        x.reduce(ReduceOp::Sum, Some(&[2]), false).unwrap_err().0,
        "sum: dimension 2 is out of range for a tensor of rank 2"
    );
    assert!(
        x.reduce(ReduceOp::Sum, Some(&[1, -1]), false)
            .unwrap_err()
            .0
            .starts_with("sum: dimension -1 appears more than once")
    );
    assert!(
        x.norm(Some(&[-3]), false)
            .unwrap_err()
            .0
            .starts_with("norm: dimension -3 is out of range")
    );
    // NaN propagates through max/min.
    let n = Tensor::from_f32(vec![1.0, f32::NAN, 3.0], &[3]).unwrap();
    assert!(
        n.reduce(ReduceOp::Max, None, false)
            .unwrap()
            .to_scalar_f64()
            .unwrap()
            .is_nan()
    );
    assert!(
        n.reduce(ReduceOp::Min, None, false)
            .unwrap()
            .to_scalar_f64()
            .unwrap()
            .is_nan()
    );
    // Rank 0: reducing all dims gives the value.
    let s = Tensor::scalar(2.5, DType::F32);
    assert_eq!(
        s.reduce(ReduceOp::Sum, None, true)
            .unwrap()
            .to_scalar_f64()
            .unwrap(),
        2.5
    );
    // Bool reductions: sum counts, max is any, min is all.
    let b = Tensor::from_bool(vec![true, false, true], &[3]).unwrap();
    assert_eq!(
        b.reduce(ReduceOp::Sum, None, false).unwrap().to_vec_i64(),
        vec![2]
    );
    assert_eq!(
        b.reduce(ReduceOp::Max, None, false).unwrap().to_vec_f64(),
        vec![1.0]
    );
    assert_eq!(
        b.reduce(ReduceOp::Min, None, false).unwrap().to_vec_f64(),
        vec![0.0]
    );
}

fn arg_reference(v: &[f64], shape: &[usize], dim: usize, largest: bool) -> Vec<f64> {
    let mut out_shape = shape.to_vec();
    out_shape[dim] = 1;
    let n_out: usize = out_shape.iter().product();
    (0..n_out)
        .map(|o| {
            let mut idx = unravel(o, &out_shape);
            let mut best = 0;
            let mut best_v = f64::NAN;
            for i in 0..shape[dim] {
                idx[dim] = i;
                let x = v[ravel(&idx, shape)];
                if i == 0 || (largest && x > best_v) || (!largest && x < best_v) {
                    best = i;
                    best_v = x;
                }
            }
            best as f64
        })
        .collect()
}

#[test]
fn argmax_argmin_match_reference() {
    let mut r = rng(32);
    for dtype in ALL_DTYPES {
        for shape in SHAPES.iter().filter(|s| !s.is_empty()) {
            for kind in KINDS {
                let n: usize = shape.iter().product();
                let v = rounded(&values_for(&mut r, n, dtype), dtype);
                let x = make(&v, shape, dtype, kind);
                for dim in 0..shape.len() {
                    for largest in [true, false] {
                        let refv = arg_reference(&v, shape, dim, largest);
                        for (d, keepdim) in [
                            (dim as isize, false),
                            (dim as isize - shape.len() as isize, true),
                        ] {
                            let out = if largest {
                                x.argmax(Some(d), keepdim)
                            } else {
                                x.argmin(Some(d), keepdim)
                            }
                            .unwrap();
                            assert_eq!(out.dtype(), DType::I64);
                            let mut es = shape.to_vec();
                            if keepdim {
                                es[dim] = 1
                            } else {
                                es.remove(dim);
                            }
                            assert_eq!(out.shape(), es.as_slice());
                            check(
                                &format!("arg {largest} {dtype} {shape:?} {kind:?} {d}"),
                                &out,
                                &refv,
                                DType::I64,
                            );
                        }
                    }
                }
                let flat = arg_reference(&v, &[n], 0, true);
                assert_eq!(x.argmax(None, false).unwrap().to_vec_f64(), flat);
                let kd = x.argmax(None, true).unwrap();
                assert_eq!(kd.shape(), vec![1; shape.len()].as_slice());
            }
        }
    }
    let t = Tensor::from_f32(vec![1.0, 5.0, 5.0, f32::NAN, 9.0], &[5]).unwrap();
    assert_eq!(t.argmax(Some(0), false).unwrap().to_vec_i64(), vec![3]);
    let t = Tensor::from_f32(vec![1.0, 5.0, 5.0, 0.5], &[4])
        .unwrap()
        .narrow(0, 0, 3)
        .unwrap();
    assert_eq!(t.argmax(Some(0), false).unwrap().to_vec_i64(), vec![1]);
    assert_eq!(
        Tensor::zeros(&[0], DType::F32)
            .argmax(None, false)
            .unwrap_err()
            .0,
        "argmax: the tensor is empty (shape [0])"
    );
    assert!(
        Tensor::zeros(&[2, 0], DType::F32)
            .argmin(Some(1), false)
            .unwrap_err()
            .0
            .starts_with("argmin: cannot reduce over dimension 1 of size 0")
    );
    assert!(
        Tensor::zeros(&[2], DType::F32)
            .argmin(Some(1), false)
            .unwrap_err()
            .0
            .starts_with("argmin: dimension 1 is out of range")
    );
}

#[test]
fn norm_matches_reference() {
    let mut r = rng(33);
    for dtype in [DType::F32, DType::F16, DType::BF16, DType::I64] {
        for kind in KINDS {
            let shape = [5, 33];
            let v = rounded(&values_for(&mut r, 165, dtype), dtype);
            let x = make(&v, &shape, dtype, kind);
            let sq: Vec<f64> = v.iter().map(|a| a * a).collect();
            for (dims, norm) in [
                (None, vec![0, 1]),
                (Some(vec![-1isize]), vec![1]),
                (Some(vec![0]), vec![0]),
            ] {
                let (_, s) = reference(ReduceOp::Sum, &sq, &shape, &norm);
                let refv: Vec<f64> = s.iter().map(|x| x.sqrt()).collect();
                let out = x.norm(dims.as_deref(), true).unwrap();
                let out_dtype = if dtype.is_float() { dtype } else { DType::F32 };
                assert_eq!(out.dtype(), out_dtype);
                check(
                    &format!("norm {dtype} {kind:?} {dims:?}"),
                    &out,
                    &refv,
                    out_dtype,
                );
            }
        }
    }
}
