//! Tensors in the evaluator: operators with broadcasting, `@`, indexing and slicing, indexed
//! assignment, typed parameters, typed constructors. Values are checked against naive f64
//! references on seeded random inputs (f32 tolerance 1e-5 relative, as TARGETS.md says).

mod common;
use common::*;

use tl_interp::{Interpreter, Options, SharedBuffer, Value};
use tl_tensor::{DType, Tensor};

fn repl() -> (Interpreter, SharedBuffer) {
    let buffer = SharedBuffer::new();
    let interp = Interpreter::with_output(Options::default(), Box::new(buffer.clone()));
    (interp, buffer)
}

#[track_caller]
fn eval(interp: &mut Interpreter, src: &str) -> Value {
    match interp.eval_repl(src) {
        Ok(Some(v)) => v,
        Ok(None) => panic!("`{src}` gave no value"),
        Err(d) => panic!(
            "`{src}` failed: {}",
            d.iter()
                .map(|d| d.render(interp.sources()))
                .collect::<String>()
        ),
    }
}

#[track_caller]
fn tensor(interp: &mut Interpreter, src: &str) -> Tensor {
    match eval(interp, src) {
        Value::Tensor(t) => t,
        other => panic!("`{src}` gave {}, not a tensor", other.type_name()),
    }
}

#[track_caller]
fn exec(interp: &mut Interpreter, src: &str) {
    if let Err(d) = interp.eval_repl(src) {
        panic!(
            "`{src}` failed: {}",
            d.iter()
                .map(|d| d.render(interp.sources()))
                .collect::<String>()
        );
    }
}

/// ||out - ref|| / ||ref||
#[track_caller]
fn assert_close(out: &[f64], reference: &[f64], tol: f64) {
    assert_eq!(out.len(), reference.len(), "lengths differ");
    let diff: f64 = out
        .iter()
        .zip(reference)
        .map(|(a, b)| (a - b) * (a - b))
        .sum::<f64>()
        .sqrt();
    let norm: f64 = reference
        .iter()
        .map(|b| b * b)
        .sum::<f64>()
        .sqrt()
        .max(1e-30);
    assert!(
        diff / norm <= tol,
        "relative error {} > {tol}\nout {out:?}\nref {reference:?}",
        diff / norm
    );
}

/// Row-major broadcast read of `data` (shape `shape`) at the output index `idx` of `out_shape`.
fn broadcast_at(data: &[f64], shape: &[usize], out_shape: &[usize], idx: &[usize]) -> f64 {
    let offset = out_shape.len() - shape.len();
    let mut flat = 0;
    for (d, &n) in shape.iter().enumerate() {
        let i = if n == 1 { 0 } else { idx[d + offset] };
        flat = flat * n + i;
    }
    data[flat]
}

fn unravel(mut flat: usize, shape: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; shape.len()];
    for d in (0..shape.len()).rev() {
        idx[d] = flat % shape[d];
        flat /= shape[d];
    }
    idx
}

#[test]
fn broadcasting_operators_match_a_naive_reference() {
    let (mut it, _) = repl();
    exec(
        &mut it,
        "seed(11)\nlet x = randn([3, 4])\nlet y = randn([4]) + 3.0\nlet z = randn([3, 1])",
    );
    let x = tensor(&mut it, "x").to_vec_f64();
    let y = tensor(&mut it, "y").to_vec_f64();
    let z = tensor(&mut it, "z").to_vec_f64();
    type Op = fn(f64, f64) -> f64;
    let ops: [(&str, Op); 4] = [
        ("+", |a, b| a + b),
        ("-", |a, b| a - b),
        ("*", |a, b| a * b),
        ("/", |a, b| a / b),
    ];
    for (sym, f) in ops {
        for (rhs, data, shape) in [("y", &y, vec![4]), ("z", &z, vec![3, 1])] {
            let out = tensor(&mut it, &format!("x {sym} {rhs}"));
            assert_eq!(out.shape(), &[3, 4]);
            let reference: Vec<f64> = (0..12)
                .map(|k| {
                    let idx = unravel(k, &[3, 4]);
                    f(x[k], broadcast_at(data, &shape, &[3, 4], &idx))
                })
                .collect();
            assert_close(&out.to_vec_f64(), &reference, 1e-5);
        }
    }
    // Host scalars on either side.
    let out = tensor(&mut it, "2.5 - x * 2");
    let reference: Vec<f64> = x.iter().map(|v| 2.5 - v * 2.0).collect();
    assert_close(&out.to_vec_f64(), &reference, 1e-5);
    let out = tensor(&mut it, "-x ** 2");
    let reference: Vec<f64> = x.iter().map(|v| -(v * v)).collect();
    assert_close(&out.to_vec_f64(), &reference, 1e-5);
    // A numeric array literal converts where a tensor is needed.
    let out = tensor(&mut it, "x * [1.0, 2.0, 3.0, 4.0]");
    let reference: Vec<f64> = (0..12).map(|k| x[k] * (1 + k % 4) as f64).collect();
    assert_close(&out.to_vec_f64(), &reference, 1e-5);
}

