//! The builtin registry as a whole: every entry documented, names unique, every tensor builtin
//! registered, and no tensor builtin panicking on odd arguments.

mod builtins_support;

use std::collections::HashSet;

use builtins_support::*;
use tl_interp::Value;
use tl_interp::builtins;
use tl_tensor::{DType, Tensor};

const TENSOR_CATEGORIES: [&str; 7] = [
    "creation",
    "elementwise",
    "reduction",
    "shape",
    "linear algebra",
    "neural",
    "sampling",
];

const EXPECTED: &[&str] = &[
    "zeros",
    "ones",
    "full",
    "rand",
    "randn",
    "arange",
    "eye",
    "tensor",
    "neg",
    "abs",
    "exp",
    "log",
    "sqrt",
    "rsqrt",
    "sin",
    "cos",
    "tanh",
    "sigmoid",
    "relu",
    "gelu",
    "silu",
    "step",
    "clamp",
    "pow",
    "maximum",
    "minimum",
    "where",
    "sum",
    "mean",
    "max",
    "min",
    "argmax",
    "argmin",
    "prod",
    "norm",
    "shape",
    "rank",
    "reshape",
    "view",
    "broadcast_to",
    "transpose",
    "permute",
    "squeeze",
    "unsqueeze",
    "flatten",
    "concat",
    "stack",
    "split",
    "slice",
    "narrow",
    "select",
    "repeat",
    "gather",
    "index_select",
    "slice_last",
    "cast",
    "to_dtype",
    "contiguous",
    "numel",
    "dtype",
    "matmul",
    "linear",
    "einsum",
    "dot",
    "outer",
    "softmax",
    "log_softmax",
    "rms_norm",
    "layer_norm",
    "embedding",
    "rope",
    "causal_mask",
    "apply_attention_mask",
    "attention",
    "silu_mul",
    "temperature_sample",
    "top_k",
    "top_p",
    "sample",
];

#[test]
fn every_builtin_is_documented_and_unique() {
    let all = builtins::all();
    let mut names = HashSet::new();
    for b in &all {
        assert!(names.insert(b.name), "{} registered twice", b.name);
        // Methods (`KVCache.append`) show a receiver: `cache.append(...)`.
        let head = match b.name.split_once('.') {
            Some((_, method)) => b
                .signature
                .split_once('.')
                .map_or(String::new(), |(_, rest)| rest.to_string())
                .starts_with(&format!("{method}(")),
            None => b.signature.starts_with(&format!("{}(", b.name)),
        };
        assert!(
            head,
            "{}: the signature `{}` must start with the name and `(`",
            b.name, b.signature
        );
        assert!(!b.category.is_empty(), "{}: no category", b.name);
        assert!(
            b.doc.len() >= 60,
            "{}: the doc is too short ({} chars)",
            b.name,
            b.doc.len()
        );
        assert!(
            !b.doc.contains("  "),
            "{}: the doc has a double space",
            b.name
        );
        let found = builtins::lookup(b.name).expect("lookup finds every listed builtin");
        assert_eq!(found.signature, b.signature);
    }
}

#[test]
fn every_tensor_builtin_is_registered() {
    for name in EXPECTED {
        let b = builtins::lookup(name).unwrap_or_else(|| panic!("{name} is not registered"));
        assert!(
            TENSOR_CATEGORIES.contains(&b.category),
            "{name} is in category {}",
            b.category
        );
    }
}

/// Odd argument lists that every tensor builtin must answer with a value or an error, never a
/// panic.
/// Positional and named arguments of one call.
type Arguments = (Vec<Value>, Vec<(&'static str, Value)>);

fn odd_arguments() -> Vec<Arguments> {
    let empty = Tensor::zeros(&[0], DType::F32);
    let empty_rows = Tensor::zeros(&[0, 3], DType::F32);
    let scalar = Tensor::scalar(2.0, DType::F32);
    let matrix = Tensor::from_f64(&[1.0, -2.0, 3.0, 0.5, 0.0, 7.0], &[2, 3], DType::F32).unwrap();
    let half = matrix.cast(DType::F16).unwrap();
    let ids = Tensor::from_i64(vec![0, 5, -1], &[3]).unwrap();
    let flags = Tensor::from_bool(vec![true, false, true], &[3]).unwrap();
    vec![
        (vec![], vec![]),
        (vec![s("text")], vec![]),
        (vec![int(-3)], vec![]),
        (vec![float(0.5)], vec![]),
        (vec![Value::Bool(true)], vec![]),
        (vec![t(&empty)], vec![]),
        (vec![t(&empty_rows)], vec![]),
        (vec![t(&scalar)], vec![]),
        (vec![t(&matrix)], vec![]),
        (vec![t(&half), int(5)], vec![]),
        (vec![t(&matrix), int(-7), int(9)], vec![]),
        (vec![t(&matrix), t(&matrix)], vec![]),
        (vec![t(&matrix), t(&ids)], vec![]),
        (vec![t(&matrix), int(1), t(&ids)], vec![]),
        (vec![t(&flags), t(&matrix), t(&half)], vec![]),
        (vec![t(&empty), t(&empty), t(&empty), t(&empty)], vec![]),
        (vec![list(vec![])], vec![]),
        (vec![list(vec![t(&matrix), s("x")])], vec![]),
        (vec![ints(&[2, -1])], vec![]),
        (vec![t(&matrix), int(i64::MAX), int(i64::MIN)], vec![]),
        (vec![s("ij,jk->ik"), t(&matrix)], vec![]),
        (vec![s("i,,->"), t(&matrix), t(&matrix)], vec![]),
        (vec![t(&matrix)], vec![("dim", int(5)), ("keepdim", int(1))]),
        (vec![t(&matrix)], vec![("dtype", int(3))]),
        (
            vec![t(&matrix)],
            vec![("top_p", float(f64::NAN)), ("top_k", int(i64::MAX))],
        ),
        (vec![t(&ids), int(2)], vec![("nonsense", int(1))]),
    ]
}

#[test]
fn tensor_builtins_never_panic_on_odd_arguments() {
    let mut it = interp();
    for b in builtins::all() {
        if !TENSOR_CATEGORIES.contains(&b.category) {
            continue;
        }
        for (positional, named) in odd_arguments() {
            let shown = format!("{}({positional:?}, {named:?})", b.name);
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                call_named(&mut it, b.name, positional, named)
            }));
            match outcome {
                Err(_) => panic!("{shown} panicked"),
                Ok(Err(e)) => assert!(
                    e.message.starts_with(b.name) || e.message.contains(':'),
                    "{shown}: the message `{}` does not say what failed",
                    e.message
                ),
                Ok(Ok(_)) => {}
            }
        }
    }
}

#[test]
fn errors_carry_the_call_span() {
    let mut it = interp();
    let a = Tensor::zeros(&[3, 4], DType::F32);
    let b = Tensor::zeros(&[5, 6], DType::F32);
    let err = call(&mut it, "matmul", vec![t(&a), t(&b)]).unwrap_err();
    assert!(err.span.is_some(), "tensor errors get the call's span");
    assert!(err.message.starts_with("matmul"), "{}", err.message);
    let err = call(&mut it, "reshape", vec![t(&a), s("x")]).unwrap_err();
    assert!(err.span.is_some());
    assert!(err.message.starts_with("reshape: "), "{}", err.message);
}
