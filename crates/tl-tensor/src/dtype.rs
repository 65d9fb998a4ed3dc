//! Element types.

/// The element type of a tensor. Quantized GGUF block types join this enum with the models issue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DType {
    F32,
    F16,
    BF16,
    I64,
    Bool,
}

impl DType {
    /// The language's name for the type (`float32`, ...).
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "float32",
            DType::F16 => "float16",
            DType::BF16 => "bfloat16",
            DType::I64 => "int64",
            DType::Bool => "bool",
        }
    }

    /// Parses a language dtype name. `float64` maps to `F32` and `int32` to `I64` (the runtime
    /// keeps one float and one integer width per family beyond the half types).
    pub fn from_name(name: &str) -> Option<DType> {
        Some(match name {
            "float32" | "f32" | "float64" | "f64" => DType::F32,
            "float16" | "f16" => DType::F16,
            "bfloat16" | "bf16" => DType::BF16,
            "int64" | "i64" | "int32" | "i32" | "int" => DType::I64,
            "bool" => DType::Bool,
            _ => return None,
        })
    }

    pub fn is_float(self) -> bool {
        matches!(self, DType::F32 | DType::F16 | DType::BF16)
    }

    pub fn size_in_bytes(self) -> usize {
        match self {
            DType::F32 => 4,
            DType::F16 | DType::BF16 => 2,
            DType::I64 => 8,
            DType::Bool => 1,
        }
    }

    /// The type both operands of a binary op are converted to: floats win over ints and
    /// bools, the wider float wins (f16 with bf16 gives f32).
    pub fn promote(a: DType, b: DType) -> DType {
        use DType::*;
        match (a, b) {
            (x, y) if x == y => x,
            (F32, _) | (_, F32) => F32,
            (F16, BF16) | (BF16, F16) => F32,
            (F16, _) | (_, F16) => F16,
            (BF16, _) | (_, BF16) => BF16,
            (I64, _) | (_, I64) => I64,
            _ => Bool,
        }
    }
}

impl std::fmt::Display for DType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
