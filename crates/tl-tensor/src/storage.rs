//! Where a tensor's elements live: host memory, or device memory owned by a device backend
//! (see [`crate::device`]).

use crate::device::DeviceStorage;
use crate::dtype::DType;
pub use crate::hostbuf::HostBuf;
pub use crate::quant::panels::PanelCache;
use crate::quant::{GgmlType, dequantize_row};
use half::{bf16, f16};

/// Host memory holding elements of one dtype, row-major in the storage's own indexing. Each
/// buffer is owned or a read-only view of shared bytes (a memory-mapped file); see
/// [`HostBuf`]. Quantized storage holds whole GGUF blocks; its elements are the logical
/// (dequantized) values, `block_size` per block.
#[derive(Debug, Clone, PartialEq)]
pub enum CpuStorage {
    F32(HostBuf<f32>),
    F16(HostBuf<f16>),
    BF16(HostBuf<bf16>),
    I64(HostBuf<i64>),
    Bool(HostBuf<bool>),
    /// Packed blocks of a quantized format (never F32/F16/BF16), and the row panels the CPU
    /// mat-vec builds from them on first use ([`PanelCache`]; `Default::default()` when
    /// creating one). The blocks are never written in place.
    Quantized(GgmlType, HostBuf<u8>, PanelCache),
}

impl CpuStorage {
    pub fn dtype(&self) -> DType {
        match self {
            CpuStorage::F32(_) => DType::F32,
            CpuStorage::F16(_) => DType::F16,
            CpuStorage::BF16(_) => DType::BF16,
            CpuStorage::I64(_) => DType::I64,
            CpuStorage::Bool(_) => DType::Bool,
            CpuStorage::Quantized(q, ..) => q.dtype(),
        }
    }

    /// Number of (logical) elements.
    pub fn len(&self) -> usize {
        match self {
            CpuStorage::F32(v) => v.len(),
            CpuStorage::F16(v) => v.len(),
            CpuStorage::BF16(v) => v.len(),
            CpuStorage::I64(v) => v.len(),
            CpuStorage::Bool(v) => v.len(),
            CpuStorage::Quantized(q, b, _) => b.len() / q.block_bytes() * q.block_size(),
        }
    }

    /// Bytes the elements take in memory.
    pub fn byte_len(&self) -> usize {
        match self {
            CpuStorage::Quantized(_, b, _) => b.len(),
            s => s.len() * s.dtype().size_in_bytes(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True when the elements are a view of bytes shared with another owner (a file map).
    pub fn is_shared(&self) -> bool {
        match self {
            CpuStorage::F32(v) => v.is_shared(),
            CpuStorage::F16(v) => v.is_shared(),
            CpuStorage::BF16(v) => v.is_shared(),
            CpuStorage::I64(v) => v.is_shared(),
            CpuStorage::Bool(v) => v.is_shared(),
            CpuStorage::Quantized(_, b, _) => b.is_shared(),
        }
    }

    /// Element `i` converted to f64 (exact for every dtype but large i64; quantized elements
    /// are dequantized, one block at a time).
    pub fn get_f64(&self, i: usize) -> f64 {
        match self {
            CpuStorage::F32(v) => v[i] as f64,
            CpuStorage::F16(v) => v[i].to_f64(),
            CpuStorage::BF16(v) => v[i].to_f64(),
            CpuStorage::I64(v) => v[i] as f64,
            CpuStorage::Bool(v) => v[i] as u8 as f64,
            CpuStorage::Quantized(q, b, _) => {
                let (bs, bb) = (q.block_size(), q.block_bytes());
                let block = i / bs;
                let mut out = vec![0f32; bs];
                dequantize_row(*q, &b[block * bb..(block + 1) * bb], &mut out)
                    .expect("one whole block");
                out[i % bs] as f64
            }
        }
    }
}

/// The storage behind a tensor.
#[derive(Debug)]
pub enum Storage {
    Cpu(CpuStorage),
    /// Memory of a device backend (a GPU); reading it goes through
    /// [`crate::Tensor::synchronize_for_read`].
    Device(Box<dyn DeviceStorage>),
}

impl Storage {
    pub fn dtype(&self) -> DType {
        match self {
            Storage::Cpu(s) => s.dtype(),
            Storage::Device(s) => s.dtype(),
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            Storage::Cpu(s) => s.len(),
            Storage::Device(s) => s.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
