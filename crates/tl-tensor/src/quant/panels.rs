//! Row panels: a CPU copy of a packed weight matrix in the layout the AVX-512 mat-vec kernel
//! for its format reads fastest, built once, the first time `linear` meets the matrix.
//!
//! Why: in the file's layout each row is a run of blocks (`d`, then the quants), so a one-row
//! kernel gathers four blocks' scales one by one, shuffles four 16-byte quant runs into a
//! register and reduces every block's sum across lanes; that work, not memory, bounded Q4_0
//! decode. A panel holds 16 rows block by block: lane `r` of each 64-byte register is 4 bytes
//! of row `r`, so one `vpdpbusd` with 4 broadcast bytes of `x` advances 16 rows at once, the 16
//! scales of a block are one 32-byte load, and no lane reduction is left.
//!
//! Formats: Q4_0, Q4_1, Q8_0 and Q4_K (whose header is `d`, `dmin` and the 12 packed
//! scale bytes, as 8 fields). Layout of one panel (rows `16 p .. 16 p + 16`), in pairs of
//! blocks `2 i`, `2 i + 1`:
//! `[16 headers of block 2i][16 headers of block 2i+1][quants of 2i][quants of 2i+1]`, where a
//! header is the block's f16 fields before its quants (Q4_0, Q8_0: `d`; Q4_1: `d`, `m`), kept
//! field by field (the 16 rows' `d`, then the 16 rows' `m`), and the quants of a block are
//! `quant_bytes / 4` registers of 64 bytes whose lane `r` holds bytes `4j .. 4j + 4` of row
//! `r`'s quants. A pair of Q4_0 blocks is 576 bytes (9 cache lines; Q4_1 640, Q8_0 1088), so
//! a panel is one sequential stream: interleaving the scales with the quants (instead of all
//! scales first) keeps the hardware prefetcher on one stream, which measured 27 vs 15 GB/s
//! on one core. An odd last block leaves its pair's second slot zero.
//!
//! The copy has the same size as the matrix. When the matrix lives in a memory-mapped file the
//! map's resident pages are released once the panels exist
//! ([`HostBuf::release_resident_pages`]), so the process keeps one copy in memory, not two;
//! other readers of the file bytes (an embedding lookup, the GPU upload) page them back in.

use super::GgmlType;
use super::matvec::PackedRows;
use crate::hostbuf::HostBuf;
use std::sync::{Arc, OnceLock};

/// Rows per panel: one per 32-bit lane of a 512-bit register.
pub(crate) const PANEL_ROWS: usize = 16;

/// Header and quant bytes of one block of the formats that have a panel kernel.
fn block_parts(kind: GgmlType) -> Option<(usize, usize)> {
    match kind {
        GgmlType::Q4_0 => Some((2, 16)),
        GgmlType::Q4_1 => Some((4, 16)),
        GgmlType::Q8_0 => Some((2, 32)),
        GgmlType::Q4_K => Some((16, 128)),
        _ => None,
    }
}

/// True when this CPU runs panel kernels for `kind`.
pub fn supported(kind: GgmlType) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        block_parts(kind).is_some() && super::simd::available() && super::avx512::available()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = kind;
        false
    }
}

/// A packed `[rows, cols]` matrix as panels of [`PANEL_ROWS`] rows (see the module doc).
pub(crate) struct RowPanels {
    kind: GgmlType,
    rows: usize,
    cols: usize,
    header: usize,
    quants: usize,
    panel_bytes: usize,
    /// Fresh zeroed pages of an anonymous map (page-aligned, so the panels start on a cache
    /// line), asked for as transparent huge pages: 2 MB pages make the first touch about 300
    /// page faults for a 1B model's weights instead of 150 000, and spare TLB misses while
    /// decode streams through them.
    bytes: memmap2::MmapMut,
}

