//! The `Backend` ops on CUDA: argument checks on the host, then one or a few kernel launches on
//! the calling thread's stream. Nothing here waits for the device.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use tl_tensor::layout::contiguous_strides;
use tl_tensor::{Backend, BinaryOp, DType, Layout, ReduceOp, Result, Tensor, TensorError, UnaryOp};

use crate::CudaBackend;
use crate::runtime::{Args, Lay, ThreadStream, dtype_code, grid_for, thread_stream};

fn err<T>(msg: String) -> Result<T> {
    Err(TensorError(msg))
}

fn unary_code(op: UnaryOp) -> i32 {
    match op {
        UnaryOp::Neg => 0,
        UnaryOp::Abs => 1,
        UnaryOp::Exp => 2,
        UnaryOp::Log => 3,
        UnaryOp::Sqrt => 4,
        UnaryOp::Rsqrt => 5,
        UnaryOp::Sin => 6,
        UnaryOp::Cos => 7,
        UnaryOp::Tanh => 8,
        UnaryOp::Sigmoid => 9,
        UnaryOp::Relu => 10,
        UnaryOp::Gelu => 11,
        UnaryOp::Silu => 12,
        UnaryOp::Step => 13,
        UnaryOp::Not => 14,
    }
}

fn binary_code(op: BinaryOp) -> i32 {
    match op {
        BinaryOp::Add => 0,
        BinaryOp::Sub => 1,
        BinaryOp::Mul => 2,
        BinaryOp::Div => 3,
        BinaryOp::Pow => 4,
        BinaryOp::Rem => 5,
        BinaryOp::Maximum => 6,
        BinaryOp::Minimum => 7,
        BinaryOp::Eq => 8,
        BinaryOp::Ne => 9,
        BinaryOp::Lt => 10,
        BinaryOp::Le => 11,
        BinaryOp::Gt => 12,
        BinaryOp::Ge => 13,
        BinaryOp::And => 14,
        BinaryOp::Or => 15,
    }
}

fn reduce_code(op: ReduceOp) -> i32 {
    match op {
        ReduceOp::Sum => 0,
        ReduceOp::Mean => 1,
        ReduceOp::Max => 2,
        ReduceOp::Min => 3,
        ReduceOp::Prod => 4,
    }
}

/// Shape with `dims` removed (or kept as 1).
fn reduced_shape(shape: &[usize], dims: &[usize], keepdim: bool) -> Vec<usize> {
    shape
        .iter()
        .enumerate()
        .filter_map(|(d, &s)| {
            if dims.contains(&d) {
                keepdim.then_some(1)
            } else {
                Some(s)
            }
        })
        .collect()
}

/// `layout` with `dims` moved to the end (in order); the rows of the result are the kept
/// elements, each of `prod(dims)` reduced elements.
fn dims_last(layout: &Layout, dims: &[usize]) -> Layout {
    let mut order: Vec<usize> = (0..layout.rank()).filter(|d| !dims.contains(d)).collect();
    order.extend_from_slice(dims);
    Layout {
        shape: order.iter().map(|&d| layout.shape[d]).collect(),
        strides: order.iter().map(|&d| layout.strides[d]).collect(),
        offset: layout.offset,
    }
}

impl CudaBackend {
    fn stream(&self) -> Result<(&'static CudaBackend, Arc<ThreadStream>)> {
        let me = self.static_self()?;
        Ok((me, thread_stream(me)?))
    }

    fn flag_errors(s: &ThreadStream) {
        s.may_have_error.store(true, Ordering::Relaxed);
    }

    /// `x` copied into `out` (both views of one shape).
    pub(crate) fn copy_into(
        &self,
        s: &Arc<ThreadStream>,
        out: &Tensor,
        out_layout: &Layout,
        x: &Tensor,
    ) -> Result<()> {
        let n = x.numel();
        if n == 0 {
            return Ok(());
        }
        let dst = self.input("copy", s, out)?;
        let src = self.input("copy", s, x)?;
        let lo = Lay::compact("copy", out_layout)?;
        let lx = Lay::compact("copy", x.layout())?;
        self.launch(
            s,
            "tl_copy",
            grid_for(n),
            256,
            0,
            Args::new()
                .ptr(dst)
                .lay(&lo)
                .ptr(src)
                .lay(&lx)
                .i32(x.dtype().size_in_bytes() as i32)
                .i64(n as i64),
        )
    }

    /// Runs a row kernel (`rows` blocks) with `x` viewed so that each row is contiguous in
    /// the linear index.
    fn row_blocks(rows: usize) -> u32 {
        rows.clamp(1, 1 << 20) as u32
    }
}

