//! Grouped submission and replay of kernel launches.
//!
//! With grouping on (`TL_COMPUTE_PER_BUFFER` = N > 0), a stream's launches are
//! queued on the host and handed to the driver together when N have been queued or when
//! anything else needs the stream (a copy, a cuBLAS call, an event, a wait):
//! [`Submitter::flush_pending_launches`] is the one function that does it. A group whose
//! sequence of kernels has been seen before is submitted as one CUDA graph: captured once,
//! then replayed, with the nodes whose arguments changed (a position, a sequence length, a
//! buffer address) updated in place, so a decode step that repeats costs one graph launch
//! instead of hundreds of kernel launches. Groups seen once (prefill, loading) are launched
//! directly: building a graph costs more than it saves there.

use cudarc::driver::result;
use cudarc::driver::sys::{self, CUfunction, CUgraph, CUgraphExec, CUgraphNode, CUresult};
use std::collections::HashMap;
use std::ffi::c_void;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;
use tl_tensor::{Result, TensorError, stats};

/// Launches per group (0: every launch goes to the driver at once).
static GROUP_SIZE: AtomicUsize = AtomicUsize::new(DEFAULT_GROUP_SIZE);

/// Grouping is off by default. Measured on an H200 with chat.tl's decode step (378 launches):
/// direct launches 332 tok/s, one replayed graph per step 200 tok/s. The caching allocator
/// hands a step's temporaries different addresses from one step to the next, so about 355 of
/// the 378 nodes need new arguments at each replay, and a graph so rewritten launches slower
/// than the kernels would. Replay pays off once a step's buffers keep their addresses.
/// A group larger than one decode step (for example 1024) makes each step one graph.
pub const DEFAULT_GROUP_SIZE: usize = 0;

/// Groups shorter than this are launched directly (a graph launch costs about as much).
const MIN_GRAPH_LAUNCHES: usize = 4;

/// Graphs kept per stream; the least recently used one goes first.
const MAX_GRAPHS: usize = 16;

/// Host time spent in the driver calls of submission (for `TL_CUDA_PROFILE`): calls made and
/// nanoseconds, for direct kernel launches, graph node updates, graph launches and captures.
pub(crate) struct DriverTime {
    pub(crate) what: &'static str,
    calls: AtomicU64,
    nanos: AtomicU64,
}

impl DriverTime {
    const fn new(what: &'static str) -> DriverTime {
        DriverTime {
            what,
            calls: AtomicU64::new(0),
            nanos: AtomicU64::new(0),
        }
    }

    fn time<R>(&self, f: impl FnOnce() -> R) -> R {
        let t = Instant::now();
        let r = f();
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.nanos
            .fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
        r
    }

    /// (calls, milliseconds) so far.
    pub(crate) fn totals(&self) -> (u64, f64) {
        (
            self.calls.load(Ordering::Relaxed),
            self.nanos.load(Ordering::Relaxed) as f64 / 1e6,
        )
    }
}

pub(crate) static KERNEL_LAUNCH_TIME: DriverTime = DriverTime::new("cuLaunchKernel");
pub(crate) static NODE_UPDATE_TIME: DriverTime = DriverTime::new("graph node updates");
pub(crate) static GRAPH_LAUNCH_TIME: DriverTime = DriverTime::new("cuGraphLaunch");
pub(crate) static CAPTURE_TIME: DriverTime = DriverTime::new("graph captures");

/// Sets how many launches are grouped before submission (0 turns grouping and replay off).
pub fn set_launch_group_size(n: usize) {
    GROUP_SIZE.store(n, Ordering::Relaxed);
}

/// The current group size (see [`set_launch_group_size`]).
pub fn launch_group_size() -> usize {
    GROUP_SIZE.load(Ordering::Relaxed)
}

/// One kernel launch: the function, its shape and its argument slots (8-byte aligned).
pub(crate) struct Launch {
    pub(crate) func: CUfunction,
    pub(crate) name: &'static str,
    pub(crate) grid: u32,
    pub(crate) block: u32,
    pub(crate) shared: u32,
    pub(crate) slots: Vec<Vec<u64>>,
}

impl Launch {
    fn same_arguments(&self, other: &Launch) -> bool {
        self.grid == other.grid
            && self.block == other.block
            && self.shared == other.shared
            && self.slots == other.slots
    }

