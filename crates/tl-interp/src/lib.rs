//! `tl-interp` owns the evaluation of TensorLogic programs: values, scopes, the evaluator, the
//! builtin registry (one table: name, signature, doc, implementation) and imports. It reaches
//! devices only through `tl-tensor`; it never talks to CUDA.

pub mod builtins;
mod check;
pub mod convert;
pub mod error;
mod eval;
pub mod format;
pub mod interp;
mod load;
pub mod objects;
mod optim;
mod suggest;
pub mod value;

pub use error::{Result, RuntimeError};
pub use format::format_value;
pub use interp::{Interpreter, Options, SharedBuffer, TestSummary};
pub use value::Value;
