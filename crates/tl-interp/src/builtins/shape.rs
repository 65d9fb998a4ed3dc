//! Shape builtins: metadata (`shape rank numel dtype`), views and copies that rearrange
//! elements (`reshape view transpose permute ...`), joining and splitting (`concat stack split`),
//! indexing (`slice narrow select gather index_select slice_last`) and dtype casts.

use tl_tensor::Tensor;
use tl_tensor::layout::normalize_dim;

use super::args::{at_call, parse_dtype};
use super::{Builtin, CallArgs};
use crate::convert;
use crate::error::Result;
use crate::interp::Interpreter;
use crate::value::Value;

pub static BUILTINS: &[Builtin] = &[
    Builtin {
        name: "shape",
        signature: "shape(x: tensor) -> list[int]",
        category: "shape",
        doc: "The sizes of x's dimensions as a list of host ints (`[2, 3]`; `[]` for a rank-0 \
              tensor). This is host metadata: it never reads the tensor's data and never waits \
              on a device, so it is free to call inside a generation loop. A (nested) list \
              argument is measured as the tensor it would make. Errors: an argument that is not \
              a tensor or list, a count other than 1.",
        func: shape,
    },
    Builtin {
        name: "rank",
        signature: "rank(x: tensor) -> int",
        category: "shape",
        doc: "The number of dimensions of `x` as a host int (0 for a scalar tensor, 2 for a \
              matrix). Host metadata only: the data is not read. Errors: an argument that is not \
              a tensor, a count other than 1.",
        func: rank,
    },
    Builtin {
        name: "numel",
        signature: "numel(x: tensor) -> int",
        category: "shape",
        doc: "The number of elements of `x` (the product of its shape) as a host int. Host \
              metadata only: the data is not read. Errors: an argument that is not a tensor, a \
              count other than 1.",
        func: numel,
    },
    Builtin {
        name: "dtype",
        signature: "dtype(x: tensor) -> string",
        category: "shape",
        doc: "The element type of `x` as a string: \"float32\", \"float16\", \"bfloat16\", \
              \"int64\" or \"bool\" (the names `cast` and `dtype:` accept). Host metadata only. \
              Errors: an argument that is not a tensor, a count other than 1.",
        func: dtype,
    },
    Builtin {
        name: "reshape",
        signature: "reshape(x: tensor, shape...) -> tensor",
        category: "shape",
        doc: "`x` with a new shape holding the same elements in the same row-major order. The \
              shape is a list of ints (`reshape(x, [2, -1])`), a 1-D int tensor, or ints as \
              separate arguments (`reshape(x, 2, -1)`); one size may be -1 and is inferred. A \
              view of the same data when x is contiguous, else a copy. Errors: a shape whose \
              element count differs from x's (both shapes named), more than one -1, a size below \
              -1.",
        func: reshape,
    },
    Builtin {
        name: "view",
        signature: "view(x: tensor, shape...) -> tensor",
        category: "shape",
        doc: "Like `reshape` (shape as a list, an int tensor or separate ints, one -1 inferred) \
              but never copies: the result always shares x's data. Errors: x is not contiguous \
              (after a transpose or permute; call `contiguous(x)` or use `reshape`), an element \
              count that differs (both shapes named), more than one -1.",
        func: view,
    },
    Builtin {
        name: "broadcast_to",
        signature: "broadcast_to(x: tensor, shape...) -> tensor",
        category: "shape",
        doc: "`x` expanded to `shape` by NumPy broadcasting rules (sizes of 1 stretch, missing \
              leading dims are added), as a view that repeats elements without copying. The \
              shape is a list of ints, an int tensor or separate ints. Errors: a shape x cannot \
              be broadcast to (both shapes named), negative sizes.",
        func: broadcast_to,
    },
    Builtin {
        name: "transpose",
        signature: "transpose(x: tensor, d0: int = -2, d1: int = -1) -> tensor",
        category: "shape",
        doc: "`x` with dimensions `d0` and `d1` swapped, as a view (no copy). Without dims the \
              last two are swapped, so `transpose(m)` is the matrix transpose; negative dims \
              count from the end. Give both dims or neither. Errors: a dim out of range (a 1-D \
              tensor has no last two dims), exactly one dim given, non-int dims.",
        func: transpose,
    },
    Builtin {
        name: "permute",
        signature: "permute(x: tensor, dims...) -> tensor",
        category: "shape",
        doc: "`x` with its dimensions reordered, as a view: result dimension i is x's dimension \
              dims[i]. `dims` is a list (`permute(x, [0, 2, 1])`) or separate ints \
              (`permute(x, 0, 2, 1)`), negative counting from the end. Errors: dims that are not \
              a permutation of 0..rank (wrong count, repeated or out of range).",
        func: permute,
    },
    Builtin {
        name: "squeeze",
        signature: "squeeze(x: tensor, dim: int = all) -> tensor",
        category: "shape",
        doc: "`x` with dimensions of size 1 removed, as a view. Without `dim` every size-1 \
              dimension goes; with `dim` (positional or `dim:`, negative from the end) only that \
              one, and only if its size is 1 (otherwise x is returned unchanged, as in PyTorch). \
              Errors: a dim out of range for x's rank.",
        func: squeeze,
    },
    Builtin {
        name: "unsqueeze",
        signature: "unsqueeze(x: tensor, dim: int) -> tensor",
        category: "shape",
        doc: "`x` with a new dimension of size 1 inserted at position `dim` (0..=rank; negative \
              counts from the end, so -1 appends), as a view. `unsqueeze(v, 0)` turns a vector of \
              shape [n] into a row [1, n]. Errors: a dim out of range, a missing dim.",
        func: unsqueeze,
    },
    Builtin {
        name: "flatten",
        signature: "flatten(x: tensor) -> tensor",
        category: "shape",
        doc: "The elements of `x` as a 1-D tensor of length numel(x), in row-major order (a view \
              when x is contiguous, else a copy). A rank-0 tensor becomes shape [1]. Errors: an \
              argument that is not a tensor, a count other than 1.",
        func: flatten,
    },
    Builtin {
        name: "contiguous",
        signature: "contiguous(x: tensor) -> tensor",
        category: "shape",
        doc: "`x` laid out row-major without gaps: x itself when it already is, else a copy. \
              Useful before `view` after a transpose or permute. The shape, dtype and values are \
              unchanged. Errors: an argument that is not a tensor, a count other than 1.",
        func: contiguous,
    },
    Builtin {
        name: "concat",
        signature: "concat(tensors: list | tensor..., dim: int = 0) -> tensor",
        category: "shape",
        doc: "Joins tensors end to end along an existing dimension. Either a list of tensors \
              then the dim (`concat([a, b], 1)`), or the tensors as separate arguments with the \
              dim as `dim:` (`concat(a, b, dim: 1)`); dim defaults to 0 and may be negative. All \
              tensors need the same rank and the same sizes in every other dimension; dtypes are \
              promoted. Errors: an empty list, ranks or sizes that disagree (the shapes named), a \
              dim out of range.",
        func: concat,
    },
    Builtin {
        name: "stack",
        signature: "stack(tensors: list | tensor..., dim: int = 0) -> tensor",
        category: "shape",
        doc: "Joins tensors of one shape along a NEW dimension inserted at `dim`: stacking n \
              tensors of shape [a, b] at dim 0 gives [n, a, b]. Either a list of tensors then \
              the dim (`stack([a, b], 1)`), or the tensors as separate arguments with `dim:`; \
              dim defaults to 0, may be negative (-1 appends), and dtypes are promoted. Errors: \
              an empty list, shapes that differ (named), a dim out of range.",
        func: stack,
    },
    Builtin {
        name: "split",
        signature: "split(x: tensor, size: int, dim: int = 0) -> list[tensor]",
        category: "shape",
        doc: "Cuts `x` along `dim` (default 0, negative from the end; positional or `dim:`) into \
              pieces of `size` elements each, the last one smaller when size does not divide the \
              dimension; returns them as a list of views. Errors: a size below 1, a dim out of \
              range.",
        func: split,
    },
    Builtin {
        name: "slice",
        signature: "slice(x: tensor, dim: int, start: int, end: int, step: int = 1) -> tensor",
        category: "shape",
        doc: "The elements of `x` from `start` up to but excluding `end` along `dim`, every \
              `step`-th one, as a view: the same as `x[start:end:step]` on that dimension. \
              Negative start/end count from the end and ends beyond the size are clamped, like \
              Python slices; the other dimensions are unchanged. Errors: a step below 1, a dim out \
              of range, non-int bounds.",
        func: slice,
    },
    Builtin {
        name: "narrow",
        signature: "narrow(x: tensor, dim: int, start: int, len: int) -> tensor",
        category: "shape",
        doc: "The `len` elements of `x` starting at `start` along `dim`, as a view (the other \
              dimensions unchanged); a negative start counts from the end. Errors: a range that \
              does not fit in the dimension (start + len > size), a negative len, a dim out of \
              range.",
        func: narrow,
    },
    Builtin {
        name: "select",
        signature: "select(x: tensor, dim: int, index: int) -> tensor",
        category: "shape",
        doc: "The slice of `x` at position `index` along `dim`, with that dimension removed (a \
              view): `select(m, 0, 2)` is row 2 of a matrix, like `m[2]`. Negative dim and index \
              count from the end. Errors: an index out of bounds for the dimension (its size \
              named), a dim out of range.",
        func: select,
    },
    Builtin {
        name: "slice_last",
        signature: "slice_last(x: tensor) -> tensor",
        category: "shape",
        doc: "The last row of `x` along dimension 0, keeping the rank: for logits of shape \
              [seq, vocab] it gives [1, vocab] (the prediction for the last position). Kept for \
              programs written for the earlier interpreter; the same as `narrow(x, 0, -1, 1)`. \
              Errors: a rank-0 tensor, an empty dimension 0.",
        func: slice_last,
    },
    Builtin {
        name: "repeat",
        signature: "repeat(x: tensor, reps...) -> tensor",
        category: "shape",
        doc: "`x` tiled: dimension i is repeated reps[i] times (as PyTorch's `Tensor.repeat`), \
              so `repeat([1, 2], [3])` is [1, 2, 1, 2, 1, 2]. `reps` is a list or separate ints \
              and may be longer than x's rank (x then gains leading dims). The result is a copy. \
              Errors: fewer reps than x has dims, negative reps.",
        func: repeat,
    },
    Builtin {
        name: "gather",
        signature: "gather(x: tensor, dim: int, index: tensor) -> tensor",
        category: "shape",
        doc: "Picks elements of `x` along `dim` at the positions held in `index` (as \
              torch.gather): out[i][j] = x[index[i][j]][j] for dim 0, and likewise for other \
              dims. `index` is an int tensor (or a list of ints) of x's rank; the result has \
              index's shape and x's dtype. Errors: an index out of bounds, ranks that differ, \
              index sizes larger than x's in the other dims.",
        func: gather,
    },
    Builtin {
        name: "index_select",
        signature: "index_select(x: tensor, dim: int, index: tensor | list | int) -> tensor",
        category: "shape",
        doc: "The slices of `x` at the given positions along `dim`, in the order given \
              (repeats allowed): `index_select(m, 0, [2, 0])` is rows 2 and 0 of m. `index` is a \
              1-D int tensor, a list of ints or one host int; the result has x's shape with \
              dimension `dim` replaced by the number of indices. Errors: an index out of bounds, \
              an index tensor that is not 1-D, a dim out of range.",
        func: index_select,
    },
    Builtin {
        name: "cast",
        signature: "cast(x: tensor, dtype: string) -> tensor",
        category: "shape",
        doc: "`x` converted to another element type: \"float32\"/\"f32\", \"float16\"/\"f16\", \
              \"bfloat16\"/\"bf16\", \"int64\"/\"i64\" or \"bool\" (second argument or `dtype:`). \
              Floats to ints truncate toward zero, anything to bool is `!= 0`, f32 to f16 rounds \
              to nearest. Returns x itself when the dtype already matches. Errors: a missing or \
              unknown dtype.",
        func: cast,
    },
    Builtin {
        name: "to_dtype",
        signature: "to_dtype(x: tensor, dtype: string) -> tensor",
        category: "shape",
        doc: "The same as `cast`: `x` converted to the element type named by the second argument \
              or `dtype:` (\"float32\", \"float16\", \"bfloat16\", \"int64\", \"bool\" or \"f32\", \
              \"f16\", \"bf16\", \"i64\"). Floats to ints truncate toward zero. Errors: a missing or \
              unknown dtype.",
        func: cast,
    },
];

