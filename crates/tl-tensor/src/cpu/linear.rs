//! `linear(x, W, b)` on the CPU for W stored [out, in] in f32, f16, bf16 or a GGUF block
//! format, read in place (also from a memory-mapped file).
//!
//! - One row of x (decode): one pass over W, rows split over the worker pool, each row dotted
//!   by the CPU's best kernel for the format ([`crate::quant::matvec`]'s engine: AVX-512 VNNI
//!   or AVX2 integer dots with x quantized to 8-bit blocks for Q8_0/Q4_0/Q4_1, and for
//!   Q4_K/Q6_K with AVX-512; F16C/FMA for the float types). A whole Q4_0, Q4_1, Q8_0 or Q4_K
//!   matrix is read as row panels on CPUs with AVX-512 VNNI: a copy laid out 16 rows at a
//!   time, built by its first mat-vec ([`crate::quant::panels`]); later products of any size
//!   read the panels.
//! - 2 to 64 rows (a short prompt), with AVX-512: W expanded to f32 four rows at a time and
//!   dotted with every row of x in 4 x 4 register tiles ([`few_rows_product`]).
//! - More rows (prefill): W is expanded to f32 a tile of rows at a time (each tile stays in
//!   cache) and multiplied by `gemm`; tiles run in parallel. x stays f32 in both.
//!
//! Results are computed in f32 and rounded once to the output dtype.

use super::matmul::{Gemm, gemm_with};
use super::nn::{from_f32_as, host_storage, read_f32};
use crate::bail;
use crate::dtype::DType;
use crate::error::Result;
use crate::quant::matvec::{PackedRows, XPrecision, matvec_rows};
use crate::quant::{GgmlType, dequantize_blocks};
use crate::storage::CpuStorage;
use crate::tensor::Tensor;
use gemm::Parallelism;
use rayon::prelude::*;

/// Rows of W expanded per tile in the many-rows path: 64 rows of 2048 f32 are 512 KiB, which
/// stays in this machine's L2 while `gemm` reads it.
const TILE_ROWS: usize = 64;

/// Views a typed slice as its bytes.
fn as_bytes<T: crate::hostbuf::Pod>(v: &[T]) -> &[u8] {
    // SAFETY: `Pod` types are plain data without padding; the byte view covers exactly the
    // slice's memory and lives as long as it.
    unsafe { std::slice::from_raw_parts(v.as_ptr().cast::<u8>(), std::mem::size_of_val(v)) }
}

/// W's rows as packed bytes when the layout allows reading them in place: unit stride along
/// `in` (little-endian host for the float types). `None` sends the caller to the general path.
/// A whole quantized matrix is read as row panels where the CPU has a panel kernel for its
/// format ([`crate::quant::panels`]): built by the first product with one row of x (`decode`),
/// used by every product once built. Building them at the first mat-vec, not at the first
/// product, keeps them out of the first prompt's time to first token.
fn packed_rows(w: &Tensor, decode: bool) -> Result<Option<PackedRows<'_>>> {
    let l = w.layout();
    let (rows, cols) = (l.shape[0], l.shape[1]);
    if cols > 1 && l.strides[1] != 1 {
        return Ok(None);
    }
    let (kind, bytes, elem_offset, elem_stride) = match host_storage("linear", w)? {
        CpuStorage::Quantized(kind, b, cache) => {
            let (bs, bb) = (kind.block_size(), kind.block_bytes());
            if !l.offset.is_multiple_of(bs) || !l.strides[0].is_multiple_of(bs) {
                bail!("linear: internal: a quantized weight view splits blocks");
            }
            let mut rows = PackedRows {
                kind: *kind,
                bytes: b,
                first: l.offset / bs * bb,
                stride: l.strides[0] / bs * bb,
                rows,
                cols,
                panels: None,
            };
            if !rows.in_bounds() {
                return Ok(None);
            }
            let whole = rows.first == 0
                && rows.stride == rows.row_bytes()
                && rows.rows * rows.stride == b.len();
            if whole {
                rows.panels = if decode {
                    cache.get_or_build(&rows, b)
                } else {
                    cache.built(&rows)
                };
            }
            return Ok(Some(rows));
        }
        _ if cfg!(target_endian = "big") => return Ok(None),
        CpuStorage::F32(v) => (GgmlType::F32, as_bytes(v), l.offset, l.strides[0]),
        CpuStorage::F16(v) => (GgmlType::F16, as_bytes(v), l.offset, l.strides[0]),
        CpuStorage::BF16(v) => (GgmlType::BF16, as_bytes(v), l.offset, l.strides[0]),
        _ => return Ok(None),
    };
    let size = kind.block_bytes();
    let rows = PackedRows {
        kind,
        bytes,
        first: elem_offset * size,
        stride: elem_stride * size,
        rows,
        cols,
        panels: None,
    };
    Ok(rows.in_bounds().then_some(rows))
}

