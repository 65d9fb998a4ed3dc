//! Grouped-head attention against an explicit per-head f64 loop: GQA group sizes, masks
//! (additive and bool, broadcast), batch broadcasting, non-contiguous q/k/v, every dtype.

mod linalg_support;

use linalg_support::*;
use tl_tensor::{DType, Layout, Tensor};

/// Attention in f64, one query head at a time: head h reads kv head h / (hq / hkv).
/// Shapes: q [B, hq, sq, d], k [B, hkv, sk, d], v [B, hkv, sk, dv], mask [B, hq, sq, sk] (already
/// expanded, additive).
#[allow(clippy::too_many_arguments)]
fn ref_attention(
    q: &[f64],
    k: &[f64],
    v: &[f64],
    mask: Option<&[f64]>,
    (b, hq, sq, d): (usize, usize, usize, usize),
    (hkv, sk, dv): (usize, usize, usize),
) -> Vec<f64> {
    let group = hq / hkv;
    let scale = 1.0 / (d as f64).sqrt();
    let mut out = vec![0.0; b * hq * sq * dv];
    for bi in 0..b {
        for h in 0..hq {
            let kh = h / group;
            for i in 0..sq {
                let qrow = &q[((bi * hq + h) * sq + i) * d..][..d];
                let mut scores: Vec<f64> = (0..sk)
                    .map(|j| {
                        let krow = &k[((bi * hkv + kh) * sk + j) * d..][..d];
                        let dot: f64 = qrow.iter().zip(krow).map(|(a, b)| a * b).sum();
                        let m = mask.map_or(0.0, |m| m[((bi * hq + h) * sq + i) * sk + j]);
                        dot * scale + m
                    })
                    .collect();
                let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                if max == f64::NEG_INFINITY {
                    continue; // fully masked row: zeros
                }
                let sum: f64 = scores.iter().map(|s| (s - max).exp()).sum();
                scores.iter_mut().for_each(|s| *s = (*s - max).exp() / sum);
                for c in 0..dv {
                    out[((bi * hq + h) * sq + i) * dv + c] = (0..sk)
                        .map(|j| scores[j] * v[((bi * hkv + kh) * sk + j) * dv + c])
                        .sum();
                }
            }
        }
    }
    out
}

/// Expands a row-major mask of `shape` to [b, hq, sq, sk] by broadcasting.
fn expand(mask: &Tensor, full: &[usize]) -> Vec<f64> {
    let mv = mask.to_vec_f64();
    let ms = mask.shape();
    let mut pad = vec![1; full.len() - ms.len()];
    pad.extend_from_slice(ms);
    let n: usize = full.iter().product();
    (0..n)
        .map(|e| {
            let idx = unravel(e, full);
            let mi: Vec<usize> = idx
                .iter()
                .zip(&pad)
                .map(|(&i, &d)| if d == 1 { 0 } else { i })
                .collect();
            let val = mv[ravel(&mi, &pad)];
            if mask.dtype() == DType::Bool {
                if val != 0.0 { 0.0 } else { f64::NEG_INFINITY }
            } else {
                val
            }
        })
        .collect()
}

