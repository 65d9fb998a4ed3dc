//! The CUDA runtime underneath the backend: the device context, one stream per host thread,
//! the caching allocator, device storages, the NVRTC-compiled kernel module (cached on disk)
//! and kernel launches.

use cudarc::driver::sys::{self, CUdeviceptr};
use cudarc::driver::{CudaContext, CudaFunction, CudaModule, CudaStream, result};
use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tl_tensor::device::{DeviceBackend, DeviceStorage};
use tl_tensor::{DType, Device, Layout, Result, Tensor, TensorError, stats};

use crate::CudaBackend;

/// The CUDA C source of every kernel.
pub(crate) const KERNEL_SOURCE: &str =
    concat!(include_str!("kernels.cu"), include_str!("quant.cu"));

/// Names of the kernels in [`KERNEL_SOURCE`].
const KERNEL_NAMES: &[&str] = &[
    "tl_attention_rows",
    "tl_attention_causal",
    "tl_attention_split",
    "tl_attention_combine",
    "tl_dequant",
    "tl_embedding_q",
    "tl_matvec_q",
    "tl_matvec_f",
    "tl_matvec_q1",
    "tl_matvec_f1",
    "tl_matvec_f1_staged",
    "tl_matvec_q1_staged",
    "tl_fill",
    "tl_copy",
    "tl_unary",
    "tl_binary",
    "tl_cast",
    "tl_clamp",
    "tl_where",
    "tl_reduce_f",
    "tl_reduce_i",
    "tl_arg_reduce",
    "tl_arg_reduce_i",
    "tl_gather",
    "tl_index_select",
    "tl_softmax",
    "tl_rms_norm",
    "tl_layer_norm",
    "tl_rope",
    "tl_write_kv_rope",
    "tl_silu_mul",
    "tl_attention",
];

/// Bits a kernel sets in its stream's error word (see kernels.cu).
const ERR_DIV_ZERO: i32 = 1;
const ERR_INDEX: i32 = 2;
const ERR_NEG_POW: i32 = 4;

pub(crate) fn driver_err(what: &str) -> impl Fn(result::DriverError) -> TensorError + '_ {
    move |e| TensorError(format!("cuda: {what}: {e:?}"))
}

/// The kernel code of a dtype (kernels.cu's DT_*); quantized block types have none (the
/// backend refuses them before any kernel runs).
pub(crate) fn dtype_code(dtype: DType) -> i32 {
    match dtype {
        DType::F32 => 0,
        DType::F16 => 1,
        DType::BF16 => 2,
        DType::I64 => 3,
        DType::Bool => 4,
        _ => -1,
    }
}

/// The compiled kernels, looked up by name.
pub(crate) struct Kernels {
    functions: HashMap<&'static str, CudaFunction>,
    _module: Arc<CudaModule>,
}

impl Kernels {
    /// The kernel called `name` and its name as stored (for the profile).
    pub(crate) fn get(&self, name: &str) -> Result<(&'static str, &CudaFunction)> {
        self.functions
            .get_key_value(name)
            .map(|(k, f)| (*k, f))
            .ok_or_else(|| TensorError(format!("cuda: kernel {name} is not in the module")))
    }
}

/// FNV-1a: a hash that stays the same across builds, for the on-disk cache key.
fn stable_hash(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for &b in *part {
            h ^= b as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h ^= 0xff;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// `$XDG_CACHE_HOME/tensorlogic` or `~/.cache/tensorlogic`.
fn cache_dir() -> Option<std::path::PathBuf> {
    if let Some(x) = std::env::var_os("XDG_CACHE_HOME").filter(|x| !x.is_empty()) {
        return Some(std::path::PathBuf::from(x).join("tensorlogic"));
    }
    std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".cache/tensorlogic"))
}

