//! The tokenizer vocabulary stored in a GGUF file (`tokenizer.ggml.*`) and the two algorithms
//! that run on it:
//! - model `llama`: SentencePiece BPE. Spaces become `▁`, one `▁` is put before the text, then
//!   adjacent pieces are merged, highest vocabulary score first; characters that are no token
//!   are spelled with the byte tokens `<0xNN>`.
//! - model `gpt2`: byte-level BPE. The text is split into words by the vocabulary's
//!   pre-tokenizer, each byte is written as a printable character (GPT-2's byte map), then
//!   adjacent pieces are merged by `tokenizer.ggml.merges` rank, lowest first.
//!
//! Control and user-defined tokens (`<s>`, `<|im_start|>`) written in the text are matched
//! whole, before either algorithm sees it.

use super::pretokenize::{PreTokenizer, byte_to_char_table};
use crate::error::{ModelError, Result};
use crate::gguf::MetaValue;
use aho_corasick::{AhoCorasick, MatchKind};
use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap};

/// `tokenizer.ggml.token_type` values (llama.cpp's `llama_token_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenKind {
    Normal,
    Unknown,
    Control,
    UserDefined,
    Unused,
    Byte,
}

impl TokenKind {
    fn from_code(code: i64) -> Option<TokenKind> {
        Some(match code {
            0 | 1 => TokenKind::Normal, // 0 = "undefined", treated as a normal piece
            2 => TokenKind::Unknown,
            3 => TokenKind::Control,
            4 => TokenKind::UserDefined,
            5 => TokenKind::Unused,
            6 => TokenKind::Byte,
            _ => return None,
        })
    }
}

#[derive(Debug)]
enum Algorithm {
    /// SentencePiece BPE by score.
    Spm,
    /// Byte-level BPE.
    Bpe(Box<BpeModel>),
}

#[derive(Debug)]
struct BpeModel {
    pre: PreTokenizer,
    /// `(left, right) -> (rank, merged)`.
    merges: HashMap<(u32, u32), (u32, u32)>,
    /// The token of each byte's printable character.
    byte_char_token: [Option<u32>; 256],
    /// The byte each printable character stands for, and back.
    char_to_byte: HashMap<char, u8>,
    byte_chars: [char; 256],
}

/// The vocabulary of a GGUF file, ready to encode and decode.
#[derive(Debug)]
pub(crate) struct GgufVocab {
    pub(crate) tokens: Vec<String>,
    pub(crate) kinds: Vec<TokenKind>,
    scores: Vec<f32>,
    index: HashMap<String, u32>,
    algorithm: Algorithm,
    /// SentencePiece byte tokens `<0xNN>`.
    byte_tokens: [Option<u32>; 256],
    /// Control and user-defined tokens found whole in the text, longest match first.
    specials: Option<(AhoCorasick, Vec<u32>)>,
    pub(crate) bos: Option<u32>,
    pub(crate) eos: Option<u32>,
    pub(crate) eot: Option<u32>,
    pub(crate) unk: Option<u32>,
    pub(crate) pad: Option<u32>,
    /// `tokenizer.ggml.add_bos_token`: whether the model expects a BOS at the start.
    pub(crate) add_bos: bool,
    /// SentencePiece: a `▁` goes before the text (and is dropped again when decoding).
    pub(crate) add_space_prefix: bool,
    pub(crate) chat_template: Option<String>,
}

/// Names that end a turn or the text in common chat vocabularies (llama.cpp treats them alike).
pub(crate) const END_OF_GENERATION_NAMES: &[&str] = &[
    "</s>",
    "<|endoftext|>",
    "<|im_end|>",
    "<|eot_id|>",
    "<|eom_id|>",
    "<|end|>",
    "<end_of_turn>",
    "<|end_of_text|>",
    "<｜end▁of▁sentence｜>",
];

