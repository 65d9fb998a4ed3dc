//! Host objects that programs hold as values: models (a namespace of named tensors), KV caches,
//! tokenizers and their streaming decoders. Each implements [`crate::value::Object`]; their
//! methods are registry entries named `Type.method`.

pub mod kv_cache;
pub mod model;
pub mod tokenizer;

use std::rc::Rc;

use crate::value::{Object, Value};

/// The object of type `T` inside `v`, if `v` is one.
pub fn downcast<T: Object>(v: &Value) -> Option<Rc<dyn Object>> {
    match v {
        Value::Object(o) if o.as_any().is::<T>() => Some(o.clone()),
        _ => None,
    }
}