fn nvrtc_version() -> (i32, i32) {
    let (mut major, mut minor) = (0, 0);
    // SAFETY: nvrtcVersion only writes the two integers.
    unsafe {
        cudarc::nvrtc::sys::nvrtcVersion(&mut major, &mut minor);
    }
    (major, minor)
}

/// PTX of the kernel source for `arch` (`compute_90`), from the disk cache when an earlier
/// run compiled the same source with the same NVRTC for the same arch.
pub(crate) fn kernel_ptx(arch: &str) -> Result<String> {
    let (major, minor) = nvrtc_version();
    let nvrtc = format!("{major}.{minor}");
    let key = stable_hash(&[KERNEL_SOURCE.as_bytes(), arch.as_bytes(), nvrtc.as_bytes()]);
    let path = cache_dir().map(|d| d.join(format!("kernels-{key:016x}.ptx")));
    if let Some(p) = &path
        && let Ok(text) = std::fs::read_to_string(p)
    {
        return Ok(text);
    }
    let opts = cudarc::nvrtc::CompileOptions {
        options: vec![format!("--gpu-architecture={arch}"), "--std=c++17".into()],
        ..Default::default()
    };
    let ptx = cudarc::nvrtc::compile_ptx_with_opts(KERNEL_SOURCE, opts).map_err(|e| {
        TensorError(format!(
            "cuda: compiling the kernels with NVRTC {nvrtc} for {arch} failed: {e:?}"
        ))
    })?;
    let text = ptx.to_src();
    // The cache is an optimisation: a read-only home only costs the next run a compile.
    if let Some(p) = &path
        && let Some(dir) = p.parent()
        && std::fs::create_dir_all(dir).is_ok()
    {
        let tmp = p.with_extension(format!("tmp{}", std::process::id()));
        if std::fs::write(&tmp, &text).is_ok() {
            let _ = std::fs::rename(&tmp, p);
        }
    }
    Ok(text)
}

pub(crate) fn load_kernels(ctx: &Arc<CudaContext>, ptx: String) -> Result<Kernels> {
    let module = ctx
        .load_module(cudarc::nvrtc::Ptx::from_src(ptx))
        .map_err(driver_err("loading the kernel module"))?;
    let mut functions = HashMap::new();
    for &name in KERNEL_NAMES {
        let f = module
            .load_function(name)
            .map_err(driver_err("looking up a kernel"))?;
        functions.insert(name, f);
    }
    Ok(Kernels {
        functions,
        _module: module,
    })
}

/// A cuBLAS handle owned by one stream.
pub(crate) struct BlasHandle(pub(crate) cudarc::cublas::sys::cublasHandle_t);
// SAFETY: the handle is used only by the thread that owns its stream, and destroyed once.
unsafe impl Send for BlasHandle {}
unsafe impl Sync for BlasHandle {}

