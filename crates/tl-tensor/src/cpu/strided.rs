//! Walking several strided operands of one shape together, one contiguous-in-the-output run
//! at a time. Dimensions of size 1 are dropped and adjacent dimensions are merged when every
//! operand allows it, so contiguous and simply broadcast operands become a few long runs whose
//! inner loops the compiler vectorises.

use super::elementwise::FloatElem;
use crate::layout::Layout;

/// The simplified iteration space of an op over `N` operands sharing one shape.
pub(crate) struct Plan<const N: usize> {
    shape: Vec<usize>,
    strides: [Vec<usize>; N],
    offsets: [usize; N],
    numel: usize,
}

impl<const N: usize> Plan<N> {
    /// `layouts` must all have the same shape.
    pub(crate) fn new(layouts: [&Layout; N]) -> Plan<N> {
        let shape0 = &layouts[0].shape;
        debug_assert!(layouts.iter().all(|l| &l.shape == shape0));
        let numel = shape0.iter().product();
        // Built innermost first, then reversed.
        let mut shape: Vec<usize> = Vec::with_capacity(shape0.len());
        let mut strides: [Vec<usize>; N] =
            std::array::from_fn(|_| Vec::with_capacity(shape0.len()));
        for d in (0..shape0.len()).rev() {
            let size = shape0[d];
            if size == 1 {
                continue;
            }
            if let Some(&inner_size) = shape.last() {
                let mergeable = layouts
                    .iter()
                    .zip(strides.iter())
                    .all(|(l, s)| l.strides[d] == s.last().unwrap() * inner_size);
                if mergeable {
                    *shape.last_mut().unwrap() *= size;
                    continue;
                }
            }
            shape.push(size);
            for (s, l) in strides.iter_mut().zip(layouts.iter()) {
                s.push(l.strides[d]);
            }
        }
        shape.reverse();
        for s in strides.iter_mut() {
            s.reverse();
        }
        Plan {
            shape,
            strides,
            offsets: std::array::from_fn(|k| layouts[k].offset),
            numel,
        }
    }

    /// The start offsets when the whole iteration is one run with the given inner strides
    /// (all equal to `stride`) and large enough to be worth splitting across threads.
    fn single_run(&self, inner: &[usize; N], stride: usize) -> Option<[usize; N]> {
        let one_run = self.shape.len() == 1 && inner.iter().all(|&s| s == stride);
        (one_run && self.numel >= PARALLEL_MIN).then_some(self.offsets)
    }

    /// Element strides of each operand along a run.
    pub(crate) fn inner_strides(&self) -> [usize; N] {
        std::array::from_fn(|k| self.strides[k].last().copied().unwrap_or(0))
    }

    /// Calls `f(offsets, len)` for every run in row-major order; element `i` of the run of
    /// operand `k` lies at `offsets[k] + i * inner_strides()[k]`.
    pub(crate) fn for_each_run(&self, mut f: impl FnMut([usize; N], usize)) {
        if self.numel == 0 {
            return;
        }
        let rank = self.shape.len();
        if rank == 0 {
            f(self.offsets, 1);
            return;
        }
        let len = self.shape[rank - 1];
        let outer = rank - 1;
        let mut idx = vec![0usize; outer];
        let mut off = self.offsets;
        let runs = self.numel / len;
        for _ in 0..runs {
            f(off, len);
            let mut d = outer;
            while d > 0 {
                d -= 1;
                idx[d] += 1;
                for (o, s) in off.iter_mut().zip(self.strides.iter()) {
                    *o += s[d];
                }
                if idx[d] < self.shape[d] {
                    break;
                }
                for (o, s) in off.iter_mut().zip(self.strides.iter()) {
                    *o -= s[d] * self.shape[d];
                }
                idx[d] = 0;
            }
        }
    }
}

/// Outputs at least this long are computed by several threads.
const PARALLEL_MIN: usize = 1 << 20;

