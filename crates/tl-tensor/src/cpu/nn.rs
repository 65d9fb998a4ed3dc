//! CPU kernels of the neural-network ops: softmax, norms, rotary embedding, embedding lookup,
//! fused `silu(a) * b` and attention. Half-precision inputs are widened to f32, computed in
//! f32 and rounded back once, so every dtype shares one kernel.

use crate::bail;
use crate::dtype::DType;
use crate::error::{Result, shape_str};
use crate::layout::{Layout, contiguous_strides};
use crate::storage::CpuStorage;
use crate::tensor::Tensor;
use half::{bf16, f16};
use std::borrow::Cow;

use super::attention_rows;
use super::matmul::{Gemm, gemm_with, merge_dims, parallelism_for};
use gemm::Parallelism;

/// Multiply-adds of one block of query heads (rows x keys x head size) from which attention
/// runs its blocks on the mat-vec team: a decode step at a few dozen cached positions is
/// already worth it.
const PARALLEL_ATTENTION_MIN: usize = 1 << 14;

/// The host storage of `x`, or an error naming `op` for tensors on another device.
pub(crate) fn host_storage<'a>(op: &str, x: &'a Tensor) -> Result<&'a CpuStorage> {
    match x.cpu_storage() {
        Some(s) => Ok(s),
        None => bail!("{op}: the cpu backend got a tensor on {}", x.device()),
    }
}

/// Copies the elements `layout` addresses in `data` into a row-major f32 vector.
fn gather_as_f32<T: Copy>(data: &[T], layout: &Layout, conv: impl Fn(T) -> f32) -> Vec<f32> {
    let mut out = Vec::with_capacity(layout.numel());
    if layout.is_contiguous() {
        let start = layout.offset;
        out.extend(data[start..start + layout.numel()].iter().map(|&v| conv(v)));
    } else {
        layout.for_each_offset(|o| out.push(conv(data[o])));
    }
    out
}

/// The elements of a float tensor as f32 in row-major order; borrowed when `x` is already a
/// contiguous f32 tensor.
pub(crate) fn read_f32<'a>(op: &str, x: &'a Tensor) -> Result<Cow<'a, [f32]>> {
    let layout = x.layout();
    Ok(match host_storage(op, x)? {
        CpuStorage::F32(v) if layout.is_contiguous() => {
            Cow::Borrowed(&v[layout.offset..layout.offset + layout.numel()])
        }
        CpuStorage::F32(v) => Cow::Owned(gather_as_f32(v, layout, |a| a)),
        CpuStorage::F16(v) => Cow::Owned(gather_as_f32(v, layout, f16::to_f32)),
        CpuStorage::BF16(v) => Cow::Owned(gather_as_f32(v, layout, bf16::to_f32)),
        CpuStorage::I64(v) => Cow::Owned(gather_as_f32(v, layout, |a| a as f32)),
        CpuStorage::Bool(v) => Cow::Owned(gather_as_f32(v, layout, |a| a as u8 as f32)),
        CpuStorage::Quantized(q, ..) => {
            return Err(crate::ops::quantized_unsupported(op, q.dtype()));
        }
    })
}

/// A float tensor's elements as f32 together with a layout that addresses them: the original
/// storage and layout for f32 tensors (no copy), otherwise a converted copy that keeps the
/// broadcast (stride 0) dimensions unexpanded.
pub(crate) fn strided_f32<'a>(op: &str, x: &'a Tensor) -> Result<(Cow<'a, [f32]>, Layout)> {
    let layout = x.layout();
    if let CpuStorage::F32(v) = host_storage(op, x)? {
        return Ok((Cow::Borrowed(v.as_slice()), layout.clone()));
    }
    // Copy only the non-broadcast part: the compact shape has size 1 where the stride is 0.
    let compact_shape: Vec<usize> = layout
        .shape
        .iter()
        .zip(&layout.strides)
        .map(|(&d, &s)| if s == 0 { 1.min(d) } else { d })
        .collect();
    let compact = Layout {
        shape: compact_shape.clone(),
        strides: layout.strides.clone(),
        offset: layout.offset,
    };
    let view = x.with_layout(compact);
    let data = read_f32(op, &view)?.into_owned();
    let mut strides = contiguous_strides(&compact_shape);
    for (s, &orig) in strides.iter_mut().zip(&layout.strides) {
        if orig == 0 {
            *s = 0;
        }
    }
    Ok((
        Cow::Owned(data),
        Layout {
            shape: layout.shape.clone(),
            strides,
            offset: 0,
        },
    ))
}

