//! Neural-network ops against naive f64 references: softmax/log_softmax over every dim,
//! rms_norm, layer_norm, rope/rope_neox (pos 0 and 37), causal masks, embedding, silu_mul.

mod linalg_support;

use linalg_support::*;
use tl_tensor::{DType, Layout, Tensor};

/// Softmax (or log-softmax) of row-major `x` along `dim` in f64.
fn ref_softmax(x: &[f64], shape: &[usize], dim: usize, log: bool) -> Vec<f64> {
    let len = shape[dim];
    let inner: usize = shape[dim + 1..].iter().product();
    let outer: usize = shape[..dim].iter().product();
    let mut out = vec![0.0; x.len()];
    for o in 0..outer {
        for i in 0..inner {
            let at = |j: usize| o * len * inner + j * inner + i;
            let max = (0..len).map(|j| x[at(j)]).fold(f64::NEG_INFINITY, f64::max);
            let sum: f64 = (0..len).map(|j| (x[at(j)] - max).exp()).sum();
            for j in 0..len {
                out[at(j)] = if log {
                    x[at(j)] - max - sum.ln()
                } else {
                    (x[at(j)] - max).exp() / sum
                };
            }
        }
    }
    out
}

#[test]
fn softmax_every_dim_and_dtype() {
    let mut r = rng(20);
    let shapes: &[&[usize]] = &[&[17], &[3, 65], &[2, 17, 5], &[1, 130, 3], &[4, 3, 2, 5]];
    for dtype in FLOATS {
        for shape in shapes {
            // Scale up so the max subtraction matters.
            let x: Vec<f64> = rand_vec(&mut r, shape.iter().product())
                .iter()
                .map(|v| v * 8.0)
                .collect();
            let t = Tensor::from_f64(&x, shape, dtype).unwrap();
            let xr = t.to_vec_f64();
            for d in 0..shape.len() {
                for (neg, dim) in [
                    (false, d as isize),
                    (true, d as isize - shape.len() as isize),
                ] {
                    let what = format!("{dtype} {shape:?} dim {dim} (negative: {neg})");
                    let out = t.softmax(dim).unwrap();
                    assert_close(
                        &out,
                        shape,
                        &ref_softmax(&xr, shape, d, false),
                        dtype,
                        &what,
                    );
                    let out = t.log_softmax(dim).unwrap();
                    assert_close(&out, shape, &ref_softmax(&xr, shape, d, true), dtype, &what);
                }
            }
        }
        // A non-contiguous input.
        let t = rand_transposed(&mut r, &[17, 65], dtype);
        let xr = t.to_vec_f64();
        assert_close(
            &t.softmax(-1).unwrap(),
            &[17, 65],
            &ref_softmax(&xr, &[17, 65], 1, false),
            dtype,
            "transposed",
        );
    }
}

#[test]
fn softmax_is_stable_and_handles_neg_inf() {
    let inf = f64::INFINITY;
    let x = Tensor::from_f64(
        &[
            1000.0, 1001.0, -inf, 5.0, -inf, -inf, -inf, -inf, 0.0, 0.0, 0.0, 0.0,
        ],
        &[3, 4],
        DType::F32,
    )
    .unwrap();
    let p = x.softmax(-1).unwrap().to_vec_f64();
    let e = (-1.0f64).exp();
    let expect = [e / (1.0 + e), 1.0 / (1.0 + e), 0.0, 0.0];
    for j in 0..4 {
        assert!((p[j] - expect[j]).abs() < 1e-6, "row 0: {p:?}");
    }
    assert_eq!(&p[4..8], &[0.0, 0.0, 0.0, 0.0], "all -inf row gives zeros");
    assert!(p[8..].iter().all(|&v| (v - 0.25).abs() < 1e-7));
    let lp = x.log_softmax(-1).unwrap().to_vec_f64();
    assert!((lp[1] - (1.0 / (1.0 + e)).ln()).abs() < 1e-5);
    assert_eq!(lp[2], -inf);
    assert!(lp.iter().all(|v| !v.is_nan()));
}

