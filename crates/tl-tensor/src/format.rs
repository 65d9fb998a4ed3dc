//! `Display` for tensors, in the style of PyTorch's repr: `tensor([[1.0000, 2.0000], ...])`.
//! Floats use 4 decimals, or scientific notation when the magnitudes call for it; every
//! element is padded to one width; rows longer than 80 columns wrap; tensors of more than
//! 1000 elements are summarised with `...`, keeping 3 items at each edge of each dimension.
//! Quantized tensors print as `tensor(dtype=q4_0, shape=[..])`.

use crate::dtype::DType;
use crate::tensor::Tensor;
use std::fmt;

/// Tensors with more elements than this are summarised.
const SUMMARY_THRESHOLD: usize = 1000;
/// Items kept at each edge of a summarised dimension.
const EDGE_ITEMS: usize = 3;
/// Target line width.
const LINE_WIDTH: usize = 80;
/// `tensor(` is 7 columns wide.
const PREFIX: &str = "tensor(";

/// How one element becomes text.
enum Style {
    Fixed,
    Scientific,
    Int,
    Bool,
}

/// Formats `x` in `1.2346e+06` form (4 decimals, signed two-digit exponent).
fn scientific(x: f64) -> String {
    let s = format!("{x:.4e}");
    match s.split_once('e') {
        Some((mantissa, exp)) => {
            let e: i32 = exp.parse().unwrap_or(0);
            let sign = if e < 0 { '-' } else { '+' };
            format!("{mantissa}e{sign}{:02}", e.abs())
        }
        None => s,
    }
}

fn non_finite(x: f64) -> Option<String> {
    if x.is_nan() {
        Some("nan".into())
    } else if x.is_infinite() {
        Some(if x > 0.0 { "inf" } else { "-inf" }.into())
    } else {
        None
    }
}

fn element(style: &Style, x: f64, int: i64) -> String {
    match style {
        Style::Int => int.to_string(),
        Style::Bool => (if x != 0.0 { "true" } else { "false" }).to_string(),
        Style::Fixed => non_finite(x).unwrap_or_else(|| format!("{x:.4}")),
        Style::Scientific => non_finite(x).unwrap_or_else(|| scientific(x)),
    }
}

/// Scientific notation when the finite non-zero magnitudes span more than a factor of
/// 1000, reach 1e8, or go below 1e-4 (PyTorch's rule).
fn float_style(shown: impl Iterator<Item = f64>) -> Style {
    let mut max = 0.0f64;
    let mut min = f64::INFINITY;
    for x in shown {
        let a = x.abs();
        if a.is_finite() && a != 0.0 {
            max = max.max(a);
            min = min.min(a);
        }
    }
    if max == 0.0 {
        return Style::Fixed;
    }
    if max / min > 1000.0 || max >= 1e8 || min < 1e-4 {
        Style::Scientific
    } else {
        Style::Fixed
    }
}

/// The indices (along one dimension of `size`) that are shown, `None` marking the `...`.
fn shown_indices(size: usize, summarize: bool) -> Vec<Option<usize>> {
    if summarize && size > 2 * EDGE_ITEMS {
        (0..EDGE_ITEMS)
            .map(Some)
            .chain(std::iter::once(None))
            .chain((size - EDGE_ITEMS..size).map(Some))
            .collect()
    } else {
        (0..size).map(Some).collect()
    }
}

/// Row-major flat indices of every shown element.
fn shown_flat(shape: &[usize], summarize: bool, base: usize, dim: usize, out: &mut Vec<usize>) {
    if dim == shape.len() {
        out.push(base);
        return;
    }
    for i in shown_indices(shape[dim], summarize).into_iter().flatten() {
        shown_flat(shape, summarize, base * shape[dim] + i, dim + 1, out);
    }
}

struct Printer<'a> {
    shape: &'a [usize],
    cells: &'a dyn Fn(usize) -> String,
    summarize: bool,
}

