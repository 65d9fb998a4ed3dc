//! Linear algebra, neural and sampling builtins called through the registry, checked against
//! naive f64 references on seeded random inputs.

mod builtins_support;

use builtins_support::*;
use tl_interp::Value;
use tl_tensor::{DType, Tensor};

/// [m, k] @ [k, n] in f64.
fn matmul_ref(a: &[f64], b: &[f64], m: usize, k: usize, n: usize) -> Vec<f64> {
    let mut out = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            out[i * n + j] = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
        }
    }
    out
}

// ---------------------------------------------------------------- linear algebra

#[test]
fn matmul_matches_reference_for_matrices_batches_and_vectors() {
    let mut it = interp();
    let mut g = Gen::new(21);
    for dtype in [DType::F32, DType::F16, DType::BF16] {
        let (a, as_) = g.tensor(&[7, 9], dtype);
        let (b, bs) = g.tensor(&[9, 5], dtype);
        let out = call_t(&mut it, "matmul", vec![t(&a), t(&b)]);
        assert_eq!(out.dtype(), dtype);
        assert_close(
            &out,
            &[7, 5],
            &matmul_ref(&as_, &bs, 7, 9, 5),
            tolerance(dtype),
        );
    }
    // Batched left operand against a shared right one.
    let (a, as_) = g.tensor(&[3, 4, 6], DType::F32);
    let (b, bs) = g.tensor(&[6, 2], DType::F32);
    let want: Vec<f64> = (0..3)
        .flat_map(|batch| matmul_ref(&as_[batch * 24..batch * 24 + 24], &bs, 4, 6, 2))
        .collect();
    assert_close(
        &call_t(&mut it, "matmul", vec![t(&a), t(&b)]),
        &[3, 4, 2],
        &want,
        1e-5,
    );
    // Vector @ matrix drops the vector's dim; a transposed view as the right operand.
    let (v, vs) = g.tensor(&[6], DType::F32);
    let (w, ws) = g.tensor(&[3, 6], DType::F32);
    let wt = w.transpose(0, 1).unwrap();
    let want: Vec<f64> = (0..3)
        .map(|j| (0..6).map(|p| vs[p] * ws[j * 6 + p]).sum())
        .collect();
    assert_close(
        &call_t(&mut it, "matmul", vec![t(&v), t(&wt)]),
        &[3],
        &want,
        1e-5,
    );

    let (c, _) = g.tensor(&[3, 4], DType::F32);
    let (d, _) = g.tensor(&[5, 6], DType::F32);
    let e = call_err(&mut it, "matmul", vec![t(&c), t(&d)]);
    assert!(
        e.contains("[3, 4]") && e.contains("[5, 6]"),
        "both shapes named: {e}"
    );
    let e = call_err(&mut it, "matmul", vec![t(&c)]);
    assert!(e.contains("expected 2 arguments, got 1"), "{e}");
}

