//! Pre-tokenizers of byte-level BPE vocabularies: the text is cut into words by a regular
//! expression before merges run inside each word. `tokenizer.ggml.pre` names the split a GGUF
//! vocabulary was trained with; the ones here cover GPT-2 and its derivatives (SmolLM,
//! StarCoder: digits alone first), Llama 3 and Qwen 2.

use crate::error::{ModelError, Result};
use std::ops::Range;

/// The GPT-2 split without its final `\s+(?!\S)` alternative, whose look-ahead the `regex`
/// crate cannot express; [`gpt2_split`] restores its effect by hand.
const GPT2_PATTERN: &str = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+";

const LLAMA3_PATTERN: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

const QWEN2_PATTERN: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// One splitting stage; stages run in order, each on the pieces the previous one produced.
#[derive(Debug)]
enum Stage {
    /// Every numeric character (`\p{N}`) becomes a piece of its own.
    Digits,
    /// The GPT-2 regular expression.
    Gpt2(regex::Regex),
    /// Any other expression (these need look-arounds).
    Fancy(Box<fancy_regex::Regex>),
}

/// The word splitter of a byte-level BPE vocabulary.
#[derive(Debug)]
pub(crate) struct PreTokenizer {
    stages: Vec<Stage>,
    /// Llama 3 style: a word that is a whole token is not split by merges.
    pub(crate) ignore_merges: bool,
}

/// The `tokenizer.ggml.pre` names understood, for error messages.
pub(crate) const SUPPORTED_PRE: &str = "default, gpt2, gpt-2, mpt, olmo, jais, trillion, smollm, starcoder, refact, command-r, codeshell, exaone, minerva, llama3, llama-bpe, llama-v3, falcon3, qwen2";

impl PreTokenizer {
    /// The splitter for a `tokenizer.ggml.pre` value (`None`: the key is absent, GPT-2 is meant).
    pub(crate) fn for_name(name: Option<&str>) -> Result<PreTokenizer> {
        let gpt2 = || -> Result<Stage> {
            regex::Regex::new(GPT2_PATTERN)
                .map(Stage::Gpt2)
                .map_err(|e| ModelError::new(format!("GPT-2 split expression: {e}")))
        };
        let fancy = |pattern: &str| -> Result<Stage> {
            fancy_regex::Regex::new(pattern)
                .map(|r| Stage::Fancy(Box::new(r)))
                .map_err(|e| ModelError::new(format!("split expression: {e}")))
        };
        let (stages, ignore_merges) = match name.unwrap_or("default") {
            "default" | "gpt2" | "gpt-2" | "mpt" | "olmo" | "jais" | "trillion" => {
                (vec![gpt2()?], false)
            }
            "smollm" | "starcoder" | "refact" | "command-r" | "codeshell" | "exaone"
            | "minerva" => (vec![Stage::Digits, gpt2()?], false),
            "llama3" | "llama-bpe" | "llama-v3" | "falcon3" => (vec![fancy(LLAMA3_PATTERN)?], true),
            "qwen2" => (vec![fancy(QWEN2_PATTERN)?], false),
            other => {
                return Err(ModelError::new(format!(
                    "pre-tokenizer '{other}' (tokenizer.ggml.pre) is not supported; supported: {SUPPORTED_PRE}"
                )));
            }
        };
        Ok(PreTokenizer {
            stages,
            ignore_merges,
        })
    }

    /// Byte ranges of the words of `text`, in order, covering all of it.
    pub(crate) fn split(&self, text: &str) -> Result<Vec<Range<usize>>> {
        let mut pieces: Vec<Range<usize>> = std::iter::once(0..text.len()).collect();
        for stage in &self.stages {
            let mut next = Vec::with_capacity(pieces.len() * 2);
            for piece in pieces {
                let part = &text[piece.clone()];
                let offset = piece.start;
                let before = next.len();
                match stage {
                    Stage::Digits => digits_split(part, &mut next),
                    Stage::Gpt2(re) => gpt2_split(re, part, &mut next),
                    Stage::Fancy(re) => fancy_split(re, part, &mut next)?,
                }
                for r in &mut next[before..] {
                    *r = r.start + offset..r.end + offset;
                }
            }
            pieces = next;
        }
        Ok(pieces)
    }
}

/// Numeric characters alone, the runs between them as they are.
fn digits_split(text: &str, out: &mut Vec<Range<usize>>) {
    let mut run_start = 0;
    for (i, c) in text.char_indices() {
        if c.is_numeric() {
            if run_start < i {
                out.push(run_start..i);
            }
            out.push(i..i + c.len_utf8());
            run_start = i + c.len_utf8();
        }
    }
    if run_start < text.len() {
        out.push(run_start..text.len());
    }
}

