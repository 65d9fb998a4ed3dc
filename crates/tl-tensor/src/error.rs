//! The runtime's error type. Messages name the operation and the shapes involved, e.g.
//! `matmul: shapes [3, 4] and [5, 6] do not agree on the inner dimension (4 vs 5)`; the
//! interpreter adds the source span.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorError(pub String);

impl std::fmt::Display for TensorError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TensorError {}

pub type Result<T> = std::result::Result<T, TensorError>;

/// Builds an `Err(TensorError)` from a format string: `bail!("matmul: ...")`.
#[macro_export]
macro_rules! bail {
    ($($arg:tt)*) => {
        return Err($crate::TensorError(format!($($arg)*)))
    };
}

/// Formats a shape as `[3, 4]`.
pub fn shape_str(shape: &[usize]) -> String {
    format!("{shape:?}")
}
