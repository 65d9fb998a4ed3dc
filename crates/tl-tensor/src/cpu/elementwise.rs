//! CPU elementwise kernels: unary and binary ops, casts, clamp and where. Inputs may be any
//! strided view; outputs are new contiguous storages. f16/bf16 compute in f32 and round back.

use super::strided::{ChunkWriter, chunks1, chunks2, map1, map2, map3};
use crate::bail;
use crate::dtype::DType;
use crate::error::Result;
use crate::ops::quantized_unsupported;
use crate::ops::{BinaryOp, UnaryOp};
use crate::storage::CpuStorage;
use crate::tensor::Tensor;
use half::slice::HalfFloatSliceExt;
use half::{bf16, f16};

/// Float element types that compute in f32.
pub(crate) trait FloatElem: Copy + Default + Send + Sync + 'static {
    /// True for f32 itself, whose kernels need no conversion.
    const IS_F32: bool;
    const ZERO: Self;
    fn to_f32(self) -> f32;
    fn from_f32(x: f32) -> Self;
    fn into_storage(v: Vec<Self>) -> CpuStorage;
    fn to_f32_slice(src: &[Self], dst: &mut [f32]);
    fn from_f32_slice(src: &[f32], dst: &mut [Self]);
}

impl FloatElem for f32 {
    const IS_F32: bool = true;
    const ZERO: Self = 0.0;
    fn to_f32_slice(src: &[Self], dst: &mut [f32]) {
        dst.copy_from_slice(src);
    }
    fn from_f32_slice(src: &[f32], dst: &mut [Self]) {
        dst.copy_from_slice(src);
    }
    #[inline(always)]
    fn to_f32(self) -> f32 {
        self
    }
    #[inline(always)]
    fn from_f32(x: f32) -> Self {
        x
    }
    fn into_storage(v: Vec<Self>) -> CpuStorage {
        CpuStorage::F32(v.into())
    }
}

impl FloatElem for f16 {
    const IS_F32: bool = false;
    const ZERO: Self = f16::ZERO;
    fn to_f32_slice(src: &[Self], dst: &mut [f32]) {
        src.convert_to_f32_slice(dst);
    }
    fn from_f32_slice(src: &[f32], dst: &mut [Self]) {
        dst.convert_from_f32_slice(src);
    }
    #[inline(always)]
    fn to_f32(self) -> f32 {
        f16::to_f32(self)
    }
    #[inline(always)]
    fn from_f32(x: f32) -> Self {
        f16::from_f32(x)
    }
    fn into_storage(v: Vec<Self>) -> CpuStorage {
        CpuStorage::F16(v.into())
    }
}

impl FloatElem for bf16 {
    const IS_F32: bool = false;
    const ZERO: Self = bf16::ZERO;
    fn to_f32_slice(src: &[Self], dst: &mut [f32]) {
        src.convert_to_f32_slice(dst);
    }
    fn from_f32_slice(src: &[f32], dst: &mut [Self]) {
        dst.convert_from_f32_slice(src);
    }
    #[inline(always)]
    fn to_f32(self) -> f32 {
        bf16::to_f32(self)
    }
    #[inline(always)]
    fn from_f32(x: f32) -> Self {
        bf16::from_f32(x)
    }
    fn into_storage(v: Vec<Self>) -> CpuStorage {
        CpuStorage::BF16(v.into())
    }
}

pub(crate) fn storage(x: &Tensor) -> &CpuStorage {
    x.cpu_storage()
        .expect("the cpu backend was handed a tensor that is not on the host")
}

