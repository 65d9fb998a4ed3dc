//! Global runtime counters printed by `tl run --stats`. They are process-wide atomics so that
//! counting costs one relaxed increment and needs no handle threaded through the ops.

use std::sync::atomic::{AtomicU64, Ordering};

static OPS_DISPATCHED: AtomicU64 = AtomicU64::new(0);
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static BYTES_ALLOCATED: AtomicU64 = AtomicU64::new(0);
static HOST_READS: AtomicU64 = AtomicU64::new(0);
static SYNCS: AtomicU64 = AtomicU64::new(0);
static KERNEL_LAUNCHES: AtomicU64 = AtomicU64::new(0);
static SUBMISSIONS: AtomicU64 = AtomicU64::new(0);
static DEVICE_ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static DEVICE_BYTES_ALLOCATED: AtomicU64 = AtomicU64::new(0);
static HOST_TO_DEVICE_BYTES: AtomicU64 = AtomicU64::new(0);
static DEVICE_TO_HOST_BYTES: AtomicU64 = AtomicU64::new(0);

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
    /// Host waits for a device ([`crate::Tensor::synchronize_for_read`]).
    pub syncs: u64,
    /// Kernels (and library calls such as cuBLAS products) queued on a device.
    pub kernel_launches: u64,
    /// Calls that hand work to a device's driver: one per kernel launched directly, one per
    /// replayed group of launches (a CUDA graph).
    pub submissions: u64,
    /// Device memory obtained from the driver (the caching allocator's misses).
    pub device_allocations: u64,
    /// Bytes in those device allocations.
    pub device_bytes_allocated: u64,
    /// Bytes copied from host to device.
    pub host_to_device_bytes: u64,
    /// Bytes copied from device to host.
    pub device_to_host_bytes: u64,
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

/// Counts one host wait for a device.
pub fn count_sync() {
    SYNCS.fetch_add(1, Ordering::Relaxed);
}

/// Counts `n` kernel launches on a device.
pub fn count_launches(n: u64) {
    KERNEL_LAUNCHES.fetch_add(n, Ordering::Relaxed);
}

/// Counts `n` submissions of work to a device driver (see [`Stats::submissions`]).
pub fn count_submissions(n: u64) {
    SUBMISSIONS.fetch_add(n, Ordering::Relaxed);
}

/// Counts one allocation of `bytes` bytes of device memory from the driver.
pub fn count_device_allocation(bytes: usize) {
    DEVICE_ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    DEVICE_BYTES_ALLOCATED.fetch_add(bytes as u64, Ordering::Relaxed);
}

/// Counts a host-to-device copy of `bytes` bytes.
pub fn count_host_to_device(bytes: usize) {
    HOST_TO_DEVICE_BYTES.fetch_add(bytes as u64, Ordering::Relaxed);
}

/// Counts a device-to-host copy of `bytes` bytes.
pub fn count_device_to_host(bytes: usize) {
    DEVICE_TO_HOST_BYTES.fetch_add(bytes as u64, Ordering::Relaxed);
}

/// The current counter values.
pub fn snapshot() -> Stats {
    Stats {
        ops_dispatched: OPS_DISPATCHED.load(Ordering::Relaxed),
        allocations: ALLOCATIONS.load(Ordering::Relaxed),
        bytes_allocated: BYTES_ALLOCATED.load(Ordering::Relaxed),
        host_reads: HOST_READS.load(Ordering::Relaxed),
        syncs: SYNCS.load(Ordering::Relaxed),
        kernel_launches: KERNEL_LAUNCHES.load(Ordering::Relaxed),
        submissions: SUBMISSIONS.load(Ordering::Relaxed),
        device_allocations: DEVICE_ALLOCATIONS.load(Ordering::Relaxed),
        device_bytes_allocated: DEVICE_BYTES_ALLOCATED.load(Ordering::Relaxed),
        host_to_device_bytes: HOST_TO_DEVICE_BYTES.load(Ordering::Relaxed),
        device_to_host_bytes: DEVICE_TO_HOST_BYTES.load(Ordering::Relaxed),
    }
}

/// Sets every counter back to zero.
pub fn reset() {
    OPS_DISPATCHED.store(0, Ordering::Relaxed);
    ALLOCATIONS.store(0, Ordering::Relaxed);
    BYTES_ALLOCATED.store(0, Ordering::Relaxed);
    HOST_READS.store(0, Ordering::Relaxed);
    for c in [
        &SYNCS,
        &KERNEL_LAUNCHES,
        &SUBMISSIONS,
        &DEVICE_ALLOCATIONS,
        &DEVICE_BYTES_ALLOCATED,
        &HOST_TO_DEVICE_BYTES,
        &DEVICE_TO_HOST_BYTES,
    ] {
        c.store(0, Ordering::Relaxed);
    }
}

impl Stats {
    /// The counts accumulated between `earlier` and `self`.
    pub fn since(&self, earlier: &Stats) -> Stats {
        Stats {
            ops_dispatched: self.ops_dispatched.saturating_sub(earlier.ops_dispatched),
            allocations: self.allocations.saturating_sub(earlier.allocations),
            bytes_allocated: self.bytes_allocated.saturating_sub(earlier.bytes_allocated),
            host_reads: self.host_reads.saturating_sub(earlier.host_reads),
            syncs: self.syncs.saturating_sub(earlier.syncs),
            kernel_launches: self.kernel_launches.saturating_sub(earlier.kernel_launches),
            submissions: self.submissions.saturating_sub(earlier.submissions),
            device_allocations: self
                .device_allocations
                .saturating_sub(earlier.device_allocations),
            device_bytes_allocated: self
                .device_bytes_allocated
                .saturating_sub(earlier.device_bytes_allocated),
            host_to_device_bytes: self
                .host_to_device_bytes
                .saturating_sub(earlier.host_to_device_bytes),
            device_to_host_bytes: self
                .device_to_host_bytes
                .saturating_sub(earlier.device_to_host_bytes),
        }
    }
}

impl std::fmt::Display for Stats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "{:<16} {:>14}", "ops dispatched", self.ops_dispatched)?;
        writeln!(f, "{:<16} {:>14}", "allocations", self.allocations)?;
        writeln!(f, "{:<16} {:>14}", "bytes allocated", self.bytes_allocated)?;
        write!(f, "{:<16} {:>14}", "host reads", self.host_reads)?;
        if self.kernel_launches + self.syncs + self.device_allocations + self.host_to_device_bytes
            > 0
        {
            writeln!(f)?;
            writeln!(f, "{:<16} {:>14}", "device syncs", self.syncs)?;
            writeln!(f, "{:<16} {:>14}", "kernel launches", self.kernel_launches)?;
            writeln!(f, "{:<16} {:>14}", "device allocs", self.device_allocations)?;
            writeln!(
                f,
                "{:<16} {:>14}",
                "device bytes", self.device_bytes_allocated
            )?;
            writeln!(
                f,
                "{:<16} {:>14}",
                "host->device B", self.host_to_device_bytes
            )?;
            write!(
                f,
                "{:<16} {:>14}",
                "device->host B", self.device_to_host_bytes
            )?;
        }
        Ok(())
    }
}