/// Calls `fill(start, chunk)` on consecutive chunks of `out` from one scoped thread per
/// available core (`start` is the chunk's position in `out`).
fn parallel_chunks<U: Send>(out: &mut [U], fill: impl Fn(usize, &mut [U]) + Sync) {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8);
    if threads <= 1 {
        fill(0, out);
        return;
    }
    let chunk = out.len().div_ceil(threads);
    std::thread::scope(|scope| {
        for (k, dst) in out.chunks_mut(chunk).enumerate() {
            let fill = &fill;
            scope.spawn(move || fill(k * chunk, dst));
        }
    });
}

// The maps below fill a zeroed output by position rather than pushing: loops that write
// through `iter_mut().zip(..)` vectorise, `extend` loops mostly do not.

/// `f` applied to every element of `a` (addressed by `la`), in row-major order.
pub(crate) fn map1<A: Copy + Sync, U: Copy + Default + Send>(
    a: &[A],
    la: &Layout,
    f: impl Fn(A) -> U + Sync,
) -> Vec<U> {
    let mut out = vec![U::default(); la.numel()];
    let plan = Plan::new([la]);
    let [sa] = plan.inner_strides();
    if let Some(o) = plan.single_run(&[sa], 1) {
        let src = &a[o[0]..o[0] + out.len()];
        parallel_chunks(&mut out, |start, dst| {
            for (o, &x) in dst.iter_mut().zip(&src[start..]) {
                *o = f(x);
            }
        });
        return out;
    }
    let mut pos = 0;
    plan.for_each_run(|[oa], len| {
        let dst = &mut out[pos..pos + len];
        if sa == 1 {
            for (o, &x) in dst.iter_mut().zip(&a[oa..oa + len]) {
                *o = f(x);
            }
        } else {
            for (i, o) in dst.iter_mut().enumerate() {
                *o = f(a[oa + i * sa]);
            }
        }
        pos += len;
    });
    out
}

/// `f` applied to matching elements of `a` and `b` (same shape), in row-major order.
pub(crate) fn map2<A: Copy + Sync, B: Copy + Sync, U: Copy + Default + Send>(
    a: &[A],
    la: &Layout,
    b: &[B],
    lb: &Layout,
    f: impl Fn(A, B) -> U + Sync,
) -> Vec<U> {
    let mut out = vec![U::default(); la.numel()];
    let plan = Plan::new([la, lb]);
    let [sa, sb] = plan.inner_strides();
    if let Some([oa, ob]) = plan.single_run(&[sa, sb], 1) {
        let n = out.len();
        let (xs, ys) = (&a[oa..oa + n], &b[ob..ob + n]);
        parallel_chunks(&mut out, |start, dst| {
            for ((o, &x), &y) in dst.iter_mut().zip(&xs[start..]).zip(&ys[start..]) {
                *o = f(x, y);
            }
        });
        return out;
    }
    let mut pos = 0;
    plan.for_each_run(|[oa, ob], len| {
        let dst = &mut out[pos..pos + len];
        match (sa, sb) {
            (1, 1) => {
                for ((o, &x), &y) in dst.iter_mut().zip(&a[oa..oa + len]).zip(&b[ob..ob + len]) {
                    *o = f(x, y);
                }
            }
            (1, 0) => {
                let y = b[ob];
                for (o, &x) in dst.iter_mut().zip(&a[oa..oa + len]) {
                    *o = f(x, y);
                }
            }
            (0, 1) => {
                let x = a[oa];
                for (o, &y) in dst.iter_mut().zip(&b[ob..ob + len]) {
                    *o = f(x, y);
                }
            }
            _ => {
                for (i, o) in dst.iter_mut().enumerate() {
                    *o = f(a[oa + i * sa], b[ob + i * sb]);
                }
            }
        }
        pos += len;
    });
    out
}

