//! GGUF reader (versions 1, 2 and 3, little-endian), memory-mapped.
//!
//! Layout: magic `GGUF`, u32 version, tensor count and metadata count (u32 in v1, u64 later),
//! the metadata key/value pairs, the tensor infos (name, dims fastest-first, type id, offset),
//! padding to `general.alignment` (default 32), then the tensor data. Strings and array lengths
//! are u32 in v1 and u64 later; tensor dims are u32 in v1 and u64 later.
//!
//! Opening validates everything that can be checked without reading tensor data: every tensor's
//! type is supported, its first dim is a whole number of blocks, its offset is aligned, its
//! bytes lie inside the file and do not overlap the next tensor's.

use crate::error::{ModelError, Result};
use crate::quant::{ALL_TYPES, GgmlType, ggml_type_name};
use memmap2::Mmap;
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// The four bytes every GGUF file starts with.
pub const GGUF_MAGIC: &[u8; 4] = b"GGUF";
/// Alignment of tensor data when the file does not set `general.alignment`.
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// Most dims a tensor may have (GGML has 4; a little slack for future files).
const MAX_DIMS: u32 = 8;
/// Deepest nesting of arrays accepted (guards the recursion against hostile files).
const MAX_ARRAY_DEPTH: usize = 8;

/// One metadata value.
#[derive(Debug, Clone, PartialEq)]
pub enum MetaValue {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    U64(u64),
    I64(i64),
    F32(f32),
    F64(f64),
    Bool(bool),
    String(String),
    Array(Vec<MetaValue>),
}

impl MetaValue {
    /// The GGUF type name of the value (`uint32`, `string`, `array`, ...).
    pub fn type_name(&self) -> &'static str {
        match self {
            MetaValue::U8(_) => "uint8",
            MetaValue::I8(_) => "int8",
            MetaValue::U16(_) => "uint16",
            MetaValue::I16(_) => "int16",
            MetaValue::U32(_) => "uint32",
            MetaValue::I32(_) => "int32",
            MetaValue::U64(_) => "uint64",
            MetaValue::I64(_) => "int64",
            MetaValue::F32(_) => "float32",
            MetaValue::F64(_) => "float64",
            MetaValue::Bool(_) => "bool",
            MetaValue::String(_) => "string",
            MetaValue::Array(_) => "array",
        }
    }

    /// The GGUF value type id (0 uint8 ... 12 float64) the value is stored under.
    pub fn type_id(&self) -> u32 {
        match self {
            MetaValue::U8(_) => 0,
            MetaValue::I8(_) => 1,
            MetaValue::U16(_) => 2,
            MetaValue::I16(_) => 3,
            MetaValue::U32(_) => 4,
            MetaValue::I32(_) => 5,
            MetaValue::F32(_) => 6,
            MetaValue::Bool(_) => 7,
            MetaValue::String(_) => 8,
            MetaValue::Array(_) => 9,
            MetaValue::U64(_) => 10,
            MetaValue::I64(_) => 11,
            MetaValue::F64(_) => 12,
        }
    }

    /// The value as a non-negative integer, for any integer type holding one.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            MetaValue::U8(v) => Some(v as u64),
            MetaValue::U16(v) => Some(v as u64),
            MetaValue::U32(v) => Some(v as u64),
            MetaValue::U64(v) => Some(v),
            MetaValue::I8(v) => u64::try_from(v).ok(),
            MetaValue::I16(v) => u64::try_from(v).ok(),
            MetaValue::I32(v) => u64::try_from(v).ok(),
            MetaValue::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    /// The value as a signed integer, for any integer type that fits.
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            MetaValue::I8(v) => Some(v as i64),
            MetaValue::I16(v) => Some(v as i64),
            MetaValue::I32(v) => Some(v as i64),
            MetaValue::I64(v) => Some(v),
            _ => self.as_u64().and_then(|v| i64::try_from(v).ok()),
        }
    }

    /// The value as a float, for any numeric type.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            MetaValue::F32(v) => Some(v as f64),
            MetaValue::F64(v) => Some(v),
            _ => self
                .as_i64()
                .map(|v| v as f64)
                .or_else(|| self.as_u64().map(|v| v as f64)),
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            MetaValue::Bool(v) => Some(v),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            MetaValue::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[MetaValue]> {
        match self {
            MetaValue::Array(a) => Some(a),
            _ => None,
        }
    }
}