/// e^x for f32, branch-free so that loops over it vectorise (libm's `expf` is one call per
/// element): x = k ln 2 + r with |r| <= ln(2)/2, e^r by its degree-7 Taylor polynomial
/// (truncation error below 1e-8), then scaled by 2^k through the exponent bits. Relative
/// error is a few ulp; results below 2.7e-38 flush to 0 and above f32::MAX give inf.
#[inline(always)]
pub(crate) fn exp_f32(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    // ln 2 split in two so that k * LN2_HI is exact for the k that occur.
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Adding and subtracting 1.5 * 2^23 rounds to the nearest integer.
    const ROUND: f32 = 12_582_912.0;
    let xc = x.clamp(-86.5, 88.72);
    let kf = (xc * LOG2E + ROUND) - ROUND;
    let r = (xc - kf * LN2_HI) - kf * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0
                    + r * (1.0 / 24.0
                        + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r * (1.0 / 5040.0)))))));
    // 2^(k-1), times 2 afterwards, so that k = 128 does not overflow the exponent field.
    let scale = f32::from_bits(((kf as i32 + 126) as u32) << 23);
    let y = p * scale * 2.0;
    let y = if x > 88.72 { f32::INFINITY } else { y };
    let y = if x < -86.5 { 0.0 } else { y };
    // NaN in, NaN out (the clamp above would have turned it into a number).
    if x.is_nan() { x } else { y }
}

/// tanh through the fast exp (libm's tanhf costs about 9 ns an element): below |x| = 0.55 the
/// odd Taylor series to x^17 (truncation below 3e-9 relative), above it
/// sign(x) (1 - 2 / (exp(2|x|) + 1)), which has no cancellation there. Within a few ulp of
/// f64 tanh (tests/core_elementwise.rs); NaN stays NaN, +-inf gives +-1.
#[inline(always)]
pub(crate) fn tanh_f32(x: f32) -> f32 {
    // Both branches are computed and one is selected, so that the loop has no branch.
    let ax = x.abs();
    let z = x * x;
    let p = -443_861_162.0 / 1_856_156_927_625.0;
    let p = p * z + 6_404_582.0 / 10_854_718_875.0;
    let p = p * z - 929_569.0 / 638_512_875.0;
    let p = p * z + 21_844.0 / 6_081_075.0;
    let p = p * z - 1_382.0 / 155_925.0;
    let p = p * z + 62.0 / 2_835.0;
    let p = p * z - 17.0 / 315.0;
    let p = p * z + 2.0 / 15.0;
    let p = p * z - 1.0 / 3.0;
    let series = x + x * z * p;
    let large = (1.0 - 2.0 / (exp_f32(2.0 * ax) + 1.0)).copysign(x);
    if ax < 0.55 { series } else { large }
}

#[inline(always)]
fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp_f32(-x))
}

/// `0.5 x (1 + erf(x / sqrt 2))`, written with erfc so that large negative inputs do not
/// lose their digits to cancellation.
#[inline(always)]
fn gelu(x: f32) -> f32 {
    0.5 * x * libm::erfcf(-x * std::f32::consts::FRAC_1_SQRT_2)
}

/// Python-style remainder: the result has the sign of the divisor.
#[inline(always)]
fn rem_f32(x: f32, y: f32) -> f32 {
    let r = x % y;
    if r != 0.0 && ((r < 0.0) != (y < 0.0)) {
        r + y
    } else {
        r
    }
}

fn unary_float<T: FloatElem>(op: UnaryOp, v: &[T], x: &Tensor) -> Result<CpuStorage> {
    let l = x.layout();
    macro_rules! go {
        ($f:expr) => {{
            let f = $f;
            if T::IS_F32 {
                T::into_storage(map1(v, l, |a: T| T::from_f32(f(a.to_f32()))))
            } else {
                let mut w = ChunkWriter::<T>::with_capacity(l.numel());
                let mut r = [0f32; 256];
                chunks1(v, l, |xs| {
                    for (o, &x) in r.iter_mut().zip(xs) {
                        *o = f(x);
                    }
                    w.push(&r[..xs.len()]);
                });
                T::into_storage(w.out)
            }
        }};
    }
    Ok(match op {
        UnaryOp::Neg => go!(|a: f32| -a),
        UnaryOp::Abs => go!(|a: f32| a.abs()),
        UnaryOp::Exp => go!(exp_f32),
        UnaryOp::Log => go!(|a: f32| a.ln()),
        UnaryOp::Sqrt => go!(|a: f32| a.sqrt()),
        UnaryOp::Rsqrt => go!(|a: f32| 1.0 / a.sqrt()),
        UnaryOp::Sin => go!(|a: f32| a.sin()),
        UnaryOp::Cos => go!(|a: f32| a.cos()),
        UnaryOp::Tanh => go!(tanh_f32),
        UnaryOp::Sigmoid => go!(sigmoid),
        // `a < 0` keeps NaN as NaN, as PyTorch does.
        UnaryOp::Relu => go!(|a: f32| if a < 0.0 { 0.0 } else { a }),
        UnaryOp::Gelu => go!(gelu),
        UnaryOp::Silu => go!(|a: f32| a * sigmoid(a)),
        UnaryOp::Step => go!(|a: f32| if a > 0.0 { 1.0 } else { 0.0 }),
        UnaryOp::Not => CpuStorage::Bool(map1(v, l, |a: T| a.to_f32() == 0.0).into()),
    })
}

