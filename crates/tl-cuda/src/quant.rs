//! GGUF blocks on the device and the batch-1 products: `linear` reads Q4_0/Q4_1/Q8_0/Q4_K/
//! Q5_K/Q6_K weights in place (`tl_matvec_q`) and float weights with 16-byte loads
//! (`tl_matvec_f`) for up to [`MATVEC_MAX_ROWS`] input rows; larger batches (prefill) expand a
//! quantized weight once into the input's float type and use cuBLAS. One input row (a decode
//! step) takes the staged kernels (`tl_matvec_f1_staged`, `tl_matvec_q1_staged`), which also
//! do `linear_fused`'s RMS norm, residual and SwiGLU in the same launch.

use std::sync::Arc;
use tl_tensor::ops::LinearFusion;
use tl_tensor::{BinaryOp, DType, GgmlType, Layout, Result, Tensor, TensorError};

use crate::CudaBackend;
use crate::runtime::{Args, Lay, ThreadStream, dtype_code, grid_for};

/// Input rows up to which `linear` uses the mat-vec kernels (`MV_MAX_ROWS` in quant.cu):
/// each weight is then read once for all rows.
pub(crate) const MATVEC_MAX_ROWS: usize = 8;
/// Threads per block of the mat-vec kernels (`MV_THREADS`).
const MATVEC_THREADS: u32 = 256;
/// Output features (one warp each) per block of the one-row kernels (`MV1_WARPS`).
const MATVEC1_WARPS: usize = 8;
/// Bytes of shared memory a block may hold without opting in to more: the staged one-row
/// kernels keep the whole input row there (plus 12 KiB of block staging for packed weights).
const STAGED_SHARED_BYTES: usize = 48 * 1024;
/// Static shared memory of `tl_matvec_q1_staged` (`stage`: 8 warps x 96 16-byte words) and
/// of the norm's reduction.
const STAGED_Q_STATIC_BYTES: usize = MATVEC1_WARPS * 96 * 16 + 128;
/// Most output features one mat-vec block computes (`MV_MAX_RPB`).
const MATVEC_MAX_ROWS_PER_BLOCK: usize = 4;

/// Output features per mat-vec block: as many as keep about two blocks per multiprocessor
/// of a large GPU busy (fewer rows per block for small outputs such as the K/V projections).
fn rows_per_block(out_f: usize) -> usize {
    (out_f / 264).clamp(1, MATVEC_MAX_ROWS_PER_BLOCK)
}

/// The kernels' `Parts` (quant.cu): up to three weights read by one mat-vec launch, with their
/// outputs, output features and row strides.
#[repr(C)]
#[derive(Clone, Copy)]
struct Parts {
    w: [u64; 3],
    y: [u64; 3],
    n: [i64; 3],
    step: [i64; 3],
    count: i32,
}

/// A rank-2 quantized weight as the kernels address it: the byte address of row 0, rows,
/// 32-value groups per row and bytes from one row to the next.
struct PackedRows {
    ptr: u64,
    rows: usize,
    groups: usize,
    row_bytes: usize,
    kind_id: i32,
}

fn packed_rows(
    me: &CudaBackend,
    s: &Arc<ThreadStream>,
    op: &str,
    w: &Tensor,
) -> Result<PackedRows> {
    let kind = w
        .dtype()
        .ggml_type()
        .filter(|k| k.is_quantized())
        .ok_or_else(|| TensorError(format!("{op}: internal: {} is not packed", w.dtype())))?;
    let l = w.layout();
    if l.rank() != 2 {
        return Err(TensorError(format!(
            "not supported yet: {op} on a {}-dimensional {} tensor on cuda (rank 2 [rows, cols] is)",
            l.rank(),
            w.dtype()
        )));
    }
    let (bs, bb) = (kind.block_size(), kind.block_bytes());
    let rows = l.shape[0];
    let row_stride = if rows > 1 { l.strides[0] } else { l.shape[1] };
    let base = me.input(op, s, w)?;
    Ok(PackedRows {
        ptr: base + (l.offset / bs * bb) as u64,
        rows,
        groups: l.shape[1] / 32,
        row_bytes: row_stride / bs * bb,
        kind_id: kind.id() as i32,
    })
}