#[test]
fn scalar_dtypes_follow_the_tensor() {
    let (mut it, _) = repl();
    assert_eq!(tensor(&mut it, "arange(4) + 1").dtype(), DType::I64);
    assert_eq!(tensor(&mut it, "arange(4) * 0.5").dtype(), DType::F32);
    assert_eq!(tensor(&mut it, "f16::ones([2]) * 3").dtype(), DType::F16);
    assert_eq!(tensor(&mut it, "f16::ones([2]) * 0.5").dtype(), DType::F16);
    assert_eq!(tensor(&mut it, "arange(3) > 1").dtype(), DType::Bool);
    assert_eq!(
        tensor(&mut it, "arange(3) > 1").to_vec_f64(),
        vec![0.0, 0.0, 1.0]
    );
    let mask = tensor(&mut it, "arange(4) > 0 and arange(4) < 3");
    assert_eq!(mask.to_vec_f64(), vec![0.0, 1.0, 1.0, 0.0]);
}

#[test]
fn matmul_operator_matches_a_naive_reference() {
    let (mut it, _) = repl();
    exec(
        &mut it,
        "seed(3)\nlet a = randn([5, 7])\nlet b = randn([7, 3])",
    );
    let a = tensor(&mut it, "a").to_vec_f64();
    let b = tensor(&mut it, "b").to_vec_f64();
    let out = tensor(&mut it, "a @ b");
    assert_eq!(out.shape(), &[5, 3]);
    let mut reference = vec![0.0; 15];
    for i in 0..5 {
        for j in 0..3 {
            reference[i * 3 + j] = (0..7).map(|k| a[i * 7 + k] * b[k * 3 + j]).sum();
        }
    }
    assert_close(&out.to_vec_f64(), &reference, 1e-5);
}

#[test]
fn shape_errors_point_at_the_operator() {
    assert_error(
        "main {\n  let a = ones([3, 4])\n  let b = ones([5, 6])\n  let c = a @ b\n}\n",
        "matmul",
        "4:11",
    );
    assert_error(
        "main {\n  let a = ones([3, 4])\n  print(a + ones([2]))\n}\n",
        "[3, 4]",
        "3:9",
    );
    assert_error(
        "main {\n  print(\"a\" + 1 - ones([2]))\n}\n",
        "`-`: cannot subtract string and tensor",
        "2:9",
    );
}