/// Elementwise `op` of `x`. Integer and bool inputs support the ops that keep their dtype
/// (neg, abs, relu, step, not); the caller converts them to f32 for the float functions.
pub(crate) fn unary(op: UnaryOp, x: &Tensor) -> Result<Tensor> {
    let l = x.layout();
    let out = match storage(x) {
        CpuStorage::F32(v) => unary_float(op, v, x)?,
        CpuStorage::F16(v) => unary_float(op, v, x)?,
        CpuStorage::BF16(v) => unary_float(op, v, x)?,
        CpuStorage::I64(v) => CpuStorage::I64(
            match op {
                UnaryOp::Neg => map1(v, l, |a: i64| a.wrapping_neg()),
                UnaryOp::Abs => map1(v, l, |a: i64| a.wrapping_abs()),
                UnaryOp::Relu => map1(v, l, |a: i64| a.max(0)),
                UnaryOp::Step => map1(v, l, |a: i64| (a > 0) as i64),
                UnaryOp::Not => return Ok(bool_tensor(map1(v, l, |a: i64| a == 0), x)),
                _ => bail!("{}: not supported for int64 tensors", unary_name(op)),
            }
            .into(),
        ),
        CpuStorage::Bool(v) => CpuStorage::Bool(
            match op {
                UnaryOp::Not => map1(v, l, |a: bool| !a),
                UnaryOp::Abs | UnaryOp::Relu | UnaryOp::Step => map1(v, l, |a: bool| a),
                _ => bail!("{}: not supported for bool tensors", unary_name(op)),
            }
            .into(),
        ),
        CpuStorage::Quantized(q, ..) => {
            return Err(quantized_unsupported(unary_name(op), q.dtype()));
        }
    };
    Tensor::from_cpu_storage(out, x.shape())
}

fn bool_tensor(v: Vec<bool>, like: &Tensor) -> Tensor {
    Tensor::from_cpu_storage(CpuStorage::Bool(v.into()), like.shape())
        .expect("an elementwise result has its input's element count")
}

/// The lower-case name of a unary op, for messages.
pub fn unary_name(op: UnaryOp) -> &'static str {
    match op {
        UnaryOp::Neg => "neg",
        UnaryOp::Abs => "abs",
        UnaryOp::Exp => "exp",
        UnaryOp::Log => "log",
        UnaryOp::Sqrt => "sqrt",
        UnaryOp::Rsqrt => "rsqrt",
        UnaryOp::Sin => "sin",
        UnaryOp::Cos => "cos",
        UnaryOp::Tanh => "tanh",
        UnaryOp::Sigmoid => "sigmoid",
        UnaryOp::Relu => "relu",
        UnaryOp::Gelu => "gelu",
        UnaryOp::Silu => "silu",
        UnaryOp::Step => "step",
        UnaryOp::Not => "not",
    }
}

/// The lower-case name of a binary op, for messages.
pub fn binary_name(op: BinaryOp) -> &'static str {
    match op {
        BinaryOp::Add => "add",
        BinaryOp::Sub => "sub",
        BinaryOp::Mul => "mul",
        BinaryOp::Div => "div",
        BinaryOp::Pow => "pow",
        BinaryOp::Rem => "rem",
        BinaryOp::Maximum => "maximum",
        BinaryOp::Minimum => "minimum",
        BinaryOp::Eq => "eq",
        BinaryOp::Ne => "ne",
        BinaryOp::Lt => "lt",
        BinaryOp::Le => "le",
        BinaryOp::Gt => "gt",
        BinaryOp::Ge => "ge",
        BinaryOp::And => "and",
        BinaryOp::Or => "or",
    }
}

