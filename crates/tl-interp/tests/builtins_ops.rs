//! Creation, elementwise, reduction and shape builtins called through the registry, checked
//! against naive f64 references on seeded random inputs.

mod builtins_support;

use builtins_support::*;
use tl_interp::Value;
use tl_tensor::{DType, Tensor};

// ---------------------------------------------------------------- creation

#[test]
fn zeros_ones_full_take_every_shape_form() {
    let mut it = interp();
    let z = call_t(&mut it, "zeros", vec![ints(&[2, 3])]);
    assert_eq!((z.shape(), z.dtype()), (&[2usize, 3][..], DType::F32));
    assert!(z.to_vec_f64().iter().all(|&x| x == 0.0));

    let o = call_named_t(
        &mut it,
        "ones",
        vec![int(4), int(1), int(2)],
        vec![("dtype", s("f16"))],
    );
    assert_eq!((o.shape(), o.dtype()), (&[4usize, 1, 2][..], DType::F16));
    assert!(o.to_vec_f64().iter().all(|&x| x == 1.0));

    let shape_tensor = Tensor::from_i64(vec![3, 2], &[2]).unwrap();
    let z2 = call_named_t(
        &mut it,
        "zeros",
        vec![t(&shape_tensor)],
        vec![("dtype", s("int64"))],
    );
    assert_eq!((z2.shape(), z2.dtype()), (&[3usize, 2][..], DType::I64));

    let scalar = call_t(&mut it, "zeros", vec![ints(&[])]);
    assert_eq!(scalar.shape(), &[] as &[usize]);

    let f = call_t(&mut it, "full", vec![ints(&[2, 2]), float(1.5)]);
    assert_eq!(f.to_vec_f64(), vec![1.5; 4]);
    let fi = call_named_t(
        &mut it,
        "full",
        vec![int(3), int(7)],
        vec![("dtype", s("i64"))],
    );
    assert_eq!((fi.to_vec_i64(), fi.dtype()), (vec![7, 7, 7], DType::I64));
}

#[test]
fn creation_errors_are_clear() {
    let mut it = interp();
    let e = call_err(&mut it, "zeros", vec![int(2), int(-1)]);
    assert!(e.contains("non-negative"), "{e}");
    let e = call_err(&mut it, "zeros", vec![]);
    assert!(e.contains("missing the shape"), "{e}");
    let e = call_err(&mut it, "ones", vec![int(2), s("x")]);
    assert!(e.contains("argument 2 is string"), "{e}");
    let e = call_named_err(&mut it, "zeros", vec![int(2)], vec![("dtype", s("float8"))]);
    assert!(e.contains("unknown dtype \"float8\""), "{e}");
    let e = call_named_err(&mut it, "zeros", vec![int(2)], vec![("dtyp", s("f32"))]);
    assert!(e.contains("unknown named argument `dtyp`"), "{e}");
    let e = call_named_err(&mut it, "rand", vec![int(2)], vec![("dtype", s("int64"))]);
    assert!(e.contains("float dtype"), "{e}");
    let e = call_err(&mut it, "full", vec![ints(&[2])]);
    assert!(e.contains("expected 2 arguments, got 1"), "{e}");
    let e = call_err(&mut it, "eye", vec![int(-2)]);
    assert!(e.contains("non-negative"), "{e}");
}

#[test]
fn rand_and_randn_are_seeded_and_distributed() {
    let mut a = interp();
    let mut b = interp();
    let x = call_t(&mut a, "rand", vec![int(64), int(32)]);
    let y = call_t(&mut b, "rand", vec![ints(&[64, 32])]);
    assert_eq!(x.shape(), &[64, 32]);
    assert_eq!(x.to_vec_f64(), y.to_vec_f64(), "same seed, same numbers");
    let v = x.to_vec_f64();
    assert!(v.iter().all(|&u| (0.0..1.0).contains(&u)));
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    assert!((mean - 0.5).abs() < 0.05, "uniform mean {mean}");
    let next = call_t(&mut a, "rand", vec![int(64), int(32)]);
    assert_ne!(next.to_vec_f64(), v, "the generator advances");

    let n = call_named_t(&mut a, "randn", vec![int(4096)], vec![("dtype", s("bf16"))]);
    assert_eq!(n.dtype(), DType::BF16);
    let v = n.to_vec_f64();
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    let var = v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / v.len() as f64;
    assert!(
        mean.abs() < 0.08 && (var - 1.0).abs() < 0.1,
        "mean {mean} var {var}"
    );
}

