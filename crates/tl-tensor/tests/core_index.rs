//! concat, stack, split, repeat, gather and index_select against index-math references.

mod core_util;
use core_util::*;
use tl_tensor::{DType, Tensor};

#[test]
fn concat_and_stack_match_reference() {
    let mut r = rng(40);
    for dtype in ALL_DTYPES {
        for (shape, dim) in [
            (&[7usize][..], 0isize),
            (&[3, 5][..], 0),
            (&[3, 5][..], -1),
            (&[2, 3, 4][..], 1),
        ] {
            let d = if dim < 0 {
                (dim + shape.len() as isize) as usize
            } else {
                dim as usize
            };
            let extents = [1usize, 4, 2];
            let mut parts = Vec::new();
            let mut vals = Vec::new();
            let mut shapes = Vec::new();
            for (k, &e) in extents.iter().enumerate() {
                let mut s = shape.to_vec();
                s[d] = e;
                let n: usize = s.iter().product();
                let v = rounded(&values_for(&mut r, n, dtype), dtype);
                parts.push(make(&v, &s, dtype, KINDS[k % 3]));
                vals.push(v);
                shapes.push(s);
            }
            let out = Tensor::concat(&parts, dim).unwrap();
            let mut out_shape = shape.to_vec();
            out_shape[d] = extents.iter().sum();
            assert_eq!(out.shape(), out_shape.as_slice());
            let reference: Vec<f64> = (0..out_shape.iter().product())
                .map(|i| {
                    let mut idx = unravel(i, &out_shape);
                    let mut k = 0;
                    while idx[d] >= extents[k] {
                        idx[d] -= extents[k];
                        k += 1;
                    }
                    vals[k][ravel(&idx, &shapes[k])]
                })
                .collect();
            check(
                &format!("concat {dtype} {shape:?} {dim}"),
                &out,
                &reference,
                dtype,
            );
        }
        // stack at every position, including negative.
        let shape = [3usize, 4];
        let vs: Vec<Vec<f64>> = (0..3)
            .map(|_| rounded(&values_for(&mut r, 12, dtype), dtype))
            .collect();
        let ts: Vec<Tensor> = vs
            .iter()
            .enumerate()
            .map(|(k, v)| make(v, &shape, dtype, KINDS[k]))
            .collect();
        for dim in [0isize, 1, 2, -1, -3] {
            let d = if dim < 0 {
                (dim + 3) as usize
            } else {
                dim as usize
            };
            let out = Tensor::stack(&ts, dim).unwrap();
            let mut out_shape = shape.to_vec();
            out_shape.insert(d, 3);
            assert_eq!(out.shape(), out_shape.as_slice());
            let reference: Vec<f64> = (0..36)
                .map(|i| {
                    let mut idx = unravel(i, &out_shape);
                    let k = idx.remove(d);
                    vs[k][ravel(&idx, &shape)]
                })
                .collect();
            check(&format!("stack {dtype} {dim}"), &out, &reference, dtype);
        }
    }
}

#[test]
fn concat_promotes_and_reports_errors() {
    let a = Tensor::from_i64(vec![1, 2], &[2]).unwrap();
    let b = Tensor::from_f32(vec![0.5], &[1]).unwrap();
    let c = Tensor::concat(&[a.clone(), b], 0).unwrap();
    assert_eq!(c.dtype(), DType::F32);
    assert_eq!(c.to_vec_f64(), vec![1.0, 2.0, 0.5]);
    let m = Tensor::zeros(&[2, 3], DType::F32);
    let n = Tensor::zeros(&[2, 4], DType::F32);
    assert_eq!(
        Tensor::concat(&[m.clone(), n.clone()], 0).unwrap_err().0,
        "concat: shapes [2, 3] and [2, 4] differ outside dimension 0"
    );
    assert_eq!(
        Tensor::concat(&[m.clone(), n.clone()], 1).unwrap().shape(),
        &[2, 7]
    );
    assert_eq!(
        Tensor::concat(&[], 0).unwrap_err().0,
        "concat: no tensors given"
    );
    assert!(
        Tensor::concat(std::slice::from_ref(&m), 2)
            .unwrap_err()
            .0
            .starts_with("concat: dimension 2 is out of range")
    );
    assert!(
        Tensor::stack(&[m.clone(), n], 0)
            .is_err_and(|e| e.0.starts_with("stack: all tensors must have one shape"))
    );
    assert!(
        Tensor::stack(std::slice::from_ref(&m), 3)
            .unwrap_err()
            .0
            .starts_with("stack: dimension 3")
    );
    assert!(
        Tensor::concat(&[Tensor::scalar(1.0, DType::F32)], 0)
            .unwrap_err()
            .0
            .starts_with("concat:")
    );
}

#[test]
fn split_gives_views() {
    let mut r = rng(41);
    let v = rounded(&values(&mut r, 7 * 3), DType::F32);
    let t = Tensor::from_f64(&v, &[7, 3], DType::F32).unwrap();
    let parts = t.split(3, 0).unwrap();
    assert_eq!(
        parts.iter().map(|p| p.shape()[0]).collect::<Vec<_>>(),
        vec![3, 3, 1]
    );
    assert!(parts.iter().all(|p| p.same_storage(&t)));
    assert_eq!(parts[2].to_vec_f64(), v[18..].to_vec());
    let cols = t.split(2, -1).unwrap();
    assert_eq!(cols.len(), 2);
    assert_eq!(
        cols[1].to_vec_f64(),
        (0..7).map(|i| v[i * 3 + 2]).collect::<Vec<_>>()
    );
    assert_eq!(
        t.split(0, 0).unwrap_err().0,
        "split: the piece size must be at least 1"
    );
}

