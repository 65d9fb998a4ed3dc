//! `matmul` and `linear` against a naive f64 reference: odd sizes, vectors, batch
//! broadcasting, transposed and strided views, every float dtype, and the error messages.

mod linalg_support;

use linalg_support::*;
use tl_tensor::{DType, Tensor};

/// NumPy matmul in f64 on row-major data; returns (values, shape).
fn ref_matmul(a: &[f64], sa: &[usize], b: &[f64], sb: &[usize]) -> (Vec<f64>, Vec<usize>) {
    let a_vec = sa.len() == 1;
    let b_vec = sb.len() == 1;
    let sa2: Vec<usize> = if a_vec { vec![1, sa[0]] } else { sa.to_vec() };
    let sb2: Vec<usize> = if b_vec { vec![sb[0], 1] } else { sb.to_vec() };
    let (ra, rb) = (sa2.len(), sb2.len());
    let (m, k, n) = (sa2[ra - 2], sa2[ra - 1], sb2[rb - 1]);
    assert_eq!(k, sb2[rb - 2]);
    let (ba, bb) = (&sa2[..ra - 2], &sb2[..rb - 2]);
    let rank = ba.len().max(bb.len());
    let pad = |s: &[usize]| -> Vec<usize> {
        let mut v = vec![1; rank - s.len()];
        v.extend_from_slice(s);
        v
    };
    let (pa, pb) = (pad(ba), pad(bb));
    let batch: Vec<usize> = pa.iter().zip(&pb).map(|(&x, &y)| x.max(y)).collect();
    let nb: usize = batch.iter().product();
    let mut out = vec![0.0; nb * m * n];
    for bi in 0..nb {
        let idx = unravel(bi, &batch);
        let ia: Vec<usize> = idx
            .iter()
            .zip(&pa)
            .map(|(&i, &d)| if d == 1 { 0 } else { i })
            .collect();
        let ib: Vec<usize> = idx
            .iter()
            .zip(&pb)
            .map(|(&i, &d)| if d == 1 { 0 } else { i })
            .collect();
        let (oa, ob) = (ravel(&ia, &pa) * m * k, ravel(&ib, &pb) * k * n);
        for i in 0..m {
            for j in 0..n {
                let mut s = 0.0;
                for p in 0..k {
                    s += a[oa + i * k + p] * b[ob + p * n + j];
                }
                out[bi * m * n + i * n + j] = s;
            }
        }
    }
    let mut shape = batch;
    if !a_vec {
        shape.push(m);
    }
    if !b_vec {
        shape.push(n);
    }
    (out, shape)
}

fn check(a: &Tensor, b: &Tensor, what: &str) {
    let (reference, shape) = ref_matmul(&a.to_vec_f64(), a.shape(), &b.to_vec_f64(), b.shape());
    let out = a.matmul(b).unwrap();
    let dtype = DType::promote(a.dtype(), b.dtype());
    assert_close(&out, &shape, &reference, dtype, what);
}

#[test]
fn odd_sizes_every_dtype() {
    let mut r = rng(1);
    let sizes = [1, 3, 17, 65, 130];
    for dtype in FLOATS {
        for (i, &m) in sizes.iter().enumerate() {
            let k = sizes[(i + 2) % sizes.len()];
            let n = sizes[(i + 4) % sizes.len()];
            let a = rand_tensor(&mut r, &[m, k], dtype);
            let b = rand_tensor(&mut r, &[k, n], dtype);
            check(&a, &b, &format!("{dtype} [{m},{k}]@[{k},{n}]"));
        }
        for &s in &sizes {
            let a = rand_tensor(&mut r, &[s, s], dtype);
            let b = rand_tensor(&mut r, &[s, s], dtype);
            check(&a, &b, &format!("{dtype} square {s}"));
        }
    }
}

#[test]
fn vectors_follow_numpy() {
    let mut r = rng(2);
    for dtype in FLOATS {
        let v = rand_tensor(&mut r, &[17], dtype);
        let w = rand_tensor(&mut r, &[17], dtype);
        let m = rand_tensor(&mut r, &[17, 5], dtype);
        let mt = rand_tensor(&mut r, &[3, 17], dtype);
        let batched = rand_tensor(&mut r, &[2, 3, 17], dtype);
        let batched_r = rand_tensor(&mut r, &[4, 17, 6], dtype);
        check(&v, &w, "vec @ vec");
        assert_eq!(v.matmul(&w).unwrap().shape(), &[] as &[usize]);
        check(&v, &m, "vec @ mat");
        check(&mt, &v, "mat @ vec");
        check(&batched, &v, "batch @ vec");
        check(&v, &batched_r, "vec @ batch");
    }
}