#[test]
fn linear_einsum_dot_outer() {
    let mut it = interp();
    let mut g = Gen::new(22);
    let (x, xs) = g.tensor(&[2, 3, 8], DType::F32);
    let (w, ws) = g.tensor(&[5, 8], DType::F32);
    let (b, bs) = g.tensor(&[5], DType::F32);
    let want: Vec<f64> = (0..30)
        .map(|k| {
            let (row, o) = (k / 5, k % 5);
            bs[o] + (0..8).map(|p| xs[row * 8 + p] * ws[o * 8 + p]).sum::<f64>()
        })
        .collect();
    assert_close(
        &call_t(&mut it, "linear", vec![t(&x), t(&w), t(&b)]),
        &[2, 3, 5],
        &want,
        1e-5,
    );
    let named = call_named_t(&mut it, "linear", vec![t(&x), t(&w)], vec![("bias", t(&b))]);
    assert_close(&named, &[2, 3, 5], &want, 1e-5);
    let (bad, _) = g.tensor(&[5, 7], DType::F32);
    let e = call_err(&mut it, "linear", vec![t(&x), t(&bad)]);
    assert!(e.contains("[2, 3, 8]") && e.contains("[5, 7]"), "{e}");

    let (a, as_) = g.tensor(&[4, 6], DType::F32);
    let (m, ms) = g.tensor(&[6, 3], DType::F32);
    let out = call_t(&mut it, "einsum", vec![s("ij,jk->ik"), t(&a), t(&m)]);
    assert_close(&out, &[4, 3], &matmul_ref(&as_, &ms, 4, 6, 3), 1e-5);
    let (sq, sqs) = g.tensor(&[5, 5], DType::F32);
    let trace: f64 = (0..5).map(|i| sqs[i * 5 + i]).sum();
    assert_close(
        &call_t(&mut it, "einsum", vec![s("ii->"), t(&sq)]),
        &[],
        &[trace],
        1e-5,
    );
    // Implicit output: "ij,jk" sums j and keeps i, k.
    let out = call_t(&mut it, "einsum", vec![s("ij,jk"), t(&a), t(&m)]);
    assert_close(&out, &[4, 3], &matmul_ref(&as_, &ms, 4, 6, 3), 1e-5);
    let e = call_err(&mut it, "einsum", vec![s("ij,jk->ik"), t(&a), t(&a)]);
    assert!(!e.is_empty());
    let e = call_err(&mut it, "einsum", vec![t(&a)]);
    assert!(e.contains("must be a string"), "{e}");

    let (u, us) = g.tensor(&[7], DType::F32);
    let (v, vs) = g.tensor(&[7], DType::F32);
    let d: f64 = us.iter().zip(&vs).map(|(a, b)| a * b).sum();
    assert_close(&call_t(&mut it, "dot", vec![t(&u), t(&v)]), &[], &[d], 1e-5);
    let (short, _) = g.tensor(&[6], DType::F32);
    let e = call_err(&mut it, "dot", vec![t(&u), t(&short)]);
    assert!(e.contains("[7]") && e.contains("[6]"), "{e}");
    let (p, ps) = g.tensor(&[3], DType::F32);
    let want: Vec<f64> = (0..21).map(|k| ps[k / 7] * vs[k % 7]).collect();
    assert_close(
        &call_t(&mut it, "outer", vec![t(&p), t(&v)]),
        &[3, 7],
        &want,
        1e-6,
    );
    let e = call_err(&mut it, "outer", vec![t(&a), t(&v)]);
    assert!(e.contains("[4, 6]"), "{e}");
}

// ---------------------------------------------------------------- neural

fn softmax_ref(row: &[f64]) -> Vec<f64> {
    let m = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = row.iter().map(|x| (x - m).exp()).collect();
    let s: f64 = e.iter().sum();
    e.iter().map(|x| x / s).collect()
}

#[test]
fn softmax_and_log_softmax_honour_dim() {
    let mut it = interp();
    let mut g = Gen::new(23);
    let (x, xs) = g.tensor(&[3, 4, 5], DType::F32);
    // Last dim (default).
    let want: Vec<f64> = xs.chunks(5).flat_map(softmax_ref).collect();
    assert_close(
        &call_t(&mut it, "softmax", vec![t(&x)]),
        &[3, 4, 5],
        &want,
        1e-5,
    );
    let logs: Vec<f64> = want.iter().map(|p| p.ln()).collect();
    assert_close(
        &call_t(&mut it, "log_softmax", vec![t(&x)]),
        &[3, 4, 5],
        &logs,
        1e-5,
    );
    // Dim 1, positional and named.
    let mut want = vec![0.0; 60];
    for a in 0..3 {
        for c in 0..5 {
            let col: Vec<f64> = (0..4).map(|b| xs[a * 20 + b * 5 + c]).collect();
            for (b, p) in softmax_ref(&col).into_iter().enumerate() {
                want[a * 20 + b * 5 + c] = p;
            }
        }
    }
    assert_close(
        &call_t(&mut it, "softmax", vec![t(&x), int(1)]),
        &[3, 4, 5],
        &want,
        1e-5,
    );
    let named = call_named_t(&mut it, "softmax", vec![t(&x)], vec![("dim", int(-2))]);
    assert_close(&named, &[3, 4, 5], &want, 1e-5);
    let e = call_named_err(&mut it, "softmax", vec![t(&x)], vec![("axis", int(1))]);
    assert!(e.contains("unknown named argument `axis`"), "{e}");
}