/// A float weight's row stride (elements) and whether the mat-vec kernels may read its rows
/// with 16-byte loads: rows and start 16-byte aligned, `in_f` a whole number of 8-element
/// chunks.
fn float_row_layout(w: &Tensor, in_f: usize) -> (usize, bool) {
    let l = w.layout();
    let esize = w.dtype().size_in_bytes();
    let row_stride = if w.shape()[0] > 1 { l.strides[0] } else { in_f };
    let vec = (row_stride * esize).is_multiple_of(16)
        && (l.offset * esize).is_multiple_of(16)
        && in_f.is_multiple_of(8);
    (row_stride, vec)
}

/// `x` as contiguous rows whose start is 16-byte aligned (the kernels' vector loads), copied
/// only when the view is not already so.
fn aligned_rows(me: &CudaBackend, x: &Tensor) -> Result<Tensor> {
    use tl_tensor::Backend;
    let esize = x.dtype().size_in_bytes();
    if x.is_contiguous() && (x.layout().offset * esize).is_multiple_of(16) {
        Ok(x.clone())
    } else {
        me.contiguous(x)
    }
}

/// Byte address of `x`'s first element.
fn first_elem(me: &CudaBackend, s: &Arc<ThreadStream>, op: &str, x: &Tensor) -> Result<u64> {
    Ok(me.input(op, s, x)? + (x.layout().offset * x.dtype().size_in_bytes()) as u64)
}

impl CudaBackend {
    /// The whole quantized `w` expanded into a new contiguous float tensor of `dtype`.
    pub(crate) fn dequantize(&'static self, w: &Tensor, dtype: DType) -> Result<Tensor> {
        let s = crate::runtime::thread_stream(self)?;
        let flat;
        let w = if w.rank() == 2 {
            w
        } else {
            // Contiguous tensors of any rank are rows of their last dimension.
            if !w.is_contiguous() {
                return Err(TensorError(format!(
                    "not supported yet: cast of a strided {}-dimensional {} tensor on cuda",
                    w.rank(),
                    w.dtype()
                )));
            }
            let cols = *w.shape().last().unwrap_or(&0);
            flat = w.with_layout(Layout {
                shape: vec![w.numel() / cols.max(1), cols],
                strides: vec![cols, 1],
                offset: w.layout().offset,
            });
            &flat
        };
        let p = packed_rows(self, &s, "cast", w)?;
        let float_dtype = if dtype.is_float() { dtype } else { DType::F32 };
        let out = self.alloc_tensor(&s, &[p.rows, p.groups * 32], float_dtype)?;
        let n = p.rows * p.groups;
        if n > 0 {
            let po = self.input("cast", &s, &out)?;
            self.launch(
                &s,
                "tl_dequant",
                grid_for(n),
                256,
                0,
                Args::new()
                    .ptr(po)
                    .i32(dtype_code(float_dtype))
                    .ptr(p.ptr)
                    .i32(p.kind_id)
                    .i64(p.rows as i64)
                    .i64(p.groups as i64)
                    .i64(p.row_bytes as i64),
            )?;
        }
        let shape: Vec<isize> = w.shape().iter().map(|&d| d as isize).collect();
        let out = out.reshape(&shape)?;
        if float_dtype == dtype {
            Ok(out)
        } else {
            out.cast(dtype)
        }
    }

    /// Rows of the quantized `table` [vocab, d] picked by the int64 `ids`, as f32 (as on the
    /// CPU); shape `ids.shape + [d]`.
    pub(crate) fn embedding_packed(&'static self, table: &Tensor, ids: &Tensor) -> Result<Tensor> {
        let s = crate::runtime::thread_stream(self)?;
        let p = packed_rows(self, &s, "embedding", table)?;
        let ids_c = ids.contiguous()?;
        let mut shape = ids.shape().to_vec();
        shape.push(p.groups * 32);
        let out = self.alloc_tensor(&s, &shape, DType::F32)?;
        let n = ids.numel() * p.groups;
        if n > 0 {
            let po = self.input("embedding", &s, &out)?;
            let pi = first_elem(self, &s, "embedding", &ids_c)?;
            s.may_have_error
                .store(true, std::sync::atomic::Ordering::Relaxed);
            self.launch(
                &s,
                "tl_embedding_q",
                grid_for(n),
                256,
                0,
                Args::new()
                    .ptr(po)
                    .i32(dtype_code(DType::F32))
                    .ptr(p.ptr)
                    .i32(p.kind_id)
                    .i64(p.groups as i64)
                    .i64(p.row_bytes as i64)
                    .ptr(pi)
                    .i64(ids.numel() as i64)
                    .i64(p.rows as i64)
                    .ptr(s.err_word()),
            )?;
        }
        Ok(out)
    }