#[test]
fn arange_eye_and_tensor() {
    let mut it = interp();
    let a = call_t(&mut it, "arange", vec![int(5)]);
    assert_eq!(
        (a.dtype(), a.to_vec_i64()),
        (DType::I64, vec![0, 1, 2, 3, 4])
    );
    let a = call_t(&mut it, "arange", vec![int(10), int(2), int(-3)]);
    assert_eq!(a.to_vec_i64(), vec![10, 7, 4]);
    let a = call_t(&mut it, "arange", vec![float(0.5), int(2), float(0.5)]);
    assert_eq!(
        (a.dtype(), a.to_vec_f64()),
        (DType::F32, vec![0.5, 1.0, 1.5])
    );
    let a = call_named_t(
        &mut it,
        "arange",
        vec![int(3)],
        vec![("dtype", s("float16"))],
    );
    assert_eq!(
        (a.dtype(), a.to_vec_f64()),
        (DType::F16, vec![0.0, 1.0, 2.0])
    );
    let e = call_err(&mut it, "arange", vec![int(0), int(3), int(0)]);
    assert!(e.contains("step"), "{e}");

    let i = call_t(&mut it, "eye", vec![int(3)]);
    let want: Vec<f64> = (0..9).map(|k| (k / 3 == k % 3) as u8 as f64).collect();
    assert_eq!((i.shape(), i.to_vec_f64()), (&[3usize, 3][..], want));

    let nested = list(vec![ints(&[1, 2, 3]), ints(&[4, 5, 6])]);
    let x = call_t(&mut it, "tensor", vec![nested.clone()]);
    assert_eq!(
        (x.shape(), x.dtype(), x.to_vec_i64()),
        (&[2usize, 3][..], DType::I64, vec![1, 2, 3, 4, 5, 6])
    );
    let x = call_t(&mut it, "tensor", vec![nested.clone(), s("f16")]);
    assert_eq!(
        (x.dtype(), x.to_vec_f64()),
        (DType::F16, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    );
    let x = call_t(&mut it, "tensor", vec![list(vec![float(1.5), int(2)])]);
    assert_eq!((x.dtype(), x.to_vec_f64()), (DType::F32, vec![1.5, 2.0]));
    let flags = list(vec![Value::Bool(true), Value::Bool(false)]);
    let x = call_t(&mut it, "tensor", vec![flags]);
    assert_eq!((x.dtype(), x.to_vec_f64()), (DType::Bool, vec![1.0, 0.0]));
    let x = call_t(&mut it, "tensor", vec![list(vec![])]);
    assert_eq!((x.dtype(), x.shape()), (DType::F32, &[0usize][..]));
    let x = call_t(&mut it, "tensor", vec![float(2.5)]);
    assert_eq!((x.shape(), x.to_vec_f64()), (&[] as &[usize], vec![2.5]));
    let e = call_err(
        &mut it,
        "tensor",
        vec![list(vec![ints(&[1, 2]), ints(&[3])])],
    );
    assert!(e.contains("rectangular"), "{e}");
}

// ---------------------------------------------------------------- elementwise

fn erf(x: f64) -> f64 {
    // Maclaurin series; ample precision for |x| <= 3.
    let mut term = x;
    let mut sum = x;
    for n in 1..80 {
        term *= -x * x / n as f64;
        sum += term / (2 * n + 1) as f64;
    }
    sum * 2.0 / std::f64::consts::PI.sqrt()
}

fn reference_unary(name: &str, x: f64) -> f64 {
    let sigmoid = 1.0 / (1.0 + (-x).exp());
    match name {
        "neg" => -x,
        "abs" => x.abs(),
        "exp" => x.exp(),
        "log" => x.ln(),
        "sqrt" => x.sqrt(),
        "rsqrt" => 1.0 / x.sqrt(),
        "sin" => x.sin(),
        "cos" => x.cos(),
        "tanh" => x.tanh(),
        "sigmoid" => sigmoid,
        "relu" => x.max(0.0),
        "gelu" => 0.5 * x * (1.0 + erf(x / std::f64::consts::SQRT_2)),
        "silu" => x * sigmoid,
        "step" => (x > 0.0) as u8 as f64,
        _ => unreachable!(),
    }
}

const UNARY: [&str; 14] = [
    "neg", "abs", "exp", "log", "sqrt", "rsqrt", "sin", "cos", "tanh", "sigmoid", "relu", "gelu",
    "silu", "step",
];

#[test]
fn unary_builtins_match_f64_references() {
    let mut it = interp();
    let mut g = Gen::new(11);
    for dtype in [DType::F32, DType::F16, DType::BF16] {
        for shape in [&[7][..], &[3, 5], &[2, 3, 4]] {
            let (x, xs) = g.tensor(shape, dtype);
            // log/sqrt/rsqrt take positive inputs.
            let pos = Tensor::from_f64(
                &xs.iter().map(|v| v.abs() + 0.1).collect::<Vec<_>>(),
                shape,
                dtype,
            )
            .unwrap();
            for name in UNARY {
                let input = if matches!(name, "log" | "sqrt" | "rsqrt") {
                    &pos
                } else {
                    &x
                };
                let inputs = input.to_vec_f64();
                let want: Vec<f64> = inputs.iter().map(|&v| reference_unary(name, v)).collect();
                let out = call_t(&mut it, name, vec![t(input)]);
                assert_eq!(out.dtype(), dtype, "{name} keeps the dtype");
                assert_close(&out, shape, &want, tolerance(dtype));
            }
        }
    }
    // A transposed (non-contiguous) input.
    let (x, xs) = g.tensor(&[4, 3], DType::F32);
    let xt = x.transpose(0, 1).unwrap();
    let want: Vec<f64> = (0..12)
        .map(|k| reference_unary("tanh", xs[(k % 4) * 3 + k / 4]))
        .collect();
    assert_close(&call_t(&mut it, "tanh", vec![t(&xt)]), &[3, 4], &want, 1e-5);
}

#[test]
fn unary_builtins_on_host_numbers_return_host_numbers() {
    let mut it = interp();
    assert_eq!(expect_int(call(&mut it, "neg", vec![int(3)]).unwrap()), -3);
    assert_eq!(expect_int(call(&mut it, "abs", vec![int(-4)]).unwrap()), 4);
    assert_eq!(expect_int(call(&mut it, "relu", vec![int(-4)]).unwrap()), 0);
    assert_eq!(expect_int(call(&mut it, "step", vec![int(9)]).unwrap()), 1);
    let e = expect_float(call(&mut it, "exp", vec![float(1.0)]).unwrap());
    assert!((e - std::f64::consts::E).abs() < 1e-15);
    let r = expect_float(call(&mut it, "sqrt", vec![int(2)]).unwrap());
    assert!((r - 2f64.sqrt()).abs() < 1e-15);
    let gl = expect_float(call(&mut it, "gelu", vec![float(0.7)]).unwrap());
    assert!((gl - reference_unary("gelu", 0.7)).abs() < 1e-6);
    let list_in = call_t(&mut it, "exp", vec![list(vec![float(0.0), float(1.0)])]);
    assert_eq!(list_in.shape(), &[2]);
    let e = call_err(&mut it, "exp", vec![s("x")]);
    assert!(
        e.starts_with("exp: argument 1 must be a tensor, got string"),
        "{e}"
    );
    let e = call_err(&mut it, "exp", vec![float(1.0), float(2.0)]);
    assert!(e.contains("expected 1 argument, got 2"), "{e}");
    let e = call_named_err(
        &mut it,
        "relu",
        vec![float(1.0)],
        vec![("inplace", Value::Bool(true))],
    );
    assert!(e.contains("unknown named argument `inplace`"), "{e}");
}

#[test]
fn clamp_pow_maximum_minimum_where() {
    let mut it = interp();
    let mut g = Gen::new(12);
    let (x, xs) = g.tensor(&[4, 6], DType::F32);
    let want: Vec<f64> = xs.iter().map(|v| v.clamp(-0.5, 0.75)).collect();
    assert_close(
        &call_t(&mut it, "clamp", vec![t(&x), float(-0.5), float(0.75)]),
        &[4, 6],
        &want,
        1e-6,
    );
    let want: Vec<f64> = xs.iter().map(|v| v.min(0.0)).collect();
    assert_close(
        &call_named_t(&mut it, "clamp", vec![t(&x)], vec![("max", float(0.0))]),
        &[4, 6],
        &want,
        1e-6,
    );
    assert_eq!(
        expect_int(call(&mut it, "clamp", vec![int(7), int(0), int(5)]).unwrap()),
        5
    );
    assert_eq!(
        expect_float(call(&mut it, "clamp", vec![float(-2.0), float(-1.0), float(1.0)]).unwrap()),
        -1.0
    );
    let e = call_err(&mut it, "clamp", vec![t(&x)]);
    assert!(e.contains("at least one bound"), "{e}");

    // pow: positive bases, broadcasting exponent row.
    let base = Tensor::from_f64(
        &xs.iter().map(|v| v.abs() + 0.5).collect::<Vec<_>>(),
        &[4, 6],
        DType::F32,
    )
    .unwrap();
    let (ex, exs) = g.tensor(&[6], DType::F32);
    let bs = base.to_vec_f64();
    let want: Vec<f64> = (0..24).map(|k| bs[k].powf(exs[k % 6])).collect();
    assert_close(
        &call_t(&mut it, "pow", vec![t(&base), t(&ex)]),
        &[4, 6],
        &want,
        1e-5,
    );
    let half = base.cast(DType::F16).unwrap();
    let sq = call_t(&mut it, "pow", vec![t(&half), float(2.0)]);
    assert_eq!(
        sq.dtype(),
        DType::F16,
        "a host number takes the tensor's dtype"
    );
    let want: Vec<f64> = half.to_vec_f64().iter().map(|v| v * v).collect();
    assert_close(&sq, &[4, 6], &want, 1e-2);
    assert_eq!(
        expect_int(call(&mut it, "pow", vec![int(2), int(10)]).unwrap()),
        1024
    );
    assert_eq!(
        expect_float(call(&mut it, "pow", vec![int(2), int(-1)]).unwrap()),
        0.5
    );
    let e = call_err(&mut it, "pow", vec![int(10), int(40)]);
    assert!(e.contains("overflow"), "{e}");

    let (col, cs) = g.tensor(&[3, 1], DType::F32);
    let (row, rs) = g.tensor(&[5], DType::F32);
    let mx = call_t(&mut it, "maximum", vec![t(&col), t(&row)]);
    let mn = call_t(&mut it, "minimum", vec![t(&col), t(&row)]);
    let want_max: Vec<f64> = (0..15).map(|k| cs[k / 5].max(rs[k % 5])).collect();
    let want_min: Vec<f64> = (0..15).map(|k| cs[k / 5].min(rs[k % 5])).collect();
    assert_close(&mx, &[3, 5], &want_max, 0.0);
    assert_close(&mn, &[3, 5], &want_min, 0.0);
    assert_eq!(
        expect_int(call(&mut it, "maximum", vec![int(3), int(8)]).unwrap()),
        8
    );
    let (a4, _) = g.tensor(&[4], DType::F32);
    let e = call_err(&mut it, "maximum", vec![t(&row), t(&a4)]);
    assert!(
        e.contains("[5]") && e.contains("[4]"),
        "both shapes named: {e}"
    );

    let cond_values: Vec<bool> = (0..15).map(|_| g.below(2) == 1).collect();
    let cond = Tensor::from_bool(cond_values.clone(), &[3, 5]).unwrap();
    let w = call_t(&mut it, "where", vec![t(&cond), t(&col), float(-9.0)]);
    let want: Vec<f64> = (0..15)
        .map(|k| if cond_values[k] { cs[k / 5] } else { -9.0 })
        .collect();
    assert_close(&w, &[3, 5], &want, 0.0);
}

// ---------------------------------------------------------------- reductions

/// Reduces `xs` of `shape` over `dims` with `f` (init, fold), keeping reduced dims as size 1.
fn reduce_ref(
    xs: &[f64],
    shape: &[usize],
    dims: &[usize],
    init: f64,
    f: fn(f64, f64) -> f64,
) -> (Vec<usize>, Vec<f64>) {
    let out_shape: Vec<usize> = shape
        .iter()
        .enumerate()
        .map(|(d, &n)| if dims.contains(&d) { 1 } else { n })
        .collect();
    let out_n: usize = out_shape.iter().product();
    let mut out = vec![init; out_n];
    let ost = strides(&out_shape);
    for (k, &v) in xs.iter().enumerate() {
        let idx = unravel(k, shape);
        let o: usize = idx
            .iter()
            .enumerate()
            .map(|(d, &i)| if dims.contains(&d) { 0 } else { i * ost[d] })
            .sum();
        out[o] = f(out[o], v);
    }
    (out_shape, out)
}

#[test]
fn reductions_match_references_over_dims_and_keepdim() {
    let mut it = interp();
    let mut g = Gen::new(13);
    let shape = [3, 4, 5];
    let (x, xs) = g.tensor(&shape, DType::F32);
    type Case = (&'static str, f64, fn(f64, f64) -> f64);
    let cases: [Case; 4] = [
        ("sum", 0.0, |a, b| a + b),
        ("prod", 1.0, |a, b| a * b),
        ("max", f64::NEG_INFINITY, f64::max),
        ("min", f64::INFINITY, f64::min),
    ];
    for (name, init, f) in cases {
        // All elements: a rank-0 tensor.
        let (_, all) = reduce_ref(&xs, &shape, &[0, 1, 2], init, f);
        assert_close(&call_t(&mut it, name, vec![t(&x)]), &[], &all, 1e-5);
        // One dim, negative, positional and named.
        let (ks, want) = reduce_ref(&xs, &shape, &[2], init, f);
        assert_close(
            &call_t(&mut it, name, vec![t(&x), int(-1)]),
            &[3, 4],
            &want,
            1e-5,
        );
        let kept = call_named_t(
            &mut it,
            name,
            vec![t(&x)],
            vec![("dim", int(2)), ("keepdim", Value::Bool(true))],
        );
        assert_close(&kept, &ks, &want, 1e-5);
        // Two dims as a list.
        let (_, want) = reduce_ref(&xs, &shape, &[0, 2], init, f);
        assert_close(
            &call_t(&mut it, name, vec![t(&x), ints(&[0, 2])]),
            &[4],
            &want,
            1e-5,
        );
    }
    let (_, sums) = reduce_ref(&xs, &shape, &[1], 0.0, |a, b| a + b);
    let means: Vec<f64> = sums.iter().map(|s| s / 4.0).collect();
    assert_close(
        &call_t(&mut it, "mean", vec![t(&x), int(1)]),
        &[3, 5],
        &means,
        1e-5,
    );
    let (_, sq) = reduce_ref(&xs, &shape, &[0, 1], 0.0, |a, b| a + b * b);
    let norms: Vec<f64> = sq.iter().map(|v| v.sqrt()).collect();
    assert_close(
        &call_t(&mut it, "norm", vec![t(&x), ints(&[0, 1])]),
        &[5],
        &norms,
        1e-5,
    );
    let total_norm = xs.iter().map(|v| v * v).sum::<f64>().sqrt();
    assert_close(
        &call_t(&mut it, "norm", vec![t(&x)]),
        &[],
        &[total_norm],
        1e-5,
    );

    // f16 input keeps its dtype.
    let h = x.cast(DType::F16).unwrap();
    let hs = h.to_vec_f64();
    let (_, want) = reduce_ref(&hs, &shape, &[1], 0.0, |a, b| a + b);
    let out = call_t(&mut it, "sum", vec![t(&h), int(1)]);
    assert_eq!(out.dtype(), DType::F16);
    assert_close(&out, &[3, 5], &want, 1e-2);

    let e = call_err(&mut it, "sum", vec![t(&x), int(3)]);
    assert!(e.contains("out of range"), "{e}");
    let e = call_named_err(
        &mut it,
        "sum",
        vec![t(&x)],
        vec![("keepdims", Value::Bool(true))],
    );
    assert!(e.contains("unknown named argument `keepdims`"), "{e}");
    let e = call_named_err(&mut it, "mean", vec![t(&x), int(0)], vec![("dim", int(1))]);
    assert!(e.contains("given both"), "{e}");
}

#[test]
fn max_and_min_of_host_numbers() {
    let mut it = interp();
    assert_eq!(
        expect_int(call(&mut it, "max", vec![int(3), int(9), int(5)]).unwrap()),
        9
    );
    assert_eq!(
        expect_int(call(&mut it, "min", vec![int(3), int(-9)]).unwrap()),
        -9
    );
    assert_eq!(
        expect_float(call(&mut it, "max", vec![int(1), float(2.5)]).unwrap()),
        2.5
    );
}

#[test]
fn argmax_is_a_host_int_without_dim_and_a_tensor_with_one() {
    let mut it = interp();
    let mut g = Gen::new(14);
    let (x, xs) = g.tensor(&[6, 7], DType::F32);
    let best = (0..42).max_by(|&a, &b| xs[a].total_cmp(&xs[b])).unwrap();
    let worst = (0..42).min_by(|&a, &b| xs[a].total_cmp(&xs[b])).unwrap();
    assert_eq!(
        expect_int(call(&mut it, "argmax", vec![t(&x)]).unwrap()),
        best as i64
    );
    assert_eq!(
        expect_int(call(&mut it, "argmin", vec![t(&x)]).unwrap()),
        worst as i64
    );
    let per_row = call_t(&mut it, "argmax", vec![t(&x), int(1)]);
    assert_eq!(per_row.dtype(), DType::I64);
    let want: Vec<i64> = (0..6)
        .map(|r| {
            (0..7)
                .max_by(|&a, &b| xs[r * 7 + a].total_cmp(&xs[r * 7 + b]))
                .unwrap() as i64
        })
        .collect();
    assert_eq!(
        (per_row.shape(), per_row.to_vec_i64()),
        (&[6usize][..], want)
    );
    let kept = call_named_t(
        &mut it,
        "argmin",
        vec![t(&x)],
        vec![("dim", int(0)), ("keepdim", Value::Bool(true))],
    );
    let want: Vec<i64> = (0..7)
        .map(|c| {
            (0..6)
                .min_by(|&a, &b| xs[a * 7 + c].total_cmp(&xs[b * 7 + c]))
                .unwrap() as i64
        })
        .collect();
    assert_eq!((kept.shape(), kept.to_vec_i64()), (&[1usize, 7][..], want));
    let empty = Tensor::zeros(&[0], DType::F32);
    let e = call_err(&mut it, "argmax", vec![t(&empty)]);
    assert!(!e.is_empty());
}

// ---------------------------------------------------------------- shape

#[test]
fn metadata_builtins() {
    let mut it = interp();
    let x = Tensor::zeros(&[2, 3, 4], DType::F16);
    match call(&mut it, "shape", vec![t(&x)]).unwrap() {
        Value::List(items) => {
            let dims: Vec<i64> = items.iter().map(|v| expect_int(v.clone())).collect();
            assert_eq!(dims, vec![2, 3, 4]);
        }
        other => panic!("shape gave {}", other.type_name()),
    }
    assert_eq!(expect_int(call(&mut it, "rank", vec![t(&x)]).unwrap()), 3);
    assert_eq!(expect_int(call(&mut it, "numel", vec![t(&x)]).unwrap()), 24);
    match call(&mut it, "dtype", vec![t(&x)]).unwrap() {
        Value::Str(name) => assert_eq!(&*name, "float16"),
        other => panic!("dtype gave {}", other.type_name()),
    }
    let e = call_err(&mut it, "shape", vec![s("abc")]);
    assert!(e.contains("must be a tensor, got string"), "{e}");
}

#[test]
fn reshape_view_flatten_and_broadcast_to() {
    let mut it = interp();
    let mut g = Gen::new(15);
    let (x, xs) = g.tensor(&[4, 6], DType::F32);
    assert_close(
        &call_t(&mut it, "reshape", vec![t(&x), ints(&[3, -1])]),
        &[3, 8],
        &xs,
        0.0,
    );
    assert_close(
        &call_t(&mut it, "reshape", vec![t(&x), int(2), int(2), int(6)]),
        &[2, 2, 6],
        &xs,
        0.0,
    );
    assert_close(
        &call_t(&mut it, "view", vec![t(&x), int(24)]),
        &[24],
        &xs,
        0.0,
    );
    assert_close(&call_t(&mut it, "flatten", vec![t(&x)]), &[24], &xs, 0.0);
    let xt = call_t(&mut it, "transpose", vec![t(&x)]);
    let transposed: Vec<f64> = (0..24).map(|k| xs[(k % 4) * 6 + k / 4]).collect();
    assert_close(
        &call_t(&mut it, "reshape", vec![t(&xt), int(-1)]),
        &[24],
        &transposed,
        0.0,
    );
    let e = call_err(&mut it, "view", vec![t(&xt), int(-1)]);
    assert!(!e.is_empty(), "view of a non-contiguous tensor fails");
    let c = call_t(&mut it, "contiguous", vec![t(&xt)]);
    assert_close(
        &call_t(&mut it, "view", vec![t(&c), int(-1)]),
        &[24],
        &transposed,
        0.0,
    );
    let e = call_err(&mut it, "reshape", vec![t(&x), ints(&[5, 5])]);
    assert!(
        e.contains("[4, 6]") && e.contains("[5, 5]"),
        "both shapes named: {e}"
    );

    let (row, rs) = g.tensor(&[1, 5], DType::F32);
    let b = call_t(&mut it, "broadcast_to", vec![t(&row), ints(&[3, 5])]);
    let want: Vec<f64> = (0..15).map(|k| rs[k % 5]).collect();
    assert_close(&b, &[3, 5], &want, 0.0);
    let e = call_err(&mut it, "broadcast_to", vec![t(&row), ints(&[3, 4])]);
    assert!(e.contains("[1, 5]") && e.contains("[3, 4]"), "{e}");
}

#[test]
fn transpose_permute_squeeze_unsqueeze() {
    let mut it = interp();
    let mut g = Gen::new(16);
    let shape = [2, 3, 4];
    let (x, xs) = g.tensor(&shape, DType::F32);
    let st = strides(&shape);
    // permute(x, [2, 0, 1]): out[a, b, c] = x[b, c, a].
    let dims = [2usize, 0, 1];
    let out_shape: Vec<usize> = dims.iter().map(|&d| shape[d]).collect();
    let want: Vec<f64> = (0..24)
        .map(|k| {
            let o = unravel(k, &out_shape);
            let mut src = [0; 3];
            for (i, &d) in dims.iter().enumerate() {
                src[d] = o[i];
            }
            xs[src[0] * st[0] + src[1] * st[1] + src[2] * st[2]]
        })
        .collect();
    assert_close(
        &call_t(&mut it, "permute", vec![t(&x), ints(&[2, 0, 1])]),
        &out_shape,
        &want,
        0.0,
    );
    assert_close(
        &call_t(&mut it, "permute", vec![t(&x), int(-1), int(0), int(1)]),
        &out_shape,
        &want,
        0.0,
    );
    // transpose(x, 0, 2): out[a, b, c] = x[c, b, a].
    let want: Vec<f64> = (0..24)
        .map(|k| {
            let o = unravel(k, &[4, 3, 2]);
            xs[o[2] * st[0] + o[1] * st[1] + o[0] * st[2]]
        })
        .collect();
    assert_close(
        &call_t(&mut it, "transpose", vec![t(&x), int(0), int(2)]),
        &[4, 3, 2],
        &want,
        0.0,
    );
    let e = call_err(&mut it, "transpose", vec![t(&x), int(0)]);
    assert!(e.contains("both"), "{e}");

    let u = call_t(&mut it, "unsqueeze", vec![t(&x), int(1)]);
    assert_close(&u, &[2, 1, 3, 4], &xs, 0.0);
    let u = call_named_t(&mut it, "unsqueeze", vec![t(&x)], vec![("dim", int(-1))]);
    assert_eq!(u.shape(), &[2, 3, 4, 1]);
    assert_close(
        &call_t(&mut it, "squeeze", vec![t(&u)]),
        &[2, 3, 4],
        &xs,
        0.0,
    );
    assert_close(
        &call_t(&mut it, "squeeze", vec![t(&u), int(-1)]),
        &[2, 3, 4],
        &xs,
        0.0,
    );
    let e = call_err(&mut it, "unsqueeze", vec![t(&x)]);
    assert!(e.contains("missing"), "{e}");
}

#[test]
fn concat_stack_split() {
    let mut it = interp();
    let mut g = Gen::new(17);
    let (a, as_) = g.tensor(&[2, 3], DType::F32);
    let (b, bs) = g.tensor(&[2, 2], DType::F32);
    let want: Vec<f64> = (0..10)
        .map(|k| {
            let (r, c) = (k / 5, k % 5);
            if c < 3 {
                as_[r * 3 + c]
            } else {
                bs[r * 2 + c - 3]
            }
        })
        .collect();
    let by_list = call_t(&mut it, "concat", vec![list(vec![t(&a), t(&b)]), int(1)]);
    assert_close(&by_list, &[2, 5], &want, 0.0);
    let by_args = call_named_t(
        &mut it,
        "concat",
        vec![t(&a), t(&b)],
        vec![("dim", int(-1))],
    );
    assert_close(&by_args, &[2, 5], &want, 0.0);
    let trailing = call_t(&mut it, "concat", vec![t(&a), t(&b), int(1)]);
    assert_close(&trailing, &[2, 5], &want, 0.0);
    let rows = call_t(&mut it, "concat", vec![list(vec![t(&a), t(&a)])]);
    let want_rows: Vec<f64> = as_.iter().chain(as_.iter()).copied().collect();
    assert_close(&rows, &[4, 3], &want_rows, 0.0);
    let e = call_err(&mut it, "concat", vec![list(vec![t(&a), t(&b)]), int(0)]);
    assert!(
        e.contains("[2, 3]") && e.contains("[2, 2]"),
        "both shapes named: {e}"
    );
    let e = call_err(&mut it, "concat", vec![list(vec![])]);
    assert!(e.contains("at least one"), "{e}");

    let (c, cs) = g.tensor(&[2, 3], DType::F32);
    let st = call_t(&mut it, "stack", vec![list(vec![t(&a), t(&c)]), int(1)]);
    let want: Vec<f64> = (0..12)
        .map(|k| {
            let o = unravel(k, &[2, 2, 3]);
            if o[1] == 0 {
                as_[o[0] * 3 + o[2]]
            } else {
                cs[o[0] * 3 + o[2]]
            }
        })
        .collect();
    assert_close(&st, &[2, 2, 3], &want, 0.0);
    let st0 = call_t(&mut it, "stack", vec![t(&a), t(&c)]);
    assert_eq!(st0.shape(), &[2, 2, 3]);

    let (x, xs) = g.tensor(&[5, 2], DType::F32);
    match call(&mut it, "split", vec![t(&x), int(2)]).unwrap() {
        Value::List(parts) => {
            assert_eq!(parts.len(), 3);
            let sizes: Vec<usize> = parts
                .iter()
                .map(|p| expect_tensor(p.clone()).shape()[0])
                .collect();
            assert_eq!(sizes, vec![2, 2, 1]);
            assert_close(&expect_tensor(parts[2].clone()), &[1, 2], &xs[8..], 0.0);
        }
        other => panic!("split gave {}", other.type_name()),
    }
    match call_named(&mut it, "split", vec![t(&x), int(1)], vec![("dim", int(1))]).unwrap() {
        Value::List(parts) => {
            let col: Vec<f64> = (0..5).map(|r| xs[r * 2 + 1]).collect();
            assert_close(&expect_tensor(parts[1].clone()), &[5, 1], &col, 0.0);
        }
        other => panic!("split gave {}", other.type_name()),
    }
    let e = call_err(&mut it, "split", vec![t(&x), int(0)]);
    assert!(e.contains("at least 1"), "{e}");
}

#[test]
fn slice_narrow_select_slice_last_repeat() {
    let mut it = interp();
    let mut g = Gen::new(18);
    let (x, xs) = g.tensor(&[6, 4], DType::F32);
    // slice(x, 0, 1, -1, 2): rows 1 and 3.
    let want: Vec<f64> = [1, 3]
        .iter()
        .flat_map(|&r| xs[r * 4..r * 4 + 4].to_vec())
        .collect();
    assert_close(
        &call_t(
            &mut it,
            "slice",
            vec![t(&x), int(0), int(1), int(-1), int(2)],
        ),
        &[2, 4],
        &want,
        0.0,
    );
    let want: Vec<f64> = (0..6)
        .flat_map(|r| xs[r * 4 + 2..r * 4 + 4].to_vec())
        .collect();
    assert_close(
        &call_t(&mut it, "slice", vec![t(&x), int(1), int(2), int(100)]),
        &[6, 2],
        &want,
        0.0,
    );
    let e = call_err(
        &mut it,
        "slice",
        vec![t(&x), int(0), int(0), int(2), int(0)],
    );
    assert!(e.contains("step"), "{e}");

    let want: Vec<f64> = xs[8..20].to_vec();
    assert_close(
        &call_t(&mut it, "narrow", vec![t(&x), int(0), int(2), int(3)]),
        &[3, 4],
        &want,
        0.0,
    );
    let want: Vec<f64> = (0..6).map(|r| xs[r * 4 + 3]).collect();
    assert_close(
        &call_t(&mut it, "narrow", vec![t(&x), int(-1), int(-1), int(1)]),
        &[6, 1],
        &want,
        0.0,
    );
    let e = call_err(&mut it, "narrow", vec![t(&x), int(0), int(4), int(3)]);
    assert!(e.contains("do not fit") && e.contains("size 6"), "{e}");

    assert_close(
        &call_t(&mut it, "select", vec![t(&x), int(0), int(-2)]),
        &[4],
        &xs[16..20],
        0.0,
    );
    let e = call_err(&mut it, "select", vec![t(&x), int(0), int(6)]);
    assert!(e.contains("out of bounds"), "{e}");

    assert_close(
        &call_t(&mut it, "slice_last", vec![t(&x)]),
        &[1, 4],
        &xs[20..],
        0.0,
    );
    let e = call_err(&mut it, "slice_last", vec![float(1.0)]);
    assert!(e.contains("rank-0"), "{e}");

    let (v, vs) = g.tensor(&[3], DType::F32);
    let r = call_t(&mut it, "repeat", vec![t(&v), int(2), int(2)]);
    let want: Vec<f64> = (0..12).map(|k| vs[k % 3]).collect();
    assert_close(&r, &[2, 6], &want, 0.0);
    let e = call_err(&mut it, "repeat", vec![t(&v), int(-1)]);
    assert!(e.contains("non-negative"), "{e}");
}

#[test]
fn gather_index_select_and_casts() {
    let mut it = interp();
    let mut g = Gen::new(19);
    let (x, xs) = g.tensor(&[4, 5], DType::F32);
    let idx: Vec<i64> = (0..12).map(|_| g.below(4) as i64).collect();
    let index = Tensor::from_i64(idx.clone(), &[3, 4]).unwrap();
    // gather along dim 0: out[i][j] = x[index[i][j]][j].
    let want: Vec<f64> = (0..12).map(|k| xs[idx[k] as usize * 5 + k % 4]).collect();
    assert_close(
        &call_t(&mut it, "gather", vec![t(&x), int(0), t(&index)]),
        &[3, 4],
        &want,
        0.0,
    );

    let rows = call_t(
        &mut it,
        "index_select",
        vec![t(&x), int(0), ints(&[3, 0, 3])],
    );
    let want: Vec<f64> = [3, 0, 3]
        .iter()
        .flat_map(|&r| xs[r * 5..r * 5 + 5].to_vec())
        .collect();
    assert_close(&rows, &[3, 5], &want, 0.0);
    let one = call_t(&mut it, "index_select", vec![t(&x), int(1), int(2)]);
    let want: Vec<f64> = (0..4).map(|r| xs[r * 5 + 2]).collect();
    assert_close(&one, &[4, 1], &want, 0.0);
    let e = call_err(&mut it, "index_select", vec![t(&x), int(0), ints(&[4])]);
    assert!(e.contains('4'), "{e}");
    let e = call_err(
        &mut it,
        "index_select",
        vec![t(&x), int(0), list(vec![float(0.5)])],
    );
    assert!(e.contains("ints"), "{e}");

    let h = call_t(&mut it, "cast", vec![t(&x), s("float16")]);
    assert_eq!(h.dtype(), DType::F16);
    assert_close(&h, &[4, 5], &xs, 1e-3);
    let i = call_named_t(&mut it, "to_dtype", vec![t(&x)], vec![("dtype", s("i64"))]);
    let want: Vec<f64> = xs.iter().map(|v| v.trunc()).collect();
    assert_close(&i, &[4, 5], &want, 0.0);
    let e = call_err(&mut it, "cast", vec![t(&x), s("complex64")]);
    assert!(e.contains("unknown dtype"), "{e}");
    let e = call_err(&mut it, "cast", vec![t(&x)]);
    assert!(e.contains("missing the dtype"), "{e}");
}
