//! Random-weight Llama models in GGUF, for speed benchmarks and tests: the shape of a real model
//! (TinyLlama-1.1B by default) with seeded random weights, written by [`write_random_llama`].
//!
//! Every matrix is a window of one pool of N(0, 0.02^2) values that is packed once into the
//! file's element type (with [`crate::quantize_row`], GGML's reference rounding) and reused, so
//! writing 1.1B weights is mostly disk I/O. Matrices larger than the pool repeat it, which does
//! not matter for timing. Norm weights are F32, 1 + N(0, 0.1^2). The vocabulary is synthetic but
//! complete for SentencePiece: `<unk>`, `<s>`, `</s>`, the 256 byte tokens `<0xNN>` (so every
//! text encodes), the word-start mark `▁`, then `<extra_N>` up to the vocabulary size. The metadata keys are those of
//! llama.cpp's Llama GGUF files (`tools/bench/make_tinyllama_shaped.py` writes the same).

use crate::error::{ModelError, Result};
use crate::gguf::MetaValue;
use crate::gguf_write::GgufWriter;
use crate::quant::{GgmlType, quantize_row};
use std::path::Path;
use tl_tensor::random::TensorRng;

/// The hyper-parameters of a Llama decoder.
#[derive(Debug, Clone, PartialEq)]
pub struct LlamaShape {
    pub n_layers: usize,
    pub d_model: usize,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub ffn_dim: usize,
    pub vocab_size: usize,
    pub context_length: usize,
    pub rope_theta: f32,
    pub rms_norm_eps: f32,
}

/// Values per pool block (the Q8_0/Q4_0 block size; every row is a whole number of them).
const BLOCK: usize = 32;
/// Blocks in the value pool (32 Mi values, as in make_tinyllama_shaped.py).
const POOL_BLOCKS: usize = 1 << 20;
const WEIGHT_STD: f64 = 0.02;
/// Tokens before the `<extra_N>` filler: `<unk>`, `<s>`, `</s>`, 256 byte tokens and `▁`.
const BASE_VOCAB: usize = 3 + 256 + 1;

impl LlamaShape {
    /// TinyLlama-1.1B: 22 layers, d_model 2048, 32 heads, 4 KV heads (head_dim 64), FFN 5632,
    /// vocab 32000, context 2048, RoPE theta 10000, RMSNorm eps 1e-5, untied output.
    pub fn tinyllama_1_1b() -> LlamaShape {
        LlamaShape {
            n_layers: 22,
            d_model: 2048,
            n_heads: 32,
            n_kv_heads: 4,
            ffn_dim: 5632,
            vocab_size: 32000,
            context_length: 2048,
            rope_theta: 10000.0,
            rms_norm_eps: 1e-5,
        }
    }

    /// A small model for quick checks (2 layers, d_model 64, 4 heads, 2 KV heads, FFN 128,
    /// vocab 512): a few hundred kilobytes.
    pub fn tiny() -> LlamaShape {
        LlamaShape {
            n_layers: 2,
            d_model: 64,
            n_heads: 4,
            n_kv_heads: 2,
            ffn_dim: 128,
            vocab_size: 512,
            context_length: 1024,
            rope_theta: 10000.0,
            rms_norm_eps: 1e-5,
        }
    }

    pub fn head_dim(&self) -> usize {
        self.d_model / self.n_heads
    }

    /// Every tensor as (GGUF name, row-major shape), in llama.cpp's order.
    pub fn tensors(&self) -> Vec<(String, Vec<usize>)> {
        let (d, ffn) = (self.d_model, self.ffn_dim);
        let kv = self.n_kv_heads * self.head_dim();
        let mut out = vec![("token_embd.weight".to_string(), vec![self.vocab_size, d])];
        for i in 0..self.n_layers {
            let p = format!("blk.{i}.");
            for (name, shape) in [
                ("attn_norm.weight", vec![d]),
                ("attn_q.weight", vec![d, d]),
                ("attn_k.weight", vec![kv, d]),
                ("attn_v.weight", vec![kv, d]),
                ("attn_output.weight", vec![d, d]),
                ("ffn_norm.weight", vec![d]),
                ("ffn_gate.weight", vec![ffn, d]),
                ("ffn_up.weight", vec![ffn, d]),
                ("ffn_down.weight", vec![d, ffn]),
            ] {
                out.push((format!("{p}{name}"), shape));
            }
        }
        out.push(("output_norm.weight".into(), vec![d]));
        out.push(("output.weight".into(), vec![self.vocab_size, d]));
        out
    }

