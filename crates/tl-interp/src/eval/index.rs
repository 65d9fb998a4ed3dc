//! Indexing and slicing (`l[i]`, `s[1:3]`, `x[i, 1:3, ::2]`) and indexed assignment
//! (`l[i] = v`, `x[1:3, 0] = t`), which builds a new value (copy on write).

use std::rc::Rc;

use tl_syntax::Span;
use tl_syntax::ast::IndexArg;
use tl_tensor::{DType, Tensor};

use super::stmt::describe_kind;
use crate::error::{Result, RuntimeError};
use crate::interp::Interpreter;
use crate::value::Value;

/// One evaluated index.
pub(crate) enum Ix {
    /// A single position (removes the dimension of a tensor).
    At(i64),
    /// `start:end:step`, Python semantics.
    Slice {
        start: Option<i64>,
        end: Option<i64>,
        step: i64,
    },
    /// A 1-D int64 tensor of positions (`x[ids]`), keeping the dimension.
    Take(Tensor),
}

impl Interpreter {
    pub(crate) fn eval_indices(&mut self, indices: &[IndexArg]) -> Result<Vec<(Ix, Span)>> {
        let mut out = Vec::with_capacity(indices.len());
        for ix in indices {
            match ix {
                IndexArg::Expr(e) => {
                    let v = self.eval(e)?;
                    out.push((index_of(&v, e.span)?, e.span));
                }
                IndexArg::Slice { start, end, step } => {
                    let mut span = None;
                    let mut bound = |interp: &mut Interpreter,
                                     e: &Option<tl_syntax::ast::Expr>|
                     -> Result<Option<i64>> {
                        match e {
                            None => Ok(None),
                            Some(e) => {
                                span = Some(span.map_or(e.span, |s: Span| s.to(e.span)));
                                let v = interp.eval(e)?;
                                slice_bound(&v, e.span).map(Some)
                            }
                        }
                    };
                    let start = bound(self, start)?;
                    let end = bound(self, end)?;
                    let step_value = bound(self, step)?;
                    let span = span.unwrap_or(self.current_span);
                    let step = step_value.unwrap_or(1);
                    if step <= 0 {
                        return Err(RuntimeError::new(
                            format!("slice step must be positive, got {step}"),
                            span,
                        ));
                    }
                    out.push((Ix::Slice { start, end, step }, span));
                }
                IndexArg::Normalized(name) => {
                    return Err(RuntimeError::new(
                        format!(
                            "the normalised index `{name}.` belongs on the left side of a tensor equation"
                        ),
                        self.current_span,
                    ));
                }
                IndexArg::Virtual(name, _) => {
                    return Err(RuntimeError::new(
                        format!("the virtual index `*{name}` can only appear in a tensor equation"),
                        self.current_span,
                    ));
                }
            }
        }
        Ok(out)
    }
}

fn index_of(v: &Value, span: Span) -> Result<Ix> {
    match v {
        Value::Int(i) => Ok(Ix::At(*i)),
        Value::Tensor(t) if !t.dtype().is_float() && t.dtype() != DType::Bool => {
            if t.numel() == 1 {
                Ok(Ix::At(t.to_vec_i64()[0]))
            } else if t.rank() == 1 {
                Ok(Ix::Take(t.clone()))
            } else {
                Err(RuntimeError::new(
                    format!(
                        "an index tensor must have rank 0 or 1, got shape {:?}",
                        t.shape()
                    ),
                    span,
                ))
            }
        }
        Value::List(items) if items.iter().all(|i| matches!(i, Value::Int(_))) => {
            let ids: Vec<i64> = items
                .iter()
                .map(|i| match i {
                    Value::Int(n) => *n,
                    _ => 0,
                })
                .collect();
            let n = ids.len();
            Ok(Ix::Take(Tensor::from_i64(ids, &[n])?))
        }
        other => Err(RuntimeError::new(
            format!("an index must be an int, got {}", describe_kind(other)),
            span,
        )),
    }
}