/// `f` applied to matching elements of three operands of one shape, in row-major order.
pub(crate) fn map3<A: Copy, B: Copy, C: Copy, U: Copy + Default>(
    a: (&[A], &Layout),
    b: (&[B], &Layout),
    c: (&[C], &Layout),
    f: impl Fn(A, B, C) -> U,
) -> Vec<U> {
    let mut out = Vec::with_capacity(a.1.numel());
    let plan = Plan::new([a.1, b.1, c.1]);
    let [sa, sb, sc] = plan.inner_strides();
    plan.for_each_run(|[oa, ob, oc], len| {
        out.extend((0..len).map(|i| f(a.0[oa + i * sa], b.0[ob + i * sb], c.0[oc + i * sc])));
    });
    out
}

/// Calls `f` with the storage offset of every element of `la`, in row-major order (faster
/// than [`Layout::for_each_offset`] for views whose dimensions merge).
pub(crate) fn for_each_offset(la: &Layout, mut f: impl FnMut(usize)) {
    let plan = Plan::new([la]);
    let [sa] = plan.inner_strides();
    plan.for_each_run(|[oa], len| {
        for i in 0..len {
            f(oa + i * sa);
        }
    });
}

/// Elements per conversion chunk of the half-type paths (fits comfortably in L1).
const CHUNK: usize = 256;

/// Calls `sink` with the elements of `a` (a float type, any layout) converted to f32, in
/// row-major chunks. Half types convert a whole chunk at once, which uses the CPU's
/// conversion instructions instead of one call per element.
pub(crate) fn chunks1<T: FloatElem>(a: &[T], la: &Layout, mut sink: impl FnMut(&[f32])) {
    let plan = Plan::new([la]);
    let [sa] = plan.inner_strides();
    let mut fa = [0f32; CHUNK];
    let mut ta = [T::ZERO; CHUNK];
    plan.for_each_run(|[oa], len| {
        let mut start = 0;
        while start < len {
            let c = CHUNK.min(len - start);
            load(a, oa + start * sa, sa, &mut ta[..c], &mut fa[..c]);
            sink(&fa[..c]);
            start += c;
        }
    });
}

/// [`chunks1`] for two operands of one shape.
pub(crate) fn chunks2<T: FloatElem>(
    a: &[T],
    la: &Layout,
    b: &[T],
    lb: &Layout,
    mut sink: impl FnMut(&[f32], &[f32]),
) {
    let plan = Plan::new([la, lb]);
    let [sa, sb] = plan.inner_strides();
    let (mut fa, mut fb) = ([0f32; CHUNK], [0f32; CHUNK]);
    let mut t = [T::ZERO; CHUNK];
    plan.for_each_run(|[oa, ob], len| {
        let mut start = 0;
        while start < len {
            let c = CHUNK.min(len - start);
            load(a, oa + start * sa, sa, &mut t[..c], &mut fa[..c]);
            load(b, ob + start * sb, sb, &mut t[..c], &mut fb[..c]);
            sink(&fa[..c], &fb[..c]);
            start += c;
        }
    });
}

/// Converts `dst.len()` elements of `v` from `offset` with `stride` into `dst`.
#[inline]
fn load<T: FloatElem>(v: &[T], offset: usize, stride: usize, scratch: &mut [T], dst: &mut [f32]) {
    let c = dst.len();
    if stride == 1 {
        T::to_f32_slice(&v[offset..offset + c], dst);
    } else {
        for (i, s) in scratch.iter_mut().enumerate() {
            *s = v[offset + i * stride];
        }
        T::to_f32_slice(scratch, dst);
    }
}

/// Appends f32 values to a vector of `T`, converting a chunk at a time.
pub(crate) struct ChunkWriter<T: FloatElem> {
    pub(crate) out: Vec<T>,
    scratch: [T; CHUNK],
}