#[test]
fn rms_norm_and_layer_norm() {
    let mut it = interp();
    let mut g = Gen::new(24);
    for dtype in [DType::F32, DType::F16] {
        let (x, xs) = g.tensor(&[3, 16], dtype);
        let (w, ws) = g.tensor(&[16], dtype);
        let (b, bs) = g.tensor(&[16], dtype);
        for eps in [1e-5, 1e-2] {
            let want: Vec<f64> = xs
                .chunks(16)
                .flat_map(|row| {
                    let ms = row.iter().map(|v| v * v).sum::<f64>() / 16.0;
                    let scale = 1.0 / (ms + eps).sqrt();
                    row.iter()
                        .zip(&ws)
                        .map(|(v, w)| v * scale * w)
                        .collect::<Vec<_>>()
                })
                .collect();
            let out = call_named_t(
                &mut it,
                "rms_norm",
                vec![t(&x), t(&w)],
                vec![("eps", float(eps))],
            );
            assert_eq!(out.dtype(), dtype);
            assert_close(&out, &[3, 16], &want, tolerance(dtype));

            let want: Vec<f64> = xs
                .chunks(16)
                .flat_map(|row| {
                    let mean = row.iter().sum::<f64>() / 16.0;
                    let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / 16.0;
                    let inv = 1.0 / (var + eps).sqrt();
                    (0..16)
                        .map(|k| (row[k] - mean) * inv * ws[k] + bs[k])
                        .collect::<Vec<_>>()
                })
                .collect();
            let out = call_t(&mut it, "layer_norm", vec![t(&x), t(&w), t(&b), float(eps)]);
            assert_close(&out, &[3, 16], &want, tolerance(dtype));
        }
        // The default eps, positional.
        let want: Vec<f64> = xs
            .chunks(16)
            .flat_map(|row| {
                let ms = row.iter().map(|v| v * v).sum::<f64>() / 16.0;
                let scale = 1.0 / (ms + 1e-5).sqrt();
                row.iter()
                    .zip(&ws)
                    .map(|(v, w)| v * scale * w)
                    .collect::<Vec<_>>()
            })
            .collect();
        assert_close(
            &call_t(&mut it, "rms_norm", vec![t(&x), t(&w)]),
            &[3, 16],
            &want,
            tolerance(dtype),
        );
    }
    // layer_norm without weight and bias.
    let (x, xs) = g.tensor(&[2, 8], DType::F32);
    let want: Vec<f64> = xs
        .chunks(8)
        .flat_map(|row| {
            let mean = row.iter().sum::<f64>() / 8.0;
            let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / 8.0;
            row.iter()
                .map(|v| (v - mean) / (var + 1e-5).sqrt())
                .collect::<Vec<_>>()
        })
        .collect();
    assert_close(
        &call_t(&mut it, "layer_norm", vec![t(&x)]),
        &[2, 8],
        &want,
        1e-5,
    );
    let (w7, _) = g.tensor(&[7], DType::F32);
    let e = call_err(&mut it, "rms_norm", vec![t(&x), t(&w7)]);
    assert!(
        e.contains("[2, 8]") && e.contains("[7]"),
        "both shapes named: {e}"
    );
}

