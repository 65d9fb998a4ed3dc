//! Host builtins: printing and formatting, conversions, lists and ranges, the environment,
//! time, input, assertions, devices and the random seed.

use std::io::BufRead;
use std::rc::Rc;

use tl_syntax::ast::CastTarget;

use super::{Builtin, CallArgs};
use crate::error::Result;
use crate::eval::cast;
use crate::format::{format_string, format_value, has_placeholder};
use crate::interp::Interpreter;
use crate::value::Value;

/// The most items `range` builds as a list (a `for` loop over `range` builds none).
const MAX_RANGE_LIST: i64 = 100_000_000;

pub static HOST_BUILTINS: &[Builtin] = &[
    Builtin {
        name: "print",
        signature: "print(values..., end: string = \"\\n\")",
        category: "host",
        doc: "Prints its arguments separated by spaces, then a newline. Strings print without \
              quotes (inside lists they are quoted), floats always show a decimal point or an \
              exponent, tensors print like PyTorch (summarised with `...` when large). When the \
              first argument is a string containing `{}` and more arguments follow, it is a format \
              string: each `{}` is replaced by the next argument (`{:.N}` prints a number with N \
              decimals, `{{` and `}}` are literal braces), and the counts must agree. `end:` \
              replaces the final newline (`end: \"\"` prints nothing after, for text streamed a \
              piece at a time); output is flushed at once. When the \
              output is closed (a pipe into `head`), the program ends quietly.",
        func: print,
    },
    Builtin {
        name: "format",
        signature: "format(fmt: string, values...) -> string",
        category: "host",
        doc: "Returns `fmt` with each `{}` replaced by the next value as `print` shows it, \
              `{:.N}` by a number with N decimals; `{{` and `}}` are literal braces. The number of \
              placeholders must equal the number of values. Example: \
              `format(\"{} has {:.2} mean\", name, m)`.",
        func: format,
    },
    Builtin {
        name: "str",
        signature: "str(x) -> string",
        category: "host",
        doc: "The text `print` would show for `x` (the same as `x as str`).",
        func: to_str,
    },
    Builtin {
        name: "int",
        signature: "int(x) -> int",
        category: "host",
        doc: "Converts to an int (the same as `x as int`): floats truncate toward zero, bools give \
              0 or 1, strings are parsed (an error if they are not an integer), and a one-element \
              tensor gives its value. Infinite, NaN or out-of-range values are an error.",
        func: to_int,
    },
    Builtin {
        name: "float",
        signature: "float(x) -> float",
        category: "host",
        doc: "Converts to a float (the same as `x as float`): ints and bools convert exactly \
              (large ints round), strings are parsed, a one-element tensor gives its value.",
        func: to_float,
    },
    Builtin {
        name: "bool",
        signature: "bool(x) -> bool",
        category: "host",
        doc: "Converts to a bool (the same as `x as bool`): numbers are true when non-zero, the \
              strings \"true\" and \"false\" parse, a one-element tensor is true when non-zero.",
        func: to_bool,
    },
    Builtin {
        name: "len",
        signature: "len(x: string | list | tensor) -> int",
        category: "host",
        doc: "The number of characters of a string, items of a list, fields of a record, or the \
              size of dimension 0 of a tensor (a rank-0 tensor has no length: an error). \
              Reading a tensor's length never waits for the device.",
        func: len,
    },
    Builtin {
        name: "range",
        signature: "range(end) | range(start, end) | range(start, end, step) -> list",
        category: "host",
        doc: "The ints from `start` (default 0) up to but not including `end`, counting by `step` \
              (default 1; negative steps count down; 0 is an error), as a list. \
              `for i in range(n)` counts without building the list.",
        func: range,
    },
    Builtin {
        name: "range_i",
        signature: "range_i(end) | range_i(start, end) | range_i(start, end, step) -> list",
        category: "host",
        doc: "The same as `range` (the name used by programs written for the earlier \
              interpreter): the ints from `start` (default 0) up to but not including `end`.",
        func: range,
    },
    Builtin {
        name: "append",
        signature: "append(list, x) -> list",
        category: "host",
        doc: "A new list: `list` with `x` added at the end. The list given is not changed (lists \
              are values), so write `xs = append(xs, x)` to grow a variable.",
        func: append,
    },
    Builtin {
        name: "env",
        signature: "env(name: string[, default]) -> string",
        category: "host",
        doc: "The value of the environment variable `name`. When it is not set, returns `default` \
              if given, else the empty string \"\" (so `if env(\"DEBUG\") != \"\" { ... }` tests \
              for it). A value that is not valid Unicode is an error.",
        func: env,
    },
    Builtin {
        name: "args",
        signature: "args() -> list",
        category: "host",
        doc: "The program's arguments, the strings given after `--` on the command line \
              (`tl run prog.tl -- a b` gives [\"a\", \"b\"]).",
        func: args,
    },
    Builtin {
        name: "now",
        signature: "now() -> float",
        category: "host",
        doc: "Seconds (a float, sub-microsecond resolution) since the interpreter started, from a \
              monotonic clock: subtract two readings to time a piece of code. It does not wait \
              for pending device work.",
        func: now,
    },
    Builtin {
        name: "read_line",
        signature: "read_line([prompt: string]) -> string | ()",
        category: "host",
        doc: "Prints `prompt` (if given, without a newline), then reads one line from standard \
              input and returns it without its line ending. At the end of input it returns `()`.",
        func: read_line,
    },
    Builtin {
        name: "assert",
        signature: "assert(cond: bool[, message: string])",
        category: "host",
        doc: "Does nothing when `cond` is true; otherwise the program fails with \
              \"assertion failed: MESSAGE\" (or just \"assertion failed\") at the call. `cond` may \
              also be a one-element tensor (true when non-zero).",
        func: assert,
    },
    Builtin {
        name: "type_of",
        signature: "type_of(x) -> string",
        category: "host",
        doc: "The kind of a value as a string: \"int\", \"float\", \"bool\", \"string\", \"list\", \
              \"tensor\", \"function\", \"unit\", \"record\", or a struct's or host object's type \
              name.",
        func: type_of,
    },
    Builtin {
        name: "to_device",
        signature: "to_device(x: tensor, device: string) -> tensor",
        category: "host",
        doc: "A copy of `x` on `device` (\"cpu\", \"cuda\" or \"cuda:N\"); `x` itself when it \
              is already there. A copy to a GPU is queued without waiting; a copy to the host \
              waits for the device (one counted sync). Numbers and numeric lists are converted to \
              tensors first. Errors: an unknown device name; a GPU this run has not started (run \
              with `--device cuda`, on a build with the `cuda` feature).",
        func: to_device,
    },
    Builtin {
        name: "to_host",
        signature: "to_host(x: tensor) -> tensor",
        category: "host",
        doc: "A copy of `x` in host memory (`x` itself when it is already there). Waits for the \
              device's pending work: one counted sync, shown by `--stats`. An error that an \
              earlier op hit on the device (such as an integer division by zero) is reported \
              here, at the first read.",
        func: to_host,
    },
    Builtin {
        name: "seed",
        signature: "seed(n: int)",
        category: "host",
        doc: "Restarts the random generator used by `rand`, `randn` and sampling from seed `n`. \
              Every run starts from seed 0, so programs are reproducible without calling it.",
        func: seed,
    },
];

