//! Safetensors reader (memory-mapped) and the mapping of Hugging Face Llama checkpoints onto the
//! GGUF names and metadata keys, so that a program sees one namespace whatever the file format.
//!
//! Format: a u64 little-endian header length N, N bytes of JSON
//! `{"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, "__metadata__": {..}}`,
//! then the data; offsets are relative to the end of the header.

use crate::error::{ModelError, Result};
use crate::gguf::MetaValue;
use memmap2::Mmap;
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Largest header accepted (the format's own limit is 100 MB).
const MAX_HEADER: u64 = 100 << 20;

/// Element types named in safetensors headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StDtype {
    Bool,
    U8,
    I8,
    U16,
    I16,
    F16,
    BF16,
    U32,
    I32,
    F32,
    U64,
    I64,
    F64,
    F8E4M3,
    F8E5M2,
}

impl StDtype {
    pub fn from_name(name: &str) -> Option<StDtype> {
        use StDtype::*;
        Some(match name {
            "BOOL" => Bool,
            "U8" => U8,
            "I8" => I8,
            "U16" => U16,
            "I16" => I16,
            "F16" => F16,
            "BF16" => BF16,
            "U32" => U32,
            "I32" => I32,
            "F32" => F32,
            "U64" => U64,
            "I64" => I64,
            "F64" => F64,
            "F8_E4M3" => F8E4M3,
            "F8_E5M2" => F8E5M2,
            _ => return None,
        })
    }

    pub fn size(self) -> usize {
        use StDtype::*;
        match self {
            Bool | U8 | I8 | F8E4M3 | F8E5M2 => 1,
            U16 | I16 | F16 | BF16 => 2,
            U32 | I32 | F32 => 4,
            U64 | I64 | F64 => 8,
        }
    }
}

/// One tensor of a safetensors file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StTensorInfo {
    pub name: String,
    pub dtype: StDtype,
    /// Row-major shape.
    pub shape: Vec<usize>,
    /// Byte range relative to the start of the data section.
    pub begin: usize,
    pub end: usize,
}

/// An open safetensors file.
pub struct SafetensorsFile {
    path: PathBuf,
    map: std::sync::Arc<Mmap>,
    data_start: usize,
    tensors: Vec<StTensorInfo>,
    index: HashMap<String, usize>,
    metadata: HashMap<String, String>,
}

impl std::fmt::Debug for SafetensorsFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SafetensorsFile")
            .field("path", &self.path)
            .field("tensors", &self.tensors.len())
            .finish()
    }
}