/// Wraps row-major f32 results as a tensor of `dtype` (rounding for the half types).
pub(crate) fn from_f32_as(data: Vec<f32>, shape: &[usize], dtype: DType) -> Result<Tensor> {
    let storage = match dtype {
        DType::F32 => CpuStorage::F32(data.into()),
        DType::F16 => CpuStorage::F16(data.into_iter().map(f16::from_f32).collect()),
        DType::BF16 => CpuStorage::BF16(data.into_iter().map(bf16::from_f32).collect()),
        other => bail!("internal: float kernel asked to produce {other}"),
    };
    Tensor::from_cpu_storage(storage, shape)
}

/// Softmax (or log-softmax) of `x` along `dim`, computed stably in f32. Entries equal to -inf
/// get probability 0; a slice that is entirely -inf gives zeros (softmax) or -inf (log).
pub(crate) fn softmax(x: &Tensor, dim: usize, log: bool) -> Result<Tensor> {
    let op = if log { "log_softmax" } else { "softmax" };
    let data = read_f32(op, x)?;
    let shape = x.shape();
    let len = shape[dim];
    let inner: usize = shape[dim + 1..].iter().product();
    let outer: usize = shape[..dim].iter().product();
    let mut out = vec![0f32; data.len()];
    let mut lane = vec![0f32; len];
    for o in 0..outer {
        for i in 0..inner {
            let base = o * len * inner + i;
            if inner == 1 {
                lane.copy_from_slice(&data[base..base + len]);
            } else {
                for (j, l) in lane.iter_mut().enumerate() {
                    *l = data[base + j * inner];
                }
            }
            softmax_lane(&mut lane, log);
            if inner == 1 {
                out[base..base + len].copy_from_slice(&lane);
            } else {
                for (j, &l) in lane.iter().enumerate() {
                    out[base + j * inner] = l;
                }
            }
        }
    }
    from_f32_as(out, shape, x.dtype())
}

/// In-place softmax of one lane.
pub(crate) fn softmax_lane(lane: &mut [f32], log: bool) {
    let max = lane.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if max == f32::NEG_INFINITY {
        // Every entry is masked (or the lane holds -inf only): no probability mass anywhere.
        let fill = if log { f32::NEG_INFINITY } else { 0.0 };
        lane.iter_mut().for_each(|v| *v = fill);
        return;
    }
    if max.is_nan() {
        lane.iter_mut().for_each(|v| *v = f32::NAN);
        return;
    }
    if log {
        // (v - max) - ln(sum) keeps precision when the values are large.
        let sum: f32 = lane.iter().map(|&v| (v - max).exp()).sum();
        let log_sum = sum.ln();
        lane.iter_mut().for_each(|v| *v = (*v - max) - log_sum);
    } else {
        let mut sum = 0f32;
        for v in lane.iter_mut() {
            *v = (*v - max).exp();
            sum += *v;
        }
        let inv = 1.0 / sum;
        lane.iter_mut().for_each(|v| *v *= inv);
    }
}

/// RMS normalisation over the last dimension: `x / sqrt(mean(x^2) + eps) * w`.
pub(crate) fn rms_norm(x: &Tensor, w: &Tensor, eps: f64) -> Result<Tensor> {
    let data = read_f32("rms_norm", x)?;
    let weight = read_f32("rms_norm", w)?;
    let d = weight.len();
    let mut out = vec![0f32; data.len()];
    if d > 0 {
        for (row, dst) in data.chunks_exact(d).zip(out.chunks_exact_mut(d)) {
            let mean_sq = sum_f32(row.iter().map(|&v| v * v)) / d as f32;
            let scale = 1.0 / (mean_sq + eps as f32).sqrt();
            for ((o, &v), &g) in dst.iter_mut().zip(row).zip(weight.iter()) {
                *o = v * scale * g;
            }
        }
    }
    from_f32_as(out, x.shape(), x.dtype())
}

/// Layer normalisation over the last dimension with optional affine weight and bias.
pub(crate) fn layer_norm(
    x: &Tensor,
    w: Option<&Tensor>,
    b: Option<&Tensor>,
    eps: f64,
) -> Result<Tensor> {
    let data = read_f32("layer_norm", x)?;
    let weight = w.map(|w| read_f32("layer_norm", w)).transpose()?;
    let bias = b.map(|b| read_f32("layer_norm", b)).transpose()?;
    let d = *x.shape().last().unwrap_or(&1);
    let mut out = vec![0f32; data.len()];
    if d > 0 {
        for (row, dst) in data.chunks_exact(d).zip(out.chunks_exact_mut(d)) {
            let mean = sum_f32(row.iter().copied()) / d as f32;
            let var = sum_f32(row.iter().map(|&v| (v - mean) * (v - mean))) / d as f32;
            let inv = 1.0 / (var + eps as f32).sqrt();
            for (j, (o, &v)) in dst.iter_mut().zip(row).enumerate() {
                let mut y = (v - mean) * inv;
                if let Some(w) = &weight {
                    y *= w[j];
                }
                if let Some(b) = &bias {
                    y += b[j];
                }
                *o = y;
            }
        }
    }
    from_f32_as(out, x.shape(), x.dtype())
}