    /// Pointers to the argument slots, as the driver takes them.
    fn param_pointers(&mut self) -> Vec<*mut c_void> {
        self.slots
            .iter_mut()
            .map(|s| s.as_mut_ptr() as *mut c_void)
            .collect()
    }

    /// Queues the kernel on `stream` now.
    pub(crate) fn launch_on(&mut self, stream: sys::CUstream) -> Result<()> {
        let mut params = self.param_pointers();
        // SAFETY: the slots match the kernel's parameters (the op tests check every kernel),
        // and the device addresses in them are live or stream-ordered pool blocks.
        KERNEL_LAUNCH_TIME
            .time(|| unsafe {
                result::launch_kernel(
                    self.func,
                    (self.grid, 1, 1),
                    (self.block, 1, 1),
                    self.shared,
                    stream,
                    &mut params,
                )
            })
            .map_err(|e| TensorError(format!("cuda: launching {}: {e:?}", self.name)))
    }

    fn node_params(&mut self, params: &mut Vec<*mut c_void>) -> sys::CUDA_KERNEL_NODE_PARAMS {
        *params = self.param_pointers();
        sys::CUDA_KERNEL_NODE_PARAMS {
            func: self.func,
            gridDimX: self.grid,
            gridDimY: 1,
            gridDimZ: 1,
            blockDimX: self.block,
            blockDimY: 1,
            blockDimZ: 1,
            sharedMemBytes: self.shared,
            kernelParams: params.as_mut_ptr(),
            extra: std::ptr::null_mut(),
            kern: std::ptr::null_mut(),
            ctx: std::ptr::null_mut(),
        }
    }
}

/// A captured group: its graph, the executable instance and the arguments each node has now.
struct Replay {
    key: u64,
    funcs: Vec<CUfunction>,
    graph: CUgraph,
    exec: CUgraphExec,
    nodes: Vec<CUgraphNode>,
    launches: Vec<Launch>,
    last_used: u64,
}

impl Drop for Replay {
    fn drop(&mut self) {
        // SAFETY: created by `capture` and owned here; destroyed once.
        unsafe {
            let _ = sys::cuGraphExecDestroy(self.exec);
            let _ = sys::cuGraphDestroy(self.graph);
        }
    }
}

#[derive(Default)]
struct Replays {
    /// How many times each key was submitted (a graph is captured the second time).
    seen: HashMap<u64, u32>,
    graphs: Vec<Replay>,
    clock: u64,
}

/// A stream's launches not yet handed to the driver, and its captured groups.
#[derive(Default)]
pub(crate) struct Submitter {
    pending: Mutex<Vec<Launch>>,
    replays: Mutex<Replays>,
}

// SAFETY: the raw handles (functions, graphs) are usable from any thread; access is through
// the mutexes.
unsafe impl Send for Submitter {}
unsafe impl Sync for Submitter {}

fn check(what: &str, r: CUresult) -> Result<()> {
    if r == CUresult::CUDA_SUCCESS {
        Ok(())
    } else {
        Err(TensorError(format!("cuda: {what}: {r:?}")))
    }
}

/// FNV-1a over the group's kernels: groups with one sequence of kernels share a graph.
fn group_key(launches: &[Launch]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for l in launches {
        h ^= l.func as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h ^ launches.len() as u64
}

impl Submitter {
    /// Queues `launch` for `stream`: at once when grouping is off, else in the pending group,
    /// which is submitted when full (so this may flush).
    pub(crate) fn launch_or_queue(&self, mut launch: Launch, stream: sys::CUstream) -> Result<()> {
        stats::count_launches(1);
        let group = launch_group_size();
        if group == 0 {
            stats::count_submissions(1);
            return launch.launch_on(stream);
        }
        let full = {
            let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            pending.push(launch);
            pending.len() >= group
        };
        if full {
            self.flush_pending_launches(stream)?;
        }
        Ok(())
    }

    /// Hands the queued launches to the driver: replaying the group's graph when this sequence
    /// of kernels was captured, capturing it the second time it is seen, else launching each.
    pub(crate) fn flush_pending_launches(&self, stream: sys::CUstream) -> Result<()> {
        let mut group =
            std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()));
        if group.is_empty() {
            return Ok(());
        }
        if group.len() < MIN_GRAPH_LAUNCHES {
            return launch_each(&mut group, stream);
        }
        let key = group_key(&group);
        let mut replays = self.replays.lock().unwrap_or_else(|e| e.into_inner());
        replays.clock += 1;
        let now = replays.clock;
        if let Some(r) = replays.graphs.iter_mut().find(|r| {
            r.key == key
                && r.funcs.len() == group.len()
                && r.funcs.iter().zip(&group).all(|(f, l)| *f == l.func)
        }) {
            r.last_used = now;
            return r.replay(group, stream);
        }
        let seen = replays.seen.entry(key).or_insert(0);
        *seen += 1;
        if *seen < 2 {
            return launch_each(&mut group, stream);
        }
        match CAPTURE_TIME.time(|| Replay::capture(key, group, now)) {
            Ok(r) => {
                if replays.graphs.len() >= MAX_GRAPHS
                    && let Some(oldest) =
                        (0..replays.graphs.len()).min_by_key(|&i| replays.graphs[i].last_used)
                {
                    replays.graphs.swap_remove(oldest);
                }
                replays.graphs.push(r);
                replays.graphs.last().expect("just pushed").launch(stream)
            }
            Err((mut group, _why)) => launch_each(&mut group, stream),
        }
    }
}

