//! The parser: tokens to [`ast::Program`]. Recursive descent for items and statements, a Pratt
//! (binding power) loop for expressions.
//!
//! Newlines end statements except inside `(`/`[` (and the brace lists of struct literals and
//! declarations) and after a token that cannot end a line ([`Tok::continues_line`]). The parser
//! keeps a stack of [`Mode`]s for this; [`Parser::peek`] skips newlines when they do not count.
//!
//! Errors are collected: a failed statement is reported, the tokens up to the next statement
//! boundary at the same nesting level are skipped, and parsing goes on.

use crate::ast::*;
use crate::diagnostic::Diagnostic;
use crate::lexer::{Tok, Token};
use crate::span::{FileId, SourceFile, Span};

type PResult<T> = Result<T, Diagnostic>;

/// Words that can never be names.
const RESERVED: &[&str] = &[
    "let", "if", "else", "for", "in", "while", "break", "continue", "return", "fn", "struct",
    "impl", "true", "false", "and", "or", "not", "as",
];

/// Words after a line break that surely start a new statement (used to stop error recovery
/// that would otherwise run on inside a never-closed bracket).
const STATEMENT_STARTS: &[&str] = &[
    "let", "if", "for", "while", "return", "fn", "struct", "impl", "import", "break", "continue",
];

/// Tensor element types usable in `DTYPE[dims]`.
pub const DTYPES: &[&str] = &[
    "float16", "float32", "float64", "bfloat16", "int32", "int64", "bool",
];

/// Deepest nesting of expressions and blocks accepted; deeper input is an error rather than a
/// stack overflow.
const MAX_DEPTH: usize = 128;

pub fn is_reserved(name: &str) -> bool {
    RESERVED.contains(&name)
}

/// How newlines are treated inside the innermost open bracket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Inside a `{ }` block (or at top level): newlines end statements.
    Lines,
    /// Inside `( )` or `[ ]`: newlines are spaces.
    Paren,
    /// Inside the `{ }` of a struct literal or a declaration's settings: newlines are spaces.
    Brace,
}

pub struct Parser<'s> {
    tokens: Vec<Token>,
    pos: usize,
    file: FileId,
    source: &'s SourceFile,
    modes: Vec<Mode>,
    /// The last token taken cannot end a line, so a following newline is a space.
    prev_continues: bool,
    /// The last token taken was `}` (a statement ending in a block needs no separator).
    prev_closed_brace: bool,
    prev_end: usize,
    /// Struct literals are not allowed here (the condition of `if`/`while`/`for`).
    no_struct: bool,
    depth: usize,
    diags: Vec<Diagnostic>,
    eof_reported: bool,
    /// The mode stack when the last error was made, for recovery to know what is open.
    modes_at_error: Vec<Mode>,
}