impl fmt::Display for MetaValue {
    /// Scalars as themselves, strings quoted, arrays with at most 8 items shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetaValue::U8(v) => write!(f, "{v}"),
            MetaValue::I8(v) => write!(f, "{v}"),
            MetaValue::U16(v) => write!(f, "{v}"),
            MetaValue::I16(v) => write!(f, "{v}"),
            MetaValue::U32(v) => write!(f, "{v}"),
            MetaValue::I32(v) => write!(f, "{v}"),
            MetaValue::U64(v) => write!(f, "{v}"),
            MetaValue::I64(v) => write!(f, "{v}"),
            MetaValue::F32(v) => write!(f, "{v}"),
            MetaValue::F64(v) => write!(f, "{v}"),
            MetaValue::Bool(v) => write!(f, "{v}"),
            MetaValue::String(s) => write!(f, "{s:?}"),
            MetaValue::Array(items) => {
                f.write_str("[")?;
                for (i, item) in items.iter().take(8).enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{item}")?;
                }
                if items.len() > 8 {
                    write!(f, ", ... ({} items)", items.len())?;
                }
                f.write_str("]")
            }
        }
    }
}

/// Where one tensor is and what it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GgufTensorInfo {
    pub name: String,
    pub kind: GgmlType,
    /// Dims as stored: GGML's `ne` order, fastest-varying first.
    pub dims: Vec<usize>,
    /// Offset of the data from the start of the data section.
    pub offset: u64,
    /// Size of the data in bytes.
    pub n_bytes: usize,
}

impl GgufTensorInfo {
    /// The row-major shape `[ne[n-1], ..., ne[0]]` (a `[rows, cols]` weight has `ne = [cols, rows]`).
    pub fn shape(&self) -> Vec<usize> {
        self.dims.iter().rev().copied().collect()
    }

    pub fn numel(&self) -> usize {
        self.dims.iter().product()
    }
}

/// An open GGUF file: parsed header, memory-mapped data.
pub struct GgufFile {
    path: PathBuf,
    map: std::sync::Arc<Mmap>,
    version: u32,
    alignment: u64,
    data_offset: u64,
    metadata: Vec<(String, MetaValue)>,
    metadata_index: HashMap<String, usize>,
    tensors: Vec<GgufTensorInfo>,
    tensor_index: HashMap<String, usize>,
}

impl fmt::Debug for GgufFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GgufFile")
            .field("path", &self.path)
            .field("version", &self.version)
            .field("metadata", &self.metadata.len())
            .field("tensors", &self.tensors.len())
            .finish()
    }
}

/// Reads little-endian values from the header, turning running out of bytes into an error that
/// says what was being read.
struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    path: &'a Path,
    /// v1 files use 32-bit counts, string lengths and dims.
    v1: bool,
}

impl<'a> Reader<'a> {
    fn err(&self, problem: String) -> ModelError {
        ModelError::file(self.path, problem)
    }