#[test]
fn softmax_of_a_scalar_view() {
    // A rank-0 view at a non-zero offset: softmax is 1, log_softmax 0.
    let t = Tensor::from_f64(&[3.0, -2.0, 7.5], &[3], DType::F32).unwrap();
    let last = t.with_layout(tl_tensor::Layout {
        shape: vec![],
        strides: vec![],
        offset: 2,
    });
    assert_eq!(last.softmax(0).unwrap().to_vec_f64(), vec![1.0]);
    assert_eq!(last.log_softmax(-1).unwrap().to_vec_f64(), vec![0.0]);
    assert_eq!(last.softmax(0).unwrap().shape(), &[] as &[usize]);
    let inf = Tensor::scalar(f64::NEG_INFINITY, DType::F32);
    assert_eq!(inf.softmax(0).unwrap().to_vec_f64(), vec![0.0]);
}

#[test]
fn softmax_errors() {
    let x = Tensor::from_f64(&[1.0, 2.0], &[2], DType::F32).unwrap();
    assert_eq!(
        x.softmax(1).unwrap_err().0,
        "softmax: dimension 1 is out of range for a tensor of rank 1"
    );
    let i = Tensor::from_i64(vec![1, 2], &[2]).unwrap();
    assert!(
        i.log_softmax(0)
            .unwrap_err()
            .0
            .starts_with("log_softmax: integer tensors are not supported")
    );
}

fn ref_rms_norm(x: &[f64], w: &[f64], eps: f64) -> Vec<f64> {
    let d = w.len();
    let mut out = vec![0.0; x.len()];
    for (row, dst) in x.chunks(d).zip(out.chunks_mut(d)) {
        let ms = row.iter().map(|v| v * v).sum::<f64>() / d as f64;
        let s = 1.0 / (ms + eps).sqrt();
        for j in 0..d {
            dst[j] = row[j] * s * w[j];
        }
    }
    out
}

fn ref_layer_norm(x: &[f64], d: usize, w: Option<&[f64]>, b: Option<&[f64]>, eps: f64) -> Vec<f64> {
    let mut out = vec![0.0; x.len()];
    for (row, dst) in x.chunks(d).zip(out.chunks_mut(d)) {
        let mean = row.iter().sum::<f64>() / d as f64;
        let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / d as f64;
        for j in 0..d {
            let mut y = (row[j] - mean) / (var + eps).sqrt();
            if let Some(w) = w {
                y *= w[j];
            }
            if let Some(b) = b {
                y += b[j];
            }
            dst[j] = y;
        }
    }
    out
}

#[test]
fn rms_norm_and_layer_norm() {
    let mut r = rng(21);
    let shapes: &[&[usize]] = &[&[1], &[3], &[5, 17], &[2, 3, 65], &[130]];
    for dtype in FLOATS {
        for shape in shapes {
            let d = *shape.last().unwrap();
            let x = rand_tensor(&mut r, shape, dtype);
            let w = rand_tensor(&mut r, &[d], dtype);
            let b = rand_tensor(&mut r, &[d], dtype);
            let (xv, wv, bv) = (x.to_vec_f64(), w.to_vec_f64(), b.to_vec_f64());
            let what = format!("{dtype} {shape:?}");
            assert_close(
                &x.rms_norm(&w, 1e-5).unwrap(),
                shape,
                &ref_rms_norm(&xv, &wv, 1e-5),
                dtype,
                &what,
            );
            if d > 1 {
                let full = ref_layer_norm(&xv, d, Some(&wv), Some(&bv), 1e-5);
                assert_close(
                    &x.layer_norm(Some(&w), Some(&b), 1e-5).unwrap(),
                    shape,
                    &full,
                    dtype,
                    &what,
                );
                let plain = ref_layer_norm(&xv, d, None, None, 1e-5);
                assert_close(
                    &x.layer_norm(None, None, 1e-5).unwrap(),
                    shape,
                    &plain,
                    dtype,
                    &what,
                );
                let wonly = ref_layer_norm(&xv, d, Some(&wv), None, 1e-5);
                assert_close(
                    &x.layer_norm(Some(&w), None, 1e-5).unwrap(),
                    shape,
                    &wonly,
                    dtype,
                    &what,
                );
            }
        }
        // Non-contiguous input.
        let x = rand_transposed(&mut r, &[17, 65], dtype);
        let w = rand_tensor(&mut r, &[65], dtype);
        let reference = ref_rms_norm(&x.to_vec_f64(), &w.to_vec_f64(), 1e-6);
        assert_close(
            &x.rms_norm(&w, 1e-6).unwrap(),
            &[17, 65],
            &reference,
            dtype,
            "rms_norm transposed",
        );
    }
}