#[test]
fn embedding_takes_tensors_lists_and_host_ints() {
    let mut it = interp();
    let mut g = Gen::new(25);
    let (table, ts) = g.tensor(&[10, 4], DType::F32);
    let ids: Vec<i64> = (0..6).map(|_| g.below(10) as i64).collect();
    let id_tensor = Tensor::from_i64(ids.clone(), &[2, 3]).unwrap();
    let want: Vec<f64> = ids
        .iter()
        .flat_map(|&i| ts[i as usize * 4..i as usize * 4 + 4].to_vec())
        .collect();
    assert_close(
        &call_t(&mut it, "embedding", vec![t(&table), t(&id_tensor)]),
        &[2, 3, 4],
        &want,
        0.0,
    );
    assert_close(
        &call_t(&mut it, "embedding", vec![t(&table), ints(&ids)]),
        &[6, 4],
        &want,
        0.0,
    );
    assert_close(
        &call_t(&mut it, "embedding", vec![t(&table), int(7)]),
        &[4],
        &ts[28..32],
        0.0,
    );
    let e = call_err(&mut it, "embedding", vec![t(&table), int(10)]);
    assert!(e.contains("10"), "{e}");
    let e = call_err(&mut it, "embedding", vec![t(&table), s("x")]);
    assert!(e.contains("must be"), "{e}");
}

/// Rotates adjacent (or, for neox, half-split) pairs of each row of `xs` ([seq, heads, d])
/// by (pos + s) * theta^(-2i/d).
fn rope_ref(
    xs: &[f64],
    seq: usize,
    heads: usize,
    d: usize,
    pos: usize,
    theta: f64,
    neox: bool,
) -> Vec<f64> {
    let mut out = xs.to_vec();
    for s in 0..seq {
        for h in 0..heads {
            let base = (s * heads + h) * d;
            for i in 0..d / 2 {
                let angle = (pos + s) as f64 * theta.powf(-2.0 * i as f64 / d as f64);
                let (a, b) = if neox {
                    (i, i + d / 2)
                } else {
                    (2 * i, 2 * i + 1)
                };
                let (x0, x1) = (xs[base + a], xs[base + b]);
                out[base + a] = x0 * angle.cos() - x1 * angle.sin();
                out[base + b] = x0 * angle.sin() + x1 * angle.cos();
            }
        }
    }
    out
}

#[test]
fn rope_rotates_pairs_by_position() {
    let mut it = interp();
    let mut g = Gen::new(26);
    let (x, xs) = g.tensor(&[3, 2, 8], DType::F32);
    let want = rope_ref(&xs, 3, 2, 8, 5, 10000.0, false);
    assert_close(
        &call_t(&mut it, "rope", vec![t(&x), int(5)]),
        &[3, 2, 8],
        &want,
        1e-5,
    );
    let want = rope_ref(&xs, 3, 2, 8, 2, 500.0, true);
    let out = call_named_t(
        &mut it,
        "rope",
        vec![t(&x), int(2)],
        vec![("theta", float(500.0)), ("neox", Value::Bool(true))],
    );
    assert_close(&out, &[3, 2, 8], &want, 1e-5);
    // [seq, head_dim]: one head.
    let (y, ys) = g.tensor(&[4, 6], DType::F32);
    let want = rope_ref(&ys, 4, 1, 6, 0, 100.0, false);
    assert_close(
        &call_t(&mut it, "rope", vec![t(&y), int(0), float(100.0)]),
        &[4, 6],
        &want,
        1e-5,
    );
    let e = call_err(&mut it, "rope", vec![t(&y), int(-1)]);
    assert!(e.contains("non-negative"), "{e}");
    let (odd, _) = g.tensor(&[2, 5], DType::F32);
    assert!(!call_err(&mut it, "rope", vec![t(&odd), int(0)]).is_empty());
}

