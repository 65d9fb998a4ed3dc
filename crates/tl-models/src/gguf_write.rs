//! GGUF writer: the layout [`crate::gguf`] reads, written in one pass.
//!
//! [`GgufWriter`] is the usual way: declare the metadata and every tensor (name, row-major
//! shape, element type), then [`GgufWriter::create`] writes the header and returns a
//! [`GgufDataWriter`] that takes each tensor's packed bytes in the declared order, pads them to
//! the alignment and checks their sizes, so files far larger than memory can be streamed.
//!
//! ```no_run
//! use tl_models::gguf_write::GgufWriter;
//! use tl_models::{GgmlType, MetaValue, quantize_row};
//! let w: Vec<f32> = (0..64).map(|i| i as f32 / 64.0).collect();
//! let mut g = GgufWriter::new();
//! g.metadata("general.architecture", MetaValue::String("llama".into()));
//! g.tensor("w", &[2, 32], GgmlType::Q8_0).unwrap();
//! let mut data = g.create("out.gguf").unwrap();
//! data.write_tensor(&quantize_row(GgmlType::Q8_0, &w).unwrap()).unwrap();
//! data.finish().unwrap();
//! ```
//!
//! [`GgufEncoder`] is the layer below: the byte encodings of one GGUF version (counts and string
//! lengths are u32 in v1, u64 later), for callers that need to build headers by hand (e.g. tests
//! that make files broken in one precise way).

use crate::error::{ModelError, Result};
use crate::gguf::{DEFAULT_ALIGNMENT, GGUF_MAGIC, MetaValue};
use crate::quant::GgmlType;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// The byte encodings of one GGUF version, appended to a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GgufEncoder {
    version: u32,
}

impl GgufEncoder {
    /// An encoder for GGUF `version` (1, 2 or 3).
    pub fn new(version: u32) -> Result<GgufEncoder> {
        if !(1..=3).contains(&version) {
            return Err(ModelError::new(format!(
                "cannot write GGUF version {version} (versions 1 to 3 exist)"
            )));
        }
        Ok(GgufEncoder { version })
    }

    pub fn version(self) -> u32 {
        self.version
    }

    /// The file start: magic, version, tensor count, metadata count.
    pub fn header(self, out: &mut Vec<u8>, n_tensors: u64, n_metadata: u64) {
        out.extend_from_slice(GGUF_MAGIC);
        out.extend_from_slice(&self.version.to_le_bytes());
        self.count(out, n_tensors);
        self.count(out, n_metadata);
    }

    /// A count, length or dim: u32 in v1, u64 later.
    pub fn count(self, out: &mut Vec<u8>, n: u64) {
        if self.version == 1 {
            out.extend_from_slice(&(n as u32).to_le_bytes());
        } else {
            out.extend_from_slice(&n.to_le_bytes());
        }
    }

    /// A string: its length, then its bytes (given raw: they need not be UTF-8).
    pub fn string(self, out: &mut Vec<u8>, bytes: &[u8]) {
        self.count(out, bytes.len() as u64);
        out.extend_from_slice(bytes);
    }

    /// A value's payload (without its type id). Arrays hold their element type and length
    /// first; every element must have the first one's type (an empty array is written as
    /// an empty array of uint8).
    pub fn value(self, out: &mut Vec<u8>, value: &MetaValue) -> Result<()> {
        match value {
            MetaValue::U8(v) => out.push(*v),
            MetaValue::I8(v) => out.push(*v as u8),
            MetaValue::U16(v) => out.extend_from_slice(&v.to_le_bytes()),
            MetaValue::I16(v) => out.extend_from_slice(&v.to_le_bytes()),
            MetaValue::U32(v) => out.extend_from_slice(&v.to_le_bytes()),
            MetaValue::I32(v) => out.extend_from_slice(&v.to_le_bytes()),
            MetaValue::U64(v) => out.extend_from_slice(&v.to_le_bytes()),
            MetaValue::I64(v) => out.extend_from_slice(&v.to_le_bytes()),
            MetaValue::F32(v) => out.extend_from_slice(&v.to_le_bytes()),
            MetaValue::F64(v) => out.extend_from_slice(&v.to_le_bytes()),
            MetaValue::Bool(v) => out.push(*v as u8),
            MetaValue::String(s) => self.string(out, s.as_bytes()),
            MetaValue::Array(items) => {
                let elem = items.first().map_or(0, MetaValue::type_id);
                out.extend_from_slice(&elem.to_le_bytes());
                self.count(out, items.len() as u64);
                for (i, item) in items.iter().enumerate() {
                    if item.type_id() != elem {
                        return Err(ModelError::new(format!(
                            "a GGUF array holds one type: element {i} is {}, element 0 {}",
                            item.type_name(),
                            items[0].type_name()
                        )));
                    }
                    self.value(out, item)?;
                }
            }
        }
        Ok(())
    }