/// Exactly one positional argument, a tensor, and no named ones.
fn one_tensor(args: &CallArgs) -> Result<Tensor> {
    args.expect_named(&[])?;
    args.expect_count(1, 1)?;
    args.tensor(0)
}

fn shape(_: &mut Interpreter, args: &mut CallArgs) -> Result<Value> {
    let x = one_tensor(args)?;
    let dims = x.shape().iter().map(|&d| Value::Int(d as i64)).collect();
    Ok(Value::List(std::rc::Rc::new(dims)))
}

fn rank(_: &mut Interpreter, args: &mut CallArgs) -> Result<Value> {
    Ok(Value::Int(one_tensor(args)?.rank() as i64))
}

fn numel(_: &mut Interpreter, args: &mut CallArgs) -> Result<Value> {
    Ok(Value::Int(one_tensor(args)?.numel() as i64))
}

fn dtype(_: &mut Interpreter, args: &mut CallArgs) -> Result<Value> {
    Ok(Value::str(one_tensor(args)?.dtype().name()))
}

fn to_isize(v: Vec<i64>) -> Vec<isize> {
    v.into_iter().map(|d| d as isize).collect()
}

fn reshape(_: &mut Interpreter, args: &mut CallArgs) -> Result<Value> {
    args.expect_named(&[])?;
    let x = args.tensor(0)?;
    let shape = to_isize(args.signed_shape_arg(1)?);
    at_call(args, x.reshape(&shape)).map(Value::Tensor)
}