/// Grouped-query attention in f64; `dims` = [hq, hkv, sq, sk, d].
fn attention_ref(
    q: &[f64],
    k: &[f64],
    v: &[f64],
    dims: [usize; 5],
    mask: Option<&[f64]>,
) -> Vec<f64> {
    let [hq, hkv, sq, sk, d] = dims;
    let mut out = vec![0.0; hq * sq * d];
    let group = hq / hkv;
    for h in 0..hq {
        let kvh = h / group;
        for i in 0..sq {
            let scores: Vec<f64> = (0..sk)
                .map(|j| {
                    let dotp: f64 = (0..d)
                        .map(|c| q[(h * sq + i) * d + c] * k[(kvh * sk + j) * d + c])
                        .sum();
                    dotp / (d as f64).sqrt() + mask.map_or(0.0, |m| m[i * sk + j])
                })
                .collect();
            let p = softmax_ref(&scores);
            for c in 0..d {
                out[(h * sq + i) * d + c] = (0..sk).map(|j| p[j] * v[(kvh * sk + j) * d + c]).sum();
            }
        }
    }
    out
}

#[test]
fn masks_and_attention() {
    let mut it = interp();
    let mut g = Gen::new(27);
    let m = call_t(&mut it, "causal_mask", vec![int(3), int(2)]);
    let want: Vec<f64> = (0..15)
        .map(|k| {
            if k % 5 <= 2 + k / 5 {
                0.0
            } else {
                f64::NEG_INFINITY
            }
        })
        .collect();
    assert_eq!(m.shape(), &[3, 5]);
    assert_eq!(m.to_vec_f64(), want);
    let m16 = call_named_t(
        &mut it,
        "causal_mask",
        vec![int(2)],
        vec![("dtype", s("f16"))],
    );
    assert_eq!((m16.dtype(), m16.shape()), (DType::F16, &[2usize, 2][..]));
    let e = call_named_err(
        &mut it,
        "causal_mask",
        vec![int(2)],
        vec![("dtype", s("int64"))],
    );
    assert!(e.contains("float dtype"), "{e}");

    let (scores, ss) = g.tensor(&[2, 3, 5], DType::F32);
    let masked = call_t(&mut it, "apply_attention_mask", vec![t(&scores), t(&m)]);
    let want: Vec<f64> = (0..30).map(|k| ss[k] + want[k % 15]).collect();
    assert_eq!(masked.shape(), &[2, 3, 5]);
    assert_eq!(
        masked.to_vec_f64(),
        want.iter().map(|&v| v as f32 as f64).collect::<Vec<_>>()
    );
    let (bad, _) = g.tensor(&[4, 5], DType::F32);
    let e = call_err(&mut it, "apply_attention_mask", vec![t(&scores), t(&bad)]);
    assert!(e.contains("[2, 3, 5]") && e.contains("[4, 5]"), "{e}");

    // Grouped heads: 4 query heads over 2 kv heads, 3 new queries after 2 cached keys.
    let (hq, hkv, sq, sk, d) = (4, 2, 3, 5, 8);
    let (q, qs) = g.tensor(&[hq, sq, d], DType::F32);
    let (k, ks) = g.tensor(&[hkv, sk, d], DType::F32);
    let (v, vs) = g.tensor(&[hkv, sk, d], DType::F32);
    let mask_values = m.to_vec_f64();
    let want = attention_ref(&qs, &ks, &vs, [hq, hkv, sq, sk, d], Some(&mask_values));
    let out = call_t(&mut it, "attention", vec![t(&q), t(&k), t(&v), t(&m)]);
    assert_close(&out, &[hq, sq, d], &want, 1e-5);
    let want = attention_ref(&qs, &ks, &vs, [hq, hkv, sq, sk, d], None);
    assert_close(
        &call_t(&mut it, "attention", vec![t(&q), t(&k), t(&v)]),
        &[hq, sq, d],
        &want,
        1e-5,
    );
    let named = call_named_t(
        &mut it,
        "attention",
        vec![t(&q), t(&k), t(&v)],
        vec![("mask", t(&m))],
    );
    assert_eq!(named.shape(), &[hq, sq, d]);
    let (k3, _) = g.tensor(&[3, sk, d], DType::F32);
    assert!(!call_err(&mut it, "attention", vec![t(&q), t(&k3), t(&k3)]).is_empty());
}