    /// A copy of a quantized row view with its rows packed one after another.
    pub(crate) fn contiguous_packed(&'static self, w: &Tensor) -> Result<Tensor> {
        let s = crate::runtime::thread_stream(self)?;
        let p = packed_rows(self, &s, "contiguous", w)?;
        let out = self.alloc_tensor(&s, w.shape(), w.dtype())?;
        let dense_row = p.groups * 32 / w.dtype().ggml_type().map_or(1, |k| k.block_size())
            * w.dtype().ggml_type().map_or(0, |k| k.block_bytes());
        let n = p.rows * dense_row;
        if n > 0 {
            let po = self.input("contiguous", &s, &out)?;
            let bytes = |row_bytes: usize| {
                Lay::exact(
                    "contiguous",
                    &Layout {
                        shape: vec![p.rows, dense_row],
                        strides: vec![row_bytes, 1],
                        offset: 0,
                    },
                )
            };
            self.launch(
                &s,
                "tl_copy",
                grid_for(n),
                256,
                0,
                Args::new()
                    .ptr(po)
                    .lay(&bytes(dense_row)?)
                    .ptr(p.ptr)
                    .lay(&bytes(p.row_bytes)?)
                    .i32(1)
                    .i64(n as i64),
            )?;
        }
        Ok(out)
    }

    /// One input row against 1 to 3 weights of one type in one launch of the staged kernels
    /// (`tl_matvec_f1_staged`, `tl_matvec_q1_staged`), with what `fusion` adds: the input
    /// RMS-normalised in shared memory, a bias or residual, or gate and up combined as
    /// silu(gate) * up. `None` where those kernels do not apply (more rows, mixed or unaligned
    /// weights, an input row too long for shared memory); the caller then takes another path.
    pub(crate) fn matvec_staged(
        &'static self,
        x: &Tensor,
        ws: &[&Tensor],
        fusion: &LinearFusion,
    ) -> Option<Result<Vec<Tensor>>> {
        let in_f = x.shape()[x.rank() - 1];
        let dtype = ws.first()?.dtype();
        let packed = dtype.is_quantized();
        let one_type = ws.iter().all(|w| w.dtype() == dtype);
        let floats_aligned = ws.iter().all(|w| {
            matches!(w.dtype(), DType::F32 | DType::F16 | DType::BF16)
                && w.layout().strides[1] == 1
                && float_row_layout(w, in_f).1
        });
        // Packed weights read the input padded by one float per 32 (see stage_input).
        let dynamic = if packed { in_f / 32 * 33 * 4 } else { in_f * 4 };
        let shared = dynamic + if packed { STAGED_Q_STATIC_BYTES } else { 128 };
        let norm_ok = fusion
            .norm
            .is_none_or(|(g, _)| matches!(g.dtype(), DType::F32 | DType::F16 | DType::BF16));
        let bias_ok = fusion.bias.is_none_or(|b| !b.dtype().is_quantized());
        if x.numel() != in_f
            || in_f == 0
            || !(1..=3).contains(&ws.len())
            || !one_type
            || !(packed || floats_aligned)
            || shared > STAGED_SHARED_BYTES
            || !in_f.is_multiple_of(8)
            || !norm_ok
            || !bias_ok
        {
            return None;
        }
        Some(self.matvec_staged_launch(x, ws, fusion, packed, dynamic))
    }