/// Floats the kernels compute (f32 family); ints and bools need the integer paths.
fn is_int(d: DType) -> bool {
    matches!(d, DType::I64 | DType::Bool)
}

impl Backend for CudaBackend {
    fn name(&self) -> &'static str {
        "cuda"
    }

    fn contiguous(&self, x: &Tensor) -> Result<Tensor> {
        let (me, s) = self.stream()?;
        if x.dtype().is_quantized() {
            return me.contiguous_packed(x);
        }
        let out = me.alloc_tensor(&s, x.shape(), x.dtype())?;
        me.copy_into(&s, &out, out.layout(), x)?;
        Ok(out)
    }

    fn full(&self, shape: &[usize], value: f64, dtype: DType) -> Result<Tensor> {
        let (me, s) = self.stream()?;
        let out = me.alloc_tensor(&s, shape, dtype)?;
        let n = out.numel();
        if n > 0 {
            let p = me.input("full", &s, &out)?;
            let int_value = if dtype == DType::Bool {
                (value != 0.0) as i64
            } else {
                value as i64
            };
            // f16/bf16 are rounded from f32 on the device; f64 -> f32 -> half can differ from
            // f64 -> half only for values within half an f32 ulp of a half tie.
            me.launch(
                &s,
                "tl_fill",
                grid_for(n),
                256,
                0,
                Args::new()
                    .ptr(p)
                    .i32(dtype_code(dtype))
                    .i64(n as i64)
                    .f32(value as f32)
                    .i64(int_value),
            )?;
        }
        Ok(out)
    }

    fn unary(&self, op: UnaryOp, x: &Tensor) -> Result<Tensor> {
        let dt = x.dtype();
        let int = is_int(dt);
        if int {
            let ok = match dt {
                DType::I64 => matches!(
                    op,
                    UnaryOp::Neg | UnaryOp::Abs | UnaryOp::Relu | UnaryOp::Step | UnaryOp::Not
                ),
                _ => matches!(
                    op,
                    UnaryOp::Not | UnaryOp::Abs | UnaryOp::Relu | UnaryOp::Step
                ),
            };
            if !ok {
                return err(format!(
                    "{}: not supported for {} tensors",
                    op.name(),
                    dt.name()
                ));
            }
        }
        let out_dt = if op == UnaryOp::Not { DType::Bool } else { dt };
        let (me, s) = self.stream()?;
        let out = me.alloc_tensor(&s, x.shape(), out_dt)?;
        let n = x.numel();
        if n > 0 {
            let po = me.input(op.name(), &s, &out)?;
            let px = me.input(op.name(), &s, x)?;
            me.launch(
                &s,
                "tl_unary",
                grid_for(n),
                256,
                0,
                Args::new()
                    .ptr(po)
                    .i32(dtype_code(out_dt))
                    .ptr(px)
                    .i32(dtype_code(dt))
                    .lay(&Lay::compact(op.name(), x.layout())?)
                    .i64(n as i64)
                    .i32(unary_code(op))
                    .i32(int as i32),
            )?;
        }
        Ok(out)
    }

    fn binary(&self, op: BinaryOp, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        let name = op.name();
        let dt = a.dtype();
        if b.dtype() != dt {
            return err(format!(
                "{name}: operands have different dtypes ({} and {})",
                dt,
                b.dtype()
            ));
        }
        if a.shape() != b.shape() {
            return err(format!(
                "{name}: operand shapes {:?} and {:?} differ",
                a.shape(),
                b.shape()
            ));
        }
        if dt == DType::Bool
            && !matches!(
                op,
                BinaryOp::And
                    | BinaryOp::Or
                    | BinaryOp::Minimum
                    | BinaryOp::Maximum
                    | BinaryOp::Eq
                    | BinaryOp::Ne
                    | BinaryOp::Lt
                    | BinaryOp::Le
                    | BinaryOp::Gt
                    | BinaryOp::Ge
            )
        {
            return err(format!("{name}: not supported for bool tensors"));
        }
        let out_dt = if op.returns_bool() { DType::Bool } else { dt };
        let (me, s) = self.stream()?;
        let out = me.alloc_tensor(&s, a.shape(), out_dt)?;
        let n = a.numel();
        if n > 0 {
            let po = me.input(name, &s, &out)?;
            let pa = me.input(name, &s, a)?;
            let pb = me.input(name, &s, b)?;
            if is_int(dt) && matches!(op, BinaryOp::Div | BinaryOp::Rem | BinaryOp::Pow) {
                CudaBackend::flag_errors(&s);
            }
            me.launch(
                &s,
                "tl_binary",
                grid_for(n),
                256,
                0,
                Args::new()
                    .ptr(po)
                    .i32(dtype_code(out_dt))
                    .ptr(pa)
                    .lay(&Lay::compact(name, a.layout())?)
                    .ptr(pb)
                    .lay(&Lay::compact(name, b.layout())?)
                    .i32(dtype_code(dt))
                    .i64(n as i64)
                    .i32(binary_code(op))
                    .i32(is_int(dt) as i32)
                    .ptr(s.err_word()),
            )?;
        }
        Ok(out)
    }

    fn cast(&self, x: &Tensor, dtype: DType) -> Result<Tensor> {
        let (me, s) = self.stream()?;
        if dtype.is_quantized() {
            return err(format!(
                "not supported yet: quantizing to {dtype} on cuda (cast on the cpu, then move the tensor)"
            ));
        }
        if x.dtype().is_quantized() {
            return me.dequantize(x, dtype);
        }
        let out = me.alloc_tensor(&s, x.shape(), dtype)?;
        let n = x.numel();
        if n > 0 {
            let po = me.input("cast", &s, &out)?;
            let px = me.input("cast", &s, x)?;
            me.launch(
                &s,
                "tl_cast",
                grid_for(n),
                256,
                0,
                Args::new()
                    .ptr(po)
                    .i32(dtype_code(dtype))
                    .ptr(px)
                    .i32(dtype_code(x.dtype()))
                    .lay(&Lay::compact("cast", x.layout())?)
                    .i64(n as i64),
            )?;
        }
        Ok(out)
    }

    fn clamp(&self, x: &Tensor, min: Option<f64>, max: Option<f64>) -> Result<Tensor> {
        let dt = x.dtype();
        if dt == DType::Bool {
            return err("clamp: not supported for bool tensors".into());
        }
        let lo = min.unwrap_or(f64::NEG_INFINITY);
        let hi = max.unwrap_or(f64::INFINITY);
        let ilo = if lo.is_finite() {
            lo.ceil() as i64
        } else {
            i64::MIN
        };
        let ihi = if hi.is_finite() {
            hi.floor() as i64
        } else {
            i64::MAX
        };
        let (me, s) = self.stream()?;
        let out = me.alloc_tensor(&s, x.shape(), dt)?;
        let n = x.numel();
        if n > 0 {
            let po = me.input("clamp", &s, &out)?;
            let px = me.input("clamp", &s, x)?;
            me.launch(
                &s,
                "tl_clamp",
                grid_for(n),
                256,
                0,
                Args::new()
                    .ptr(po)
                    .ptr(px)
                    .i32(dtype_code(dt))
                    .lay(&Lay::compact("clamp", x.layout())?)
                    .i64(n as i64)
                    .f32(lo as f32)
                    .f32(hi as f32)
                    .i64(ilo)
                    .i64(ihi),
            )?;
        }
        Ok(out)
    }

    fn where_cond(&self, cond: &Tensor, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        if cond.dtype() != DType::Bool {
            return err(format!(
                "where: the condition must be a bool tensor, got {}",
                cond.dtype()
            ));
        }
        if a.dtype() != b.dtype() {
            return err(format!(
                "where: branches have different dtypes ({} and {})",
                a.dtype(),
                b.dtype()
            ));
        }
        let (me, s) = self.stream()?;
        let out = me.alloc_tensor(&s, a.shape(), a.dtype())?;
        let n = a.numel();
        if n > 0 {
            let po = me.input("where", &s, &out)?;
            let pc = me.input("where", &s, cond)?;
            let pa = me.input("where", &s, a)?;
            let pb = me.input("where", &s, b)?;
            me.launch(
                &s,
                "tl_where",
                grid_for(n),
                256,
                0,
                Args::new()
                    .ptr(po)
                    .ptr(pc)
                    .lay(&Lay::compact("where", cond.layout())?)
                    .ptr(pa)
                    .lay(&Lay::compact("where", a.layout())?)
                    .ptr(pb)
                    .lay(&Lay::compact("where", b.layout())?)
                    .i32(a.dtype().size_in_bytes() as i32)
                    .i64(n as i64),
            )?;
        }
        Ok(out)
    }

    fn reduce(&self, op: ReduceOp, x: &Tensor, dims: &[usize], keepdim: bool) -> Result<Tensor> {
        let dt = x.dtype();
        let out_dt = op.output_dtype(dt);
        let shape = reduced_shape(x.shape(), dims, keepdim);
        let rows: usize = shape.iter().product();
        let k: usize = dims.iter().map(|&d| x.shape()[d]).product();
        let (me, s) = self.stream()?;
        let out = me.alloc_tensor(&s, &shape, out_dt)?;
        if rows == 0 {
            return Ok(out);
        }
        let po = me.input(op.name(), &s, &out)?;
        let px = me.input(op.name(), &s, x)?;
        let lx = Lay::compact(op.name(), &dims_last(x.layout(), dims))?;
        let kernel = if is_int(dt) {
            "tl_reduce_i"
        } else {
            "tl_reduce_f"
        };
        me.launch(
            &s,
            kernel,
            CudaBackend::row_blocks(rows),
            256,
            0,
            Args::new()
                .ptr(po)
                .i32(dtype_code(out_dt))
                .ptr(px)
                .i32(dtype_code(dt))
                .lay(&lx)
                .i64(rows as i64)
                .i64(k as i64)
                .i32(reduce_code(op)),
        )?;
        Ok(out)
    }

    fn arg_reduce(&self, x: &Tensor, dim: usize, keepdim: bool, largest: bool) -> Result<Tensor> {
        let shape = reduced_shape(x.shape(), &[dim], keepdim);
        let rows: usize = shape.iter().product();
        let k = x.shape()[dim];
        let (me, s) = self.stream()?;
        let out = me.alloc_tensor(&s, &shape, DType::I64)?;
        if rows == 0 {
            return Ok(out);
        }
        let po = me.input("argmax", &s, &out)?;
        let px = me.input("argmax", &s, x)?;
        let lx = Lay::compact("argmax", &dims_last(x.layout(), &[dim]))?;
        let mut args = Args::new();
        args.ptr(po).ptr(px);
        let kernel = if x.dtype() == DType::I64 {
            "tl_arg_reduce_i"
        } else {
            args.i32(dtype_code(x.dtype()));
            "tl_arg_reduce"
        };
        args.lay(&lx)
            .i64(rows as i64)
            .i64(k as i64)
            .i32(largest as i32);
        me.launch(&s, kernel, CudaBackend::row_blocks(rows), 256, 0, &mut args)?;
        Ok(out)
    }

    fn concat(&self, xs: &[Tensor], dim: usize) -> Result<Tensor> {
        let Some(first) = xs.first() else {
            return err("concat: no tensors given".into());
        };
        let dtype = first.dtype();
        if let Some(x) = xs.iter().find(|x| x.dtype() != dtype) {
            return err(format!(
                "concat: tensors have different dtypes ({} and {})",
                dtype,
                x.dtype()
            ));
        }
        let mut shape = first.shape().to_vec();
        shape[dim] = xs.iter().map(|x| x.shape()[dim]).sum();
        let (me, s) = self.stream()?;
        let out = me.alloc_tensor(&s, &shape, dtype)?;
        let strides = contiguous_strides(&shape);
        let mut start = 0;
        for x in xs {
            let part = Layout {
                shape: x.shape().to_vec(),
                strides: strides.clone(),
                offset: start * strides[dim],
            };
            me.copy_into(&s, &out, &part, x)?;
            start += x.shape()[dim];
        }
        Ok(out)
    }

    fn gather(&self, x: &Tensor, dim: usize, index: &Tensor) -> Result<Tensor> {
        if index.dtype() != DType::I64 {
            return err(format!(
                "gather: the index must be an int64 tensor, got {}",
                index.dtype()
            ));
        }
        let xl = x.layout();
        let mut base_strides = xl.strides.clone();
        base_strides[dim] = 0;
        let base = Layout {
            shape: index.shape().to_vec(),
            strides: base_strides,
            offset: xl.offset,
        };
        let (me, s) = self.stream()?;
        let out = me.alloc_tensor(&s, index.shape(), x.dtype())?;
        let n = index.numel();
        if n > 0 {
            let po = me.input("gather", &s, &out)?;
            let px = me.input("gather", &s, x)?;
            let pi = me.input("gather", &s, index)?;
            CudaBackend::flag_errors(&s);
            me.launch(
                &s,
                "tl_gather",
                grid_for(n),
                256,
                0,
                Args::new()
                    .ptr(po)
                    .ptr(px)
                    .lay(&Lay::exact("gather", &base)?)
                    .i64(xl.strides[dim] as i64)
                    .i64(xl.shape[dim] as i64)
                    .ptr(pi)
                    .lay(&Lay::compact("gather", index.layout())?)
                    .i32(x.dtype().size_in_bytes() as i32)
                    .i64(n as i64)
                    .ptr(s.err_word()),
            )?;
        }
        Ok(out)
    }

    fn index_select(&self, x: &Tensor, dim: usize, index: &Tensor) -> Result<Tensor> {
        if index.dtype() != DType::I64 {
            return err(format!(
                "index_select: the index must be an int64 tensor, got {}",
                index.dtype()
            ));
        }
        let m = index.numel();
        let mut shape = x.shape().to_vec();
        shape[dim] = m;
        let inner: usize = shape[dim + 1..].iter().product();
        let xl = x.layout();
        let mut sel_strides = xl.strides.clone();
        sel_strides[dim] = 0;
        let sel = Layout {
            shape: shape.clone(),
            strides: sel_strides,
            offset: xl.offset,
        };
        let (me, s) = self.stream()?;
        let out = me.alloc_tensor(&s, &shape, x.dtype())?;
        let n = out.numel();
        if n > 0 {
            let po = me.input("index_select", &s, &out)?;
            let px = me.input("index_select", &s, x)?;
            let pi = me.input("index_select", &s, index)?;
            CudaBackend::flag_errors(&s);
            let flat_index = Layout {
                shape: vec![m],
                strides: vec![index.layout().strides.first().copied().unwrap_or(0)],
                offset: index.layout().offset,
            };
            me.launch(
                &s,
                "tl_index_select",
                grid_for(n),
                256,
                0,
                Args::new()
                    .ptr(po)
                    .ptr(px)
                    .lay(&Lay::exact("index_select", &sel)?)
                    .i64(xl.strides[dim] as i64)
                    .i64(xl.shape[dim] as i64)
                    .ptr(pi)
                    .lay(&Lay::exact("index_select", &flat_index)?)
                    .i64(m as i64)
                    .i64(inner.max(1) as i64)
                    .i32(x.dtype().size_in_bytes() as i32)
                    .i64(n as i64)
                    .ptr(s.err_word()),
            )?;
        }
        Ok(out)
    }

    fn write_slice(&self, dst: &mut Tensor, dim: usize, start: usize, src: &Tensor) -> Result<()> {
        self.static_self()?.write_slice_impl(dst, dim, start, src)
    }

    fn write_kv_rope(
        &self,
        k_dst: &mut Tensor,
        v_dst: &mut Tensor,
        start: usize,
        k: &Tensor,
        v: &Tensor,
        rope: (usize, f64, bool),
    ) -> Result<()> {
        self.static_self()?
            .write_kv_rope_impl(k_dst, v_dst, start, k, v, rope)
    }

    fn linear(&self, x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> Result<Tensor> {
        self.static_self()?.linear_impl(x, w, b)
    }

    fn linear_many(&self, x: &Tensor, ws: &[&Tensor]) -> Result<Vec<Tensor>> {
        self.static_self()?.linear_many_impl(x, ws)
    }

    fn linear_fused(
        &self,
        x: &Tensor,
        ws: &[&Tensor],
        fusion: &tl_tensor::ops::LinearFusion,
    ) -> Option<Result<Vec<Tensor>>> {
        match self.static_self() {
            Ok(me) => me.matvec_staged(x, ws, fusion),
            Err(e) => Some(Err(e)),
        }
    }

    fn matmul(&self, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        let (me, s) = self.stream()?;
        crate::blas::matmul(me, &s, a, b)
    }

    fn softmax(&self, x: &Tensor, dim: usize, log: bool) -> Result<Tensor> {
        let op = if log { "log_softmax" } else { "softmax" };
        let dt = x.dtype();
        if !dt.is_float() {
            return err(format!("{op}: expected a float tensor, got {dt}"));
        }
        let (me, s) = self.stream()?;
        let out = me.alloc_tensor(&s, x.shape(), dt)?;
        let k = x.shape()[dim];
        let rows = x.numel().checked_div(k).unwrap_or(0);
        if rows > 0 {
            let po = me.input(op, &s, &out)?;
            let px = me.input(op, &s, x)?;
            let lx = Lay::compact(op, &dims_last(x.layout(), &[dim]))?;
            let lo = Lay::compact(op, &dims_last(out.layout(), &[dim]))?;
            me.launch(
                &s,
                "tl_softmax",
                CudaBackend::row_blocks(rows),
                256,
                0,
                Args::new()
                    .ptr(po)
                    .lay(&lo)
                    .ptr(px)
                    .lay(&lx)
                    .i32(dtype_code(dt))
                    .i64(rows as i64)
                    .i64(k as i64)
                    .i32(log as i32),
            )?;
        }
        Ok(out)
    }

    fn rms_norm(&self, x: &Tensor, w: &Tensor, eps: f64) -> Result<Tensor> {
        let dt = x.dtype();
        let d = *x.shape().last().unwrap_or(&0);
        let (me, s) = self.stream()?;
        let out = me.alloc_tensor(&s, x.shape(), dt)?;
        let rows = x.numel().checked_div(d).unwrap_or(0);
        if rows > 0 {
            let po = me.input("rms_norm", &s, &out)?;
            let px = me.input("rms_norm", &s, x)?;
            let pw = me.input("rms_norm", &s, w)?;
            // A decode step normalises one row: a wide block spreads it over more lanes.
            let threads = if rows < 64 { 1024 } else { 256 };
            me.launch(
                &s,
                "tl_rms_norm",
                CudaBackend::row_blocks(rows),
                threads,
                0,
                Args::new()
                    .ptr(po)
                    .ptr(px)
                    .lay(&Lay::compact("rms_norm", x.layout())?)
                    .i32(dtype_code(dt))
                    .ptr(pw)
                    .lay(&Lay::compact("rms_norm", w.layout())?)
                    .i32(dtype_code(w.dtype()))
                    .i64(rows as i64)
                    .i64(d as i64)
                    .f32(eps as f32),
            )?;
        }
        Ok(out)
    }

    fn layer_norm(
        &self,
        x: &Tensor,
        w: Option<&Tensor>,
        b: Option<&Tensor>,
        eps: f64,
    ) -> Result<Tensor> {
        let dt = x.dtype();
        let d = *x.shape().last().unwrap_or(&0);
        let (me, s) = self.stream()?;
        let out = me.alloc_tensor(&s, x.shape(), dt)?;
        let rows = x.numel().checked_div(d).unwrap_or(0);
        if rows > 0 {
            let po = me.input("layer_norm", &s, &out)?;
            let px = me.input("layer_norm", &s, x)?;
            // An absent parameter is passed as x itself (never read: has_w/has_b are 0).
            let param = |p: Option<&Tensor>| -> Result<(u64, Lay, i32)> {
                match p {
                    Some(t) => Ok((
                        me.input("layer_norm", &s, t)?,
                        Lay::compact("layer_norm", t.layout())?,
                        dtype_code(t.dtype()),
                    )),
                    None => Ok((px, Lay::compact("layer_norm", x.layout())?, dtype_code(dt))),
                }
            };
            let (pw, lw, wdt) = param(w)?;
            let (pb, lb, bdt) = param(b)?;
            me.launch(
                &s,
                "tl_layer_norm",
                CudaBackend::row_blocks(rows),
                256,
                0,
                Args::new()
                    .ptr(po)
                    .ptr(px)
                    .lay(&Lay::compact("layer_norm", x.layout())?)
                    .i32(dtype_code(dt))
                    .ptr(pw)
                    .lay(&lw)
                    .i32(wdt)
                    .ptr(pb)
                    .lay(&lb)
                    .i32(bdt)
                    .i32(w.is_some() as i32)
                    .i32(b.is_some() as i32)
                    .i64(rows as i64)
                    .i64(d as i64)
                    .f32(eps as f32),
            )?;
        }
        Ok(out)
    }

    fn rope(
        &self,
        x: &Tensor,
        seq_dim: Option<usize>,
        pos: usize,
        theta: f64,
        neox: bool,
    ) -> Result<Tensor> {
        let op = if neox { "rope_neox" } else { "rope" };
        let dt = x.dtype();
        let shape = x.shape();
        let d = *shape.last().unwrap_or(&0);
        let seq_len = seq_dim.map_or(1, |sd| shape[sd]);
        let seq_stride: usize = seq_dim.map_or(d, |sd| shape[sd + 1..].iter().product());
        let (me, s) = self.stream()?;
        let out = me.alloc_tensor(&s, shape, dt)?;
        let pairs = x.numel() / 2;
        if pairs > 0 && d >= 2 {
            let po = me.input(op, &s, &out)?;
            let px = me.input(op, &s, x)?;
            me.launch(
                &s,
                "tl_rope",
                grid_for(pairs),
                256,
                0,
                Args::new()
                    .ptr(po)
                    .ptr(px)
                    .lay(&Lay::compact(op, x.layout())?)
                    .i32(dtype_code(dt))
                    .i64(pairs as i64)
                    .i64(d as i64)
                    .i64(seq_stride.max(1) as i64)
                    .i64(seq_len.max(1) as i64)
                    .i64(pos as i64)
                    .f64(theta)
                    .i32(neox as i32),
            )?;
        }
        Ok(out)
    }

    fn embedding(&self, table: &Tensor, ids: &Tensor) -> Result<Tensor> {
        if table.dtype().is_quantized() {
            return self.static_self()?.embedding_packed(table, ids);
        }
        // Rows of the table picked by the flattened ids, then shaped ids.shape + [d].
        let flat = ids.reshape(&[-1])?;
        let rows = self.index_select(table, 0, &flat)?;
        let mut shape: Vec<isize> = ids.shape().iter().map(|&d| d as isize).collect();
        shape.push(table.shape()[1] as isize);
        rows.reshape(&shape)
    }

    fn silu_mul(&self, a: &Tensor, b: &Tensor, dtype: DType) -> Result<Tensor> {
        let (me, s) = self.stream()?;
        let out = me.alloc_tensor(&s, a.shape(), dtype)?;
        let n = a.numel();
        if n > 0 {
            let po = me.input("silu_mul", &s, &out)?;
            let pa = me.input("silu_mul", &s, a)?;
            let pb = me.input("silu_mul", &s, b)?;
            me.launch(
                &s,
                "tl_silu_mul",
                grid_for(n),
                256,
                0,
                Args::new()
                    .ptr(po)
                    .i32(dtype_code(dtype))
                    .ptr(pa)
                    .lay(&Lay::compact("silu_mul", a.layout())?)
                    .i32(dtype_code(a.dtype()))
                    .ptr(pb)
                    .lay(&Lay::compact("silu_mul", b.layout())?)
                    .i32(dtype_code(b.dtype()))
                    .i64(n as i64),
            )?;
        }
        Ok(out)
    }

    fn attention_causal(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        offset: usize,
        scale: f64,
    ) -> Option<Result<Tensor>> {
        let (hq, sq, d) = (q.shape()[0], q.shape()[1], q.shape()[2]);
        let (hkv, sk, dv) = (k.shape()[0], k.shape()[1], v.shape()[2]);
        let group = hq / hkv;
        let shared = (group * d + group * sk + ATTC_KEY_GROUPS * group * dv) * 4;
        let unit_rows = [q, k, v].iter().all(|t| t.layout().strides[2] == 1);
        let me = match self.static_self() {
            Ok(me) => me,
            Err(e) => return Some(Err(e)),
        };
        if !unit_rows
            || group > ATTC_MAX_GROUP
            || dv > 64
            || sq == 0
            || shared > attention_shared_limit(me)
        {
            return None;
        }
        Some((|| {
            let op = "attention";
            let s = thread_stream(me)?;
            let out = me.alloc_tensor(&s, &[hq, sq, dv], q.dtype())?;
            me.launch(
                &s,
                "tl_attention_causal",
                (hkv * sq) as u32,
                ATTC_THREADS,
                shared as u32,
                me.push_qkv(&s, Args::new().ptr(me.input(op, &s, &out)?), [q, k, v])?
                    .i32(dtype_code(q.dtype()))
                    .i64(hq as i64)
                    .i64(sq as i64)
                    .i64(sk as i64)
                    .i64(d as i64)
                    .i64(dv as i64)
                    .i64(group as i64)
                    .i64(offset as i64)
                    .f32(scale as f32),
            )?;
            Ok(out)
        })())
    }

    fn attention(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        mask: Option<&Tensor>,
        scale: f64,
    ) -> Result<Tensor> {
        let op = "attention";
        let r = q.rank();
        let (hq, sq, d) = (q.shape()[r - 3], q.shape()[r - 2], q.shape()[r - 1]);
        let (hkv, sk) = (k.shape()[r - 3], k.shape()[r - 2]);
        let dv = v.shape()[r - 1];
        let batch: usize = q.shape()[..r - 3].iter().product();
        if q.dtype() != k.dtype() || q.dtype() != v.dtype() {
            return err(format!(
                "attention: q, k and v have different dtypes ({}, {}, {})",
                q.dtype(),
                k.dtype(),
                v.dtype()
            ));
        }
        let mut shape = q.shape()[..r - 1].to_vec();
        shape.push(dv);
        let (me, s) = self.stream()?;
        let out = me.alloc_tensor(&s, &shape, q.dtype())?;
        let rows = batch * hq * sq;
        if rows == 0 || dv == 0 {
            return Ok(out);
        }
        // Unit-stride rows (the usual layouts) take the warp-per-key kernel; it keeps the
        // query row and one partial output row per warp in shared memory beside the scores.
        let unit_rows = [q, k, v]
            .iter()
            .all(|t| t.layout().strides[r - 1] == 1 || t.shape()[r - 1] <= 1);
        if unit_rows && sq == 1 && mask.is_none() && sk >= SPLIT_MIN_KEYS {
            return me.attention_split(q, k, v, &out, scale);
        }
        let (kernel, block, shared) = if unit_rows {
            ("tl_attention_rows", 256, (sk + d + 8 * dv) * 4)
        } else {
            ("tl_attention", 128, sk * 4)
        };
        if shared > attention_shared_limit(me) {
            return err(format!(
                "attention: {sk} keys need {shared} bytes of shared memory per block; this device allows {} (split the keys)",
                attention_shared_limit(me)
            ));
        }
        let po = me.input(op, &s, &out)?;
        // Without a mask the kernel is handed q in its place (never read).
        let (pm, lm, mdt) = match mask {
            Some(m) => (
                me.input(op, &s, m)?,
                Lay::exact(op, m.layout())?,
                dtype_code(m.dtype()),
            ),
            None => (
                me.input(op, &s, q)?,
                Lay::exact(op, q.layout())?,
                dtype_code(q.dtype()),
            ),
        };
        let mut args = Args::new();
        args.ptr(po);
        me.push_qkv(&s, &mut args, [q, k, v])?;
        args.i32(dtype_code(q.dtype()))
            .ptr(pm)
            .lay(&lm)
            .i32(mdt)
            .i32(mask.is_some() as i32);
        if !unit_rows {
            args.i64(batch as i64);
        }
        args.i64(hq as i64)
            .i64(sq as i64)
            .i64(sk as i64)
            .i64(d as i64)
            .i64(dv as i64)
            .i64((hq / hkv.max(1)) as i64)
            .f32(scale as f32);
        me.launch(&s, kernel, rows as u32, block, shared as u32, &mut args)?;
        Ok(out)
    }
}