impl RowPanels {
    /// The panels of `w`, or `None` when its format has no panel kernel on this CPU, its row
    /// count is not a whole number of panels, or the copy does not fit in memory.
    pub fn build(w: &PackedRows) -> Option<RowPanels> {
        let (header, quants) = block_parts(w.kind).filter(|_| supported(w.kind))?;
        if w.rows == 0 || !w.rows.is_multiple_of(PANEL_ROWS) || !w.in_bounds() {
            return None;
        }
        let blocks = w.cols / w.kind.block_size();
        let pair = 2 * PANEL_ROWS * (header + quants);
        debug_assert!(pair.is_multiple_of(64));
        let panel_bytes = blocks.div_ceil(2) * pair;
        let total = (w.rows / PANEL_ROWS).checked_mul(panel_bytes)?;
        // A failure (no memory) leaves the caller with the file's rows.
        let mut bytes = memmap2::MmapMut::map_anon(total).ok()?;
        // Huge pages where the kernel has them, faulted in by one call (Linux 5.14+; older
        // kernels refuse it and the pages fault in as the panels are written): 0.2 s instead
        // of 0.3-0.5 s for a 1.1B Q4_0 model's panels here.
        #[cfg(target_os = "linux")]
        {
            let _ = bytes.advise(memmap2::Advice::HugePage);
            let _ = bytes.advise(memmap2::Advice::PopulateWrite);
        }
        let out = crate::cpu::team::SharedOut(bytes.as_mut_ptr());
        let panels = RowPanels {
            kind: w.kind,
            rows: w.rows,
            cols: w.cols,
            header,
            quants,
            panel_bytes,
            bytes,
        };
        let p = &panels;
        crate::cpu::team::for_each_range(w.rows / PANEL_ROWS, 4, &|range| {
            for index in range {
                // SAFETY: each panel index is handed out once, panel `index` is the disjoint
                // byte range `index * panel_bytes ..` of `bytes`, which nothing else reads or
                // writes until the loop ends.
                let dst = unsafe {
                    std::slice::from_raw_parts_mut(out.at(index * p.panel_bytes), p.panel_bytes)
                };
                p.fill_panel(w, index, dst);
            }
        });
        Some(panels)
    }

    /// Where block `b` of row `r` (within its panel) keeps its header and its first quant
    /// word, as offsets into the panel.
    fn block_at(&self, r: usize, b: usize) -> (usize, usize) {
        let base = (b / 2) * self.pair();
        let slot = b % 2;
        // Header fields (2-byte scales) field by field: field f of row r at 32 f + 2 r.
        let header = base + slot * PANEL_ROWS * self.header + 2 * r;
        let quants = base + 2 * PANEL_ROWS * self.header + slot * PANEL_ROWS * self.quants + 4 * r;
        (header, quants)
    }

    /// Writes panel `index` of `w` into `dst` (zeroed, `panel_bytes` long).
    fn fill_panel(&self, w: &PackedRows, index: usize, dst: &mut [u8]) {
        let bb = self.header + self.quants;
        let blocks = self.blocks();
        assert!(dst.len() >= self.panel_bytes);
        for r in 0..PANEL_ROWS {
            let row = w.row(index * PANEL_ROWS + r);
            assert_eq!(row.len(), blocks * bb);
            for b in 0..blocks {
                let (h, q) = self.block_at(r, b);
                // SAFETY: block `b` of `row` is in bounds (asserted above), and `block_at`
                // offsets for b < blocks and r < 16 lie inside the panel, which `dst` covers;
                // the copies are of plain bytes (unaligned u32 words).
                unsafe {
                    let src = row.as_ptr().add(b * bb);
                    let out = dst.as_mut_ptr();
                    for f in 0..self.header / 2 {
                        let field = src.add(2 * f).cast::<u16>().read_unaligned();
                        out.add(h + 32 * f).cast::<u16>().write_unaligned(field);
                    }
                    for j in 0..self.quants / 4 {
                        let word = src.add(self.header + 4 * j).cast::<u32>().read_unaligned();
                        out.add(q + 64 * j).cast::<u32>().write_unaligned(word);
                    }
                }
            }
        }
    }