    fn take(&mut self, n: u64, what: &str) -> Result<&'a [u8]> {
        let left = (self.data.len() - self.pos) as u64;
        if n > left {
            return Err(self.err(format!(
                "file is truncated: reading {what} needs {n} bytes at offset {}, but the file has {} bytes",
                self.pos,
                self.data.len()
            )));
        }
        let s = &self.data[self.pos..self.pos + n as usize];
        self.pos += n as usize;
        Ok(s)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N]> {
        let b = self.take(N as u64, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(b);
        Ok(a)
    }

    fn u8(&mut self, what: &str) -> Result<u8> {
        Ok(self.array::<1>(what)?[0])
    }
    fn u16(&mut self, what: &str) -> Result<u16> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }
    fn u32(&mut self, what: &str) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }
    fn u64(&mut self, what: &str) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    /// A count or length: u32 in v1, u64 later.
    fn count(&mut self, what: &str) -> Result<u64> {
        if self.v1 {
            self.u32(what).map(u64::from)
        } else {
            self.u64(what)
        }
    }

    fn string(&mut self, what: &str) -> Result<String> {
        let len = self.count(&format!("the length of {what}"))?;
        let at = self.pos;
        let bytes = self.take(len, what)?;
        String::from_utf8(bytes.to_vec()).map_err(|e| {
            self.err(format!(
                "{what} at offset {at} is not valid UTF-8 (bad byte at position {})",
                e.utf8_error().valid_up_to()
            ))
        })
    }

    fn value(&mut self, type_id: u32, what: &str, depth: usize) -> Result<MetaValue> {
        Ok(match type_id {
            0 => MetaValue::U8(self.u8(what)?),
            1 => MetaValue::I8(self.u8(what)? as i8),
            2 => MetaValue::U16(self.u16(what)?),
            3 => MetaValue::I16(self.u16(what)? as i16),
            4 => MetaValue::U32(self.u32(what)?),
            5 => MetaValue::I32(self.u32(what)? as i32),
            6 => MetaValue::F32(f32::from_le_bytes(self.array(what)?)),
            7 => match self.u8(what)? {
                0 => MetaValue::Bool(false),
                1 => MetaValue::Bool(true),
                b => {
                    return Err(
                        self.err(format!("{what} is a bool stored as {b} (must be 0 or 1)"))
                    );
                }
            },
            8 => MetaValue::String(self.string(what)?),
            9 => {
                if depth >= MAX_ARRAY_DEPTH {
                    return Err(self.err(format!(
                        "{what} nests arrays deeper than {MAX_ARRAY_DEPTH} levels"
                    )));
                }
                let elem_type = self.u32(&format!("the element type of {what}"))?;
                let n = self.count(&format!("the length of {what}"))?;
                // Every element takes at least one byte: a longer count cannot be honest.
                let left = (self.data.len() - self.pos) as u64;
                if n > left {
                    return Err(self.err(format!(
                        "file is truncated: {what} claims {n} elements but only {left} bytes follow"
                    )));
                }
                let mut items = Vec::with_capacity(n as usize);
                for i in 0..n {
                    items.push(self.value(elem_type, &format!("{what}[{i}]"), depth + 1)?);
                }
                MetaValue::Array(items)
            }
            10 => MetaValue::U64(self.u64(what)?),
            11 => MetaValue::I64(self.u64(what)? as i64),
            12 => MetaValue::F64(f64::from_le_bytes(self.array(what)?)),
            t => return Err(self.err(format!("{what} has unknown metadata value type {t}"))),
        })
    }
}

fn supported_types() -> String {
    ALL_TYPES
        .iter()
        .map(|t| t.name())
        .collect::<Vec<_>>()
        .join(", ")
}

impl GgufFile {
    /// Opens and validates a GGUF file, mapping it into memory.
    pub fn open(path: impl AsRef<Path>) -> Result<GgufFile> {
        let path = path.as_ref();
        let map = crate::error::map_file(path, "GGUF")?;
        Self::parse(path, map)
    }

