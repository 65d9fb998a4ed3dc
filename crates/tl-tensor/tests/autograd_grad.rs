//! Every gradient of `tl_tensor::autograd` against central finite differences.
//!
//! The runtime has no float64 tensors, so the reference works like this: the op runs in f32,
//! the scalar `L = sum(op(x) * R)` (R random) is accumulated on the host in f64, and the
//! step is the exact f64 difference of the two f32 inputs. With a step of 1e-2 on inputs of
//! order 1, the f32 rounding of the op's outputs contributes about 1e-5 relative, so the
//! tolerance is ||analytic - numeric|| / ||numeric|| <= 2e-3 (a wrong formula is off by
//! O(1)). Inputs are random normal (or positive, or kept away from kinks), never zeros.

use tl_tensor::autograd::backward;
use tl_tensor::{BinaryOp, DType, ReduceOp, Result, Tensor, TensorRng, UnaryOp};

const STEP: f64 = 1e-2;
const TOL: f64 = 2e-3;

fn rng(seed: u64) -> TensorRng {
    TensorRng::seed_from_u64(seed)
}

/// Normal samples with |x| >= 0.2 (away from the kinks of relu/abs/step at 0).
fn randn(shape: &[usize], r: &mut TensorRng) -> Tensor {
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n)
        .map(|_| {
            let x = r.normal();
            (x + 0.2 * x.signum()) as f32
        })
        .collect();
    Tensor::from_f32(v, shape).unwrap()
}

/// Uniform samples in [0.5, 1.5).
fn positive(shape: &[usize], r: &mut TensorRng) -> Tensor {
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n).map(|_| (0.5 + r.uniform()) as f32).collect();
    Tensor::from_f32(v, shape).unwrap()
}

fn ids(values: &[i64], shape: &[usize]) -> Tensor {
    Tensor::from_i64(values.to_vec(), shape).unwrap()
}

/// Checks the gradients of `sum(f(inputs) * R)` with respect to every input.
fn check(name: &str, inputs: &[Tensor], f: impl Fn(&[Tensor]) -> Result<Tensor>) {
    let mut r = rng(99);
    let y0 = f(inputs).unwrap();
    let weights = randn(y0.shape(), &mut r);
    let wv = weights.to_vec_f64();
    let loss_host = |xs: &[Tensor]| -> f64 {
        let y = f(xs).unwrap();
        y.to_vec_f64().iter().zip(&wv).map(|(a, b)| a * b).sum()
    };

    let leaves: Vec<Tensor> = inputs.iter().map(|t| t.requires_grad().unwrap()).collect();
    let y = f(&leaves).unwrap();
    assert!(y.is_tracked(), "{name}: the output is not tracked");
    let loss = y
        .binary(BinaryOp::Mul, &weights)
        .unwrap()
        .reduce(ReduceOp::Sum, None, false)
        .unwrap();
    let refs: Vec<&Tensor> = leaves.iter().collect();
    let grads = backward(&loss, &refs).unwrap();

    for (i, x) in inputs.iter().enumerate() {
        assert_eq!(
            grads[i].shape(),
            x.shape(),
            "{name}: gradient shape of input {i}"
        );
        let analytic = grads[i].to_vec_f64();
        let base = x.to_vec_f32();
        let mut numeric = Vec::with_capacity(base.len());
        for j in 0..base.len() {
            let mut plus = base.clone();
            let mut minus = base.clone();
            plus[j] = (base[j] as f64 + STEP) as f32;
            minus[j] = (base[j] as f64 - STEP) as f32;
            let h = plus[j] as f64 - minus[j] as f64;
            let at = |v: Vec<f32>| {
                let mut xs = inputs.to_vec();
                xs[i] = Tensor::from_f32(v, x.shape()).unwrap();
                loss_host(&xs)
            };
            numeric.push((at(plus) - at(minus)) / h);
        }
        let diff: f64 = analytic
            .iter()
            .zip(&numeric)
            .map(|(a, b)| (a - b) * (a - b))
            .sum::<f64>()
            .sqrt();
        let norm: f64 = numeric.iter().map(|b| b * b).sum::<f64>().sqrt();
        let rel = diff / norm.max(1e-6);
        assert!(
            rel <= TOL,
            "{name}: input {i}: relative error {rel:.2e} > {TOL:.0e}\nanalytic {analytic:?}\nnumeric  {numeric:?}"
        );
    }
}

