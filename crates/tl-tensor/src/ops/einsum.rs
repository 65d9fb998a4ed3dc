//! `einsum`: Einstein summation over any valid spec.
//!
//! Plan: parse the spec into per-operand label lists (`...` expands to broadcast labels);
//! take diagonals for labels repeated within one operand (a strided view whose stride is the
//! sum of the repeated dims' strides); sum away labels that only one operand uses; then
//! contract the operands left to right, each pair mapped to one batched matrix product
//! ([batch, m, k] @ [batch, k, n]); finally sum what the output drops and permute to the
//! output order.

use crate::bail;
use crate::cpu::matmul::merge_dims;
use crate::dtype::DType;
use crate::error::{Result, shape_str};
use crate::layout::Layout;
use crate::ops::linalg::to_float_dtype;
use crate::tensor::Tensor;

/// Label ids: ASCII letters use their byte value (so sorting ids sorts letters the way NumPy
/// does), the dims covered by `...` use `ELLIPSIS_BASE + j`.
type Label = u32;
const ELLIPSIS_BASE: Label = 256;

fn label_name(l: Label) -> String {
    if l >= ELLIPSIS_BASE {
        format!("... dim {}", l - ELLIPSIS_BASE)
    } else {
        format!("'{}'", l as u8 as char)
    }
}

/// One term of the spec: letters before and after an optional `...`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Term {
    before: Vec<Label>,
    /// `Some(after)` when the term has an ellipsis.
    after: Option<Vec<Label>>,
}

impl Term {
    fn letters(&self) -> usize {
        self.before.len() + self.after.as_ref().map_or(0, |a| a.len())
    }
}

fn parse_term(spec: &str, text: &str) -> Result<Term> {
    let mut before = Vec::new();
    let mut after: Option<Vec<Label>> = None;
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c == b'.' {
            if !text[i..].starts_with("...") {
                bail!("einsum: a lone '.' in spec '{spec}' (an ellipsis is written '...')");
            }
            if after.is_some() {
                bail!("einsum: more than one '...' in the term '{text}' of spec '{spec}'");
            }
            after = Some(Vec::new());
            i += 3;
            continue;
        }
        if !c.is_ascii_alphabetic() {
            let ch = text[i..].chars().next().unwrap_or('?');
            bail!(
                "einsum: invalid character '{ch}' in spec '{spec}' (indices are letters a-z, A-Z)"
            );
        }
        match &mut after {
            Some(a) => a.push(c as Label),
            None => before.push(c as Label),
        }
        i += 1;
    }
    Ok(Term { before, after })
}

/// The parsed spec: input terms and the output labels (`None` for implicit output).
struct Spec {
    inputs: Vec<Term>,
    output: Option<Term>,
}

fn parse_spec(spec: &str) -> Result<Spec> {
    let compact: String = spec.chars().filter(|c| !c.is_whitespace()).collect();
    let parts: Vec<&str> = compact.split("->").collect();
    if parts.len() > 2 {
        bail!("einsum: spec '{spec}' has more than one '->'");
    }
    let inputs = parts[0]
        .split(',')
        .map(|t| parse_term(spec, t))
        .collect::<Result<Vec<_>>>()?;
    let output = match parts.get(1) {
        None => None,
        Some(o) => {
            if o.contains(',') {
                bail!("einsum: spec '{spec}' has more than one output term");
            }
            Some(parse_term(spec, o)?)
        }
    };
    Ok(Spec { inputs, output })
}

/// A tensor view with one distinct label per dim.
#[derive(Clone)]
struct Labelled {
    t: Tensor,
    labels: Vec<Label>,
}

fn permute_view(t: &Tensor, order: &[usize]) -> Tensor {
    let l = t.layout();
    t.with_layout(Layout {
        shape: order.iter().map(|&i| l.shape[i]).collect(),
        strides: order.iter().map(|&i| l.strides[i]).collect(),
        offset: l.offset,
    })
}

/// `t` viewed with consecutive dim groups of `sizes` merged into one dim each; copies to a
/// contiguous tensor first when some group cannot be merged as a view.
fn merge_groups(t: &Tensor, sizes: &[usize]) -> Result<Tensor> {
    let try_merge = |t: &Tensor| -> Option<Layout> {
        let l = t.layout();
        let (mut shape, mut strides, mut start) = (Vec::new(), Vec::new(), 0);
        for &n in sizes {
            let (size, stride) =
                merge_dims(&l.shape[start..start + n], &l.strides[start..start + n])?;
            shape.push(size);
            strides.push(stride);
            start += n;
        }
        Some(Layout {
            shape,
            strides,
            offset: l.offset,
        })
    };
    if let Some(layout) = try_merge(t) {
        return Ok(t.with_layout(layout));
    }
    let c = t.backend().contiguous(t)?;
    let layout = try_merge(&c).expect("a contiguous tensor merges any dim groups");
    Ok(c.with_layout(layout))
}