    fn parse(path: &Path, map: Mmap) -> Result<GgufFile> {
        if &map[0..4] != GGUF_MAGIC {
            return Err(ModelError::file(
                path,
                format!(
                    "not a GGUF file: starts with {:?}, expected \"GGUF\"",
                    String::from_utf8_lossy(&map[0..4])
                ),
            ));
        }
        let version = u32::from_le_bytes([map[4], map[5], map[6], map[7]]);
        if !(1..=3).contains(&version) {
            return Err(ModelError::file(
                path,
                format!("unsupported GGUF version {version} (versions 1, 2 and 3 are read)"),
            ));
        }
        let mut r = Reader {
            data: &map[..],
            pos: 8,
            path,
            v1: version == 1,
        };
        let n_tensors = r.count("the tensor count")?;
        let n_kv = r.count("the metadata count")?;

        let mut metadata = Vec::new();
        let mut metadata_index = HashMap::new();
        for i in 0..n_kv {
            let key = r.string(&format!("metadata key #{i}"))?;
            let what = format!("metadata '{key}'");
            let type_id = r.u32(&format!("the type of {what}"))?;
            let value = r.value(type_id, &what, 0)?;
            if metadata_index.insert(key.clone(), metadata.len()).is_some() {
                return Err(ModelError::file(
                    path,
                    format!("metadata key '{key}' appears twice"),
                ));
            }
            metadata.push((key, value));
        }

        let alignment = match metadata_index
            .get("general.alignment")
            .map(|&i| &metadata[i].1)
        {
            None => DEFAULT_ALIGNMENT,
            Some(v) => match v.as_u64() {
                Some(a) if a > 0 && a.is_power_of_two() => a,
                _ => {
                    return Err(ModelError::file(
                        path,
                        format!("metadata 'general.alignment' must be a power of two, got {v}"),
                    ));
                }
            },
        };

        let mut tensors = Vec::new();
        let mut tensor_index = HashMap::new();
        for i in 0..n_tensors {
            let name = r.string(&format!("the name of tensor #{i}"))?;
            let terr = |p: String| ModelError::tensor(path, &name, p);
            let n_dims = r.u32(&format!("the dim count of tensor '{name}'"))?;
            if n_dims > MAX_DIMS {
                return Err(terr(format!(
                    "has {n_dims} dims (at most {MAX_DIMS} are allowed)"
                )));
            }
            let mut dims = Vec::with_capacity(n_dims as usize);
            for _ in 0..n_dims {
                let d = r.count(&format!("the dims of tensor '{name}'"))?;
                dims.push(usize::try_from(d).map_err(|_| terr(format!("dim {d} is too large")))?);
            }
            let type_id = r.u32(&format!("the type of tensor '{name}'"))?;
            let offset = r.u64(&format!("the offset of tensor '{name}'"))?;
            let kind = GgmlType::from_id(type_id).ok_or_else(|| match ggml_type_name(type_id) {
                Some(n) => terr(format!(
                    "tensor type {n} (id {type_id}) is not supported (supported: {})",
                    supported_types()
                )),
                None => terr(format!("unknown tensor type id {type_id}")),
            })?;
            let numel = dims
                .iter()
                .try_fold(1usize, |a, &d| a.checked_mul(d))
                .ok_or_else(|| terr(format!("dims {dims:?} overflow")))?;
            let first = dims.first().copied().unwrap_or(1);
            if first % kind.block_size() != 0 {
                return Err(terr(format!(
                    "first dim {first} is not a multiple of the {} block size {}",
                    kind.name(),
                    kind.block_size()
                )));
            }
            let n_bytes = kind.bytes_for(numel).map_err(|e| terr(e.0))?;
            if offset % alignment != 0 {
                return Err(terr(format!(
                    "data offset {offset} is not a multiple of the alignment {alignment}"
                )));
            }
            if tensor_index.insert(name.clone(), tensors.len()).is_some() {
                return Err(terr("appears twice".into()));
            }
            tensors.push(GgufTensorInfo {
                name,
                kind,
                dims,
                offset,
                n_bytes,
            });
        }

        let header_end = r.pos as u64;
        let data_offset = header_end.div_ceil(alignment) * alignment;
        let file_len = map.len() as u64;
        for t in &tensors {
            let end = data_offset
                .checked_add(t.offset)
                .and_then(|s| s.checked_add(t.n_bytes as u64));
            if end.is_none_or(|e| e > file_len) {
                return Err(ModelError::tensor(
                    path,
                    &t.name,
                    format!(
                        "data ({} bytes of {} {:?} at file offset {}) runs past the end of the file ({file_len} bytes)",
                        t.n_bytes,
                        t.kind.name(),
                        t.shape(),
                        data_offset.saturating_add(t.offset)
                    ),
                ));
            }
        }
        // The shape fixes each tensor's size; a size that runs into the next tensor's data means
        // the shape (or the offsets) disagree with the data that is there.
        let mut by_offset: Vec<&GgufTensorInfo> = tensors.iter().collect();
        by_offset.sort_by_key(|t| t.offset);
        for pair in by_offset.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            if a.offset + a.n_bytes as u64 > b.offset && a.n_bytes > 0 {
                return Err(ModelError::tensor(
                    path,
                    &a.name,
                    format!(
                        "shape {:?} of {} needs {} bytes, which overlap the data of tensor '{}' ({} bytes available)",
                        a.shape(),
                        a.kind.name(),
                        a.n_bytes,
                        b.name,
                        b.offset - a.offset
                    ),
                ));
            }
        }

