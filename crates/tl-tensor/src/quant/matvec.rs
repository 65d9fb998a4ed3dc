//! The mat-vec engine behind [`super::matvec`] and the CPU `linear`: one pass over the packed
//! rows of W, split over the worker pool in chunks of rows, with the fastest row kernel the
//! CPU has for the format.

use super::GgmlType;
use super::panels::RowPanels;
use super::portable;

/// How `x` enters the quantized dot products.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XPrecision {
    /// Q8_0, Q4_0 and Q4_1 rows (and K-quant rows on CPUs with AVX-512 VNNI) are dotted
    /// in integers with `x` quantized once to 8-bit blocks of 32 (llama.cpp's choice; adds a
    /// relative error of about 0.5% / sqrt(block count) per output); see [`quantizes_x`].
    /// Other formats use f32 `x`.
    Fast,
    /// Every format dequantizes block by block and multiplies with f32 `x` (exact x, slower).
    F32,
}

/// The rows of a packed row-major matrix: row `r` is `row_bytes` bytes at
/// `first + r * stride` in `bytes`; `panels`, when set, holds the same matrix as row panels
/// (and is what the kernels read).
#[derive(Clone, Copy)]
pub(crate) struct PackedRows<'a> {
    pub kind: GgmlType,
    pub bytes: &'a [u8],
    pub first: usize,
    pub stride: usize,
    pub rows: usize,
    pub cols: usize,
    pub panels: Option<&'a RowPanels>,
}

impl<'a> PackedRows<'a> {
    pub fn row_bytes(&self) -> usize {
        self.cols / self.kind.block_size() * self.kind.block_bytes()
    }

    pub fn row(&self, r: usize) -> &'a [u8] {
        let start = self.first + r * self.stride;
        &self.bytes[start..start + self.row_bytes()]
    }

    /// True when every row lies inside `bytes` (callers check before running kernels).
    pub fn in_bounds(&self) -> bool {
        self.rows == 0
            || (self.rows - 1)
                .checked_mul(self.stride)
                .and_then(|o| o.checked_add(self.first))
                .and_then(|o| o.checked_add(self.row_bytes()))
                .is_some_and(|end| end <= self.bytes.len())
    }
}

/// True when [`XPrecision::Fast`] dots rows of `kind` in integers with `x` quantized to 8-bit
/// blocks of 32 on this CPU: Q8_0, Q4_0 and Q4_1 with AVX2; also the K-quants with AVX-512
/// VNNI. Other formats (and other CPUs) multiply with f32 `x`.
pub fn quantizes_x(kind: GgmlType) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        super::simd::available()
            && (matches!(kind, GgmlType::Q8_0 | GgmlType::Q4_0 | GgmlType::Q4_1)
                || (super::avx512::available() && super::avx512::has_kernel(kind)))
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = kind;
        false
    }
}

/// `x` in the form the chosen row kernel reads.
pub(crate) struct PreparedX<'x> {
    x: &'x [f32],
    kind: GgmlType,
    simd: bool,
    /// The integer dots run the AVX-512 VNNI kernels.
    vnni: bool,
    #[cfg(target_arch = "x86_64")]
    q8: Option<super::simd::Q8Blocks>,
}

