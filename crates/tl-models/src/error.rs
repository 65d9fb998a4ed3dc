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
