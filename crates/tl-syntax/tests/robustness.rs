//! The parser never panics: thousands of seeded random mutations of a realistic program, and
//! random printable garbage, are parsed (and their diagnostics rendered); a panic fails the
//! test. The generator is a fixed-seed SplitMix64, so failures reproduce.

use tl_syntax::{SourceMap, needs_more_input};

const PROGRAM: &str = include_str!("data/tour.tl");

struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Fragments that stress the grammar's corners when inserted anywhere.
const FRAGMENTS: &[&str] = &[
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    "\"",
    "/*",
    "*/",
    "//",
    ":-",
    "<-",
    "->",
    "'",
    ".",
    "::",
    ":",
    ":=",
    ",",
    ";",
    "\n",
    "?",
    "*",
    "**",
    "-",
    "!",
    "=",
    "==",
    "max=",
    "avg=",
    "p'.",
    "*t",
    "else",
    "if",
    "let",
    "fn",
    "rule",
    "query",
    "infer forward",
    "learn {",
    "main {",
    "not",
    "as",
    "as int",
    "1e",
    "1e-5",
    ".5",
    "0x",
    "\\",
    "\\q",
    "é",
    "日本",
    "\t",
    "_",
    "Foo {",
    "x:",
    "where",
    "return",
    "tensor W: float32[",
    "embedding E {",
    "struct S {",
    "impl S {",
    "import ",
    "99999999999999999999",
];

fn check_no_panic(text: &str) {
    let sources = SourceMap::new();
    let file = sources.add("fuzz.tl", text);
    match tl_syntax::parse(&sources, file) {
        Ok(program) => {
            // Spans of items stay inside the text.
            for item in &program.items {
                assert!(item.span.start <= item.span.end && item.span.end <= text.len());
            }
        }
        Err(diags) => {
            assert!(!diags.is_empty());
            for d in &diags {
                let span = d.span.expect("parse errors have spans");
                assert!(span.start <= span.end && span.end <= text.len(), "{d:?}");
                assert!(text.is_char_boundary(span.start) && text.is_char_boundary(span.end));
                let rendered = d.render(&sources);
                assert!(rendered.starts_with("error: "));
            }
        }
    }
    needs_more_input(text);
}

fn mutate(rng: &mut SplitMix, base: &str) -> String {
    let mut chars: Vec<char> = base.chars().collect();
    let edits = 1 + rng.below(6);
    for _ in 0..edits {
        let len = chars.len();
        match rng.below(5) {
            0 if len > 0 => {
                // Delete a short run.
                let at = rng.below(len);
                let n = (1 + rng.below(12)).min(len - at);
                chars.drain(at..at + n);
            }
            1 => {
                let at = rng.below(len + 1);
                let frag = FRAGMENTS[rng.below(FRAGMENTS.len())];
                chars.splice(at..at, frag.chars());
            }
            2 if len > 1 => {
                let a = rng.below(len);
                let b = rng.below(len);
                chars.swap(a, b);
            }
            3 => {
                // Insert a random printable ASCII character.
                let at = rng.below(len + 1);
                chars.insert(at, (b' ' + rng.below(95) as u8) as char);
            }
            _ if len > 0 => {
                // Truncate: the REPL and editors see prefixes of programs all the time.
                chars.truncate(rng.below(len));
            }
            _ => {}
        }
    }
    chars.into_iter().collect()
}

#[test]
fn the_base_program_parses() {
    let sources = SourceMap::new();
    let file = sources.add("tour.tl", PROGRAM);
    assert!(tl_syntax::parse(&sources, file).is_ok());
}

#[test]
fn random_mutations_of_a_real_program_never_panic() {
    let mut rng = SplitMix(0x5EED_0001);
    let mut failures = 0;
    for _ in 0..4000 {
        let text = mutate(&mut rng, PROGRAM);
        let sources = SourceMap::new();
        let file = sources.add("m.tl", text.as_str());
        if tl_syntax::parse(&sources, file).is_err() {
            failures += 1;
        }
        check_no_panic(&text);
    }
    // The mutations really do break the program most of the time.
    assert!(
        failures > 2000,
        "only {failures} of 4000 mutations failed to parse"
    );
}

#[test]
fn every_prefix_of_the_program_parses_or_fails_cleanly() {
    let mut end = 0;
    while end <= PROGRAM.len() {
        if PROGRAM.is_char_boundary(end) {
            check_no_panic(&PROGRAM[..end]);
        }
        end += 1;
    }
}

#[test]
fn random_printable_garbage_never_panics() {
    let mut rng = SplitMix(0x6A5B_A6E5);
    let alphabet: Vec<char> = (b' '..=b'~')
        .map(char::from)
        .chain(['\n', '\t', 'é', 'λ'])
        .collect();
    for round in 0..2000 {
        let len = rng.below(if round % 10 == 0 { 2000 } else { 120 });
        let text: String = (0..len)
            .map(|_| alphabet[rng.below(alphabet.len())])
            .collect();
        check_no_panic(&text);
    }
    // Token soup: random sequences of grammar fragments.
    for _ in 0..2000 {
        let n = rng.below(40);
        let text: String = (0..n)
            .map(|_| {
                let f = FRAGMENTS[rng.below(FRAGMENTS.len())];
                if rng.below(3) == 0 {
                    format!("{f} ")
                } else {
                    f.to_string()
                }
            })
            .collect();
        check_no_panic(&text);
    }
}
