//! Host objects that programs hold as values: models (a namespace of named tensors), KV caches,
//! tokenizers and their streaming decoders. Each implements [`crate::value::Object`]; their
//! methods are registry entries named `Type.method`.

pub mod kv_cache;
pub mod model;
pub mod tokenizer;