impl<'x> PreparedX<'x> {
    pub fn new(kind: GgmlType, x: &'x [f32], precision: XPrecision) -> PreparedX<'x> {
        #[cfg(target_arch = "x86_64")]
        {
            let simd = super::simd::available();
            let integer =
                precision == XPrecision::Fast && x.len().is_multiple_of(32) && quantizes_x(kind);
            let vnni = integer && super::avx512::available();
            PreparedX {
                x,
                kind,
                simd,
                vnni,
                q8: integer.then(|| super::simd::Q8Blocks::new(x, vnni.then_some(kind))),
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = precision;
            PreparedX {
                x,
                kind,
                simd: false,
                vnni: false,
            }
        }
    }

    /// Dot of one packed row (of `self.kind`, `x.len()` values) with `x`.
    #[inline]
    pub fn dot(&self, row: &[u8]) -> f32 {
        #[cfg(target_arch = "x86_64")]
        if self.simd {
            use super::simd;
            // SAFETY: `simd` is set only when the CPU has AVX2, FMA and F16C; the kernels
            // read within `row` and `x`, whose lengths match the format (checked by callers).
            unsafe {
                if self.vnni {
                    use super::avx512;
                    // SAFETY: `vnni` is set only when the CPU has AVX-512 F/BW/VL/VNNI, and
                    // with `q8` (built with `halves` for the 4-bit formats).
                    match (self.kind, &self.q8) {
                        (GgmlType::Q8_0, Some(q)) => return avx512::dot_q8_0(row, q),
                        (GgmlType::Q4_0, Some(q)) => return avx512::dot_q4_0(row, q),
                        (GgmlType::Q4_1, Some(q)) => return avx512::dot_q4_1(row, q),
                        (GgmlType::Q4_K, Some(q)) => return avx512::dot_q4_k(row, q),
                        (GgmlType::Q5_K, Some(q)) => return avx512::dot_q5_k(row, q),
                        (GgmlType::Q6_K, Some(q)) => return avx512::dot_q6_k(row, q),
                        _ => {}
                    }
                }
                return match (self.kind, &self.q8) {
                    (GgmlType::Q8_0, Some(q)) => simd::dot_q8_0(row, q),
                    (GgmlType::Q4_0, Some(q)) => simd::dot_q4_0(row, q),
                    (GgmlType::Q4_1, Some(q)) => simd::dot_q4_1(row, q),
                    (GgmlType::F32, _) => simd::dot_f32(row, self.x),
                    (GgmlType::F16, _) => simd::dot_f16(row, self.x),
                    (GgmlType::BF16, _) => simd::dot_bf16(row, self.x),
                    (GgmlType::Q4_K | GgmlType::Q5_K | GgmlType::Q6_K, _) => {
                        simd::dot_kquant(self.kind, row, self.x)
                    }
                    (kind, _) => simd::dot_row_generic(kind, row, self.x),
                };
            }
        }
        portable::dot_row(self.kind, row, self.x)
    }
}

/// Below this many weights a mat-vec runs on the calling thread: handing work to the pool
/// costs more than it saves.
const PARALLEL_MIN_WEIGHTS: usize = 1 << 16;

/// `y[r] = dot(row r, x)` for every row, on the worker pool when `parallel` and the matrix is
/// large enough. `w` must be in bounds and `x.len() == w.cols`, `y.len() == w.rows`.
pub(crate) fn matvec_rows(
    w: &PackedRows,
    x: &[f32],
    y: &mut [f32],
    precision: XPrecision,
    parallel: bool,
) {
    debug_assert!(w.in_bounds() && x.len() == w.cols && y.len() == w.rows);
    #[cfg(target_arch = "x86_64")]
    if let Some(p) = w.panels.filter(|_| precision == XPrecision::Fast) {
        return matvec_panels(p, x, y, parallel);
    }
    let px = PreparedX::new(w.kind, x, precision);
    let threads = crate::cpu::team::threads();
    if !parallel || threads < 2 || w.rows * w.cols < PARALLEL_MIN_WEIGHTS || w.rows < 2 {
        for (r, out) in y.iter_mut().enumerate() {
            *out = px.dot(w.row(r));
        }
        return;
    }
    // Chunks are claimed one at a time, so several per thread balance the load when one
    // core is busy elsewhere.
    let chunk = w.rows.div_ceil(threads * 8).max(8);
    let out = crate::cpu::team::SharedOut(y.as_mut_ptr());
    crate::cpu::team::for_each_range(w.rows, chunk, &|rows| {
        // SAFETY: the team hands out disjoint row ranges inside 0..w.rows = 0..y.len(), and
        // `y` outlives the loop.
        let ys = unsafe { std::slice::from_raw_parts_mut(out.at(rows.start), rows.len()) };
        for (out, r) in ys.iter_mut().zip(rows) {
            *out = px.dot(w.row(r));
        }
    });
}

/// [`matvec_rows`] over row panels: 16 rows per kernel call, panels split over the team.
#[cfg(target_arch = "x86_64")]
fn matvec_panels(p: &RowPanels, x: &[f32], y: &mut [f32], parallel: bool) {
    use super::panels::PANEL_ROWS;
    let q = super::simd::Q8Blocks::new(x, None);
    let run = |i: usize, out: &mut [f32]| {
        // SAFETY: panels exist only where `panels::supported` found AVX-512 VNNI (and AVX2,
        // FMA, F16C); panel `i` holds `x.len()` values of 16 rows, and `out` has 16 slots.
        unsafe {
            match p.kind() {
                GgmlType::Q4_0 => super::avx512::panel_q4_0(p.panel(i), &q, out),
                GgmlType::Q4_1 => super::avx512::panel_q4_1(p.panel(i), &q, out),
                GgmlType::Q8_0 => super::avx512::panel_q8_0(p.panel(i), &q, out),
                GgmlType::Q4_K => super::avx512::panel_q4_k(p.panel(i), &q, out),
                other => unreachable!("no panel kernel for {}", other.name()),
            }
        }
    };
    let threads = crate::cpu::team::threads();
    if !parallel || threads < 2 || p.rows() * p.cols() < PARALLEL_MIN_WEIGHTS {
        for (i, out) in y.chunks_exact_mut(PANEL_ROWS).enumerate() {
            run(i, out);
        }
        return;
    }
    let chunk = p.panels().div_ceil(threads * 8);
    let out = crate::cpu::team::SharedOut(y.as_mut_ptr());
    crate::cpu::team::for_each_range(p.panels(), chunk, &|panels| {
        for i in panels {
            // SAFETY: the team hands out disjoint panel ranges, panel i owns y[16 i..16 i + 16],
            // and `y` outlives the loop.
            let ys = unsafe { std::slice::from_raw_parts_mut(out.at(i * PANEL_ROWS), PANEL_ROWS) };
            run(i, ys);
        }
    });
}