impl SafetensorsFile {
    pub fn open(path: impl AsRef<Path>) -> Result<SafetensorsFile> {
        let path = path.as_ref();
        let map = crate::error::map_file(path, "safetensors")?;
        let len = map.len() as u64;
        let header_len = u64::from_le_bytes(map[0..8].try_into().expect("8 bytes"));
        if header_len > MAX_HEADER || header_len > len - 8 {
            return Err(ModelError::file(
                path,
                format!(
                    "not a safetensors file or truncated: header length {header_len} does not fit in the file ({len} bytes)"
                ),
            ));
        }
        let data_start = 8 + header_len as usize;
        let header: Value = serde_json::from_slice(&map[8..data_start]).map_err(|e| {
            ModelError::file(path, format!("safetensors header is not valid JSON: {e}"))
        })?;
        let Value::Object(entries) = header else {
            return Err(ModelError::file(
                path,
                "safetensors header is not a JSON object",
            ));
        };
        let data_len = map.len() - data_start;
        let mut tensors = Vec::new();
        let mut metadata = HashMap::new();
        for (name, entry) in entries {
            if name == "__metadata__" {
                if let Value::Object(m) = entry {
                    for (k, v) in m {
                        if let Value::String(s) = v {
                            metadata.insert(k, s);
                        }
                    }
                }
                continue;
            }
            let terr = |p: String| ModelError::tensor(path, &name, p);
            let dtype_name = entry
                .get("dtype")
                .and_then(Value::as_str)
                .ok_or_else(|| terr("has no dtype".into()))?;
            let dtype = StDtype::from_name(dtype_name)
                .ok_or_else(|| terr(format!("unknown dtype '{dtype_name}'")))?;
            let shape = entry
                .get("shape")
                .and_then(Value::as_array)
                .and_then(|a| {
                    a.iter()
                        .map(|d| d.as_u64().and_then(|d| usize::try_from(d).ok()))
                        .collect::<Option<Vec<_>>>()
                })
                .ok_or_else(|| {
                    terr("has no valid shape (a list of non-negative integers)".into())
                })?;
            let offsets = entry
                .get("data_offsets")
                .and_then(Value::as_array)
                .and_then(|a| {
                    a.iter()
                        .map(|d| d.as_u64().and_then(|d| usize::try_from(d).ok()))
                        .collect::<Option<Vec<_>>>()
                })
                .filter(|o| o.len() == 2)
                .ok_or_else(|| {
                    terr("has no valid data_offsets (two non-negative integers)".into())
                })?;
            let (begin, end) = (offsets[0], offsets[1]);
            if begin > end {
                return Err(terr(format!("data_offsets [{begin}, {end}] are reversed")));
            }
            if end > data_len {
                return Err(terr(format!(
                    "data [{begin}, {end}) runs past the end of the file (the data section has {data_len} bytes)"
                )));
            }
            let need = shape
                .iter()
                .try_fold(dtype.size(), |a, &d| a.checked_mul(d))
                .ok_or_else(|| terr(format!("shape {shape:?} overflows")))?;
            if need != end - begin {
                return Err(terr(format!(
                    "shape {shape:?} of {dtype_name} needs {need} bytes, but data_offsets give {} bytes",
                    end - begin
                )));
            }
            tensors.push(StTensorInfo {
                name,
                dtype,
                shape,
                begin,
                end,
            });
        }
        tensors.sort_by_key(|t| t.begin);
        for pair in tensors.windows(2) {
            if pair[0].end > pair[1].begin {
                return Err(ModelError::tensor(
                    path,
                    &pair[0].name,
                    format!("data overlaps the data of tensor '{}'", pair[1].name),
                ));
            }
        }
        let index = tensors
            .iter()
            .enumerate()
            .map(|(i, t)| (t.name.clone(), i))
            .collect();
        Ok(SafetensorsFile {
            path: path.to_path_buf(),
            map: std::sync::Arc::new(map),
            data_start,
            tensors,
            index,
            metadata,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Tensors in data order.
    pub fn tensors(&self) -> &[StTensorInfo] {
        &self.tensors
    }

    pub fn tensor_info(&self, name: &str) -> Option<&StTensorInfo> {
        self.index.get(name).map(|&i| &self.tensors[i])
    }

    /// The `__metadata__` string map of the header.
    pub fn metadata(&self) -> &HashMap<String, String> {
        &self.metadata
    }

    /// The memory map of the whole file, shared (tensors view it without copying).
    pub fn shared_map(&self) -> std::sync::Arc<Mmap> {
        self.map.clone()
    }

    /// The raw bytes of a tensor (a slice of the map; bounds were checked when opening).
    pub fn tensor_bytes(&self, name: &str) -> Result<&[u8]> {
        let t = self
            .tensor_info(name)
            .ok_or_else(|| ModelError::tensor(&self.path, name, "no such tensor in the file"))?;
        Ok(&self.map[self.data_start + t.begin..self.data_start + t.end])
    }
}

/// The GGUF name of a Hugging Face Llama tensor name, or `None` for names outside the mapping.
pub fn hf_to_gguf_name(name: &str) -> Option<String> {
    match name {
        "model.embed_tokens.weight" => return Some("token_embd.weight".into()),
        "model.norm.weight" => return Some("output_norm.weight".into()),
        "lm_head.weight" => return Some("output.weight".into()),
        _ => {}
    }
    let rest = name.strip_prefix("model.layers.")?;
    let (layer, rest) = rest.split_once('.')?;
    let layer: usize = layer.parse().ok()?;
    let (module, suffix) = match rest.rsplit_once('.') {
        Some((m, s @ ("weight" | "bias"))) => (m, s),
        _ => return None,
    };
    let gguf = match module {
        "self_attn.q_proj" => "attn_q",
        "self_attn.k_proj" => "attn_k",
        "self_attn.v_proj" => "attn_v",
        "self_attn.o_proj" => "attn_output",
        "mlp.gate_proj" => "ffn_gate",
        "mlp.up_proj" => "ffn_up",
        "mlp.down_proj" => "ffn_down",
        "input_layernorm" => "attn_norm",
        "post_attention_layernorm" => "ffn_norm",
        _ => return None,
    };
    Some(format!("blk.{layer}.{gguf}.{suffix}"))
}

/// The row order that turns a rotate-half q/k projection (Hugging Face) into an adjacent-pairs
/// one (GGUF), as llama.cpp's converter does: within each head of `head_dim` rows, new row 2j is
/// old row j and new row 2j + 1 is old row j + head_dim / 2. `result[new] = old`.
pub fn rope_permutation(n_heads: usize, head_dim: usize) -> Vec<usize> {
    let half = head_dim / 2;
    let mut order = Vec::with_capacity(n_heads * head_dim);
    for h in 0..n_heads {
        for j in 0..half {
            order.push(h * head_dim + j);
            order.push(h * head_dim + j + half);
        }
    }
    order
}

/// Reads a Hugging Face `config.json` and returns its values under the GGUF metadata keys
/// (`general.architecture`, `llama.embedding_length`, `llama.attention.head_count`, ...), typed
/// as GGUF files type them (counts u32, floats f32).
pub fn read_hf_config(path: &Path) -> Result<Vec<(String, MetaValue)>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ModelError::file(path, format!("cannot read: {e}")))?;
    let json: Value = serde_json::from_str(&text)
        .map_err(|e| ModelError::file(path, format!("not valid JSON: {e}")))?;
    if !json.is_object() {
        return Err(ModelError::file(path, "config.json is not a JSON object"));
    }
    let model_type = json
        .get("model_type")
        .and_then(Value::as_str)
        .unwrap_or("llama");
    // Mistral-style checkpoints use the Llama layout and names.
    let arch = if matches!(model_type, "llama" | "mistral") {
        "llama"
    } else {
        model_type
    };
    let mut out: Vec<(String, MetaValue)> = vec![(
        "general.architecture".into(),
        MetaValue::String(arch.into()),
    )];
    let count = |key: &str| -> Result<Option<u32>> {
        match json.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .map(Some)
                .ok_or_else(|| {
                    ModelError::file(
                        path,
                        format!("'{key}' must be a non-negative integer, got {v}"),
                    )
                }),
        }
    };
    let float = |key: &str| -> Result<Option<f32>> {
        match json.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v.as_f64().map(|x| Some(x as f32)).ok_or_else(|| {
                ModelError::file(path, format!("'{key}' must be a number, got {v}"))
            }),
        }
    };
    let hidden = count("hidden_size")?;
    let heads = count("num_attention_heads")?;
    let mut push_u32 = |key: &str, v: Option<u32>| {
        if let Some(v) = v {
            out.push((format!("{arch}.{key}"), MetaValue::U32(v)));
        }
    };
    push_u32("embedding_length", hidden);
    push_u32("block_count", count("num_hidden_layers")?);
    push_u32("feed_forward_length", count("intermediate_size")?);
    push_u32("context_length", count("max_position_embeddings")?);
    push_u32("vocab_size", count("vocab_size")?);
    push_u32("attention.head_count", heads);
    push_u32(
        "attention.head_count_kv",
        count("num_key_value_heads")?.or(heads),
    );
    let head_dim = count("head_dim")?.or(match (hidden, heads) {
        (Some(h), Some(n)) if n > 0 => Some(h / n),
        _ => None,
    });
    push_u32("rope.dimension_count", head_dim);
    out.push((
        format!("{arch}.rope.freq_base"),
        // transformers 5 writes it under `rope_parameters`, earlier versions at the top.
        MetaValue::F32(
            float("rope_theta")?
                .or_else(|| {
                    json.get("rope_parameters")
                        .and_then(|p| p.get("rope_theta"))
                        .and_then(Value::as_f64)
                        .map(|x| x as f32)
                })
                .unwrap_or(10000.0),
        ),
    ));
    if let Some(eps) = float("rms_norm_eps")? {
        out.push((
            format!("{arch}.attention.layer_norm_rms_epsilon"),
            MetaValue::F32(eps),
        ));
    }
    for (hf, gguf) in [
        ("bos_token_id", "tokenizer.ggml.bos_token_id"),
        ("eos_token_id", "tokenizer.ggml.eos_token_id"),
    ] {
        // eos_token_id may be a list in newer configs; the first is the primary one.
        let v = match json.get(hf) {
            Some(Value::Array(a)) => a.first().and_then(Value::as_u64),
            Some(v) => v.as_u64(),
            None => None,
        };
        if let Some(id) = v.and_then(|n| u32::try_from(n).ok()) {
            out.push((gguf.into(), MetaValue::U32(id)));
        }
    }
    if let Some(tied) = json.get("tie_word_embeddings").and_then(Value::as_bool) {
        out.push(("general.tie_word_embeddings".into(), MetaValue::Bool(tied)));
    }
    Ok(out)
}