#[test]
fn repeat_matches_torch_semantics() {
    let mut r = rng(42);
    for dtype in ALL_DTYPES {
        for kind in KINDS {
            let shape = [2usize, 3];
            let v = rounded(&values_for(&mut r, 6, dtype), dtype);
            let t = make(&v, &shape, dtype, kind);
            for reps in [&[1usize, 1][..], &[2, 3], &[2, 1, 2], &[3, 1]] {
                let out = t.repeat(reps).unwrap();
                let lead = reps.len() - 2;
                let out_shape: Vec<usize> = reps
                    .iter()
                    .enumerate()
                    .map(|(i, &rp)| rp * if i < lead { 1 } else { shape[i - lead] })
                    .collect();
                assert_eq!(out.shape(), out_shape.as_slice());
                let reference: Vec<f64> = (0..out_shape.iter().product())
                    .map(|i| {
                        let idx = unravel(i, &out_shape);
                        v[(idx[lead] % 2) * 3 + idx[lead + 1] % 3]
                    })
                    .collect();
                check(
                    &format!("repeat {dtype} {kind:?} {reps:?}"),
                    &out,
                    &reference,
                    dtype,
                );
            }
        }
    }
    assert!(
        Tensor::zeros(&[2, 3], DType::F32)
            .repeat(&[2])
            .unwrap_err()
            .0
            .starts_with("repeat: 1 repeat counts")
    );
}

#[test]
fn gather_matches_reference() {
    let mut r = rng(43);
    use rand::Rng;
    for dtype in ALL_DTYPES {
        for kind in KINDS {
            let shape = [4usize, 5, 6];
            let v = rounded(&values_for(&mut r, 120, dtype), dtype);
            let x = make(&v, &shape, dtype, kind);
            for dim in 0..3 {
                let mut ishape = [3usize, 4, 5];
                ishape[dim] = 7; // gathering may pick more than the dim's extent
                let n: usize = ishape.iter().product();
                let idx: Vec<i64> = (0..n)
                    .map(|_| r.random_range(0..shape[dim] as i64))
                    .collect();
                let idx_f: Vec<f64> = idx.iter().map(|&i| i as f64).collect();
                let it = make(&idx_f, &ishape, DType::I64, KINDS[(dim + 1) % 3]);
                let out = x.gather(dim as isize - 3, &it).unwrap();
                assert_eq!(out.shape(), &ishape);
                let reference: Vec<f64> = (0..n)
                    .map(|i| {
                        let mut p = unravel(i, &ishape);
                        p[dim] = idx[i] as usize;
                        v[ravel(&p, &shape)]
                    })
                    .collect();
                check(
                    &format!("gather {dtype} {kind:?} {dim}"),
                    &out,
                    &reference,
                    dtype,
                );
            }
        }
    }
    let x = Tensor::zeros(&[3, 4], DType::F32);
    let bad = Tensor::from_i64(vec![0, 3], &[2, 1]).unwrap();
    assert_eq!(
        x.gather(0, &bad).unwrap_err().0,
        "gather: index 3 is out of bounds for dimension 0 of size 3"
    );
    let neg = Tensor::from_i64(vec![-1], &[1, 1]).unwrap();
    assert!(
        x.gather(1, &neg)
            .unwrap_err()
            .0
            .starts_with("gather: index -1 is out of bounds")
    );
    let wide = Tensor::from_i64(vec![0; 5], &[1, 5]).unwrap();
    assert!(
        x.gather(0, &wide)
            .unwrap_err()
            .0
            .starts_with("gather: index of shape [1, 5] does not fit")
    );
    let float_idx = Tensor::zeros(&[1, 1], DType::F32);
    assert!(
        x.gather(0, &float_idx)
            .unwrap_err()
            .0
            .starts_with("gather: the index must be an int64")
    );
}

#[test]
fn index_select_matches_reference() {
    let mut r = rng(44);
    use rand::Rng;
    for dtype in ALL_DTYPES {
        for kind in KINDS {
            let shape = [4usize, 5, 3];
            let v = rounded(&values_for(&mut r, 60, dtype), dtype);
            let x = make(&v, &shape, dtype, kind);
            for dim in 0..3 {
                let k = 6;
                let idx: Vec<i64> = (0..k)
                    .map(|_| r.random_range(0..shape[dim] as i64))
                    .collect();
                let it = Tensor::from_i64(idx.clone(), &[k]).unwrap();
                let out = x.index_select(dim as isize, &it).unwrap();
                let mut out_shape = shape.to_vec();
                out_shape[dim] = k;
                assert_eq!(out.shape(), out_shape.as_slice());
                let reference: Vec<f64> = (0..out_shape.iter().product())
                    .map(|i| {
                        let mut p = unravel(i, &out_shape);
                        p[dim] = idx[p[dim]] as usize;
                        v[ravel(&p, &shape)]
                    })
                    .collect();
                check(
                    &format!("index_select {dtype} {kind:?} {dim}"),
                    &out,
                    &reference,
                    dtype,
                );
            }
        }
    }
    let x = Tensor::zeros(&[3, 4], DType::F32);
    let bad = Tensor::from_i64(vec![1, 4], &[2]).unwrap();
    assert_eq!(
        x.index_select(1, &bad).unwrap_err().0,
        "index_select: index 4 is out of bounds for dimension 1 of size 4"
    );
    assert!(
        x.index_select(0, &Tensor::zeros(&[1, 1], DType::I64))
            .unwrap_err()
            .0
            .starts_with("index_select: the index must be 1-D")
    );
    assert!(
        x.index_select(2, &bad)
            .unwrap_err()
            .0
            .starts_with("index_select: dimension 2 is out of range")
    );
}
