//! How values print, and `{}` format strings (`print("x = {}", x)`, `format(...)`).

use crate::value::Value;

/// How `print` shows a value: strings raw at top level (quoted inside lists and fields),
/// floats always with a decimal point or an exponent, tensors through their `Display`.
pub fn format_value(v: &Value) -> String {
    let mut out = String::new();
    write_value(v, false, 0, &mut out);
    out
}

/// A float as the language prints it: `1.0`, `0.30000000000000004`, `1e-7`, `inf`, `nan`.
pub fn format_float(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf".into() } else { "-inf".into() };
    }
    let a = f.abs();
    // Very large or very small magnitudes use an exponent, as Python does.
    if a != 0.0 && !(1e-5..1e16).contains(&a) {
        return format!("{f:e}");
    }
    let s = format!("{f}");
    if s.contains('.') { s } else { format!("{s}.0") }
}

/// Nesting deeper than this prints as `...` (a struct can hold itself through a field).
const MAX_PRINT_DEPTH: usize = 64;

fn write_value(v: &Value, nested: bool, depth: usize, out: &mut String) {
    if depth > MAX_PRINT_DEPTH {
        out.push_str("...");
        return;
    }
    match v {
        Value::Unit => out.push_str("()"),
        Value::Int(i) => out.push_str(&i.to_string()),
        Value::Float(f) => out.push_str(&format_float(*f)),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Str(s) => {
            if nested {
                out.push_str(&quote(s));
            } else {
                out.push_str(s);
            }
        }
        Value::List(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_value(item, true, depth + 1, out);
            }
            out.push(']');
        }
        Value::Tensor(t) => out.push_str(&t.to_string()),
        Value::Function(f) => {
            out.push_str("<fn ");
            out.push_str(&f.display_name());
            out.push('>');
        }
        Value::Builtin(b) => {
            out.push_str("<builtin ");
            out.push_str(b.name);
            out.push('>');
        }
        Value::Struct(s) => {
            let s = s.borrow();
            out.push_str(&s.type_name);
            if s.fields.is_empty() {
                out.push_str(" {}");
                return;
            }
            out.push_str(" { ");
            for (i, (name, value)) in s.fields.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(name);
                out.push_str(": ");
                write_value(value, true, depth + 1, out);
            }
            out.push_str(" }");
        }
        Value::Record(fields) => {
            out.push('{');
            for (i, (name, value)) in fields.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(name);
                out.push_str(": ");
                write_value(value, true, depth + 1, out);
            }
            out.push('}');
        }
        Value::Object(o) => out.push_str(&o.describe()),
    }
}

/// A string as a literal: `"a\"b\n"`.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// True when `s` holds at least one placeholder (`{}` or `{:.N}`), so that `print(s, ...)`
/// treats it as a format string.
pub fn has_placeholder(s: &str) -> bool {
    s.contains("{}") || s.contains("{:")
}

/// Fills the placeholders of `fmt` with `args`: `{}` shows a value as `print` does, `{:.N}`
/// shows a number with N digits after the point; `{{` and `}}` are literal braces. The
/// number of placeholders must equal the number of arguments.
pub fn format_string(fmt: &str, args: &[Value]) -> Result<String, String> {
    let mut out = String::with_capacity(fmt.len() + 16 * args.len());
    let mut next = 0usize;
    let mut chars = fmt.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                out.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                out.push('}');
            }
            '{' => {
                let mut spec = String::new();
                let mut closed = false;
                for c in chars.by_ref() {
                    if c == '}' {
                        closed = true;
                        break;
                    }
                    spec.push(c);
                }
                if !closed {
                    return Err("unclosed `{` in the format string (write `{{` for a brace)".into());
                }
                let value = args.get(next).ok_or_else(|| {
                    format!(
                        "the format string has more placeholders than the {} value{} given",
                        args.len(),
                        if args.len() == 1 { "" } else { "s" }
                    )
                })?;
                next += 1;
                out.push_str(&format_with_spec(value, &spec)?);
            }
            c => out.push(c),
        }
    }
    if next < args.len() {
        return Err(format!(
            "the format string has {next} placeholder{} but {} values were given",
            if next == 1 { "" } else { "s" },
            args.len()
        ));
    }
    Ok(out)
}

fn format_with_spec(value: &Value, spec: &str) -> Result<String, String> {
    if spec.is_empty() {
        return Ok(format_value(value));
    }
    let precision = spec
        .strip_prefix(":.")
        .and_then(|p| p.parse::<usize>().ok())
        .filter(|&p| p <= 100)
        .ok_or_else(|| {
            format!("unknown placeholder `{{{spec}}}` (use `{{}}` or `{{:.N}}` with N <= 100)")
        })?;
    match crate::convert::to_float(value) {
        Some(x) if !matches!(value, Value::Tensor(t) if t.numel() != 1) => {
            Ok(format!("{x:.precision$}"))
        }
        _ => Err(format!(
            "`{{{spec}}}` needs a number, got {}",
            value.type_name()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_keep_a_point() {
        assert_eq!(format_float(1.0), "1.0");
        assert_eq!(format_float(-3.0), "-3.0");
        assert_eq!(format_float(0.1 + 0.2), "0.30000000000000004");
        assert_eq!(format_float(1e-7), "1e-7");
        assert_eq!(format_float(2.5e20), "2.5e20");
        assert_eq!(format_float(f64::INFINITY), "inf");
        assert_eq!(format_float(f64::NAN), "nan");
    }

    #[test]
    fn format_strings() {
        let args = [Value::Int(3), Value::str("a"), Value::Float(0.5)];
        assert_eq!(
            format_string("{} {} {:.3} {{}}", &args).unwrap(),
            "3 a 0.500 {}"
        );
        assert!(format_string("{} {}", &args[..1]).is_err());
        assert!(format_string("{}", &args).is_err());
    }

    #[test]
    fn lists_quote_strings() {
        let l = Value::List(std::rc::Rc::new(vec![
            Value::str("a"),
            Value::Int(1),
            Value::Float(2.5),
        ]));
        assert_eq!(format_value(&l), "[\"a\", 1, 2.5]");
    }
}