fn values(args: &CallArgs) -> Vec<Value> {
    args.positional.iter().map(|p| p.0.clone()).collect()
}

fn print(interp: &mut Interpreter, args: &mut CallArgs) -> Result<Value> {
    args.expect_named(&["end"])?;
    let end = match args.named("end") {
        None => "\n".to_string(),
        Some(Value::Str(s)) => s.to_string(),
        Some(other) => {
            return Err(args.error(format!(
                "`end:` must be a string, got {}",
                other.type_name()
            )));
        }
    };
    let vals = values(args);
    let mut text = match vals.first() {
        Some(Value::Str(fmt)) if vals.len() > 1 && has_placeholder(fmt) => {
            format_string(fmt, &vals[1..]).map_err(|m| args.error(m))?
        }
        _ => {
            let parts: Vec<String> = vals.iter().map(format_value).collect();
            parts.join(" ")
        }
    };
    text.push_str(&end);
    interp.write_output(&text)?;
    Ok(Value::Unit)
}

fn format(_: &mut Interpreter, args: &mut CallArgs) -> Result<Value> {
    args.expect_named(&[])?;
    if args.is_empty() {
        return Err(args.error("expected a format string"));
    }
    let fmt = args.string(0)?;
    let vals = values(args);
    format_string(&fmt, &vals[1..])
        .map(Value::str)
        .map_err(|m| args.error(m))
}