#[test]
fn elementwise_unary() {
    let mut r = rng(1);
    let x = randn(&[3, 4], &mut r);
    let p = positive(&[3, 4], &mut r);
    for op in [
        UnaryOp::Neg,
        UnaryOp::Abs,
        UnaryOp::Exp,
        UnaryOp::Sin,
        UnaryOp::Cos,
        UnaryOp::Tanh,
        UnaryOp::Sigmoid,
        UnaryOp::Relu,
        UnaryOp::Gelu,
        UnaryOp::Silu,
    ] {
        check(op.name(), std::slice::from_ref(&x), |v| v[0].unary(op));
    }
    for op in [UnaryOp::Log, UnaryOp::Sqrt, UnaryOp::Rsqrt] {
        check(op.name(), std::slice::from_ref(&p), |v| v[0].unary(op));
    }
    check("clamp", std::slice::from_ref(&x), |v| {
        v[0].clamp(Some(-0.7), Some(0.9))
    });
}

#[test]
fn elementwise_binary_with_broadcasting() {
    let mut r = rng(2);
    let a = randn(&[2, 3, 4], &mut r);
    let b = randn(&[3, 1], &mut r);
    let p = positive(&[2, 3, 4], &mut r);
    let q = positive(&[4], &mut r);
    for op in [
        BinaryOp::Add,
        BinaryOp::Sub,
        BinaryOp::Mul,
        BinaryOp::Maximum,
        BinaryOp::Minimum,
    ] {
        check(op.name(), &[a.clone(), b.clone()], |v| {
            v[0].binary(op, &v[1])
        });
    }
    check("div", &[a.clone(), q.clone()], |v| {
        v[0].binary(BinaryOp::Div, &v[1])
    });
    check("pow", &[p.clone(), q.clone()], |v| {
        v[0].binary(BinaryOp::Pow, &v[1])
    });
    // A host scalar on one side (rank 0, not tracked).
    check("scalar pow", std::slice::from_ref(&a), |v| {
        v[0].binary(BinaryOp::Pow, &Tensor::scalar(2.0, DType::F32))
    });
    let cond = a
        .binary(BinaryOp::Gt, &Tensor::scalar(0.0, DType::F32))
        .unwrap();
    check("where", &[a.clone(), b.clone()], |v| {
        Tensor::where_cond(&cond, &v[0], &v[1])
    });
}

#[test]
fn reductions() {
    let mut r = rng(3);
    let x = randn(&[2, 3, 4], &mut r);
    for op in [ReduceOp::Sum, ReduceOp::Mean, ReduceOp::Max, ReduceOp::Min] {
        for (dims, keep) in [
            (None, false),
            (Some(vec![1isize]), false),
            (Some(vec![0, 2]), true),
            (Some(vec![-1]), true),
        ] {
            check(op.name(), std::slice::from_ref(&x), |v| {
                v[0].reduce(op, dims.as_deref(), keep)
            });
        }
    }
    check("norm", std::slice::from_ref(&x), |v| {
        v[0].norm(Some(&[1]), false)
    });
}

#[test]
fn matmul_batched_and_vectors() {
    let mut r = rng(4);
    let a = randn(&[2, 3, 4], &mut r);
    let b = randn(&[4, 5], &mut r);
    check("matmul batched x matrix", &[a.clone(), b.clone()], |v| {
        v[0].matmul(&v[1])
    });
    let c = randn(&[2, 4, 2], &mut r);
    check("matmul batched", &[a.clone(), c], |v| v[0].matmul(&v[1]));
    let u = randn(&[4], &mut r);
    check("matmul matrix-vector", &[a.clone(), u.clone()], |v| {
        v[0].matmul(&v[1])
    });
    let w = randn(&[3], &mut r);
    let m = randn(&[3, 4], &mut r);
    check("matmul vector-matrix", &[w, m.clone()], |v| {
        v[0].matmul(&v[1])
    });
    check("matmul dot", &[u.clone(), u.clone()], |v| {
        v[0].matmul(&v[1])
    });
    let wt = randn(&[5, 4], &mut r);
    let bias = randn(&[5], &mut r);
    check("linear", &[a.clone(), wt.clone(), bias], |v| {
        v[0].linear(&v[1], Some(&v[2]))
    });
    check("linear without bias", &[m, wt.clone()], |v| {
        v[0].linear(&v[1], None)
    });
    // A residual: the third argument with the output's shape, added once per output.
    let residual = randn(&[2, 3, 5], &mut r);
    check("linear with a residual", &[a.clone(), wt, residual], |v| {
        v[0].linear(&v[1], Some(&v[2]))
    });
}