#[test]
fn norm_errors() {
    let mut r = rng(22);
    let x = rand_tensor(&mut r, &[2, 3], DType::F32);
    let w = rand_tensor(&mut r, &[4], DType::F32);
    assert_eq!(
        x.rms_norm(&w, 1e-5).unwrap_err().0,
        "rms_norm: weight of shape [4] does not match the last dimension of input [2, 3] (expected [3])"
    );
    assert_eq!(
        x.layer_norm(None, Some(&w), 1e-5).unwrap_err().0,
        "layer_norm: bias of shape [4] does not match the last dimension of input [2, 3] (expected [3])"
    );
}

/// Rotary embedding in f64, straight from the formula: position of row = pos + s.
fn ref_rope(x: &[f64], shape: &[usize], pos: usize, theta: f64, neox: bool) -> Vec<f64> {
    let r = shape.len();
    let d = shape[r - 1];
    let seq_dim = match r {
        1 => None,
        2 => Some(0),
        _ => Some(r - 3),
    };
    let mut out = vec![0.0; x.len()];
    for row in 0..x.len() / d {
        let idx = unravel(row * d, shape);
        let s = seq_dim.map_or(0, |sd| idx[sd]);
        let p = (pos + s) as f64;
        for i in 0..d / 2 {
            let angle = p * theta.powf(-2.0 * i as f64 / d as f64);
            let (a, b) = if neox {
                (i, i + d / 2)
            } else {
                (2 * i, 2 * i + 1)
            };
            let (x0, x1) = (x[row * d + a], x[row * d + b]);
            out[row * d + a] = x0 * angle.cos() - x1 * angle.sin();
            out[row * d + b] = x0 * angle.sin() + x1 * angle.cos();
        }
    }
    out
}

#[test]
fn rope_matches_formula() {
    let mut r = rng(23);
    let shapes: &[&[usize]] = &[&[8], &[5, 4], &[3, 2, 16], &[2, 7, 3, 64], &[1, 17, 4, 2]];
    for dtype in FLOATS {
        for shape in shapes {
            let x = rand_tensor(&mut r, shape, dtype);
            let xv = x.to_vec_f64();
            for pos in [0, 37] {
                for theta in [10000.0, 500000.0] {
                    let what = format!("{dtype} {shape:?} pos {pos} theta {theta}");
                    let out = x.rope(pos, theta).unwrap();
                    assert_close(
                        &out,
                        shape,
                        &ref_rope(&xv, shape, pos, theta, false),
                        dtype,
                        &what,
                    );
                    let out = x.rope_neox(pos, theta).unwrap();
                    assert_close(
                        &out,
                        shape,
                        &ref_rope(&xv, shape, pos, theta, true),
                        dtype,
                        &what,
                    );
                }
            }
        }
    }
    // pos 0 leaves the first position unchanged; the second is rotated.
    let x = rand_tensor(&mut r, &[2, 4], DType::F32);
    let out = x.rope(0, 10000.0).unwrap().to_vec_f64();
    let xv = x.to_vec_f64();
    for j in 0..4 {
        assert!((out[j] - xv[j]).abs() < 1e-7);
    }
    let c = 1f64.cos();
    let s = 1f64.sin();
    assert!((out[4] - (xv[4] * c - xv[5] * s)).abs() < 1e-6);
    // Non-contiguous input.
    let xt = rand_transposed(&mut r, &[6, 3, 8], DType::F32);
    let reference = ref_rope(&xt.to_vec_f64(), &[6, 3, 8], 37, 10000.0, false);
    assert_close(
        &xt.rope(37, 10000.0).unwrap(),
        &[6, 3, 8],
        &reference,
        DType::F32,
        "rope transposed",
    );
}

#[test]
fn rope_errors() {
    let mut r = rng(24);
    let x = rand_tensor(&mut r, &[2, 5], DType::F32);
    assert_eq!(
        x.rope(0, 10000.0).unwrap_err().0,
        "rope: the last dimension (head_dim) must be even, got shape [2, 5]"
    );
    let y = rand_tensor(&mut r, &[2, 4], DType::F32);
    assert!(
        y.rope_neox(0, 0.0)
            .unwrap_err()
            .0
            .starts_with("rope_neox: theta must be")
    );
    // A huge position offset must not overflow (the angle is computed in f64).
    let far = y.rope(usize::MAX, 10000.0).unwrap();
    assert!(far.to_vec_f64().iter().all(|v| v.is_finite()));
}