/// A launch timed for `TL_CUDA_PROFILE`: the kernel's name, its start and end events.
struct TimedLaunch(&'static str, sys::CUevent, sys::CUevent);
// SAFETY: event handles are usable from any thread.
unsafe impl Send for TimedLaunch {}

/// Device time per kernel name: (name, launches, milliseconds), longest first.
pub(crate) type KernelTimes = Vec<(&'static str, u64, f64)>;

/// One host thread's stream with what hangs off it: the cached free blocks of memory last used
/// on it, its error word and its cuBLAS handle.
pub(crate) struct ThreadStream {
    pub(crate) stream: Arc<CudaStream>,
    ctx: Arc<CudaContext>,
    /// Free blocks by size class; reusing one on the same stream needs no synchronisation.
    /// The lowest free address of a class is handed out first, so that a step that frees
    /// what it allocated gets the same addresses the next time it runs (replayed launch
    /// groups then keep their arguments).
    pool: Mutex<HashMap<usize, BTreeSet<CUdeviceptr>>>,
    /// A device i32 that kernels set bits in (division by zero, index out of range).
    err_word: CUdeviceptr,
    /// True after a launch of a kernel that may set `err_word`, until the next read.
    pub(crate) may_have_error: AtomicBool,
    pub(crate) blas: Mutex<Option<BlasHandle>>,
    /// Timed launches (name, start and end event) while `TL_CUDA_PROFILE` is set.
    profile: Mutex<Vec<TimedLaunch>>,
    /// Launches queued on the host and the captured groups replayed as graphs.
    submit: crate::submit::Submitter,
}

impl ThreadStream {
    fn new(ctx: &Arc<CudaContext>) -> Result<ThreadStream> {
        ctx.bind_to_thread()
            .map_err(driver_err("binding the context"))?;
        let stream = ctx.new_stream().map_err(driver_err("creating a stream"))?;
        // SAFETY: a fresh allocation of 4 bytes, zeroed before any kernel can see it.
        let err_word = unsafe {
            let p = result::malloc_sync(4).map_err(driver_err("allocating the error word"))?;
            result::memset_d8_sync(p, 0, 4).map_err(driver_err("clearing the error word"))?;
            p
        };
        Ok(ThreadStream {
            stream,
            ctx: ctx.clone(),
            pool: Mutex::new(HashMap::new()),
            err_word,
            may_have_error: AtomicBool::new(false),
            blas: Mutex::new(None),
            profile: Mutex::new(Vec::new()),
            submit: Default::default(),
        })
    }

    /// The driver's handle of the stream, after handing it the launches queued so far (so
    /// that work queued through the handle runs after them).
    pub(crate) fn flushed(&self) -> Result<sys::CUstream> {
        self.submit.flush_pending_launches(self.raw())?;
        Ok(self.raw())
    }

    fn raw(&self) -> sys::CUstream {
        self.stream.cu_stream()
    }

    pub(crate) fn err_word(&self) -> CUdeviceptr {
        self.err_word
    }

    /// A block of at least `bytes` from the pool, or from the driver on a miss.
    fn alloc(&self, bytes: usize) -> Result<(CUdeviceptr, usize)> {
        let class = size_class(bytes);
        if let Some(p) = self
            .pool
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(&class)
            .and_then(BTreeSet::pop_first)
        {
            return Ok((p, class));
        }
        // SAFETY: plain device allocation; freed only through the pool.
        let first = unsafe { result::malloc_sync(class) };
        let p = match first {
            Ok(p) => p,
            Err(_) => {
                // Out of memory: give the cached blocks back to the driver and try once more.
                self.release_pool()?;
                unsafe { result::malloc_sync(class) }.map_err(|e| {
                    TensorError(format!(
                        "cuda: out of device memory allocating {bytes} bytes: {e:?}"
                    ))
                })?
            }
        };
        stats::count_device_allocation(class);
        Ok((p, class))
    }

    fn give_back(&self, ptr: CUdeviceptr, class: usize) {
        self.pool
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(class)
            .or_default()
            .insert(ptr);
    }

    /// Frees every cached block (after the stream's pending work, which may still use them).
    fn release_pool(&self) -> Result<()> {
        self.flushed()?;
        self.stream
            .synchronize()
            .map_err(driver_err("synchronising"))?;
        let blocks: Vec<CUdeviceptr> = self
            .pool
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
            .flat_map(|(_, v)| v)
            .collect();
        for p in blocks {
            // SAFETY: pooled blocks are owned by no tensor.
            unsafe { result::free_sync(p) }.map_err(driver_err("freeing cached memory"))?;
        }
        Ok(())
    }

    /// Runs `queue` (which queues device work named `name` on this stream), timed with a pair
    /// of events when profiling is on.
    pub(crate) fn profiled<R>(
        &self,
        name: &'static str,
        queue: impl FnOnce() -> Result<R>,
    ) -> Result<R> {
        if !PROFILE.load(Ordering::Relaxed) {
            return queue();
        }
        let timed_event = || {
            result::event::create(sys::CUevent_flags::CU_EVENT_DEFAULT)
                .map_err(driver_err("creating a timing event"))
        };
        let (start, end) = (timed_event()?, timed_event()?);
        // SAFETY: live events recorded on this thread's live stream.
        unsafe { result::event::record(start, self.flushed()?) }
            .map_err(driver_err("recording"))?;
        let out = queue()?;
        unsafe { result::event::record(end, self.flushed()?) }.map_err(driver_err("recording"))?;
        self.profile
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(TimedLaunch(name, start, end));
        Ok(out)
    }

    /// Device time per kernel name of the launches timed so far (waits for the stream and
    /// forgets the records): (name, launches, milliseconds), plus the span from the first
    /// start to the last end.
    pub(crate) fn take_profile(&self) -> Result<(KernelTimes, f64)> {
        self.flushed()?;
        self.stream
            .synchronize()
            .map_err(driver_err("waiting for the device"))?;
        let records = std::mem::take(&mut *self.profile.lock().unwrap_or_else(|e| e.into_inner()));
        let mut by_name: KernelTimes = Vec::new();
        let mut span = 0.0;
        if let (Some(first), Some(last)) = (records.first(), records.last()) {
            // SAFETY: recorded events of an idle stream.
            span = unsafe { result::event::elapsed(first.1, last.2) }.unwrap_or(0.0) as f64;
        }
        for TimedLaunch(name, start, end) in records {
            // SAFETY: both events were recorded and have completed (the stream is idle).
            let ms = unsafe { result::event::elapsed(start, end) }.unwrap_or(0.0) as f64;
            unsafe {
                let _ = result::event::destroy(start);
                let _ = result::event::destroy(end);
            }
            match by_name.iter_mut().find(|e| e.0 == name) {
                Some(e) => {
                    e.1 += 1;
                    e.2 += ms;
                }
                None => by_name.push((name, 1, ms)),
            }
        }
        by_name.sort_by(|a, b| b.2.total_cmp(&a.2));
        Ok((by_name, span))
    }

    /// Waits for this stream, then reports (and clears) errors that kernels flagged.
    pub(crate) fn synchronize_and_check(&self) -> Result<()> {
        self.flushed()?;
        self.stream
            .synchronize()
            .map_err(driver_err("waiting for the device"))?;
        if !self.may_have_error.swap(false, Ordering::Relaxed) {
            return Ok(());
        }
        let mut word = [0i32];
        // SAFETY: err_word is a live 4-byte allocation; the stream is idle.
        unsafe {
            result::memcpy_dtoh_sync(&mut word, self.err_word)
                .map_err(driver_err("reading the error word"))?;
            result::memset_d8_sync(self.err_word, 0, 4)
                .map_err(driver_err("clearing the error word"))?;
        }
        stats::count_device_to_host(4);
        let w = word[0];
        if w == 0 {
            return Ok(());
        }
        let mut what = Vec::new();
        if w & ERR_DIV_ZERO != 0 {
            what.push("integer division by zero (div or rem)");
        }
        if w & ERR_INDEX != 0 {
            what.push("an index out of range (gather, index_select or embedding)");
        }
        if w & ERR_NEG_POW != 0 {
            what.push("a negative exponent in an int64 pow (cast to float first)");
        }
        Err(TensorError(format!(
            "cuda: an earlier op failed on the device: {}",
            what.join("; ")
        )))
    }
}

impl Drop for ThreadStream {
    fn drop(&mut self) {
        let _ = self.ctx.bind_to_thread();
        let _ = self.release_pool();
        if let Some(h) = self.blas.lock().unwrap_or_else(|e| e.into_inner()).take() {
            // SAFETY: the handle was created for this stream and is destroyed once.
            let _ = unsafe { cudarc::cublas::result::destroy_handle(h.0) };
        }
        // SAFETY: allocated in `new`, no kernel can use it once the stream is idle.
        let _ = unsafe { result::free_sync(self.err_word) };
    }
}

/// Rounds an allocation up so that similar sizes share blocks: powers of two up to 1 MiB,
/// then multiples of 2 MiB.
fn size_class(bytes: usize) -> usize {
    const MIB: usize = 1 << 20;
    if bytes <= MIB {
        bytes.max(512).next_power_of_two()
    } else {
        bytes.div_ceil(2 * MIB) * 2 * MIB
    }
}

/// On when `TL_CUDA_PROFILE` is set at `init`: every launch is timed with events.
pub(crate) static PROFILE: AtomicBool = AtomicBool::new(false);

thread_local! {
    static STREAMS: RefCell<Vec<(u32, Arc<ThreadStream>)>> = const { RefCell::new(Vec::new()) };
}

/// The calling thread's stream on `backend`'s device, created on first use.
pub(crate) fn thread_stream(backend: &CudaBackend) -> Result<Arc<ThreadStream>> {
    STREAMS.with(|s| {
        let mut all = s.borrow_mut();
        if let Some((_, t)) = all.iter().find(|(o, _)| *o == backend.ordinal) {
            return Ok(t.clone());
        }
        let t = Arc::new(ThreadStream::new(&backend.ctx)?);
        all.push((backend.ordinal, t.clone()));
        Ok(t)
    })
}

/// Device memory of one tensor storage. Dropping it returns the block to the pool of the
/// stream it was made on, after that stream has waited for any other stream that read it.
#[derive(Debug)]
pub(crate) struct CudaStorage {
    pub(crate) ptr: CUdeviceptr,
    class: usize,
    len: usize,
    dtype: DType,
    backend: &'static CudaBackend,
    pub(crate) home: Arc<ThreadStream>,
    /// Other streams that used this memory.
    foreign_users: Mutex<Vec<Arc<ThreadStream>>>,
}

// SAFETY: the raw pointers are device addresses and event handles, usable from any thread.
unsafe impl Send for CudaStorage {}
unsafe impl Sync for CudaStorage {}

impl std::fmt::Debug for ThreadStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ThreadStream({:?})", self.stream.cu_stream())
    }
}