        Ok(GgufFile {
            path: path.to_path_buf(),
            map: std::sync::Arc::new(map),
            version,
            alignment,
            data_offset,
            metadata,
            metadata_index,
            tensors,
            tensor_index,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The GGUF version (1, 2 or 3).
    pub fn version(&self) -> u32 {
        self.version
    }

    pub fn alignment(&self) -> u64 {
        self.alignment
    }

    /// File offset of the tensor data section.
    pub fn data_offset(&self) -> u64 {
        self.data_offset
    }

    /// All metadata in file order.
    pub fn metadata_entries(&self) -> &[(String, MetaValue)] {
        &self.metadata
    }

    pub fn metadata(&self, key: &str) -> Option<&MetaValue> {
        self.metadata_index.get(key).map(|&i| &self.metadata[i].1)
    }

    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.metadata(key)?.as_str()
    }

    pub fn get_u64(&self, key: &str) -> Option<u64> {
        self.metadata(key)?.as_u64()
    }

    pub fn get_i64(&self, key: &str) -> Option<i64> {
        self.metadata(key)?.as_i64()
    }

    pub fn get_f64(&self, key: &str) -> Option<f64> {
        self.metadata(key)?.as_f64()
    }

    pub fn get_bool(&self, key: &str) -> Option<bool> {
        self.metadata(key)?.as_bool()
    }

    pub fn get_array(&self, key: &str) -> Option<&[MetaValue]> {
        self.metadata(key)?.as_array()
    }

    /// A metadata array of strings (e.g. `tokenizer.ggml.tokens`); `None` if absent or not all strings.
    pub fn get_str_array(&self, key: &str) -> Option<Vec<&str>> {
        self.get_array(key)?.iter().map(MetaValue::as_str).collect()
    }

    /// `general.architecture` (e.g. `llama`).
    pub fn architecture(&self) -> Option<&str> {
        self.get_str("general.architecture")
    }

    /// A key of the architecture's namespace: `arch_key("attention.head_count")` reads
    /// `llama.attention.head_count` in a llama file.
    pub fn arch_metadata(&self, suffix: &str) -> Option<&MetaValue> {
        self.metadata(&format!("{}.{suffix}", self.architecture()?))
    }

    pub fn tensors(&self) -> &[GgufTensorInfo] {
        &self.tensors
    }

    pub fn tensor_info(&self, name: &str) -> Option<&GgufTensorInfo> {
        self.tensor_index.get(name).map(|&i| &self.tensors[i])
    }

    /// The memory map of the whole file, shared (tensors view it without copying).
    pub fn shared_map(&self) -> std::sync::Arc<Mmap> {
        self.map.clone()
    }

    /// The packed bytes of a tensor, a slice of the map (bounds were checked when opening).
    pub fn tensor_bytes(&self, name: &str) -> Result<&[u8]> {
        let info = self
            .tensor_info(name)
            .ok_or_else(|| ModelError::tensor(&self.path, name, "no such tensor in the file"))?;
        let start = (self.data_offset + info.offset) as usize;
        self.map.get(start..start + info.n_bytes).ok_or_else(|| {
            ModelError::tensor(&self.path, name, "data runs past the end of the file")
        })
    }
}