/// Keys from which one decoding query row is split over several blocks.
const SPLIT_MIN_KEYS: usize = 256;
/// Threads, most query heads per kv head and key quarters of `tl_attention_causal`
/// (`ATTC_THREADS`, `ATTC_MAX_GROUP`, `ATTC_KEY_GROUPS`).
const ATTC_THREADS: u32 = 256;
const ATTC_MAX_GROUP: usize = 8;
const ATTC_KEY_GROUPS: usize = 4;
/// Keys per block of the split attention (`chunk` of tl_attention_split).
const SPLIT_CHUNK: usize = 128;

impl CudaBackend {
    /// Pushes each of q, k and v as the attention kernels take them: its device address and
    /// its exact layout.
    fn push_qkv<'a>(
        &self,
        s: &Arc<ThreadStream>,
        args: &'a mut Args,
        qkv: [&Tensor; 3],
    ) -> Result<&'a mut Args> {
        for t in qkv {
            args.ptr(self.input("attention", s, t)?)
                .lay(&Lay::exact("attention", t.layout())?);
        }
        Ok(args)
    }

    /// Attention of single query rows (decoding) over many keys, no mask: each row's keys
    /// in chunks on separate blocks, then one merge per row (two launches).
    fn attention_split(
        &'static self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        out: &Tensor,
        scale: f64,
    ) -> Result<Tensor> {
        let op = "attention";
        let s = &thread_stream(self)?;
        let r = q.rank();
        let (hq, d) = (q.shape()[r - 3], q.shape()[r - 1]);
        let (hkv, sk) = (k.shape()[r - 3], k.shape()[r - 2]);
        let dv = v.shape()[r - 1];
        let rows = out.numel() / dv;
        let splits = sk.div_ceil(SPLIT_CHUNK);
        let part = self.alloc_tensor(s, &[rows * splits * (dv + 2)], DType::F32)?;
        let pp = self.input(op, s, &part)?;
        self.launch(
            s,
            "tl_attention_split",
            (rows * splits) as u32,
            128,
            ((SPLIT_CHUNK + d + 4 * dv) * 4) as u32,
            self.push_qkv(s, Args::new().ptr(pp), [q, k, v])?
                .i32(dtype_code(q.dtype()))
                .i64(hq as i64)
                .i64(sk as i64)
                .i64(d as i64)
                .i64(dv as i64)
                .i64((hq / hkv.max(1)) as i64)
                .f32(scale as f32)
                .i64(SPLIT_CHUNK as i64)
                .i64(splits as i64),
        )?;
        self.launch(
            s,
            "tl_attention_combine",
            rows as u32,
            dv.clamp(32, 256).next_multiple_of(32) as u32,
            0,
            Args::new()
                .ptr(self.input(op, s, out)?)
                .i32(dtype_code(q.dtype()))
                .ptr(pp)
                .i64(splits as i64)
                .i64(dv as i64),
        )?;
        Ok(out.clone())
    }
}

/// Dynamic shared memory the attention kernel may use: the device's opt-in maximum less its
/// static part (32 floats, rounded up).
fn attention_shared_limit(backend: &CudaBackend) -> usize {
    backend.max_shared_bytes.saturating_sub(256)
}

/// Lets the attention kernel use the device's full shared memory (long key sequences).
pub(crate) fn prepare_attention(backend: &CudaBackend) -> Result<()> {
    let dynamic = attention_shared_limit(backend) as i32;
    for name in [
        "tl_attention",
        "tl_attention_rows",
        "tl_attention_split",
        "tl_attention_causal",
    ] {
        let (_, f) = backend.kernels.get(name)?;
        f.set_attribute(
            cudarc::driver::sys::CUfunction_attribute::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
            dynamic,
        )
        .map_err(crate::runtime::driver_err(
            "raising the attention kernel's shared memory",
        ))?;
    }
    Ok(())
}