fn binary_float<T: FloatElem>(
    op: BinaryOp,
    a: &[T],
    x: &Tensor,
    b: &[T],
    y: &Tensor,
) -> CpuStorage {
    let (la, lb) = (x.layout(), y.layout());
    macro_rules! arith {
        ($f:expr) => {{
            let f = $f;
            if T::IS_F32 {
                T::into_storage(map2(a, la, b, lb, |p: T, q: T| {
                    T::from_f32(f(p.to_f32(), q.to_f32()))
                }))
            } else {
                let mut w = ChunkWriter::<T>::with_capacity(la.numel());
                let mut r = [0f32; 256];
                chunks2(a, la, b, lb, |xs, ys| {
                    for ((o, &x), &y) in r.iter_mut().zip(xs).zip(ys) {
                        *o = f(x, y);
                    }
                    w.push(&r[..xs.len()]);
                });
                T::into_storage(w.out)
            }
        }};
    }
    macro_rules! cmp {
        ($f:expr) => {{
            let f = $f;
            if T::IS_F32 {
                CpuStorage::Bool(map2(a, la, b, lb, |p: T, q: T| f(p.to_f32(), q.to_f32())).into())
            } else {
                let mut out = Vec::with_capacity(la.numel());
                chunks2(a, la, b, lb, |xs, ys| {
                    out.extend(xs.iter().zip(ys).map(|(&x, &y)| f(x, y)))
                });
                CpuStorage::Bool(out.into())
            }
        }};
    }
    match op {
        BinaryOp::Add => arith!(|p: f32, q: f32| p + q),
        BinaryOp::Sub => arith!(|p: f32, q: f32| p - q),
        BinaryOp::Mul => arith!(|p: f32, q: f32| p * q),
        BinaryOp::Div => arith!(|p: f32, q: f32| p / q),
        BinaryOp::Pow => arith!(|p: f32, q: f32| p.powf(q)),
        BinaryOp::Rem => arith!(rem_f32),
        // NaN propagates, as in PyTorch.
        BinaryOp::Maximum => arith!(|p: f32, q: f32| if p.is_nan() || p > q { p } else { q }),
        BinaryOp::Minimum => arith!(|p: f32, q: f32| if p.is_nan() || p < q { p } else { q }),
        BinaryOp::Eq => cmp!(|p: f32, q: f32| p == q),
        BinaryOp::Ne => cmp!(|p: f32, q: f32| p != q),
        BinaryOp::Lt => cmp!(|p: f32, q: f32| p < q),
        BinaryOp::Le => cmp!(|p: f32, q: f32| p <= q),
        BinaryOp::Gt => cmp!(|p: f32, q: f32| p > q),
        BinaryOp::Ge => cmp!(|p: f32, q: f32| p >= q),
        BinaryOp::And => cmp!(|p: f32, q: f32| p != 0.0 && q != 0.0),
        BinaryOp::Or => cmp!(|p: f32, q: f32| p != 0.0 || q != 0.0),
    }
}

/// Floor division, as Python's `//`.
#[inline(always)]
fn floor_div_i64(p: i64, q: i64) -> i64 {
    let d = p.wrapping_div(q);
    if (p % q != 0) && ((p < 0) != (q < 0)) {
        d - 1
    } else {
        d
    }
}

/// Remainder with the sign of the divisor, as Python's `%`.
#[inline(always)]
fn floor_rem_i64(p: i64, q: i64) -> i64 {
    let r = p.wrapping_rem(q);
    if r != 0 && ((r < 0) != (q < 0)) {
        r + q
    } else {
        r
    }
}

