//! Conversions between host values and tensors, shared by the evaluator and the builtins.

use tl_tensor::{DType, Tensor};

use crate::value::Value;

/// A host int, or a one-element integer/bool tensor.
pub fn to_int(v: &Value) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
        Value::Bool(b) => Some(*b as i64),
        Value::Tensor(t) if t.numel() == 1 && !t.dtype().is_float() => {
            t.to_vec_i64().first().copied()
        }
        _ => None,
    }
}

/// A host number, or a one-element tensor.
pub fn to_float(v: &Value) -> Option<f64> {
    match v {
        Value::Int(i) => Some(*i as f64),
        Value::Float(f) => Some(*f),
        Value::Tensor(t) if t.numel() == 1 => t.to_scalar_f64().ok(),
        _ => None,
    }
}

/// A tensor from a tensor, a host number (float32 rank 0; ints become int64), a bool, or a
/// rectangular nested list of numbers (float32).
pub fn to_tensor(v: &Value) -> Option<Tensor> {
    match v {
        Value::Tensor(t) => Some(t.clone()),
        Value::Int(i) => Some(Tensor::scalar(*i as f64, DType::I64)),
        Value::Float(f) => Some(Tensor::scalar(*f, DType::F32)),
        Value::Bool(b) => Some(Tensor::scalar(*b as u8 as f64, DType::Bool)),
        Value::List(_) => {
            let mut shape = Vec::new();
            let mut data = Vec::new();
            flatten_list(v, 0, &mut shape, &mut data)?;
            // Literal lists live where the run's tensors do (`--device`).
            Tensor::from_f64(&data, &shape, DType::F32)
                .ok()?
                .to_default_device()
                .ok()
        }
        _ => None,
    }
}

fn flatten_list(
    v: &Value,
    depth: usize,
    shape: &mut Vec<usize>,
    data: &mut Vec<f64>,
) -> Option<()> {
    match v {
        Value::List(items) => {
            if shape.len() == depth {
                shape.push(items.len());
            } else if shape.len() < depth || shape[depth] != items.len() {
                return None;
            }
            for item in items.iter() {
                flatten_list(item, depth + 1, shape, data)?;
            }
            Some(())
        }
        _ => {
            if shape.len() != depth {
                return None;
            }
            data.push(to_float(v)?);
            Some(())
        }
    }
}