    /// Checks that the shape can be written: heads divide evenly, rows are whole blocks, the
    /// vocabulary holds the special and byte tokens.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(ModelError::new(format!("Llama shape: {m}")));
        if self.n_layers == 0 || self.n_heads == 0 || self.n_kv_heads == 0 {
            return bad("layers, heads and KV heads must be positive".into());
        }
        if !self.d_model.is_multiple_of(self.n_heads)
            || !self.n_heads.is_multiple_of(self.n_kv_heads)
        {
            return bad(format!(
                "d_model {} must split into {} heads, and those into {} KV-head groups",
                self.d_model, self.n_heads, self.n_kv_heads
            ));
        }
        if !self.head_dim().is_multiple_of(2) {
            return bad(format!(
                "head_dim {} must be even (RoPE rotates pairs)",
                self.head_dim()
            ));
        }
        if !self.d_model.is_multiple_of(BLOCK) || !self.ffn_dim.is_multiple_of(BLOCK) {
            return bad(format!(
                "d_model {} and ffn_dim {} must be multiples of {BLOCK} (whole quantization blocks)",
                self.d_model, self.ffn_dim
            ));
        }
        if self.vocab_size < BASE_VOCAB {
            return bad(format!(
                "vocab_size {} is below the {BASE_VOCAB} special and byte tokens",
                self.vocab_size
            ));
        }
        Ok(())
    }
}

/// llama.cpp's `general.file_type` for a file whose matrices are `kind`.
fn file_type(kind: GgmlType) -> Option<u32> {
    match kind {
        GgmlType::F32 => Some(0),
        GgmlType::F16 => Some(1),
        GgmlType::Q4_0 => Some(2),
        GgmlType::Q8_0 => Some(7),
        GgmlType::BF16 => Some(32),
        _ => None,
    }
}

fn put_vocabulary(w: &mut GgufWriter, vocab_size: usize) {
    let mut tokens = vec!["<unk>".to_string(), "<s>".into(), "</s>".into()];
    // llama_token_type: 1 normal, 2 unknown, 3 control, 6 byte.
    let mut types = vec![2, 3, 3];
    tokens.extend((0..256).map(|b| format!("<0x{b:02X}>")));
    types.extend([6; 256]);
    // SentencePiece's word-start mark, so that spaces decode as spaces.
    tokens.push("\u{2581}".into());
    types.push(1);
    tokens.extend((BASE_VOCAB..vocab_size).map(|i| format!("<extra_{i}>")));
    types.resize(vocab_size, 1);
    let scores: Vec<MetaValue> = (0..vocab_size)
        .map(|i| {
            MetaValue::F32(if i < BASE_VOCAB {
                0.0
            } else {
                -1000.0 - i as f32
            })
        })
        .collect();
    w.metadata("tokenizer.ggml.model", MetaValue::String("llama".into()))
        .metadata(
            "tokenizer.ggml.tokens",
            MetaValue::Array(tokens.into_iter().map(MetaValue::String).collect()),
        )
        .metadata("tokenizer.ggml.scores", MetaValue::Array(scores))
        .metadata(
            "tokenizer.ggml.token_type",
            MetaValue::Array(types.into_iter().map(MetaValue::I32).collect()),
        )
        .metadata("tokenizer.ggml.bos_token_id", MetaValue::U32(1))
        .metadata("tokenizer.ggml.eos_token_id", MetaValue::U32(2))
        .metadata("tokenizer.ggml.unknown_token_id", MetaValue::U32(0))
        .metadata("tokenizer.ggml.add_bos_token", MetaValue::Bool(true))
        .metadata("tokenizer.ggml.add_eos_token", MetaValue::Bool(false));
}