/// Writes `tensors` (float32, float16, bfloat16, int64 or bool; any device) to a safetensors
/// file at `path`, in the order given, with `metadata` in `__metadata__`.
pub fn write_safetensors(
    path: &Path,
    tensors: &[(String, tl_tensor::Tensor)],
    metadata: &[(String, String)],
) -> Result<()> {
    use tl_tensor::DType;
    let mut header = serde_json::Map::new();
    if !metadata.is_empty() {
        let m: serde_json::Map<String, Value> = metadata
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        header.insert("__metadata__".into(), Value::Object(m));
    }
    let mut data: Vec<u8> = Vec::new();
    for (name, t) in tensors {
        let begin = data.len();
        let dtype = match t.dtype() {
            DType::F32 => {
                for v in t.to_vec_f32() {
                    data.extend_from_slice(&v.to_le_bytes());
                }
                "F32"
            }
            DType::F16 => {
                for v in t.to_vec_f64() {
                    data.extend_from_slice(&half::f16::from_f64(v).to_le_bytes());
                }
                "F16"
            }
            DType::BF16 => {
                for v in t.to_vec_f64() {
                    data.extend_from_slice(&half::bf16::from_f64(v).to_le_bytes());
                }
                "BF16"
            }
            DType::I64 => {
                for v in t.to_vec_i64() {
                    data.extend_from_slice(&v.to_le_bytes());
                }
                "I64"
            }
            DType::Bool => {
                for v in t.to_vec_f64() {
                    data.push((v != 0.0) as u8);
                }
                "BOOL"
            }
            other => {
                return Err(ModelError::tensor(
                    path,
                    name,
                    format!("cannot save a {other} tensor (cast it to float32 first)"),
                ));
            }
        };
        let mut entry = serde_json::Map::new();
        entry.insert("dtype".into(), Value::String(dtype.into()));
        entry.insert(
            "shape".into(),
            Value::Array(t.shape().iter().map(|&d| Value::from(d as u64)).collect()),
        );
        entry.insert(
            "data_offsets".into(),
            Value::Array(vec![
                Value::from(begin as u64),
                Value::from(data.len() as u64),
            ]),
        );
        header.insert(name.clone(), Value::Object(entry));
    }
    let mut text = Value::Object(header).to_string().into_bytes();
    // Pad the header with spaces so that the data starts 8-byte aligned.
    while !(8 + text.len()).is_multiple_of(8) {
        text.push(b' ');
    }
    let mut bytes = Vec::with_capacity(8 + text.len() + data.len());
    bytes.extend_from_slice(&(text.len() as u64).to_le_bytes());
    bytes.extend_from_slice(&text);
    bytes.extend_from_slice(&data);
    std::fs::write(path, bytes).map_err(|e| ModelError::file(path, format!("cannot write: {e}")))
}