/// Expands one packed row into f32, with the vector decoder when the CPU has one.
fn expand_row(kind: GgmlType, row: &[u8], out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if crate::quant::simd::available() {
        // SAFETY: the CPU has AVX2/FMA/F16C; `row` holds exactly `out.len()` values of `kind`.
        unsafe { crate::quant::simd::dequantize_row_avx2(kind, row, out) };
        return;
    }
    dequantize_blocks(kind, row, out);
}

/// Expands rows `r .. r + n` of W into `out` (`n` rows of f32). With row panels `r` and `n`
/// are multiples of 4 (tiles and row groups start at multiples of 4, and panels hold 16 rows);
/// the rows are rebuilt four at a time into `scratch` first, so the file's pages, released
/// once the panels exist, are not read back.
fn expand_rows(w: &PackedRows, r: usize, out: &mut [f32], scratch: &mut Vec<u8>) {
    let Some(panels) = w.panels else {
        for (j, dst) in out.chunks_exact_mut(w.cols).enumerate() {
            expand_row(w.kind, w.row(r + j), dst);
        }
        return;
    };
    let row_bytes = w.row_bytes();
    scratch.resize(4 * row_bytes, 0);
    for (g, dst) in out.chunks_mut(4 * w.cols).enumerate() {
        panels.rows4_into(r + 4 * g, scratch);
        for (src, dst) in scratch
            .chunks_exact(row_bytes)
            .zip(dst.chunks_exact_mut(w.cols))
        {
            expand_row(w.kind, src, dst);
        }
    }
}

/// `y[m, out] = x[m, in] @ W^T` through f32 tiles of W and `gemm`, tiles in parallel.
fn tiled_product(w: &PackedRows, x: &[f32], m: usize, y: &mut [f32]) {
    let (out_f, in_f) = (w.rows, w.cols);
    let tiles = out_f.div_ceil(TILE_ROWS);
    let parts: Vec<Vec<f32>> = (0..tiles)
        .into_par_iter()
        .map(|t| {
            let r0 = t * TILE_ROWS;
            let nr = TILE_ROWS.min(out_f - r0);
            let mut tile = vec![0f32; nr * in_f];
            expand_rows(w, r0, &mut tile, &mut Vec::new());
            let mut part = vec![0f32; m * nr];
            // part[i, j] = sum_k x[i, k] * tile[j, k]: the tile read transposed in place.
            let g = Gemm {
                m,
                n: nr,
                k: in_f,
                lhs_rs: in_f as isize,
                lhs_cs: 1,
                rhs_rs: 1,
                rhs_cs: in_f as isize,
            };
            gemm_with(g, x, &tile, &mut part, 1.0f32, Parallelism::None);
            part
        })
        .collect();
    for (t, part) in parts.iter().enumerate() {
        let r0 = t * TILE_ROWS;
        let nr = TILE_ROWS.min(out_f - r0);
        for (dst, src) in y.chunks_exact_mut(out_f).zip(part.chunks_exact(nr)) {
            dst[r0..r0 + nr].copy_from_slice(src);
        }
    }
}

/// Rows of x up to which [`few_rows_product`] runs instead of [`tiled_product`] (on CPUs with
/// AVX-512): with few rows, `gemm` spends as long packing each weight tile as multiplying it.
#[cfg(target_arch = "x86_64")]
const FEW_ROWS: usize = 64;

/// `y[m, out] = x[m, in] @ W^T` for a few rows of x (a short prompt): W's rows are expanded to
/// f32 four at a time into a buffer that stays in L1, and each group of four is dotted with
/// every row of x (which stays in L2) by a 4 x 4 register tile; row groups run on the mat-vec
/// team. Exact f32 arithmetic, as `tiled_product`.
#[cfg(target_arch = "x86_64")]
fn few_rows_product(w: &PackedRows, x: &[f32], m: usize, y: &mut [f32]) {
    let (out_f, in_f) = (w.rows, w.cols);
    let threads = crate::cpu::team::threads();
    // Whole groups of four rows per chunk, a few chunks per thread.
    let chunk = (out_f.div_ceil(threads * 4).div_ceil(4) * 4).max(4);
    let out = crate::cpu::team::SharedOut(y.as_mut_ptr());
    crate::cpu::team::for_each_range(out_f, chunk, &|rows| {
        let mut buf = vec![0f32; 4 * in_f];
        let mut scratch = Vec::new();
        let mut r = rows.start;
        while r < rows.end {
            let nr = (rows.end - r).min(4);
            expand_rows(w, r, &mut buf[..nr * in_f], &mut scratch);
            buf[nr * in_f..].fill(0.0);
            let mut i = 0;
            while i < m {
                let nc = (m - i).min(4);
                let xs = &x[i * in_f..(i + nc) * in_f];
                // SAFETY: `few_rows_product` runs only where `avx512_tiles` is true; `buf`
                // holds 4 rows and `xs` nc rows of in_f values.
                let dots = unsafe { tile_dots(&buf, xs, in_f, nc) };
                for (c, row) in dots.iter().take(nc).enumerate() {
                    for (j, &v) in row.iter().take(nr).enumerate() {
                        // SAFETY: (i + c, r + j) lies inside y [m, out_f]; every chunk writes
                        // its own columns, and y outlives the loop.
                        unsafe { *out.at((i + c) * out_f + r + j) = v };
                    }
                }
                i += nc;
            }
            r += nr;
        }
    });
}