impl Drop for CudaStorage {
    fn drop(&mut self) {
        let users = std::mem::take(
            self.foreign_users
                .get_mut()
                .unwrap_or_else(|e| e.into_inner()),
        );
        if !users.is_empty() {
            let _ = self.home.ctx.bind_to_thread();
            for user in users {
                // An event after everything the other stream queued so far (its uses of this
                // memory included); the home stream waits for it before reusing the block.
                if let Ok(ev) = new_event() {
                    // SAFETY: both streams are live (held by Arcs); the wait is queued before
                    // the event is destroyed.
                    unsafe {
                        let _ = result::event::record(ev, user.flushed().unwrap_or(user.raw()));
                        let _ = result::stream::wait_event(
                            self.home.flushed().unwrap_or(self.home.raw()),
                            ev,
                            sys::CUevent_wait_flags::CU_EVENT_WAIT_DEFAULT,
                        );
                        let _ = result::event::destroy(ev);
                    }
                }
            }
        }
        self.home.give_back(self.ptr, self.class);
    }
}

impl DeviceStorage for CudaStorage {
    fn device(&self) -> Device {
        self.backend.device
    }
    fn dtype(&self) -> DType {
        self.dtype
    }
    fn len(&self) -> usize {
        self.len
    }
    fn backend(&self) -> &'static dyn DeviceBackend {
        self.backend
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

impl std::fmt::Debug for CudaBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CudaBackend({})", self.device)
    }
}

