//! In-place slice writes, the append of a KV cache: `cache.write_slice_in_place(dim, pos, kv)`.

use crate::bail;
use crate::error::{Result, shape_str};
use crate::tensor::Tensor;

impl Tensor {
    /// Copies `src` into `self` at `start..start + src.shape[dim]` along `dim`; every other
    /// dimension must be equal, and `src` is converted to `self`'s dtype if needed. The write
    /// is in place when `self` is the only holder of its host storage; otherwise `self` first
    /// becomes a private copy (copy-on-write), so other holders never see the change.
    pub fn write_slice_in_place(&mut self, dim: usize, start: usize, src: &Tensor) -> Result<()> {
        crate::ops::refuse_quantized("write_slice_in_place", &[self])?;
        crate::autograd::refuse("an in-place write", &[self, src])?;
        let (ds, ss) = (self.shape(), src.shape());
        if dim >= ds.len() {
            bail!(
                "write_slice_in_place: dimension {dim} is out of range for a tensor of rank {}",
                ds.len()
            );
        }
        let same_elsewhere = ds.len() == ss.len()
            && ds
                .iter()
                .zip(ss)
                .enumerate()
                .all(|(d, (a, b))| d == dim || a == b);
        if !same_elsewhere {
            bail!(
                "write_slice_in_place: source {} does not match destination {} outside dimension {dim}",
                shape_str(ss),
                shape_str(ds)
            );
        }
        let len = ss[dim];
        if start.checked_add(len).is_none_or(|end| end > ds[dim]) {
            bail!(
                "write_slice_in_place: rows {start}..{} do not fit in dimension {dim} of size {} (destination {})",
                start.saturating_add(len),
                ds[dim],
                shape_str(ds)
            );
        }
        let src = src.cast(self.dtype())?;
        if len == 0 || src.numel() == 0 {
            return Ok(());
        }
        self.backend().write_slice(self, dim, start, &src)
    }
}
