//! `tl-tensor` owns the tensor runtime: [`Tensor`] (shape, strides, dtype, storage handle),
//! the dtypes, the [`Backend`] trait every device implements, and the CPU backend, which is
//! the reference for all others. It knows nothing of the language.
//!
//! Host storage is a [`HostBuf`]: an owned vector or a zero-copy view of shared bytes (a
//! memory-mapped model file), copied on first write. The GGUF block formats live in
//! [`quant`] (dequantize, quantize, packed mat-vec kernels); tensors of a quantized dtype
//! (`q4_0`, ...) stay packed and are read directly by `linear`, `embedding` and casts.
//!
//! [`autograd`] is reverse-mode automatic differentiation over these ops (the graph is kept in
//! the tensors, the gradient formulas are tensor ops); [`optim`] holds the optimizers (SGD,
//! Adam, AdamW) and learning-rate schedules that `learn` blocks use.

pub mod autograd;
pub mod backend;
pub mod cpu;
pub mod device;
pub mod dtype;
pub mod error;
mod format;
pub mod hostbuf;
pub mod layout;
pub mod ops;
pub mod optim;
pub mod quant;
pub mod random;
pub mod stats;
pub mod storage;
pub mod tensor;

pub use backend::Backend;
pub use device::Device;
pub use dtype::DType;
pub use error::{Result, TensorError};
pub use hostbuf::{HostBuf, SharedBytes};
pub use layout::Layout;
pub use ops::{BinaryOp, ReduceOp, UnaryOp};
pub use quant::GgmlType;
pub use random::TensorRng;
pub use stats::Stats;
pub use storage::{CpuStorage, Storage};
pub use tensor::Tensor;
