//! Every op of the CUDA backend against the CPU backend on seeded random inputs with odd
//! sizes and strided views, with new device tensors poisoned (0xFF bytes) so that unwritten
//! elements show up. Tolerances from TARGETS.md: f32 1e-5 and f16/bf16 1e-2 relative
//! (||gpu - cpu|| / ||cpu||); ints and bools exactly. Without a GPU each test prints
//! "skipped: no CUDA device (REASON)" and passes.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tl_tensor::{BinaryOp, DType, Device, ReduceOp, Tensor, UnaryOp};

const GPU: Device = Device::Cuda(0);

fn gpu() -> bool {
    match tl_cuda::init(0) {
        Ok(_) => {
            tl_cuda::set_poison_new_tensors(true);
            true
        }
        Err(e) => {
            println!("skipped: no CUDA device ({e})");
            false
        }
    }
}

fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// Uniform values in [lo, hi) of `shape` in `dtype` (on the host).
fn uniform(r: &mut ChaCha8Rng, shape: &[usize], lo: f64, hi: f64, dtype: DType) -> Tensor {
    let n: usize = shape.iter().product();
    let v: Vec<f64> = (0..n).map(|_| r.random_range(lo..hi)).collect();
    Tensor::from_f64(&v, shape, dtype).unwrap()
}

fn ints(r: &mut ChaCha8Rng, shape: &[usize], lo: i64, hi: i64) -> Tensor {
    let n: usize = shape.iter().product();
    Tensor::from_i64((0..n).map(|_| r.random_range(lo..hi)).collect(), shape).unwrap()
}

fn bools(r: &mut ChaCha8Rng, shape: &[usize]) -> Tensor {
    let n: usize = shape.iter().product();
    Tensor::from_bool((0..n).map(|_| r.random_bool(0.5)).collect(), shape).unwrap()
}

fn tol(d: DType) -> f64 {
    match d {
        DType::F32 => 1e-5,
        _ => 1e-2,
    }
}

/// Checks a device result against the CPU one: same shape and dtype, on the GPU, and equal
/// within the dtype's tolerance (exact for ints and bools); NaN never passes unless both
/// sides are NaN at that element.
fn check(what: &str, gpu_out: &Tensor, cpu_out: &Tensor) {
    assert_eq!(gpu_out.device(), GPU, "{what}: result not on the GPU");
    assert_eq!(gpu_out.shape(), cpu_out.shape(), "{what}: shape");
    assert_eq!(gpu_out.dtype(), cpu_out.dtype(), "{what}: dtype");
    let g = gpu_out.to_vec_f64();
    let c = cpu_out.to_vec_f64();
    if !cpu_out.dtype().is_float() {
        assert_eq!(g, c, "{what}: exact values differ");
        return;
    }
    let (mut diff, mut norm) = (0.0f64, 0.0f64);
    for (i, (&x, &y)) in g.iter().zip(&c).enumerate() {
        if y.is_nan() || y.is_infinite() {
            assert!(
                (x.is_nan() && y.is_nan()) || x == y,
                "{what}: element {i} is {x}, cpu {y}"
            );
            continue;
        }
        assert!(
            x.is_finite(),
            "{what}: element {i} is {x}, cpu {y} (unwritten?)"
        );
        diff += (x - y) * (x - y);
        norm += y * y;
    }
    let rel = diff.sqrt() / norm.sqrt().max(1e-30);
    assert!(
        rel <= tol(cpu_out.dtype()) || diff.sqrt() < 1e-6,
        "{what}: relative error {rel:e} > {}",
        tol(cpu_out.dtype())
    );
}

fn dev(t: &Tensor) -> Tensor {
    t.to_device(GPU).unwrap()
}

const FLOATS: [DType; 3] = [DType::F32, DType::F16, DType::BF16];

#[test]
fn unary_ops_match_cpu() {
    if !gpu() {
        return;
    }
    let mut r = rng(1);
    for dt in FLOATS {
        // Transposed views exercise the strided path; positive inputs suit log/sqrt.
        let x = uniform(&mut r, &[13, 7], 0.1, 3.0, dt)
            .transpose(0, 1)
            .unwrap();
        let y = uniform(&mut r, &[7, 13], -3.0, 3.0, dt);
        let (gx, gy) = (dev(&x), dev(&y));
        for op in [UnaryOp::Log, UnaryOp::Sqrt, UnaryOp::Rsqrt] {
            check(
                &format!("{op:?} {dt}"),
                &gx.unary(op).unwrap(),
                &x.unary(op).unwrap(),
            );
        }
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
            UnaryOp::Step,
            UnaryOp::Not,
        ] {
            check(
                &format!("{op:?} {dt}"),
                &gy.unary(op).unwrap(),
                &y.unary(op).unwrap(),
            );
        }
    }
    let i = ints(&mut r, &[5, 9], -50, 50);
    let gi = dev(&i);
    for op in [
        UnaryOp::Neg,
        UnaryOp::Abs,
        UnaryOp::Relu,
        UnaryOp::Step,
        UnaryOp::Not,
    ] {
        check(
            &format!("{op:?} i64"),
            &gi.unary(op).unwrap(),
            &i.unary(op).unwrap(),
        );
    }
    let b = bools(&mut r, &[3, 11]);
    check(
        "not bool",
        &dev(&b).unary(UnaryOp::Not).unwrap(),
        &b.unary(UnaryOp::Not).unwrap(),
    );
}

