//! Chat templates: the Jinja template a chat model ships (GGUF `tokenizer.chat_template`, or
//! `chat_template` of `tokenizer_config.json`) rendered with MiniJinja the way Hugging Face
//! `transformers` renders it: `trim_blocks` and `lstrip_blocks` on, `messages`,
//! `add_generation_prompt`, `bos_token` and `eos_token` defined, `raise_exception(msg)` and
//! Python string methods (`.strip()`, `.startswith()`...) available.

use crate::error::{ModelError, Result};
use minijinja::{Environment, Error, ErrorKind, Value};
use std::collections::BTreeMap;

/// One turn of a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatMessage {
    /// `system`, `user` or `assistant`.
    pub role: String,
    pub content: String,
}

impl ChatMessage {
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> ChatMessage {
        ChatMessage {
            role: role.into(),
            content: content.into(),
        }
    }
}

/// TinyLlama-1.1B-Chat's template (the Zephyr format), used when a model has none:
/// `<|system|>\n{content}</s>\n<|user|>\n{content}</s>\n<|assistant|>\n`.
pub const DEFAULT_CHAT_TEMPLATE: &str = "{% for message in messages %}\n{% if message['role'] == 'user' %}\n{{ '<|user|>\n' + message['content'] + eos_token }}\n{% elif message['role'] == 'system' %}\n{{ '<|system|>\n' + message['content'] + eos_token }}\n{% elif message['role'] == 'assistant' %}\n{{ '<|assistant|>\n'  + message['content'] + eos_token }}\n{% endif %}\n{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n{% endfor %}";

/// Renders `template` for `messages`. Errors (a syntax error, `raise_exception` called by the
/// template) name the problem and, where MiniJinja knows it, the line.
pub fn render_chat_template(
    template: &str,
    messages: &[ChatMessage],
    add_generation_prompt: bool,
    bos_token: &str,
    eos_token: &str,
) -> Result<String> {
    let mut env = Environment::new();
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    env.add_function(
        "raise_exception",
        |msg: String| -> std::result::Result<Value, Error> {
            Err(Error::new(ErrorKind::InvalidOperation, msg))
        },
    );
    env.add_function("strftime_now", strftime_now);
    let describe = |e: Error| {
        let mut text = format!("chat template: {}", e.kind());
        if let Some(detail) = e.detail() {
            text.push_str(&format!(": {detail}"));
        }
        if let Some(line) = e.line() {
            text.push_str(&format!(" (template line {line})"));
        }
        ModelError::new(text)
    };
    env.add_template("chat", template).map_err(describe)?;
    let messages: Vec<Value> = messages
        .iter()
        .map(|m| {
            let mut map = BTreeMap::new();
            map.insert("role", Value::from(m.role.as_str()));
            map.insert("content", Value::from(m.content.as_str()));
            Value::from(map)
        })
        .collect();
    let context = minijinja::context! {
        messages => messages,
        add_generation_prompt => add_generation_prompt,
        bos_token => bos_token,
        eos_token => eos_token,
    };
    env.get_template("chat")
        .and_then(|t| t.render(context))
        .map_err(describe)
}

/// `strftime_now(format)` of transformers (Llama 3.x templates print today's date): the UTC date
/// with the directives `%d %m %Y %y %b %B %a %A %H %M %S %j %%`.
fn strftime_now(format: String) -> std::result::Result<String, Error> {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    Ok(format_utc(secs, &format))
}

fn format_utc(unix_secs: i64, format: &str) -> String {
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    const DAYS: [&str; 7] = [
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
        "Sunday",
    ];
    let days = unix_secs.div_euclid(86_400);
    let secs_of_day = unix_secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (proleptic Gregorian calendar).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let cumulative = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
    let day_of_year = cumulative[(month - 1) as usize] + day + i64::from(leap && month > 2);
    let weekday = (days + 3).rem_euclid(7) as usize; // 1970-01-01 was a Thursday
    let month_name = MONTHS[(month - 1) as usize];
    let mut out = String::new();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('d') => out.push_str(&format!("{day:02}")),
            Some('m') => out.push_str(&format!("{month:02}")),
            Some('Y') => out.push_str(&year.to_string()),
            Some('y') => out.push_str(&format!("{:02}", year.rem_euclid(100))),
            Some('b') => out.push_str(&month_name[..3]),
            Some('B') => out.push_str(month_name),
            Some('a') => out.push_str(&DAYS[weekday][..3]),
            Some('A') => out.push_str(DAYS[weekday]),
            Some('H') => out.push_str(&format!("{:02}", secs_of_day / 3600)),
            Some('M') => out.push_str(&format!("{:02}", secs_of_day / 60 % 60)),
            Some('S') => out.push_str(&format!("{:02}", secs_of_day % 60)),
            Some('j') => out.push_str(&format!("{day_of_year:03}")),
            Some('%') => out.push('%'),
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_template_is_the_zephyr_format() {
        let messages = [
            ChatMessage::new("system", "Be brief."),
            ChatMessage::new("user", "Hi!"),
        ];
        let out =
            render_chat_template(DEFAULT_CHAT_TEMPLATE, &messages, true, "<s>", "</s>").unwrap();
        assert_eq!(
            out,
            "<|system|>\nBe brief.</s>\n<|user|>\nHi!</s>\n<|assistant|>\n"
        );
    }

    #[test]
    fn raise_exception_and_syntax_errors_are_reported() {
        let t = "{% if messages[0]['role'] != 'user' %}{{ raise_exception('first must be user') }}{% endif %}";
        let err =
            render_chat_template(t, &[ChatMessage::new("system", "x")], false, "", "").unwrap_err();
        assert!(err.problem.contains("first must be user"), "{err}");
        let err = render_chat_template("{% for m in messages %}", &[], false, "", "").unwrap_err();
        assert!(err.problem.contains("chat template"), "{err}");
    }

    #[test]
    fn python_string_methods_work() {
        let t =
            "{{ messages[0]['content'].strip() }}|{{ messages[0]['content'].startswith(' a') }}";
        let out =
            render_chat_template(t, &[ChatMessage::new("user", " a b \n")], false, "", "").unwrap();
        assert_eq!(out, "a b|True");
    }

    #[test]
    fn dates_format_like_strftime() {
        // 2024-02-29 13:05:09 UTC, a Thursday, day 60 of a leap year.
        let t = 1_709_211_909;
        assert_eq!(
            format_utc(t, "%d %b %Y %H:%M:%S %a %j %B %y %m %%"),
            "29 Feb 2024 13:05:09 Thu 060 February 24 02 %"
        );
        assert_eq!(format_utc(0, "%Y-%m-%d %A"), "1970-01-01 Thursday");
    }
}