impl<T: FloatElem> ChunkWriter<T> {
    pub(crate) fn with_capacity(n: usize) -> Self {
        ChunkWriter {
            out: Vec::with_capacity(n),
            scratch: [T::ZERO; CHUNK],
        }
    }

    /// Appends `values` (at most one chunk).
    #[inline]
    pub(crate) fn push(&mut self, values: &[f32]) {
        let c = values.len();
        T::from_f32_slice(values, &mut self.scratch[..c]);
        self.out.extend_from_slice(&self.scratch[..c]);
    }
}

/// Side of the square tiles of a transposing copy (16 f32 = one 64-byte cache line).
const TILE: usize = 16;
/// Side of the blocks of tiles of a transposing copy.
const BLOCK: usize = 64;

/// True when `la` is a transposed view worth copying in tiles: its unit-stride dimension is
/// not the last one, so walking it in row-major order jumps through memory.
pub(crate) fn is_transposed(la: &Layout) -> bool {
    let plan = Plan::new([la]);
    let rank = plan.shape.len();
    rank >= 2
        && plan.shape[rank - 1] >= 4
        && plan.strides[0][rank - 1] != 1
        && plan.strides[0][..rank - 1].contains(&1)
}

/// A row-major copy of the elements of `a` addressed by `la`. When the view is transposed
/// (its unit-stride dimension is not the last one), copies through a small square tile:
/// reads go along the unit-stride dimension and writes along output rows, so both touch
/// whole cache lines even when the strides are powers of two that alias in the cache.
pub(crate) fn copy1<T: Copy + Default + Send + Sync>(a: &[T], la: &Layout) -> Vec<T> {
    if !is_transposed(la) {
        return map1(a, la, |x| x);
    }
    let plan = Plan::new([la]);
    let rank = plan.shape.len();
    let strides = &plan.strides[0];
    let k = strides
        .iter()
        .position(|&s| s == 1)
        .expect("is_transposed found a unit stride");
    let last = rank - 1;
    let shape = &plan.shape;
    let out_strides = crate::layout::contiguous_strides(shape);
    let mut out = vec![T::default(); plan.numel];
    // The other dims, walked with an odometer.
    let others: Vec<usize> = (0..rank).filter(|&d| d != k && d != last).collect();
    let outer: usize = others.iter().map(|&d| shape[d]).product();
    let mut idx = vec![0usize; others.len()];
    let (rows, cols) = (shape[k], shape[last]);
    let in_col = strides[last];
    let out_row = out_strides[k];
    let mut tile = [T::default(); TILE * TILE];
    for _ in 0..outer {
        let mut ib = plan.offsets[0];
        let mut ob = 0;
        for (&d, &i) in others.iter().zip(&idx) {
            ib += i * strides[d];
            ob += i * out_strides[d];
        }
        // Blocks of BLOCK x BLOCK keep the pages touched (one per input column and output
        // row) within the TLB; tiles inside them keep the cache lines whole.
        for rb in (0..rows).step_by(BLOCK) {
            for cb in (0..cols).step_by(BLOCK) {
                for r0 in (rb..(rb + BLOCK).min(rows)).step_by(TILE) {
                    let rn = TILE.min(rows - r0);
                    for c0 in (cb..(cb + BLOCK).min(cols)).step_by(TILE) {
                        let cn = TILE.min(cols - c0);
                        for c in 0..cn {
                            let src = &a[ib + (c0 + c) * in_col + r0..][..rn];
                            for (r, &x) in src.iter().enumerate() {
                                tile[r * TILE + c] = x;
                            }
                        }
                        for r in 0..rn {
                            let o = ob + (r0 + r) * out_row + c0;
                            out[o..o + cn].copy_from_slice(&tile[r * TILE..r * TILE + cn]);
                        }
                    }
                }
            }
        }
        for p in (0..idx.len()).rev() {
            idx[p] += 1;
            if idx[p] < shape[others[p]] {
                break;
            }
            idx[p] = 0;
        }
    }
    out
}