fn view(_: &mut Interpreter, args: &mut CallArgs) -> Result<Value> {
    args.expect_named(&[])?;
    let x = args.tensor(0)?;
    let shape = to_isize(args.signed_shape_arg(1)?);
    at_call(args, x.view(&shape)).map(Value::Tensor)
}

fn broadcast_to(_: &mut Interpreter, args: &mut CallArgs) -> Result<Value> {
    args.expect_named(&[])?;
    let x = args.tensor(0)?;
    let shape = args.shape_arg(1)?;
    at_call(args, x.broadcast_to(&shape)).map(Value::Tensor)
}

fn transpose(_: &mut Interpreter, args: &mut CallArgs) -> Result<Value> {
    args.expect_named(&[])?;
    args.expect_count(1, 3)?;
    if args.len() == 2 {
        return Err(args.error("give both dimensions to swap, or neither (the last two)"));
    }
    let x = args.tensor(0)?;
    let (d0, d1) = if args.len() == 3 {
        (args.int(1)? as isize, args.int(2)? as isize)
    } else {
        (-2, -1)
    };
    at_call(args, x.transpose(d0, d1)).map(Value::Tensor)
}

fn permute(_: &mut Interpreter, args: &mut CallArgs) -> Result<Value> {
    args.expect_named(&[])?;
    let x = args.tensor(0)?;
    let dims = to_isize(args.int_varargs(1, "dims")?);
    at_call(args, x.permute(&dims)).map(Value::Tensor)
}