    fn matvec_staged_launch(
        &'static self,
        x: &Tensor,
        ws: &[&Tensor],
        fusion: &LinearFusion,
        packed: bool,
        dynamic_shared: usize,
    ) -> Result<Vec<Tensor>> {
        let in_f = x.shape()[x.rank() - 1];
        let s = crate::runtime::thread_stream(self)?;
        let x32 = x.cast(DType::F32)?;
        let xr = aligned_rows(self, &x32)?;
        let px = first_elem(self, &s, "linear", &xr)?;
        let dtype = ws[0].dtype();
        let out_dtype = if packed {
            x.dtype()
        } else {
            DType::promote(x.dtype(), dtype)
        };
        // The norm weight and the bias are read as contiguous vectors; the clones keep them
        // alive until the launch is queued.
        let g = fusion.norm.map(|(g, _)| g.contiguous()).transpose()?;
        let bias = fusion.bias.map(|b| b.contiguous()).transpose()?;
        let (pg, gdt) = match &g {
            Some(g) => (first_elem(self, &s, "rms_norm", g)?, dtype_code(g.dtype())),
            None => (0, 0),
        };
        let (pb, bdt) = match &bias {
            Some(b) => (first_elem(self, &s, "linear", b)?, dtype_code(b.dtype())),
            None => (0, 0),
        };
        let eps = fusion.norm.map_or(0.0, |(_, e)| e as f32);
        let mut parts = Parts {
            w: [0; 3],
            y: [0; 3],
            n: [0; 3],
            step: [0; 3],
            count: ws.len() as i32,
        };
        let outputs = if fusion.swiglu { 1 } else { ws.len() };
        let mut outs = Vec::with_capacity(outputs);
        let mut staged_blocks = true;
        let mut groups = 0;
        for (i, w) in ws.iter().enumerate() {
            let out_f = w.shape()[0];
            if i < outputs {
                let mut shape = x.shape().to_vec();
                *shape.last_mut().expect("rank >= 1") = out_f;
                let out = self.alloc_tensor(&s, &shape, out_dtype)?;
                parts.y[i] = self.input("linear", &s, &out)?;
                outs.push(out);
            }
            parts.n[i] = out_f as i64;
            if packed {
                let p = packed_rows(self, &s, "linear", w)?;
                // Blocks of 32 values whose runs of 32 blocks are whole 16-byte words.
                let kind = GgmlType::from_id(p.kind_id as u32);
                staged_blocks &=
                    matches!(kind, Some(GgmlType::Q4_0 | GgmlType::Q4_1 | GgmlType::Q8_0))
                        && p.ptr.is_multiple_of(16)
                        && p.row_bytes.is_multiple_of(16);
                parts.w[i] = p.ptr;
                parts.step[i] = p.row_bytes as i64;
                groups = p.groups;
            } else {
                parts.w[i] = first_elem(self, &s, "linear", w)?;
                parts.step[i] = float_row_layout(w, in_f).0 as i64;
            }
        }
        let features = if fusion.swiglu {
            ws[0].shape()[0]
        } else {
            ws.iter().map(|w| w.shape()[0]).sum()
        };
        if features == 0 {
            return Ok(outs);
        }
        let grid = features.div_ceil(MATVEC1_WARPS) as u32;
        let block = 32 * MATVEC1_WARPS as u32;
        let mut args = Args::new();
        args.i32(dtype_code(out_dtype)).ptr(px).pod(&parts);
        if packed {
            let kind = dtype.ggml_type().expect("packed").id() as i32;
            args.i32(kind).i64(groups as i64);
        } else {
            args.i32(dtype_code(dtype)).i64(in_f as i64);
        }
        args.ptr(pg)
            .i32(gdt)
            .f32(eps)
            .ptr(pb)
            .i32(bdt)
            .i32(fusion.swiglu as i32);
        let name = if packed {
            args.i32(staged_blocks as i32);
            "tl_matvec_q1_staged"
        } else {
            "tl_matvec_f1_staged"
        };
        self.launch(&s, name, grid, block, dynamic_shared as u32, &mut args)?;
        Ok(outs)
    }