/// Every tensor of a safetensors file as a host tensor (F32, F16, BF16, I64, I32 (as int64)
/// and BOOL), in file order.
pub fn read_safetensors(path: &Path) -> Result<Vec<(String, tl_tensor::Tensor)>> {
    let file = SafetensorsFile::open(path)?;
    let mut infos: Vec<&StTensorInfo> = file.tensors().iter().collect();
    infos.sort_by_key(|t| t.begin);
    let mut out = Vec::with_capacity(infos.len());
    for info in infos {
        let bytes = file.tensor_bytes(&info.name)?;
        let fail = |e: tl_tensor::TensorError| ModelError::tensor(path, &info.name, e.0);
        let t = match info.dtype {
            StDtype::F32 => tl_tensor::Tensor::from_f32(
                bytes
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
                    .collect(),
                &info.shape,
            ),
            StDtype::F16 => tl_tensor::Tensor::from_f16(
                bytes
                    .chunks_exact(2)
                    .map(|c| half::f16::from_le_bytes(c.try_into().expect("2 bytes")))
                    .collect(),
                &info.shape,
            ),
            StDtype::BF16 => tl_tensor::Tensor::from_bf16(
                bytes
                    .chunks_exact(2)
                    .map(|c| half::bf16::from_le_bytes(c.try_into().expect("2 bytes")))
                    .collect(),
                &info.shape,
            ),
            StDtype::I64 => tl_tensor::Tensor::from_i64(
                bytes
                    .chunks_exact(8)
                    .map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes")))
                    .collect(),
                &info.shape,
            ),
            StDtype::I32 => tl_tensor::Tensor::from_i64(
                bytes
                    .chunks_exact(4)
                    .map(|c| i32::from_le_bytes(c.try_into().expect("4 bytes")) as i64)
                    .collect(),
                &info.shape,
            ),
            StDtype::Bool => {
                tl_tensor::Tensor::from_bool(bytes.iter().map(|&b| b != 0).collect(), &info.shape)
            }
            other => {
                return Err(ModelError::tensor(
                    path,
                    &info.name,
                    format!("cannot load a {other:?} tensor"),
                ));
            }
        }
        .map_err(fail)?;
        out.push((info.name.clone(), t));
    }
    Ok(out)
}