#[test]
fn silu_mul_matches_reference() {
    let mut it = interp();
    let mut g = Gen::new(28);
    let (a, as_) = g.tensor(&[5, 7], DType::F32);
    let (b, bs) = g.tensor(&[5, 7], DType::F32);
    let want: Vec<f64> = as_
        .iter()
        .zip(&bs)
        .map(|(x, y)| x / (1.0 + (-x).exp()) * y)
        .collect();
    assert_close(
        &call_t(&mut it, "silu_mul", vec![t(&a), t(&b)]),
        &[5, 7],
        &want,
        1e-5,
    );
    let (c, _) = g.tensor(&[4, 7], DType::F32);
    let e = call_err(&mut it, "silu_mul", vec![t(&a), t(&c)]);
    assert!(e.contains("[5, 7]") && e.contains("[4, 7]"), "{e}");
}

// ---------------------------------------------------------------- sampling

#[test]
fn greedy_choices_pick_the_argmax() {
    let mut it = interp();
    let mut g = Gen::new(29);
    let (logits, ls) = g.tensor(&[3, 50], DType::F32);
    let last = &ls[100..];
    let best = (0..50)
        .max_by(|&a, &b| last[a].total_cmp(&last[b]))
        .unwrap() as i64;
    assert_eq!(
        expect_int(call(&mut it, "temperature_sample", vec![t(&logits), float(0.0)]).unwrap()),
        best
    );
    let greedy = call_named(
        &mut it,
        "sample",
        vec![t(&logits)],
        vec![("temperature", float(0.0))],
    )
    .unwrap();
    assert_eq!(expect_int(greedy), best);
    let top1 = call_named(
        &mut it,
        "sample",
        vec![t(&logits)],
        vec![("top_k", int(1)), ("temperature", float(2.0))],
    )
    .unwrap();
    assert_eq!(expect_int(top1), best);
    let nucleus = call_named(
        &mut it,
        "sample",
        vec![t(&logits)],
        vec![("top_p", float(1e-9))],
    )
    .unwrap();
    assert_eq!(expect_int(nucleus), best);
}

#[test]
fn sampling_follows_the_softmax_distribution() {
    let mut it = interp();
    // p = softmax([0, ln 3, -inf]) = [0.25, 0.75, 0].
    let logits = Tensor::from_f64(&[0.0, 3f64.ln(), f64::NEG_INFINITY], &[3], DType::F32).unwrap();
    let draws = 4000;
    let mut counts = [0usize; 3];
    for _ in 0..draws {
        let id =
            expect_int(call(&mut it, "temperature_sample", vec![t(&logits), float(1.0)]).unwrap());
        counts[id as usize] += 1;
    }
    assert_eq!(counts[2], 0, "a -inf logit is never drawn");
    let frac = counts[1] as f64 / draws as f64;
    assert!((frac - 0.75).abs() < 0.03, "frequency {frac}");
    // Temperature 2 flattens: p1 = sqrt(3) / (1 + sqrt(3)).
    let mut ones = 0;
    for _ in 0..draws {
        let id = expect_int(
            call_named(
                &mut it,
                "sample",
                vec![t(&logits)],
                vec![("temperature", float(2.0))],
            )
            .unwrap(),
        );
        ones += (id == 1) as usize;
    }
    let p1 = 3f64.sqrt() / (1.0 + 3f64.sqrt());
    let frac = ones as f64 / draws as f64;
    assert!((frac - p1).abs() < 0.03, "frequency {frac} vs {p1}");
}