/// Kernel parameters, each in its own 8-byte-aligned slot (kernels read the width they
/// declare; little-endian hosts put narrow values in the first bytes).
#[derive(Default)]
pub(crate) struct Args {
    slots: Vec<Vec<u64>>,
}

/// The kernels' `Lay` (kernels.cu): rank, contiguity flag, offset, shape and strides.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub(crate) struct Lay {
    rank: i32,
    contig: i32,
    offset: i64,
    shape: [i64; MAX_RANK],
    strides: [i64; MAX_RANK],
}

pub(crate) const MAX_RANK: usize = 8;

impl Lay {
    /// `layout` as the kernels take it, with size-1 dims dropped and dims that continue each
    /// other merged (the element order is unchanged). Fails above [`MAX_RANK`] dims.
    pub(crate) fn compact(op: &str, layout: &Layout) -> Result<Lay> {
        let mut dims: Vec<(usize, usize)> = Vec::new();
        for (&d, &s) in layout.shape.iter().zip(&layout.strides) {
            if d == 1 {
                continue;
            }
            match dims.last_mut() {
                Some((pd, ps)) if *ps == s * d => {
                    *pd *= d;
                    *ps = s;
                }
                _ => dims.push((d, s)),
            }
        }
        let shape: Vec<usize> = dims.iter().map(|p| p.0).collect();
        let strides: Vec<usize> = dims.iter().map(|p| p.1).collect();
        Lay::exact(
            op,
            &Layout {
                shape,
                strides,
                offset: layout.offset,
            },
        )
    }