#[test]
fn batch_dims_broadcast() {
    let mut r = rng(3);
    let cases: &[(&[usize], &[usize])] = &[
        (&[2, 1, 3, 5], &[4, 5, 7]),
        (&[3, 5], &[2, 5, 4]),
        (&[6, 3, 5], &[5, 4]),
        (&[1, 3, 5], &[6, 5, 4]),
        (&[2, 3, 1, 4, 5], &[3, 7, 5, 2]),
        (&[5, 9, 17], &[5, 17, 3]),
    ];
    for dtype in FLOATS {
        for (sa, sb) in cases {
            let a = rand_tensor(&mut r, sa, dtype);
            let b = rand_tensor(&mut r, sb, dtype);
            check(&a, &b, &format!("{dtype} {sa:?} @ {sb:?}"));
        }
    }
}

#[test]
fn transposed_and_strided_views() {
    let mut r = rng(4);
    for dtype in FLOATS {
        for &(m, k, n) in &[(3, 17, 65), (65, 3, 17), (130, 65, 17), (1, 17, 3)] {
            let at = rand_transposed(&mut r, &[m, k], dtype);
            let bt = rand_transposed(&mut r, &[k, n], dtype);
            let a = rand_tensor(&mut r, &[m, k], dtype);
            let b = rand_tensor(&mut r, &[k, n], dtype);
            let as_ = rand_strided(&mut r, &[m, k], dtype);
            check(&at, &b, &format!("{dtype} a^T {m}x{k}x{n}"));
            check(&a, &bt, &format!("{dtype} b^T {m}x{k}x{n}"));
            check(&at, &bt, &format!("{dtype} both^T {m}x{k}x{n}"));
            check(&as_, &bt, &format!("{dtype} strided {m}x{k}x{n}"));
        }
        let at = rand_transposed(&mut r, &[3, 5, 17, 4], dtype);
        let b = rand_transposed(&mut r, &[5, 4, 9], dtype);
        check(&at, &b, &format!("{dtype} batched transposed"));
    }
}

#[test]
fn large_products_use_threads() {
    let mut r = rng(5);
    // Large single product (gemm's own threads), a shared weight folded into one product, and
    // many small products split across threads.
    let a = rand_tensor(&mut r, &[130, 257], DType::F32);
    let b = rand_transposed(&mut r, &[257, 129], DType::F32);
    check(&a, &b, "130x257x129");
    let x = rand_tensor(&mut r, &[4, 33, 96], DType::F32);
    let w = rand_tensor(&mut r, &[96, 200], DType::F32);
    check(&x, &w, "folded batch");
    let xs = rand_strided(&mut r, &[4, 33, 96], DType::F32);
    check(&xs, &w, "strided batch with a shared weight");
    let p = rand_tensor(&mut r, &[256, 17, 17], DType::F32);
    let q = rand_tensor(&mut r, &[256, 17, 17], DType::F32);
    check(&p, &q, "256 small products");
    let p16 = rand_tensor(&mut r, &[200, 100], DType::F16);
    let q16 = rand_tensor(&mut r, &[100, 150], DType::F16);
    check(&p16, &q16, "f16 threaded");
}

#[test]
fn mixed_dtypes_promote() {
    let mut r = rng(6);
    let a = rand_tensor(&mut r, &[3, 17], DType::F16);
    let b = rand_tensor(&mut r, &[17, 4], DType::F32);
    check(&a, &b, "f16 @ f32");
    let c = rand_tensor(&mut r, &[17, 4], DType::BF16);
    check(&a, &c, "f16 @ bf16");
}

#[test]
fn empty_dims() {
    let mut r = rng(7);
    let a = rand_tensor(&mut r, &[0, 3], DType::F32);
    let b = rand_tensor(&mut r, &[3, 4], DType::F32);
    assert_eq!(a.matmul(&b).unwrap().shape(), &[0, 4]);
    let a = rand_tensor(&mut r, &[2, 0], DType::F32);
    let b = rand_tensor(&mut r, &[0, 3], DType::F32);
    let out = a.matmul(&b).unwrap();
    assert_eq!(out.shape(), &[2, 3]);
    assert_eq!(out.to_vec_f64(), vec![0.0; 6]);
}