fn slice_bound(v: &Value, span: Span) -> Result<i64> {
    match crate::convert::to_int(v) {
        Some(i) if !matches!(v, Value::Bool(_)) => Ok(i),
        _ => Err(RuntimeError::new(
            format!("a slice bound must be an int, got {}", describe_kind(v)),
            span,
        )),
    }
}

/// A position in `0..len` from a possibly negative index.
fn position(i: i64, len: usize, span: Span, what: &str) -> Result<usize> {
    let n = len as i64;
    let p = if i < 0 { i + n } else { i };
    if p < 0 || p >= n {
        return Err(RuntimeError::new(
            format!("index {i} is out of bounds for {what} of size {len}"),
            span,
        ));
    }
    Ok(p as usize)
}

/// The positions a Python slice selects in a sequence of `len` items (step >= 1).
fn slice_positions(start: Option<i64>, end: Option<i64>, step: i64, len: usize) -> Vec<usize> {
    let n = len as i64;
    let clamp = |i: i64| -> i64 {
        let i = if i < 0 { i + n } else { i };
        i.clamp(0, n)
    };
    let s = start.map_or(0, clamp);
    let e = end.map_or(n, clamp);
    let mut out = Vec::new();
    let mut i = s;
    while i < e {
        out.push(i as usize);
        i += step;
    }
    out
}

fn one_index_only(kind: &str, ixs: &[(Ix, Span)], span: Span) -> Result<()> {
    if ixs.len() != 1 {
        return Err(RuntimeError::new(
            format!("a {kind} takes one index, got {}", ixs.len()),
            span,
        ));
    }
    Ok(())
}

/// `base[ixs]`.
pub(crate) fn index_value(base: &Value, ixs: &[(Ix, Span)], span: Span) -> Result<Value> {
    match base {
        Value::Object(o) => {
            one_index_only(o.type_name(), ixs, span)?;
            let what = format!("a {}", o.type_name());
            let (ix, ix_span) = &ixs[0];
            let Ix::At(i) = ix else {
                return Err(RuntimeError::new(
                    format!("{what} takes one int index, not a slice or a tensor"),
                    *ix_span,
                ));
            };
            match o.index(*i) {
                Some(r) => r.map_err(|m| RuntimeError::new(m, *ix_span)),
                None => Err(RuntimeError::new(format!("{what} cannot be indexed"), span)),
            }
        }
        Value::List(items) => {
            one_index_only("list", ixs, span)?;
            let (ix, ix_span) = &ixs[0];
            match ix {
                Ix::At(i) => Ok(items[position(*i, items.len(), *ix_span, "a list")?].clone()),
                Ix::Slice { start, end, step } => Ok(Value::List(Rc::new(
                    slice_positions(*start, *end, *step, items.len())
                        .into_iter()
                        .map(|p| items[p].clone())
                        .collect(),
                ))),
                Ix::Take(t) => {
                    let mut out = Vec::with_capacity(t.numel());
                    for i in t.to_vec_i64() {
                        out.push(items[position(i, items.len(), *ix_span, "a list")?].clone());
                    }
                    Ok(Value::List(Rc::new(out)))
                }
            }
        }
        Value::Str(s) => {
            one_index_only("string", ixs, span)?;
            let chars: Vec<char> = s.chars().collect();
            let (ix, ix_span) = &ixs[0];
            match ix {
                Ix::At(i) => Ok(Value::str(
                    chars[position(*i, chars.len(), *ix_span, "a string")?].to_string(),
                )),
                Ix::Slice { start, end, step } => Ok(Value::str(
                    slice_positions(*start, *end, *step, chars.len())
                        .into_iter()
                        .map(|p| chars[p])
                        .collect::<String>(),
                )),
                Ix::Take(_) => Err(RuntimeError::new(
                    "a string is indexed by an int or a slice",
                    *ix_span,
                )),
            }
        }
        Value::Tensor(t) => index_tensor(t, ixs, span).map(Value::Tensor),
        other => Err(RuntimeError::new(
            format!("{} cannot be indexed", describe_kind(other)),
            span,
        )),
    }
}