#[test]
fn a_seed_makes_sample_reproducible() {
    let mut g = Gen::new(30);
    let (logits, _) = g.tensor(&[100], DType::F32);
    let run = |seed: i64| -> Vec<i64> {
        let mut it = interp();
        (0..20)
            .map(|_| {
                expect_int(
                    call_named(
                        &mut it,
                        "sample",
                        vec![t(&logits)],
                        vec![("seed", int(seed))],
                    )
                    .unwrap(),
                )
            })
            .collect()
    };
    let a = run(7);
    assert_eq!(a, run(7));
    assert!(
        a.iter().all(|&id| id == a[0]),
        "a fixed seed draws the same id every call"
    );
    let varied: std::collections::HashSet<i64> = (0..40).map(|s| run(s)[0]).collect();
    assert!(varied.len() > 5, "different seeds draw different ids");
}

#[test]
fn top_k_and_top_p_filter_logits() {
    let mut it = interp();
    let mut g = Gen::new(31);
    let (logits, ls) = g.tensor(&[2, 30], DType::F32);
    let row = &ls[30..];
    let kept = call_t(&mut it, "top_k", vec![t(&logits), int(5)]);
    assert_eq!(kept.shape(), &[30]);
    let out = kept.to_vec_f64();
    let mut sorted = row.to_vec();
    sorted.sort_by(|a, b| b.total_cmp(a));
    for (k, &v) in out.iter().enumerate() {
        if row[k] >= sorted[4] {
            assert_eq!(v, row[k]);
        } else {
            assert_eq!(v, f64::NEG_INFINITY);
        }
    }
    assert_eq!(out.iter().filter(|v| v.is_finite()).count(), 5);
    let all = call_t(&mut it, "top_k", vec![t(&logits), int(100)]);
    assert_eq!(all.to_vec_f64(), row.to_vec());
    assert!(call_err(&mut it, "top_k", vec![t(&logits), int(0)]).contains("at least 1"));

    let p = 0.6;
    let filtered = call_t(&mut it, "top_p", vec![t(&logits), float(p)]).to_vec_f64();
    let probs = softmax_ref(row);
    let mut order: Vec<usize> = (0..30).collect();
    order.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]));
    let mut mass = 0.0;
    let mut nucleus = Vec::new();
    for &i in &order {
        nucleus.push(i);
        mass += probs[i];
        if mass >= p {
            break;
        }
    }
    for k in 0..30 {
        if nucleus.contains(&k) {
            assert_eq!(filtered[k], row[k]);
        } else {
            assert_eq!(filtered[k], f64::NEG_INFINITY);
        }
    }
    let e = call_err(&mut it, "top_p", vec![t(&logits), float(1.5)]);
    assert!(e.contains("(0, 1]"), "{e}");
}

#[test]
fn sampling_errors() {
    let mut it = interp();
    let masked = Tensor::from_f64(&[f64::NEG_INFINITY; 4], &[4], DType::F32).unwrap();
    let e = call_err(&mut it, "temperature_sample", vec![t(&masked), float(1.0)]);
    assert!(e.contains("nothing to sample"), "{e}");
    let e = call_err(&mut it, "temperature_sample", vec![float(1.0), float(1.0)]);
    assert!(e.contains("rank-0"), "{e}");
    let logits = Tensor::from_f64(&[0.5, 1.0], &[2], DType::F32).unwrap();
    let e = call_named_err(
        &mut it,
        "sample",
        vec![t(&logits)],
        vec![("temprature", float(1.0))],
    );
    assert!(e.contains("unknown named argument `temprature`"), "{e}");
    let e = call_named_err(
        &mut it,
        "sample",
        vec![t(&logits)],
        vec![("temperature", float(-1.0))],
    );
    assert!(e.contains("0 or more"), "{e}");
    let e = call_named_err(
        &mut it,
        "sample",
        vec![t(&logits)],
        vec![("top_k", int(-2))],
    );
    assert!(e.contains("top_k"), "{e}");
    let e = call_named_err(&mut it, "sample", vec![t(&logits)], vec![("top_k", s("5"))]);
    assert!(e.contains("must be an int"), "{e}");
}