#[test]
fn shape_and_dtype_errors() {
    let mut r = rng(8);
    let a = rand_tensor(&mut r, &[3, 4], DType::F32);
    let b = rand_tensor(&mut r, &[5, 6], DType::F32);
    assert_eq!(
        a.matmul(&b).unwrap_err().0,
        "matmul: shapes [3, 4] and [5, 6] do not agree on the inner dimension (4 vs 5)"
    );
    let v = rand_tensor(&mut r, &[5], DType::F32);
    assert_eq!(
        a.matmul(&v).unwrap_err().0,
        "matmul: shapes [3, 4] and [5] do not agree on the inner dimension (4 vs 5)"
    );
    let i = Tensor::from_i64(vec![1, 2, 3, 4], &[2, 2]).unwrap();
    let f = rand_tensor(&mut r, &[2, 2], DType::F32);
    assert_eq!(
        i.matmul(&f).unwrap_err().0,
        "matmul: integer tensors are not supported yet (cast to float32 first)"
    );
    assert_eq!(
        f.matmul(&i).unwrap_err().0,
        "matmul: integer tensors are not supported yet (cast to float32 first)"
    );
    let s = Tensor::scalar(2.0, DType::F32);
    assert!(
        s.matmul(&f)
            .unwrap_err()
            .0
            .starts_with("matmul: both operands need at least one dimension")
    );
    let x = rand_tensor(&mut r, &[2, 3, 4], DType::F32);
    let y = rand_tensor(&mut r, &[3, 4, 5], DType::F32);
    assert_eq!(
        x.matmul(&y).unwrap_err().0,
        "matmul: batch dimensions of shapes [2, 3, 4] and [3, 4, 5] cannot be broadcast together ([2] vs [3])"
    );
}

/// x @ w^T + b in f64.
fn ref_linear(x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> Vec<f64> {
    let (xv, wv) = (x.to_vec_f64(), w.to_vec_f64());
    let (out_f, in_f) = (w.shape()[0], w.shape()[1]);
    let bv = b.map(|b| b.to_vec_f64());
    let rows = xv.len() / in_f;
    let mut out = vec![0.0; rows * out_f];
    for r in 0..rows {
        for o in 0..out_f {
            let mut s = bv.as_ref().map_or(0.0, |b| b[o]);
            for i in 0..in_f {
                s += xv[r * in_f + i] * wv[o * in_f + i];
            }
            out[r * out_f + o] = s;
        }
    }
    out
}

#[test]
fn linear_with_and_without_bias() {
    let mut r = rng(9);
    for dtype in FLOATS {
        for &(shape, out_f) in &[
            (&[2usize, 3, 65][..], 17usize),
            (&[65][..], 3),
            (&[5, 130][..], 1),
        ] {
            let in_f = *shape.last().unwrap();
            let x = rand_tensor(&mut r, shape, dtype);
            let w = rand_tensor(&mut r, &[out_f, in_f], dtype);
            let b = rand_tensor(&mut r, &[out_f], dtype);
            let mut out_shape = shape[..shape.len() - 1].to_vec();
            out_shape.push(out_f);
            let y = x.linear(&w, Some(&b)).unwrap();
            assert_close(
                &y,
                &out_shape,
                &ref_linear(&x, &w, Some(&b)),
                dtype,
                "linear+bias",
            );
            let y = x.linear(&w, None).unwrap();
            assert_close(&y, &out_shape, &ref_linear(&x, &w, None), dtype, "linear");
        }
        // A transposed (non-contiguous) weight view.
        let x = rand_tensor(&mut r, &[4, 17], dtype);
        let w = rand_transposed(&mut r, &[9, 17], dtype);
        let y = x.linear(&w, None).unwrap();
        assert_close(&y, &[4, 9], &ref_linear(&x, &w, None), dtype, "linear w^T");
    }
}

#[test]
fn linear_errors() {
    let mut r = rng(10);
    let x = rand_tensor(&mut r, &[2, 3], DType::F32);
    let w = rand_tensor(&mut r, &[4, 5], DType::F32);
    assert_eq!(
        x.linear(&w, None).unwrap_err().0,
        "linear: input [2, 3] and weight [4, 5] do not agree on the input features (3 vs 5)"
    );
    let w = rand_tensor(&mut r, &[4, 3], DType::F32);
    let b = rand_tensor(&mut r, &[5], DType::F32);
    assert_eq!(
        x.linear(&w, Some(&b)).unwrap_err().0,
        "linear: bias [5] does not match weight [4, 3] (expected [4], or the output's shape [2, 4] to add a residual)"
    );
    let w3 = rand_tensor(&mut r, &[4, 3, 1], DType::F32);
    assert_eq!(
        x.linear(&w3, None).unwrap_err().0,
        "linear: weight must be 2-D [out, in], got shape [4, 3, 1]"
    );
}