    /// One metadata entry: key, value type id, value.
    pub fn key_value(self, out: &mut Vec<u8>, key: &[u8], value: &MetaValue) -> Result<()> {
        self.string(out, key);
        out.extend_from_slice(&value.type_id().to_le_bytes());
        self.value(out, value)
    }

    /// One tensor info: name, dims in GGML `ne` order (fastest first), type id, data offset
    /// from the start of the data section. Nothing is checked, so that any file can be made.
    pub fn tensor_info(
        self,
        out: &mut Vec<u8>,
        name: &[u8],
        ne: &[u64],
        type_id: u32,
        offset: u64,
    ) {
        self.string(out, name);
        out.extend_from_slice(&(ne.len() as u32).to_le_bytes());
        for &d in ne {
            self.count(out, d);
        }
        out.extend_from_slice(&type_id.to_le_bytes());
        out.extend_from_slice(&offset.to_le_bytes());
    }
}

/// Zero bytes that bring `len` to a multiple of `alignment`.
fn padding(len: u64, alignment: u64) -> usize {
    (len.next_multiple_of(alignment) - len) as usize
}

/// One declared tensor.
#[derive(Debug, Clone)]
struct Planned {
    name: String,
    shape: Vec<usize>,
    kind: GgmlType,
    offset: u64,
    n_bytes: usize,
}

/// A GGUF file being declared: metadata, then tensors, then [`GgufWriter::create`].
#[derive(Debug, Clone)]
pub struct GgufWriter {
    encoder: GgufEncoder,
    alignment: u64,
    metadata: Vec<(String, MetaValue)>,
    tensors: Vec<Planned>,
    data_len: u64,
}

impl Default for GgufWriter {
    fn default() -> Self {
        GgufWriter::new()
    }
}

impl GgufWriter {
    /// A GGUF v3 file with the default alignment (32 bytes).
    pub fn new() -> GgufWriter {
        GgufWriter {
            encoder: GgufEncoder { version: 3 },
            alignment: DEFAULT_ALIGNMENT,
            metadata: Vec::new(),
            tensors: Vec::new(),
            data_len: 0,
        }
    }

    /// The same in GGUF `version` (1 to 3).
    pub fn with_version(version: u32) -> Result<GgufWriter> {
        Ok(GgufWriter {
            encoder: GgufEncoder::new(version)?,
            ..GgufWriter::new()
        })
    }

    /// Tensor data alignment (a power of two); recorded as `general.alignment` when it is not
    /// the default. Set it before declaring tensors.
    pub fn set_alignment(&mut self, alignment: u32) -> Result<&mut Self> {
        if !alignment.is_power_of_two() {
            return Err(ModelError::new(format!(
                "GGUF alignment must be a power of two, got {alignment}"
            )));
        }
        if !self.tensors.is_empty() {
            return Err(ModelError::new(
                "set the GGUF alignment before declaring tensors",
            ));
        }
        self.alignment = alignment as u64;
        self.metadata.retain(|(k, _)| k != "general.alignment");
        if self.alignment != DEFAULT_ALIGNMENT {
            self.metadata
                .push(("general.alignment".into(), MetaValue::U32(alignment)));
        }
        Ok(self)
    }

    /// Adds (or replaces) one metadata entry.
    pub fn metadata(&mut self, key: &str, value: MetaValue) -> &mut Self {
        match self.metadata.iter_mut().find(|(k, _)| k == key) {
            Some(entry) => entry.1 = value,
            None => self.metadata.push((key.to_string(), value)),
        }
        self
    }

    /// Declares the next tensor: `shape` row-major (a `[rows, cols]` weight), its last dim a
    /// whole number of `kind`'s blocks. Its bytes are given later, in declaration order.
    pub fn tensor(&mut self, name: &str, shape: &[usize], kind: GgmlType) -> Result<&mut Self> {
        if self.tensors.iter().any(|t| t.name == name) {
            return Err(ModelError::tensor(
                Path::new("<gguf writer>"),
                name,
                "declared twice",
            ));
        }
        let row = shape.last().copied().unwrap_or(1);
        if !row.is_multiple_of(kind.block_size()) {
            return Err(ModelError::new(format!(
                "tensor '{name}' of shape {shape:?}: rows of {row} values are not a whole number of {} blocks of {}",
                kind.name(),
                kind.block_size()
            )));
        }
        let numel: usize = shape.iter().product();
        let n_bytes = kind
            .bytes_for(numel)
            .map_err(|e| ModelError::new(format!("tensor '{name}': {}", e.0)))?;
        let offset = self.data_len;
        self.data_len = (offset + n_bytes as u64).next_multiple_of(self.alignment);
        self.tensors.push(Planned {
            name: name.to_string(),
            shape: shape.to_vec(),
            kind,
            offset,
            n_bytes,
        });
        Ok(self)
    }

