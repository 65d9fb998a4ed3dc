//! Diagnostics: a message, the span it is about, and notes. Rendered in the style of rustc:
//!
//! ```text
//! error: unknown name `foo`
//!  --> prog.tl:3:9
//!   |
//! 3 | let y = foo + 1
//!   |         ^^^
//!   = help: ...
//! ```
//!
//! Rendering is written here rather than through `ariadne`/`miette` because golden tests pin the
//! exact text, and this format (no colour, no box drawing) is the one users know from rustc.

use crate::span::{SourceMap, Span};
use std::fmt::Write;

#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    pub message: String,
    /// Where the problem is; `None` for errors with no place in the source (a missing file
    /// named on the command line).
    pub span: Option<Span>,
    /// Extra lines printed after the snippet as `= note: ...`.
    pub notes: Vec<String>,
}

impl Diagnostic {
    pub fn error(message: impl Into<String>, span: Span) -> Diagnostic {
        Diagnostic {
            message: message.into(),
            span: Some(span),
            notes: Vec::new(),
        }
    }

    pub fn without_span(message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            message: message.into(),
            span: None,
            notes: Vec::new(),
        }
    }

    pub fn with_note(mut self, note: impl Into<String>) -> Diagnostic {
        self.notes.push(note.into());
        self
    }

    /// `file:line:col` of the start of the span, if it has one.
    pub fn location(&self, sources: &SourceMap) -> Option<String> {
        let span = self.span?;
        let file = sources.get(span.file);
        let (line, col) = file.line_col(span.start);
        Some(format!("{}:{}:{}", file.name, line, col))
    }

    /// The full text: message, location, source line with carets under the span, notes.
    pub fn render(&self, sources: &SourceMap) -> String {
        let mut out = format!("error: {}\n", self.message);
        if let Some(span) = self.span {
            let file = sources.get(span.file);
            let (line, col) = file.line_col(span.start);
            let (end_line, end_col) = file.line_col(span.end.max(span.start));
            let text = file.line_text(line);
            let gutter = line.to_string().len();
            let pad = " ".repeat(gutter);
            // Carets cover the span on its first line; at least one caret.
            let caret_end = if end_line == line {
                end_col
            } else {
                text.chars().count() + 1
            };
            let carets = caret_end.saturating_sub(col).max(1);
            let _ = writeln!(out, "{pad}--> {}:{}:{}", file.name, line, col);
            let _ = writeln!(out, "{pad} |");
            let _ = writeln!(out, "{line} | {text}");
            let _ = writeln!(out, "{pad} | {}{}", " ".repeat(col - 1), "^".repeat(carets));
        }
        for note in &self.notes {
            let _ = writeln!(out, "  = note: {note}");
        }
        out
    }
}

impl std::fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Diagnostic {}
