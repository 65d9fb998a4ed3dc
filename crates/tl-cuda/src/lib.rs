//! `tl-cuda`: the CUDA backend of the TensorLogic runtime.
//!
//! CUDA is loaded at run time (`cudarc` with dynamic loading), so this crate builds on machines
//! without CUDA, and [`init`] turns a missing driver, library or GPU into an error instead of
//! a crash. Every op of [`tl_tensor::Backend`] runs on the device:
//! - each host thread queues work on its own stream; nothing waits for the device except
//!   [`tl_tensor::Tensor::synchronize_for_read`] (reads to the host), which counts its syncs;
//! - device memory comes from a caching allocator (per-stream pools of size classes), so a
//!   steady-state loop allocates nothing from the driver;
//! - kernels are our own CUDA C (`kernels.cu`), compiled once per process by NVRTC for the
//!   device's architecture and cached on disk (`$XDG_CACHE_HOME/tensorlogic` or
//!   `~/.cache/tensorlogic`); matrix products go through cuBLAS with f32 accumulation.
//!
//! Errors that only the device can see (int division by zero, an index out of range) are
//! flagged by the kernels and reported by the next read to the host.

mod blas;
mod ops;
mod quant;
mod runtime;
mod submit;

pub use submit::{DEFAULT_GROUP_SIZE, launch_group_size, set_launch_group_size};

use cudarc::driver::CudaContext;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tl_tensor::device::{DeviceBackend, register_device_backend};
use tl_tensor::storage::CpuStorage;
use tl_tensor::{DType, Device, Result, Tensor, TensorError, stats};

use runtime::{Kernels, driver_err, thread_stream};

/// The CUDA backend of one GPU.
pub struct CudaBackend {
    device: Device,
    ordinal: u32,
    ctx: Arc<CudaContext>,
    kernels: Kernels,
    /// The device's name and compute capability, for messages and `--stats`.
    description: String,
    /// Dynamic shared memory a block may use (opt-in maximum), bytes.
    max_shared_bytes: usize,
}

/// Why CUDA cannot be used here, or Ok when a driver, cuBLAS, NVRTC and a GPU are present.
/// Checks library presence first: `cudarc` panics when a library is missing.
pub fn probe() -> std::result::Result<(), String> {
    // SAFETY: these only try to open the shared libraries.
    let (driver, blas, nvrtc) = unsafe {
        (
            cudarc::driver::sys::is_culib_present(),
            cudarc::cublas::sys::is_culib_present(),
            cudarc::nvrtc::sys::is_culib_present(),
        )
    };
    if !driver {
        return Err("no CUDA driver (libcuda.so not found)".into());
    }
    if !blas {
        return Err("cuBLAS not found (libcublas.so)".into());
    }
    if !nvrtc {
        return Err("NVRTC not found (libnvrtc.so)".into());
    }
    cudarc::driver::result::init().map_err(|e| format!("the CUDA driver did not start: {e:?}"))?;
    match CudaContext::device_count() {
        Ok(0) => Err("no CUDA device".into()),
        Ok(_) => Ok(()),
        Err(e) => Err(format!("cannot count CUDA devices: {e:?}")),
    }
}

/// PTX of the backend's kernels for a virtual architecture such as `compute_90`, compiled by
/// NVRTC (or read from the disk cache). Needs only NVRTC, no GPU: tests use it to check the
/// kernel source on machines without a device.
pub fn compile_kernels(arch: &str) -> Result<String> {
    // SAFETY: only tries to open the library.
    if !unsafe { cudarc::nvrtc::sys::is_culib_present() } {
        return Err(TensorError("cuda: NVRTC not found (libnvrtc.so)".into()));
    }
    runtime::kernel_ptx(arch)
}

static POISON_NEW_TENSORS: AtomicBool = AtomicBool::new(false);

/// When on, every new device tensor is filled with 0xFF bytes (NaN for floats, -1 for int64,
/// true for bool) before the op that produces it runs, so that tests can see elements an op
/// failed to write. Off by default (it costs a memset per allocation).
pub fn set_poison_new_tensors(on: bool) {
    POISON_NEW_TENSORS.store(on, Ordering::Relaxed);
}

pub(crate) fn poison_new_tensors() -> bool {
    POISON_NEW_TENSORS.load(Ordering::Relaxed)
}

static BACKENDS: Mutex<Vec<&'static CudaBackend>> = Mutex::new(Vec::new());

