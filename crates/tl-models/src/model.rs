//! A model file of either format behind one namespace: tensors under GGUF names
//! (`token_embd.weight`, `blk.N.attn_q.weight`, ...), metadata under GGUF keys, and RoPE rows in
//! GGUF's adjacent-pairs order whatever the source, so one rope kernel serves both.

use crate::error::{ModelError, Result};
use crate::gguf::{GGUF_MAGIC, GgufFile, MetaValue};
use crate::quant::{GgmlType, dequantize_row};
use crate::safetensors::{
    SafetensorsFile, StDtype, hf_to_gguf_name, read_hf_config, rope_permutation,
};
use half::{bf16, f16};
use memmap2::Mmap;
use std::borrow::Cow;
use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tl_tensor::{CpuStorage, HostBuf, SharedBytes, Tensor};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelFormat {
    Gguf,
    Safetensors,
}

/// Name, element type and row-major shape of one tensor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorDesc {
    pub name: String,
    pub kind: GgmlType,
    pub shape: Vec<usize>,
}

/// The packed bytes of one tensor, for kernels that read them directly (`quant::matvec`).
/// Borrowed from the map except for permuted safetensors q/k projections.
#[derive(Debug, Clone)]
pub struct RawTensor<'a> {
    pub kind: GgmlType,
    pub shape: Vec<usize>,
    pub bytes: Cow<'a, [u8]>,
}

/// The hyper-parameters a Llama-style program needs, from either format.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelConfig {
    pub architecture: String,
    pub n_layers: Option<usize>,
    pub d_model: Option<usize>,
    pub n_heads: Option<usize>,
    pub n_kv_heads: Option<usize>,
    pub head_dim: Option<usize>,
    pub ffn_dim: Option<usize>,
    pub vocab_size: Option<usize>,
    pub context_length: Option<usize>,
    pub rope_theta: f64,
    pub rms_norm_eps: Option<f64>,
}

/// Where a safetensors tensor lives and whether its rows must be reordered.
#[derive(Debug, Clone)]
struct StEntry {
    file: usize,
    source_name: String,
    /// `Some(heads)` for q/k projections: rows are permuted from rotate-half to adjacent pairs.
    rope_heads: Option<usize>,
}

#[derive(Debug)]
enum Source {
    Gguf(GgufFile),
    Safetensors {
        files: Vec<SafetensorsFile>,
        entries: HashMap<String, StEntry>,
        names: Vec<String>,
        metadata: Vec<(String, MetaValue)>,
        metadata_index: HashMap<String, usize>,
    },
}

#[derive(Debug)]
pub struct Model {
    path: PathBuf,
    source: Source,
}

fn st_kind(dtype: StDtype) -> Option<GgmlType> {
    match dtype {
        StDtype::F32 => Some(GgmlType::F32),
        StDtype::F16 => Some(GgmlType::F16),
        StDtype::BF16 => Some(GgmlType::BF16),
        _ => None,
    }
}

/// Reorders the rows (of `row_bytes` bytes each) of `bytes` so that new row i is old row `order[i]`.
fn permute_rows(bytes: &[u8], row_bytes: usize, order: &[usize]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    for &old in order {
        out.extend_from_slice(&bytes[old * row_bytes..(old + 1) * row_bytes]);
    }
    out
}