#[test]
fn grouped_heads_match_per_head_loop() {
    let mut r = rng(40);
    // (batch, hq, hkv, sq, sk, d, dv)
    let cases = [
        (1, 4, 2, 3, 5, 8, 8),
        (2, 8, 2, 1, 17, 16, 16),
        (1, 6, 6, 17, 17, 4, 3),
        (3, 3, 1, 2, 65, 8, 5),
        // Blocks of heads large enough to run on the thread team (decode and prefill).
        (1, 32, 4, 1, 130, 64, 64),
        (2, 8, 2, 40, 40, 32, 24),
        // A few query rows read straight from k and v (3, and 5 = 4 + 1 rows per kv head).
        (1, 9, 3, 1, 37, 32, 128),
        (2, 10, 2, 1, 37, 32, 64),
    ];
    for dtype in FLOATS {
        for &(b, hq, hkv, sq, sk, d, dv) in &cases {
            let q = rand_tensor(&mut r, &[b, hq, sq, d], dtype);
            let k = rand_tensor(&mut r, &[b, hkv, sk, d], dtype);
            let v = rand_tensor(&mut r, &[b, hkv, sk, dv], dtype);
            let reference = ref_attention(
                &q.to_vec_f64(),
                &k.to_vec_f64(),
                &v.to_vec_f64(),
                None,
                (b, hq, sq, d),
                (hkv, sk, dv),
            );
            let out = Tensor::attention(&q, &k, &v, None).unwrap();
            let what = format!("{dtype} b{b} hq{hq} hkv{hkv} sq{sq} sk{sk} d{d}");
            assert_close(&out, &[b, hq, sq, dv], &reference, dtype, &what);

            // With a causal mask over the cached keys.
            let mask = Tensor::causal_mask(sq, sk.saturating_sub(sq), DType::F32).unwrap();
            let full = [b, hq, sq, sk];
            let reference = ref_attention(
                &q.to_vec_f64(),
                &k.to_vec_f64(),
                &v.to_vec_f64(),
                Some(&expand(&mask, &full)),
                (b, hq, sq, d),
                (hkv, sk, dv),
            );
            let out = Tensor::attention(&q, &k, &v, Some(&mask)).unwrap();
            assert_close(
                &out,
                &[b, hq, sq, dv],
                &reference,
                dtype,
                &format!("{what} masked"),
            );
        }
    }
}

#[test]
fn masks_broadcast_and_bool_masks_keep() {
    let mut r = rng(41);
    let (b, hq, hkv, sq, sk, d) = (2, 4, 2, 3, 6, 8);
    let q = rand_tensor(&mut r, &[b, hq, sq, d], DType::F32);
    let k = rand_tensor(&mut r, &[b, hkv, sk, d], DType::F32);
    let v = rand_tensor(&mut r, &[b, hkv, sk, d], DType::F32);
    let full = [b, hq, sq, sk];
    // A per-head random additive mask, a bool keep-mask, and a mask that removes a whole row.
    let per_head = rand_tensor(&mut r, &[hq, sq, sk], DType::F32);
    let keep = Tensor::from_bool((0..sq * sk).map(|e| e % 4 != 1).collect(), &[1, sq, sk]).unwrap();
    let mut rows = vec![0.0; sq * sk];
    rows[sk..2 * sk]
        .iter_mut()
        .for_each(|x| *x = f64::NEG_INFINITY);
    let dead_row = Tensor::from_f64(&rows, &[sq, sk], DType::F32).unwrap();
    for mask in [per_head, keep, dead_row] {
        let reference = ref_attention(
            &q.to_vec_f64(),
            &k.to_vec_f64(),
            &v.to_vec_f64(),
            Some(&expand(&mask, &full)),
            (b, hq, sq, d),
            (hkv, sk, d),
        );
        let out = Tensor::attention(&q, &k, &v, Some(&mask)).unwrap();
        assert_close(
            &out,
            &[b, hq, sq, d],
            &reference,
            DType::F32,
            &format!("mask {:?}", mask.shape()),
        );
    }
}

#[test]
fn non_contiguous_and_broadcast_batches() {
    let mut r = rng(42);
    let (hq, hkv, sq, sk, d) = (4, 2, 5, 7, 8);
    for dtype in FLOATS {
        // q stored as [sq, hq, d] and viewed as [hq, sq, d] (the layout after a transpose);
        // k a transposed view; v a strided slice; batch dims broadcast ([2, ..] vs [1, ..]).
        let q_base = rand_tensor(&mut r, &[2, sq, hq, d], dtype);
        let ql = q_base.layout();
        let q = q_base.with_layout(Layout {
            shape: vec![2, hq, sq, d],
            strides: vec![ql.strides[0], ql.strides[2], ql.strides[1], ql.strides[3]],
            offset: 0,
        });
        let k = rand_transposed(&mut r, &[1, hkv, sk, d], dtype);
        let v = rand_strided(&mut r, &[hkv, sk, d], dtype);
        // References on contiguous, expanded copies.
        let qv = q.to_vec_f64();
        let kv1 = k.to_vec_f64();
        let vv1 = v.to_vec_f64();
        let kv: Vec<f64> = kv1.iter().chain(&kv1).copied().collect();
        let vv: Vec<f64> = vv1.iter().chain(&vv1).copied().collect();
        let reference = ref_attention(&qv, &kv, &vv, None, (2, hq, sq, d), (hkv, sk, d));
        let out = Tensor::attention(&q, &k, &v, None).unwrap();
        assert_close(
            &out,
            &[2, hq, sq, d],
            &reference,
            dtype,
            &format!("{dtype} views"),
        );
    }
}