#[test]
fn einsum() {
    let mut r = rng(5);
    let a = randn(&[2, 3], &mut r);
    let b = randn(&[3, 4], &mut r);
    let c = randn(&[4], &mut r);
    check("ij,jk->ik", &[a.clone(), b.clone()], |v| {
        Tensor::einsum("ij,jk->ik", &[&v[0], &v[1]])
    });
    check("ij,jk,k->i", &[a.clone(), b.clone(), c.clone()], |v| {
        Tensor::einsum("ij,jk,k->i", &[&v[0], &v[1], &v[2]])
    });
    check("implicit ij,jk", &[a.clone(), b.clone()], |v| {
        Tensor::einsum("ij,jk", &[&v[0], &v[1]])
    });
    // An index summed inside one operand only, and an outer product.
    check("ij,k->k", &[a.clone(), c.clone()], |v| {
        Tensor::einsum("ij,k->k", &[&v[0], &v[1]])
    });
    check("ij->ji", std::slice::from_ref(&a), |v| {
        Tensor::einsum("ij->ji", &[&v[0]])
    });
    let x = randn(&[2, 5, 3], &mut r);
    check("ellipsis", &[x, b], |v| {
        Tensor::einsum("...j,jk->...k", &[&v[0], &v[1]])
    });
}

#[test]
fn softmax_and_norms() {
    let mut r = rng(6);
    let x = randn(&[3, 5], &mut r);
    check("softmax", std::slice::from_ref(&x), |v| v[0].softmax(-1));
    check("softmax dim 0", std::slice::from_ref(&x), |v| {
        v[0].softmax(0)
    });
    check("log_softmax", std::slice::from_ref(&x), |v| {
        v[0].log_softmax(1)
    });
    let w = randn(&[5], &mut r);
    let b = randn(&[5], &mut r);
    check("rms_norm", &[x.clone(), w.clone()], |v| {
        v[0].rms_norm(&v[1], 1e-5)
    });
    check("layer_norm", &[x.clone(), w.clone(), b], |v| {
        v[0].layer_norm(Some(&v[1]), Some(&v[2]), 1e-5)
    });
    check("layer_norm bare", std::slice::from_ref(&x), |v| {
        v[0].layer_norm(None, None, 1e-5)
    });
    let y = randn(&[3, 5], &mut r);
    check("silu_mul", &[x, y], |v| Tensor::silu_mul(&v[0], &v[1]));
}

#[test]
fn lookups() {
    let mut r = rng(7);
    let table = randn(&[5, 3], &mut r);
    let i = ids(&[4, 0, 2, 4, 1, 4], &[2, 3]);
    check("embedding", std::slice::from_ref(&table), |v| {
        Tensor::embedding(&v[0], &i)
    });
    let sel = ids(&[3, 1, 3], &[3]);
    check("index_select dim 0", std::slice::from_ref(&table), |v| {
        v[0].index_select(0, &sel)
    });
    let sel1 = ids(&[2, 0], &[2]);
    check("index_select dim 1", std::slice::from_ref(&table), |v| {
        v[0].index_select(1, &sel1)
    });
    let g = ids(&[1, 2, 2, 0, 0, 1, 2, 2], &[4, 2]);
    check("gather dim 1", std::slice::from_ref(&table), |v| {
        v[0].gather(1, &g)
    });
    let g0 = ids(&[4, 0, 1, 1, 3, 2], &[2, 3]);
    check("gather dim 0", std::slice::from_ref(&table), |v| {
        v[0].gather(0, &g0)
    });
}