#[test]
fn causal_mask_rows() {
    let inf = f64::NEG_INFINITY;
    for dtype in FLOATS {
        let m = Tensor::causal_mask(3, 0, dtype).unwrap();
        assert_eq!(m.shape(), &[3, 3]);
        assert_eq!(m.dtype(), dtype);
        assert_eq!(
            m.to_vec_f64(),
            vec![0.0, inf, inf, 0.0, 0.0, inf, 0.0, 0.0, 0.0]
        );
        let m = Tensor::causal_mask(2, 3, dtype).unwrap();
        assert_eq!(m.shape(), &[2, 5]);
        assert_eq!(
            m.to_vec_f64(),
            vec![0.0, 0.0, 0.0, 0.0, inf, 0.0, 0.0, 0.0, 0.0, 0.0]
        );
    }
    let m = Tensor::causal_mask(2, 1, DType::Bool).unwrap();
    assert_eq!(m.to_vec_f64(), vec![1.0, 1.0, 0.0, 1.0, 1.0, 1.0]);
    let m = Tensor::causal_mask(1, 4, DType::F32).unwrap();
    assert_eq!(
        m.to_vec_f64(),
        vec![0.0; 5],
        "a decode step sees every cached key"
    );
    assert!(
        Tensor::causal_mask(2, 0, DType::I64)
            .unwrap_err()
            .0
            .starts_with("causal_mask: dtype int64")
    );
    let huge = Tensor::causal_mask(usize::MAX, 1, DType::F32);
    assert!(huge.unwrap_err().0.starts_with("causal_mask: a ["));
}

#[test]
fn attention_mask_application() {
    let mut r = rng(25);
    let scores = rand_tensor(&mut r, &[2, 3, 4], DType::F32);
    let mask = Tensor::causal_mask(3, 1, DType::F32).unwrap();
    let out = scores.apply_attention_mask(&mask).unwrap();
    let (sv, mv) = (scores.to_vec_f64(), mask.to_vec_f64());
    let ov = out.to_vec_f64();
    for (i, o) in ov.iter().enumerate() {
        assert_eq!(*o, sv[i] + mv[i % 12], "element {i}");
    }
    let keep = Tensor::causal_mask(3, 1, DType::Bool).unwrap();
    assert_eq!(scores.apply_attention_mask(&keep).unwrap().to_vec_f64(), ov);
    let half = Tensor::from_f64(&sv, &[2, 3, 4], DType::F16).unwrap();
    assert_eq!(
        half.apply_attention_mask(&mask).unwrap().dtype(),
        DType::F16
    );
    // One mask per head broadcasts over [heads, sq, sk] scores shared by the heads.
    let per_head = Tensor::from_bool((0..24).map(|e| e % 5 != 0).collect(), &[2, 3, 4]).unwrap();
    let shared = rand_tensor(&mut r, &[3, 4], DType::F32);
    let out = shared.apply_attention_mask(&per_head).unwrap();
    assert_eq!(out.shape(), &[2, 3, 4]);
    let shared_v = shared.to_vec_f64();
    for (e, v) in out.to_vec_f64().iter().enumerate() {
        let expect = if e % 5 != 0 {
            shared_v[e % 12]
        } else {
            f64::NEG_INFINITY
        };
        assert_eq!(*v, expect, "element {e}");
    }
    let wide = rand_tensor(&mut r, &[5, 3, 4], DType::F32);
    assert_eq!(
        scores.apply_attention_mask(&wide).unwrap_err().0,
        "apply_attention_mask: shapes [2, 3, 4] and [5, 3, 4] cannot be broadcast together (dimension 0 is 2 vs 5)"
    );
}

#[test]
fn embedding_rows() {
    let mut r = rng(26);
    for dtype in [DType::F32, DType::F16, DType::BF16, DType::I64] {
        let table = rand_tensor(&mut r, &[11, 6], dtype);
        let tv = table.to_vec_f64();
        let ids = Tensor::from_i64(vec![3, 0, 10, 3, 7, 1], &[2, 3]).unwrap();
        let out = Tensor::embedding(&table, &ids).unwrap();
        assert_eq!(out.shape(), &[2, 3, 6]);
        assert_eq!(out.dtype(), dtype);
        let ov = out.to_vec_f64();
        for (n, id) in [3usize, 0, 10, 3, 7, 1].iter().enumerate() {
            assert_eq!(&ov[n * 6..n * 6 + 6], &tv[id * 6..id * 6 + 6]);
        }
    }
    // A transposed table view and a scalar id.
    let table = rand_transposed(&mut r, &[5, 3], DType::F32);
    let tv = table.to_vec_f64();
    // Ids as a transposed view: [[0, 1], [2, 3]] stored, [[0, 2], [1, 3]] seen.
    let ids = Tensor::from_i64(vec![0, 1, 2, 3], &[2, 2]).unwrap();
    let ids_t = ids.with_layout(Layout {
        shape: vec![2, 2],
        strides: vec![1, 2],
        offset: 0,
    });
    let out = Tensor::embedding(&table, &ids_t).unwrap().to_vec_f64();
    for (n, id) in [0usize, 2, 1, 3].iter().enumerate() {
        assert_eq!(&out[n * 3..n * 3 + 3], &tv[id * 3..id * 3 + 3]);
    }
    let out = Tensor::embedding(&table, &Tensor::scalar(4.0, DType::I64)).unwrap();
    assert_eq!(out.shape(), &[3]);
    assert_eq!(out.to_vec_f64(), tv[12..15].to_vec());
}

