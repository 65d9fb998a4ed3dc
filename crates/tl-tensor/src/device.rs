//! Devices a tensor can live on, the registry through which a device backend (CUDA) plugs in
//! at run time, and the default device that creation ops use.
//!
//! `tl-tensor` does not depend on any device crate: a backend crate implements
//! [`DeviceBackend`] and calls [`register_device_backend`] once; tensors on that device hold a
//! [`DeviceStorage`] that points back to its backend.
//!
//! Mixing devices: ops on tensors of two devices fail with an error naming both, with two
//! exceptions that keep host-made constants usable: a host tensor of one element (a scalar
//! lifted by the interpreter) and a host int64 index tensor (indices are host values in the
//! language) follow the other operand to its device.

use crate::backend::Backend;
use crate::bail;
use crate::dtype::DType;
use crate::error::Result;
use crate::storage::CpuStorage;
use crate::tensor::Tensor;
use std::cell::Cell;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Device {
    Cpu,
    /// An NVIDIA GPU, by ordinal.
    Cuda(u32),
}

impl Device {
    /// The device kind's name (`cpu`, `cuda`); [`Display`](std::fmt::Display) adds the ordinal.
    pub fn name(self) -> &'static str {
        match self {
            Device::Cpu => "cpu",
            Device::Cuda(_) => "cuda",
        }
    }

    /// Parses `cpu`, `cuda` (ordinal 0) or `cuda:N`.
    pub fn parse(text: &str) -> Result<Device> {
        match text {
            "cpu" => Ok(Device::Cpu),
            "cuda" | "gpu" => Ok(Device::Cuda(0)),
            _ => match text.strip_prefix("cuda:").map(str::parse::<u32>) {
                Some(Ok(n)) => Ok(Device::Cuda(n)),
                _ => bail!("unknown device '{text}' (expected cpu, cuda or cuda:N)"),
            },
        }
    }

    fn encode(self) -> u64 {
        match self {
            Device::Cpu => 0,
            Device::Cuda(n) => 1 + n as u64,
        }
    }

    fn decode(code: u64) -> Device {
        match code {
            0 => Device::Cpu,
            n => Device::Cuda((n - 1) as u32),
        }
    }
}

impl std::fmt::Display for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Device::Cpu => f.write_str("cpu"),
            Device::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

/// Device memory holding the elements of one tensor storage. Implemented by device backends;
/// the runtime only asks for its identity and size, and hands it back to its backend.
pub trait DeviceStorage: Send + Sync + std::fmt::Debug {
    /// The device the memory lives on.
    fn device(&self) -> Device;
    fn dtype(&self) -> DType;
    /// Number of elements.
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The backend that runs ops on this storage.
    fn backend(&self) -> &'static dyn DeviceBackend;
    /// For the backend to recover its concrete storage type.
    fn as_any(&self) -> &dyn std::any::Any;
}

/// What a device backend adds to [`Backend`]: moving data between host and device.
pub trait DeviceBackend: Backend {
    /// The device this backend runs on.
    fn device(&self) -> Device;

    /// A new device tensor of `shape` holding the (row-major, contiguous) host `data`. The copy
    /// is queued; the call does not wait for the device.
    fn upload(&self, data: &CpuStorage, shape: &[usize]) -> Result<Tensor>;

    /// The elements of the device tensor `x` (a contiguous view of a device storage) in
    /// row-major order. Submits all pending work of the calling thread, waits for it, then
    /// copies. Called only by [`Tensor::synchronize_for_read`], which counts the sync.
    fn read_to_host(&self, x: &Tensor) -> Result<CpuStorage>;
}

static DEVICE_BACKENDS: RwLock<Vec<&'static dyn DeviceBackend>> = RwLock::new(Vec::new());

/// Makes `backend` the one that creates tensors on `backend.device()` (a later registration
/// for the same device replaces an earlier one).
pub fn register_device_backend(backend: &'static dyn DeviceBackend) {
    let mut all = DEVICE_BACKENDS.write().unwrap_or_else(|e| e.into_inner());
    all.retain(|b| b.device() != backend.device());
    all.push(backend);
}

/// The registered backend of `device`, or an error saying that none is.
pub fn device_backend(device: Device) -> Result<&'static dyn DeviceBackend> {
    let all = DEVICE_BACKENDS.read().unwrap_or_else(|e| e.into_inner());
    match all.iter().find(|b| b.device() == device) {
        Some(b) => Ok(*b),
        None => match device {
            Device::Cpu => bail!("the cpu is not a device backend"),
            Device::Cuda(_) => bail!(
                "device {device} is not available: the CUDA backend was not initialised (a build with --features cuda and a GPU are needed)"
            ),
        },
    }
}

static DEFAULT_DEVICE: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static THREAD_DEFAULT_DEVICE: Cell<Option<Device>> = const { Cell::new(None) };
}

/// Sets the process-wide device on which creation ops (`zeros`, `full`, `rand`, `arange`, ...)
/// make new tensors. Fails when no backend is registered for it.
pub fn set_default_device(device: Device) -> Result<()> {
    if device != Device::Cpu {
        device_backend(device)?;
    }
    DEFAULT_DEVICE.store(device.encode(), Ordering::Relaxed);
    Ok(())
}