fn strings<'a>(meta: &'a MetaValue, key: &str) -> Result<Vec<&'a str>> {
    let items = meta
        .as_array()
        .ok_or_else(|| ModelError::new(format!("{key} is a {}, not an array", meta.type_name())))?;
    items
        .iter()
        .enumerate()
        .map(|(i, v)| {
            v.as_str().ok_or_else(|| {
                ModelError::new(format!("{key}[{i}] is a {}, not a string", v.type_name()))
            })
        })
        .collect()
}

impl GgufVocab {
    /// Reads the vocabulary from GGUF metadata (`meta` looks a key up).
    pub(crate) fn from_metadata<'m>(
        meta: impl Fn(&str) -> Option<&'m MetaValue>,
    ) -> Result<GgufVocab> {
        let model_name = match meta("tokenizer.ggml.model") {
            None => {
                return Err(ModelError::new(
                    "the file holds no tokenizer (metadata key tokenizer.ggml.model is missing)",
                ));
            }
            Some(v) => v.as_str().ok_or_else(|| {
                ModelError::new(format!(
                    "tokenizer.ggml.model is a {}, not a string",
                    v.type_name()
                ))
            })?,
        };
        let tokens_meta = meta("tokenizer.ggml.tokens").ok_or_else(|| {
            ModelError::new("tokenizer.ggml.tokens is missing: the file holds no vocabulary")
        })?;
        let tokens: Vec<String> = strings(tokens_meta, "tokenizer.ggml.tokens")?
            .into_iter()
            .map(str::to_string)
            .collect();
        let n = tokens.len();
        if n == 0 {
            return Err(ModelError::new("tokenizer.ggml.tokens is empty"));
        }
        if n > u32::MAX as usize {
            return Err(ModelError::new(
                "tokenizer.ggml.tokens has too many entries",
            ));
        }

        let scores = match meta("tokenizer.ggml.scores") {
            None => vec![0.0; n],
            Some(v) => {
                let items = v.as_array().ok_or_else(|| {
                    ModelError::new("tokenizer.ggml.scores is not an array".to_string())
                })?;
                if items.len() != n {
                    return Err(ModelError::new(format!(
                        "tokenizer.ggml.scores has {} entries but there are {n} tokens",
                        items.len()
                    )));
                }
                items
                    .iter()
                    .enumerate()
                    .map(|(i, s)| {
                        s.as_f64().map(|x| x as f32).ok_or_else(|| {
                            ModelError::new(format!(
                                "tokenizer.ggml.scores[{i}] is a {}, not a number",
                                s.type_name()
                            ))
                        })
                    })
                    .collect::<Result<Vec<f32>>>()?
            }
        };

        let id_key = |key: &str| -> Result<Option<u32>> {
            match meta(key) {
                None => Ok(None),
                Some(v) => {
                    // Some writers store -1 for "none".
                    if v.as_i64().is_some_and(|x| x < 0) {
                        return Ok(None);
                    }
                    let id = v.as_u64().ok_or_else(|| {
                        ModelError::new(format!("{key} is a {}, not an integer", v.type_name()))
                    })?;
                    if id >= n as u64 {
                        return Err(ModelError::new(format!(
                            "{key} = {id} is out of range (the vocabulary has {n} tokens)"
                        )));
                    }
                    Ok(Some(id as u32))
                }
            }
        };
        let bos = id_key("tokenizer.ggml.bos_token_id")?;
        let eos = id_key("tokenizer.ggml.eos_token_id")?;
        let eot = id_key("tokenizer.ggml.eot_token_id")?;
        let unk = id_key("tokenizer.ggml.unknown_token_id")?;
        let pad = id_key("tokenizer.ggml.padding_token_id")?;

        let mut kinds = match meta("tokenizer.ggml.token_type") {
            None => vec![TokenKind::Normal; n],
            Some(v) => {
                let items = v
                    .as_array()
                    .ok_or_else(|| ModelError::new("tokenizer.ggml.token_type is not an array"))?;
                if items.len() != n {
                    return Err(ModelError::new(format!(
                        "tokenizer.ggml.token_type has {} entries but there are {n} tokens",
                        items.len()
                    )));
                }
                items
                    .iter()
                    .enumerate()
                    .map(|(i, t)| {
                        t.as_i64().and_then(TokenKind::from_code).ok_or_else(|| {
                            ModelError::new(format!(
                                "tokenizer.ggml.token_type[{i}] = {t} is not a token type (1-6)"
                            ))
                        })
                    })
                    .collect::<Result<Vec<TokenKind>>>()?
            }
        };
        if meta("tokenizer.ggml.token_type").is_none() {
            // Without types, the declared special tokens are still special.
            for id in [bos, eos, eot, pad].into_iter().flatten() {
                kinds[id as usize] = TokenKind::Control;
            }
            if let Some(id) = unk {
                kinds[id as usize] = TokenKind::Unknown;
            }
        }

        let flag = |key: &str| -> Result<Option<bool>> {
            match meta(key) {
                None => Ok(None),
                Some(v) => v.as_bool().map(Some).ok_or_else(|| {
                    ModelError::new(format!("{key} is a {}, not a bool", v.type_name()))
                }),
            }
        };
        let is_spm = match model_name {
            "llama" => true,
            "gpt2" => false,
            other => {
                return Err(ModelError::new(format!(
                    "tokenizer model '{other}' (tokenizer.ggml.model) is not supported; supported: llama (SentencePiece), gpt2 (byte-level BPE)"
                )));
            }
        };
        let add_bos = flag("tokenizer.ggml.add_bos_token")?.unwrap_or(is_spm);
        let add_space_prefix = is_spm && flag("tokenizer.ggml.add_space_prefix")?.unwrap_or(true);
        let chat_template = match meta("tokenizer.chat_template") {
            None => None,
            Some(v) => Some(
                v.as_str()
                    .ok_or_else(|| ModelError::new("tokenizer.chat_template is not a string"))?
                    .to_string(),
            ),
        };

        let mut index = HashMap::with_capacity(n);
        for (i, t) in tokens.iter().enumerate() {
            // The first of duplicate pieces wins, as in llama.cpp.
            index.entry(t.clone()).or_insert(i as u32);
        }

        let mut byte_tokens = [None; 256];
        for (i, t) in tokens.iter().enumerate() {
            if kinds[i] == TokenKind::Byte {
                let byte = parse_byte_token(t).ok_or_else(|| {
                    ModelError::new(format!(
                        "token {i} '{t}' has type byte but is not written <0xNN>"
                    ))
                })?;
                byte_tokens[byte as usize].get_or_insert(i as u32);
            }
        }

        let algorithm = if is_spm {
            Algorithm::Spm
        } else {
            let pre_name = match meta("tokenizer.ggml.pre") {
                None => None,
                Some(v) => Some(
                    v.as_str()
                        .ok_or_else(|| ModelError::new("tokenizer.ggml.pre is not a string"))?,
                ),
            };
            let pre = PreTokenizer::for_name(pre_name)?;
            let merge_meta = meta("tokenizer.ggml.merges").ok_or_else(|| {
                ModelError::new("tokenizer.ggml.merges is missing (a gpt2 tokenizer needs it)")
            })?;
            let merge_list = strings(merge_meta, "tokenizer.ggml.merges")?;
            let mut merges = HashMap::with_capacity(merge_list.len());
            for (rank, m) in merge_list.iter().enumerate() {
                let bad = |why: &str| {
                    ModelError::new(format!("tokenizer.ggml.merges[{rank}] '{m}': {why}"))
                };
                let (l, r) = m.split_once(' ').ok_or_else(|| bad("not two pieces"))?;
                let (Some(&li), Some(&ri)) = (index.get(l), index.get(r)) else {
                    return Err(bad("a piece is not in the vocabulary"));
                };
                let Some(&mi) = index.get(&format!("{l}{r}")) else {
                    // A merge whose result is no token can never be used (llama.cpp skips it too).
                    continue;
                };
                merges.entry((li, ri)).or_insert((rank as u32, mi));
            }
            let table = byte_to_char_table();
            let mut byte_char_token = [None; 256];
            let mut char_to_byte = HashMap::with_capacity(256);
            for (b, c) in table.iter().enumerate() {
                let mut buf = [0u8; 4];
                byte_char_token[b] = index.get(&*c.encode_utf8(&mut buf)).copied();
                char_to_byte.insert(*c, b as u8);
            }
            Algorithm::Bpe(Box::new(BpeModel {
                pre,
                merges,
                byte_char_token,
                char_to_byte,
                byte_chars: table,
            }))
        };

        let special_ids: Vec<u32> = (0..n as u32)
            .filter(|&i| {
                matches!(
                    kinds[i as usize],
                    TokenKind::Control | TokenKind::UserDefined
                ) && !tokens[i as usize].is_empty()
            })
            .collect();
        let specials = if special_ids.is_empty() {
            None
        } else {
            let patterns: Vec<&str> = special_ids
                .iter()
                .map(|&i| tokens[i as usize].as_str())
                .collect();
            let ac = AhoCorasick::builder()
                .match_kind(MatchKind::LeftmostLongest)
                .build(&patterns)
                .map_err(|e| ModelError::new(format!("indexing the special tokens: {e}")))?;
            Some((ac, special_ids))
        };

        Ok(GgufVocab {
            tokens,
            kinds,
            scores,
            index,
            algorithm,
            byte_tokens,
            specials,
            bos,
            eos,
            eot,
            unk,
            pad,
            add_bos,
            add_space_prefix,
            chat_template,
        })
    }

    pub(crate) fn is_spm(&self) -> bool {
        matches!(self.algorithm, Algorithm::Spm)
    }

    pub(crate) fn token_id(&self, text: &str) -> Option<u32> {
        self.index.get(text).copied()
    }

    /// Appends the tokens of `text` (no BOS) to `out`.
    pub(crate) fn encode(&self, text: &str, out: &mut Vec<u32>) -> Result<()> {
        let mut prev_special = true;
        let mut pos = 0;
        if let Some((ac, ids)) = &self.specials {
            for m in ac.find_iter(text) {
                if m.start() > pos {
                    self.encode_plain(&text[pos..m.start()], prev_special, out)?;
                }
                out.push(ids[m.pattern().as_usize()]);
                prev_special = true;
                pos = m.end();
            }
        }
        if pos < text.len() {
            self.encode_plain(&text[pos..], prev_special, out)?;
        }
        Ok(())
    }

    /// Text with no special tokens in it.
    fn encode_plain(&self, text: &str, after_special: bool, out: &mut Vec<u32>) -> Result<()> {
        match &self.algorithm {
            Algorithm::Spm => {
                let mut escaped = String::with_capacity(text.len() + 3);
                if self.add_space_prefix && after_special {
                    escaped.push('▁');
                }
                for c in text.chars() {
                    escaped.push(if c == ' ' { '▁' } else { c });
                }
                self.spm_merge(&escaped, out)
            }
            Algorithm::Bpe(bpe) => {
                let BpeModel {
                    pre,
                    merges,
                    byte_char_token,
                    byte_chars,
                    ..
                } = &**bpe;
                let mut symbols = Vec::new();
                for word in pre.split(text)? {
                    let word = &text[word];
                    if pre.ignore_merges
                        && let Some(id) = self.whole_word_token(word, byte_chars)
                    {
                        out.push(id);
                        continue;
                    }
                    symbols.clear();
                    for b in word.bytes() {
                        match byte_char_token[b as usize].or(self.unk) {
                            Some(id) => symbols.push(id),
                            None => {
                                return Err(ModelError::new(format!(
                                    "byte 0x{b:02X} has no token and the vocabulary has no unknown token"
                                )));
                            }
                        }
                    }
                    bpe_merge(&mut symbols, merges);
                    out.extend_from_slice(&symbols);
                }
                Ok(())
            }
        }
    }

    /// The token spelling a whole byte-level word, if there is one.
    fn whole_word_token(&self, word: &str, byte_chars: &[char; 256]) -> Option<u32> {
        let mapped: String = word.bytes().map(|b| byte_chars[b as usize]).collect();
        self.index.get(&mapped).copied()
    }

    /// SentencePiece merging of `text` (already escaped): pieces start as characters; the
    /// adjacent pair whose concatenation is the best-scoring token is merged until none is.
    fn spm_merge(&self, text: &str, out: &mut Vec<u32>) -> Result<()> {
        #[derive(Clone, Copy)]
        struct Sym {
            start: usize,
            len: usize,
            prev: usize,
            next: usize,
        }
        const NONE: usize = usize::MAX;
        let mut syms: Vec<Sym> = Vec::with_capacity(text.len());
        for (i, c) in text.char_indices() {
            let k = syms.len();
            syms.push(Sym {
                start: i,
                len: c.len_utf8(),
                prev: if k == 0 { NONE } else { k - 1 },
                next: k + 1,
            });
        }
        if let Some(last) = syms.last_mut() {
            last.next = NONE;
        }

        /// A candidate merge: the score of the merged token, then the leftmost first.
        struct Cand {
            score: f32,
            left: usize,
            right: usize,
            len: usize,
        }
        impl PartialEq for Cand {
            fn eq(&self, o: &Self) -> bool {
                self.cmp(o) == Ordering::Equal
            }
        }
        impl Eq for Cand {}
        impl PartialOrd for Cand {
            fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
                Some(self.cmp(o))
            }
        }
        impl Ord for Cand {
            fn cmp(&self, o: &Self) -> Ordering {
                self.score
                    .total_cmp(&o.score)
                    .then_with(|| o.left.cmp(&self.left))
            }
        }
        let mergeable = |id: u32| {
            matches!(
                self.kinds[id as usize],
                TokenKind::Normal | TokenKind::UserDefined | TokenKind::Unused
            )
        };
        let candidate = |syms: &[Sym], left: usize, right: usize| -> Option<Cand> {
            let (l, r) = (syms[left], syms[right]);
            let piece = &text[l.start..r.start + r.len];
            let id = *self.index.get(piece)?;
            mergeable(id).then(|| Cand {
                score: self.scores[id as usize],
                left,
                right,
                len: piece.len(),
            })
        };
        let mut heap = BinaryHeap::new();
        for i in 1..syms.len() {
            if let Some(c) = candidate(&syms, i - 1, i) {
                heap.push(c);
            }
        }
        while let Some(c) = heap.pop() {
            let (l, r) = (syms[c.left], syms[c.right]);
            // Stale: one side was merged away or grew since this candidate was made.
            if l.len == 0 || r.len == 0 || l.next != c.right || l.len + r.len != c.len {
                continue;
            }
            syms[c.left].len += r.len;
            syms[c.left].next = r.next;
            syms[c.right].len = 0;
            if r.next != NONE {
                syms[r.next].prev = c.left;
            }
            if l.prev != NONE
                && let Some(nc) = candidate(&syms, l.prev, c.left)
            {
                heap.push(nc);
            }
            if r.next != NONE
                && let Some(nc) = candidate(&syms, c.left, r.next)
            {
                heap.push(nc);
            }
        }

        let mut i = if syms.is_empty() { NONE } else { 0 };
        while i != NONE {
            let s = syms[i];
            let piece = &text[s.start..s.start + s.len];
            match self.index.get(piece) {
                Some(&id) => out.push(id),
                None => {
                    let spelled: Option<Vec<u32>> = piece
                        .bytes()
                        .map(|b| self.byte_tokens[b as usize])
                        .collect();
                    match (spelled, self.unk) {
                        (Some(bytes), _) => out.extend_from_slice(&bytes),
                        (None, Some(unk)) => out.push(unk),
                        (None, None) => {
                            return Err(ModelError::new(format!(
                                "'{piece}' is no token, and the vocabulary has neither byte tokens for it nor an unknown token"
                            )));
                        }
                    }
                }
            }
            i = s.next;
        }
        Ok(())
    }

    /// Appends the bytes token `id` stands for in decoded text. Control, unknown and unused
    /// tokens stand for nothing.
    pub(crate) fn piece_bytes(&self, id: u32, out: &mut Vec<u8>) -> Result<()> {
        let i = id as usize;
        let Some(text) = self.tokens.get(i) else {
            return Err(ModelError::new(format!(
                "token id {id} is out of range (the vocabulary has {} tokens)",
                self.tokens.len()
            )));
        };
        match self.kinds[i] {
            TokenKind::Control | TokenKind::Unknown | TokenKind::Unused => {}
            TokenKind::UserDefined => out.extend_from_slice(text.as_bytes()),
            TokenKind::Byte => match parse_byte_token(text) {
                Some(b) => out.push(b),
                None => out.extend_from_slice(text.as_bytes()),
            },
            TokenKind::Normal => match &self.algorithm {
                Algorithm::Spm => {
                    let mut buf = [0u8; 4];
                    for c in text.chars() {
                        let c = if c == '▁' { ' ' } else { c };
                        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                    }
                }
                Algorithm::Bpe(bpe) => {
                    let mut buf = [0u8; 4];
                    for c in text.chars() {
                        match bpe.char_to_byte.get(&c) {
                            Some(&b) => out.push(b),
                            None => out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes()),
                        }
                    }
                }
            },
        }
        Ok(())
    }
}