/// Sums f32 values in eight independent lanes, which vectorises and loses less precision
/// than one running sum.
fn sum_f32(values: impl Iterator<Item = f32>) -> f32 {
    let mut acc = [0f32; 8];
    for (i, v) in values.enumerate() {
        acc[i & 7] += v;
    }
    acc.iter().sum()
}

/// Rotary position embedding of the last dimension. `seq_dim` is the dimension indexing
/// positions (`None` for a single position). `neox` selects the rotate-half pairing
/// (x[i], x[i + d/2]) instead of adjacent pairs (x[2i], x[2i+1]).
pub(crate) fn rope(
    x: &Tensor,
    seq_dim: Option<usize>,
    pos: usize,
    theta: f64,
    neox: bool,
) -> Result<Tensor> {
    let op = if neox { "rope_neox" } else { "rope" };
    let data = read_f32(op, x)?;
    let shape = x.shape();
    let d = *shape.last().unwrap_or(&0);
    let half_d = d / 2;
    let seq_len = seq_dim.map_or(1, |s| shape[s]);
    // Elements per step along the sequence dim, and the number of such steps per outer block.
    let seq_stride: usize = seq_dim.map_or(d, |s| shape[s + 1..].iter().product());

    // cos/sin table [seq, d/2]; angles in f64 so large positions keep their precision.
    let mut cos = vec![0f32; seq_len * half_d];
    let mut sin = vec![0f32; seq_len * half_d];
    for s in 0..seq_len {
        let p = pos as f64 + s as f64;
        for i in 0..half_d {
            let freq = theta.powf(-2.0 * i as f64 / d as f64);
            let angle = p * freq;
            cos[s * half_d + i] = angle.cos() as f32;
            sin[s * half_d + i] = angle.sin() as f32;
        }
    }

    let mut out = vec![0f32; data.len()];
    if d > 0 {
        for (r, (row, dst)) in data
            .chunks_exact(d)
            .zip(out.chunks_exact_mut(d))
            .enumerate()
        {
            let s = (r * d / seq_stride) % seq_len;
            let c = &cos[s * half_d..(s + 1) * half_d];
            let sn = &sin[s * half_d..(s + 1) * half_d];
            for i in 0..half_d {
                let (a, b) = if neox {
                    (i, i + half_d)
                } else {
                    (2 * i, 2 * i + 1)
                };
                let (x0, x1) = (row[a], row[b]);
                dst[a] = x0 * c[i] - x1 * sn[i];
                dst[b] = x0 * sn[i] + x1 * c[i];
            }
        }
    }
    from_f32_as(out, shape, x.dtype())
}

/// Rows of `table` ([vocab, d], any dtype, any layout) picked by the I64 `ids`; shape
/// `ids.shape + [d]`.
pub(crate) fn embedding(table: &Tensor, ids: &Tensor) -> Result<Tensor> {
    if table.dtype().is_quantized() {
        return super::quantized::embedding(table, ids);
    }
    let (vocab, d) = (table.shape()[0], table.shape()[1]);
    let CpuStorage::I64(id_data) = host_storage("embedding", ids)? else {
        bail!("embedding: ids must be int64, got {}", ids.dtype());
    };
    let mut ids_v = Vec::with_capacity(ids.numel());
    ids.layout().for_each_offset(|o| ids_v.push(id_data[o]));
    for &id in &ids_v {
        if id < 0 || id as u64 >= vocab as u64 {
            bail!(
                "embedding: id {id} is out of range for a table of {vocab} rows (shape {})",
                shape_str(table.shape())
            );
        }
    }
    let rows = RowPicker {
        ids: &ids_v,
        offset: table.layout().offset,
        row_stride: table.layout().strides[0],
        col_stride: table.layout().strides[1],
        d,
    };
    let storage = match host_storage("embedding", table)? {
        CpuStorage::F32(v) => CpuStorage::F32(rows.gather(v).into()),
        CpuStorage::F16(v) => CpuStorage::F16(rows.gather(v).into()),
        CpuStorage::BF16(v) => CpuStorage::BF16(rows.gather(v).into()),
        CpuStorage::I64(v) => CpuStorage::I64(rows.gather(v).into()),
        CpuStorage::Bool(v) => CpuStorage::Bool(rows.gather(v).into()),
        CpuStorage::Quantized(..) => unreachable!("handled above"),
    };
    let mut shape = ids.shape().to_vec();
    shape.push(d);
    Tensor::from_cpu_storage(storage, &shape)
}

