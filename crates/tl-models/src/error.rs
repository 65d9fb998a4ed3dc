//! The one error type of the crate: every message names the file (when there is one), the tensor
//! (when the problem is about one) and the problem, e.g.
//! `model.gguf: tensor 'blk.0.attn_q.weight': data [1000, 5000) runs past the end of the file (4096 bytes)`.

use std::fmt;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelError {
    /// The file being read, if any (quantization kernels work on plain byte slices).
    pub file: Option<PathBuf>,
    /// The tensor concerned, if the problem is about one tensor.
    pub tensor: Option<String>,
    /// What is wrong, in words.
    pub problem: String,
}

impl ModelError {
    /// An error about no particular file (e.g. a kernel given a slice of the wrong size).
    pub fn new(problem: impl Into<String>) -> ModelError {
        ModelError {
            file: None,
            tensor: None,
            problem: problem.into(),
        }
    }

    /// An error about a file as a whole.
    pub fn file(path: &Path, problem: impl Into<String>) -> ModelError {
        ModelError {
            file: Some(path.to_path_buf()),
            tensor: None,
            problem: problem.into(),
        }
    }

    /// An error about one tensor of a file.
    pub fn tensor(path: &Path, tensor: &str, problem: impl Into<String>) -> ModelError {
        ModelError {
            file: Some(path.to_path_buf()),
            tensor: Some(tensor.to_string()),
            problem: problem.into(),
        }
    }

    /// Adds the file and, if given, the tensor to an error that lacks them.
    pub fn in_context(mut self, path: &Path, tensor: Option<&str>) -> ModelError {
        if self.file.is_none() {
            self.file = Some(path.to_path_buf());
        }
        if self.tensor.is_none() {
            self.tensor = tensor.map(str::to_string);
        }
        self
    }
}

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(file) = &self.file {
            write!(f, "{}: ", file.display())?;
        }
        if let Some(tensor) = &self.tensor {
            write!(f, "tensor '{tensor}': ")?;
        }
        f.write_str(&self.problem)
    }
}

impl std::error::Error for ModelError {}

pub type Result<T> = std::result::Result<T, ModelError>;

/// Memory-maps `path` read-only, failing with a message naming the file when it cannot be
/// opened or is shorter than the 8 bytes every supported format (`what`) starts with.
pub(crate) fn map_file(path: &std::path::Path, what: &str) -> Result<memmap2::Mmap> {
    let file = std::fs::File::open(path)
        .map_err(|e| ModelError::file(path, format!("cannot open: {e}")))?;
    let len = file
        .metadata()
        .map_err(|e| ModelError::file(path, format!("cannot read file size: {e}")))?
        .len();
    if len < 8 {
        return Err(ModelError::file(
            path,
            format!("file is too short to be {what} ({len} bytes)"),
        ));
    }
    // SAFETY: the map is read-only; like every mmap-based reader we rely on the file not being
    // truncated or rewritten by another process while it is open.
    unsafe { memmap2::Mmap::map(&file) }
        .map_err(|e| ModelError::file(path, format!("cannot memory-map: {e}")))
}
