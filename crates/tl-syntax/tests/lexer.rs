//! The lexer on its own: token kinds, spans, glued operators and keywords as whole words.

use tl_syntax::FileId;
use tl_syntax::lexer::{Tok, lex};

fn kinds(text: &str) -> Vec<Tok> {
    let lexed = lex(text, FileId(0));
    assert!(lexed.errors.is_empty(), "{:?}", lexed.errors);
    lexed
        .tokens
        .into_iter()
        .map(|t| t.tok)
        .filter(|t| *t != Tok::Eof)
        .collect()
}

fn ident(s: &str) -> Tok {
    Tok::Ident(s.to_string())
}

#[test]
fn numbers() {
    assert_eq!(
        kinds("0 42 1_000"),
        [Tok::Int(0), Tok::Int(42), Tok::Int(1000)]
    );
    assert_eq!(
        kinds("1.0 1e-5 2.5E+3 .5 1."),
        [
            Tok::Float(1.0),
            Tok::Float(1e-5),
            Tok::Float(2500.0),
            Tok::Float(0.5),
            Tok::Float(1.0)
        ]
    );
    // After an operand, `.5` is not a number and `1.x` is a member access.
    assert_eq!(kinds("x.5"), [ident("x"), Tok::Dot, Tok::Int(5)]);
    assert_eq!(kinds("1.abs"), [Tok::Int(1), Tok::Dot, ident("abs")]);
    assert_eq!(kinds("-3"), [Tok::Minus, Tok::Int(3)]);
}

#[test]
fn keywords_are_whole_words() {
    assert_eq!(
        kinds("inv_freq letter break_flag iffy in_ _x"),
        ["inv_freq", "letter", "break_flag", "iffy", "in_", "_x"].map(ident)
    );
    assert_eq!(kinds("café λx"), [ident("café"), ident("λx")]);
}

#[test]
fn multi_character_operators() {
    assert_eq!(
        kinds(":= :- :: <- -> ** == != <= >= && || += -= *= /="),
        [
            Tok::ColonEq,
            Tok::ColonDash,
            Tok::ColonColon,
            Tok::LArrow,
            Tok::Arrow,
            Tok::StarStar,
            Tok::EqEq,
            Tok::NotEq,
            Tok::Le,
            Tok::Ge,
            Tok::AndAnd,
            Tok::OrOr,
            Tok::PlusEq,
            Tok::MinusEq,
            Tok::StarEq,
            Tok::SlashEq,
        ]
    );
    assert_eq!(kinds("p'."), [ident("p"), Tok::Quote, Tok::Dot]);
}

#[test]
fn newlines_collapse_and_comments_vanish() {
    assert_eq!(
        kinds("a // c1\n\n\n/* c2\n c3 */ b\n"),
        [ident("a"), Tok::Newline, ident("b"), Tok::Newline]
    );
    assert_eq!(kinds("/* a /* nested */ b */ c"), [ident("c")]);
}

#[test]
fn spans_are_byte_ranges() {
    let text = "let é = \"s\\n\"";
    let lexed = lex(text, FileId(3));
    let spans: Vec<&str> = lexed
        .tokens
        .iter()
        .map(|t| &text[t.span.start..t.span.end])
        .collect();
    assert_eq!(spans, ["let", "é", "=", "\"s\\n\"", ""]);
    assert!(lexed.tokens.iter().all(|t| t.span.file == FileId(3)));
    assert_eq!(lexed.tokens[3].tok, Tok::Str("s\n".to_string()));
}

#[test]
fn errors_do_not_stop_lexing() {
    let lexed = lex("a $ b \"x\\y\" 1e c", FileId(0));
    let messages: Vec<&str> = lexed.errors.iter().map(|d| d.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "unexpected character `$`",
            "unknown escape `\\y` in string",
            "invalid number literal `1e`"
        ]
    );
    assert_eq!(lexed.tokens.last().map(|t| &t.tok), Some(&Tok::Eof));
    assert!(lexed.tokens.iter().any(|t| t.tok == ident("c")));
    assert!(!lexed.unterminated);
    assert!(lex("\"open", FileId(0)).unterminated);
}

#[test]
fn a_byte_order_mark_is_skipped() {
    assert_eq!(kinds("\u{feff}x = 1"), [ident("x"), Tok::Eq, Tok::Int(1)]);
}