#[test]
fn binary_ops_match_cpu_with_broadcast() {
    if !gpu() {
        return;
    }
    let mut r = rng(2);
    let all = [
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
    for dt in FLOATS {
        let a = uniform(&mut r, &[3, 5, 17], 0.5, 2.0, dt);
        let b = uniform(&mut r, &[5, 1], 0.5, 2.0, dt);
        let (ga, gb) = (dev(&a), dev(&b));
        for op in all {
            check(
                &format!("{op:?} {dt}"),
                &ga.binary(op, &gb).unwrap(),
                &a.binary(op, &b).unwrap(),
            );
        }
        // A host scalar joins the device operand.
        let s = Tensor::scalar(1.5, DType::F32);
        check(
            &format!("scalar mul {dt}"),
            &ga.binary(BinaryOp::Mul, &s).unwrap(),
            &a.binary(BinaryOp::Mul, &s).unwrap(),
        );
        check(
            &format!("scalar sub {dt}"),
            &s.binary(BinaryOp::Sub, &ga).unwrap(),
            &s.binary(BinaryOp::Sub, &a).unwrap(),
        );
    }
    let a = ints(&mut r, &[4, 9], -1000, 1000);
    let b = ints(&mut r, &[9], 1, 20);
    let nb = b.unary(UnaryOp::Neg).unwrap();
    let (ga, gb, gnb) = (dev(&a), dev(&b), dev(&nb));
    for op in all {
        check(
            &format!("{op:?} i64"),
            &ga.binary(op, &gb).unwrap(),
            &a.binary(op, &b).unwrap(),
        );
        if op != BinaryOp::Pow {
            check(
                &format!("{op:?} i64 neg"),
                &ga.binary(op, &gnb).unwrap(),
                &a.binary(op, &nb).unwrap(),
            );
        }
    }
    let (p, q) = (bools(&mut r, &[6, 7]), bools(&mut r, &[6, 7]));
    for op in &all[6..] {
        check(
            &format!("{op:?} bool"),
            &dev(&p).binary(*op, &dev(&q)).unwrap(),
            &p.binary(*op, &q).unwrap(),
        );
    }
}

#[test]
fn cast_clamp_where_match_cpu() {
    if !gpu() {
        return;
    }
    let mut r = rng(3);
    let dtypes = [DType::F32, DType::F16, DType::BF16, DType::I64, DType::Bool];
    for from in dtypes {
        let x = match from {
            DType::I64 => ints(&mut r, &[5, 7], -100, 100),
            DType::Bool => bools(&mut r, &[5, 7]),
            d => uniform(&mut r, &[5, 7], -50.0, 50.0, d),
        };
        let gx = dev(&x);
        for to in dtypes {
            if to != from {
                check(
                    &format!("cast {from}->{to}"),
                    &gx.cast(to).unwrap(),
                    &x.cast(to).unwrap(),
                );
            }
        }
    }
    for dt in FLOATS {
        let x = uniform(&mut r, &[9, 11], -2.0, 2.0, dt);
        check(
            &format!("clamp {dt}"),
            &dev(&x).clamp(Some(-0.5), Some(0.75)).unwrap(),
            &x.clamp(Some(-0.5), Some(0.75)).unwrap(),
        );
        check(
            &format!("clamp max {dt}"),
            &dev(&x).clamp(None, Some(0.1)).unwrap(),
            &x.clamp(None, Some(0.1)).unwrap(),
        );
    }
    let i = ints(&mut r, &[31], -10, 10);
    check(
        "clamp i64",
        &dev(&i).clamp(Some(-2.5), Some(3.5)).unwrap(),
        &i.clamp(Some(-2.5), Some(3.5)).unwrap(),
    );
    let c = bools(&mut r, &[4, 1, 6]);
    let a = uniform(&mut r, &[5, 6], -1.0, 1.0, DType::F32);
    let b = uniform(&mut r, &[4, 5, 1], -1.0, 1.0, DType::F32);
    check(
        "where",
        &Tensor::where_cond(&dev(&c), &dev(&a), &dev(&b)).unwrap(),
        &Tensor::where_cond(&c, &a, &b).unwrap(),
    );
}

#[test]
fn reductions_match_cpu() {
    if !gpu() {
        return;
    }
    let mut r = rng(4);
    let ops = [
        ReduceOp::Sum,
        ReduceOp::Mean,
        ReduceOp::Max,
        ReduceOp::Min,
        ReduceOp::Prod,
    ];
    let dim_sets: [Option<&[isize]>; 4] = [Some(&[1]), Some(&[0, 2]), Some(&[-1]), None];
    for dt in FLOATS {
        let x = uniform(&mut r, &[5, 6, 7], 0.5, 1.5, dt)
            .permute(&[2, 0, 1])
            .unwrap();
        let gx = dev(&x);
        for op in ops {
            for dims in dim_sets {
                for keep in [false, true] {
                    check(
                        &format!("{op:?} {dims:?} keep={keep} {dt}"),
                        &gx.reduce(op, dims, keep).unwrap(),
                        &x.reduce(op, dims, keep).unwrap(),
                    );
                }
            }
        }
        check(
            &format!("argmax {dt}"),
            &gx.argmax(Some(1), false).unwrap(),
            &x.argmax(Some(1), false).unwrap(),
        );
        check(
            &format!("argmin {dt}"),
            &gx.argmin(Some(0), true).unwrap(),
            &x.argmin(Some(0), true).unwrap(),
        );
        check(
            &format!("argmax all {dt}"),
            &gx.argmax(None, false).unwrap(),
            &x.argmax(None, false).unwrap(),
        );
    }
    // A long row (more elements than threads per block) and int64/bool inputs.
    let long = uniform(&mut r, &[3, 5000], -1.0, 1.0, DType::F32);
    check(
        "sum long",
        &dev(&long).reduce(ReduceOp::Sum, Some(&[1]), false).unwrap(),
        &long.reduce(ReduceOp::Sum, Some(&[1]), false).unwrap(),
    );
    check(
        "argmax long",
        &dev(&long).argmax(Some(1), false).unwrap(),
        &long.argmax(Some(1), false).unwrap(),
    );
    let i = ints(&mut r, &[6, 301], -1_000_000, 1_000_000);
    for op in ops {
        check(
            &format!("{op:?} i64"),
            &dev(&i).reduce(op, Some(&[1]), false).unwrap(),
            &i.reduce(op, Some(&[1]), false).unwrap(),
        );
    }
    check(
        "argmin i64",
        &dev(&i).argmin(Some(1), false).unwrap(),
        &i.argmin(Some(1), false).unwrap(),
    );
    let b = bools(&mut r, &[7, 9]);
    for op in ops {
        check(
            &format!("{op:?} bool"),
            &dev(&b).reduce(op, Some(&[0]), false).unwrap(),
            &b.reduce(op, Some(&[0]), false).unwrap(),
        );
    }
}

#[test]
fn copies_and_indexing_match_cpu() {
    if !gpu() {
        return;
    }
    let mut r = rng(5);
    for dt in [DType::F32, DType::F16, DType::I64] {
        let mk = |r: &mut ChaCha8Rng, s: &[usize]| match dt {
            DType::I64 => ints(r, s, -9, 9),
            d => uniform(r, s, -1.0, 1.0, d),
        };
        let a = mk(&mut r, &[3, 5, 7]);
        let b = mk(&mut r, &[3, 2, 7]);
        let c = mk(&mut r, &[7, 3, 1]).permute(&[1, 2, 0]).unwrap();
        check(
            &format!("concat {dt}"),
            &Tensor::concat(&[dev(&a), dev(&b), dev(&c)], 1).unwrap(),
            &Tensor::concat(&[a.clone(), b.clone(), c.clone()], 1).unwrap(),
        );
        let t = a.transpose(0, 2).unwrap();
        check(
            &format!("contiguous {dt}"),
            &dev(&t).contiguous().unwrap(),
            &t.contiguous().unwrap(),
        );
        let idx = ints(&mut r, &[3, 4, 7], 0, 5);
        check(
            &format!("gather {dt}"),
            &dev(&a).gather(1, &dev(&idx)).unwrap(),
            &a.gather(1, &idx).unwrap(),
        );
        let sel = ints(&mut r, &[11], 0, 7);
        check(
            &format!("index_select {dt}"),
            &dev(&a).index_select(2, &dev(&sel)).unwrap(),
            &a.index_select(2, &sel).unwrap(),
        );
        // Host index tensors follow the indexed tensor to the device.
        check(
            &format!("index_select host index {dt}"),
            &dev(&a)
                .index_select(0, &sel.clamp(None, Some(2.0)).unwrap())
                .unwrap(),
            &a.index_select(0, &sel.clamp(None, Some(2.0)).unwrap())
                .unwrap(),
        );
    }
    let table = uniform(&mut r, &[37, 12], -1.0, 1.0, DType::F16);
    let ids = ints(&mut r, &[2, 5], 0, 37);
    check(
        "embedding",
        &Tensor::embedding(&dev(&table), &dev(&ids)).unwrap(),
        &Tensor::embedding(&table, &ids).unwrap(),
    );
}

#[test]
fn matmul_matches_cpu() {
    if !gpu() {
        return;
    }
    let mut r = rng(6);
    for dt in FLOATS {
        let a = uniform(&mut r, &[3, 33, 17], -1.0, 1.0, dt);
        let b = uniform(&mut r, &[3, 17, 29], -1.0, 1.0, dt);
        check(
            &format!("bmm {dt}"),
            &dev(&a).matmul(&dev(&b)).unwrap(),
            &a.matmul(&b).unwrap(),
        );
        // Transposed operand, broadcast batch, a vector, and a strided non-collapsible batch.
        let bt = uniform(&mut r, &[29, 17], -1.0, 1.0, dt)
            .transpose(0, 1)
            .unwrap();
        check(
            &format!("matmul bt {dt}"),
            &dev(&a).matmul(&dev(&bt)).unwrap(),
            &a.matmul(&bt).unwrap(),
        );
        let at = uniform(&mut r, &[3, 17, 33], -1.0, 1.0, dt)
            .transpose(1, 2)
            .unwrap();
        check(
            &format!("matmul at {dt}"),
            &dev(&at).matmul(&dev(&b)).unwrap(),
            &at.matmul(&b).unwrap(),
        );
        let v = uniform(&mut r, &[17], -1.0, 1.0, dt);
        check(
            &format!("matvec {dt}"),
            &dev(&a).matmul(&dev(&v)).unwrap(),
            &a.matmul(&v).unwrap(),
        );
        let p = uniform(&mut r, &[2, 3, 33, 17], -1.0, 1.0, dt)
            .permute(&[1, 0, 2, 3])
            .unwrap();
        let q = uniform(&mut r, &[17, 5], -1.0, 1.0, dt);
        check(
            &format!("matmul permuted batch {dt}"),
            &dev(&p).matmul(&dev(&q)).unwrap(),
            &p.matmul(&q).unwrap(),
        );
    }
    let a = uniform(&mut r, &[257, 129], -1.0, 1.0, DType::F32);
    let b = uniform(&mut r, &[129, 131], -1.0, 1.0, DType::F32);
    check(
        "matmul f32 large",
        &dev(&a).matmul(&dev(&b)).unwrap(),
        &a.matmul(&b).unwrap(),
    );
    let e = Tensor::einsum("ij,kj->ik", &[&dev(&a), &dev(&a.narrow(0, 0, 5).unwrap())]).unwrap();
    check(
        "einsum",
        &e,
        &Tensor::einsum("ij,kj->ik", &[&a, &a.narrow(0, 0, 5).unwrap()]).unwrap(),
    );
}

#[test]
fn neural_ops_match_cpu() {
    if !gpu() {
        return;
    }
    let mut r = rng(7);
    for dt in FLOATS {
        let x = uniform(&mut r, &[3, 7, 65], -3.0, 3.0, dt);
        let gx = dev(&x);
        for dim in [-1isize, 1, 0] {
            check(
                &format!("softmax {dim} {dt}"),
                &gx.softmax(dim).unwrap(),
                &x.softmax(dim).unwrap(),
            );
            check(
                &format!("log_softmax {dim} {dt}"),
                &gx.log_softmax(dim).unwrap(),
                &x.log_softmax(dim).unwrap(),
            );
        }
        let w = uniform(&mut r, &[65], 0.5, 1.5, dt);
        let bias = uniform(&mut r, &[65], -0.5, 0.5, DType::F32);
        check(
            &format!("rms_norm {dt}"),
            &gx.rms_norm(&dev(&w), 1e-5).unwrap(),
            &x.rms_norm(&w, 1e-5).unwrap(),
        );
        check(
            &format!("layer_norm {dt}"),
            &gx.layer_norm(Some(&dev(&w)), Some(&dev(&bias.cast(dt).unwrap())), 1e-5)
                .unwrap(),
            &x.layer_norm(Some(&w), Some(&bias.cast(dt).unwrap()), 1e-5)
                .unwrap(),
        );
        check(
            &format!("layer_norm bare {dt}"),
            &gx.layer_norm(None, None, 1e-5).unwrap(),
            &x.layer_norm(None, None, 1e-5).unwrap(),
        );
        // [batch, heads, seq, head_dim] and one position.
        let q = uniform(&mut r, &[2, 4, 5, 16], -1.0, 1.0, dt);
        check(
            &format!("rope {dt}"),
            &dev(&q).rope(7, 10000.0).unwrap(),
            &q.rope(7, 10000.0).unwrap(),
        );
        check(
            &format!("rope_neox {dt}"),
            &dev(&q).rope_neox(3, 500000.0).unwrap(),
            &q.rope_neox(3, 500000.0).unwrap(),
        );
        let qt = q.transpose(1, 2).unwrap();
        check(
            &format!("rope strided {dt}"),
            &dev(&qt).rope(11, 10000.0).unwrap(),
            &qt.rope(11, 10000.0).unwrap(),
        );
        let a = uniform(&mut r, &[9, 23], -3.0, 3.0, dt);
        let b = uniform(&mut r, &[23], -3.0, 3.0, dt);
        check(
            &format!("silu_mul {dt}"),
            &Tensor::silu_mul(&dev(&a), &dev(&b)).unwrap(),
            &Tensor::silu_mul(&a, &b).unwrap(),
        );
    }
}

#[test]
fn attention_matches_cpu() {
    if !gpu() {
        return;
    }
    let mut r = rng(8);
    for dt in FLOATS {
        // Grouped heads (8 query heads over 2 kv heads), odd lengths, causal float mask.
        let q = uniform(&mut r, &[2, 8, 5, 32], -1.0, 1.0, dt);
        let k = uniform(&mut r, &[2, 2, 13, 32], -1.0, 1.0, dt);
        let v = uniform(&mut r, &[2, 2, 13, 24], -1.0, 1.0, dt);
        let mask = Tensor::causal_mask(5, 8, DType::F32).unwrap();
        let (gq, gk, gv) = (dev(&q), dev(&k), dev(&v));
        check(
            &format!("attention {dt}"),
            &Tensor::attention(&gq, &gk, &gv, None).unwrap(),
            &Tensor::attention(&q, &k, &v, None).unwrap(),
        );
        check(
            &format!("attention masked {dt}"),
            &Tensor::attention(&gq, &gk, &gv, Some(&dev(&mask))).unwrap(),
            &Tensor::attention(&q, &k, &v, Some(&mask)).unwrap(),
        );
        let keep = bools(&mut r, &[5, 13]);
        check(
            &format!("attention bool mask {dt}"),
            &Tensor::attention(&gq, &gk, &gv, Some(&dev(&keep))).unwrap(),
            &Tensor::attention(&q, &k, &v, Some(&keep)).unwrap(),
        );
        // A transposed q ([batch, seq, heads, d] viewed as [batch, heads, seq, d]).
        let qt = uniform(&mut r, &[2, 5, 8, 32], -1.0, 1.0, dt)
            .transpose(1, 2)
            .unwrap();
        check(
            &format!("attention strided q {dt}"),
            &Tensor::attention(&dev(&qt), &gk, &gv, None).unwrap(),
            &Tensor::attention(&qt, &k, &v, None).unwrap(),
        );
    }
}

/// Packed bytes of `rows` x `cols` values in `kind`: Q8_0 and Q4_0 quantize random values as
/// GGML does; the other formats get random bytes with small finite f16 scales (every bit
/// pattern of the quantized values is valid).
fn packed(r: &mut ChaCha8Rng, kind: tl_tensor::GgmlType, rows: usize, cols: usize) -> Vec<u8> {
    use tl_tensor::GgmlType as G;
    if matches!(kind, G::Q8_0 | G::Q4_0) {
        let x: Vec<f32> = (0..rows * cols)
            .map(|_| r.random_range(-1.0..1.0))
            .collect();
        return tl_tensor::quant::quantize_row(kind, &x).unwrap();
    }
    let mut b: Vec<u8> = (0..kind.bytes_for(rows * cols).unwrap())
        .map(|_| r.random())
        .collect();
    let scale_offsets: &[usize] = match kind {
        G::Q4_1 | G::Q4_K | G::Q5_K => &[0, 2],
        G::Q6_K => &[208],
        _ => unreachable!("formats under test"),
    };
    for blk in b.chunks_exact_mut(kind.block_bytes()) {
        for &o in scale_offsets {
            let v = half::f16::from_f32(r.random_range(0.001..0.02));
            blk[o..o + 2].copy_from_slice(&v.to_le_bytes());
        }
    }
    b
}

/// A random [out_f, in_f] weight of `dt`: packed blocks for the quantized types.
fn weight(r: &mut ChaCha8Rng, dt: DType, out_f: usize, in_f: usize) -> Tensor {
    match dt.ggml_type().filter(|k| k.is_quantized()) {
        Some(kind) => {
            Tensor::from_quantized(kind, packed(r, kind, out_f, in_f).into(), &[out_f, in_f])
                .unwrap()
        }
        None => uniform(r, &[out_f, in_f], -1.0, 1.0, dt),
    }
}

/// `x @ W^T + b` in f64 from the expanded weight (the exact value the kernels approximate).
fn linear_f64(x: &Tensor, w: &[f32], out_f: usize, b: Option<&Tensor>) -> Vec<f64> {
    linear_rows_f64(&x.to_vec_f64(), w, out_f, b)
}

/// `linear_f64` of rows given as f64 values.
fn linear_rows_f64(xs: &[f64], w: &[f32], out_f: usize, b: Option<&Tensor>) -> Vec<f64> {
    let in_f = w.len() / out_f;
    let bs = b.map(|b| b.to_vec_f64());
    let mut y = Vec::new();
    for row in xs.chunks(in_f) {
        for n in 0..out_f {
            let mut s: f64 = (0..in_f).map(|k| row[k] * w[n * in_f + k] as f64).sum();
            if let Some(bs) = &bs {
                s += bs[n];
            }
            y.push(s);
        }
    }
    y
}

fn rel_err(got: &[f64], want: &[f64]) -> f64 {
    assert_eq!(got.len(), want.len());
    let d: f64 = got.iter().zip(want).map(|(a, b)| (a - b) * (a - b)).sum();
    let n: f64 = want.iter().map(|b| b * b).sum();
    d.sqrt() / n.sqrt().max(1e-30)
}

const PACKED: [tl_tensor::GgmlType; 6] = [
    tl_tensor::GgmlType::Q4_0,
    tl_tensor::GgmlType::Q4_1,
    tl_tensor::GgmlType::Q8_0,
    tl_tensor::GgmlType::Q4_K,
    tl_tensor::GgmlType::Q5_K,
    tl_tensor::GgmlType::Q6_K,
];

#[test]
fn quantized_linear_reads_blocks_on_the_device() {
    if !gpu() {
        return;
    }
    let mut r = rng(40);
    let (out_f, in_f) = (37, 512);
    for kind in PACKED {
        let bytes = packed(&mut r, kind, out_f, in_f);
        let mut wf = vec![0f32; out_f * in_f];
        tl_tensor::quant::dequantize_row(kind, &bytes, &mut wf).unwrap();
        let w = Tensor::from_quantized(kind, bytes.into(), &[out_f, in_f]).unwrap();
        let wd = dev(&w);
        // Batch 1 runs the one-row kernel, 2..8 the few-row one, 9 and 33 expand W once to f16
        // for cuBLAS.
        for (m, dt) in [
            (1, DType::F32),
            (3, DType::F16),
            (8, DType::F32),
            (9, DType::F32),
            (33, DType::BF16),
        ] {
            let x = uniform(&mut r, &[m, in_f], -1.0, 1.0, dt);
            let b = uniform(&mut r, &[out_f], -1.0, 1.0, DType::F32);
            let y = dev(&x).linear(&wd, Some(&dev(&b))).unwrap();
            assert_eq!(
                (y.shape(), y.dtype(), y.device()),
                (&[m, out_f][..], dt, GPU)
            );
            let err = rel_err(&y.to_vec_f64(), &linear_f64(&x, &wf, out_f, Some(&b)));
            // More than 8 rows go through cuBLAS with the input rounded to f16 (tensor cores),
            // as PyTorch's autocast does: about 3e-4 for f32 inputs.
            let bound = match (dt, m) {
                (DType::F32, 1..=8) => 1e-5,
                (DType::F32, _) => 2e-3,
                _ => 1e-2,
            };
            assert!(
                err <= bound,
                "{} linear m={m} {dt}: relative error {err:e}",
                kind.name()
            );
        }
        // Rows 5..30 of W (a view whose blocks start mid-tensor), no bias.
        let x = uniform(&mut r, &[2, in_f], -1.0, 1.0, DType::F32);
        let rows = wd.narrow(0, 5, 25).unwrap();
        let y = dev(&x).linear(&rows, None).unwrap();
        let want = linear_f64(&x, &wf[5 * in_f..30 * in_f], 25, None);
        let err = rel_err(&y.to_vec_f64(), &want);
        assert!(
            err <= 1e-5,
            "{} row view: relative error {err:e}",
            kind.name()
        );
    }
}

#[test]
fn quantized_cast_embedding_and_copies_match_cpu() {
    if !gpu() {
        return;
    }
    let mut r = rng(41);
    for kind in PACKED {
        let bytes = packed(&mut r, kind, 12, 256);
        let w = Tensor::from_quantized(kind, bytes.into(), &[12, 256]).unwrap();
        let wd = dev(&w);
        for dt in [DType::F32, DType::F16, DType::BF16] {
            check(
                &format!("cast {} -> {dt}", kind.name()),
                &wd.cast(dt).unwrap(),
                &w.cast(dt).unwrap(),
            );
        }
        let ids = Tensor::from_i64(vec![3, 0, 11, 3, 7, 1], &[2, 3]).unwrap();
        check(
            &format!("embedding {}", kind.name()),
            &Tensor::embedding(&wd, &dev(&ids)).unwrap(),
            &Tensor::embedding(&w, &ids).unwrap(),
        );
        // Every other row (a view whose rows are not adjacent) packed on the device, and
        // read back: the same blocks as on the CPU.
        let rows = |t: &Tensor| t.slice(0, Some(1), Some(12), 2).unwrap();
        let packed_rows = rows(&wd).contiguous().unwrap();
        assert_eq!(packed_rows.device(), GPU);
        assert!(packed_rows.is_contiguous());
        let back = packed_rows.to_host().unwrap();
        let want = rows(&w).contiguous().unwrap();
        assert_eq!(back.shape(), &[6, 256]);
        assert_eq!(
            back.cpu_storage().unwrap().byte_len(),
            want.cpu_storage().unwrap().byte_len()
        );
        assert_eq!(
            back.to_vec_f64(),
            want.to_vec_f64(),
            "{} round trip",
            kind.name()
        );
    }
    let w = Tensor::from_quantized(
        tl_tensor::GgmlType::Q8_0,
        packed(&mut r, tl_tensor::GgmlType::Q8_0, 4, 32).into(),
        &[4, 32],
    )
    .unwrap();
    let bad = Tensor::embedding(&dev(&w), &dev(&Tensor::from_i64(vec![4], &[1]).unwrap())).unwrap();
    let e = bad.synchronize_for_read().unwrap_err().to_string();
    assert!(e.contains("out of range"), "{e}");
}

#[test]
fn float_matvec_matches_cpu() {
    if !gpu() {
        return;
    }
    let mut r = rng(42);
    // K = 1024 takes the 16-byte loads, K = 100 the element loop; m <= 8 the mat-vec kernel.
    for (m, k) in [(1, 1024), (5, 1024), (8, 100), (1, 7)] {
        for wdt in FLOATS {
            for xdt in [DType::F32, wdt] {
                let w = uniform(&mut r, &[131, k], -1.0, 1.0, wdt);
                let x = uniform(&mut r, &[m, k], -1.0, 1.0, xdt);
                let b = uniform(&mut r, &[131], -1.0, 1.0, wdt);
                check(
                    &format!("linear m={m} k={k} x {xdt} w {wdt}"),
                    &dev(&x).linear(&dev(&w), Some(&dev(&b))).unwrap(),
                    &x.linear(&w, Some(&b)).unwrap(),
                );
            }
        }
    }
    // A transposed weight view has no unit-stride rows: cuBLAS takes it.
    let w = uniform(&mut r, &[64, 48], -1.0, 1.0, DType::F32)
        .transpose(0, 1)
        .unwrap();
    let x = uniform(&mut r, &[1, 64], -1.0, 1.0, DType::F32);
    check(
        "linear transposed weight",
        &dev(&x).linear(&dev(&w), None).unwrap(),
        &x.linear(&w, None).unwrap(),
    );
}

#[test]
fn split_decoding_attention_matches_cpu() {
    if !gpu() {
        return;
    }
    let mut r = rng(44);
    // One query row per head over 256+ keys takes the split kernel (chunks of 128 keys, the
    // last one partial); grouped heads (8 query heads on 2 key heads) and a batch dim.
    for (sk, dt) in [
        (256, DType::F32),
        (300, DType::F16),
        (1000, DType::BF16),
        (257, DType::F32),
    ] {
        let q = uniform(&mut r, &[2, 8, 1, 64], -1.0, 1.0, dt);
        let k = uniform(&mut r, &[2, 2, sk, 64], -2.0, 2.0, dt);
        let v = uniform(&mut r, &[2, 2, sk, 64], -1.0, 1.0, dt);
        check(
            &format!("split attention sk={sk} {dt}"),
            &Tensor::attention(&dev(&q), &dev(&k), &dev(&v), None).unwrap(),
            &Tensor::attention(&q, &k, &v, None).unwrap(),
        );
    }
}

#[test]
fn linear_with_several_weights_matches_one_linear_each() {
    if !gpu() {
        return;
    }
    let mut r = rng(45);
    let in_f = 256;
    // One input row and one weight type: one launch; otherwise one `linear` per weight.
    for (m, kinds) in [
        (1, [DType::F16; 3]),
        (1, [DType::Q4_K; 3]),
        (1, [DType::Q8_0; 3]),
        (1, [DType::BF16, DType::F16, DType::F16]),
        (3, [DType::F16; 3]),
    ] {
        let ws: Vec<Tensor> = [96, 32, 32]
            .iter()
            .zip(kinds)
            .map(|(&out_f, dt)| weight(&mut r, dt, out_f, in_f))
            .collect();
        let x = uniform(&mut r, &[m, in_f], -1.0, 1.0, DType::F32);
        let wd: Vec<Tensor> = ws.iter().map(dev).collect();
        let ys = dev(&x).linear_many(&wd.iter().collect::<Vec<_>>()).unwrap();
        for (i, (y, w)) in ys.iter().zip(&wd).enumerate() {
            check(
                &format!("linear_many m={m} {kinds:?} part {i}"),
                y,
                &dev(&x).linear(w, None).unwrap().to_host().unwrap(),
            );
        }
    }
}

#[test]
fn linear_with_a_residual_matches_linear_then_add() {
    if !gpu() {
        return;
    }
    let mut r = rng(46);
    let (out_f, in_f) = (40, 256);
    let kinds = [DType::F16, DType::F32, DType::Q4_0, DType::Q6_K];
    for dt in kinds {
        let w = weight(&mut r, dt, out_f, in_f);
        let wd = dev(&w);
        // 1 row: the one-row kernels; 3: the few-row kernels; 9: cuBLAS and an add.
        for m in [1, 3, 9] {
            let x = dev(&uniform(&mut r, &[m, in_f], -1.0, 1.0, DType::F32));
            let res = dev(&uniform(&mut r, &[m, out_f], -1.0, 1.0, DType::F32));
            let fused = x.linear(&wd, Some(&res)).unwrap();
            let apart = x
                .linear(&wd, None)
                .unwrap()
                .binary(BinaryOp::Add, &res)
                .unwrap();
            check(
                &format!("residual linear {dt} m={m}"),
                &fused,
                &apart.to_host().unwrap(),
            );
        }
    }
}

/// rms_norm(x, g, eps) of each row in f64.
fn rms_norm_f64(x: &[f64], g: &[f64], eps: f64) -> Vec<f64> {
    let d = g.len();
    x.chunks(d)
        .flat_map(|row| {
            let r = 1.0 / (row.iter().map(|v| v * v).sum::<f64>() / d as f64 + eps).sqrt();
            row.iter().zip(g).map(move |(v, w)| v * r * w)
        })
        .collect()
}

#[test]
fn fused_linear_matches_an_f64_reference() {
    use tl_tensor::ops::LinearFusion;
    if !gpu() {
        return;
    }
    let mut r = rng(47);
    let eps = 1e-5;
    // 2048 inputs: whole 16-byte runs of 32 blocks (the staged block path for Q4_0, Q4_1,
    // Q8_0) and several rounds of loads; 1056 (33 groups): rows that are not, and a partial
    // last round for float weights; K formats need whole 256-value blocks.
    let cases = [
        (DType::F32, 1056),
        (DType::F16, 2048),
        (DType::F16, 1056),
        (DType::BF16, 2048),
        (DType::Q4_0, 2048),
        (DType::Q4_0, 1056),
        (DType::Q4_1, 2048),
        (DType::Q8_0, 2048),
        (DType::Q8_0, 1056),
        (DType::Q4_K, 512),
        (DType::Q6_K, 512),
    ];
    for (dt, in_f) in cases {
        let x = uniform(&mut r, &[1, in_f], -2.0, 2.0, DType::F32);
        let g = uniform(&mut r, &[in_f], 0.5, 1.5, DType::F32);
        let (xd, gd) = (dev(&x), dev(&g));
        let h = rms_norm_f64(&x.to_vec_f64(), &g.to_vec_f64(), eps);
        let values = |w: &Tensor| -> Vec<f32> {
            let v = w.cast(DType::F32).unwrap().to_vec_f64();
            v.iter().map(|&a| a as f32).collect()
        };
        let tol = 1e-5;
        // Q, K and V with the norm: three outputs from one launch.
        let ws: Vec<Tensor> = [96, 40, 40]
            .iter()
            .map(|&o| weight(&mut r, dt, o, in_f))
            .collect();
        let wd: Vec<Tensor> = ws.iter().map(dev).collect();
        let refs: Vec<&Tensor> = wd.iter().collect();
        let fusion = LinearFusion {
            norm: Some((&gd, eps)),
            ..LinearFusion::default()
        };
        let ys = xd.linear_fused(&refs, &fusion).unwrap();
        for (i, (y, w)) in ys.iter().zip(&ws).enumerate() {
            assert_eq!((y.device(), y.dtype()), (GPU, DType::F32));
            let want = linear_rows_f64(&h, &values(w), w.shape()[0], None);
            let err = rel_err(&y.to_vec_f64(), &want);
            assert!(err <= tol, "{dt} k={in_f} norm+part {i}: {err:e}");
        }
        // Gate and up with the norm, combined as silu(gate) * up.
        let (wg, wu) = (weight(&mut r, dt, 72, in_f), weight(&mut r, dt, 72, in_f));
        let fusion = LinearFusion {
            norm: Some((&gd, eps)),
            swiglu: true,
            ..LinearFusion::default()
        };
        let y = xd
            .linear_fused(&[&dev(&wg), &dev(&wu)], &fusion)
            .unwrap()
            .remove(0);
        let a = linear_rows_f64(&h, &values(&wg), 72, None);
        let b = linear_rows_f64(&h, &values(&wu), 72, None);
        let want: Vec<f64> = a
            .iter()
            .zip(&b)
            .map(|(a, b)| a / (1.0 + (-a).exp()) * b)
            .collect();
        let err = rel_err(&y.to_vec_f64(), &want);
        assert!(err <= tol, "{dt} k={in_f} swiglu: {err:e}");
        // One weight with a residual and no norm.
        let w = weight(&mut r, dt, 50, in_f);
        let res = uniform(&mut r, &[1, 50], -1.0, 1.0, DType::F32);
        let fusion = LinearFusion {
            bias: Some(&dev(&res)),
            ..LinearFusion::default()
        };
        let y = xd.linear_fused(&[&dev(&w)], &fusion).unwrap().remove(0);
        let want = linear_f64(&x, &values(&w), 50, Some(&res.reshape(&[50]).unwrap()));
        let err = rel_err(&y.to_vec_f64(), &want);
        assert!(err <= tol, "{dt} k={in_f} residual: {err:e}");
    }
}

#[test]
fn kv_append_with_rope_matches_rope_then_copies_on_the_cpu() {
    if !gpu() {
        return;
    }
    let mut r = rng(48);
    // f32 and f16 caches, keys of the cache's dtype and not, both pairings, rows written at
    // the start and in the middle.
    for (cache_dt, key_dt, neox, start, n) in [
        (DType::F32, DType::F32, false, 0, 5),
        (DType::F32, DType::F32, true, 3, 1),
        (DType::F16, DType::F32, false, 7, 2),
        (DType::F16, DType::F16, true, 0, 3),
    ] {
        let (rows, heads, d) = (12, 3, 8);
        let k_cache = uniform(&mut r, &[rows, heads, d], -1.0, 1.0, cache_dt);
        let v_cache = uniform(&mut r, &[rows, heads, d], -1.0, 1.0, cache_dt);
        let k = uniform(&mut r, &[n, heads, d], -1.0, 1.0, key_dt);
        let v = uniform(&mut r, &[n, heads, d], -1.0, 1.0, key_dt);
        let rope = (start + 4, 500.0, neox);
        let (mut kg, mut vg) = (dev(&k_cache), dev(&v_cache));
        Tensor::write_kv_rope_in_place(&mut kg, &mut vg, start, &dev(&k), &dev(&v), rope).unwrap();
        let (mut kc, mut vc) = (k_cache.clone(), v_cache.clone());
        Tensor::write_kv_rope_in_place(&mut kc, &mut vc, start, &k, &v, rope).unwrap();
        let what = format!("kv rope {cache_dt} keys {key_dt} neox {neox} at {start}");
        check(&format!("{what}: keys"), &kg, &kc);
        check(&format!("{what}: values"), &vg, &vc);
    }
}

#[test]
fn causal_attention_matches_masked_attention_on_the_cpu() {
    if !gpu() {
        return;
    }
    let mut r = rng(49);
    // (query heads, kv heads, new rows, cached rows before them, head dim, dtype): groups of
    // 1, 4 and 8 heads (the causal kernel), 16 (more than it takes: the masked path), odd sizes.
    for (hq, hkv, sq, offset, d, dt) in [
        (8, 1, 37, 0, 64, DType::F32),
        (8, 2, 5, 11, 32, DType::F32),
        (3, 3, 9, 4, 16, DType::F16),
        (32, 4, 130, 3, 64, DType::F32),
        (16, 1, 6, 2, 8, DType::F32),
    ] {
        let sk = offset + sq;
        // [seq, heads, dim] rows viewed as [heads, seq, dim], as `attend` passes them.
        let heads_first = |t: Tensor| t.permute(&[1, 0, 2]).unwrap();
        let q = heads_first(uniform(&mut r, &[sq, hq, d], -1.0, 1.0, dt));
        let k = heads_first(uniform(&mut r, &[sk, hkv, d], -1.0, 1.0, dt));
        let v = heads_first(uniform(&mut r, &[sk, hkv, d], -1.0, 1.0, dt));
        let on_gpu = |t: &Tensor| heads_first(dev(&heads_first(t.clone())));
        let got = Tensor::causal_attention(&on_gpu(&q), &on_gpu(&k), &on_gpu(&v), offset).unwrap();
        let mask = Tensor::causal_mask(sq, offset, DType::F32).unwrap();
        let want = Tensor::attention(&q, &k, &v, Some(&mask)).unwrap();
        check(
            &format!("causal attention hq {hq} hkv {hkv} sq {sq} offset {offset} {dt}"),
            &got,
            &want,
        );
    }
}