fn squeeze(_: &mut Interpreter, args: &mut CallArgs) -> Result<Value> {
    args.expect_named(&["dim"])?;
    args.expect_count(1, 2)?;
    let x = args.tensor(0)?;
    let dim = args.opt_dim(1, "dim")?;
    at_call(args, x.squeeze(dim)).map(Value::Tensor)
}

fn unsqueeze(_: &mut Interpreter, args: &mut CallArgs) -> Result<Value> {
    args.expect_named(&["dim"])?;
    args.expect_count(1, 2)?;
    let x = args.tensor(0)?;
    let dim = args
        .opt_dim(1, "dim")?
        .ok_or_else(|| args.error("missing the dimension to insert (argument 2 or `dim:`)"))?;
    at_call(args, x.unsqueeze(dim)).map(Value::Tensor)
}

fn flatten(_: &mut Interpreter, args: &mut CallArgs) -> Result<Value> {
    let x = one_tensor(args)?;
    at_call(args, x.flatten()).map(Value::Tensor)
}

fn contiguous(_: &mut Interpreter, args: &mut CallArgs) -> Result<Value> {
    let x = one_tensor(args)?;
    at_call(args, x.contiguous()).map(Value::Tensor)
}

/// The tensors and dim of `concat`/`stack`: `f([a, b], dim)`, `f([a, b], dim: d)` or
/// `f(a, b, ..., dim: d)` (a trailing host int after tensors is also taken as the dim).
fn tensors_and_dim(args: &CallArgs) -> Result<(Vec<Tensor>, isize)> {
    args.expect_named(&["dim"])?;
    if args.is_empty() {
        return Err(args.error("missing the tensors to join"));
    }
    if let Some(Value::List(items)) = args.get(0) {
        args.expect_count(1, 2)?;
        let tensors = items
            .iter()
            .enumerate()
            .map(|(k, item)| {
                convert::to_tensor(item).ok_or_else(|| {
                    args.arg_error(
                        0,
                        format!(
                            "list item {} must be a tensor, got {}",
                            k + 1,
                            item.type_name()
                        ),
                    )
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let dim = args.opt_dim(1, "dim")?.unwrap_or(0);
        return Ok((tensors, dim));
    }
    let mut count = args.len();
    let mut dim = None;
    if count >= 2 && matches!(args.get(count - 1), Some(Value::Int(_))) {
        count -= 1;
        dim = Some(args.int(count)? as isize);
    }
    if let Some(named) = args.opt_int(None, "dim")? {
        if dim.is_some() {
            return Err(args.error("the dim is given twice (as the last argument and as `dim:`)"));
        }
        dim = Some(named as isize);
    }
    let tensors = (0..count)
        .map(|i| args.tensor(i))
        .collect::<Result<Vec<_>>>()?;
    Ok((tensors, dim.unwrap_or(0)))
}

fn concat(_: &mut Interpreter, args: &mut CallArgs) -> Result<Value> {
    let (tensors, dim) = tensors_and_dim(args)?;
    if tensors.is_empty() {
        return Err(args.error("needs at least one tensor"));
    }
    at_call(args, Tensor::concat(&tensors, dim)).map(Value::Tensor)
}

fn stack(_: &mut Interpreter, args: &mut CallArgs) -> Result<Value> {
    let (tensors, dim) = tensors_and_dim(args)?;
    if tensors.is_empty() {
        return Err(args.error("needs at least one tensor"));
    }
    at_call(args, Tensor::stack(&tensors, dim)).map(Value::Tensor)
}

fn split(_: &mut Interpreter, args: &mut CallArgs) -> Result<Value> {
    args.expect_named(&["dim"])?;
    args.expect_count(2, 3)?;
    let x = args.tensor(0)?;
    let size = args.int(1)?;
    let size = usize::try_from(size)
        .ok()
        .filter(|&s| s >= 1)
        .ok_or_else(|| {
            args.arg_error(1, format!("the piece size must be at least 1, got {size}"))
        })?;
    let dim = args.opt_dim(2, "dim")?.unwrap_or(0);
    let pieces = at_call(args, x.split(size, dim))?;
    Ok(Value::List(std::rc::Rc::new(
        pieces.into_iter().map(Value::Tensor).collect(),
    )))
}

fn slice(_: &mut Interpreter, args: &mut CallArgs) -> Result<Value> {
    args.expect_named(&[])?;
    args.expect_count(4, 5)?;
    let x = args.tensor(0)?;
    let dim = args.int(1)? as isize;
    let start = args.int(2)? as isize;
    let end = args.int(3)? as isize;
    let step = if args.len() == 5 { args.int(4)? } else { 1 };
    let step = usize::try_from(step)
        .ok()
        .filter(|&s| s >= 1)
        .ok_or_else(|| args.arg_error(4, format!("the step must be at least 1, got {step}")))?;
    at_call(args, x.slice(dim, Some(start), Some(end), step)).map(Value::Tensor)
}

fn narrow(_: &mut Interpreter, args: &mut CallArgs) -> Result<Value> {
    args.expect_named(&[])?;
    args.expect_count(4, 4)?;
    let x = args.tensor(0)?;
    let dim = args.int(1)? as isize;
    let d = at_call(args, normalize_dim("narrow", dim, x.rank()))?;
    let size = x.shape()[d] as i64;
    let start = args.int(2)?;
    let len = args.int(3)?;
    let start_abs = if start < 0 { start + size } else { start };
    if start_abs < 0 || len < 0 || start_abs.checked_add(len).is_none_or(|end| end > size) {
        return Err(args.error(format!(
            "start {start} and length {len} do not fit in dimension {dim} of size {size} (shape {:?})",
            x.shape()
        )));
    }
    at_call(args, x.narrow(dim, start_abs as usize, len as usize)).map(Value::Tensor)
}

fn select(_: &mut Interpreter, args: &mut CallArgs) -> Result<Value> {
    args.expect_named(&[])?;
    args.expect_count(3, 3)?;
    let x = args.tensor(0)?;
    let dim = args.int(1)? as isize;
    let index = args.int(2)? as isize;
    at_call(args, x.select(dim, index)).map(Value::Tensor)
}

fn slice_last(_: &mut Interpreter, args: &mut CallArgs) -> Result<Value> {
    let x = one_tensor(args)?;
    match x.shape().first() {
        None => Err(args.error("needs a tensor of rank 1 or more, got a rank-0 tensor")),
        Some(0) => Err(args.error(format!(
            "dimension 0 is empty (shape {:?}): there is no last row",
            x.shape()
        ))),
        Some(&n) => at_call(args, x.narrow(0, n - 1, 1)).map(Value::Tensor),
    }
}

fn repeat(_: &mut Interpreter, args: &mut CallArgs) -> Result<Value> {
    args.expect_named(&[])?;
    let x = args.tensor(0)?;
    let reps = args.int_varargs(1, "repetitions")?;
    let reps = reps
        .iter()
        .map(|&r| {
            usize::try_from(r).map_err(|_| {
                args.arg_error(1, format!("repetitions must be non-negative, got {reps:?}"))
            })
        })
        .collect::<Result<Vec<_>>>()?;
    at_call(args, x.repeat(&reps)).map(Value::Tensor)
}

fn gather(_: &mut Interpreter, args: &mut CallArgs) -> Result<Value> {
    args.expect_named(&[])?;
    args.expect_count(3, 3)?;
    let x = args.tensor(0)?;
    let dim = args.int(1)? as isize;
    let index = args.index_tensor(2)?;
    at_call(args, x.gather(dim, &index)).map(Value::Tensor)
}

fn index_select(_: &mut Interpreter, args: &mut CallArgs) -> Result<Value> {
    args.expect_named(&[])?;
    args.expect_count(3, 3)?;
    let x = args.tensor(0)?;
    let dim = args.int(1)? as isize;
    let mut index = args.index_tensor(2)?;
    if index.rank() == 0 {
        index = at_call(args, index.reshape(&[1]))?;
    }
    at_call(args, x.index_select(dim, &index)).map(Value::Tensor)
}

fn cast(_: &mut Interpreter, args: &mut CallArgs) -> Result<Value> {
    args.expect_named(&["dtype"])?;
    args.expect_count(1, 2)?;
    let x = args.tensor(0)?;
    let target = match args.positional_or_named(1, "dtype")? {
        Some((v, span)) => parse_dtype(v)
            .map_err(|m| crate::error::RuntimeError::new(format!("{}: {m}", args.name), span))?,
        None => return Err(args.error("missing the dtype (argument 2 or `dtype:`)")),
    };
    if target == x.dtype() {
        return Ok(Value::Tensor(x));
    }
    at_call(args, x.cast(target)).map(Value::Tensor)
}