impl<'s> Parser<'s> {
    pub fn new(tokens: Vec<Token>, file: FileId, source: &'s SourceFile) -> Parser<'s> {
        Parser {
            tokens,
            pos: 0,
            file,
            source,
            modes: Vec::new(),
            prev_continues: false,
            prev_closed_brace: false,
            prev_end: 0,
            no_struct: false,
            depth: 0,
            diags: Vec::new(),
            eof_reported: false,
            modes_at_error: Vec::new(),
        }
    }

    // ----- token access -------------------------------------------------------------------

    fn newlines_ignored(&self) -> bool {
        self.prev_continues || matches!(self.modes.last(), Some(Mode::Paren | Mode::Brace))
    }

    fn skip_ignored_newlines(&mut self) {
        if self.newlines_ignored() {
            while self.tokens[self.pos].tok == Tok::Newline {
                self.pos += 1;
            }
        }
    }

    fn peek(&mut self) -> &Tok {
        self.skip_ignored_newlines();
        &self.tokens[self.pos].tok
    }

    fn peek_span(&mut self) -> Span {
        self.skip_ignored_newlines();
        self.tokens[self.pos].span
    }

    /// The token `n` places after the next one; newlines count as tokens only where they end
    /// statements.
    fn peek_nth(&mut self, n: usize) -> &Tok {
        self.skip_ignored_newlines();
        let skip_newlines = matches!(self.modes.last(), Some(Mode::Paren | Mode::Brace));
        let mut i = self.pos;
        let mut left = n;
        while left > 0 && self.tokens[i].tok != Tok::Eof {
            i += 1;
            if skip_newlines {
                while self.tokens[i].tok == Tok::Newline {
                    i += 1;
                }
            }
            left -= 1;
        }
        &self.tokens[i].tok
    }

    /// Like [`Parser::peek_nth`] but always looking through newlines.
    fn peek_nth_any_line(&mut self, n: usize) -> &Tok {
        self.skip_ignored_newlines();
        let mut i = self.pos;
        let mut left = n;
        while left > 0 && self.tokens[i].tok != Tok::Eof {
            i += 1;
            while self.tokens[i].tok == Tok::Newline {
                i += 1;
            }
            left -= 1;
        }
        &self.tokens[i].tok
    }

    fn bump(&mut self) -> Token {
        self.skip_ignored_newlines();
        let token = self.tokens[self.pos].clone();
        if token.tok != Tok::Eof {
            self.pos += 1;
        }
        self.prev_end = token.span.end;
        self.prev_continues = token.tok.continues_line();
        self.prev_closed_brace = token.tok == Tok::RBrace;
        token
    }

    fn at(&mut self, tok: &Tok) -> bool {
        self.peek() == tok
    }

    fn eat(&mut self, tok: &Tok) -> bool {
        if self.at(tok) {
            self.bump();
            true
        } else {
            false
        }
    }

    fn at_kw(&mut self, kw: &str) -> bool {
        matches!(self.peek(), Tok::Ident(name) if name == kw)
    }

    fn eat_kw(&mut self, kw: &str) -> bool {
        if self.at_kw(kw) {
            self.bump();
            true
        } else {
            false
        }
    }

    /// `:-` glued to a value (`x[:-1]`, `dim:-1`) is a colon then a minus: split the token.
    fn split_colon_dash(&mut self) {
        self.skip_ignored_newlines();
        if self.tokens[self.pos].tok == Tok::ColonDash {
            let span = self.tokens[self.pos].span;
            self.tokens[self.pos] = Token {
                tok: Tok::Colon,
                span: Span::new(span.file, span.start, span.start + 1),
            };
            self.tokens.insert(
                self.pos + 1,
                Token {
                    tok: Tok::Minus,
                    span: Span::new(span.file, span.start + 1, span.end),
                },
            );
        }
    }

    fn span_from(&self, start: usize) -> Span {
        Span::new(self.file, start, self.prev_end.max(start))
    }

    fn line_of(&self, span: Span) -> usize {
        self.source.line_col(span.start).0
    }

    fn error(&mut self, message: impl Into<String>, span: Span) -> Diagnostic {
        self.modes_at_error = self.modes.clone();
        Diagnostic::error(message, span)
    }

    /// An error at the next token: "expected WHAT, found TOKEN".
    fn expected(&mut self, what: &str) -> Diagnostic {
        let span = self.peek_span();
        let found = self.peek().describe();
        self.error(format!("expected {what}, found {found}"), span)
    }

    fn expect(&mut self, tok: Tok, context: &str) -> PResult<Token> {
        if self.at(&tok) {
            Ok(self.bump())
        } else {
            Err(self.expected(&format!("`{}`{context}", tok.symbol())))
        }
    }

    /// Expects the bracket `close` matching `open`, with a message naming what was opened.
    fn expect_close(&mut self, close: Tok, what: &str, open: Span) -> PResult<Token> {
        if self.at(&close) {
            return Ok(self.bump());
        }
        let (line, col) = self.source.line_col(open.start);
        let found = self.peek().describe();
        let span = self.peek_span();
        let d = self.error(
            format!(
                "expected `{}` to close the {what} started here, found {found}",
                close.symbol()
            ),
            span,
        );
        Err(d.with_note(format!("the {what} started at line {line}, column {col}")))
    }

    fn ident(&mut self, what: &str) -> PResult<(String, Span)> {
        match self.peek().clone() {
            Tok::Ident(name) if !is_reserved(&name) => {
                let t = self.bump();
                Ok((name, t.span))
            }
            _ => Err(self.expected(what)),
        }
    }

    fn with_mode<T>(&mut self, mode: Mode, f: impl FnOnce(&mut Self) -> PResult<T>) -> PResult<T> {
        self.modes.push(mode);
        let saved_no_struct = self.no_struct;
        if mode != Mode::Lines {
            self.no_struct = false;
        }
        let result = f(self);
        self.no_struct = saved_no_struct;
        self.modes.pop();
        result
    }

    /// Comma-separated items (a trailing comma allowed) up to `close`, which is consumed; the
    /// opening delimiter, at `open`, was consumed by the caller. Newlines inside are ignored.
    fn comma_list<T>(
        &mut self,
        close: Tok,
        what: &str,
        open: Span,
        mut item: impl FnMut(&mut Self) -> PResult<T>,
    ) -> PResult<Vec<T>> {
        self.with_mode(Mode::Paren, |p| {
            let mut items = Vec::new();
            while !p.at(&close) {
                items.push(item(p)?);
                if !p.eat(&Tok::Comma) {
                    break;
                }
            }
            p.expect_close(close, what, open)?;
            Ok(items)
        })
    }

    fn nested<T>(&mut self, f: impl FnOnce(&mut Self) -> PResult<T>) -> PResult<T> {
        self.depth += 1;
        let result = if self.depth > MAX_DEPTH {
            let span = self.peek_span();
            Err(self.error(
                format!("the program is nested too deeply here (more than {MAX_DEPTH} levels)"),
                span,
            ))
        } else {
            f(self)
        };
        self.depth -= 1;
        result
    }

    // ----- error recovery -----------------------------------------------------------------

    fn report(&mut self, d: Diagnostic) {
        if d.message.starts_with("unexpected end of file") {
            if self.eof_reported {
                return;
            }
            self.eof_reported = true;
        }
        self.diags.push(d);
    }

    /// After an error in a statement that started with `base` modes open: skip to the end of
    /// that statement (a newline or `;` outside the brackets it opened), or to the `}` closing
    /// the enclosing block (left for the block to take).
    fn recover(&mut self, base: usize) {
        let open = self.modes_at_error.get(base..).unwrap_or(&[]);
        let mut parens = open.iter().filter(|m| **m == Mode::Paren).count();
        let mut braces = open.iter().filter(|m| **m != Mode::Paren).count();
        self.modes.truncate(base);
        self.modes_at_error.clear();
        self.prev_continues = false;
        self.prev_closed_brace = false;
        self.no_struct = false;
        loop {
            match &self.tokens[self.pos].tok {
                Tok::Eof => return,
                Tok::Newline | Tok::Semi if parens == 0 && braces == 0 => {
                    self.pos += 1;
                    return;
                }
                Tok::Newline => {
                    self.pos += 1;
                    if matches!(&self.tokens[self.pos].tok,
                        Tok::Ident(w) if STATEMENT_STARTS.contains(&w.as_str()))
                    {
                        return;
                    }
                    continue;
                }
                Tok::LParen | Tok::LBracket => parens += 1,
                Tok::RParen | Tok::RBracket => parens = parens.saturating_sub(1),
                Tok::LBrace => braces += 1,
                Tok::RBrace => {
                    if braces == 0 {
                        return;
                    }
                    braces -= 1;
                }
                _ => {}
            }
            self.pos += 1;
        }
    }

    fn skip_separators(&mut self) {
        while matches!(self.tokens[self.pos].tok, Tok::Newline | Tok::Semi) {
            self.pos += 1;
        }
    }

    // ----- program and items --------------------------------------------------------------

    pub fn program(mut self) -> (Program, Vec<Diagnostic>) {
        let mut items = Vec::new();
        loop {
            self.prev_continues = false;
            self.skip_separators();
            let before = self.pos;
            match self.tokens[self.pos].tok.clone() {
                Tok::Eof => break,
                Tok::RBrace => {
                    let span = self.tokens[self.pos].span;
                    let d = self.error("unexpected `}`: there is no open `{` to close", span);
                    self.report(d);
                    self.pos += 1;
                    continue;
                }
                _ => {}
            }
            match self
                .item()
                .and_then(|item| self.expect_stmt_end(false).map(|_| item))
            {
                Ok(item) => items.push(item),
                Err(d) => {
                    self.report(d);
                    self.recover(0);
                }
            }
            if self.pos == before && self.tokens[self.pos].tok != Tok::Eof {
                self.pos += 1;
            }
        }
        (Program { items }, self.diags)
    }

    /// After a statement: the next token must end it (a newline, `;`, `}` or the end of the
    /// file; in `learn` also `,`). A statement ending in `}` needs nothing more.
    fn expect_stmt_end(&mut self, in_learn: bool) -> PResult<()> {
        if self.prev_closed_brace {
            return Ok(());
        }
        match self.peek() {
            Tok::Newline | Tok::Semi | Tok::RBrace | Tok::Eof => Ok(()),
            Tok::Comma if in_learn => Ok(()),
            _ => Err(self.expected("the end of the statement (a new line or `;`)")),
        }
    }

    fn item(&mut self) -> PResult<Item> {
        let start = self.peek_span().start;
        let word = match self.peek() {
            Tok::Ident(w) => w.clone(),
            _ => String::new(),
        };
        let next = self.peek_nth(1).clone();
        let next2 = self.peek_nth(2).clone();
        let kind = match word.as_str() {
            "import" if matches!(next, Tok::Str(_) | Tok::Ident(_) | Tok::Newline | Tok::Eof) => {
                self.bump();
                match self.peek().clone() {
                    Tok::Str(path) => {
                        self.bump();
                        ItemKind::Import(path)
                    }
                    _ => {
                        return Err(
                            self.expected("a quoted path after `import` (`import \"lib.tl\"`)")
                        );
                    }
                }
            }
            "tensor" if matches!(next, Tok::Ident(_)) && next2 == Tok::Colon => {
                ItemKind::TensorDecl(self.tensor_decl()?)
            }
            "relation" if matches!(next, Tok::Ident(_)) && next2 == Tok::LParen => {
                ItemKind::Relation(self.relation_decl()?)
            }
            "embedding" if matches!(next, Tok::Ident(_)) && next2 == Tok::LBrace => {
                ItemKind::Embedding(self.embedding_decl()?)
            }
            "fn" => ItemKind::Fn(self.fn_decl()?),
            "struct" => ItemKind::Struct(self.struct_decl()?),
            "impl" => ItemKind::Impl(self.impl_decl()?),
            "main" if next == Tok::LBrace => {
                self.bump();
                ItemKind::Main(self.block()?)
            }
            "test" | "bench"
                if matches!(next, Tok::Ident(_) | Tok::Str(_)) && next2 == Tok::LBrace =>
            {
                self.bump();
                let name = match self.bump().tok {
                    Tok::Ident(n) | Tok::Str(n) => n,
                    _ => String::new(),
                };
                let body = self.block()?;
                if word == "test" {
                    ItemKind::Test { name, body }
                } else {
                    ItemKind::Bench { name, body }
                }
            }
            _ => {
                let stmt = self.stmt()?;
                match stmt.kind {
                    StmtKind::Rule(rule) => ItemKind::Rule(rule),
                    kind => ItemKind::Stmt(Stmt {
                        kind,
                        span: stmt.span,
                    }),
                }
            }
        };
        Ok(Item {
            kind,
            span: self.span_from(start),
        })
    }

    fn tensor_decl(&mut self) -> PResult<TensorDecl> {
        self.bump(); // tensor
        let (name, _) = self.ident("a tensor name")?;
        self.expect(Tok::Colon, " after the tensor name")?;
        let ty = match self.ty()? {
            TypeExpr::Tensor(t) => t,
            TypeExpr::Named(n) => {
                let span = Span::new(self.file, self.prev_end - n.len(), self.prev_end);
                return Err(self.error(
                    format!("expected a tensor type such as `float32[4, 4]`, found `{n}`"),
                    span,
                ));
            }
        };
        let role = if self.eat_kw("learnable") {
            Some(TensorRole::Learnable)
        } else if self.eat_kw("frozen") {
            Some(TensorRole::Frozen)
        } else {
            None
        };
        let init = if self.eat(&Tok::Eq) {
            Some(self.expr()?)
        } else {
            None
        };
        Ok(TensorDecl {
            name,
            ty,
            role,
            init,
        })
    }

    fn relation_decl(&mut self) -> PResult<RelationDecl> {
        self.bump(); // relation
        let (name, _) = self.ident("a relation name")?;
        let params = self.params()?;
        let embed = if self.eat_kw("embed") {
            match self.ty()? {
                TypeExpr::Tensor(t) => Some(t),
                TypeExpr::Named(n) => {
                    let span = Span::new(self.file, self.prev_end - n.len(), self.prev_end);
                    return Err(self.error(
                        format!("expected a tensor type after `embed`, found `{n}`"),
                        span,
                    ));
                }
            }
        } else {
            None
        };
        Ok(RelationDecl {
            name,
            params,
            embed,
        })
    }

    fn embedding_decl(&mut self) -> PResult<EmbeddingDecl> {
        let start = self.bump().span; // embedding
        let (name, _) = self.ident("an embedding name")?;
        let open = self
            .expect(Tok::LBrace, " to start the embedding settings")?
            .span;
        let mut entities: Option<Option<Vec<String>>> = None;
        let mut dimension = None;
        let mut init = None;
        self.with_mode(Mode::Brace, |p| {
            loop {
                while p.eat(&Tok::Comma) {}
                if p.at(&Tok::RBrace) || p.at(&Tok::Eof) {
                    break;
                }
                let (key, key_span) = p.ident("an embedding setting (`entities`, `dimension` or `init`)")?;
                p.expect(Tok::Colon, &format!(" after `{key}`"))?;
                match key.as_str() {
                    "entities" => {
                        if p.eat_kw("auto") {
                            entities = Some(None);
                        } else {
                            let list_open =
                                p.expect(Tok::LBrace, " or `auto` after `entities:`")?.span;
                            let mut names = Vec::new();
                            loop {
                                while p.eat(&Tok::Comma) {}
                                if p.at(&Tok::RBrace) {
                                    break;
                                }
                                names.push(p.ident("an entity name")?.0);
                                if !p.at(&Tok::RBrace) && !p.at(&Tok::Comma) {
                                    return Err(p.expected("`,` or `}` in the entity list"));
                                }
                            }
                            p.expect_close(Tok::RBrace, "entity list", list_open)?;
                            entities = Some(Some(names));
                        }
                    }
                    "dimension" => match p.peek().clone() {
                        Tok::Int(n) if n > 0 => {
                            p.bump();
                            dimension = Some(n as usize);
                        }
                        _ => return Err(p.expected("a positive integer dimension")),
                    },
                    "init" => init = Some(p.ident("an initialiser name such as `xavier`")?.0),
                    other => {
                        return Err(p.error(
                            format!(
                                "unknown embedding setting `{other}` (expected `entities`, `dimension` or `init`)"
                            ),
                            key_span,
                        ));
                    }
                }
            }
            p.expect_close(Tok::RBrace, "embedding settings", open)?;
            Ok(())
        })?;
        let span = self.span_from(start.start);
        let Some(entities) = entities else {
            return Err(self.error(
                format!("embedding `{name}` needs an `entities` setting (a list or `auto`)"),
                span,
            ));
        };
        let Some(dimension) = dimension else {
            return Err(self.error(
                format!("embedding `{name}` needs a `dimension` setting"),
                span,
            ));
        };
        Ok(EmbeddingDecl {
            name,
            entities,
            dimension,
            init,
        })
    }

    fn fn_decl(&mut self) -> PResult<FnDecl> {
        if !self.at_kw("fn") {
            return Err(self.expected("`fn`"));
        }
        let start = self.bump().span.start;
        let (name, _) = self.ident("a function name")?;
        let params = self.params()?;
        let ret = if self.eat(&Tok::Arrow) {
            Some(self.ty()?)
        } else {
            None
        };
        let body = self.block()?;
        Ok(FnDecl {
            name,
            params,
            ret,
            body,
            span: self.span_from(start),
        })
    }

    /// `(a: T, b, c: U)`
    fn params(&mut self) -> PResult<Vec<Param>> {
        let open = self
            .expect(Tok::LParen, " to start the parameter list")?
            .span;
        self.comma_list(Tok::RParen, "parameter list", open, |p| p.param(false))
    }

    fn param(&mut self, type_required: bool) -> PResult<Param> {
        let (name, span) = self.ident("a parameter name")?;
        let ty = if self.eat(&Tok::Colon) {
            Some(self.ty()?)
        } else if type_required {
            return Err(self.expected(&format!("`:` and a type after `{name}`")));
        } else {
            None
        };
        Ok(Param {
            name,
            ty,
            span: self.span_from(span.start),
        })
    }

    fn struct_decl(&mut self) -> PResult<StructDecl> {
        self.bump(); // struct
        let (name, _) = self.ident("a struct name")?;
        let open = self
            .expect(Tok::LBrace, " to start the struct fields")?
            .span;
        let fields = self.with_mode(Mode::Brace, |p| {
            let mut fields = Vec::new();
            loop {
                while p.eat(&Tok::Comma) {}
                if p.at(&Tok::RBrace) || p.at(&Tok::Eof) {
                    break;
                }
                fields.push(p.param(true)?);
            }
            p.expect_close(Tok::RBrace, "struct", open)?;
            Ok(fields)
        })?;
        Ok(StructDecl { name, fields })
    }

    fn impl_decl(&mut self) -> PResult<ImplDecl> {
        self.bump(); // impl
        let (type_name, _) = self.ident("a type name after `impl`")?;
        let open = self.expect(Tok::LBrace, " to start the `impl` body")?.span;
        let methods = self.with_mode(Mode::Brace, |p| {
            let mut methods = Vec::new();
            loop {
                while p.eat(&Tok::Semi) {}
                if p.at(&Tok::RBrace) || p.at(&Tok::Eof) {
                    break;
                }
                if !p.at_kw("fn") {
                    return Err(p.expected("`fn` (only methods go inside `impl`)"));
                }
                methods.push(p.fn_decl()?);
            }
            p.expect_close(Tok::RBrace, "`impl` body", open)?;
            Ok(methods)
        })?;
        Ok(ImplDecl { type_name, methods })
    }

    /// `float32[2, n, ?]`, `int`, `Point`
    fn ty(&mut self) -> PResult<TypeExpr> {
        let (name, span) = self.ident("a type")?;
        if !self.at(&Tok::LBracket) {
            return Ok(TypeExpr::Named(name));
        }
        if !DTYPES.contains(&name.as_str()) {
            return Err(self.error(
                format!(
                    "`{name}` is not a tensor element type (expected one of {})",
                    DTYPES.join(", ")
                ),
                span,
            ));
        }
        let open = self.bump().span;
        let dims = self.comma_list(Tok::RBracket, "shape", open, |p| {
            let dim = match p.peek().clone() {
                Tok::Int(n) if n >= 0 => Dim::Fixed(n as usize),
                Tok::Ident(d) if !is_reserved(&d) => Dim::Named(d),
                Tok::Question => Dim::Any,
                _ => return Err(p.expected("a dimension (an integer, a name or `?`)")),
            };
            p.bump();
            Ok(dim)
        })?;
        Ok(TypeExpr::Tensor(TensorType {
            dtype: name,
            dims,
            span: self.span_from(span.start),
        }))
    }

    // ----- statements ---------------------------------------------------------------------

    /// `{ stmts }`
    fn block(&mut self) -> PResult<Block> {
        // A block is required here, so a `{` on the next line (Allman style) is still ours.
        let mut i = self.pos;
        while self.tokens[i].tok == Tok::Newline {
            i += 1;
        }
        if self.tokens[i].tok == Tok::LBrace {
            self.pos = i;
        }
        let open = self.expect(Tok::LBrace, " to start a block")?.span;
        let (stmts, _, end) = self.block_body(open, false)?;
        Ok(Block {
            stmts,
            span: Span::new(self.file, open.start, end),
        })
    }

    /// The statements of a block whose `{` (at `open`) was just taken, up to and including its
    /// `}`. In a `learn` block, lines `NAME: expr` are settings. Returns the end offset.
    #[allow(clippy::type_complexity)]
    fn block_body(
        &mut self,
        open: Span,
        in_learn: bool,
    ) -> PResult<(Vec<Stmt>, Vec<(String, Expr)>, usize)> {
        self.nested(|p| {
            p.modes.push(Mode::Lines);
            let saved_no_struct = std::mem::replace(&mut p.no_struct, false);
            let base = p.modes.len();
            let mut stmts = Vec::new();
            let mut settings = Vec::new();
            let result = loop {
                p.prev_continues = false;
                p.skip_separators();
                if in_learn {
                    while matches!(p.tokens[p.pos].tok, Tok::Comma | Tok::Newline | Tok::Semi) {
                        p.pos += 1;
                    }
                }
                let before = p.pos;
                match p.tokens[p.pos].tok {
                    Tok::RBrace => {
                        let end = p.bump().span.end;
                        break Ok(end);
                    }
                    Tok::Eof => {
                        let line = p.line_of(open);
                        let span = p.tokens[p.pos].span;
                        break Err(p.error(
                            format!(
                                "unexpected end of file: `{{` opened at line {line} is never closed"
                            ),
                            span,
                        ));
                    }
                    _ => {}
                }
                let is_setting = in_learn
                    && matches!(p.peek(), Tok::Ident(n) if !is_reserved(n))
                    && matches!(p.peek_nth(1), Tok::Colon | Tok::ColonDash);
                let outcome = if is_setting {
                    p.learn_setting().map(|s| settings.push(s))
                } else {
                    p.stmt().map(|s| stmts.push(s))
                };
                match outcome.and_then(|_| p.expect_stmt_end(in_learn)) {
                    Ok(()) => {}
                    Err(d) => {
                        p.report(d);
                        p.recover(base);
                    }
                }
                if p.pos == before && !matches!(p.tokens[p.pos].tok, Tok::RBrace | Tok::Eof) {
                    p.pos += 1;
                }
            };
            p.modes.truncate(base - 1);
            p.no_struct = saved_no_struct;
            result.map(|end| (stmts, settings, end))
        })
    }

    fn learn_setting(&mut self) -> PResult<(String, Expr)> {
        let (name, _) = self.ident("a setting name")?;
        self.split_colon_dash();
        self.expect(Tok::Colon, "")?;
        let value = self.expr()?;
        Ok((name, value))
    }

    fn stmt(&mut self) -> PResult<Stmt> {
        let start = self.peek_span().start;
        let word = match self.peek() {
            Tok::Ident(w) => w.clone(),
            Tok::LBrace => {
                let block = self.block()?;
                return Ok(Stmt {
                    kind: StmtKind::Block(block),
                    span: self.span_from(start),
                });
            }
            _ => String::new(),
        };
        let kind = match word.as_str() {
            "let" => {
                self.bump();
                let (name, _) = self.ident("a variable name after `let`")?;
                let ty = if self.eat(&Tok::Colon) {
                    Some(self.ty()?)
                } else {
                    None
                };
                self.expect(Tok::Eq, &format!(" and a value after `let {name}`"))?;
                let value = self.expr()?;
                StmtKind::Let { name, ty, value }
            }
            "if" => return self.if_stmt(),
            "for" => {
                self.bump();
                let (var, _) = self.ident("a loop variable after `for`")?;
                if !self.eat_kw("in") {
                    return Err(self.expected("`in` after the loop variable"));
                }
                let iter = self.condition()?;
                let body = self.block()?;
                StmtKind::For { var, iter, body }
            }
            "while" => {
                self.bump();
                let cond = self.condition()?;
                let body = self.block()?;
                StmtKind::While { cond, body }
            }
            "break" => {
                self.bump();
                StmtKind::Break
            }
            "continue" => {
                self.bump();
                StmtKind::Continue
            }
            "return" => {
                self.bump();
                if matches!(
                    self.peek(),
                    Tok::Newline | Tok::Semi | Tok::RBrace | Tok::Eof
                ) {
                    StmtKind::Return(None)
                } else {
                    StmtKind::Return(Some(self.expr()?))
                }
            }
            "query"
                if matches!(self.peek_nth(1), Tok::Ident(_))
                    && self.peek_nth(2) == &Tok::LParen =>
            {
                self.bump();
                let atom = self.atom()?;
                let condition = if self.eat_kw("where") {
                    Some(self.expr()?)
                } else {
                    None
                };
                self.eat(&Tok::Question);
                StmtKind::Query { atom, condition }
            }
            "infer" if matches!(self.peek_nth(1), Tok::Ident(d) if d == "forward" || d == "backward") =>
            {
                self.bump();
                let direction = if self.bump().tok == Tok::Ident("forward".into()) {
                    InferDirection::Forward
                } else {
                    InferDirection::Backward
                };
                let atom = self.atom()?;
                self.eat(&Tok::Question);
                StmtKind::Infer { direction, atom }
            }
            "learn" if self.peek_nth(1) == &Tok::LBrace => {
                self.bump();
                let open = self.bump().span;
                let (body, settings, _) = self.block_body(open, true)?;
                StmtKind::Learn { body, settings }
            }
            "rule" if matches!(self.peek_nth(1), Tok::Ident(_)) => {
                self.bump();
                let head = self.atom()?;
                if !matches!(self.peek(), Tok::LArrow | Tok::ColonDash) {
                    return Err(self.expected("`<-` or `:-` after the rule head"));
                }
                self.bump();
                StmtKind::Rule(Rule {
                    head,
                    body: self.rule_body()?,
                })
            }
            "fn" | "struct" | "impl" => {
                let span = self.peek_span();
                return Err(self.error(
                    format!("`{word}` declarations are only allowed at the top level of a file"),
                    span,
                ));
            }
            "else" => {
                let span = self.peek_span();
                return Err(self.error("`else` without a preceding `if`", span));
            }
            _ => self.expr_stmt()?,
        };
        Ok(Stmt {
            kind,
            span: self.span_from(start),
        })
    }

    /// An expression in a position where a `{` starts the block (no struct literals).
    fn condition(&mut self) -> PResult<Expr> {
        let saved = std::mem::replace(&mut self.no_struct, true);
        let result = self.expr();
        self.no_struct = saved;
        result
    }

    fn if_stmt(&mut self) -> PResult<Stmt> {
        let start = self.bump().span.start; // if
        let cond = self.condition()?;
        let then = self.block()?;
        // `else` may follow on the next line.
        let mut i = self.pos;
        while self.tokens[i].tok == Tok::Newline {
            i += 1;
        }
        let otherwise = if self.tokens[i].tok == Tok::Ident("else".into()) {
            self.pos = i;
            self.bump();
            if self.at_kw("if") {
                let nested = self.nested(|p| p.if_stmt())?;
                Some(Block {
                    span: nested.span,
                    stmts: vec![nested],
                })
            } else {
                Some(self.block()?)
            }
        } else {
            None
        };
        Ok(Stmt {
            kind: StmtKind::If {
                cond,
                then,
                otherwise,
            },
            span: self.span_from(start),
        })
    }

    /// A statement that starts with an expression: an assignment or tensor equation, a rule,
    /// a query (`Parent(alice, X)?`, `Y?`) or a plain expression.
    fn expr_stmt(&mut self) -> PResult<StmtKind> {
        let target = self.expr()?;
        let op = match self.peek().clone() {
            Tok::Eq => Some(AssignOp::Assign),
            Tok::ColonEq => Some(AssignOp::Bind),
            Tok::PlusEq => Some(AssignOp::AddAssign),
            Tok::MinusEq => Some(AssignOp::SubAssign),
            Tok::StarEq => Some(AssignOp::MulAssign),
            Tok::SlashEq => Some(AssignOp::DivAssign),
            Tok::Ident(w) if (w == "max" || w == "avg") && self.peek_nth(1) == &Tok::Eq => {
                self.bump();
                Some(if w == "max" {
                    AssignOp::MaxAssign
                } else {
                    AssignOp::AvgAssign
                })
            }
            Tok::LArrow | Tok::ColonDash => {
                let head = self.expr_to_atom(&target)?;
                self.bump();
                return Ok(StmtKind::Rule(Rule {
                    head,
                    body: self.rule_body()?,
                }));
            }
            Tok::Question => {
                self.bump();
                return Ok(match self.call_as_atom(&target) {
                    Some(atom) => StmtKind::Query {
                        atom,
                        condition: None,
                    },
                    None => StmtKind::TensorQuery(target),
                });
            }
            _ => None,
        };
        let Some(op) = op else {
            return Ok(StmtKind::Expr(target));
        };
        let op_span = self.bump().span;
        match target.kind {
            ExprKind::Name(_)
            | ExprKind::Index { .. }
            | ExprKind::Member { .. }
            | ExprKind::Call { .. }
            | ExprKind::Str(_) => {}
            _ => {
                return Err(self.error(
                    format!(
                        "cannot assign to this expression (the left side of `{}` must be a name, an index like `x[i]`, a field like `a.b`, or a relation head)",
                        op_symbol(op)
                    ),
                    target.span,
                ));
            }
        }
        if !matches!(
            op,
            AssignOp::Assign | AssignOp::MaxAssign | AssignOp::AvgAssign
        ) && matches!(target.kind, ExprKind::Call { .. } | ExprKind::Str(_))
        {
            return Err(self.error(
                format!("`{}` cannot be used with this left side", op_symbol(op)),
                op_span,
            ));
        }
        let value = self.expr()?;
        Ok(StmtKind::Assign { target, op, value })
    }

    /// `Name(term, ...)`
    fn atom(&mut self) -> PResult<Atom> {
        let start = self.peek_span().start;
        let (name, _) = self.ident("a relation name")?;
        let open = self.expect(Tok::LParen, &format!(" after `{name}`"))?.span;
        let args = self.comma_list(Tok::RParen, "atom", open, |p| {
            let e = p.expr()?;
            expr_to_term(&e).ok_or_else(|| {
                p.error(
                    "expected a term (a variable, a symbol, an integer, a string or `_`)",
                    e.span,
                )
            })
        })?;
        Ok(Atom {
            name,
            args,
            span: self.span_from(start),
        })
    }

    fn rule_body(&mut self) -> PResult<Vec<BodyLiteral>> {
        let mut body = Vec::new();
        loop {
            let e = self.expr()?;
            let literal = match &e.kind {
                ExprKind::Unary {
                    op: UnaryOp::Not,
                    expr,
                } if self.call_as_atom(expr).is_some() => BodyLiteral::Atom {
                    negated: true,
                    atom: self.expr_to_atom(expr)?,
                },
                ExprKind::Call { .. } => BodyLiteral::Atom {
                    negated: false,
                    atom: self.expr_to_atom(&e)?,
                },
                ExprKind::Binary {
                    op:
                        BinaryOp::Eq
                        | BinaryOp::Ne
                        | BinaryOp::Lt
                        | BinaryOp::Gt
                        | BinaryOp::Le
                        | BinaryOp::Ge,
                    ..
                } => BodyLiteral::Compare(e),
                _ => {
                    return Err(self.error(
                        "expected an atom like `Parent(X, Y)` or a comparison like `X != Y` in the rule body",
                        e.span,
                    ));
                }
            };
            body.push(literal);
            if !self.eat(&Tok::Comma) {
                break;
            }
        }
        Ok(body)
    }

    /// `Name(terms)` as an atom, if the expression has that shape.
    fn call_as_atom(&self, e: &Expr) -> Option<Atom> {
        let ExprKind::Call { callee, args } = &e.kind else {
            return None;
        };
        let ExprKind::Name(name) = &callee.kind else {
            return None;
        };
        let mut terms = Vec::new();
        for arg in args {
            if arg.name.is_some() {
                return None;
            }
            terms.push(expr_to_term(&arg.value)?);
        }
        Some(Atom {
            name: name.clone(),
            args: terms,
            span: e.span,
        })
    }

    fn expr_to_atom(&mut self, e: &Expr) -> PResult<Atom> {
        if let Some(atom) = self.call_as_atom(e) {
            return Ok(atom);
        }
        // Point at the argument that is not a term, if that is the problem.
        if let ExprKind::Call { callee, args } = &e.kind
            && matches!(callee.kind, ExprKind::Name(_))
            && let Some(bad) = args
                .iter()
                .find(|a| a.name.is_some() || expr_to_term(&a.value).is_none())
        {
            return Err(self.error(
                "expected a term (a variable, a symbol, an integer, a string or `_`) in an atom",
                bad.span,
            ));
        }
        Err(self.error("expected an atom like `Parent(X, Y)`", e.span))
    }

    // ----- expressions --------------------------------------------------------------------

    pub fn expr(&mut self) -> PResult<Expr> {
        self.expr_bp(0)
    }

    fn expr_bp(&mut self, min_bp: u8) -> PResult<Expr> {
        self.nested(|p| p.expr_bp_inner(min_bp))
    }

    fn expr_bp_inner(&mut self, min_bp: u8) -> PResult<Expr> {
        let mut lhs = self.prefix()?;
        loop {
            let tok = self.peek().clone();
            if tok == Tok::LArrow {
                // `<-` after a relation head is a rule arrow (the statement takes it);
                // elsewhere `x<-1` is `x < -1`.
                let is_head = matches!(&lhs.kind,
                    ExprKind::Call { callee, .. } if matches!(callee.kind, ExprKind::Name(_)));
                if is_head || COMPARE_BP.0 < min_bp {
                    break;
                }
                let span = self.peek_span();
                self.tokens[self.pos] = Token {
                    tok: Tok::Minus,
                    span: Span::new(span.file, span.start + 1, span.end),
                };
                self.prev_continues = true;
                let rhs = self.expr_bp(COMPARE_BP.1)?;
                lhs = binary(BinaryOp::Lt, lhs, rhs);
                continue;
            }
            if let Some((op, (lbp, rbp))) = binary_op(&tok) {
                if lbp < min_bp {
                    break;
                }
                self.bump();
                let rhs = self.expr_bp(rbp)?;
                lhs = binary(op, lhs, rhs);
                continue;
            }
            if MUL_BP.0 >= min_bp && self.juxtaposition_follows() {
                let rhs = self.expr_bp(MUL_BP.1)?;
                lhs = binary(BinaryOp::Mul, lhs, rhs);
                continue;
            }
            break;
        }
        Ok(lhs)
    }

    /// Tensor-equation juxtaposition (`W[i, j] X[j]`, `Sister(x, y) Parent(y, z)`): an indexed
    /// or relation operand right after an indexed or called one joins by product.
    fn juxtaposition_follows(&mut self) -> bool {
        let prev = self.pos.checked_sub(1).map(|i| &self.tokens[i].tok);
        if !matches!(prev, Some(Tok::RBracket | Tok::RParen)) {
            return false;
        }
        let Tok::Ident(name) = self.peek().clone() else {
            return false;
        };
        if is_reserved(&name) {
            return false;
        }
        match self.peek_nth(1) {
            Tok::LBracket => true,
            Tok::LParen => name.chars().next().is_some_and(char::is_uppercase),
            _ => false,
        }
    }

    fn prefix(&mut self) -> PResult<Expr> {
        let start = self.peek_span().start;
        let (op, bp) = match self.peek() {
            Tok::Minus => (UnaryOp::Neg, UNARY_BP),
            Tok::Bang => (UnaryOp::Not, UNARY_BP),
            Tok::Ident(w) if w == "not" => (UnaryOp::Not, NOT_BP),
            _ => return self.postfix(),
        };
        self.bump();
        let operand = self.expr_bp(bp)?;
        Ok(Expr {
            kind: ExprKind::Unary {
                op,
                expr: Box::new(operand),
            },
            span: self.span_from(start),
        })
    }

    fn postfix(&mut self) -> PResult<Expr> {
        let mut e = self.primary()?;
        let start = e.span.start;
        loop {
            match self.peek().clone() {
                Tok::LParen => {
                    let args = self.call_args()?;
                    e = Expr {
                        kind: ExprKind::Call {
                            callee: Box::new(e),
                            args,
                        },
                        span: self.span_from(start),
                    };
                }
                Tok::LBracket => {
                    let indices = self.index_args()?;
                    e = Expr {
                        kind: ExprKind::Index {
                            base: Box::new(e),
                            indices,
                        },
                        span: self.span_from(start),
                    };
                }
                Tok::Dot => {
                    self.bump();
                    let (name, _) = self.ident("a field or method name after `.`")?;
                    if self.at(&Tok::LParen) {
                        let args = self.call_args()?;
                        e = Expr {
                            kind: ExprKind::MethodCall {
                                receiver: Box::new(e),
                                method: name,
                                args,
                            },
                            span: self.span_from(start),
                        };
                    } else {
                        e = Expr {
                            kind: ExprKind::Member {
                                base: Box::new(e),
                                name,
                            },
                            span: self.span_from(start),
                        };
                    }
                }
                Tok::Ident(w) if w == "as" => {
                    self.bump();
                    let target = match self.peek().clone() {
                        Tok::Ident(t) => match t.as_str() {
                            "int" => Some(CastTarget::Int),
                            "float" => Some(CastTarget::Float),
                            "bool" => Some(CastTarget::Bool),
                            "str" | "string" => Some(CastTarget::Str),
                            _ => None,
                        },
                        _ => None,
                    };
                    let Some(target) = target else {
                        return Err(
                            self.expected("a cast target (`int`, `float`, `bool` or `str`)")
                        );
                    };
                    self.bump();
                    e = Expr {
                        kind: ExprKind::Cast {
                            expr: Box::new(e),
                            target,
                        },
                        span: self.span_from(start),
                    };
                }
                _ => break,
            }
        }
        Ok(e)
    }

    /// `(a, name: b)`; the `(` is next.
    fn call_args(&mut self) -> PResult<Vec<Arg>> {
        let open = self.bump().span;
        self.comma_list(Tok::RParen, "call", open, |p| {
            let start = p.peek_span().start;
            let named = matches!(p.peek(), Tok::Ident(n) if !is_reserved(n))
                && matches!(p.peek_nth(1), Tok::Colon | Tok::ColonDash);
            let name = if named {
                let (name, _) = p.ident("an argument name")?;
                p.split_colon_dash();
                p.bump(); // :
                Some(name)
            } else {
                None
            };
            let value = p.expr()?;
            Ok(Arg {
                name,
                value,
                span: p.span_from(start),
            })
        })
    }

    /// `[i, a:b, :, ::2, p'., *t]`; the `[` is next.
    fn index_args(&mut self) -> PResult<Vec<IndexArg>> {
        let open = self.bump().span;
        self.comma_list(Tok::RBracket, "index", open, Self::index_arg)
    }

    fn index_arg(&mut self) -> PResult<IndexArg> {
        let ends_arg = |t: &Tok| matches!(t, Tok::Comma | Tok::RBracket);
        // `*t`, `*t+1`, `*t-1`: a virtual index with an optional offset.
        if self.at(&Tok::Star) && matches!(self.peek_nth(1), Tok::Ident(n) if !is_reserved(n)) {
            let after = self.peek_nth(2).clone();
            let offset = match (&after, self.peek_nth(3).clone()) {
                (t, _) if ends_arg(t) => Some(0),
                (Tok::Plus, Tok::Int(k)) if ends_arg(&self.peek_nth(4).clone()) => Some(k),
                (Tok::Minus, Tok::Int(k)) if ends_arg(&self.peek_nth(4).clone()) => Some(-k),
                _ => None,
            };
            if let Some(offset) = offset {
                self.bump();
                let (name, _) = self.ident("an index name")?;
                if offset != 0 {
                    self.bump();
                    self.bump();
                }
                return Ok(IndexArg::Virtual(name, offset));
            }
        }
        // `p'.`: a normalised index; `p'`: a primed index name.
        if matches!(self.peek(), Tok::Ident(n) if !is_reserved(n))
            && self.peek_nth(1) == &Tok::Quote
        {
            let (name, span) = self.ident("an index name")?;
            let quote = self.bump().span; // '
            let name = format!("{name}'");
            if self.eat(&Tok::Dot) {
                return Ok(IndexArg::Normalized(name));
            }
            return Ok(IndexArg::Expr(Expr {
                kind: ExprKind::Name(name),
                span: Span::new(span.file, span.start, quote.end),
            }));
        }
        self.split_colon_dash();
        let start = match self.peek() {
            Tok::Colon | Tok::ColonColon => None,
            _ => Some(self.expr()?),
        };
        self.split_colon_dash();
        match self.peek() {
            Tok::Colon => {
                self.bump();
                let end = if matches!(self.peek(), Tok::Comma | Tok::RBracket | Tok::Colon) {
                    None
                } else {
                    Some(self.expr()?)
                };
                let step = if self.eat(&Tok::Colon) {
                    self.slice_step()?
                } else {
                    None
                };
                Ok(IndexArg::Slice { start, end, step })
            }
            Tok::ColonColon => {
                self.bump();
                let step = self.slice_step()?;
                Ok(IndexArg::Slice {
                    start,
                    end: None,
                    step,
                })
            }
            _ => match start {
                Some(e) => Ok(IndexArg::Expr(e)),
                None => Err(self.expected("an index")),
            },
        }
    }

    fn slice_step(&mut self) -> PResult<Option<Expr>> {
        if matches!(self.peek(), Tok::Comma | Tok::RBracket) {
            Ok(None)
        } else {
            Ok(Some(self.expr()?))
        }
    }

    fn primary(&mut self) -> PResult<Expr> {
        let token = {
            self.skip_ignored_newlines();
            self.tokens[self.pos].clone()
        };
        let start = token.span.start;
        let kind = match token.tok {
            Tok::Int(v) => {
                self.bump();
                ExprKind::Int(v)
            }
            Tok::Float(v) => {
                self.bump();
                ExprKind::Float(v)
            }
            Tok::Str(s) => {
                self.bump();
                ExprKind::Str(s)
            }
            Tok::LBracket => {
                self.bump();
                let items = self.comma_list(Tok::RBracket, "array", token.span, Self::expr)?;
                ExprKind::Array(items)
            }
            Tok::LParen => {
                self.bump();
                let inner = self.with_mode(Mode::Paren, |p| {
                    let e = p.expr()?;
                    p.expect_close(Tok::RParen, "parenthesis", token.span)?;
                    Ok(e)
                })?;
                // The parentheses belong to the expression's text.
                return Ok(Expr {
                    kind: inner.kind,
                    span: self.span_from(start),
                });
            }
            Tok::Ident(ref w) if w == "true" || w == "false" => {
                self.bump();
                ExprKind::Bool(w == "true")
            }
            Tok::Ident(ref name) if !is_reserved(name) => {
                self.bump();
                let name = name.clone();
                if self.at(&Tok::ColonColon)
                    && matches!(self.peek_nth(1), Tok::Ident(n) if !is_reserved(n))
                {
                    self.bump();
                    let (member, _) = self.ident("a name after `::`")?;
                    ExprKind::Path {
                        ty: name,
                        name: member,
                    }
                } else if self.struct_literal_follows(&name) {
                    self.struct_literal(name)?
                } else {
                    ExprKind::Name(name)
                }
            }
            _ => return Err(self.expected("an expression")),
        };
        Ok(Expr {
            kind,
            span: self.span_from(start),
        })
    }

    /// `Name {` starts a struct literal when the name is capitalised, struct literals are
    /// allowed here, and the brace holds `field:` or nothing.
    fn struct_literal_follows(&mut self, name: &str) -> bool {
        if self.no_struct || !name.chars().next().is_some_and(char::is_uppercase) {
            return false;
        }
        if !self.at(&Tok::LBrace) {
            return false;
        }
        match self.peek_nth_any_line(1) {
            Tok::RBrace => true,
            Tok::Ident(_) => matches!(self.peek_nth_any_line(2), Tok::Colon | Tok::ColonDash),
            _ => false,
        }
    }

    fn struct_literal(&mut self, name: String) -> PResult<ExprKind> {
        let open = self.bump().span;
        let fields = self.with_mode(Mode::Brace, |p| {
            let mut fields = Vec::new();
            loop {
                while p.eat(&Tok::Comma) {}
                if p.at(&Tok::RBrace) || p.at(&Tok::Eof) {
                    break;
                }
                let (field, _) = p.ident("a field name")?;
                p.split_colon_dash();
                p.expect(Tok::Colon, &format!(" after the field name `{field}`"))?;
                let value = p.expr()?;
                fields.push((field, value));
                if !p.at(&Tok::Comma) && !p.at(&Tok::RBrace) {
                    return Err(p.expected("`,` or `}` after a struct field"));
                }
            }
            p.expect_close(Tok::RBrace, "struct literal", open)?;
            Ok(fields)
        })?;
        Ok(ExprKind::StructLit { name, fields })
    }
}

const COMPARE_BP: (u8, u8) = (8, 9);
const MUL_BP: (u8, u8) = (12, 13);
/// Operand binding power of `not`: it covers comparisons but not `and`/`or`.
const NOT_BP: u8 = 7;
/// Operand binding power of unary `-` and `!`: tighter than `@`, looser than `**`.
const UNARY_BP: u8 = 17;

/// The binary operator a token stands for, with its (left, right) binding powers.
fn binary_op(tok: &Tok) -> Option<(BinaryOp, (u8, u8))> {
    let op = match tok {
        Tok::OrOr => BinaryOp::Or,
        Tok::Ident(w) if w == "or" => BinaryOp::Or,
        Tok::AndAnd => BinaryOp::And,
        Tok::Ident(w) if w == "and" => BinaryOp::And,
        Tok::EqEq => BinaryOp::Eq,
        Tok::NotEq => BinaryOp::Ne,
        Tok::Lt => BinaryOp::Lt,
        Tok::Gt => BinaryOp::Gt,
        Tok::Le => BinaryOp::Le,
        Tok::Ge => BinaryOp::Ge,
        Tok::Plus => BinaryOp::Add,
        Tok::Minus => BinaryOp::Sub,
        Tok::Star => BinaryOp::Mul,
        Tok::Slash => BinaryOp::Div,
        Tok::Percent => BinaryOp::Rem,
        Tok::At => BinaryOp::MatMul,
        Tok::StarStar => BinaryOp::Pow,
        _ => return None,
    };
    let bp = match op {
        BinaryOp::Or => (2, 3),
        BinaryOp::And => (4, 5),
        BinaryOp::Eq | BinaryOp::Ne | BinaryOp::Lt | BinaryOp::Gt | BinaryOp::Le | BinaryOp::Ge => {
            COMPARE_BP
        }
        BinaryOp::Add | BinaryOp::Sub => (10, 11),
        BinaryOp::Mul | BinaryOp::Div | BinaryOp::Rem => MUL_BP,
        BinaryOp::MatMul => (14, 15),
        // Right-associative, and binds tighter than unary minus on its left.
        BinaryOp::Pow => (18, 17),
    };
    Some((op, bp))
}

fn binary(op: BinaryOp, lhs: Expr, rhs: Expr) -> Expr {
    let span = lhs.span.to(rhs.span);
    Expr {
        kind: ExprKind::Binary {
            op,
            lhs: Box::new(lhs),
            rhs: Box::new(rhs),
        },
        span,
    }
}

fn op_symbol(op: AssignOp) -> &'static str {
    match op {
        AssignOp::Assign => "=",
        AssignOp::Bind => ":=",
        AssignOp::AddAssign => "+=",
        AssignOp::SubAssign => "-=",
        AssignOp::MulAssign => "*=",
        AssignOp::DivAssign => "/=",
        AssignOp::MaxAssign => "max=",
        AssignOp::AvgAssign => "avg=",
    }
}

/// A logic term from an expression: `X` variable, `alice` symbol, `_`, an integer (possibly
/// negative) or a string.
pub fn expr_to_term(e: &Expr) -> Option<Term> {
    match &e.kind {
        ExprKind::Name(n) if n == "_" => Some(Term::Wildcard),
        ExprKind::Name(n) => {
            let first = n.chars().next()?;
            if first.is_uppercase() || first == '_' {
                Some(Term::Var(n.clone()))
            } else {
                Some(Term::Symbol(n.clone()))
            }
        }
        ExprKind::Int(v) => Some(Term::Int(*v)),
        ExprKind::Unary {
            op: UnaryOp::Neg,
            expr,
        } => match expr.kind {
            ExprKind::Int(v) => Some(Term::Int(v.checked_neg()?)),
            _ => None,
        },
        ExprKind::Str(s) => Some(Term::Str(s.clone())),
        _ => None,
    }
}
