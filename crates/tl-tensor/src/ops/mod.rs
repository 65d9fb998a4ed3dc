//! `Tensor` methods, grouped by kind. Each method checks its arguments on the host, builds a
//! view when only the layout changes, and otherwise hands the data work to the tensor's
//! [`crate::Backend`].

pub mod creation;
pub mod einsum;
pub mod elementwise;
pub mod index;
pub mod linalg;
pub mod nn;
pub mod quantized;
pub mod reduce;
pub mod shape;
pub mod write;

pub use elementwise::{BinaryOp, UnaryOp};
pub use linalg::LinearFusion;
pub use reduce::ReduceOp;

pub(crate) use quantized::{quantized_unsupported, refuse_quantized};