    /// The bytes before the data section: header, metadata, tensor infos and padding.
    pub fn header_bytes(&self) -> Result<Vec<u8>> {
        let e = self.encoder;
        let mut out = Vec::new();
        e.header(
            &mut out,
            self.tensors.len() as u64,
            self.metadata.len() as u64,
        );
        for (key, value) in &self.metadata {
            e.key_value(&mut out, key.as_bytes(), value)
                .map_err(|err| ModelError::new(format!("metadata '{key}': {}", err.problem)))?;
        }
        for t in &self.tensors {
            let ne: Vec<u64> = t.shape.iter().rev().map(|&d| d as u64).collect();
            e.tensor_info(&mut out, t.name.as_bytes(), &ne, t.kind.id(), t.offset);
        }
        out.resize(out.len() + padding(out.len() as u64, self.alignment), 0);
        Ok(out)
    }

    /// The size of the whole file in bytes.
    pub fn file_size(&self) -> Result<u64> {
        Ok(self.header_bytes()?.len() as u64 + self.data_len)
    }

    /// Creates the file at `path` and writes everything before the tensor data.
    pub fn create(&self, path: impl AsRef<Path>) -> Result<GgufDataWriter> {
        let path = path.as_ref().to_path_buf();
        let header = self.header_bytes()?;
        let file = std::fs::File::create(&path)
            .map_err(|e| ModelError::file(&path, format!("cannot create: {e}")))?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        out.write_all(&header)
            .map_err(|e| ModelError::file(&path, format!("cannot write: {e}")))?;
        Ok(GgufDataWriter {
            path,
            out,
            tensors: self.tensors.clone(),
            alignment: self.alignment,
            next: 0,
        })
    }
}

/// Writes the tensor data of a file created by [`GgufWriter::create`], tensor by tensor.
pub struct GgufDataWriter {
    path: PathBuf,
    out: BufWriter<std::fs::File>,
    tensors: Vec<Planned>,
    alignment: u64,
    next: usize,
}

impl GgufDataWriter {
    fn io_err(&self, e: std::io::Error) -> ModelError {
        ModelError::file(&self.path, format!("cannot write: {e}"))
    }

    /// The name and row-major shape of the tensor whose bytes are expected next (None when
    /// every tensor has been written).
    pub fn next_tensor(&self) -> Option<(&str, &[usize], GgmlType)> {
        self.tensors
            .get(self.next)
            .map(|t| (t.name.as_str(), t.shape.as_slice(), t.kind))
    }

    /// The packed bytes of the next declared tensor (exactly its size), then padding.
    pub fn write_tensor(&mut self, bytes: &[u8]) -> Result<()> {
        self.write_tensor_parts(&[bytes])
    }

    /// The next tensor's bytes given as consecutive pieces (e.g. windows of a pool).
    pub fn write_tensor_parts(&mut self, parts: &[&[u8]]) -> Result<()> {
        let Some(t) = self.tensors.get(self.next) else {
            return Err(ModelError::file(
                &self.path,
                format!(
                    "all {} declared tensors are already written",
                    self.tensors.len()
                ),
            ));
        };
        let given: usize = parts.iter().map(|p| p.len()).sum();
        if given != t.n_bytes {
            return Err(ModelError::tensor(
                &self.path,
                &t.name,
                format!(
                    "{} {:?} takes {} bytes, {given} given",
                    t.kind.name(),
                    t.shape,
                    t.n_bytes
                ),
            ));
        }
        let pad = padding(t.offset + t.n_bytes as u64, self.alignment);
        for p in parts {
            self.out.write_all(p).map_err(|e| self.io_err(e))?;
        }
        self.out
            .write_all(&vec![0u8; pad])
            .map_err(|e| self.io_err(e))?;
        self.next += 1;
        Ok(())
    }

    /// Flushes the file once every declared tensor is written; returns its path.
    pub fn finish(mut self) -> Result<PathBuf> {
        if let Some(t) = self.tensors.get(self.next) {
            return Err(ModelError::tensor(
                &self.path,
                &t.name,
                format!(
                    "declared but not written ({} of {} tensors written)",
                    self.next,
                    self.tensors.len()
                ),
            ));
        }
        self.out.flush().map_err(|e| self.io_err(e))?;
        Ok(self.path)
    }
}
