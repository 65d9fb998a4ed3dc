//! The CPU write of a slice into a tensor, in place when the storage is not shared.

use super::copy::with_elem;
use super::strided::Plan;
use crate::error::Result;
use crate::storage::{CpuStorage, Storage};
use crate::tensor::Tensor;

/// Copies `src` (dst's dtype; dst's shape but `len` along `dim`) into `dst` at `start` along
/// `dim`. A shared storage, a mapped file buffer or a broadcast view is first replaced by a
/// private copy (copy-on-write).
pub(crate) fn write_slice(dst: &mut Tensor, dim: usize, start: usize, src: &Tensor) -> Result<()> {
    let broadcast = dst
        .layout()
        .shape
        .iter()
        .zip(&dst.layout().strides)
        .any(|(&d, &s)| d > 1 && s == 0);
    if broadcast || dst.storage_mut().is_none() {
        *dst = super::copy::contiguous(dst)?;
    }
    let len = src.shape()[dim];
    let mut target = dst.layout().clone();
    target.shape[dim] = len;
    target.offset += start * target.strides[dim];
    let Some(cpu) = src.cpu_storage() else {
        crate::bail!(
            "write_slice_in_place: the source is on {}, not the host",
            src.device()
        );
    };
    let src_layout = src.layout().clone();
    let Some(Storage::Cpu(out)) = dst.storage_mut() else {
        crate::bail!("write_slice_in_place: internal: the destination storage is shared");
    };
    fn copy_runs<T: Copy>(out: &mut [T], target: &crate::Layout, src: &[T], sl: &crate::Layout) {
        let plan = Plan::new([target, sl]);
        let [to, so] = plan.inner_strides();
        plan.for_each_run(|[o, s], n| {
            for i in 0..n {
                out[o + i * to] = src[s + i * so];
            }
        });
    }
    with_elem!("write_slice_in_place", cpu, T => {
        let s: &[T] = <T as super::copy::CpuElem>::slice(cpu).expect("the caller cast the source");
        let o = <T as super::copy::CpuElem>::slice_mut(out).expect("one dtype");
        copy_runs(o, &target, s, &src_layout);
    });
    Ok(())
}
