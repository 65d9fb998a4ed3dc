//! Shared helpers of the builtin tests: calling a builtin through the registry, seeded random
//! inputs, and comparing against f64 references.
#![allow(dead_code)]

use std::rc::Rc;

use tl_interp::Value;
use tl_interp::builtins::{self, CallArgs};
use tl_interp::interp::{Interpreter, Options};
use tl_syntax::Span;
use tl_tensor::{DType, Tensor};

pub fn interp() -> Interpreter {
    Interpreter::new(Options::default())
}

/// Calls builtin `name` with positional and named arguments.
pub fn call_named(
    interp: &mut Interpreter,
    name: &str,
    positional: Vec<Value>,
    named: Vec<(&str, Value)>,
) -> tl_interp::Result<Value> {
    let b = builtins::lookup(name).unwrap_or_else(|| panic!("no builtin {name}"));
    let mut args = CallArgs {
        name: b.name,
        span: Span::default(),
        positional: positional
            .into_iter()
            .map(|v| (v, Span::default()))
            .collect(),
        named: named
            .into_iter()
            .map(|(n, v)| (n.to_string(), v, Span::default()))
            .collect(),
    };
    (b.func)(interp, &mut args)
}

pub fn call(
    interp: &mut Interpreter,
    name: &str,
    positional: Vec<Value>,
) -> tl_interp::Result<Value> {
    call_named(interp, name, positional, vec![])
}

/// The call's result, which must be a tensor.
pub fn call_t(interp: &mut Interpreter, name: &str, positional: Vec<Value>) -> Tensor {
    expect_tensor(call(interp, name, positional).unwrap_or_else(|e| panic!("{name}: {e}")))
}

pub fn call_named_t(
    interp: &mut Interpreter,
    name: &str,
    positional: Vec<Value>,
    named: Vec<(&str, Value)>,
) -> Tensor {
    expect_tensor(
        call_named(interp, name, positional, named).unwrap_or_else(|e| panic!("{name}: {e}")),
    )
}

/// The error message of a call that must fail.
pub fn call_err(interp: &mut Interpreter, name: &str, positional: Vec<Value>) -> String {
    match call(interp, name, positional) {
        Ok(v) => panic!("{name} should have failed, got {v:?}"),
        Err(e) => e.message,
    }
}

pub fn call_named_err(
    interp: &mut Interpreter,
    name: &str,
    positional: Vec<Value>,
    named: Vec<(&str, Value)>,
) -> String {
    match call_named(interp, name, positional, named) {
        Ok(v) => panic!("{name} should have failed, got {v:?}"),
        Err(e) => e.message,
    }
}

pub fn expect_tensor(v: Value) -> Tensor {
    match v {
        Value::Tensor(t) => t,
        other => panic!("expected a tensor, got {}", other.type_name()),
    }
}

pub fn expect_int(v: Value) -> i64 {
    match v {
        Value::Int(i) => i,
        other => panic!("expected an int, got {}", other.type_name()),
    }
}

pub fn expect_float(v: Value) -> f64 {
    match v {
        Value::Float(f) => f,
        other => panic!("expected a float, got {}", other.type_name()),
    }
}

pub fn t(x: &Tensor) -> Value {
    Value::Tensor(x.clone())
}

pub fn int(i: i64) -> Value {
    Value::Int(i)
}

pub fn float(f: f64) -> Value {
    Value::Float(f)
}

pub fn s(text: &str) -> Value {
    Value::str(text)
}

pub fn ints(v: &[i64]) -> Value {
    Value::List(Rc::new(v.iter().map(|&i| Value::Int(i)).collect()))
}

pub fn list(v: Vec<Value>) -> Value {
    Value::List(Rc::new(v))
}

/// A small seeded generator (splitmix64) for test inputs, independent of the runtime's.
pub struct Gen(u64);

impl Gen {
    pub fn new(seed: u64) -> Gen {
        Gen(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [-1, 1).
    pub fn signed(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    pub fn values(&mut self, n: usize) -> Vec<f64> {
        (0..n).map(|_| self.signed() * 2.0).collect()
    }

    /// A random tensor of `shape` (values in [-2, 2)); its f64 values (exact in `dtype`).
    pub fn tensor(&mut self, shape: &[usize], dtype: DType) -> (Tensor, Vec<f64>) {
        let n = shape.iter().product();
        let values = self.values(n);
        let t = Tensor::from_f64(&values, shape, dtype).expect("shape fits");
        let exact = t.to_vec_f64();
        (t, exact)
    }
}

/// ||out - reference|| / ||reference||.
pub fn rel_err(out: &[f64], reference: &[f64]) -> f64 {
    assert_eq!(out.len(), reference.len(), "lengths differ");
    let diff: f64 = out
        .iter()
        .zip(reference)
        .map(|(a, b)| (a - b) * (a - b))
        .sum::<f64>()
        .sqrt();
    let norm: f64 = reference.iter().map(|b| b * b).sum::<f64>().sqrt();
    if norm == 0.0 { diff } else { diff / norm }
}

pub fn tolerance(dtype: DType) -> f64 {
    match dtype {
        DType::F32 => 1e-5,
        _ => 1e-2,
    }
}

/// Checks a tensor's shape and values against a reference.
pub fn assert_close(out: &Tensor, shape: &[usize], reference: &[f64], tol: f64) {
    assert_eq!(out.shape(), shape, "shape");
    let got = out.to_vec_f64();
    let err = rel_err(&got, reference);
    assert!(
        err <= tol,
        "relative error {err} > {tol}\n got {got:?}\n want {reference:?}"
    );
}

/// Row-major strides of a shape.
pub fn strides(shape: &[usize]) -> Vec<usize> {
    let mut st = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        st[i] = st[i + 1] * shape[i + 1];
    }
    st
}

/// The multi-index of flat position `i` in `shape`.
pub fn unravel(mut i: usize, shape: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; shape.len()];
    for d in (0..shape.len()).rev() {
        idx[d] = i % shape[d];
        i /= shape[d];
    }
    idx
}