fn index_tensor(t: &Tensor, ixs: &[(Ix, Span)], span: Span) -> Result<Tensor> {
    if ixs.len() > t.rank() {
        return Err(RuntimeError::new(
            format!(
                "too many indices for a tensor of shape {:?}: {} given, rank {}",
                t.shape(),
                ixs.len(),
                t.rank()
            ),
            span,
        ));
    }
    let mut out = t.clone();
    let mut dim = 0isize;
    for (ix, ix_span) in ixs {
        let located = |e: tl_tensor::TensorError| RuntimeError::from(e).at(*ix_span);
        match ix {
            Ix::At(i) => {
                let i = isize::try_from(*i).map_err(|_| {
                    RuntimeError::new(format!("index {i} is out of range"), *ix_span)
                })?;
                out = out.select(dim, i).map_err(located)?;
            }
            Ix::Slice { start, end, step } => {
                let start = start.map(|s| s.clamp(isize::MIN as i64, isize::MAX as i64) as isize);
                let end = end.map(|e| e.clamp(isize::MIN as i64, isize::MAX as i64) as isize);
                out = out
                    .slice(dim, start, end, *step as usize)
                    .map_err(located)?;
                dim += 1;
            }
            Ix::Take(ids) => {
                out = out.index_select(dim, ids).map_err(located)?;
                dim += 1;
            }
        }
    }
    Ok(out)
}

/// `slot[ixs] = value`. On error `slot` is unchanged.
pub(crate) fn set_index(
    slot: &mut Value,
    ixs: &[(Ix, Span)],
    value: Value,
    span: Span,
) -> Result<()> {
    match slot {
        Value::List(items) => {
            one_index_only("list", ixs, span)?;
            let (ix, ix_span) = &ixs[0];
            match ix {
                Ix::At(i) => {
                    let p = position(*i, items.len(), *ix_span, "a list")?;
                    Rc::make_mut(items)[p] = value;
                }
                Ix::Slice { start, end, step } => {
                    let positions = slice_positions(*start, *end, *step, items.len());
                    let Value::List(new_items) = &value else {
                        return Err(RuntimeError::new(
                            format!(
                                "a list slice can only be assigned a list, got {}",
                                describe_kind(&value)
                            ),
                            span,
                        ));
                    };
                    if *step == 1 {
                        // A contiguous slice may change length, as in Python.
                        let from = positions.first().copied().unwrap_or_else(|| {
                            let n = items.len() as i64;
                            start
                                .map_or(0, |s| (if s < 0 { s + n } else { s }).clamp(0, n) as usize)
                        });
                        let to = from + positions.len();
                        Rc::make_mut(items).splice(from..to, new_items.iter().cloned());
                    } else {
                        if positions.len() != new_items.len() {
                            return Err(RuntimeError::new(
                                format!(
                                    "cannot assign {} items to a slice of {} items",
                                    new_items.len(),
                                    positions.len()
                                ),
                                span,
                            ));
                        }
                        let new_items = new_items.clone();
                        let list = Rc::make_mut(items);
                        for (p, v) in positions.into_iter().zip(new_items.iter()) {
                            list[p] = v.clone();
                        }
                    }
                }
                Ix::Take(_) => {
                    return Err(RuntimeError::new(
                        "a list element is assigned by an int or a slice",
                        *ix_span,
                    ));
                }
            }
            Ok(())
        }
        Value::Tensor(t) => {
            let updated = assign_tensor(t, ixs, &value, span)?;
            *t = updated;
            Ok(())
        }
        Value::Str(_) => Err(RuntimeError::new(
            "strings cannot be changed in place; build a new string (for example with slices and `+`)",
            span,
        )),
        other => Err(RuntimeError::new(
            format!("{} cannot be indexed", describe_kind(other)),
            span,
        )),
    }
}