fn convert(args: &CallArgs, target: CastTarget) -> Result<Value> {
    args.expect_named(&[])?;
    args.expect_count(1, 1)?;
    let v = args.positional[0].0.clone();
    cast(v, target, args.positional[0].1).map_err(|e| args.error(e.message))
}

fn to_str(_: &mut Interpreter, args: &mut CallArgs) -> Result<Value> {
    convert(args, CastTarget::Str)
}

fn to_int(_: &mut Interpreter, args: &mut CallArgs) -> Result<Value> {
    convert(args, CastTarget::Int)
}

fn to_float(_: &mut Interpreter, args: &mut CallArgs) -> Result<Value> {
    convert(args, CastTarget::Float)
}

fn to_bool(_: &mut Interpreter, args: &mut CallArgs) -> Result<Value> {
    convert(args, CastTarget::Bool)
}

fn len(_: &mut Interpreter, args: &mut CallArgs) -> Result<Value> {
    args.expect_named(&[])?;
    args.expect_count(1, 1)?;
    let n = match &args.positional[0].0 {
        Value::Str(s) => s.chars().count(),
        Value::List(items) => items.len(),
        Value::Record(fields) => fields.len(),
        Value::Tensor(t) => match t.shape().first() {
            Some(&n) => n,
            None => return Err(args.arg_error(0, "a rank-0 tensor has no length")),
        },
        Value::Object(o) if o.length().is_some() => o.length().unwrap_or(0),
        other => {
            return Err(args.arg_error(
                0,
                format!("needs a string, list or tensor, got {}", other.type_name()),
            ));
        }
    };
    Ok(Value::Int(n as i64))
}

/// `(start, end, step)` from the 1 to 3 arguments of `range`.
pub(crate) fn range_bounds(bounds: &[i64]) -> std::result::Result<(i64, i64, i64), String> {
    match *bounds {
        [end] => Ok((0, end, 1)),
        [start, end] => Ok((start, end, 1)),
        [_, _, 0] => Err("the step must not be zero".into()),
        [start, end, step] => Ok((start, end, step)),
        _ => Err(format!("expected 1 to 3 arguments, got {}", bounds.len())),
    }
}

fn range(_: &mut Interpreter, args: &mut CallArgs) -> Result<Value> {
    args.expect_named(&[])?;
    args.expect_count(1, 3)?;
    let mut bounds = Vec::with_capacity(args.len());
    for (i, (v, _)) in args.positional.iter().enumerate() {
        match v {
            Value::Int(n) => bounds.push(*n),
            other => {
                return Err(args.arg_error(
                    i,
                    format!(
                        "argument {} must be an int, got {}",
                        i + 1,
                        other.type_name()
                    ),
                ));
            }
        }
    }
    let (start, end, step) = range_bounds(&bounds).map_err(|m| args.error(m))?;
    let count = if step > 0 {
        (i128::from(end) - i128::from(start) + i128::from(step) - 1) / i128::from(step)
    } else {
        (i128::from(start) - i128::from(end) - i128::from(step) - 1) / -i128::from(step)
    }
    .max(0);
    if count > i128::from(MAX_RANGE_LIST) {
        return Err(args.error(format!(
            "{count} items are too many for a list (a `for` loop over range builds no list)"
        )));
    }
    let items = (0..count as i64)
        .map(|k| Value::Int(start + k * step))
        .collect();
    Ok(Value::List(Rc::new(items)))
}

fn append(_: &mut Interpreter, args: &mut CallArgs) -> Result<Value> {
    args.expect_named(&[])?;
    args.expect_count(2, 2)?;
    let list_span = args.positional[0].1;
    let item = args.positional.pop().map(|p| p.0).unwrap_or_default();
    match args.positional.pop().map(|p| p.0) {
        Some(Value::List(mut items)) => {
            // No copy when the caller handed over the only reference.
            Rc::make_mut(&mut items).push(item);
            Ok(Value::List(items))
        }
        Some(other) => Err(crate::error::RuntimeError::new(
            format!(
                "append: argument 1 must be a list, got {}",
                other.type_name()
            ),
            list_span,
        )),
        None => Err(args.error("expected 2 arguments")),
    }
}

