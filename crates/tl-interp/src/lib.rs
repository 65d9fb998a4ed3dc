//! `tl-interp` owns the evaluation of TensorLogic programs: values, scopes, the evaluator, the
//! builtin registry (one table: name, signature, doc, implementation) and imports. It reaches
//! devices only through `tl-tensor`; it never talks to CUDA.

pub mod builtins;
pub mod convert;
pub mod error;
pub mod interp;
pub mod value;

pub use error::{Result, RuntimeError};
pub use interp::Interpreter;
pub use value::Value;
