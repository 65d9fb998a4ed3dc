//! The lexer: source text to tokens. Hand-written so that every error (an unterminated string,
//! a bad escape, a malformed number) gets a precise span and lexing always continues to the end
//! of the file, letting the parser report further errors too.
//!
//! Newlines are tokens ([`Tok::Newline`], runs collapsed to one): whether a newline ends a
//! statement depends on the bracket the parser is inside, which the parser knows best.

use crate::diagnostic::Diagnostic;
use crate::span::{FileId, Span};

#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    /// Any identifier or keyword; keywords are told apart by the parser (many are contextual:
    /// `tensor`, `embedding`, `test`, `main`, `query`, ... are also ordinary names).
    Ident(String),
    Int(i64),
    Float(f64),
    Str(String),
    LParen,
    RParen,
    LBracket,
    RBracket,
    LBrace,
    RBrace,
    Comma,
    Semi,
    Colon,
    /// `::`
    ColonColon,
    /// `:=`
    ColonEq,
    /// `:-` (a Datalog rule arrow; split into `:` `-` inside slices and named arguments)
    ColonDash,
    Dot,
    Question,
    /// `'` as in the normalised index `p'.`
    Quote,
    Plus,
    Minus,
    Star,
    StarStar,
    Slash,
    Percent,
    At,
    Bang,
    Eq,
    EqEq,
    NotEq,
    Lt,
    Gt,
    Le,
    Ge,
    AndAnd,
    OrOr,
    /// `<-` (a rule arrow; read as `<` `-` where a comparison is meant)
    LArrow,
    /// `->`
    Arrow,
    PlusEq,
    MinusEq,
    StarEq,
    SlashEq,
    Newline,
    Eof,
}

impl Tok {
    /// How the token is named in error messages.
    pub fn describe(&self) -> String {
        match self {
            Tok::Ident(name) => {
                if crate::parser::is_reserved(name) {
                    format!("keyword `{name}`")
                } else {
                    format!("`{name}`")
                }
            }
            Tok::Int(v) => format!("`{v}`"),
            Tok::Float(v) => format!("`{v:?}`"),
            Tok::Str(_) => "a string".to_string(),
            Tok::Newline => "end of line".to_string(),
            Tok::Eof => "end of file".to_string(),
            other => format!("`{}`", other.symbol()),
        }
    }

    /// The text of a punctuation token.
    pub fn symbol(&self) -> &'static str {
        match self {
            Tok::LParen => "(",
            Tok::RParen => ")",
            Tok::LBracket => "[",
            Tok::RBracket => "]",
            Tok::LBrace => "{",
            Tok::RBrace => "}",
            Tok::Comma => ",",
            Tok::Semi => ";",
            Tok::Colon => ":",
            Tok::ColonColon => "::",
            Tok::ColonEq => ":=",
            Tok::ColonDash => ":-",
            Tok::Dot => ".",
            Tok::Question => "?",
            Tok::Quote => "'",
            Tok::Plus => "+",
            Tok::Minus => "-",
            Tok::Star => "*",
            Tok::StarStar => "**",
            Tok::Slash => "/",
            Tok::Percent => "%",
            Tok::At => "@",
            Tok::Bang => "!",
            Tok::Eq => "=",
            Tok::EqEq => "==",
            Tok::NotEq => "!=",
            Tok::Lt => "<",
            Tok::Gt => ">",
            Tok::Le => "<=",
            Tok::Ge => ">=",
            Tok::AndAnd => "&&",
            Tok::OrOr => "||",
            Tok::LArrow => "<-",
            Tok::Arrow => "->",
            Tok::PlusEq => "+=",
            Tok::MinusEq => "-=",
            Tok::StarEq => "*=",
            Tok::SlashEq => "/=",
            Tok::Newline => "\\n",
            Tok::Eof => "",
            Tok::Ident(_) | Tok::Int(_) | Tok::Float(_) | Tok::Str(_) => "",
        }
    }

    /// A token after which a line break does not end the statement: binary operators,
    /// assignment operators, `,`, opening brackets and rule arrows.
    pub fn continues_line(&self) -> bool {
        match self {
            Tok::Ident(name) => name == "and" || name == "or",
            Tok::LParen
            | Tok::LBracket
            | Tok::Comma
            | Tok::Colon
            | Tok::ColonColon
            | Tok::ColonEq
            | Tok::ColonDash
            | Tok::Dot
            | Tok::Plus
            | Tok::Minus
            | Tok::Star
            | Tok::StarStar
            | Tok::Slash
            | Tok::Percent
            | Tok::At
            | Tok::Eq
            | Tok::EqEq
            | Tok::NotEq
            | Tok::Lt
            | Tok::Gt
            | Tok::Le
            | Tok::Ge
            | Tok::AndAnd
            | Tok::OrOr
            | Tok::LArrow
            | Tok::Arrow
            | Tok::PlusEq
            | Tok::MinusEq
            | Tok::StarEq
            | Tok::SlashEq => true,
            _ => false,
        }
    }

    /// True for tokens that can end an operand (after which `.5` is not a number).
    fn ends_operand(&self) -> bool {
        matches!(
            self,
            Tok::Ident(_)
                | Tok::Int(_)
                | Tok::Float(_)
                | Tok::Str(_)
                | Tok::RParen
                | Tok::RBracket
                | Tok::RBrace
                | Tok::Quote
        )
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    pub tok: Tok,
    pub span: Span,
}