    /// Bytes of one pair of blocks of a panel.
    fn pair(&self) -> usize {
        2 * PANEL_ROWS * (self.header + self.quants)
    }

    /// Blocks per row.
    fn blocks(&self) -> usize {
        self.cols / self.kind.block_size()
    }

    pub fn kind(&self) -> GgmlType {
        self.kind
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Number of panels.
    pub fn panels(&self) -> usize {
        self.rows / PANEL_ROWS
    }

    /// The bytes of panel `p`.
    pub fn panel(&self, p: usize) -> &[u8] {
        &self.bytes[p * self.panel_bytes..(p + 1) * self.panel_bytes]
    }

    /// Rows `r .. r + 4` (`r` a multiple of 4) in the file's layout, written one after the
    /// other into `out` (4 rows' bytes): how the products with several rows of x read the
    /// panels. Rows `r .. r + 4` share every 16-byte quarter of a quant register, so four
    /// loads and a 4 x 4 transpose of 32-bit words give 16 quant bytes of each row.
    pub fn rows4_into(&self, r: usize, out: &mut [u8]) {
        let bb = self.header + self.quants;
        let blocks = self.blocks();
        let row_bytes = blocks * bb;
        assert!(r.is_multiple_of(4) && r + 4 <= self.rows && out.len() == 4 * row_bytes);
        let panel = self.panel(r / PANEL_ROWS);
        let k = r % PANEL_ROWS;
        for b in 0..blocks {
            for i in 0..4 {
                let (h, _) = self.block_at(k + i, b);
                // SAFETY: the header of block b of row k + i lies in the panel, and block b
                // of output row i in `out` (asserted sizes).
                unsafe {
                    copy_header(
                        panel.as_ptr().add(h),
                        out.as_mut_ptr().add(i * row_bytes + b * bb),
                        self.header / 2,
                    )
                };
            }
            let (_, q) = self.block_at(k, b);
            for g in 0..self.quants / 16 {
                // SAFETY: the four 16-byte loads at q + 64 (4 g + j) lie in the panel (lanes k
                // .. k + 4 of quant register 4 g + j of block b); each 16-byte store is
                // quant bytes 16 g .. 16 g + 16 of block b of one output row.
                unsafe {
                    transpose_words(
                        panel.as_ptr().add(q + 256 * g),
                        out.as_mut_ptr().add(b * bb + self.header + 16 * g),
                        row_bytes,
                    )
                };
            }
        }
    }

    /// Row `r` in the file's layout, written into `out` (`cols` values' worth of blocks).
    #[cfg(test)]
    pub fn row_into(&self, r: usize, out: &mut [u8]) {
        let panel = self.panel(r / PANEL_ROWS);
        let bb = self.header + self.quants;
        let blocks = self.blocks();
        assert!(r < self.rows && out.len() == blocks * bb);
        for b in 0..blocks {
            let (h, q) = self.block_at(r % PANEL_ROWS, b);
            // SAFETY: as in `fill_panel`, with the roles of the panel and the row swapped.
            unsafe {
                let src = panel.as_ptr();
                let dst = out.as_mut_ptr().add(b * bb);
                copy_header(src.add(h), dst, self.header / 2);
                for j in 0..self.quants / 4 {
                    let word = src.add(q + 64 * j).cast::<u32>().read_unaligned();
                    dst.add(self.header + 4 * j)
                        .cast::<u32>()
                        .write_unaligned(word);
                }
            }
        }
    }
}

/// Reads four 16-byte groups at `src + 64 j` (j = 0..4; group j holds word j of four rows) and
/// writes row i's four words (16 bytes) at `dst + i * stride`.
///
/// # Safety
/// The 4 reads of 16 bytes and the 4 writes of 16 bytes must be in bounds.
#[inline(always)]
unsafe fn transpose_words(src: *const u8, dst: *mut u8, stride: usize) {
    #[cfg(target_arch = "x86_64")]
    unsafe {
        use std::arch::x86_64::*;
        // SSE2, which every x86-64 CPU has.
        let a: [__m128i; 4] = std::array::from_fn(|j| _mm_loadu_si128(src.add(64 * j).cast()));
        let t0 = _mm_unpacklo_epi32(a[0], a[1]);
        let t1 = _mm_unpackhi_epi32(a[0], a[1]);
        let t2 = _mm_unpacklo_epi32(a[2], a[3]);
        let t3 = _mm_unpackhi_epi32(a[2], a[3]);
        let rows = [
            _mm_unpacklo_epi64(t0, t2),
            _mm_unpackhi_epi64(t0, t2),
            _mm_unpacklo_epi64(t1, t3),
            _mm_unpackhi_epi64(t1, t3),
        ];
        for (i, row) in rows.iter().enumerate() {
            _mm_storeu_si128(dst.add(i * stride).cast(), *row);
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    unsafe {
        for j in 0..4 {
            for i in 0..4 {
                std::ptr::copy_nonoverlapping(
                    src.add(64 * j + 4 * i),
                    dst.add(i * stride + 4 * j),
                    4,
                );
            }
        }
    }
}

/// Gathers a block header of `fields` 2-byte fields from a panel (field f at `src + 32 f`)
/// into its file layout at `dst`.
///
/// # Safety
/// The fields must be readable at `src` and `2 * fields` bytes writable at `dst`.
#[inline(always)]
unsafe fn copy_header(src: *const u8, dst: *mut u8, fields: usize) {
    unsafe {
        for f in 0..fields {
            let field = src.add(32 * f).cast::<u16>().read_unaligned();
            dst.add(2 * f).cast::<u16>().write_unaligned(field);
        }
    }
}

/// The row panels of one quantized storage, built at most once, on first use; clones of the
/// storage share them (a storage's packed bytes are never written, so they stay valid).
#[derive(Clone, Default)]
pub struct PanelCache(Arc<OnceLock<Option<RowPanels>>>);

impl PanelCache {
    /// The panels of the whole matrix `w`, whose bytes are all of `bytes`, building them on the
    /// first call (on the mat-vec team) and then releasing the resident pages of `bytes` when
    /// they are a file map. `None` when the format has no panel kernel here (see
    /// [`RowPanels::build`]).
    pub(crate) fn get_or_build(&self, w: &PackedRows, bytes: &HostBuf<u8>) -> Option<&RowPanels> {
        self.0.get_or_init(|| {
            let panels = RowPanels::build(w)?;
            bytes.release_resident_pages();
            Some(panels)
        });
        self.built(w)
    }

    /// The panels of the whole matrix `w` if they were built already (never builds).
    pub(crate) fn built(&self, w: &PackedRows) -> Option<&RowPanels> {
        self.0
            .get()?
            .as_ref()
            .filter(|p| p.rows == w.rows && p.cols == w.cols && p.kind == w.kind)
    }

    /// True once panels were built.
    pub fn is_built(&self) -> bool {
        matches!(self.0.get(), Some(Some(_)))
    }
}

/// A cache is not part of a storage's value.
impl PartialEq for PanelCache {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl std::fmt::Debug for PanelCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.is_built() {
            "PanelCache(built)"
        } else {
            "PanelCache(empty)"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::dequantize_blocks;
    use super::super::matvec::{XPrecision, matvec_rows};
    use super::*;
    use half::f16;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// `rows` random rows of `kind` with finite scales of a sensible size.
    fn random_matrix(kind: GgmlType, rows: usize, blocks: usize, rng: &mut ChaCha8Rng) -> Vec<u8> {
        let bb = kind.block_bytes();
        let mut bytes: Vec<u8> = (0..rows * blocks * bb).map(|_| rng.random()).collect();
        // Finite scales (and Q4_1 mins) of a sensible size.
        let fields = if matches!(kind, GgmlType::Q4_1 | GgmlType::Q4_K) {
            2
        } else {
            1
        };
        for blk in bytes.chunks_exact_mut(bb) {
            for f in 0..fields {
                let v = f16::from_f32(rng.random_range(-0.05f32..0.05));
                blk[2 * f..2 * f + 2].copy_from_slice(&v.to_le_bytes());
            }
        }
        bytes
    }

    fn packed(kind: GgmlType, bytes: &[u8], rows: usize, cols: usize) -> PackedRows<'_> {
        let stride = cols / kind.block_size() * kind.block_bytes();
        PackedRows {
            kind,
            bytes,
            first: 0,
            stride,
            rows,
            cols,
            panels: None,
        }
    }

    #[test]
    fn panels_keep_every_row_and_their_matvec_matches_an_f64_reference() {
        if !supported(GgmlType::Q4_0) {
            eprintln!("skipped: this CPU has no AVX-512 VNNI (or TL_CPU_NO_AVX512 is set)");
            return;
        }
        let mut rng = ChaCha8Rng::seed_from_u64(21);
        for kind in [
            GgmlType::Q4_0,
            GgmlType::Q4_1,
            GgmlType::Q8_0,
            GgmlType::Q4_K,
        ] {
            // Odd block counts leave the last pair half empty.
            for blocks in [1, 2, 3, 4, 5, 64, 67, 176] {
                for rows in [16, 48] {
                    let cols = blocks * kind.block_size();
                    let bytes = random_matrix(kind, rows, blocks, &mut rng);
                    let mut w = packed(kind, &bytes, rows, cols);
                    let panels = RowPanels::build(&w).expect("a whole number of panels");
                    let mut rebuilt = vec![0u8; w.row_bytes()];
                    for r in 0..rows {
                        // The panels hold every byte of every row.
                        panels.row_into(r, &mut rebuilt);
                        assert_eq!(rebuilt, w.row(r), "{kind:?} {rows}x{cols}: row {r}");
                    }
                    let mut four = vec![0u8; 4 * w.row_bytes()];
                    for r in (0..rows).step_by(4) {
                        panels.rows4_into(r, &mut four);
                        for (i, got) in four.chunks_exact(w.row_bytes()).enumerate() {
                            assert_eq!(got, w.row(r + i), "{kind:?} {rows}x{cols}: rows4 {r}+{i}");
                        }
                    }
                    w.panels = Some(&panels);
                    let xv: Vec<f32> = (0..cols).map(|_| rng.random_range(-2.0f32..2.0)).collect();
                    let x = super::super::simd::Q8Blocks::new(&xv, None);
                    let mut y = vec![f32::NAN; rows];
                    matvec_rows(&w, &xv, &mut y, XPrecision::Fast, true);
                    for (r, &got) in y.iter().enumerate() {
                        let mut dense = vec![0f32; cols];
                        dequantize_blocks(kind, w.row(r), &mut dense);
                        // In f64 with x as the kernel sees it (its 8-bit blocks).
                        let want: f64 = (0..cols)
                            .map(|i| dense[i] as f64 * x.q[i] as f64 * x.d[i / 32] as f64)
                            .sum();
                        // Relative to sum |w x| (the dot itself may cancel to near zero).
                        let scale: f64 = dense
                            .iter()
                            .zip(&xv)
                            .map(|(a, b)| (a * b).abs() as f64)
                            .sum();
                        let err = (got as f64 - want).abs() / scale.max(1e-30);
                        assert!(err < 1e-5, "{kind:?} {rows}x{cols} row {r}: error {err}");
                    }
                }
            }
        }
    }

    #[test]
    fn panels_need_whole_panels_of_rows() {
        let mut rng = ChaCha8Rng::seed_from_u64(22);
        let bytes = random_matrix(GgmlType::Q4_0, 17, 2, &mut rng);
        assert!(RowPanels::build(&packed(GgmlType::Q4_0, &bytes, 17, 64)).is_none());
        let f32_rows = vec![0u8; 16 * 64 * 4];
        assert!(RowPanels::build(&packed(GgmlType::F32, &f32_rows, 16, 64)).is_none());
    }
}