/// Starts the backend of GPU `ordinal` (once per process; later calls return the same one),
/// compiling or loading the kernels, and registers it with `tl-tensor` so that
/// `Device::Cuda(ordinal)` tensors can be created.
pub fn init(ordinal: u32) -> Result<&'static CudaBackend> {
    let mut all = BACKENDS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(b) = all.iter().find(|b| b.ordinal == ordinal) {
        return Ok(b);
    }
    probe().map_err(|why| TensorError(format!("cuda is not available: {why}")))?;
    let count = CudaContext::device_count().map_err(driver_err("counting devices"))?;
    if ordinal as i32 >= count {
        return Err(TensorError(format!(
            "cuda:{ordinal} does not exist ({count} CUDA device(s))"
        )));
    }
    let ctx = CudaContext::new(ordinal as usize).map_err(driver_err("creating a context"))?;
    match std::env::var("TL_CUDA_PROFILE").as_deref() {
        Ok("" | "0") | Err(_) => {}
        Ok("host") => HOST_PROFILE.store(true, Ordering::Relaxed),
        Ok(_) => {
            HOST_PROFILE.store(true, Ordering::Relaxed);
            runtime::PROFILE.store(true, Ordering::Relaxed);
        }
    }
    // Streams and events are managed here (raw pointers, one stream per thread).
    // SAFETY: no cudarc-managed allocation exists yet on this context.
    unsafe { ctx.disable_event_tracking() };
    let (major, minor) = ctx
        .compute_capability()
        .map_err(driver_err("reading the compute capability"))?;
    let name = ctx.name().unwrap_or_else(|_| "unknown GPU".into());
    let arch = format!("compute_{major}{minor}");
    let ptx = runtime::kernel_ptx(&arch)?;
    let kernels = runtime::load_kernels(&ctx, ptx)?;
    let max_shared_bytes = ctx
        .attribute(cudarc::driver::sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN)
        .map(|v| v as usize)
        .unwrap_or(48 * 1024);
    let backend: &'static CudaBackend = Box::leak(Box::new(CudaBackend {
        device: Device::Cuda(ordinal),
        ordinal,
        ctx,
        kernels,
        description: format!("{name} (sm_{major}{minor})"),
        max_shared_bytes,
    }));
    ops::prepare_attention(backend)?;
    register_device_backend(backend);
    all.push(backend);
    Ok(backend)
}

/// `TL_CUDA_PROFILE=host`: report only the host time of submission (launches stay grouped).
static HOST_PROFILE: AtomicBool = AtomicBool::new(false);

/// With `TL_CUDA_PROFILE` set: the host time spent handing work to the driver and (unless it
/// is `host`) a table of the device time each kernel took over the calling thread's launches
/// since the last report (waits for the device); else `None`.
pub fn profile_report() -> Option<String> {
    if !HOST_PROFILE.load(Ordering::Relaxed) {
        return None;
    }
    let mut out = String::from("cuda host time in driver calls:\n");
    for t in [
        &submit::KERNEL_LAUNCH_TIME,
        &submit::NODE_UPDATE_TIME,
        &submit::GRAPH_LAUNCH_TIME,
        &submit::CAPTURE_TIME,
    ] {
        let (calls, ms) = t.totals();
        out.push_str(&format!(
            "  {:<22} {calls:>8} calls {ms:>10.3} ms {:>8.2} us/call\n",
            t.what,
            1e3 * ms / calls.max(1) as f64
        ));
    }
    if !runtime::PROFILE.load(Ordering::Relaxed) {
        return Some(out);
    }
    let backends: Vec<&'static CudaBackend> =
        BACKENDS.lock().unwrap_or_else(|e| e.into_inner()).clone();
    for b in backends {
        let s = thread_stream(b).ok()?;
        let (rows, span) = s.take_profile().ok()?;
        let busy: f64 = rows.iter().map(|r| r.2).sum();
        out.push_str(&format!(
            "cuda profile ({}): {:.3} ms of kernels in a {:.3} ms span ({:.0}% busy)\n",
            b.description,
            busy,
            span,
            100.0 * busy / span.max(1e-9)
        ));
        out.push_str("  kernel                 launches   total ms   mean us   share\n");
        for (name, n, ms) in rows {
            out.push_str(&format!(
                "  {name:<22} {n:>8} {ms:>10.3} {:>9.2} {:>6.1}%\n",
                1e3 * ms / n as f64,
                100.0 * ms / busy.max(1e-9)
            ));
        }
    }
    Some(out)
}

impl CudaBackend {
    /// The device's name and compute capability.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// Waits until the calling thread's stream has finished its work (for timing and tests;
    /// counted as a sync).
    pub fn synchronize(&self) -> Result<()> {
        let s = thread_stream(self)?;
        stats::count_sync();
        s.synchronize_and_check()
    }
}

fn host_bytes(data: &CpuStorage) -> Result<(&[u8], DType)> {
    fn bytes<T>(v: &[T]) -> &[u8] {
        // SAFETY: plain numeric data viewed as bytes (bool is one byte, 0 or 1).
        unsafe { std::slice::from_raw_parts(v.as_ptr() as *const u8, std::mem::size_of_val(v)) }
    }
    Ok(match data {
        CpuStorage::F32(v) => (bytes(v), DType::F32),
        CpuStorage::F16(v) => (bytes(v), DType::F16),
        CpuStorage::BF16(v) => (bytes(v), DType::BF16),
        CpuStorage::I64(v) => (bytes(v), DType::I64),
        CpuStorage::Bool(v) => (bytes(v), DType::Bool),
        CpuStorage::Quantized(kind, blocks, _) => (blocks.as_ref(), kind.dtype()),
    })
}