#[test]
fn shape_ops() {
    let mut r = rng(8);
    let x = randn(&[2, 3, 4], &mut r);
    let y = randn(&[2, 1, 4], &mut r);
    let one = std::slice::from_ref(&x);
    check("reshape", one, |v| v[0].reshape(&[4, -1]));
    check("transpose", one, |v| v[0].transpose(0, 2)?.contiguous());
    check("permute", one, |v| v[0].permute(&[1, 2, 0]));
    check("narrow", one, |v| v[0].narrow(2, 1, 2));
    check("slice step", one, |v| v[0].slice(2, Some(1), None, 2));
    check("slice step 3", one, |v| v[0].slice(1, Some(0), None, 3));
    check("select", one, |v| v[0].select(1, -1));
    check("squeeze/unsqueeze", one, |v| {
        v[0].unsqueeze(1)?.squeeze(None)
    });
    check("broadcast_to", std::slice::from_ref(&y), |v| {
        v[0].broadcast_to(&[3, 2, 5, 4])
    });
    check("repeat", one, |v| v[0].repeat(&[2, 1, 2, 1]));
    check("concat", &[x.clone(), y.clone()], |v| {
        Tensor::concat(&[v[0].clone(), v[1].clone()], 1)
    });
    let z = randn(&[2, 3, 4], &mut r);
    check("stack", &[x.clone(), z], |v| {
        Tensor::stack(&[v[0].clone(), v[1].clone()], 0)
    });
    check("split", one, |v| Ok(v[0].split(2, 1)?[1].clone()));
    // A transposed (strided) input to a reshape copies: still differentiable.
    check("reshape of a transpose", one, |v| {
        v[0].transpose(1, 2)?.reshape(&[-1])
    });
}

#[test]
fn shared_inputs_accumulate_and_unused_inputs_get_zeros() {
    let mut r = rng(9);
    let x = randn(&[3], &mut r);
    // x used twice: d/dx sum(x * x * R) = 2 x R
    check("x*x", std::slice::from_ref(&x), |v| {
        v[0].binary(BinaryOp::Mul, &v[0])
    });
    let a = x.requires_grad().unwrap();
    let b = x.requires_grad().unwrap();
    let loss = a.reduce(ReduceOp::Sum, None, false).unwrap();
    let g = backward(&loss, &[&a, &b]).unwrap();
    assert_eq!(g[0].to_vec_f64(), vec![1.0; 3]);
    assert_eq!(g[1].to_vec_f64(), vec![0.0; 3]);
}

#[test]
fn unsupported_gradients_are_refused() {
    let mut r = rng(10);
    let x = randn(&[2, 4], &mut r).requires_grad().unwrap();
    let y = positive(&[2, 4], &mut r);
    let e = x.binary(BinaryOp::Rem, &y).unwrap_err();
    assert!(e.0.contains("not supported yet: the gradient of %"), "{e}");
    // Under no_grad nothing is recorded and nothing is refused.
    let _off = tl_tensor::autograd::no_grad();
    let z = x.binary(BinaryOp::Rem, &y).unwrap();
    assert!(!z.is_tracked());
}

/// prod over all dims and along one: on random inputs, then with zeros placed so that a group
/// has no zero, one zero or two (and the whole tensor one zero). prod is linear in each
/// element, so central differences are exact up to rounding at zeros too.
#[test]
fn prod_with_and_without_zeros() {
    let mut r = rng(12);
    let x = randn(&[3, 4], &mut r);
    let base = x.to_vec_f32();
    let with_zeros = |at: &[usize]| {
        let mut v = base.clone();
        for &i in at {
            v[i] = 0.0;
        }
        Tensor::from_f32(v, &[3, 4]).unwrap()
    };
    // Row 0 one zero, row 1 none, row 2 two; column 1 one zero, column 0 two.
    let rows = with_zeros(&[1, 8, 10]);
    let lone = with_zeros(&[6]);
    for input in [&x, &rows, &lone] {
        for (dims, keep) in [
            (None, false),
            (Some(vec![1isize]), false),
            (Some(vec![0]), true),
        ] {
            check("prod", std::slice::from_ref(input), |v| {
                v[0].reduce(ReduceOp::Prod, dims.as_deref(), keep)
            });
        }
    }
}

