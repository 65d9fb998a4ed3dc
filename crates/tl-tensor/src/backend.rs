//! The `Backend` trait: the operations a device must provide. `Tensor` methods check shapes,
//! broadcast and build views on the host, then hand the device work to the tensor's backend.
//! Layout-only ops (reshape of contiguous data, transpose, permute, slice, broadcast) never
//! reach a backend.

use crate::error::Result;
use crate::tensor::Tensor;

pub trait Backend: Send + Sync {
    /// A short name for messages and `--stats` (`cpu`, `cuda`).
    fn name(&self) -> &'static str;

    /// A contiguous copy of `x` (any layout) in the same dtype.
    fn contiguous(&self, x: &Tensor) -> Result<Tensor>;

    // --- core ops (elementwise, reductions, copies) go above this line ---

    // --- linear algebra and neural ops go above this line ---
}