impl Printer<'_> {
    /// The bracketed text of the sub-tensor at `dim` whose first element has flat index
    /// `base * prod(shape[dim..])`, starting at column `indent`.
    fn render(&self, out: &mut String, dim: usize, base: usize, indent: usize) {
        let rank = self.shape.len();
        let size = self.shape[dim];
        out.push('[');
        if dim + 1 == rank {
            let width = (self.cells)(usize::MAX).len() + 2;
            let per_line = ((LINE_WIDTH.saturating_sub(indent)) / width).max(1);
            for (k, i) in shown_indices(size, self.summarize).into_iter().enumerate() {
                if k > 0 {
                    if k % per_line == 0 {
                        out.push_str(",\n");
                        out.push_str(&" ".repeat(indent + 1));
                    } else {
                        out.push_str(", ");
                    }
                }
                match i {
                    Some(i) => out.push_str(&(self.cells)(base * size + i)),
                    None => out.push_str(" ..."),
                }
            }
        } else {
            let sep = format!(",{}{}", "\n".repeat(rank - dim - 1), " ".repeat(indent + 1));
            for (k, i) in shown_indices(size, self.summarize).into_iter().enumerate() {
                if k > 0 {
                    out.push_str(&sep);
                }
                match i {
                    Some(i) => self.render(out, dim + 1, base * size + i, indent + 1),
                    None => out.push_str("..."),
                }
            }
        }
        out.push(']');
    }
}

impl fmt::Display for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dtype = self.dtype();
        // Packed weights are summarised: their values are rarely what a user wants to read.
        if dtype.is_quantized() {
            return write!(
                f,
                "tensor(dtype={}, shape={:?})",
                dtype.name(),
                self.shape()
            );
        }
        let suffix = match dtype {
            DType::F16 | DType::BF16 => format!(", dtype={}", dtype.name()),
            _ => String::new(),
        };
        let shape = self.shape();
        if self.numel() == 0 {
            let size = if shape.len() == 1 {
                String::new()
            } else {
                let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
                format!(", size=({})", dims.join(", "))
            };
            return write!(f, "{PREFIX}[]{size}{suffix})");
        }
        let summarize = self.numel() > SUMMARY_THRESHOLD;
        // One read of the data (a device wait on a GPU); ints stay exact. A device that reports
        // an error (an earlier op failed there) is shown, not a panic.
        let host = match self.synchronize_for_read() {
            Ok(h) => h,
            Err(e) => return write!(f, "{PREFIX}<unreadable: {e}>)"),
        };
        let (floats, ints) = if dtype == DType::I64 {
            let ints = host.to_vec_i64();
            (ints.iter().map(|&i| i as f64).collect(), ints)
        } else {
            (host.to_vec_f64(), Vec::new())
        };
        let mut shown = Vec::new();
        shown_flat(shape, summarize, 0, 0, &mut shown);
        let style = match dtype {
            DType::I64 => Style::Int,
            DType::Bool => Style::Bool,
            _ => float_style(shown.iter().map(|&i| floats[i])),
        };
        let text = |i: usize| element(&style, floats[i], ints.get(i).copied().unwrap_or(0));
        let width = shown.iter().map(|&i| text(i).len()).max().unwrap_or(0);
        // `usize::MAX` asks for a blank cell of the common width (for line-wrapping math).
        let cells = |i: usize| {
            if i == usize::MAX {
                " ".repeat(width)
            } else {
                format!("{:>width$}", text(i))
            }
        };
        let mut out = String::new();
        out.push_str(PREFIX);
        if shape.is_empty() {
            out.push_str(&text(0));
        } else {
            let printer = Printer {
                shape,
                cells: &cells,
                summarize,
            };
            printer.render(&mut out, 0, 0, PREFIX.len());
        }
        out.push_str(&suffix);
        out.push(')');
        f.write_str(&out)
    }
}