fn binary_i64(op: BinaryOp, a: &[i64], x: &Tensor, b: &[i64], y: &Tensor) -> Result<CpuStorage> {
    let (la, lb) = (x.layout(), y.layout());
    if matches!(op, BinaryOp::Div | BinaryOp::Rem) {
        let mut zero = false;
        super::strided::for_each_offset(lb, |o| zero |= b[o] == 0);
        if zero {
            bail!("{}: integer division by zero", binary_name(op));
        }
    }
    if op == BinaryOp::Pow {
        let mut negative = false;
        super::strided::for_each_offset(lb, |o| negative |= b[o] < 0);
        if negative {
            bail!(
                "pow: negative exponents are not supported for int64 tensors (cast to float first)"
            );
        }
    }
    macro_rules! arith {
        ($f:expr) => {
            CpuStorage::I64(map2(a, la, b, lb, $f).into())
        };
    }
    macro_rules! cmp {
        ($f:expr) => {
            CpuStorage::Bool(map2(a, la, b, lb, $f).into())
        };
    }
    Ok(match op {
        BinaryOp::Add => arith!(|p: i64, q: i64| p.wrapping_add(q)),
        BinaryOp::Sub => arith!(|p: i64, q: i64| p.wrapping_sub(q)),
        BinaryOp::Mul => arith!(|p: i64, q: i64| p.wrapping_mul(q)),
        BinaryOp::Div => arith!(floor_div_i64),
        BinaryOp::Rem => arith!(floor_rem_i64),
        BinaryOp::Pow => arith!(|p: i64, q: i64| p.wrapping_pow(q.min(u32::MAX as i64) as u32)),
        BinaryOp::Maximum => arith!(|p: i64, q: i64| p.max(q)),
        BinaryOp::Minimum => arith!(|p: i64, q: i64| p.min(q)),
        BinaryOp::Eq => cmp!(|p: i64, q: i64| p == q),
        BinaryOp::Ne => cmp!(|p: i64, q: i64| p != q),
        BinaryOp::Lt => cmp!(|p: i64, q: i64| p < q),
        BinaryOp::Le => cmp!(|p: i64, q: i64| p <= q),
        BinaryOp::Gt => cmp!(|p: i64, q: i64| p > q),
        BinaryOp::Ge => cmp!(|p: i64, q: i64| p >= q),
        BinaryOp::And => cmp!(|p: i64, q: i64| p != 0 && q != 0),
        BinaryOp::Or => cmp!(|p: i64, q: i64| p != 0 || q != 0),
    })
}

fn binary_bool(op: BinaryOp, a: &[bool], x: &Tensor, b: &[bool], y: &Tensor) -> Result<CpuStorage> {
    let (la, lb) = (x.layout(), y.layout());
    macro_rules! go {
        ($f:expr) => {
            CpuStorage::Bool(map2(a, la, b, lb, $f).into())
        };
    }
    Ok(match op {
        BinaryOp::And | BinaryOp::Minimum => go!(|p: bool, q: bool| p & q),
        BinaryOp::Or | BinaryOp::Maximum => go!(|p: bool, q: bool| p | q),
        BinaryOp::Eq => go!(|p: bool, q: bool| p == q),
        BinaryOp::Ne => go!(|p: bool, q: bool| p != q),
        BinaryOp::Lt => go!(|p: bool, q: bool| !p & q),
        BinaryOp::Le => go!(|p: bool, q: bool| p <= q),
        BinaryOp::Gt => go!(|p: bool, q: bool| p & !q),
        BinaryOp::Ge => go!(|p: bool, q: bool| p >= q),
        _ => bail!("{}: not supported for bool tensors", binary_name(op)),
    })
}

/// `op` of two tensors of one shape and one dtype.
pub(crate) fn binary(op: BinaryOp, x: &Tensor, y: &Tensor) -> Result<Tensor> {
    // A large transposed operand is first copied in cache-friendly tiles: walking it in the
    // output's order would touch a new cache line for every element.
    let untranspose = |t: &Tensor| -> Result<Option<Tensor>> {
        if t.numel() >= 1 << 14 && super::strided::is_transposed(t.layout()) {
            super::copy::contiguous(t).map(Some)
        } else {
            Ok(None)
        }
    };
    if let Some(xc) = untranspose(x)? {
        return binary(op, &xc, y);
    }
    if let Some(yc) = untranspose(y)? {
        return binary(op, x, &yc);
    }
    let out = match (storage(x), storage(y)) {
        (CpuStorage::F32(a), CpuStorage::F32(b)) => binary_float(op, a, x, b, y),
        (CpuStorage::F16(a), CpuStorage::F16(b)) => binary_float(op, a, x, b, y),
        (CpuStorage::BF16(a), CpuStorage::BF16(b)) => binary_float(op, a, x, b, y),
        (CpuStorage::I64(a), CpuStorage::I64(b)) => binary_i64(op, a, x, b, y)?,
        (CpuStorage::Bool(a), CpuStorage::Bool(b)) => binary_bool(op, a, x, b, y)?,
        (a, b) => bail!(
            "{}: operands have different dtypes ({} and {})",
            binary_name(op),
            a.dtype(),
            b.dtype()
        ),
    };
    Tensor::from_cpu_storage(out, x.shape())
}

