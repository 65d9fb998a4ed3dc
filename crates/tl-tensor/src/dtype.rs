//! Element types.

use crate::quant::GgmlType;

/// The element type of a tensor. The quantized GGUF block types (`Q4_0`, ...) hold packed
/// blocks; a tensor of one has a logical shape `[rows, cols]` (cols a whole number of blocks).
// The quantized variants are named as GGML names them, which is how users and files say it.
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DType {
    F32,
    F16,
    BF16,
    I64,
    Bool,
    Q4_0,
    Q4_1,
    Q8_0,
    Q4_K,
    Q5_K,
    Q6_K,
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
            DType::Q4_0 => "q4_0",
            DType::Q4_1 => "q4_1",
            DType::Q8_0 => "q8_0",
            DType::Q4_K => "q4_k",
            DType::Q5_K => "q5_k",
            DType::Q6_K => "q6_k",
        }
    }

    /// Parses a language dtype name (quantized types are not among them: they come from
    /// model files, never from creation functions). `float64` maps to `F32` and `int32` to `I64` (the runtime
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

    /// True for the packed GGUF block types.
    pub fn is_quantized(self) -> bool {
        self.ggml_type().is_some_and(GgmlType::is_quantized)
    }

    /// Bytes per element; 0 for the quantized types, whose elements are packed in blocks
    /// (see [`DType::bytes_for`]).
    pub fn size_in_bytes(self) -> usize {
        match self {
            DType::F32 => 4,
            DType::F16 | DType::BF16 => 2,
            DType::I64 => 8,
            DType::Bool => 1,
            _ => 0,
        }
    }

    /// Bytes taken by `n` elements (for the quantized types, the blocks holding them, `n`
    /// rounded up to a whole block).
    pub fn bytes_for(self, n: usize) -> usize {
        match self.ggml_type() {
            Some(g) if g.is_quantized() => n.div_ceil(g.block_size()) * g.block_bytes(),
            _ => n * self.size_in_bytes(),
        }
    }

    /// The GGML element format of the type (`None` for int64 and bool).
    pub fn ggml_type(self) -> Option<GgmlType> {
        Some(match self {
            DType::F32 => GgmlType::F32,
            DType::F16 => GgmlType::F16,
            DType::BF16 => GgmlType::BF16,
            DType::Q4_0 => GgmlType::Q4_0,
            DType::Q4_1 => GgmlType::Q4_1,
            DType::Q8_0 => GgmlType::Q8_0,
            DType::Q4_K => GgmlType::Q4_K,
            DType::Q5_K => GgmlType::Q5_K,
            DType::Q6_K => GgmlType::Q6_K,
            DType::I64 | DType::Bool => return None,
        })
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
            (Bool, Bool) => Bool,
            // Quantized operands are refused by every op that promotes; f32 is their
            // dequantized type.
            _ => F32,
        }
    }
}

impl std::fmt::Display for DType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
