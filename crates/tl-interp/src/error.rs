//! Runtime errors: a message and the span of the expression that failed.

use tl_syntax::{Diagnostic, Span};
use tl_tensor::TensorError;

#[derive(Debug, Clone, PartialEq)]
pub struct RuntimeError {
    pub message: String,
    pub span: Option<Span>,
    pub notes: Vec<String>,
}

impl RuntimeError {
    pub fn new(message: impl Into<String>, span: Span) -> RuntimeError {
        RuntimeError {
            message: message.into(),
            span: Some(span),
            notes: Vec::new(),
        }
    }

    pub fn without_span(message: impl Into<String>) -> RuntimeError {
        RuntimeError {
            message: message.into(),
            span: None,
            notes: Vec::new(),
        }
    }

    pub fn with_note(mut self, note: impl Into<String>) -> RuntimeError {
        self.notes.push(note.into());
        self
    }

    /// Gives a span to an error that has none yet (errors from the tensor runtime).
    pub fn at(mut self, span: Span) -> RuntimeError {
        self.span.get_or_insert(span);
        self
    }

    pub fn to_diagnostic(&self) -> Diagnostic {
        Diagnostic {
            message: self.message.clone(),
            span: self.span,
            notes: self.notes.clone(),
        }
    }
}

impl From<TensorError> for RuntimeError {
    fn from(e: TensorError) -> RuntimeError {
        RuntimeError::without_span(e.0)
    }
}

impl From<Diagnostic> for RuntimeError {
    fn from(d: Diagnostic) -> RuntimeError {
        RuntimeError {
            message: d.message,
            span: d.span,
            notes: d.notes,
        }
    }
}

impl std::fmt::Display for RuntimeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for RuntimeError {}

pub type Result<T> = std::result::Result<T, RuntimeError>;
