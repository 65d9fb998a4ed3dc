//! Model files for TensorLogic.
//!
//! - [`gguf::GgufFile`]: GGUF v1-v3 reader, memory-mapped; metadata of every value type, tensor
//!   infos (dims in GGML `ne` order and `shape()` row-major), bounds-checked `tensor_bytes`.
//! - [`gguf_write::GgufWriter`]: GGUF writer (metadata of every type, tensors streamed one by
//!   one); [`synthetic`] writes random-weight Llama models with it (for benchmarks and tests).
//! - [`safetensors::SafetensorsFile`]: memory-mapped safetensors reader; Hugging Face Llama names
//!   mapped to GGUF names ([`hf_to_gguf_name`]), `config.json` read under GGUF metadata keys.
//! - [`quant`]: GGML element formats (F32, F16, BF16, Q4_0, Q4_1, Q8_0, Q4_K, Q5_K, Q6_K):
//!   `dequantize_row`, `quantize_row` (floats, Q8_0, Q4_0) and a mat-vec that reads the packed
//!   blocks directly.
//! - [`Model`]: either format behind one namespace (GGUF names and keys, q/k rows in GGUF's
//!   adjacent-pairs RoPE order), float tensors as `tl_tensor::Tensor`, raw packed bytes for
//!   quantized kernels, explicit per-tensor `dequantize`.
//! - [`Tokenizer`]: the vocabulary inside a GGUF file (SentencePiece and byte-level BPE) or a
//!   Hugging Face `tokenizer.json`; `encode`, `decode`, a [`StreamDecoder`] for one generated
//!   token at a time, and the model's chat template ([`chat_template`], MiniJinja).
//!
//! Every error is a [`ModelError`] naming the file, the tensor (if any) and the problem.

pub mod chat_template;
pub mod error;
pub mod gguf;
pub mod gguf_write;
pub mod model;
pub mod quant;
pub mod safetensors;
pub mod synthetic;
pub mod tokenizer;

pub use chat_template::{ChatMessage, DEFAULT_CHAT_TEMPLATE, render_chat_template};
pub use error::{ModelError, Result};
pub use gguf::{GgufFile, GgufTensorInfo, MetaValue};
pub use gguf_write::{GgufDataWriter, GgufEncoder, GgufWriter};
pub use model::{Model, ModelConfig, ModelFormat, RawTensor, TensorDesc};
pub use quant::{GgmlType, dequantize_row, matvec, matvec_with_threads, quantize_row};
pub use safetensors::{SafetensorsFile, hf_to_gguf_name, rope_permutation};
pub use synthetic::{LlamaShape, write_random_llama};
pub use tokenizer::{StreamDecoder, Tokenizer};
