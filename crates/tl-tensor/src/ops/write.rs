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

    /// The KV-cache append with RoPE applied to the keys on the way in: `k_dst` rows
    /// `start..start + n` get `k.rope(pos, theta)` (`rope_neox` when `neox`) and `v_dst` the
    /// same rows of `v`, both in place as [`Tensor::write_slice_in_place`] (copy-on-write).
    /// `k` and `v` are [n, ..] rows of one shape, matching the caches' rows. One launch on
    /// CUDA where the layouts allow; elsewhere `rope` and two slice writes.
    pub fn write_kv_rope_in_place(
        k_dst: &mut Tensor,
        v_dst: &mut Tensor,
        start: usize,
        k: &Tensor,
        v: &Tensor,
        rope: (usize, f64, bool),
    ) -> Result<()> {
        let (_, theta, neox) = rope;
        let op = if neox { "rope_neox" } else { "rope" };
        crate::ops::refuse_quantized("write_kv_rope_in_place", &[k_dst, v_dst, k, v])?;
        crate::autograd::refuse("an in-place write", &[k_dst, v_dst, k, v])?;
        if k.shape() != v.shape() || k_dst.shape() != v_dst.shape() || k.rank() < 2 {
            bail!(
                "write_kv_rope_in_place: keys {} and values {} must be [n, ..] rows of one shape, as must the caches {} and {}",
                shape_str(k.shape()),
                shape_str(v.shape()),
                shape_str(k_dst.shape()),
                shape_str(v_dst.shape())
            );
        }
        crate::ops::nn::check_rope(op, k, theta)?;
        if k_dst.dtype() != v_dst.dtype() || !k_dst.dtype().is_float() || !k.dtype().is_float() {
            bail!(
                "write_kv_rope_in_place: float caches of one dtype and float rows expected, got caches {} and {}, rows {}",
                k_dst.dtype(),
                v_dst.dtype(),
                k.dtype()
            );
        }
        // The same checks as a plain slice write of k (v has k's shape).
        let ds = k_dst.shape();
        if ds.len() != k.rank() || ds[1..] != k.shape()[1..] {
            bail!(
                "write_kv_rope_in_place: rows {} do not match the cache {} outside dimension 0",
                shape_str(k.shape()),
                shape_str(ds)
            );
        }
        let n = k.shape()[0];
        if start.checked_add(n).is_none_or(|end| end > ds[0]) {
            bail!(
                "write_kv_rope_in_place: rows {start}..{} do not fit in a cache of {} rows",
                start.saturating_add(n),
                ds[0]
            );
        }
        if n == 0 || k.numel() == 0 {
            return Ok(());
        }
        // Keys keep their dtype until rotated (as `rope` then a write would); values are
        // converted now.
        let v = v.cast(k_dst.dtype())?;
        let backend = k_dst.backend();
        backend.write_kv_rope(k_dst, v_dst, start, k, &v, rope)
    }
}
