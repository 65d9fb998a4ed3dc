//! `tl-syntax` owns the TensorLogic surface syntax: the lexer, the parser, the AST with source
//! spans, and diagnostics that print `file:line:col`, the source line and a caret. It knows
//! nothing of tensors or devices.

pub mod ast;
pub mod diagnostic;
pub mod lexer;
pub mod parser;
pub mod span;

pub use diagnostic::Diagnostic;
pub use span::{FileId, SourceFile, SourceMap, Span};

use lexer::Tok;

/// Parses the whole file `file` of `sources`. On errors returns all of them (lexical and
/// syntactic, in source order): parsing recovers at statement boundaries and goes on.
pub fn parse(sources: &SourceMap, file: FileId) -> Result<ast::Program, Vec<Diagnostic>> {
    let source = sources.get(file);
    let lexed = lexer::lex(&source.text, file);
    let parser = parser::Parser::new(lexed.tokens, file, &source);
    let (program, parse_errors) = parser.program();
    // A character the lexer could not read usually makes the parser stumble later on the
    // same line; report only the lexer's error for that line.
    let lexer_lines: Vec<usize> = lexed
        .errors
        .iter()
        .filter_map(|d| d.span.map(|s| source.line_col(s.start).0))
        .collect();
    // An unterminated string or block comment swallows the rest of the file: the parser's
    // complaints about reaching the end of the file are its consequence, not news.
    let swallowed = lexed.unterminated;
    let mut errors = lexed.errors;
    errors.extend(parse_errors.into_iter().filter(|d| {
        !(swallowed && d.message.contains("end of file"))
            && d.span
                .is_none_or(|s| !lexer_lines.contains(&source.line_col(s.start).0))
    }));
    if errors.is_empty() {
        Ok(program)
    } else {
        // Stable sort: at one place, lexical errors come before what they caused.
        errors.sort_by_key(|d| d.span.map_or(usize::MAX, |s| s.start));
        Err(errors)
    }
}

/// For the REPL: true when `text` is unfinished, so another line should be read before
/// parsing: it ends inside an unclosed `{`, `(` or `[`, inside a string or block comment, or
/// right after a binary operator, `=`, `,` or another token that cannot end a line.
pub fn needs_more_input(text: &str) -> bool {
    let lexed = lexer::lex(text, FileId(0));
    if lexed.unterminated {
        return true;
    }
    let mut open = Vec::new();
    for token in &lexed.tokens {
        match token.tok {
            Tok::LParen => open.push(Tok::RParen),
            Tok::LBracket => open.push(Tok::RBracket),
            Tok::LBrace => open.push(Tok::RBrace),
            // A mismatched closer can never be completed: let the parser report it.
            Tok::RParen | Tok::RBracket | Tok::RBrace
                if open.pop().as_ref() != Some(&token.tok) =>
            {
                return false;
            }
            _ => {}
        }
    }
    if !open.is_empty() {
        return true;
    }
    lexed
        .tokens
        .iter()
        .rev()
        .find(|t| !matches!(t.tok, Tok::Newline | Tok::Eof))
        .is_some_and(|t| t.tok.continues_line())
}