fn launch_each(group: &mut [Launch], stream: sys::CUstream) -> Result<()> {
    for l in group.iter_mut() {
        l.launch_on(stream)?;
    }
    stats::count_submissions(group.len() as u64);
    Ok(())
}

impl Replay {
    /// A graph of the group's kernels in order (each node depends on the one before).
    fn capture(
        key: u64,
        mut launches: Vec<Launch>,
        now: u64,
    ) -> std::result::Result<Replay, (Vec<Launch>, TensorError)> {
        let mut graph: CUgraph = std::ptr::null_mut();
        // SAFETY: plain graph construction; every handle made here is owned by the Replay or
        // destroyed on failure.
        unsafe {
            if let Err(e) = check("creating a graph", sys::cuGraphCreate(&mut graph, 0)) {
                return Err((launches, e));
            }
            let mut nodes: Vec<CUgraphNode> = Vec::with_capacity(launches.len());
            let mut params = Vec::new();
            for l in launches.iter_mut() {
                let p = l.node_params(&mut params);
                let mut node: CUgraphNode = std::ptr::null_mut();
                let (deps, n_deps) = match nodes.last() {
                    Some(prev) => (prev as *const CUgraphNode, 1),
                    None => (std::ptr::null(), 0),
                };
                if let Err(e) = check(
                    "adding a graph node",
                    sys::cuGraphAddKernelNode_v2(&mut node, graph, deps, n_deps, &p),
                ) {
                    let _ = sys::cuGraphDestroy(graph);
                    return Err((launches, e));
                }
                nodes.push(node);
            }
            let mut exec: CUgraphExec = std::ptr::null_mut();
            if let Err(e) = check(
                "instantiating a graph",
                sys::cuGraphInstantiateWithFlags(&mut exec, graph, 0),
            ) {
                let _ = sys::cuGraphDestroy(graph);
                return Err((launches, e));
            }
            Ok(Replay {
                key,
                funcs: launches.iter().map(|l| l.func).collect(),
                graph,
                exec,
                nodes,
                launches,
                last_used: now,
            })
        }
    }

    /// Launches the graph with the arguments of `group` (same kernels), updating the nodes
    /// whose arguments differ from the last submission.
    fn replay(&mut self, group: Vec<Launch>, stream: sys::CUstream) -> Result<()> {
        let mut params = Vec::new();
        for (i, mut l) in group.into_iter().enumerate() {
            if !l.same_arguments(&self.launches[i]) {
                let p = l.node_params(&mut params);
                // SAFETY: the node belongs to this graph and runs the same function.
                let (exec, node) = (self.exec, self.nodes[i]);
                check(
                    "updating a graph node",
                    NODE_UPDATE_TIME
                        .time(|| unsafe { sys::cuGraphExecKernelNodeSetParams_v2(exec, node, &p) }),
                )?;
                self.launches[i] = l;
            }
        }
        self.launch(stream)
    }

    /// Queues the graph on `stream` (one submission).
    fn launch(&self, stream: sys::CUstream) -> Result<()> {
        let exec = self.exec;
        // SAFETY: the executable graph is live; stream order keeps it after earlier work.
        check(
            "launching a graph",
            GRAPH_LAUNCH_TIME.time(|| unsafe { sys::cuGraphLaunch(exec, stream) }),
        )?;
        stats::count_submissions(1);
        Ok(())
    }
}