/// Byte-level BPE merging of one word, in place: the adjacent pair with the lowest merge rank
/// (leftmost among equals) is merged until no pair has a merge.
fn bpe_merge(symbols: &mut Vec<u32>, merges: &HashMap<(u32, u32), (u32, u32)>) {
    let n = symbols.len();
    if n < 2 {
        return;
    }
    const NONE: usize = usize::MAX;
    let mut next: Vec<usize> = (1..=n).map(|i| if i == n { NONE } else { i }).collect();
    let mut prev: Vec<usize> = (0..n).map(|i| if i == 0 { NONE } else { i - 1 }).collect();
    let mut alive = vec![true; n];
    // (rank, left position, left id, right id): the ids detect stale entries.
    let mut heap: BinaryHeap<Reverse<(u32, usize, u32, u32)>> = BinaryHeap::new();
    for i in 0..n - 1 {
        if let Some(&(rank, _)) = merges.get(&(symbols[i], symbols[i + 1])) {
            heap.push(Reverse((rank, i, symbols[i], symbols[i + 1])));
        }
    }
    while let Some(Reverse((_, left, lid, rid))) = heap.pop() {
        let right = next[left];
        if !alive[left] || right == NONE || symbols[left] != lid || symbols[right] != rid {
            continue;
        }
        let Some(&(_, merged)) = merges.get(&(lid, rid)) else {
            continue;
        };
        symbols[left] = merged;
        alive[right] = false;
        next[left] = next[right];
        if next[right] != NONE {
            prev[next[right]] = left;
        }
        if prev[left] != NONE {
            let p = prev[left];
            if let Some(&(rank, _)) = merges.get(&(symbols[p], merged)) {
                heap.push(Reverse((rank, p, symbols[p], merged)));
            }
        }
        if next[left] != NONE {
            let q = next[left];
            if let Some(&(rank, _)) = merges.get(&(merged, symbols[q])) {
                heap.push(Reverse((rank, left, merged, symbols[q])));
            }
        }
    }
    let mut w = 0;
    for i in 0..n {
        if alive[i] {
            symbols[w] = symbols[i];
            w += 1;
        }
    }
    symbols.truncate(w);
}

/// The byte of a SentencePiece byte token `<0xNN>`.
fn parse_byte_token(text: &str) -> Option<u8> {
    text.strip_prefix("<0x")
        .and_then(|h| h.strip_suffix('>'))
        .filter(|h| h.len() == 2)
        .and_then(|h| u8::from_str_radix(h, 16).ok())
}