    /// `x @ w^T + b` (arguments checked by `Tensor::linear`): the mat-vec kernels for a few
    /// input rows, else cuBLAS (a quantized `w` expanded once into `x`'s dtype).
    pub(crate) fn linear_impl(
        &'static self,
        x: &Tensor,
        w: &Tensor,
        b: Option<&Tensor>,
    ) -> Result<Tensor> {
        let (out_f, in_f) = (w.shape()[0], w.shape()[1]);
        let m = x.numel().checked_div(in_f).unwrap_or(0);
        let packed = w.dtype().is_quantized();
        let out_dtype = if packed {
            x.dtype()
        } else {
            DType::promote(x.dtype(), w.dtype())
        };
        let float_rows = !packed
            && matches!(w.dtype(), DType::F32 | DType::F16 | DType::BF16)
            && (w.layout().strides[1] == 1 || in_f <= 1);
        if m == 0 || m > MATVEC_MAX_ROWS || !(packed || float_rows) {
            return self.linear_by_gemm(x, w, b, out_dtype);
        }
        if m == 1 {
            let fusion = LinearFusion {
                bias: b,
                ..LinearFusion::default()
            };
            if let Some(out) = self.matvec_staged(x, &[w], &fusion) {
                return Ok(out?.remove(0));
            }
        }
        let s = crate::runtime::thread_stream(self)?;
        // The kernels read x as contiguous f32 rows with 16-byte loads.
        let x32 = x.cast(DType::F32)?;
        let xr = aligned_rows(self, &x32)?;
        let mut out_shape = x.shape().to_vec();
        *out_shape.last_mut().expect("linear input has rank >= 1") = out_f;
        let out = self.alloc_tensor(&s, &out_shape, out_dtype)?;
        if out_f == 0 {
            return Ok(out);
        }
        let py = self.input("linear", &s, &out)?;
        let px = first_elem(self, &s, "linear", &xr)?;
        // A bias [out] or a residual of the output's shape (for one row both are [out]),
        // contiguous and alive until the launch is queued.
        let bias = b.map(|b| b.contiguous()).transpose()?;
        let (pb, bdt, bias_full) = match &bias {
            Some(b) => (
                first_elem(self, &s, "linear", b)?,
                dtype_code(b.dtype()),
                (b.numel() != out_f) as i32,
            ),
            None => (0, 0, 0),
        };
        let rpb = rows_per_block(out_f);
        let grid = out_f.div_ceil(rpb) as u32;
        // One input row: a warp per output feature (MV1_WARPS per block).
        let grid1 = out_f.div_ceil(MATVEC1_WARPS) as u32;
        if packed && m == 1 {
            let p = packed_rows(self, &s, "linear", w)?;
            self.launch(
                &s,
                "tl_matvec_q1",
                grid1,
                32 * MATVEC1_WARPS as u32,
                0,
                Args::new()
                    .ptr(py)
                    .i32(dtype_code(out_dtype))
                    .ptr(px)
                    .ptr(p.ptr)
                    .i32(p.kind_id)
                    .i64(out_f as i64)
                    .i64(p.groups as i64)
                    .i64(p.row_bytes as i64)
                    .ptr(pb)
                    .i32(bdt),
            )?;
        } else if packed {
            let p = packed_rows(self, &s, "linear", w)?;
            self.launch(
                &s,
                "tl_matvec_q",
                grid,
                MATVEC_THREADS,
                0,
                Args::new()
                    .ptr(py)
                    .i32(dtype_code(out_dtype))
                    .ptr(px)
                    .i32(m as i32)
                    .ptr(p.ptr)
                    .i32(p.kind_id)
                    .i64(out_f as i64)
                    .i64(p.groups as i64)
                    .i64(p.row_bytes as i64)
                    .i32(rpb as i32)
                    .ptr(pb)
                    .i32(bdt)
                    .i32(bias_full),
            )?;
        } else {
            let (row_stride, vec) = float_row_layout(w, in_f);
            let pw = first_elem(self, &s, "linear", w)?;
            if m == 1 && vec {
                self.launch(
                    &s,
                    "tl_matvec_f1",
                    grid1,
                    32 * MATVEC1_WARPS as u32,
                    0,
                    Args::new()
                        .ptr(py)
                        .i32(dtype_code(out_dtype))
                        .ptr(px)
                        .ptr(pw)
                        .i32(dtype_code(w.dtype()))
                        .i64(out_f as i64)
                        .i64(in_f as i64)
                        .i64(row_stride as i64)
                        .ptr(pb)
                        .i32(bdt),
                )?;
                return Ok(out);
            }
            self.launch(
                &s,
                "tl_matvec_f",
                grid,
                MATVEC_THREADS,
                0,
                Args::new()
                    .ptr(py)
                    .i32(dtype_code(out_dtype))
                    .ptr(px)
                    .i32(m as i32)
                    .ptr(pw)
                    .i32(dtype_code(w.dtype()))
                    .i64(out_f as i64)
                    .i64(in_f as i64)
                    .i64(row_stride as i64)
                    .i32(vec as i32)
                    .i32(rpb as i32)
                    .ptr(pb)
                    .i32(bdt)
                    .i32(bias_full),
            )?;
        }
        Ok(out)
    }