impl Model {
    /// Opens a GGUF file, a safetensors file (with `config.json` beside it, if present), or a
    /// directory of safetensors shards with a `config.json`. The format is detected from the
    /// content, not the file name.
    pub fn open(path: impl AsRef<Path>) -> Result<Model> {
        let path = path.as_ref();
        if path.is_dir() {
            let mut shards: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(|e| ModelError::file(path, format!("cannot list directory: {e}")))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "safetensors"))
                .collect();
            shards.sort();
            if shards.is_empty() {
                return Err(ModelError::file(
                    path,
                    "directory holds no .safetensors files",
                ));
            }
            return Self::open_safetensors(path, &shards, &path.join("config.json"));
        }
        let mut head = [0u8; 9];
        let mut file = std::fs::File::open(path)
            .map_err(|e| ModelError::file(path, format!("cannot open: {e}")))?;
        let mut got = 0;
        while got < head.len() {
            match file.read(&mut head[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) => return Err(ModelError::file(path, format!("cannot read: {e}"))),
            }
        }
        if got >= 4 && &head[..4] == GGUF_MAGIC {
            return Ok(Model {
                path: path.to_path_buf(),
                source: Source::Gguf(GgufFile::open(path)?),
            });
        }
        // A safetensors file starts with its header length, then the JSON object's `{`.
        if got == 9 && head[8] == b'{' {
            let config = path.with_file_name("config.json");
            return Self::open_safetensors(path, &[path.to_path_buf()], &config);
        }
        Err(ModelError::file(
            path,
            "unknown model format: neither GGUF (magic \"GGUF\") nor safetensors",
        ))
    }

    fn open_safetensors(path: &Path, shards: &[PathBuf], config: &Path) -> Result<Model> {
        let metadata = if config.is_file() {
            read_hf_config(config)?
        } else {
            Vec::new()
        };
        let metadata_index: HashMap<String, usize> = metadata
            .iter()
            .enumerate()
            .map(|(i, (k, _))| (k.clone(), i))
            .collect();
        let meta_u = |key: &str| {
            metadata_index
                .get(key)
                .and_then(|&i| metadata[i].1.as_u64())
                .map(|v| v as usize)
        };
        let arch = metadata_index
            .get("general.architecture")
            .and_then(|&i| metadata[i].1.as_str())
            .unwrap_or("llama")
            .to_string();
        let n_heads = meta_u(&format!("{arch}.attention.head_count"));
        let n_kv_heads = meta_u(&format!("{arch}.attention.head_count_kv")).or(n_heads);

        let mut files = Vec::new();
        let mut entries = HashMap::new();
        let mut names = Vec::new();
        for shard in shards {
            let file = SafetensorsFile::open(shard)?;
            for info in file.tensors() {
                let name = hf_to_gguf_name(&info.name).unwrap_or_else(|| info.name.clone());
                let rope_heads =
                    if name.ends_with(".attn_q.weight") || name.ends_with(".attn_q.bias") {
                        Some(n_heads)
                    } else if name.ends_with(".attn_k.weight") || name.ends_with(".attn_k.bias") {
                        Some(n_kv_heads)
                    } else {
                        None
                    };
                let rope_heads = match rope_heads {
                    None => None,
                    Some(Some(h)) => Some(h),
                    Some(None) => {
                        return Err(ModelError::tensor(
                            shard,
                            &info.name,
                            format!(
                                "the head count is needed to reorder its rows for RoPE, but {} gives no num_attention_heads",
                                config.display()
                            ),
                        ));
                    }
                };
                let entry = StEntry {
                    file: files.len(),
                    source_name: info.name.clone(),
                    rope_heads,
                };
                if entries.insert(name.clone(), entry).is_some() {
                    return Err(ModelError::tensor(
                        shard,
                        &info.name,
                        format!("a second tensor maps to '{name}'"),
                    ));
                }
                names.push(name);
            }
            files.push(file);
        }
        Ok(Model {
            path: path.to_path_buf(),
            source: Source::Safetensors {
                files,
                entries,
                names,
                metadata,
                metadata_index,
            },
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn format(&self) -> ModelFormat {
        match self.source {
            Source::Gguf(_) => ModelFormat::Gguf,
            Source::Safetensors { .. } => ModelFormat::Safetensors,
        }
    }

    /// The GGUF file, when the model is one (for its full metadata and tensor infos).
    pub fn gguf(&self) -> Option<&GgufFile> {
        match &self.source {
            Source::Gguf(g) => Some(g),
            Source::Safetensors { .. } => None,
        }
    }

    /// Tensor names (GGUF names) in file order.
    pub fn tensor_names(&self) -> Vec<&str> {
        match &self.source {
            Source::Gguf(g) => g.tensors().iter().map(|t| t.name.as_str()).collect(),
            Source::Safetensors { names, .. } => names.iter().map(String::as_str).collect(),
        }
    }

    /// Metadata under GGUF keys (for safetensors: the keys derived from `config.json`).
    pub fn metadata(&self, key: &str) -> Option<&MetaValue> {
        match &self.source {
            Source::Gguf(g) => g.metadata(key),
            Source::Safetensors {
                metadata,
                metadata_index,
                ..
            } => metadata_index.get(key).map(|&i| &metadata[i].1),
        }
    }

    /// All metadata entries.
    pub fn metadata_entries(&self) -> &[(String, MetaValue)] {
        match &self.source {
            Source::Gguf(g) => g.metadata_entries(),
            Source::Safetensors { metadata, .. } => metadata,
        }
    }

    fn no_tensor(&self, name: &str) -> ModelError {
        ModelError::tensor(&self.path, name, "no such tensor in the model")
    }

    /// Name, type and row-major shape of a tensor.
    pub fn describe(&self, name: &str) -> Result<TensorDesc> {
        match &self.source {
            Source::Gguf(g) => {
                let t = g.tensor_info(name).ok_or_else(|| self.no_tensor(name))?;
                Ok(TensorDesc {
                    name: name.into(),
                    kind: t.kind,
                    shape: t.shape(),
                })
            }
            Source::Safetensors { files, entries, .. } => {
                let e = entries.get(name).ok_or_else(|| self.no_tensor(name))?;
                let file = &files[e.file];
                let info = file
                    .tensor_info(&e.source_name)
                    .ok_or_else(|| self.no_tensor(name))?;
                let kind = st_kind(info.dtype).ok_or_else(|| {
                    ModelError::tensor(
                        file.path(),
                        &e.source_name,
                        format!(
                            "dtype {:?} is not supported (F32, F16 and BF16 are)",
                            info.dtype
                        ),
                    )
                })?;
                Ok(TensorDesc {
                    name: name.into(),
                    kind,
                    shape: info.shape.clone(),
                })
            }
        }
    }

    /// The packed bytes of a tensor with its type and shape (for quantized kernels). Safetensors
    /// q/k projections come back with their rows already in adjacent-pairs RoPE order.
    pub fn raw(&self, name: &str) -> Result<RawTensor<'_>> {
        let desc = self.describe(name)?;
        match &self.source {
            Source::Gguf(g) => Ok(RawTensor {
                kind: desc.kind,
                shape: desc.shape,
                bytes: Cow::Borrowed(g.tensor_bytes(name)?),
            }),
            Source::Safetensors { files, entries, .. } => {
                let e = &entries[name];
                let file = &files[e.file];
                let bytes = file.tensor_bytes(&e.source_name)?;
                let Some(heads) = e.rope_heads else {
                    return Ok(RawTensor {
                        kind: desc.kind,
                        shape: desc.shape,
                        bytes: Cow::Borrowed(bytes),
                    });
                };
                let rows = desc.shape.first().copied().unwrap_or(1);
                let bad = |p: String| ModelError::tensor(file.path(), &e.source_name, p);
                if heads == 0 || rows % heads != 0 || (rows / heads) % 2 != 0 {
                    return Err(bad(format!(
                        "{rows} rows cannot be split into {heads} heads of an even size for the RoPE reordering"
                    )));
                }
                let row_bytes = bytes.len().checked_div(rows).unwrap_or(0);
                let order = rope_permutation(heads, rows / heads);
                Ok(RawTensor {
                    kind: desc.kind,
                    shape: desc.shape,
                    bytes: Cow::Owned(permute_rows(bytes, row_bytes, &order)),
                })
            }
        }
    }

    /// The memory map of the file holding tensor `name`.
    fn shared_map(&self, name: &str) -> Result<Arc<Mmap>> {
        match &self.source {
            Source::Gguf(g) => Ok(g.shared_map()),
            Source::Safetensors { files, entries, .. } => {
                let e = entries.get(name).ok_or_else(|| self.no_tensor(name))?;
                Ok(files[e.file].shared_map())
            }
        }
    }

    /// A tensor in its stored type: F32, F16 and BF16 stay so, quantized formats stay packed
    /// (a `q4_0`, ... tensor that `linear` and `embedding` read directly). The tensor views
    /// the memory-mapped file without a copy when its data is aligned for its element type
    /// (GGUF aligns tensor data); otherwise, and for safetensors q/k projections whose rows
    /// are reordered for RoPE, it owns a copy.
    pub fn tensor(&self, name: &str) -> Result<Tensor> {
        let raw = self.raw(name)?;
        let err = |p: String| ModelError::tensor(&self.path, name, p);
        // The file map itself when the tensor's bytes lie in it (so its pages can be released
        // once the CPU copies a weight into panels), else the owned, reordered copy.
        let (map, owner, offset, len): (Option<Arc<Mmap>>, SharedBytes, usize, usize) = match raw
            .bytes
        {
            Cow::Borrowed(b) => {
                let map = self.shared_map(name)?;
                let offset = (b.as_ptr() as usize)
                    .checked_sub(map.as_ptr() as usize)
                    .ok_or_else(|| err("internal: tensor bytes lie outside the file map".into()))?;
                (Some(map.clone()), map, offset, b.len())
            }
            Cow::Owned(v) => {
                let len = v.len();
                (None, Arc::new(v), 0, len)
            }
        };
        let shape = &raw.shape;
        let n: usize = shape.iter().product();
        fn view<T: tl_tensor::hostbuf::Pod>(
            map: &Option<Arc<Mmap>>,
            owner: SharedBytes,
            offset: usize,
            len: usize,
        ) -> tl_tensor::Result<HostBuf<T>> {
            match map {
                Some(m) => HostBuf::from_file_map(m.clone(), offset, len),
                None => HostBuf::from_shared(owner, offset, len),
            }
        }
        let result = match raw.kind {
            GgmlType::F32 => view::<f32>(&map, owner, offset, n)
                .and_then(|b| Tensor::from_cpu_storage(CpuStorage::F32(b), shape)),
            GgmlType::F16 => view::<f16>(&map, owner, offset, n)
                .and_then(|b| Tensor::from_cpu_storage(CpuStorage::F16(b), shape)),
            GgmlType::BF16 => view::<bf16>(&map, owner, offset, n)
                .and_then(|b| Tensor::from_cpu_storage(CpuStorage::BF16(b), shape)),
            q => view::<u8>(&map, owner, offset, len)
                .and_then(|b| Tensor::from_quantized(q, b, shape)),
        };
        result.map_err(|e| err(e.to_string()))
    }

    /// Expands one tensor of any supported type to f32 values (row-major, `describe(name).shape`).
    pub fn dequantize_to_vec(&self, name: &str) -> Result<Vec<f32>> {
        let raw = self.raw(name)?;
        let n: usize = raw.shape.iter().product();
        let mut out = vec![0f32; n];
        dequantize_row(raw.kind, &raw.bytes, &mut out)
            .map_err(|e| e.in_context(&self.path, Some(name)))?;
        Ok(out)
    }

    /// Expands one tensor of any supported type to an f32 `Tensor` (an explicit, per-tensor copy).
    pub fn dequantize(&self, name: &str) -> Result<Tensor> {
        let shape = self.describe(name)?.shape;
        let values = self.dequantize_to_vec(name)?;
        Tensor::from_f32(values, &shape)
            .map_err(|e| ModelError::tensor(&self.path, name, e.to_string()))
    }

    /// The Llama-style hyper-parameters, from GGUF metadata or `config.json`.
    pub fn config(&self) -> ModelConfig {
        let arch = self
            .metadata("general.architecture")
            .and_then(MetaValue::as_str)
            .unwrap_or("llama")
            .to_string();
        let get = |k: &str| self.metadata(&format!("{arch}.{k}"));
        let uint = |k: &str| get(k).and_then(MetaValue::as_u64).map(|v| v as usize);
        let n_heads = uint("attention.head_count");
        let d_model = uint("embedding_length");
        let head_dim = uint("attention.key_length")
            .or(uint("rope.dimension_count"))
            .or(match (d_model, n_heads) {
                (Some(d), Some(h)) if h > 0 => Some(d / h),
                _ => None,
            });
        let vocab_size = uint("vocab_size")
            .or_else(|| {
                self.metadata("tokenizer.ggml.tokens")
                    .and_then(MetaValue::as_array)
                    .map(<[_]>::len)
            })
            .or_else(|| {
                self.describe("token_embd.weight")
                    .ok()
                    .and_then(|d| d.shape.first().copied())
            });
        ModelConfig {
            n_layers: uint("block_count"),
            d_model,
            n_heads,
            n_kv_heads: uint("attention.head_count_kv").or(n_heads),
            head_dim,
            ffn_dim: uint("feed_forward_length"),
            vocab_size,
            context_length: uint("context_length"),
            rope_theta: get("rope.freq_base")
                .and_then(MetaValue::as_f64)
                .unwrap_or(10000.0),
            rms_norm_eps: get("attention.layer_norm_rms_epsilon").and_then(MetaValue::as_f64),
            architecture: arch,
        }
    }
}