    /// `layout` dim for dim (kernels that address dims by position need this).
    pub(crate) fn exact(op: &str, layout: &Layout) -> Result<Lay> {
        let rank = layout.rank();
        if rank > MAX_RANK {
            return Err(TensorError(format!(
                "{op}: the cuda backend handles at most {MAX_RANK} non-trivial dims, got shape {:?}",
                layout.shape
            )));
        }
        let mut l = Lay {
            rank: rank as i32,
            contig: layout.is_contiguous() as i32,
            offset: layout.offset as i64,
            shape: [1; MAX_RANK],
            strides: [0; MAX_RANK],
        };
        for i in 0..rank {
            l.shape[i] = layout.shape[i] as i64;
            l.strides[i] = layout.strides[i] as i64;
        }
        Ok(l)
    }
}

impl Args {
    pub(crate) fn new() -> Args {
        Args::default()
    }
    pub(crate) fn ptr(&mut self, p: CUdeviceptr) -> &mut Self {
        self.slots.push(vec![p]);
        self
    }
    pub(crate) fn i64(&mut self, v: i64) -> &mut Self {
        self.slots.push(vec![v as u64]);
        self
    }
    pub(crate) fn i32(&mut self, v: i32) -> &mut Self {
        self.slots.push(vec![v as u32 as u64]);
        self
    }
    pub(crate) fn f32(&mut self, v: f32) -> &mut Self {
        self.slots.push(vec![v.to_bits() as u64]);
        self
    }
    pub(crate) fn f64(&mut self, v: f64) -> &mut Self {
        self.slots.push(vec![v.to_bits()]);
        self
    }
    /// A plain-old-data struct passed by value (its C twin has the same layout).
    pub(crate) fn pod<T: Copy>(&mut self, v: &T) -> &mut Self {
        let mut slot = vec![0u64; std::mem::size_of::<T>().div_ceil(8)];
        // SAFETY: `T` is plain old data and the slot holds at least its size.
        unsafe {
            std::ptr::copy_nonoverlapping(
                v as *const T as *const u8,
                slot.as_mut_ptr() as *mut u8,
                std::mem::size_of::<T>(),
            );
        }
        self.slots.push(slot);
        self
    }

    pub(crate) fn lay(&mut self, l: &Lay) -> &mut Self {
        self.pod(l)
    }
}

/// Launch shape for a grid-stride loop over `n` elements.
pub(crate) fn grid_for(n: usize) -> u32 {
    n.div_ceil(256).clamp(1, 1 << 20) as u32
}