fn env(_: &mut Interpreter, args: &mut CallArgs) -> Result<Value> {
    args.expect_named(&[])?;
    args.expect_count(1, 2)?;
    let name = args.string(0)?;
    match std::env::var(&name) {
        Ok(v) => Ok(Value::str(v)),
        Err(std::env::VarError::NotPresent) => {
            Ok(args.get(1).cloned().unwrap_or_else(|| Value::str("")))
        }
        Err(std::env::VarError::NotUnicode(_)) => Err(args.arg_error(
            0,
            format!("the value of environment variable {name} is not valid Unicode"),
        )),
    }
}

fn args(interp: &mut Interpreter, call: &mut CallArgs) -> Result<Value> {
    call.expect_named(&[])?;
    call.expect_count(0, 0)?;
    let items = interp.options().args.iter().map(Value::str).collect();
    Ok(Value::List(Rc::new(items)))
}

fn now(interp: &mut Interpreter, args: &mut CallArgs) -> Result<Value> {
    args.expect_named(&[])?;
    args.expect_count(0, 0)?;
    Ok(Value::Float(interp.elapsed_seconds()))
}

fn read_line(interp: &mut Interpreter, args: &mut CallArgs) -> Result<Value> {
    args.expect_named(&[])?;
    args.expect_count(0, 1)?;
    if !args.is_empty() {
        let prompt = args.string(0)?;
        interp.write_output(&prompt)?;
    }
    let mut line = String::new();
    match std::io::stdin().lock().read_line(&mut line) {
        Ok(0) => Ok(Value::Unit),
        Ok(_) => {
            let trimmed = line.strip_suffix('\n').unwrap_or(&line);
            let trimmed = trimmed.strip_suffix('\r').unwrap_or(trimmed);
            Ok(Value::str(trimmed))
        }
        Err(e) => Err(args.error(format!("cannot read standard input: {e}"))),
    }
}

fn assert(_: &mut Interpreter, args: &mut CallArgs) -> Result<Value> {
    args.expect_named(&[])?;
    args.expect_count(1, 2)?;
    let holds = match &args.positional[0].0 {
        Value::Bool(b) => *b,
        Value::Tensor(t) if t.numel() == 1 => t.to_scalar_f64()? != 0.0,
        other => {
            return Err(args.arg_error(
                0,
                format!("the condition must be a bool, got {}", other.type_name()),
            ));
        }
    };
    if holds {
        return Ok(Value::Unit);
    }
    let message = match args.get(1) {
        Some(m) => format!("assertion failed: {}", format_value(m)),
        None => "assertion failed".to_string(),
    };
    Err(crate::error::RuntimeError::new(message, args.span))
}

fn type_of(_: &mut Interpreter, args: &mut CallArgs) -> Result<Value> {
    args.expect_named(&[])?;
    args.expect_count(1, 1)?;
    Ok(Value::str(args.positional[0].0.type_name()))
}

fn to_device(_: &mut Interpreter, args: &mut CallArgs) -> Result<Value> {
    args.expect_named(&[])?;
    args.expect_count(2, 2)?;
    let x = args.tensor(0)?;
    let name = args.string(1)?;
    let device = tl_tensor::Device::parse(&name).map_err(|e| args.arg_error(1, e.0))?;
    x.to_device(device)
        .map(Value::Tensor)
        .map_err(|e| args.arg_error(1, e.0))
}

fn to_host(_: &mut Interpreter, args: &mut CallArgs) -> Result<Value> {
    args.expect_named(&[])?;
    args.expect_count(1, 1)?;
    let x = args.tensor(0)?;
    super::args::at_call(args, x.to_host()).map(Value::Tensor)
}

fn seed(interp: &mut Interpreter, args: &mut CallArgs) -> Result<Value> {
    args.expect_named(&[])?;
    args.expect_count(1, 1)?;
    let n = args.int(0)?;
    interp.reseed(n as u64);
    Ok(Value::Unit)
}