#[test]
fn attention_errors() {
    let mut r = rng(43);
    let q = rand_tensor(&mut r, &[1, 3, 2, 8], DType::F32);
    let k = rand_tensor(&mut r, &[1, 2, 4, 8], DType::F32);
    let v = rand_tensor(&mut r, &[1, 2, 4, 8], DType::F32);
    assert_eq!(
        Tensor::attention(&q, &k, &v, None).unwrap_err().0,
        "attention: 3 query heads are not a multiple of 2 kv heads: q [1, 3, 2, 8], k [1, 2, 4, 8], v [1, 2, 4, 8]"
    );
    let q = rand_tensor(&mut r, &[1, 4, 2, 6], DType::F32);
    assert!(
        Tensor::attention(&q, &k, &v, None)
            .unwrap_err()
            .0
            .starts_with("attention: q and k head dims differ (6 vs 8)")
    );
    let q = rand_tensor(&mut r, &[1, 4, 2, 8], DType::F32);
    let v5 = rand_tensor(&mut r, &[1, 2, 5, 8], DType::F32);
    assert!(
        Tensor::attention(&q, &k, &v5, None)
            .unwrap_err()
            .0
            .starts_with("attention: k and v disagree")
    );
    let bad_mask = rand_tensor(&mut r, &[3, 4], DType::F32);
    assert_eq!(
        Tensor::attention(&q, &k, &v, Some(&bad_mask))
            .unwrap_err()
            .0,
        "attention: shapes [1, 4, 2, 4] and [3, 4] cannot be broadcast together (dimension 2 is 2 vs 3)"
    );
    let flat = rand_tensor(&mut r, &[2, 8], DType::F32);
    assert!(
        Tensor::attention(&flat, &k, &v, None)
            .unwrap_err()
            .0
            .starts_with("attention: q, k and v need at least 3 dims")
    );
}

#[test]
fn degenerate_sizes_do_not_panic() {
    let mut r = rng(44);
    // No keys: every row is fully masked, so the output is zeros (not NaN).
    let q = rand_tensor(&mut r, &[1, 2, 3, 4], DType::F32);
    let k = rand_tensor(&mut r, &[1, 1, 0, 4], DType::F32);
    let v = rand_tensor(&mut r, &[1, 1, 0, 4], DType::F32);
    let out = Tensor::attention(&q, &k, &v, None).unwrap();
    assert_eq!(out.shape(), &[1, 2, 3, 4]);
    assert_eq!(out.to_vec_f64(), vec![0.0; 24]);
    // No query heads or no queries: empty results of the right shape.
    let q0 = rand_tensor(&mut r, &[1, 0, 3, 4], DType::F32);
    let k1 = rand_tensor(&mut r, &[1, 1, 5, 4], DType::F32);
    let v1 = rand_tensor(&mut r, &[1, 1, 5, 4], DType::F32);
    assert_eq!(
        Tensor::attention(&q0, &k1, &v1, None).unwrap().shape(),
        &[1, 0, 3, 4]
    );
    let qs0 = rand_tensor(&mut r, &[1, 2, 0, 4], DType::F32);
    assert_eq!(
        Tensor::attention(&qs0, &k1, &v1, None).unwrap().shape(),
        &[1, 2, 0, 4]
    );
}