#[test]
fn indexing_and_slicing_match_the_data() {
    let (mut it, _) = repl();
    exec(&mut it, "seed(5)\nlet x = randn([4, 5])");
    let x = tensor(&mut it, "x").to_vec_f64();
    let at = |i: usize, j: usize| x[i * 5 + j];
    let row = tensor(&mut it, "x[1]");
    assert_eq!(row.shape(), &[5]);
    assert_close(
        &row.to_vec_f64(),
        &(0..5).map(|j| at(1, j)).collect::<Vec<_>>(),
        0.0,
    );
    let last = tensor(&mut it, "x[-1]");
    assert_close(
        &last.to_vec_f64(),
        &(0..5).map(|j| at(3, j)).collect::<Vec<_>>(),
        0.0,
    );
    let one = tensor(&mut it, "x[2, 3]");
    assert_eq!(one.rank(), 0);
    assert_eq!(one.to_vec_f64(), vec![at(2, 3)]);
    let block = tensor(&mut it, "x[1:3, :]");
    assert_eq!(block.shape(), &[2, 5]);
    assert_close(
        &block.to_vec_f64(),
        &(1..3)
            .flat_map(|i| (0..5).map(move |j| (i, j)))
            .map(|(i, j)| at(i, j))
            .collect::<Vec<_>>(),
        0.0,
    );
    let strided = tensor(&mut it, "x[::2, 1::2]");
    assert_eq!(strided.shape(), &[2, 2]);
    assert_eq!(
        strided.to_vec_f64(),
        vec![at(0, 1), at(0, 3), at(2, 1), at(2, 3)]
    );
    let col = tensor(&mut it, "x[:, arange(1) + 4]");
    assert_eq!(col.shape(), &[4]);
    let picked = tensor(&mut it, "x[[3, 0]]");
    assert_eq!(picked.shape(), &[2, 5]);
    assert_eq!(picked.to_vec_f64()[..5], x[15..20]);
    // A one-element int tensor is an index too.
    let via_tensor = tensor(&mut it, "x[argmax(x[0])]");
    assert_eq!(via_tensor.shape(), &[5]);
    let v = eval(&mut it, "x[1, 2] as float");
    match v {
        Value::Float(f) => assert!((f - at(1, 2)).abs() < 1e-6),
        other => panic!("expected a float, got {}", other.type_name()),
    }
}

#[test]
fn tensor_index_errors() {
    assert_error(
        "main {\n  let x = ones([3])\n  print(x[5])\n}\n",
        "index 5 is out of bounds for dimension 0 of size 3",
        "3:11",
    );
    assert_error(
        "main {\n  let x = ones([3])\n  print(x[0, 1])\n}\n",
        "too many indices",
        "3:9",
    );
    assert_error(
        "main {\n  let x = ones([3])\n  print(x[1.5])\n}\n",
        "an index must be an int",
        "3:11",
    );
}

#[test]
fn indexed_assignment_copies_on_write() {
    let (mut it, _) = repl();
    exec(&mut it, "seed(9)\nlet x = randn([3, 4])\nlet keep = x");
    let before = tensor(&mut it, "x").to_vec_f64();
    exec(&mut it, "x[1, 2] = 7.0");
    exec(&mut it, "x[0] = 1.5");
    exec(&mut it, "x[1:3, 0] = [10.0, 20.0]");
    exec(&mut it, "x[2, ::2] = randn([2]) * 0.0 - 1.0");
    let after = tensor(&mut it, "x").to_vec_f64();
    let mut expected = before.clone();
    expected[6] = 7.0;
    expected[..4].fill(1.5);
    expected[4] = 10.0;
    expected[8] = 20.0;
    expected[8] = -1.0;
    expected[10] = -1.0;
    assert_close(&after, &expected, 1e-7);
    // The other holder still sees the old tensor.
    assert_eq!(tensor(&mut it, "keep").to_vec_f64(), before);
    // Compound assignment on an element.
    exec(&mut it, "x[1, 1] += 100.0");
    let v = tensor(&mut it, "x[1, 1]").to_vec_f64()[0];
    assert!((v - (before[5] + 100.0)).abs() < 1e-4);
    // Integer tensors keep exact values.
    exec(&mut it, "let ids = arange(4)\nids[2] = 9007199254740993");
    assert_eq!(
        tensor(&mut it, "ids").to_vec_i64(),
        vec![0, 1, 9007199254740993, 3]
    );
}

#[test]
fn indexed_assignment_shape_mismatch() {
    assert_error(
        "main {\n  let x = zeros([3, 4])\n  x[0] = ones([3])\n}\n",
        "cannot assign a value of shape [3] to a region of shape [4]",
        "3:3",
    );
}

