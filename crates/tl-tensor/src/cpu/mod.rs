//! The CPU backend: the reference implementation every other backend is checked against.

use crate::backend::Backend;
use crate::error::Result;
use crate::storage::CpuStorage;
use crate::tensor::Tensor;

/// The CPU backend (stateless).
pub struct CpuBackend;

/// The one CPU backend instance.
pub static CPU: CpuBackend = CpuBackend;

/// Copies the elements addressed by `x`'s layout into a new row-major vector.
fn gather_strided<T: Copy>(data: &[T], x: &Tensor) -> Vec<T> {
    let mut out = Vec::with_capacity(x.numel());
    x.layout().for_each_offset(|o| out.push(data[o]));
    out
}

impl Backend for CpuBackend {
    fn name(&self) -> &'static str {
        "cpu"
    }

    fn contiguous(&self, x: &Tensor) -> Result<Tensor> {
        let s = x.cpu_storage().expect("cpu backend got a non-cpu tensor");
        let storage = match s {
            CpuStorage::F32(v) => CpuStorage::F32(gather_strided(v, x)),
            CpuStorage::F16(v) => CpuStorage::F16(gather_strided(v, x)),
            CpuStorage::BF16(v) => CpuStorage::BF16(gather_strided(v, x)),
            CpuStorage::I64(v) => CpuStorage::I64(gather_strided(v, x)),
            CpuStorage::Bool(v) => CpuStorage::Bool(gather_strided(v, x)),
        };
        Tensor::from_cpu_storage(storage, x.shape())
    }

    // --- core ops (elementwise, reductions, copies) go above this line ---

    // --- linear algebra and neural ops go above this line ---
}