/// Copies the table rows named by `ids` (already range-checked) out of a strided table.
struct RowPicker<'a> {
    ids: &'a [i64],
    offset: usize,
    row_stride: usize,
    col_stride: usize,
    d: usize,
}

impl RowPicker<'_> {
    fn gather<T: Copy>(&self, table: &[T]) -> Vec<T> {
        let mut out = Vec::with_capacity(self.ids.len() * self.d);
        for &id in self.ids {
            let start = self.offset + id as usize * self.row_stride;
            if self.col_stride == 1 {
                out.extend_from_slice(&table[start..start + self.d]);
            } else {
                out.extend((0..self.d).map(|j| table[start + j * self.col_stride]));
            }
        }
        out
    }
}

/// `silu(a) * b` in one pass; `a` and `b` are views of one shape (broadcast already applied),
/// and the result has `dtype`.
pub(crate) fn silu_mul(a: &Tensor, b: &Tensor, dtype: DType) -> Result<Tensor> {
    let av = read_f32("silu_mul", a)?;
    let bv = read_f32("silu_mul", b)?;
    let out: Vec<f32> = av
        .iter()
        .zip(bv.iter())
        .map(|(&x, &y)| x / (1.0 + (-x).exp()) * y)
        .collect();
    from_f32_as(out, a.shape(), dtype)
}