#[test]
fn tensor_parameter_types_are_checked() {
    let src = "fn mm(a: float32[n, k], b: float32[k, m]) -> float32[n, m] {\n  a @ b\n}\n";
    let ok = run_ok(&format!(
        "{src}main {{\n  print(mm(ones([2, 3]), ones([3, 4])).shape)\n}}\n"
    ));
    assert_eq!(ok, "[2, 4]\n");
    assert_error(
        &format!("{src}main {{\n  mm(ones([2, 3]), ones([4, 4]))\n}}\n"),
        "parameter `b` of mm expects float32[k, m], got float32[4, 4] (`k` is 3 elsewhere in this call but 4 here)",
        "5:20",
    );
    assert_error(
        &format!("{src}main {{\n  mm(f16::ones([2, 3]), ones([3, 4]))\n}}\n"),
        "parameter `a` of mm expects float32[n, k], got float16[2, 3]",
        "5:6",
    );
    assert_error(
        &format!("{src}main {{\n  mm(ones([2, 3, 1]), ones([3, 4]))\n}}\n"),
        "expects float32[n, k], got float32[2, 3, 1]",
        "5:6",
    );
    assert_error(
        "fn f(x: float32[?, 2]) -> float32[3] { x }\nmain {\n  f(ones([5, 2]))\n}\n",
        "the result of f expects float32[3], got float32[5, 2]",
        "3:3",
    );
    // `?` accepts any size; an array literal converts to the declared dtype.
    assert_eq!(
        run_ok("fn f(x: float16[?]) { x }\nprint(f([1.0, 2.0]).dtype)\n"),
        "float16\n"
    );
}

#[test]
fn tensor_declarations() {
    let out = run_ok(
        "tensor W: float32[2, 3] = ones([2, 3]) * 2.0\ntensor b: float32[3]\nmain {\n  print(W.shape, b.shape, sum(W) as float, sum(b) as float)\n}\n",
    );
    assert_eq!(out, "[2, 3] [3] 12.0 0.0\n");
    assert_error(
        "tensor W: float32[2, 3] = ones([3, 2])\n",
        "tensor `W` expects float32[2, 3], got float32[3, 2]",
        "1:1",
    );
}

#[test]
fn typed_constructors_pass_the_dtype() {
    let (mut it, _) = repl();
    assert_eq!(tensor(&mut it, "f16::zeros([2, 3])").dtype(), DType::F16);
    assert_eq!(tensor(&mut it, "bf16::ones([2])").dtype(), DType::BF16);
    assert_eq!(tensor(&mut it, "f32::arange(4)").dtype(), DType::F32);
    assert_eq!(tensor(&mut it, "i64::zeros([1])").dtype(), DType::I64);
    assert_eq!(tensor(&mut it, "float16::ones([1])").dtype(), DType::F16);
    assert_error(
        "main {\n  let t = f16::nothing([2])\n}\n",
        "unknown typed constructor `f16::nothing`",
        "2:11",
    );
}

#[test]
fn iterating_a_tensor_walks_dimension_zero() {
    let out = run_ok(
        "main {\n  let x = arange(6).reshape([3, 2])\n  for row in x {\n    print(row.shape, sum(row) as int)\n  }\n}\n",
    );
    assert_eq!(out, "[2] 1\n[2] 5\n[2] 9\n");
}

#[test]
fn printing_tensors_and_casts() {
    let out = run_ok(
        "main {\n  print(arange(3))\n  print(len(zeros([4, 2])), sum(ones([3])) as int, max(arange(5)) as float)\n}\n",
    );
    assert_eq!(out, "tensor([0, 1, 2])\n4 3 4.0\n");
    assert_error(
        "main {\n  print(ones([2]) as float)\n}\n",
        "cannot convert a tensor of shape [2]",
        "2:9",
    );
}

#[test]
fn seed_makes_random_tensors_reproducible() {
    let (mut it, _) = repl();
    let a = tensor(&mut it, "randn([4])").to_vec_f64();
    exec(&mut it, "seed(0)");
    let b = tensor(&mut it, "randn([4])").to_vec_f64();
    assert_eq!(a, b, "each interpreter starts from seed 0");
    exec(&mut it, "seed(42)");
    let c = tensor(&mut it, "randn([4])").to_vec_f64();
    assert_ne!(a, c);
}
