//! Global runtime counters printed by `tl run --stats`. They are process-wide atomics so that
//! counting costs one relaxed increment and needs no handle threaded through the ops.

use std::sync::atomic::{AtomicU64, Ordering};

static OPS_DISPATCHED: AtomicU64 = AtomicU64::new(0);
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static BYTES_ALLOCATED: AtomicU64 = AtomicU64::new(0);
static HOST_READS: AtomicU64 = AtomicU64::new(0);

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Backend calls made by `Tensor` methods (kernel launches on a GPU).
    pub ops_dispatched: u64,
    /// New storages created.
    pub allocations: u64,
    /// Bytes in those storages.
    pub bytes_allocated: u64,
    /// Reads of tensor data back to the host (`to_vec_*`, `to_scalar_f64`); syncs on a GPU.
    pub host_reads: u64,
}

/// Counts one op handed to a backend.
pub fn count_op() {
    OPS_DISPATCHED.fetch_add(1, Ordering::Relaxed);
}

/// Counts one new storage of `bytes` bytes.
pub fn count_allocation(bytes: usize) {
    ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    BYTES_ALLOCATED.fetch_add(bytes as u64, Ordering::Relaxed);
}

/// Counts one read of tensor data by the host.
pub fn count_host_read() {
    HOST_READS.fetch_add(1, Ordering::Relaxed);
}

/// The current counter values.
pub fn snapshot() -> Stats {
    Stats {
        ops_dispatched: OPS_DISPATCHED.load(Ordering::Relaxed),
        allocations: ALLOCATIONS.load(Ordering::Relaxed),
        bytes_allocated: BYTES_ALLOCATED.load(Ordering::Relaxed),
        host_reads: HOST_READS.load(Ordering::Relaxed),
    }
}

/// Sets every counter back to zero.
pub fn reset() {
    OPS_DISPATCHED.store(0, Ordering::Relaxed);
    ALLOCATIONS.store(0, Ordering::Relaxed);
    BYTES_ALLOCATED.store(0, Ordering::Relaxed);
    HOST_READS.store(0, Ordering::Relaxed);
}

impl Stats {
    /// The counts accumulated between `earlier` and `self`.
    pub fn since(&self, earlier: &Stats) -> Stats {
        Stats {
            ops_dispatched: self.ops_dispatched.saturating_sub(earlier.ops_dispatched),
            allocations: self.allocations.saturating_sub(earlier.allocations),
            bytes_allocated: self.bytes_allocated.saturating_sub(earlier.bytes_allocated),
            host_reads: self.host_reads.saturating_sub(earlier.host_reads),
        }
    }
}

impl std::fmt::Display for Stats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "{:<16} {:>14}", "ops dispatched", self.ops_dispatched)?;
        writeln!(f, "{:<16} {:>14}", "allocations", self.allocations)?;
        writeln!(f, "{:<16} {:>14}", "bytes allocated", self.bytes_allocated)?;
        write!(f, "{:<16} {:>14}", "host reads", self.host_reads)
    }
}