/// Declares the metadata and tensors of a random Llama of `shape` with matrices in `kind`.
fn declare(shape: &LlamaShape, kind: GgmlType) -> Result<GgufWriter> {
    let ft = file_type(kind).ok_or_else(|| {
        ModelError::new(format!(
            "random Llama weights can be F32, F16, BF16, Q8_0 or Q4_0, not {}",
            kind.name()
        ))
    })?;
    shape.validate()?;
    let name = format!("llama-shaped-random-{}", kind.name().to_lowercase());
    let u = |v: usize| MetaValue::U32(v as u32);
    let mut w = GgufWriter::new();
    w.metadata("general.architecture", MetaValue::String("llama".into()))
        .metadata("general.name", MetaValue::String(name))
        .metadata("llama.context_length", u(shape.context_length))
        .metadata("llama.embedding_length", u(shape.d_model))
        .metadata("llama.block_count", u(shape.n_layers))
        .metadata("llama.feed_forward_length", u(shape.ffn_dim))
        .metadata("llama.attention.head_count", u(shape.n_heads))
        .metadata("llama.attention.head_count_kv", u(shape.n_kv_heads))
        .metadata("llama.rope.dimension_count", u(shape.head_dim()))
        .metadata("llama.rope.freq_base", MetaValue::F32(shape.rope_theta))
        .metadata(
            "llama.attention.layer_norm_rms_epsilon",
            MetaValue::F32(shape.rms_norm_eps),
        )
        .metadata("llama.vocab_size", u(shape.vocab_size))
        .metadata("general.file_type", MetaValue::U32(ft));
    if kind.block_size() > 1 {
        w.metadata("general.quantization_version", MetaValue::U32(2));
    }
    put_vocabulary(&mut w, shape.vocab_size);
    for (name, dims) in shape.tensors() {
        let k = if dims.len() == 1 { GgmlType::F32 } else { kind };
        w.tensor(&name, &dims, k)?;
    }
    Ok(w)
}

/// The size in bytes of the file [`write_random_llama`] writes.
pub fn random_llama_file_size(shape: &LlamaShape, kind: GgmlType) -> Result<u64> {
    declare(shape, kind)?.file_size()
}

/// Writes a random-weight Llama of `shape` to `path`: matrices in `kind` (F32, F16, BF16, Q8_0
/// or Q4_0), norms in F32, weights from `seed` (the same seed gives the same file).
/// `progress(bytes written, file size)` is called after each tensor (padding not counted).
pub fn write_random_llama(
    path: &Path,
    shape: &LlamaShape,
    kind: GgmlType,
    seed: u64,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<()> {
    let writer = declare(shape, kind)?;
    let total = writer.file_size()?;
    let mut rng = TensorRng::seed_from_u64(seed);
    // The pool need not be larger than all matrices together (small shapes stay small).
    let matrix_blocks: usize = shape
        .tensors()
        .iter()
        .filter(|(_, d)| d.len() == 2)
        .map(|(_, d)| d[0] * d[1] / BLOCK)
        .sum();
    let pool_blocks = matrix_blocks.min(POOL_BLOCKS);
    let values: Vec<f32> = (0..pool_blocks * BLOCK)
        .map(|_| (rng.normal() * WEIGHT_STD) as f32)
        .collect();
    let pool = quantize_row(kind, &values).map_err(|e| e.in_context(path, None))?;
    drop(values);
    let block_bytes = pool.len() / pool_blocks;
    let norm: Vec<u8> = (0..shape.d_model)
        .flat_map(|_| ((1.0 + 0.1 * rng.normal()) as f32).to_le_bytes())
        .collect();

    let mut data = writer.create(path)?;
    let mut written = writer.header_bytes()?.len() as u64;
    progress(written, total);
    while let Some((_, dims, _)) = data.next_tensor() {
        if dims.len() == 1 {
            data.write_tensor(&norm)?;
            written += norm.len() as u64;
        } else {
            // Blocks start..start+n of the pool, wrapping around.
            let n = dims[0] * dims[1] / BLOCK;
            let start = rng.int_in(0, pool_blocks as i64) as usize;
            let mut parts: Vec<&[u8]> = Vec::new();
            let (mut at, mut left) = (start, n);
            while left > 0 {
                let take = left.min(pool_blocks - at);
                parts.push(&pool[at * block_bytes..(at + take) * block_bytes]);
                left -= take;
                at = 0;
            }
            data.write_tensor_parts(&parts)?;
            written += (n * block_bytes) as u64;
        }
        progress(written, total);
    }
    data.finish()?;
    progress(total, total);
    Ok(())
}