/// A copy of `t` with the region `ixs` selects replaced by `value` (broadcast to the region).
fn assign_tensor(t: &Tensor, ixs: &[(Ix, Span)], value: &Value, span: Span) -> Result<Tensor> {
    if t.is_tracked() || matches!(value, Value::Tensor(v) if v.is_tracked()) {
        return Err(RuntimeError::new(
            "not supported yet: the gradient of an indexed assignment (build the tensor with concat, stack or where instead)",
            span,
        ));
    }
    let shape = t.shape().to_vec();
    if ixs.len() > shape.len() {
        return Err(RuntimeError::new(
            format!(
                "too many indices for a tensor of shape {shape:?}: {} given, rank {}",
                ixs.len(),
                shape.len()
            ),
            span,
        ));
    }
    // The positions selected along each dimension, and the shape of the selected region.
    let mut per_dim: Vec<Vec<usize>> = Vec::with_capacity(shape.len());
    let mut region = Vec::new();
    for (d, &len) in shape.iter().enumerate() {
        match ixs.get(d) {
            Some((Ix::At(i), s)) => {
                per_dim.push(vec![position(*i, len, *s, &format!("dimension {d}"))?])
            }
            Some((Ix::Slice { start, end, step }, _)) => {
                let p = slice_positions(*start, *end, *step, len);
                region.push(p.len());
                per_dim.push(p);
            }
            Some((Ix::Take(ids), s)) => {
                let mut p = Vec::with_capacity(ids.numel());
                for i in ids.to_vec_i64() {
                    p.push(position(i, len, *s, &format!("dimension {d}"))?);
                }
                region.push(p.len());
                per_dim.push(p);
            }
            None => {
                region.push(len);
                per_dim.push((0..len).collect());
            }
        }
    }
    let source = match value {
        Value::Tensor(v) => v.clone(),
        Value::Int(i) if t.dtype() == DType::I64 => Tensor::from_i64(vec![*i], &[])?,
        other => match crate::convert::to_tensor(other) {
            Some(v) => v,
            None => {
                return Err(RuntimeError::new(
                    format!("cannot store {} in a tensor", describe_kind(other)),
                    span,
                ));
            }
        },
    };
    let source = source.broadcast_to(&region).map_err(|_| {
        RuntimeError::new(
            format!(
                "cannot assign a value of shape {:?} to a region of shape {region:?}",
                source.shape()
            ),
            span,
        )
    })?;
    let strides = tl_tensor::layout::contiguous_strides(&shape);
    let offsets = region_offsets(&per_dim, &strides);
    // Rebuilt on the host, then put back where `t` lives (a device tensor stays on its
    // device, so later ops do not mix devices).
    let rebuilt = if t.dtype() == DType::I64 {
        let mut data = t.to_vec_i64();
        for (o, v) in offsets.iter().zip(source.to_vec_i64()) {
            data[*o] = v;
        }
        Tensor::from_i64(data, &shape)?
    } else {
        let mut data = t.to_vec_f64();
        for (o, v) in offsets.iter().zip(source.to_vec_f64()) {
            data[*o] = v;
        }
        Tensor::from_f64(&data, &shape, t.dtype())?
    };
    Ok(rebuilt.to_device(t.device())?)
}

/// Row-major flat offsets of every element of the region (the Cartesian product of the
/// per-dimension positions).
fn region_offsets(per_dim: &[Vec<usize>], strides: &[usize]) -> Vec<usize> {
    let mut offsets = vec![0usize];
    for (positions, &stride) in per_dim.iter().zip(strides) {
        let mut next = Vec::with_capacity(offsets.len() * positions.len());
        for &o in &offsets {
            for &p in positions {
                next.push(o + p * stride);
            }
        }
        offsets = next;
    }
    offsets
}