/// rope with adjacent pairs and with NeoX's rotate-half pairs, for one position, a sequence,
/// and sequences of heads (with a batch dim), starting at a nonzero position.
#[test]
fn rope_both_pairings() {
    let mut r = rng(13);
    for shape in [vec![6usize], vec![3, 6], vec![3, 2, 4], vec![2, 3, 2, 4]] {
        let x = randn(&shape, &mut r);
        let one = std::slice::from_ref(&x);
        check("rope", one, |v| v[0].rope(2, 10000.0));
        check("rope_neox", one, |v| v[0].rope_neox(5, 100.0));
    }
}

/// Attention with grouped heads (4 query heads over 2 kv heads, a batch dim), with an
/// additive causal mask (-inf entries), a bool keep-mask, and one head without a batch. The
/// numeric side runs the fused kernel, the analytic side the ops attention is built from.
#[test]
fn attention_grouped_heads_and_masks() {
    let mut r = rng(14);
    let q = randn(&[2, 4, 3, 8], &mut r);
    let k = randn(&[2, 2, 5, 8], &mut r);
    let v = randn(&[2, 2, 5, 6], &mut r);
    let qkv = [q, k, v];
    check("attention", &qkv, |t| {
        Tensor::attention(&t[0], &t[1], &t[2], None)
    });
    let additive = Tensor::causal_mask(3, 2, DType::F32).unwrap();
    check("attention causal", &qkv, |t| {
        Tensor::attention(&t[0], &t[1], &t[2], Some(&additive))
    });
    let keep = Tensor::causal_mask(3, 2, DType::Bool).unwrap();
    check("attention bool mask", &qkv, |t| {
        Tensor::attention(&t[0], &t[1], &t[2], Some(&keep))
    });
    let single = [
        randn(&[1, 4, 4], &mut r),
        randn(&[1, 3, 4], &mut r),
        randn(&[1, 3, 2], &mut r),
    ];
    check("attention one head", &single, |t| {
        Tensor::attention(&t[0], &t[1], &t[2], None)
    });
}

#[test]
fn loss_must_be_one_number() {
    let x = Tensor::from_f32(vec![1.5, -2.0], &[2])
        .unwrap()
        .requires_grad()
        .unwrap();
    let e = backward(&x, &[&x]).unwrap_err();
    assert!(e.0.contains("single number"), "{e}");
}

/// Half-precision parameters get gradients of their own dtype, within 2e-2 relative (norm)
/// of the float32 gradients of the same function (the design's f16/bf16 bar is 1e-2 per op;
/// this chains several).
#[test]
fn half_precision_gradients_follow_float32() {
    let mut r = rng(11);
    let x = randn(&[4, 3], &mut r);
    let w = randn(&[3, 5], &mut r);
    let f = |x: &Tensor, w: &Tensor| -> Tensor {
        x.matmul(w)
            .unwrap()
            .unary(UnaryOp::Tanh)
            .unwrap()
            .log_softmax(1)
            .unwrap()
            .reduce(ReduceOp::Mean, None, false)
            .unwrap()
    };
    let w32 = w.requires_grad().unwrap();
    let g32 = backward(&f(&x, &w32), &[&w32])
        .unwrap()
        .remove(0)
        .to_vec_f64();
    for dtype in [DType::F16, DType::BF16] {
        let wh = w.cast(dtype).unwrap().requires_grad().unwrap();
        let xh = x.cast(dtype).unwrap();
        let gh = backward(&f(&xh, &wh), &[&wh]).unwrap().remove(0);
        assert_eq!(gh.dtype(), dtype);
        let gh = gh.to_vec_f64();
        let diff: f64 = gh
            .iter()
            .zip(&g32)
            .map(|(a, b)| (a - b).powi(2))
            .sum::<f64>()
            .sqrt();
        let norm: f64 = g32.iter().map(|b| b * b).sum::<f64>().sqrt();
        assert!(
            diff / norm < 2e-2,
            "{dtype}: relative error {:.2e}",
            diff / norm
        );
    }
}