/// Sums away the labels of `x` that `keep` rejects.
fn sum_labels(x: Labelled, keep: impl Fn(Label) -> bool) -> Result<Labelled> {
    let dims: Vec<isize> = (0..x.labels.len())
        .filter(|&i| !keep(x.labels[i]))
        .map(|i| i as isize)
        .collect();
    if dims.is_empty() {
        return Ok(x);
    }
    let labels = x.labels.iter().copied().filter(|&l| keep(l)).collect();
    let t = x.t.reduce(crate::ops::ReduceOp::Sum, Some(&dims), false)?;
    Ok(Labelled { t, labels })
}

/// Contracts two labelled operands into one, keeping the labels `keep` accepts (plus those
/// only one side has). Shared labels that are kept become batch dims; shared labels that are
/// not kept are summed by the matrix product.
fn contract(a: Labelled, b: Labelled, keep: impl Fn(Label) -> bool) -> Result<Labelled> {
    let in_b = |l: &Label| b.labels.contains(l);
    let in_a = |l: &Label| a.labels.contains(l);
    let batch: Vec<Label> = a
        .labels
        .iter()
        .copied()
        .filter(|l| in_b(l) && keep(*l))
        .collect();
    let summed: Vec<Label> = a
        .labels
        .iter()
        .copied()
        .filter(|l| in_b(l) && !keep(*l))
        .collect();
    let a_only: Vec<Label> = a.labels.iter().copied().filter(|l| !in_b(l)).collect();
    let b_only: Vec<Label> = b.labels.iter().copied().filter(|l| !in_a(l)).collect();

    let pos = |x: &Labelled, l: Label| {
        x.labels
            .iter()
            .position(|&y| y == l)
            .expect("label present")
    };
    let a_order: Vec<usize> = batch
        .iter()
        .chain(&a_only)
        .chain(&summed)
        .map(|&l| pos(&a, l))
        .collect();
    let b_order: Vec<usize> = batch
        .iter()
        .chain(&summed)
        .chain(&b_only)
        .map(|&l| pos(&b, l))
        .collect();
    let a3 = merge_groups(
        &permute_view(&a.t, &a_order),
        &[batch.len(), a_only.len(), summed.len()],
    )?;
    let b3 = merge_groups(
        &permute_view(&b.t, &b_order),
        &[batch.len(), summed.len(), b_only.len()],
    )?;
    let prod = a3.backend().matmul(&a3, &b3)?;

    let size_of = |x: &Labelled, l: Label| x.t.shape()[pos(x, l)];
    let mut shape: Vec<usize> = batch.iter().map(|&l| size_of(&a, l)).collect();
    shape.extend(a_only.iter().map(|&l| size_of(&a, l)));
    shape.extend(b_only.iter().map(|&l| size_of(&b, l)));
    let labels = batch.into_iter().chain(a_only).chain(b_only).collect();
    Ok(Labelled {
        t: prod.with_layout(Layout::contiguous(&shape)),
        labels,
    })
}

