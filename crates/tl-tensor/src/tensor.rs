//! The `Tensor` value: a shared storage handle, a layout (shape, strides, offset) and a dtype.
//! Cloning a tensor is cheap (the storage is reference counted); views share storage.

use crate::backend::Backend;
use crate::bail;
use crate::cpu::CPU;
use crate::device::{Device, DeviceStorage};
use crate::dtype::DType;
use crate::error::{Result, shape_str};
use crate::layout::Layout;
use crate::storage::{CpuStorage, Storage};
use half::{bf16, f16};
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct Tensor {
    storage: Arc<Storage>,
    layout: Layout,
    /// The op that made this tensor from tracked inputs ([`crate::autograd`]); `None` for
    /// ordinary tensors.
    node: Option<Arc<crate::autograd::Node>>,
}

impl Tensor {
    /// Wraps host data of the given shape; fails if the element count disagrees.
    pub fn from_cpu_storage(storage: CpuStorage, shape: &[usize]) -> Result<Tensor> {
        let n: usize = shape.iter().product();
        if storage.len() != n {
            bail!(
                "tensor: {} elements do not fill shape {} ({} needed)",
                storage.len(),
                shape_str(shape),
                n
            );
        }
        // Views of a mapped file allocate nothing.
        if !storage.is_shared() {
            crate::stats::count_allocation(storage.byte_len());
        }
        Ok(Tensor {
            storage: Arc::new(Storage::Cpu(storage)),
            layout: Layout::contiguous(shape),
            node: None,
        })
    }

    pub fn from_f32(data: Vec<f32>, shape: &[usize]) -> Result<Tensor> {
        Tensor::from_cpu_storage(CpuStorage::F32(data.into()), shape)
    }

    pub fn from_f16(data: Vec<f16>, shape: &[usize]) -> Result<Tensor> {
        Tensor::from_cpu_storage(CpuStorage::F16(data.into()), shape)
    }

    pub fn from_bf16(data: Vec<bf16>, shape: &[usize]) -> Result<Tensor> {
        Tensor::from_cpu_storage(CpuStorage::BF16(data.into()), shape)
    }

    pub fn from_i64(data: Vec<i64>, shape: &[usize]) -> Result<Tensor> {
        Tensor::from_cpu_storage(CpuStorage::I64(data.into()), shape)
    }

    pub fn from_bool(data: Vec<bool>, shape: &[usize]) -> Result<Tensor> {
        Tensor::from_cpu_storage(CpuStorage::Bool(data.into()), shape)
    }

    /// Wraps device memory (from a device backend) as a contiguous tensor of `shape`; fails if
    /// the element count disagrees. Device allocations are counted by the backend.
    pub fn from_device_storage(storage: Box<dyn DeviceStorage>, shape: &[usize]) -> Result<Tensor> {
        let n: usize = shape.iter().product();
        if storage.len() != n {
            bail!(
                "tensor: {} device elements do not fill shape {} ({} needed)",
                storage.len(),
                shape_str(shape),
                n
            );
        }
        Ok(Tensor {
            storage: Arc::new(Storage::Device(storage)),
            layout: Layout::contiguous(shape),
            node: None,
        })
    }

    /// Host f64 values converted to `dtype` (rounded for float types, truncated for i64,
    /// non-zero for bool).
    pub fn from_f64(data: &[f64], shape: &[usize], dtype: DType) -> Result<Tensor> {
        let storage = match dtype {
            DType::F32 => CpuStorage::F32(data.iter().map(|&x| x as f32).collect()),
            DType::F16 => CpuStorage::F16(data.iter().map(|&x| f16::from_f64(x)).collect()),
            DType::BF16 => CpuStorage::BF16(data.iter().map(|&x| bf16::from_f64(x)).collect()),
            DType::I64 => CpuStorage::I64(data.iter().map(|&x| x as i64).collect()),
            DType::Bool => CpuStorage::Bool(data.iter().map(|&x| x != 0.0).collect()),
            q => return Tensor::from_f64(data, shape, DType::F32)?.cast(q),
        };
        Tensor::from_cpu_storage(storage, shape)
    }

    /// A rank-0 tensor.
    pub fn scalar(value: f64, dtype: DType) -> Tensor {
        Tensor::from_f64(&[value], &[], dtype).expect("one element fills shape []")
    }

    /// A new view of the same storage with another layout. The caller guarantees that every
    /// offset the layout can address lies inside the storage.
    pub fn with_layout(&self, layout: Layout) -> Tensor {
        Tensor {
            storage: self.storage.clone(),
            layout,
            node: None,
        }
    }

    /// The autograd node of this tensor, if it is tracked.
    pub(crate) fn grad_node(&self) -> Option<&Arc<crate::autograd::Node>> {
        self.node.as_ref()
    }

    /// This tensor (shared storage) with `node` as its autograd node.
    pub(crate) fn with_node(mut self, node: Arc<crate::autograd::Node>) -> Tensor {
        self.node = Some(node);
        self
    }

    /// This tensor (shared storage) with no autograd node.
    pub(crate) fn without_node(&self) -> Tensor {
        Tensor {
            storage: self.storage.clone(),
            layout: self.layout.clone(),
            node: None,
        }
    }

    pub fn shape(&self) -> &[usize] {
        &self.layout.shape
    }

    pub fn rank(&self) -> usize {
        self.layout.rank()
    }

    pub fn numel(&self) -> usize {
        self.layout.numel()
    }

