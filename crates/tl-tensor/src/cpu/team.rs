//! A small team of spinning helper threads for short parallel loops (the mat-vecs of a decode
//! step: about 150 per generated token, 20 to 300 microseconds each).
//!
//! Why not the rayon pool: its idle workers go to sleep within microseconds, so each mat-vec
//! pays a futex wake-up (tens of microseconds on a virtual machine), which measured as much
//! as the product itself for a 2048 x 2048 Q4_0 matrix. Here a helper that finished its part
//! spins waiting for the next loop and parks only after [`SPIN`] without work, as llama.cpp's
//! thread pool does; the calling thread always works on the loop too.
//!
//! One loop runs at a time: a caller that finds the team busy (another thread's loop) runs its
//! loop alone. Chunks are claimed from one counter tagged with the loop's number, so a helper
//! that wakes late cannot take a chunk of a loop that has ended.

use std::ops::Range;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Condvar, Mutex, OnceLock, TryLockError};
use std::time::{Duration, Instant};

/// Threads of a loop at most (the caller included).
const MAX_THREADS: usize = 16;

/// How long an idle helper spins before it parks.
const SPIN: Duration = Duration::from_millis(4);

/// The loop body: called with ranges of item indices.
type Body<'a> = &'a (dyn Fn(Range<usize>) + Sync);

/// The loop being run, as helpers read it: its number, its body (lifetime erased: the caller
/// does not return before every claimed chunk is done) and its sizes.
#[derive(Clone, Copy)]
struct Job {
    number: u32,
    body: *const (dyn Fn(Range<usize>) + Sync),
    items: usize,
    chunk: usize,
}

// SAFETY: the body is `Sync` and outlives every use (see `Job`).
unsafe impl Send for Job {}

struct Shared {
    /// The current loop's number; helpers wait for it to change.
    number: AtomicU64,
    job: Mutex<Option<Job>>,
    /// (loop number << 32) | next chunk index.
    next: AtomicU64,
    /// Chunks of the current loop finished.
    done: AtomicUsize,
    /// A chunk panicked (reported by the caller).
    panicked: AtomicBool,
    parked: Mutex<usize>,
    wake: Condvar,
}

struct Team {
    shared: &'static Shared,
    helpers: usize,
    /// Held by the thread whose loop is running.
    busy: Mutex<()>,
}

fn team() -> Option<&'static Team> {
    static TEAM: OnceLock<Option<Team>> = OnceLock::new();
    TEAM.get_or_init(|| {
        // Beyond a few threads per memory channel a mat-vec gains nothing, while every
        // helper spins for a while after each loop.
        let threads = super::matmul::num_threads().min(MAX_THREADS);
        if threads < 2 {
            return None;
        }
        let shared: &'static Shared = Box::leak(Box::new(Shared {
            number: AtomicU64::new(0),
            job: Mutex::new(None),
            next: AtomicU64::new(0),
            done: AtomicUsize::new(0),
            panicked: AtomicBool::new(false),
            parked: Mutex::new(0),
            wake: Condvar::new(),
        }));
        let mut helpers = 0;
        for i in 0..threads - 1 {
            let spawned = std::thread::Builder::new()
                .name(format!("tl-team-{i}"))
                .spawn(move || helper(shared));
            if spawned.is_ok() {
                helpers += 1;
            }
        }
        (helpers > 0).then_some(Team {
            shared,
            helpers,
            busy: Mutex::new(()),
        })
    })
    .as_ref()
}

/// Threads a loop can use: the caller and the team's helpers.
pub(crate) fn threads() -> usize {
    team().map_or(1, |t| t.helpers + 1)
}

