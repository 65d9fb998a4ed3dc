//! Elementwise ops with NumPy broadcasting and dtype promotion.

/// Elementwise functions of one tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UnaryOp {
    Neg,
    Abs,
    Exp,
    Log,
    Sqrt,
    Rsqrt,
    Sin,
    Cos,
    Tanh,
    Sigmoid,
    Relu,
    /// The erf form, as PyTorch's default.
    Gelu,
    Silu,
    /// `x > 0 -> 1 else 0`.
    Step,
    /// Logical not (bool).
    Not,
}

/// Elementwise functions of two broadcast tensors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
    Pow,
    Rem,
    Maximum,
    Minimum,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    And,
    Or,
}

use crate::cpu::elementwise::{binary_name, unary_name};
use crate::dtype::DType;
use crate::error::Result;
use crate::layout::broadcast_shapes;
use crate::tensor::Tensor;

impl UnaryOp {
    /// The op's lower-case name (`exp`, `silu`, ...), as used in messages.
    pub fn name(self) -> &'static str {
        unary_name(self)
    }

    /// True for the functions that need a float input (ints and bools are computed as f32).
    pub fn is_float_function(self) -> bool {
        !matches!(
            self,
            UnaryOp::Neg | UnaryOp::Abs | UnaryOp::Relu | UnaryOp::Step | UnaryOp::Not
        )
    }
}

impl BinaryOp {
    /// The op's lower-case name (`add`, `maximum`, ...), as used in messages.
    pub fn name(self) -> &'static str {
        binary_name(self)
    }

    /// True for comparisons and and/or, which return bool.
    pub fn returns_bool(self) -> bool {
        matches!(
            self,
            BinaryOp::Eq
                | BinaryOp::Ne
                | BinaryOp::Lt
                | BinaryOp::Le
                | BinaryOp::Gt
                | BinaryOp::Ge
                | BinaryOp::And
                | BinaryOp::Or
        )
    }

    fn is_arithmetic(self) -> bool {
        matches!(
            self,
            BinaryOp::Add
                | BinaryOp::Sub
                | BinaryOp::Mul
                | BinaryOp::Div
                | BinaryOp::Pow
                | BinaryOp::Rem
        )
    }
}

/// 0 for bool, 1 for ints, 2 for floats.
fn category(d: DType) -> u8 {
    match d {
        DType::Bool => 0,
        DType::I64 => 1,
        _ => 2,
    }
}

impl Tensor {
    /// The dtype two operands are computed in. As in PyTorch, a rank-0 operand (a host scalar
    /// lifted to a tensor) does not widen a tensor of the same or a higher kind: an f16 tensor
    /// times an f32 scalar stays f16. Otherwise [`DType::promote`].
    pub fn result_dtype(a: &Tensor, b: &Tensor) -> DType {
        let (da, db) = (a.dtype(), b.dtype());
        if a.rank() == 0 && b.rank() > 0 && category(da) <= category(db) {
            db
        } else if b.rank() == 0 && a.rank() > 0 && category(db) <= category(da) {
            da
        } else {
            DType::promote(da, db)
        }
    }

    /// `self` in `dtype`: shared when already of that dtype, else a converted copy (floats to
    /// ints truncate toward zero; anything to bool is "non-zero").
    pub fn cast(&self, dtype: DType) -> Result<Tensor> {
        if self.dtype() == dtype {
            return Ok(self.clone());
        }
        let out = self.backend().cast(self, dtype);
        crate::autograd::record_ok(out, &[self], || crate::autograd::Op::Cast)
    }

    /// Elementwise `op`. Int and bool inputs to float functions are computed as f32; `Not`
    /// treats non-zero as true and returns bool.
    pub fn unary(&self, op: UnaryOp) -> Result<Tensor> {
        crate::ops::refuse_quantized(op.name(), &[self])?;
        let x = match (op, self.dtype()) {
            (UnaryOp::Not, d) if d != DType::Bool => self.cast(DType::Bool)?,
            (op, DType::I64 | DType::Bool) if op.is_float_function() => self.cast(DType::F32)?,
            _ => self.clone(),
        };
        let out = x.backend().unary(op, &x);
        crate::autograd::record_ok(out, &[self], || crate::autograd::Op::Unary(op))
    }

    /// Elementwise `op` with NumPy broadcasting. Operands are converted to one dtype
    /// ([`Tensor::result_dtype`]; arithmetic on two bools is done in int64; and/or convert
    /// to bool). Comparisons and and/or return bool. Int `Div` is floor division and `Rem`
    /// takes the sign of the divisor (as Python); both fail on a zero divisor.
    pub fn binary(&self, op: BinaryOp, other: &Tensor) -> Result<Tensor> {
        crate::ops::refuse_quantized(op.name(), &[self, other])?;
        let name = op.name();
        let shape = broadcast_shapes(name, self.shape(), other.shape())?;
        let dtype = match op {
            BinaryOp::And | BinaryOp::Or => DType::Bool,
            _ => match Tensor::result_dtype(self, other) {
                DType::Bool if op.is_arithmetic() => DType::I64,
                d => d,
            },
        };
        let both = crate::device::co_locate(name, &[self, other], usize::MAX)?;
        if matches!(op, BinaryOp::Rem) {
            crate::autograd::refuse("%", &[self, other])?;
        }
        let out = {
            let _off = crate::autograd::no_grad();
            let a = both[0].cast(dtype)?.broadcast_to(&shape)?;
            let b = both[1].cast(dtype)?.broadcast_to(&shape)?;
            a.backend().binary(op, &a, &b)
        };
        crate::autograd::record_ok(out, &[self, other], || crate::autograd::Op::Binary(op))
    }

    /// Elements limited to `[min, max]`; a missing bound does not limit.
    pub fn clamp(&self, min: Option<f64>, max: Option<f64>) -> Result<Tensor> {
        crate::ops::refuse_quantized("clamp", &[self])?;
        if min.is_none() && max.is_none() {
            return Ok(self.clone());
        }
        let out = self.backend().clamp(self, min, max);
        crate::autograd::record_ok(out, &[self], || crate::autograd::Op::Clamp(min, max))
    }

    /// `a` where `cond` is true (non-zero), else `b`, all three broadcast together.
    pub fn where_cond(cond: &Tensor, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        crate::ops::refuse_quantized("where", &[cond, a, b])?;
        let ab = broadcast_shapes("where", a.shape(), b.shape())?;
        let shape = broadcast_shapes("where", cond.shape(), &ab)?;
        let dtype = Tensor::result_dtype(a, b);
        let all = crate::device::co_locate("where", &[cond, a, b], usize::MAX)?;
        let out = {
            let _off = crate::autograd::no_grad();
            let c = all[0].cast(DType::Bool)?.broadcast_to(&shape)?;
            let a = all[1].cast(dtype)?.broadcast_to(&shape)?;
            let b = all[2].cast(dtype)?.broadcast_to(&shape)?;
            c.backend().where_cond(&c, &a, &b)
        };
        crate::autograd::record_ok(out, &[cond, a, b], || crate::autograd::Op::Where)
    }
}