/// The result of lexing one file.
#[derive(Debug, Clone)]
pub struct Lexed {
    /// Always ends with one [`Tok::Eof`].
    pub tokens: Vec<Token>,
    pub errors: Vec<Diagnostic>,
    /// The text ends inside a string or a block comment (the REPL then reads another line).
    pub unterminated: bool,
}

struct Lexer<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
    file: FileId,
    tokens: Vec<Token>,
    errors: Vec<Diagnostic>,
    unterminated: bool,
}

/// Lexes a whole file. Never fails: errors are collected and lexing continues after them.
pub fn lex(text: &str, file: FileId) -> Lexed {
    let mut lexer = Lexer {
        text,
        bytes: text.as_bytes(),
        pos: 0,
        file,
        tokens: Vec::new(),
        errors: Vec::new(),
        unterminated: false,
    };
    lexer.run();
    Lexed {
        tokens: lexer.tokens,
        errors: lexer.errors,
        unterminated: lexer.unterminated,
    }
}

fn is_ident_start(c: char) -> bool {
    c == '_' || c.is_alphabetic()
}

fn is_ident_continue(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

impl<'a> Lexer<'a> {
    fn span(&self, start: usize, end: usize) -> Span {
        Span::new(self.file, start, end)
    }

    fn peek_char(&self) -> Option<char> {
        self.text[self.pos..].chars().next()
    }

    fn peek_byte_at(&self, offset: usize) -> Option<u8> {
        self.bytes.get(self.pos + offset).copied()
    }

    fn push(&mut self, tok: Tok, start: usize) {
        let span = self.span(start, self.pos);
        self.tokens.push(Token { tok, span });
    }

    fn error(&mut self, message: impl Into<String>, start: usize, end: usize) {
        let span = self.span(start, end);
        self.errors.push(Diagnostic::error(message, span));
    }

    fn last_ends_operand(&self) -> bool {
        self.tokens.last().is_some_and(|t| t.tok.ends_operand())
    }

    fn run(&mut self) {
        // Editors on some systems start files with a byte-order mark; it is not text.
        if self.text.starts_with('\u{feff}') {
            self.pos = '\u{feff}'.len_utf8();
        }
        while let Some(c) = self.peek_char() {
            let start = self.pos;
            match c {
                '\n' => {
                    self.pos += 1;
                    // Runs of blank lines make one token.
                    if !matches!(
                        self.tokens.last(),
                        Some(Token {
                            tok: Tok::Newline,
                            ..
                        })
                    ) {
                        self.push(Tok::Newline, start);
                    }
                }
                c if c.is_whitespace() => self.pos += c.len_utf8(),
                '/' if self.peek_byte_at(1) == Some(b'/') => {
                    while let Some(c) = self.peek_char() {
                        if c == '\n' {
                            break;
                        }
                        self.pos += c.len_utf8();
                    }
                }
                '/' if self.peek_byte_at(1) == Some(b'*') => self.block_comment(),
                '"' => self.string(),
                c if c.is_ascii_digit() => self.number(),
                '.' if (!self.last_ends_operand()
                    || self.text[..start].ends_with(char::is_whitespace))
                    && self.peek_byte_at(1).is_some_and(|b| b.is_ascii_digit()) =>
                {
                    self.number()
                }
                c if is_ident_start(c) => {
                    while let Some(c) = self.peek_char() {
                        if !is_ident_continue(c) {
                            break;
                        }
                        self.pos += c.len_utf8();
                    }
                    let name = self.text[start..self.pos].to_string();
                    self.push(Tok::Ident(name), start);
                }
                _ => self.punct(c),
            }
        }
        // The end of file is placed right after the last token, so that "found end of file"
        // points at the last line with text rather than at an empty line below it.
        let end = self
            .tokens
            .iter()
            .rev()
            .find(|t| t.tok != Tok::Newline)
            .map_or(0, |t| t.span.end);
        self.tokens.push(Token {
            tok: Tok::Eof,
            span: self.span(end, end),
        });
    }

    fn block_comment(&mut self) {
        let start = self.pos;
        self.pos += 2;
        let mut depth = 1usize;
        while depth > 0 {
            if self.pos >= self.bytes.len() {
                self.unterminated = true;
                self.error("unterminated block comment", start, start + 2);
                return;
            }
            if self.bytes[self.pos] == b'/' && self.peek_byte_at(1) == Some(b'*') {
                depth += 1;
                self.pos += 2;
            } else if self.bytes[self.pos] == b'*' && self.peek_byte_at(1) == Some(b'/') {
                depth -= 1;
                self.pos += 2;
            } else {
                // Step over a whole character so `pos` stays on a char boundary.
                let c = self.peek_char().map_or(1, char::len_utf8);
                self.pos += c;
            }
        }
    }

    fn string(&mut self) {
        let start = self.pos;
        self.pos += 1;
        let mut value = String::new();
        loop {
            let Some(c) = self.peek_char() else {
                self.unterminated = true;
                self.error("unterminated string", start, start + 1);
                self.push(Tok::Str(value), start);
                return;
            };
            let at = self.pos;
            self.pos += c.len_utf8();
            match c {
                '"' => break,
                '\\' => {
                    let Some(e) = self.peek_char() else {
                        continue;
                    };
                    self.pos += e.len_utf8();
                    match e {
                        'n' => value.push('\n'),
                        't' => value.push('\t'),
                        'r' => value.push('\r'),
                        '0' => value.push('\0'),
                        '"' => value.push('"'),
                        '\'' => value.push('\''),
                        '\\' => value.push('\\'),
                        '{' => value.push('{'),
                        '}' => value.push('}'),
                        other => {
                            let shown: String = other.escape_debug().collect();
                            self.error(
                                format!("unknown escape `\\{shown}` in string"),
                                at,
                                self.pos,
                            );
                        }
                    }
                }
                c => value.push(c),
            }
        }
        self.push(Tok::Str(value), start);
    }

    fn digits(&mut self) -> usize {
        let from = self.pos;
        while let Some(b) = self.peek_byte_at(0) {
            if b.is_ascii_digit() || (b == b'_' && self.pos > from) {
                self.pos += 1;
            } else {
                break;
            }
        }
        self.pos - from
    }

    fn number(&mut self) {
        let start = self.pos;
        let mut is_float = false;
        let mut malformed = false;
        self.digits();
        if self.peek_byte_at(0) == Some(b'.') {
            let next = self.text[self.pos + 1..].chars().next();
            match next {
                Some(d) if d.is_ascii_digit() => {
                    self.pos += 1;
                    self.digits();
                    is_float = true;
                }
                // `1.` is a float; `1.foo` and `1..` are not part of the number.
                Some(c) if is_ident_start(c) || c == '.' => {}
                _ => {
                    self.pos += 1;
                    is_float = true;
                }
            }
        }
        if matches!(self.peek_byte_at(0), Some(b'e' | b'E')) {
            let save = self.pos;
            self.pos += 1;
            if matches!(self.peek_byte_at(0), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if self.digits() == 0 {
                // `1e`, `1e+`, `2em`: a malformed exponent (unless it is plainly a name).
                malformed = true;
                if self.pos == save + 1 && !is_float {
                    // `3elements`: report the whole run below.
                    self.pos = save;
                }
            }
            is_float = true;
        }
        // Letters glued to a number make the whole run one malformed literal (`3x`, `1e5q`).
        let mut glued = false;
        while let Some(c) = self.peek_char() {
            if !is_ident_continue(c) {
                break;
            }
            glued = true;
            self.pos += c.len_utf8();
        }
        let text = &self.text[start..self.pos];
        if malformed || glued {
            self.error(format!("invalid number literal `{text}`"), start, self.pos);
            let tok = if is_float {
                Tok::Float(0.0)
            } else {
                Tok::Int(0)
            };
            self.push(tok, start);
            return;
        }
        let clean: String = text.chars().filter(|&c| c != '_').collect();
        if is_float {
            match clean.parse::<f64>() {
                Ok(v) => self.push(Tok::Float(v), start),
                Err(_) => {
                    self.error(format!("invalid number literal `{text}`"), start, self.pos);
                    self.push(Tok::Float(0.0), start);
                }
            }
        } else {
            match clean.parse::<i64>() {
                Ok(v) => self.push(Tok::Int(v), start),
                Err(_) => {
                    self.error(
                        format!(
                            "integer literal `{text}` is too large (the largest is {})",
                            i64::MAX
                        ),
                        start,
                        self.pos,
                    );
                    self.push(Tok::Int(0), start);
                }
            }
        }
    }

    fn punct(&mut self, c: char) {
        let start = self.pos;
        let next = self.peek_byte_at(1);
        let (tok, len) = match (c, next) {
            ('(', _) => (Tok::LParen, 1),
            (')', _) => (Tok::RParen, 1),
            ('[', _) => (Tok::LBracket, 1),
            (']', _) => (Tok::RBracket, 1),
            ('{', _) => (Tok::LBrace, 1),
            ('}', _) => (Tok::RBrace, 1),
            (',', _) => (Tok::Comma, 1),
            (';', _) => (Tok::Semi, 1),
            (':', Some(b':')) => (Tok::ColonColon, 2),
            (':', Some(b'=')) => (Tok::ColonEq, 2),
            (':', Some(b'-')) => (Tok::ColonDash, 2),
            (':', _) => (Tok::Colon, 1),
            ('.', _) => (Tok::Dot, 1),
            ('?', _) => (Tok::Question, 1),
            ('\'', _) => (Tok::Quote, 1),
            ('+', Some(b'=')) => (Tok::PlusEq, 2),
            ('+', _) => (Tok::Plus, 1),
            ('-', Some(b'=')) => (Tok::MinusEq, 2),
            ('-', Some(b'>')) => (Tok::Arrow, 2),
            ('-', _) => (Tok::Minus, 1),
            ('*', Some(b'*')) => (Tok::StarStar, 2),
            ('*', Some(b'=')) => (Tok::StarEq, 2),
            ('*', _) => (Tok::Star, 1),
            ('/', Some(b'=')) => (Tok::SlashEq, 2),
            ('/', _) => (Tok::Slash, 1),
            ('%', _) => (Tok::Percent, 1),
            ('@', _) => (Tok::At, 1),
            ('!', Some(b'=')) => (Tok::NotEq, 2),
            ('!', _) => (Tok::Bang, 1),
            ('=', Some(b'=')) => (Tok::EqEq, 2),
            ('=', _) => (Tok::Eq, 1),
            ('<', Some(b'=')) => (Tok::Le, 2),
            ('<', Some(b'-')) => (Tok::LArrow, 2),
            ('<', _) => (Tok::Lt, 1),
            ('>', Some(b'=')) => (Tok::Ge, 2),
            ('>', _) => (Tok::Gt, 1),
            ('&', Some(b'&')) => (Tok::AndAnd, 2),
            ('|', Some(b'|')) => (Tok::OrOr, 2),
            _ => {
                self.pos += c.len_utf8();
                let hint = match c {
                    '&' => " (did you mean `&&`?)",
                    '|' => " (did you mean `||`?)",
                    '#' => " (comments start with `//`)",
                    _ => "",
                };
                let shown: String = c.escape_debug().collect();
                self.error(
                    format!("unexpected character `{shown}`{hint}"),
                    start,
                    self.pos,
                );
                return;
            }
        };
        self.pos += len;
        self.push(tok, start);
    }
}