impl CudaBackend {
    /// Queues kernel `name` on stream `s` (counted as one launch).
    pub(crate) fn launch(
        &self,
        s: &ThreadStream,
        name: &str,
        grid: u32,
        block: u32,
        shared_bytes: u32,
        args: &mut Args,
    ) -> Result<()> {
        let (name, f) = self.kernels.get(name)?;
        let mut launch = crate::submit::Launch {
            func: f.cu_function(),
            name,
            grid,
            block,
            shared: shared_bytes,
            slots: std::mem::take(&mut args.slots),
        };
        if PROFILE.load(Ordering::Relaxed) {
            // Timed one by one: the events must bracket each kernel.
            stats::count_launches(1);
            stats::count_submissions(1);
            return s.profiled(name, || launch.launch_on(s.flushed()?));
        }
        s.submit.launch_or_queue(launch, s.raw())
    }

    /// A new uninitialised device tensor of `shape` and `dtype`, owned by stream `s`.
    pub(crate) fn alloc_tensor(
        &'static self,
        s: &Arc<ThreadStream>,
        shape: &[usize],
        dtype: DType,
    ) -> Result<Tensor> {
        let len: usize = shape.iter().product();
        let bytes = dtype.bytes_for(len);
        let (ptr, class) = s.alloc(bytes)?;
        if crate::poison_new_tensors() && bytes > 0 {
            // SAFETY: the block holds at least `bytes` bytes and belongs to no tensor yet.
            unsafe { result::memset_d8_async(ptr, 0xff, bytes, s.flushed()?) }
                .map_err(driver_err("poisoning a new tensor"))?;
        }
        let storage = CudaStorage {
            ptr,
            class,
            len,
            dtype,
            backend: self,
            home: s.clone(),
            foreign_users: Mutex::new(Vec::new()),
        };
        Tensor::from_device_storage(Box::new(storage), shape)
    }

    /// The device address of `x`'s first element of its storage (its layout offset is applied
    /// by the kernels), checking that it lives on this device. Work queued on another stream
    /// that wrote the storage is ordered before `s`'s next work, and `s`'s use is recorded so
    /// that the memory is not reused before it completes.
    pub(crate) fn input(&self, op: &str, s: &Arc<ThreadStream>, x: &Tensor) -> Result<CUdeviceptr> {
        let Some(st) = x
            .device_storage()
            .and_then(|d| d.as_any().downcast_ref::<CudaStorage>())
        else {
            return Err(TensorError(format!(
                "{op}: operands are on different devices ({} and {})",
                self.device,
                x.device()
            )));
        };
        if st.backend.ordinal != self.ordinal {
            return Err(TensorError(format!(
                "{op}: operands are on different devices ({} and {})",
                self.device,
                x.device()
            )));
        }
        if !Arc::ptr_eq(&st.home, s) {
            // Cross-stream use: order the home stream's work so far before ours, and remember
            // this stream so that the memory is not reused before our work on it completes.
            let ev = new_event()?;
            // SAFETY: both streams and the event are live; destroying a recorded event that a
            // stream waits on is allowed (the wait is already queued).
            unsafe {
                result::event::record(ev, st.home.flushed()?)
                    .map_err(driver_err("recording an event"))?;
                result::stream::wait_event(
                    s.flushed()?,
                    ev,
                    sys::CUevent_wait_flags::CU_EVENT_WAIT_DEFAULT,
                )
                .map_err(driver_err("waiting for an event"))?;
                result::event::destroy(ev).map_err(driver_err("destroying an event"))?;
            }
            let mut users = st.foreign_users.lock().unwrap_or_else(|e| e.into_inner());
            if !users.iter().any(|u| Arc::ptr_eq(u, s)) {
                users.push(s.clone());
            }
        }
        Ok(st.ptr)
    }
}

fn new_event() -> Result<sys::CUevent> {
    result::event::create(sys::CUevent_flags::CU_EVENT_DISABLE_TIMING)
        .map_err(driver_err("creating an event"))
}