/// Runs `body` over `0..items` in ranges of `chunk` items, on the calling thread and the
/// team's helpers; returns when every range is done. A panic in `body` is raised here.
pub(crate) fn for_each_range(items: usize, chunk: usize, body: Body) {
    let chunk = chunk.max(1);
    let chunks = items.div_ceil(chunk);
    let team = match team() {
        Some(t) if chunks > 1 => t,
        _ => return body(0..items),
    };
    let _running = match team.busy.try_lock() {
        Ok(g) => g,
        Err(TryLockError::Poisoned(p)) => p.into_inner(),
        Err(TryLockError::WouldBlock) => return body(0..items),
    };
    let s = team.shared;
    let number = s.number.load(SeqCst) + 1;
    let tag = (number as u32) as u64;
    // SAFETY (lifetime): this function returns only after `done` counts every chunk, and a
    // chunk can only be claimed while `next` carries this loop's tag, so no helper calls the
    // body after it is gone.
    let body = unsafe {
        std::mem::transmute::<
            *const (dyn Fn(Range<usize>) + Sync + '_),
            *const (dyn Fn(Range<usize>) + Sync + 'static),
        >(body)
    };
    let job = Job {
        number: number as u32,
        body,
        items,
        chunk,
    };
    *s.job.lock().unwrap_or_else(|p| p.into_inner()) = Some(job);
    s.done.store(0, SeqCst);
    s.panicked.store(false, SeqCst);
    s.next.store(tag << 32, SeqCst);
    s.number.store(number, SeqCst);
    if *s.parked.lock().unwrap_or_else(|p| p.into_inner()) > 0 {
        s.wake.notify_all();
    }
    run_chunks(s, &job);
    while s.done.load(SeqCst) < chunks {
        std::hint::spin_loop();
    }
    if s.panicked.load(SeqCst) {
        panic!("a parallel loop's body panicked on a helper thread");
    }
}

/// Claims and runs chunks of `job` until none is left (or a newer loop has started).
fn run_chunks(s: &Shared, job: &Job) {
    let chunks = job.items.div_ceil(job.chunk);
    let tag = job.number as u64;
    loop {
        let cur = s.next.load(SeqCst);
        let index = (cur & 0xFFFF_FFFF) as usize;
        if cur >> 32 != tag || index >= chunks {
            return;
        }
        if s.next
            .compare_exchange(cur, cur + 1, SeqCst, SeqCst)
            .is_err()
        {
            continue;
        }
        let start = index * job.chunk;
        let range = start..(start + job.chunk).min(job.items);
        // SAFETY: the chunk was claimed under this loop's tag, so the caller is still waiting
        // for it and the body is alive.
        let body = unsafe { &*job.body };
        if catch_unwind(AssertUnwindSafe(|| body(range))).is_err() {
            s.panicked.store(true, SeqCst);
        }
        s.done.fetch_add(1, SeqCst);
    }
}

/// A helper's life: wait (spinning, then parked) for a new loop, take chunks of it, repeat.
fn helper(s: &'static Shared) {
    let mut seen = s.number.load(SeqCst);
    loop {
        let started = Instant::now();
        let mut spins = 0u32;
        while s.number.load(SeqCst) == seen {
            std::hint::spin_loop();
            spins = spins.wrapping_add(1);
            if spins.is_multiple_of(1024) && started.elapsed() > SPIN {
                let mut parked = s.parked.lock().unwrap_or_else(|p| p.into_inner());
                *parked += 1;
                while s.number.load(SeqCst) == seen {
                    parked = s.wake.wait(parked).unwrap_or_else(|p| p.into_inner());
                }
                *parked -= 1;
            }
        }
        seen = s.number.load(SeqCst);
        let job = *s.job.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(job) = job.filter(|j| j.number as u64 == (seen as u32) as u64) {
            run_chunks(s, &job);
        }
    }
}

/// An output buffer's address shared by the threads of one loop, each writing its own
/// elements (the loop ends before the buffer is used again).
pub(crate) struct SharedOut<T = f32>(pub(crate) *mut T);

// SAFETY: the threads write disjoint elements, and the loop ends before the buffer is used
// again.
unsafe impl<T: Send> Sync for SharedOut<T> {}

impl<T> SharedOut<T> {
    /// The address of element `i`.
    pub(crate) fn at(&self, i: usize) -> *mut T {
        // SAFETY: callers pass an index inside the buffer.
        unsafe { self.0.add(i) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;

    #[test]
    fn every_item_runs_once_across_loops_and_threads() {
        for items in [0, 1, 5, 64, 1000, 4097] {
            for chunk in [1, 7, 64, 5000] {
                let hits: Vec<AtomicU32> = (0..items).map(|_| AtomicU32::new(0)).collect();
                for_each_range(items, chunk, &|r| {
                    for i in r {
                        hits[i].fetch_add(1, SeqCst);
                    }
                });
                assert!(
                    hits.iter().all(|h| h.load(SeqCst) == 1),
                    "{items} items, chunk {chunk}"
                );
            }
        }
        // Loops from several threads at once: one gets the team, the others run alone.
        std::thread::scope(|scope| {
            for t in 0..4 {
                scope.spawn(move || {
                    for round in 0..200 {
                        let n = 100 + t * 13 + round;
                        let total = AtomicUsize::new(0);
                        for_each_range(n, 8, &|r| {
                            total.fetch_add(r.len(), SeqCst);
                        });
                        assert_eq!(total.load(SeqCst), n);
                    }
                });
            }
        });
    }

    #[test]
    fn a_panic_in_a_chunk_reaches_the_caller() {
        let r = catch_unwind(|| {
            for_each_range(64, 1, &|r| {
                if r.start == 63 {
                    panic!("chunk 63");
                }
            })
        });
        assert!(r.is_err());
        // The team still works afterwards.
        let total = AtomicUsize::new(0);
        for_each_range(100, 10, &|r| {
            total.fetch_add(r.len(), SeqCst);
        });
        assert_eq!(total.load(SeqCst), 100);
    }
}