fn cast_from<T: Copy + Sync>(
    v: &[T],
    x: &Tensor,
    dtype: DType,
    to_f32: impl Fn(T) -> f32 + Copy + Sync,
) -> CpuStorage {
    let l = x.layout();
    match dtype {
        DType::F32 => CpuStorage::F32(map1(v, l, to_f32).into()),
        DType::F16 => CpuStorage::F16(map1(v, l, |a| f16::from_f32(to_f32(a))).into()),
        DType::BF16 => CpuStorage::BF16(map1(v, l, |a| bf16::from_f32(to_f32(a))).into()),
        // `as` truncates toward zero, saturates and maps NaN to 0.
        DType::I64 => CpuStorage::I64(map1(v, l, |a| to_f32(a) as i64).into()),
        DType::Bool => CpuStorage::Bool(map1(v, l, |a| to_f32(a) != 0.0).into()),
        q => unreachable!("cast to {q} is handled by the quantized kernels"),
    }
}

/// A float tensor converted to `dtype`, through f32 chunks (vector conversions for halves).
fn cast_float<T: FloatElem>(v: &[T], l: &crate::Layout, dtype: DType) -> CpuStorage {
    fn to<U: FloatElem, T: FloatElem>(v: &[T], l: &crate::Layout) -> CpuStorage {
        let mut w = ChunkWriter::<U>::with_capacity(l.numel());
        chunks1(v, l, |xs| w.push(xs));
        U::into_storage(w.out)
    }
    match dtype {
        DType::F32 => to::<f32, T>(v, l),
        DType::F16 => to::<f16, T>(v, l),
        DType::BF16 => to::<bf16, T>(v, l),
        DType::I64 => {
            let mut out = Vec::with_capacity(l.numel());
            chunks1(v, l, |xs| out.extend(xs.iter().map(|&a| a as i64)));
            CpuStorage::I64(out.into())
        }
        DType::Bool => {
            let mut out = Vec::with_capacity(l.numel());
            chunks1(v, l, |xs| out.extend(xs.iter().map(|&a| a != 0.0)));
            CpuStorage::Bool(out.into())
        }
        q => unreachable!("cast to {q} is handled by the quantized kernels"),
    }
}

/// `x` converted to `dtype` (a contiguous copy, also when the dtype does not change).
pub(crate) fn cast(x: &Tensor, dtype: DType) -> Result<Tensor> {
    if dtype.is_quantized() || x.dtype().is_quantized() {
        return super::quantized::cast(x, dtype);
    }
    let l = x.layout();
    let out = match storage(x) {
        CpuStorage::F32(v) => cast_float(v, l, dtype),
        // f32 holds every f16 and bf16 exactly, so going through it rounds only once.
        CpuStorage::F16(v) => match dtype {
            DType::F16 => CpuStorage::F16(map1(v, l, |a| a).into()),
            _ => cast_float(v, l, dtype),
        },
        CpuStorage::BF16(v) => match dtype {
            DType::BF16 => CpuStorage::BF16(map1(v, l, |a| a).into()),
            _ => cast_float(v, l, dtype),
        },
        CpuStorage::I64(v) => match dtype {
            // Through f64 would be more exact for huge ints, but f32 is the target anyway.
            DType::I64 => CpuStorage::I64(map1(v, l, |a| a).into()),
            DType::Bool => CpuStorage::Bool(map1(v, l, |a| a != 0).into()),
            _ => cast_from(v, x, dtype, |a| a as f32),
        },
        CpuStorage::Bool(v) => match dtype {
            DType::I64 => CpuStorage::I64(map1(v, l, |a| a as i64).into()),
            DType::Bool => CpuStorage::Bool(map1(v, l, |a| a).into()),
            _ => cast_from(v, x, dtype, |a| a as u8 as f32),
        },
        CpuStorage::Quantized(..) => unreachable!("handled above"),
    };
    Tensor::from_cpu_storage(out, x.shape())
}