/// Sets (Some) or clears (None) the calling thread's own default device, which overrides the
/// process-wide one. Fails when no backend is registered for it.
pub fn set_thread_default_device(device: Option<Device>) -> Result<()> {
    if let Some(d) = device
        && d != Device::Cpu
    {
        device_backend(d)?;
    }
    THREAD_DEFAULT_DEVICE.with(|c| c.set(device));
    Ok(())
}

/// The device creation ops use on this thread.
pub fn default_device() -> Device {
    THREAD_DEFAULT_DEVICE
        .with(|c| c.get())
        .unwrap_or_else(|| Device::decode(DEFAULT_DEVICE.load(Ordering::Relaxed)))
}

/// Whether a host tensor may follow a device operand implicitly (see the module doc).
fn may_follow(t: &Tensor, is_index: bool) -> bool {
    t.numel() == 1 || (is_index && t.dtype() == DType::I64)
}

/// The operands of `op` on one device. `index_from` is the position from which operands are
/// index tensors (`usize::MAX`: none). Host scalars and host index tensors move to the device
/// of the others; any other mix fails with an error naming both devices.
pub(crate) fn co_locate(op: &str, operands: &[&Tensor], index_from: usize) -> Result<Vec<Tensor>> {
    let mut target = Device::Cpu;
    for t in operands {
        let d = t.device();
        if d != Device::Cpu {
            if target != Device::Cpu && target != d {
                bail!("{op}: operands are on different devices ({target} and {d})");
            }
            target = d;
        }
    }
    operands
        .iter()
        .enumerate()
        .map(|(i, t)| {
            if t.device() == target {
                Ok((*t).clone())
            } else if may_follow(t, i >= index_from) {
                t.to_device(target)
            } else {
                bail!(
                    "{op}: operands are on different devices ({target} and {}); move one with to_device or to_host",
                    t.device()
                )
            }
        })
        .collect()
}

/// The best of `repeats` timed copies of `bytes` bytes on `device` (each waited for), as bytes
/// moved per second: each copy reads and writes `bytes`, so `2 * bytes / seconds`. On a device
/// the copy is the backend's own `contiguous` into a fresh tensor (the pool holds its memory
/// after an untimed first copy); on the host it is a memory copy between two touched buffers.
/// This is what the runtime itself can move, the yardstick for how close a memory-bound kernel
/// comes to the memory system's limit.
pub fn copy_bandwidth(device: Device, bytes: usize, repeats: usize) -> Result<f64> {
    let backend: &dyn Backend = match device {
        // A fresh host tensor per copy would time the page faults of its first touch, not the
        // memory: the host copies between two buffers already touched.
        Device::Cpu => return Ok(host_copy_bandwidth(bytes, repeats)),
        d => device_backend(d)?,
    };
    let n = (bytes / 8).max(1);
    // Waits for the device by reading one element.
    let wait = |t: &Tensor| t.narrow(0, 0, 1)?.synchronize_for_read().map(|_| ());
    let source = backend.full(&[n], 1.0, DType::I64)?;
    wait(&source)?;
    let mut best = f64::INFINITY;
    // One untimed copy first: the device allocator then holds the destination's memory.
    for i in 0..=repeats.max(1) {
        let t0 = std::time::Instant::now();
        let copy = backend.contiguous(&source)?;
        wait(&copy)?;
        if i > 0 {
            best = best.min(t0.elapsed().as_secs_f64());
        }
    }
    Ok(2.0 * (n * 8) as f64 / best.max(1e-9))
}

/// Sum in 16 independent lanes, so the loop vectorises and runs at memory speed.
fn lane_sum(c: &[f32]) -> f32 {
    let mut lanes = [0f32; 16];
    for ch in c.chunks_exact(16) {
        for (l, v) in lanes.iter_mut().zip(ch) {
            *l += v;
        }
    }
    lanes.iter().sum()
}

/// Bytes per second of reading `bytes` of host memory (a touched buffer, summed), the best of
/// `repeats`: on every worker thread when `all_threads` (what the CPU mat-vecs of a decode
/// step do with a model's weights), else on the calling thread.
pub fn host_read_bandwidth(bytes: usize, repeats: usize, all_threads: bool) -> f64 {
    use rayon::prelude::*;
    let data: Vec<f32> = (0..(bytes / 4).max(16)).map(|i| (i % 7) as f32).collect();
    let mut best = f64::INFINITY;
    for _ in 0..repeats.max(1) {
        let t0 = std::time::Instant::now();
        let total: f32 = if all_threads {
            data.par_chunks(1 << 16).map(lane_sum).sum()
        } else {
            data.chunks(1 << 16).map(lane_sum).sum()
        };
        std::hint::black_box(total);
        best = best.min(t0.elapsed().as_secs_f64());
    }
    (data.len() * 4) as f64 / best.max(1e-9)
}

/// `copy_bandwidth` on the host: the best of `repeats` copies between two touched buffers.
fn host_copy_bandwidth(bytes: usize, repeats: usize) -> f64 {
    let n = bytes.max(8);
    let source: Vec<u8> = (0..n).map(|i| i as u8).collect();
    let mut target = vec![0u8; n];
    let mut best = f64::INFINITY;
    for _ in 0..repeats.max(1) {
        let t0 = std::time::Instant::now();
        target.copy_from_slice(&source);
        std::hint::black_box(&mut target);
        best = best.min(t0.elapsed().as_secs_f64());
    }
    2.0 * n as f64 / best.max(1e-9)
}
