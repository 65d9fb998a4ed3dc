//! `tl-syntax` owns the TensorLogic surface syntax: the lexer, the parser, the AST with source
//! spans, and diagnostics that print `file:line:col`, the source line and a caret. It knows
//! nothing of tensors or devices.

pub mod ast;
pub mod diagnostic;
pub mod span;

pub use diagnostic::Diagnostic;
pub use span::{FileId, SourceFile, SourceMap, Span};