/// Scaled dot-product attention with grouped heads. `q` is [B.., hq, sq, d], `k` [B.., hkv, sk, d],
/// `v` [B.., hkv, sk, dv], all with the same (broadcast) batch dims `B..`; `mask` (if any) is
/// already broadcast to [B.., hq, sq, sk] and is either additive (float) or a keep-mask (bool).
/// Scores and softmax are computed in f32; the result [B.., hq, sq, dv] has `q`'s dtype.
pub(crate) fn attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    mask: Option<&Tensor>,
    scale: f64,
) -> Result<Tensor> {
    let op = "attention";
    let r = q.rank();
    let (qd, ql) = strided_f32(op, q)?;
    let (kd, kl) = strided_f32(op, k)?;
    let (vd, vl) = strided_f32(op, v)?;
    let hq = q.shape()[r - 3];
    let sq = q.shape()[r - 2];
    let d = q.shape()[r - 1];
    let hkv = k.shape()[r - 3];
    let sk = k.shape()[r - 2];
    let dv = v.shape()[r - 1];
    let group = hq / hkv;
    let batch_shape = &q.shape()[..r - 3];
    let batch: usize = batch_shape.iter().product();

    // The mask as f32 additive values in its broadcast layout.
    let mask_data: Option<(Vec<f32>, Layout)> = match mask {
        None => None,
        Some(m) => {
            let (data, layout) = strided_f32(op, m)?;
            let data = if m.dtype() == DType::Bool {
                data.iter()
                    .map(|&keep| if keep != 0.0 { 0.0 } else { f32::NEG_INFINITY })
                    .collect()
            } else {
                data.into_owned()
            };
            Some((data, layout))
        }
    };

    let mut out = vec![0f32; batch * hq * sq * dv];
    if out.is_empty() {
        let mut shape = q.shape()[..r - 1].to_vec();
        shape.push(dv);
        return from_f32_as(out, &shape, q.dtype());
    }
    let mut scores = vec![0f32; group * sq * sk];
    let batch_strides = contiguous_strides(batch_shape);
    for bi in 0..batch {
        // Offsets of this batch element in each operand.
        let mut idx = bi;
        let (mut qo, mut ko, mut vo, mut mo) = (ql.offset, kl.offset, vl.offset, 0usize);
        if let Some((_, ml)) = &mask_data {
            mo = ml.offset;
        }
        for (dim, &bs) in batch_strides.iter().enumerate() {
            let i = idx / bs;
            idx %= bs;
            qo += i * ql.strides[dim];
            ko += i * kl.strides[dim];
            vo += i * vl.strides[dim];
            if let Some((_, ml)) = &mask_data {
                mo += i * ml.strides[dim];
            }
        }
        // The query heads of one kv head form one block of rows when their layout allows
        // it (always for contiguous q), so each kv head costs two products, not 2 * group.
        let (q_hs, q_ss) = (ql.strides[r - 3], ql.strides[r - 2]);
        let (heads_per_block, rows_stride) = match merge_dims(&[group, sq], &[q_hs, q_ss]) {
            Some((_, stride)) => (group, stride),
            None => (1, q_ss),
        };
        let rows = heads_per_block * sq;
        // One block of query heads: its scores, softmax and product with v, into `out` (the
        // block's rows of the output). `parallelism` is the products' own.
        let block = |first: usize, scores: &mut [f32], out: &mut [f32], parallelism| {
            let kvh = first / group;
            let qh = qo + first * q_hs;
            let kh = ko + kvh * kl.strides[r - 3];
            let vh = vo + kvh * vl.strides[r - 3];
            // A few query rows with unit strides inside rows: read straight from the cache.
            let direct = (rows <= attention_rows::MAX_ROWS
                && ql.strides[r - 1] == 1
                && kl.strides[r - 1] == 1
                && vl.strides[r - 1] == 1)
                .then(|| attention_rows::RowsView {
                    q: &qd[qh..],
                    q_rs: rows_stride,
                    k: &kd[kh..],
                    k_rs: kl.strides[r - 2],
                    v: &vd[vh..],
                    v_rs: vl.strides[r - 2],
                    rows,
                    keys: sk,
                    d,
                    dv,
                })
                .filter(|view| view.direct());
            // scores[rows, sk] = q rows [rows, d] @ k_h^T [d, sk]
            if let Some(view) = &direct {
                view.scores(scores);
            } else {
                gemm_with(
                    Gemm {
                        m: rows,
                        n: sk,
                        k: d,
                        lhs_rs: rows_stride as isize,
                        lhs_cs: ql.strides[r - 1] as isize,
                        rhs_rs: kl.strides[r - 1] as isize,
                        rhs_cs: kl.strides[r - 2] as isize,
                    },
                    &qd[qh..],
                    &kd[kh..],
                    scores,
                    1.0f32,
                    parallelism,
                );
            }
            for (row_i, row) in scores.chunks_exact_mut(sk.max(1)).take(rows).enumerate() {
                let (h, s) = (first + row_i / sq, row_i % sq);
                row.iter_mut().for_each(|x| *x *= scale as f32);
                if let Some((md, ml)) = &mask_data {
                    let base = mo + h * ml.strides[r - 3] + s * ml.strides[r - 2];
                    let cs = ml.strides[r - 1];
                    for (j, x) in row.iter_mut().enumerate() {
                        *x += md[base + j * cs];
                    }
                }
                softmax_lane(row, false);
            }
            // out rows [rows, dv] = p [rows, sk] @ v_h [sk, dv]
            if let Some(view) = &direct {
                view.weighted_values(scores, out);
                return;
            }
            gemm_with(
                Gemm {
                    m: rows,
                    n: dv,
                    k: sk,
                    lhs_rs: sk as isize,
                    lhs_cs: 1,
                    rhs_rs: vl.strides[r - 2] as isize,
                    rhs_cs: vl.strides[r - 1] as isize,
                },
                scores,
                &vd[vh..],
                out,
                1.0f32,
                parallelism,
            );
        };
        // The heads' rows are adjacent in the contiguous output: block `first` writes rows
        // (bi * hq + first) * sq .. + rows.
        let out_at = |first: usize| (bi * hq + first) * sq * dv;
        let blocks = hq.div_ceil(heads_per_block);
        let threads = super::team::threads();
        if blocks > 1 && threads > 1 && rows * sk * d >= PARALLEL_ATTENTION_MIN {
            // Blocks of heads on the team (a decode step's kv heads would otherwise run on
            // one core while the others wait for the next mat-vec).
            let shared = super::team::SharedOut(out.as_mut_ptr());
            super::team::for_each_range(blocks, 1, &|range| {
                let mut scores = vec![0f32; rows * sk];
                for b in range {
                    let first = b * heads_per_block;
                    // SAFETY: each block index is handed out once, block `first` owns output
                    // rows out_at(first) .. + rows * dv (inside `out`), and `out` outlives
                    // the loop.
                    let dst = unsafe {
                        std::slice::from_raw_parts_mut(shared.at(out_at(first)), rows * dv)
                    };
                    block(first, &mut scores, dst, Parallelism::None);
                }
            });
        } else {
            let parallelism = parallelism_for(rows * sk * d);
            for first in (0..hq).step_by(heads_per_block) {
                let dst = &mut out[out_at(first)..out_at(first) + rows * dv];
                block(first, &mut scores, dst, parallelism);
            }
        }
    }
    let mut shape = q.shape()[..r - 1].to_vec();
    shape.push(dv);
    from_f32_as(out, &shape, q.dtype())
}