/// `x` limited to `[min, max]` (either bound optional). NaN stays NaN.
pub(crate) fn clamp(x: &Tensor, min: Option<f64>, max: Option<f64>) -> Result<Tensor> {
    let l = x.layout();
    fn clamp_float<T: FloatElem>(v: &[T], l: &crate::Layout, lo: f32, hi: f32) -> CpuStorage {
        T::into_storage(map1(v, l, |a: T| {
            let a = a.to_f32();
            T::from_f32(if a < lo {
                lo
            } else if a > hi {
                hi
            } else {
                a
            })
        }))
    }
    let lo = min.unwrap_or(f64::NEG_INFINITY);
    let hi = max.unwrap_or(f64::INFINITY);
    let out = match storage(x) {
        CpuStorage::F32(v) => clamp_float(v, l, lo as f32, hi as f32),
        CpuStorage::F16(v) => clamp_float(v, l, lo as f32, hi as f32),
        CpuStorage::BF16(v) => clamp_float(v, l, lo as f32, hi as f32),
        CpuStorage::I64(v) => {
            // Integer bounds: the smallest int >= min and the largest int <= max.
            let lo = if lo.is_finite() {
                lo.ceil() as i64
            } else {
                i64::MIN
            };
            let hi = if hi.is_finite() {
                hi.floor() as i64
            } else {
                i64::MAX
            };
            CpuStorage::I64(map1(v, l, |a: i64| a.max(lo).min(hi)).into())
        }
        CpuStorage::Bool(_) => bail!("clamp: not supported for bool tensors"),
        CpuStorage::Quantized(q, ..) => return Err(quantized_unsupported("clamp", q.dtype())),
    };
    Tensor::from_cpu_storage(out, x.shape())
}

/// `a` where `cond` is true, else `b`; all three of one shape, `cond` bool, `a` and `b` of
/// one dtype.
pub(crate) fn where_cond(cond: &Tensor, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let CpuStorage::Bool(c) = storage(cond) else {
        bail!(
            "where: the condition must be a bool tensor, got {}",
            cond.dtype()
        );
    };
    let lc = cond.layout();
    macro_rules! go {
        ($va:expr, $vb:expr, $variant:ident) => {
            CpuStorage::$variant(
                map3(
                    (c.as_slice(), lc),
                    ($va.as_slice(), a.layout()),
                    ($vb.as_slice(), b.layout()),
                    |k, p, q| {
                        if k { p } else { q }
                    },
                )
                .into(),
            )
        };
    }
    let out = match (storage(a), storage(b)) {
        (CpuStorage::F32(va), CpuStorage::F32(vb)) => go!(va, vb, F32),
        (CpuStorage::F16(va), CpuStorage::F16(vb)) => go!(va, vb, F16),
        (CpuStorage::BF16(va), CpuStorage::BF16(vb)) => go!(va, vb, BF16),
        (CpuStorage::I64(va), CpuStorage::I64(vb)) => go!(va, vb, I64),
        (CpuStorage::Bool(va), CpuStorage::Bool(vb)) => go!(va, vb, Bool),
        (p, q) => bail!(
            "where: branches have different dtypes ({} and {})",
            p.dtype(),
            q.dtype()
        ),
    };
    Tensor::from_cpu_storage(out, a.shape())
}

/// A new tensor of `shape` with every element `value`.
pub(crate) fn full(shape: &[usize], value: f64, dtype: DType) -> Result<Tensor> {
    let n: usize = shape.iter().product();
    let out = match dtype {
        DType::F32 => CpuStorage::F32(vec![value as f32; n].into()),
        DType::F16 => CpuStorage::F16(vec![f16::from_f64(value); n].into()),
        DType::BF16 => CpuStorage::BF16(vec![bf16::from_f64(value); n].into()),
        DType::I64 => CpuStorage::I64(vec![value as i64; n].into()),
        DType::Bool => CpuStorage::Bool(vec![value != 0.0; n].into()),
        q => bail!("full: cannot fill a {q} tensor directly (fill a float32 one and cast it)"),
    };
    Tensor::from_cpu_storage(out, shape)
}