    /// `x @ w^T` for each of `ws` (checked by `Tensor::linear_many`): one launch of the
    /// staged kernels reading every weight for one input row when the weights share a type
    /// (up to 3 of them), else one `linear` each.
    pub(crate) fn linear_many_impl(
        &'static self,
        x: &Tensor,
        ws: &[&Tensor],
    ) -> Result<Vec<Tensor>> {
        if let Some(outs) = self.matvec_staged(x, ws, &LinearFusion::default()) {
            return outs;
        }
        ws.iter().map(|w| self.linear_impl(x, w, None)).collect()
    }

    /// `linear` for many input rows through cuBLAS. Half-precision weights (and quantized
    /// ones, expanded once to f16) are multiplied in their dtype with f32 accumulation, the
    /// input rounded to it (as PyTorch's autocast does): an f32 product would first convert
    /// the whole weight to f32 and run without tensor cores.
    fn linear_by_gemm(
        &'static self,
        x: &Tensor,
        w: &Tensor,
        b: Option<&Tensor>,
        out_dtype: DType,
    ) -> Result<Tensor> {
        let w = if w.dtype().is_quantized() {
            self.dequantize(w, DType::F16)?
        } else {
            w.clone()
        };
        let wt = w.transpose(0, 1)?;
        let y = if matches!(w.dtype(), DType::F16 | DType::BF16) && x.dtype() != w.dtype() {
            x.cast(w.dtype())?.matmul(&wt)?.cast(out_dtype)?
        } else {
            x.matmul(&wt)?
        };
        match b {
            None => Ok(y),
            Some(b) => y.binary(BinaryOp::Add, &b.cast(y.dtype())?),
        }
    }

    /// `Backend::write_kv_rope` in one launch (`tl_write_kv_rope`): each cache is first made
    /// contiguous and private where it is not (copy-on-write, as `write_slice_impl`).
    pub(crate) fn write_kv_rope_impl(
        &'static self,
        k_dst: &mut Tensor,
        v_dst: &mut Tensor,
        start: usize,
        k: &Tensor,
        v: &Tensor,
        rope: (usize, f64, bool),
    ) -> Result<()> {
        use tl_tensor::Backend;
        let (pos, theta, neox) = rope;
        for dst in [&mut *k_dst, &mut *v_dst] {
            if !dst.is_contiguous() || dst.storage_mut().is_none() {
                *dst = self.contiguous(dst)?;
            }
        }
        let (k, v) = (k.contiguous()?, v.contiguous()?);
        let d = k.shape()[k.rank() - 1];
        let row_elems = k.numel() / k.shape()[0];
        let s = crate::runtime::thread_stream(self)?;
        let pk = first_elem(self, &s, "rope", k_dst)?;
        let pv = first_elem(self, &s, "rope", v_dst)?;
        let pks = first_elem(self, &s, "rope", &k)?;
        let pvs = first_elem(self, &s, "rope", &v)?;
        let pairs = k.numel() / 2;
        self.launch(
            &s,
            "tl_write_kv_rope",
            grid_for(pairs),
            256,
            0,
            Args::new()
                .ptr(pk)
                .ptr(pv)
                .i32(dtype_code(k_dst.dtype()))
                .ptr(pks)
                .i32(dtype_code(k.dtype()))
                .ptr(pvs)
                .i64(pairs as i64)
                .i64(d as i64)
                .i64(row_elems as i64)
                .i64(start as i64)
                .i64(pos as i64)
                .f64(theta)
                .i32(neox as i32),
        )
    }

    /// Copies `src` into `dst` at `start` along `dim` on the device, in place when `dst` owns
    /// its storage alone (else into a private copy first, as the CPU backend does).
    pub(crate) fn write_slice_impl(
        &'static self,
        dst: &mut Tensor,
        dim: usize,
        start: usize,
        src: &Tensor,
    ) -> Result<()> {
        use tl_tensor::Backend;
        let broadcast = dst
            .layout()
            .shape
            .iter()
            .zip(&dst.layout().strides)
            .any(|(&d, &st)| d > 1 && st == 0);
        if broadcast || dst.storage_mut().is_none() {
            *dst = self.contiguous(dst)?;
        }
        let mut target = dst.layout().clone();
        target.shape[dim] = src.shape()[dim];
        target.offset += start * target.strides[dim];
        let s = crate::runtime::thread_stream(self)?;
        self.copy_into(&s, dst, &target, src)
    }
}