#[test]
fn embedding_errors() {
    let mut r = rng(27);
    let table = rand_tensor(&mut r, &[50, 4], DType::F32);
    let ids = Tensor::from_i64(vec![1, 70], &[2]).unwrap();
    assert_eq!(
        Tensor::embedding(&table, &ids).unwrap_err().0,
        "embedding: id 70 is out of range for a table of 50 rows (shape [50, 4])"
    );
    let neg = Tensor::from_i64(vec![-1], &[1]).unwrap();
    assert!(
        Tensor::embedding(&table, &neg)
            .unwrap_err()
            .0
            .starts_with("embedding: id -1 is out of range")
    );
    let fids = rand_tensor(&mut r, &[2], DType::F32);
    assert_eq!(
        Tensor::embedding(&table, &fids).unwrap_err().0,
        "embedding: ids must be int64, got float32"
    );
}

#[test]
fn silu_mul_with_broadcast() {
    let mut r = rng(28);
    let silu = |x: f64| x / (1.0 + (-x).exp());
    for dtype in FLOATS {
        for (sa, sb) in [
            (&[3usize, 65][..], &[3usize, 65][..]),
            (&[2, 1, 17], &[5, 17]),
            (&[130], &[1]),
        ] {
            let a = rand_tensor(&mut r, sa, dtype);
            let b = rand_tensor(&mut r, sb, dtype);
            let expect = a.binary_ref(&b, |x, y| silu(x) * y);
            let out = Tensor::silu_mul(&a, &b).unwrap();
            assert_close(
                &out,
                &expect.1,
                &expect.0,
                dtype,
                &format!("{dtype} {sa:?} {sb:?}"),
            );
        }
        let a = rand_transposed(&mut r, &[17, 3], dtype);
        let b = rand_strided(&mut r, &[17, 3], dtype);
        let expect = a.binary_ref(&b, |x, y| silu(x) * y);
        assert_close(
            &Tensor::silu_mul(&a, &b).unwrap(),
            &[17, 3],
            &expect.0,
            dtype,
            "views",
        );
    }
    let a = rand_tensor(&mut r, &[2, 3], DType::F32);
    let b = rand_tensor(&mut r, &[4], DType::F32);
    assert!(
        Tensor::silu_mul(&a, &b)
            .unwrap_err()
            .0
            .starts_with("silu_mul: shapes [2, 3] and [4] cannot be broadcast")
    );
}

/// A broadcast binary op evaluated in f64, for the references above.
trait BinaryRef {
    fn binary_ref(&self, other: &Tensor, f: impl Fn(f64, f64) -> f64) -> (Vec<f64>, Vec<usize>);
}

impl BinaryRef for Tensor {
    fn binary_ref(&self, other: &Tensor, f: impl Fn(f64, f64) -> f64) -> (Vec<f64>, Vec<usize>) {
        let (sa, sb) = (self.shape(), other.shape());
        let rank = sa.len().max(sb.len());
        let pad = |s: &[usize]| {
            let mut v = vec![1; rank - s.len()];
            v.extend_from_slice(s);
            v
        };
        let (pa, pb) = (pad(sa), pad(sb));
        let shape: Vec<usize> = pa.iter().zip(&pb).map(|(&x, &y)| x.max(y)).collect();
        let (av, bv) = (self.to_vec_f64(), other.to_vec_f64());
        let n: usize = shape.iter().product();
        let out = (0..n)
            .map(|e| {
                let idx = unravel(e, &shape);
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
                f(av[ravel(&ia, &pa)], bv[ravel(&ib, &pb)])
            })
            .collect();
        (out, shape)
    }
}
