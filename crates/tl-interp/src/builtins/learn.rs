//! Learning builtins: `grad` (reverse-mode gradients of a function), `save_tensors` and
//! `load_tensors` (safetensors files). The `learn { }` statement lives in `eval::learn`.

use std::collections::BTreeMap;
use std::path::Path;
use std::rc::Rc;

use tl_tensor::Tensor;

use super::{Builtin, CallArgs};
use crate::error::{Result, RuntimeError};
use crate::interp::Interpreter;
use crate::value::Value;

pub static BUILTINS: &[Builtin] = &[
    Builtin {
        name: "grad",
        signature: "grad(f: function, x: tensor | list) -> tensor | list",
        category: "learning",
        doc: "Reverse-mode gradient. `grad(f, x)` calls f(x), which must return a one-element \
              tensor, and returns d f / d x (a tensor of x's shape). `grad(f, [a, b, ...])` \
              calls f(a, b, ...) and returns the list of gradients, one per argument. f is a \
              user function or a builtin; every differentiable op it runs is recorded \
              (elementwise, reductions including prod, matmul, linear, einsum, softmax, \
              log_softmax, norms, rope, attention, embedding, gather, index_select, \
              reshape/transpose/permute/slice/concat/stack). An argument f does not depend on \
              gets zeros. Errors: x not a float tensor, f returning more than one number, an \
              op with no gradient (%, in-place writes): \"not supported yet: the gradient of \
              ...\".",
        func: grad,
    },
    Builtin {
        name: "save_tensors",
        signature: "save_tensors(path: string, names: list = all learnable) -> int",
        category: "learning",
        doc: "Writes tensors to a safetensors file at `path`: the variables named in `names` (a \
              list of strings, e.g. [\"W\", \"b\"]), or every learnable tensor (declared \
              `learnable`, or a float `tensor` declared without a value) when `names` is \
              omitted. Each is stored under its variable name in its dtype (float32, \
              float16, bfloat16, int64, bool); device tensors are read back first. Returns the \
              number of tensors written. Errors: a name that is not a tensor variable, a file \
              that cannot be written.",
        func: save_tensors,
    },
    Builtin {
        name: "load_tensors",
        signature: "load_tensors(path: string) -> record",
        category: "learning",
        doc: "Reads every tensor of a safetensors file (float32, float16, bfloat16, int64, \
              int32 as int64, bool) into a record keyed by tensor name: \
              `let saved = load_tensors(\"model.safetensors\"); W = saved.W`. Tensors are \
              placed on the current device. Errors: a missing or malformed file.",
        func: load_tensors,
    },
];

fn grad(interp: &mut Interpreter, args: &mut CallArgs) -> Result<Value> {
    args.expect_count(2, 2)?;
    args.expect_named(&[])?;
    let f = args.get(0).cloned().unwrap_or_default();
    let span = args.span;
    let (inputs, as_list) = match args.get(1) {
        Some(Value::List(items)) => {
            let mut v = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let t = crate::convert::to_tensor(item).ok_or_else(|| {
                    args.arg_error(
                        1,
                        format!(
                            "item {i} of the list must be a tensor, got {}",
                            item.type_name()
                        ),
                    )
                })?;
                v.push(t);
            }
            (v, true)
        }
        _ => (vec![args.tensor(1)?], false),
    };
    let mut leaves = Vec::with_capacity(inputs.len());
    for t in &inputs {
        leaves.push(t.requires_grad().map_err(|e| args.arg_error(1, e.0))?);
    }
    let positional: Vec<(Value, tl_syntax::Span)> = leaves
        .iter()
        .map(|t| (Value::Tensor(t.clone()), span))
        .collect();
    let result = match f {
        Value::Function(func) => {
            interp.call_function(&func, positional, Vec::new(), span, false)?
        }
        Value::Builtin(b) => interp.call_builtin(b, positional, Vec::new(), span)?,
        other => {
            return Err(args.arg_error(
                0,
                format!(
                    "the first argument must be a function, got {}",
                    other.type_name()
                ),
            ));
        }
    };
    let loss = match result {
        Value::Tensor(t) => t,
        Value::Int(_) | Value::Float(_) => {
            // A constant: every gradient is zero.
            return Ok(wrap(inputs.iter().map(zeros_of).collect(), as_list));
        }
        other => {
            return Err(args.error(format!(
                "the function must return a one-element tensor, got {}",
                other.type_name()
            )));
        }
    };
    if loss.numel() != 1 {
        return Err(args.error(format!(
            "the function must return a one-element tensor (a loss), got shape {:?}",
            loss.shape()
        )));
    }
    let refs: Vec<&Tensor> = leaves.iter().collect();
    let grads = tl_tensor::autograd::backward(&loss, &refs).map_err(|e| args.error(e.0))?;
    Ok(wrap(grads, as_list))
}

fn zeros_of(t: &Tensor) -> Tensor {
    Tensor::zeros(t.shape(), t.dtype())
}

fn wrap(grads: Vec<Tensor>, as_list: bool) -> Value {
    let mut values: Vec<Value> = grads.into_iter().map(Value::Tensor).collect();
    if as_list {
        Value::List(Rc::new(values))
    } else {
        values.pop().unwrap_or_default()
    }
}

fn save_tensors(interp: &mut Interpreter, args: &mut CallArgs) -> Result<Value> {
    args.expect_count(1, 2)?;
    args.expect_named(&[])?;
    let path = args.string(0)?;
    let names: Vec<String> = match args.get(1) {
        None => interp.learnable.clone(),
        Some(Value::List(items)) => {
            let mut v = Vec::with_capacity(items.len());
            for item in items.iter() {
                match item {
                    Value::Str(s) => v.push(s.to_string()),
                    other => {
                        return Err(args.arg_error(
                            1,
                            format!(
                                "names must be strings (variable names such as \"W\"), got {}",
                                other.type_name()
                            ),
                        ));
                    }
                }
            }
            v
        }
        Some(other) => {
            return Err(args.arg_error(
                1,
                format!("names must be a list of strings, got {}", other.type_name()),
            ));
        }
    };
    let mut tensors = Vec::with_capacity(names.len());
    for name in &names {
        match interp.lookup_var(name) {
            Some(Value::Tensor(t)) => tensors.push((name.clone(), t.detach())),
            Some(other) => {
                return Err(args.arg_error(
                    1,
                    format!("`{name}` is {}, not a tensor", other.type_name()),
                ));
            }
            None => {
                return Err(args.arg_error(1, format!("no variable named `{name}`")));
            }
        }
    }
    tl_models::safetensors::write_safetensors(Path::new(&path), &tensors, &[])
        .map_err(|e| args.arg_error(0, e.to_string()))?;
    Ok(Value::Int(tensors.len() as i64))
}

fn load_tensors(_interp: &mut Interpreter, args: &mut CallArgs) -> Result<Value> {
    args.expect_count(1, 1)?;
    args.expect_named(&[])?;
    let path = args.string(0)?;
    let loaded = tl_models::safetensors::read_safetensors(Path::new(&path))
        .map_err(|e| args.arg_error(0, e.to_string()))?;
    let mut record = BTreeMap::new();
    for (name, t) in loaded {
        let t = t
            .to_default_device()
            .map_err(|e| RuntimeError::without_span(e.0))?;
        record.insert(name, Value::Tensor(t));
    }
    Ok(Value::Record(Rc::new(record)))
}