/// True when the CPU runs [`few_rows_product`]'s tiles (AVX-512 F).
#[cfg(target_arch = "x86_64")]
fn avx512_tiles() -> bool {
    static HAVE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *HAVE.get_or_init(|| is_x86_feature_detected!("avx512f") && !crate::quant::avx512::turned_off())
}

/// Dots of the 4 rows of `w` with the `nc` (1..=4) rows of `x` (each `k` long): `[c][r]`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn tile_dots(w: &[f32], x: &[f32], k: usize, nc: usize) -> [[f32; 4]; 4] {
    unsafe {
        match nc {
            4 => tile::<4>(w, x, k),
            3 => tile::<3>(w, x, k),
            2 => tile::<2>(w, x, k),
            _ => tile::<1>(w, x, k),
        }
    }
}

/// [`tile_dots`] for `C` rows of x: 4 x C accumulators of 16 lanes, one pass over k.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn tile<const C: usize>(w: &[f32], x: &[f32], k: usize) -> [[f32; 4]; 4] {
    use std::arch::x86_64::*;
    unsafe {
        let (wp, xp) = (w.as_ptr(), x.as_ptr());
        let mut acc = [[_mm512_setzero_ps(); 4]; C];
        let mut i = 0;
        while i + 16 <= k {
            let wv: [__m512; 4] = std::array::from_fn(|r| _mm512_loadu_ps(wp.add(r * k + i)));
            for (c, a) in acc.iter_mut().enumerate() {
                let xv = _mm512_loadu_ps(xp.add(c * k + i));
                for (r, ar) in a.iter_mut().enumerate() {
                    *ar = _mm512_fmadd_ps(wv[r], xv, *ar);
                }
            }
            i += 16;
        }
        let mut out = [[0f32; 4]; 4];
        for (c, a) in acc.iter().enumerate() {
            for (r, ar) in a.iter().enumerate() {
                let mut v = _mm512_reduce_add_ps(*ar);
                for j in i..k {
                    v += *wp.add(r * k + j) * *xp.add(c * k + j);
                }
                out[c][r] = v;
            }
        }
        out
    }
}

/// `x @ W^T + b` with the checks of `Tensor::linear` already done. Falls back to the general
/// product for weights whose layout cannot be read row by row (e.g. a transposed view).
pub(crate) fn linear(x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> Result<Tensor> {
    let m: usize = x.shape()[..x.rank() - 1].iter().product();
    let Some(rows) = packed_rows(w, m == 1)? else {
        return crate::ops::linalg::linear_via_matmul(x, w, b);
    };
    let (out_f, in_f) = (rows.rows, rows.cols);
    let out_dtype = if w.dtype().is_quantized() {
        x.dtype()
    } else {
        DType::promote(x.dtype(), w.dtype())
    };
    // f32 x and W with many rows: gemm reads both in place, there is nothing to convert.
    if m > 1 && x.dtype() == DType::F32 && w.dtype() == DType::F32 {
        return crate::ops::linalg::linear_via_matmul(x, w, b);
    }
    let xs = read_f32("linear", x)?;
    let mut y = vec![0f32; m * out_f];
    if m > 0 && out_f > 0 && in_f > 0 {
        if m == 1 {
            matvec_rows(&rows, &xs, &mut y, XPrecision::Fast, true);
        } else {
            #[cfg(target_arch = "x86_64")]
            if m <= FEW_ROWS && avx512_tiles() {
                few_rows_product(&rows, &xs, m, &mut y);
            } else {
                tiled_product(&rows, &xs, m, &mut y);
            }
            #[cfg(not(target_arch = "x86_64"))]
            tiled_product(&rows, &xs, m, &mut y);
        }
    }
    if let Some(b) = b {
        // A bias [out] repeats for every row; a residual has one value per output.
        let bias = read_f32("linear", b)?;
        let per_row = if bias.len() == y.len() {
            y.len()
        } else {
            out_f
        };
        for row in y.chunks_exact_mut(per_row.max(1)) {
            for (v, &bv) in row.iter_mut().zip(bias.iter()) {
                *v += bv;
            }
        }
    }
    let mut shape = x.shape()[..x.rank() - 1].to_vec();
    shape.push(out_f);
    from_f32_as(y, &shape, out_dtype)
}