    pub fn dtype(&self) -> DType {
        self.storage.dtype()
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    pub fn device(&self) -> Device {
        match &*self.storage {
            Storage::Cpu(_) => Device::Cpu,
            Storage::Device(s) => s.device(),
        }
    }

    /// The backend that runs ops on this tensor's device. Every call counts as one dispatched
    /// op in [`crate::stats`]: `Tensor` methods call it once per backend op.
    pub fn backend(&self) -> &'static dyn Backend {
        crate::stats::count_op();
        match &*self.storage {
            Storage::Cpu(_) => &CPU,
            Storage::Device(s) => s.backend(),
        }
    }

    /// The storage for writing, when this tensor is its only holder (`None` when shared).
    pub fn storage_mut(&mut self) -> Option<&mut Storage> {
        Arc::get_mut(&mut self.storage)
    }

    /// True when both tensors share one storage allocation.
    pub fn same_storage(&self, other: &Tensor) -> bool {
        Arc::ptr_eq(&self.storage, &other.storage)
    }

    /// The host storage, if the tensor lives on the host.
    pub fn cpu_storage(&self) -> Option<&CpuStorage> {
        match &*self.storage {
            Storage::Cpu(s) => Some(s),
            Storage::Device(_) => None,
        }
    }

    /// The device storage, if the tensor lives on a device.
    pub fn device_storage(&self) -> Option<&dyn DeviceStorage> {
        match &*self.storage {
            Storage::Cpu(_) => None,
            Storage::Device(s) => Some(&**s),
        }
    }

    /// The one way host code reads a device tensor: submits the device's pending work, waits
    /// for it (counted as one sync in [`crate::stats`]) and returns a contiguous host copy.
    /// Host tensors are returned as they are (shared, no copy, no sync).
    pub fn synchronize_for_read(&self) -> Result<Tensor> {
        let Storage::Device(storage) = &*self.storage else {
            return Ok(self.clone());
        };
        let backend = storage.backend();
        // Gather a strided view on the device first, so that only its elements travel.
        let view = if self.is_contiguous() {
            self.clone()
        } else {
            crate::stats::count_op();
            backend.contiguous(self)?
        };
        crate::stats::count_sync();
        let host = backend.read_to_host(&view)?;
        Tensor::from_cpu_storage(host, self.shape())
    }

    /// A copy of this tensor on `device` (shared when already there). Host to device copies are
    /// queued without waiting; device to host goes through [`Tensor::synchronize_for_read`].
    pub fn to_device(&self, device: Device) -> Result<Tensor> {
        let here = self.device();
        if here == device {
            return Ok(self.clone());
        }
        let host = self.synchronize_for_read()?;
        if device == Device::Cpu {
            return Ok(host);
        }
        let host = if host.is_contiguous()
            && host.layout.offset == 0
            && host.storage.len() == host.numel()
        {
            host
        } else {
            crate::stats::count_op();
            CPU.contiguous(&host)?
        };
        let Some(data) = host.cpu_storage() else {
            bail!("to_device: the host copy of a {here} tensor is not in host memory");
        };
        crate::device::device_backend(device)?.upload(data, host.shape())
    }

    /// A host copy of this tensor (shared when already on the host); waits for the device.
    pub fn to_host(&self) -> Result<Tensor> {
        self.to_device(Device::Cpu)
    }

    /// This tensor on the current default device ([`crate::device::default_device`]).
    pub fn to_default_device(&self) -> Result<Tensor> {
        self.to_device(crate::device::default_device())
    }

    /// The host copy used by the infallible readers; a device that fails while being read is
    /// a broken runtime, not a user error, so it ends the program with the device's message.
    fn host_for_read(&self) -> Tensor {
        match self.synchronize_for_read() {
            Ok(t) => t,
            Err(e) => panic!(
                "reading a {} tensor back to the host failed: {e}",
                self.device()
            ),
        }
    }

    /// All elements in row-major order, converted to f64. Reads the device (waits) when the
    /// tensor is not on the host.
    pub fn to_vec_f64(&self) -> Vec<f64> {
        crate::stats::count_host_read();
        if self.dtype().is_quantized() {
            return crate::cpu::quantized::dequantize_all("to_vec_f64", self)
                .expect("quantized views keep whole blocks addressable")
                .into_iter()
                .map(f64::from)
                .collect();
        }
        let host = self.host_for_read();
        let Some(s) = host.cpu_storage() else {
            unreachable!("synchronize_for_read returns host tensors")
        };
        let mut out = Vec::with_capacity(host.numel());
        host.layout.for_each_offset(|o| out.push(s.get_f64(o)));
        out
    }

    /// All elements in row-major order, converted to f32.
    pub fn to_vec_f32(&self) -> Vec<f32> {
        self.to_vec_f64().into_iter().map(|x| x as f32).collect()
    }

    /// All elements in row-major order, converted to i64 (floats truncated).
    pub fn to_vec_i64(&self) -> Vec<i64> {
        if self.dtype() != DType::I64 {
            return self.to_vec_f64().into_iter().map(|x| x as i64).collect();
        }
        crate::stats::count_host_read();
        let host = self.host_for_read();
        match host.cpu_storage() {
            Some(CpuStorage::I64(v)) => {
                let mut out = Vec::with_capacity(host.numel());
                host.layout.for_each_offset(|o| out.push(v[o]));
                out
            }
            _ => unreachable!("an int64 tensor read to the host has int64 storage"),
        }
    }

    /// The single element of a one-element tensor, as f64.
    pub fn to_scalar_f64(&self) -> Result<f64> {
        if self.numel() != 1 {
            bail!(
                "expected a tensor with one element, got shape {}",
                shape_str(self.shape())
            );
        }
        // Through the fallible read: a device error becomes this call's error.
        let host = self.synchronize_for_read()?;
        Ok(host.to_vec_f64()[0])
    }
}