impl DeviceBackend for CudaBackend {
    fn device(&self) -> Device {
        self.device
    }

    fn upload(&self, data: &CpuStorage, shape: &[usize]) -> Result<Tensor> {
        let backend = self.static_self()?;
        let s = thread_stream(backend)?;
        let (bytes, dtype) = host_bytes(data)?;
        let out = backend.alloc_tensor(&s, shape, dtype)?;
        if bytes.len() != dtype.bytes_for(out.numel()) {
            return Err(TensorError(format!(
                "to_device: {} bytes of host data do not fill shape {:?} of {dtype}",
                bytes.len(),
                shape
            )));
        }
        let dst = backend.input("to_device", &s, &out)?;
        if !bytes.is_empty() {
            // A synchronous copy from pageable memory: the host buffer may be freed as soon as
            // this returns, so the copy must have read it (the driver stages it; no kernel
            // work is waited for beyond what the copy itself orders).
            // SAFETY: `dst` holds at least `bytes.len()` bytes.
            unsafe {
                cudarc::driver::result::memcpy_htod_async(dst, bytes, s.flushed()?)
                    .map_err(driver_err("copying to the device"))?;
            }
            stats::count_host_to_device(bytes.len());
        }
        Ok(out)
    }

    fn read_to_host(&self, x: &Tensor) -> Result<CpuStorage> {
        let backend = self.static_self()?;
        let s = thread_stream(backend)?;
        let src = backend.input("to_host", &s, x)?;
        let dtype = x.dtype();
        let n = x.numel();
        let offset_bytes = (x.layout().offset * dtype.size_in_bytes()) as u64;
        // Copy into the typed host vector after the stream's pending work (stream order),
        // then wait for the stream.
        macro_rules! read {
            ($t:ty, $variant:ident) => {{
                let mut v: Vec<$t> = vec![<$t>::default(); n];
                if n > 0 {
                    // SAFETY: the source range lies in the storage; `v` outlives the wait below.
                    unsafe {
                        cudarc::driver::result::memcpy_dtoh_async(
                            &mut v,
                            src + offset_bytes,
                            s.flushed()?,
                        )
                        .map_err(driver_err("copying to the host"))?;
                    }
                }
                s.synchronize_and_check()?;
                stats::count_device_to_host(n * dtype.size_in_bytes());
                CpuStorage::$variant(v.into())
            }};
        }
        Ok(match dtype {
            DType::F32 => read!(f32, F32),
            DType::F16 => read!(half::f16, F16),
            DType::BF16 => read!(half::bf16, BF16),
            DType::I64 => read!(i64, I64),
            DType::Bool => {
                // Read bytes, not `bool`s: a byte other than 0 or 1 (unwritten memory) must
                // not become an invalid `bool`.
                let mut v = vec![0u8; n];
                if n > 0 {
                    // SAFETY: the source range lies in the storage; `v` outlives the wait below.
                    unsafe {
                        cudarc::driver::result::memcpy_dtoh_async(
                            &mut v,
                            src + offset_bytes,
                            s.flushed()?,
                        )
                        .map_err(driver_err("copying to the host"))?;
                    }
                }
                s.synchronize_and_check()?;
                stats::count_device_to_host(n);
                CpuStorage::Bool(v.into_iter().map(|b| b != 0).collect::<Vec<bool>>().into())
            }
            packed => {
                // The contiguous view's blocks: quantized views keep their offset on a block
                // boundary.
                let kind = packed
                    .ggml_type()
                    .filter(|k| k.is_quantized())
                    .ok_or_else(|| {
                        TensorError(format!(
                            "not supported yet: {} tensors on the CUDA backend",
                            packed.name()
                        ))
                    })?;
                let start = (x.layout().offset / kind.block_size() * kind.block_bytes()) as u64;
                let mut v = vec![0u8; packed.bytes_for(n)];
                if !v.is_empty() {
                    // SAFETY: the range lies in the storage; `v` outlives the wait below.
                    unsafe {
                        cudarc::driver::result::memcpy_dtoh_async(
                            &mut v,
                            src + start,
                            s.flushed()?,
                        )
                        .map_err(driver_err("copying to the host"))?;
                    }
                }
                s.synchronize_and_check()?;
                stats::count_device_to_host(v.len());
                CpuStorage::Quantized(kind, v.into(), Default::default())
            }
        })
    }
}

impl CudaBackend {
    /// This backend as the `'static` reference that storages keep (every backend is leaked
    /// once by [`init`]).
    fn static_self(&self) -> Result<&'static CudaBackend> {
        let all = BACKENDS.lock().unwrap_or_else(|e| e.into_inner());
        all.iter()
            .copied()
            .find(|b| std::ptr::eq(*b, self))
            .ok_or_else(|| TensorError("cuda: backend used before init".into()))
    }
}