/// The GPT-2 split. The original expression ends in `\s+(?!\S)|\s+`: a run of whitespace
/// followed by a non-space gives up its last character, which then starts the next word (a
/// space joins the following letters, digits or punctuation; other whitespace stands alone).
fn gpt2_split(re: &regex::Regex, text: &str, out: &mut Vec<Range<usize>>) {
    let mut pos = 0;
    while pos < text.len() {
        let Some(m) = re.find_at(text, pos) else {
            break;
        };
        let (start, end) = (m.start(), m.end());
        if start > pos {
            // Every character matches some alternative, so this does not happen; keep the
            // text anyway rather than drop it.
            out.push(pos..start);
        }
        let matched = &text[start..end];
        if end < text.len() && matched.chars().all(char::is_whitespace) {
            let last_len = matched.chars().next_back().map_or(0, char::len_utf8);
            if matched.len() > last_len {
                out.push(start..end - last_len);
                // The last whitespace character is matched again, with what follows it.
                pos = end - last_len;
                continue;
            }
        }
        out.push(start..end);
        pos = end;
    }
    if pos < text.len() {
        out.push(pos..text.len());
    }
}

fn fancy_split(re: &fancy_regex::Regex, text: &str, out: &mut Vec<Range<usize>>) -> Result<()> {
    let mut last = 0;
    for m in re.find_iter(text) {
        let m = m.map_err(|e| ModelError::new(format!("splitting text into words: {e}")))?;
        if m.start() > last {
            out.push(last..m.start());
        }
        if m.end() > m.start() {
            out.push(m.start()..m.end());
        }
        last = m.end();
    }
    if last < text.len() {
        out.push(last..text.len());
    }
    Ok(())
}

/// GPT-2's reversible map from bytes to printable characters: printable Latin-1 bytes stand for
/// themselves, the others (controls, space, soft hyphen...) for U+0100 onwards in byte order.
pub(crate) fn byte_to_char_table() -> [char; 256] {
    let mut table = ['\0'; 256];
    let mut next_extra = 256u32;
    for b in 0..=255u8 {
        let printable = matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
        let code = if printable {
            b as u32
        } else {
            let c = next_extra;
            next_extra += 1;
            c
        };
        table[b as usize] = char::from_u32(code).unwrap_or('\u{FFFD}');
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(pre: &PreTokenizer, text: &str) -> Vec<String> {
        pre.split(text)
            .unwrap()
            .into_iter()
            .map(|r| text[r].to_string())
            .collect()
    }

    #[test]
    fn gpt2_split_matches_the_lookahead_expression() {
        let fast = PreTokenizer::for_name(Some("gpt2")).unwrap();
        let reference = fancy_regex::Regex::new(
            r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+",
        )
        .unwrap();
        let texts = [
            "Hello world",
            "  two  spaces   three\n\nnewlines \n x",
            "tab\there\t\t x\u{3000}ideographic space",
            "I'm don't we'll THEY'RE 12345 3.14",
            "trailing   ",
            "   leading",
            " \n\nabc",
            "emoji 🦀🦀 and 中文 text!!",
            "",
            " ",
            "a\u{00a0}\u{00a0}b",
        ];
        for text in texts {
            let mut expect = Vec::new();
            fancy_split(&reference, text, &mut expect).unwrap();
            let expect: Vec<&str> = expect.into_iter().map(|r| &text[r]).collect();
            assert_eq!(words(&fast, text), expect, "text {text:?}");
        }
    }

    #[test]
    fn smollm_splits_digits_first() {
        let pre = PreTokenizer::for_name(Some("smollm")).unwrap();
        assert_eq!(words(&pre, "ab 123x"), ["ab", " ", "1", "2", "3", "x"]);
    }

    #[test]
    fn byte_table_is_a_bijection() {
        let table = byte_to_char_table();
        let mut seen: Vec<char> = table.to_vec();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 256);
        assert_eq!(table[b' ' as usize], 'Ġ');
        assert_eq!(table[b'\n' as usize], 'Ċ');
        assert_eq!(table[b'a' as usize], 'a');
    }

    #[test]
    fn unknown_pre_tokenizer_is_an_error() {
        let err = PreTokenizer::for_name(Some("klingon")).unwrap_err();
        assert!(err.problem.contains("klingon"), "{err}");
    }
}