impl Tensor {
    /// Einstein summation, e.g. `einsum("bij,bjk->bik", &[&a, &b])`. Any valid spec: indices
    /// are letters; an index repeated within one operand takes its diagonal; indices missing
    /// from the output are summed; without `->` the output is the indices that appear exactly
    /// once, sorted; `...` stands for broadcast dims (placed first in an implicit output).
    /// Float operands only; mixed float dtypes are promoted.
    pub fn einsum(spec: &str, operands: &[&Tensor]) -> Result<Tensor> {
        crate::ops::refuse_quantized("einsum", operands)?;
        let parsed = parse_spec(spec)?;
        if parsed.inputs.len() != operands.len() {
            bail!(
                "einsum: spec '{spec}' names {} operand(s) but {} were given",
                parsed.inputs.len(),
                operands.len()
            );
        }
        let mut dtype: Option<DType> = None;
        for t in operands {
            if !t.dtype().is_float() {
                bail!("einsum: integer tensors are not supported yet (cast to float32 first)");
            }
            dtype = Some(dtype.map_or(t.dtype(), |d| DType::promote(d, t.dtype())));
        }
        crate::device::co_locate("einsum", operands, usize::MAX)?;
        // Recorded once as an einsum (below), not as the ops it is made of.
        let off = crate::autograd::no_grad();

        // Ellipsis dims per operand, then the broadcast width of `...`.
        let mut ell_dims = Vec::with_capacity(operands.len());
        for (i, (term, t)) in parsed.inputs.iter().zip(operands).enumerate() {
            let letters = term.letters();
            let ok = if term.after.is_some() {
                letters <= t.rank()
            } else {
                letters == t.rank()
            };
            if !ok {
                bail!(
                    "einsum: operand {i} has shape {} ({} dims) but its subscripts in '{spec}' name {letters}",
                    shape_str(t.shape()),
                    t.rank()
                );
            }
            ell_dims.push(t.rank() - letters);
        }
        let ell_width = ell_dims.iter().copied().max().unwrap_or(0);
        let ell_labels = |n: usize| (ell_width - n..ell_width).map(|j| ELLIPSIS_BASE + j as Label);

        // Sizes of every label; `...` dims broadcast, letters must agree.
        let mut sizes: std::collections::BTreeMap<Label, (usize, usize)> = Default::default();
        let mut full_labels: Vec<Vec<Label>> = Vec::with_capacity(operands.len());
        for (i, (term, t)) in parsed.inputs.iter().zip(operands).enumerate() {
            let mut labels = term.before.clone();
            if let Some(after) = &term.after {
                labels.extend(ell_labels(ell_dims[i]));
                labels.extend(after);
            }
            for (&l, &n) in labels.iter().zip(t.shape()) {
                match sizes.get_mut(&l) {
                    None => {
                        sizes.insert(l, (n, i));
                    }
                    Some((m, j)) if *m != n => {
                        if l >= ELLIPSIS_BASE && (n == 1 || *m == 1) {
                            if n != 1 {
                                *m = n;
                                *j = i;
                            }
                        } else {
                            bail!(
                                "einsum: index {} has size {} in operand {} but {} in operand {} (shapes {} and {})",
                                label_name(l),
                                m,
                                j,
                                n,
                                i,
                                shape_str(operands[*j].shape()),
                                shape_str(t.shape())
                            );
                        }
                    }
                    Some(_) => {}
                }
            }
            full_labels.push(labels);
        }

        // The output labels.
        let output: Vec<Label> = match &parsed.output {
            Some(term) => {
                let mut out = term.before.clone();
                if let Some(after) = &term.after {
                    out.extend(ell_labels(ell_width));
                    out.extend(after);
                }
                for (i, &l) in out.iter().enumerate() {
                    if out[..i].contains(&l) {
                        bail!(
                            "einsum: output index {} appears more than once in '{spec}'",
                            label_name(l)
                        );
                    }
                    if !sizes.contains_key(&l) {
                        bail!(
                            "einsum: output index {} does not appear in any input of '{spec}'",
                            label_name(l)
                        );
                    }
                }
                out
            }
            None => {
                let mut out: Vec<Label> = ell_labels(ell_width).collect();
                let mut letters: Vec<Label> = sizes
                    .keys()
                    .copied()
                    .filter(|&l| {
                        l < ELLIPSIS_BASE
                            && full_labels.iter().flatten().filter(|&&x| x == l).count() == 1
                    })
                    .collect();
                letters.sort_unstable();
                out.extend(letters);
                out
            }
        };

        // Per operand: widen to f32 (half types are computed in f32 and rounded once at the
        // end, so intermediate products lose nothing), broadcast `...` dims, take diagonals
        // of repeated labels.
        let dtype = dtype.unwrap_or(DType::F32);
        let mut terms: Vec<Labelled> = Vec::with_capacity(operands.len());
        for (t, labels) in operands.iter().zip(&full_labels) {
            let t = to_float_dtype("einsum", t, DType::F32)?;
            let l = t.layout();
            let mut uniq: Vec<Label> = Vec::new();
            let mut shape: Vec<usize> = Vec::new();
            let mut strides: Vec<usize> = Vec::new();
            for (d, &lab) in labels.iter().enumerate() {
                let size = sizes[&lab].0;
                // A size-1 `...` dim broadcast to the full size reads the same element.
                let stride = if l.shape[d] == size { l.strides[d] } else { 0 };
                match uniq.iter().position(|&u| u == lab) {
                    Some(p) => strides[p] += stride,
                    None => {
                        uniq.push(lab);
                        shape.push(size);
                        strides.push(stride);
                    }
                }
            }
            let view = t.with_layout(Layout {
                shape,
                strides,
                offset: l.offset,
            });
            terms.push(Labelled {
                t: view,
                labels: uniq,
            });
        }

        // Sum away labels used by one operand only and not by the output.
        let uses = |l: Label, except: usize, terms: &[Labelled]| {
            terms
                .iter()
                .enumerate()
                .any(|(j, t)| j != except && t.labels.contains(&l))
        };
        for i in 0..terms.len() {
            let x = terms[i].clone();
            let reduced = sum_labels(x, |l| output.contains(&l) || uses(l, i, &terms))?;
            terms[i] = reduced;
        }

        // Contract left to right.
        let mut rest = terms.into_iter();
        let mut acc = rest
            .next()
            .expect("at least one operand (the spec has one term)");
        let remaining: Vec<Labelled> = rest.collect();
        for (i, b) in remaining.iter().enumerate() {
            let later = &remaining[i + 1..];
            let keep =
                |l: Label| output.contains(&l) || later.iter().any(|t| t.labels.contains(&l));
            let a = sum_labels(acc, |l| keep(l) || b.labels.contains(&l))?;
            acc = contract(a, b.clone(), keep)?;
        }

        // Sum what the output drops, then order the dims as the output says.
        let acc = sum_labels(acc, |l| output.contains(&l))?;
        let order: Vec<usize> = output
            .iter()
            .map(|l| {
                acc.labels
                    .iter()
                    .position(|x| x == l)
                    .expect("output label kept")
            })
            .collect();
        let result = permute_view(&acc.t, &order);
        let out = if dtype == DType::F32 {
            Ok(result)
        } else {
            to_float_dtype("einsum", &result, dtype)
        };
        drop(off);
        crate::autograd::record_ok(out, operands, || {
            crate::autograd::Op::Einsum(full_labels, output)
        })
    }
}
