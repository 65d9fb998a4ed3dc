//! Tokenizers: text to token ids and back, streaming decoding, chat templates.
//!
//! A [`Tokenizer`] comes from the vocabulary inside a GGUF file ([`Tokenizer::from_gguf`],
//! SentencePiece "llama" and byte-level BPE "gpt2" vocabularies, implemented here after
//! llama.cpp), or from a Hugging Face `tokenizer.json` run by the `tokenizers` crate
//! ([`Tokenizer::from_file`]). Both behave alike: `encode` matches control tokens written in the
//! text (`<|im_start|>`), `decode` leaves control tokens out, and a [`StreamDecoder`] turns
//! tokens into text one at a time without splitting a UTF-8 character or losing a space.
//!
//! A `Tokenizer` is cheap to clone (shared, immutable), so a stream decoder owns one.

mod gguf_vocab;
mod pretokenize;

use crate::chat_template::{ChatMessage, DEFAULT_CHAT_TEMPLATE, render_chat_template};
use crate::error::{ModelError, Result};
use crate::gguf::GgufFile;
use crate::model::{Model, ModelFormat};
use gguf_vocab::{END_OF_GENERATION_NAMES, GgufVocab, TokenKind};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A tokenizer of either source. Clones share the same data.
#[derive(Clone)]
pub struct Tokenizer {
    inner: Arc<Inner>,
}

struct Inner {
    /// The file the vocabulary came from (named in errors).
    path: PathBuf,
    backend: Backend,
    bos: Option<u32>,
    eos: Option<u32>,
    pad: Option<u32>,
    end_of_generation: HashSet<u32>,
    add_bos: bool,
    chat_template: Option<String>,
}

enum Backend {
    Gguf(Box<GgufVocab>),
    HuggingFace(HfTokenizer),
}

/// A `tokenizer.json` tokenizer with the facts the `tokenizers` crate recomputes on every call
/// (its vocabulary size and added-token table are rebuilt as maps each time).
struct HfTokenizer {
    tok: Box<tokenizers::Tokenizer>,
    vocab_size: usize,
    special_ids: HashSet<u32>,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("path", &self.inner.path)
            .field("kind", &self.kind())
            .field("vocab_size", &self.vocab_size())
            .field("bos", &self.inner.bos)
            .field("eos", &self.inner.eos)
            .finish()
    }
}

impl Tokenizer {
    /// The vocabulary inside a GGUF model (`tokenizer.ggml.*` metadata).
    pub fn from_gguf(model: &Model) -> Result<Tokenizer> {
        if model.format() != ModelFormat::Gguf {
            return Err(ModelError::file(
                model.path(),
                "not a GGUF file: a safetensors model has no vocabulary inside; load the tokenizer.json beside it (Tokenizer::for_model does)",
            ));
        }
        let vocab = GgufVocab::from_metadata(|k| model.metadata(k))
            .map_err(|e| e.in_context(model.path(), None))?;
        Ok(Self::from_vocab(model.path(), vocab))
    }

    /// The tokenizer of a model: the vocabulary inside a GGUF file, or the `tokenizer.json`
    /// beside a safetensors checkpoint (in its directory).
    pub fn for_model(model: &Model) -> Result<Tokenizer> {
        match model.format() {
            ModelFormat::Gguf => Self::from_gguf(model),
            ModelFormat::Safetensors => {
                let path = model.path();
                let dir = if path.is_dir() {
                    path
                } else {
                    path.parent().unwrap_or(Path::new("."))
                };
                let json = dir.join("tokenizer.json");
                if !json.is_file() {
                    return Err(ModelError::file(
                        path,
                        format!(
                            "a safetensors model has no vocabulary inside, and there is no {}",
                            json.display()
                        ),
                    ));
                }
                Self::from_file(&json)
            }
        }
    }

    /// A Hugging Face `tokenizer.json` (with the `tokenizer_config.json` beside it, if any, for
    /// the BOS/EOS tokens and the chat template), or a GGUF file's vocabulary. The kind is told
    /// by the content (GGUF magic), not the name.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Tokenizer> {
        let path = path.as_ref();
        let mut head = [0u8; 4];
        let is_gguf = std::fs::File::open(path)
            .and_then(|mut f| std::io::Read::read(&mut f, &mut head))
            .map_err(|e| ModelError::file(path, format!("cannot read: {e}")))?
            == 4
            && &head == crate::gguf::GGUF_MAGIC;
        if is_gguf {
            let gguf = GgufFile::open(path)?;
            let vocab = GgufVocab::from_metadata(|k| gguf.metadata(k))
                .map_err(|e| e.in_context(path, None))?;
            return Ok(Self::from_vocab(path, vocab));
        }
        Self::from_hugging_face(path)
    }

    fn from_vocab(path: &Path, vocab: GgufVocab) -> Tokenizer {
        let mut end_of_generation: HashSet<u32> =
            [vocab.eos, vocab.eot].into_iter().flatten().collect();
        for name in END_OF_GENERATION_NAMES {
            if let Some(id) = vocab.token_id(name)
                && matches!(
                    vocab.kinds[id as usize],
                    TokenKind::Control | TokenKind::UserDefined
                )
            {
                end_of_generation.insert(id);
            }
        }
        Tokenizer {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                bos: vocab.bos,
                eos: vocab.eos,
                pad: vocab.pad,
                end_of_generation,
                add_bos: vocab.add_bos,
                chat_template: vocab.chat_template.clone(),
                backend: Backend::Gguf(Box::new(vocab)),
            }),
        }
    }

    fn from_hugging_face(path: &Path) -> Result<Tokenizer> {
        let tok = tokenizers::Tokenizer::from_file(path).map_err(|e| {
            ModelError::file(
                path,
                format!("not a valid Hugging Face tokenizer.json: {e}"),
            )
        })?;
        let special_ids: HashSet<u32> = tok
            .get_added_tokens_decoder()
            .iter()
            .filter(|(_, t)| t.special)
            .map(|(&id, _)| id)
            .collect();
        let config_path = path.with_file_name("tokenizer_config.json");
        let config: Option<serde_json::Value> = if config_path.is_file() {
            let text = std::fs::read_to_string(&config_path)
                .map_err(|e| ModelError::file(&config_path, format!("cannot read: {e}")))?;
            Some(
                serde_json::from_str(&text)
                    .map_err(|e| ModelError::file(&config_path, format!("not valid JSON: {e}")))?,
            )
        } else {
            None
        };
        // tokenizer_config.json writes special tokens as a string or as {"content": ...}.
        let config_token = |key: &str| -> Option<String> {
            let v = config.as_ref()?.get(key)?;
            v.as_str()
                .or_else(|| v.get("content").and_then(|c| c.as_str()))
                .map(str::to_string)
        };
        let id_of = |name: Option<String>| name.and_then(|n| tok.token_to_id(&n));
        let guess = |names: &[&str]| names.iter().find_map(|n| tok.token_to_id(n));
        let bos = id_of(config_token("bos_token"))
            .or_else(|| guess(&["<s>", "<|begin_of_text|>", "<bos>", "<|startoftext|>"]));
        let eos = id_of(config_token("eos_token"))
            .or_else(|| guess(&["</s>", "<|end_of_text|>", "<eos>", "<|endoftext|>"]));
        let pad = id_of(config_token("pad_token"));
        let mut end_of_generation: HashSet<u32> = eos.into_iter().collect();
        for name in END_OF_GENERATION_NAMES {
            if let Some(id) = tok.token_to_id(name)
                && special_ids.contains(&id)
            {
                end_of_generation.insert(id);
            }
        }
        let add_bos = config
            .as_ref()
            .and_then(|c| c.get("add_bos_token"))
            .and_then(|v| v.as_bool())
            .unwrap_or_else(|| {
                // No config: a post-processor that inserts the BOS says the model wants one.
                bos.is_some_and(|b| {
                    tok.encode("a", true)
                        .map(|e| e.get_ids().first() == Some(&b))
                        .unwrap_or(false)
                })
            });
        let chat_template = match config.as_ref().and_then(|c| c.get("chat_template")) {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            // A list of named templates: the one named "default", else the first.
            Some(serde_json::Value::Array(list)) => {
                let named = |want: Option<&str>| {
                    list.iter().find_map(|t| {
                        let name = t.get("name")?.as_str()?;
                        if want.is_none_or(|w| w == name) {
                            t.get("template")?.as_str().map(str::to_string)
                        } else {
                            None
                        }
                    })
                };
                named(Some("default")).or_else(|| named(None))
            }
            Some(_) => {
                return Err(ModelError::file(
                    &config_path,
                    "chat_template is neither a string nor a list of {name, template}",
                ));
            }
        };
        Ok(Tokenizer {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                backend: Backend::HuggingFace(HfTokenizer {
                    vocab_size: tok.get_vocab_size(true),
                    tok: Box::new(tok),
                    special_ids,
                }),
                bos,
                eos,
                pad,
                end_of_generation,
                add_bos,
                chat_template,
            }),
        })
    }

    /// The file the vocabulary was read from.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// What kind of tokenizer this is: `"spm"` or `"bpe"` for GGUF vocabularies,
    /// `"tokenizer.json"` for Hugging Face files.
    pub fn kind(&self) -> &'static str {
        match &self.inner.backend {
            Backend::Gguf(v) if v.is_spm() => "spm",
            Backend::Gguf(_) => "bpe",
            Backend::HuggingFace(_) => "tokenizer.json",
        }
    }

    fn err(&self, problem: impl Into<String>) -> ModelError {
        ModelError::file(&self.inner.path, problem)
    }

    /// The token ids of `text`, after a BOS token when `add_bos` is set (an error if the
    /// vocabulary has none). Control tokens written in the text are matched whole.
    pub fn encode(&self, text: &str, add_bos: bool) -> Result<Vec<u32>> {
        let mut out = Vec::with_capacity(text.len() / 3 + 2);
        if add_bos {
            out.push(
                self.inner
                    .bos
                    .ok_or_else(|| self.err("the vocabulary has no BOS token to add"))?,
            );
        }
        match &self.inner.backend {
            Backend::Gguf(v) => v
                .encode(text, &mut out)
                .map_err(|e| e.in_context(&self.inner.path, None))?,
            Backend::HuggingFace(t) => {
                let enc = t
                    .tok
                    .encode(text, false)
                    .map_err(|e| self.err(format!("encoding failed: {e}")))?;
                out.extend_from_slice(enc.get_ids());
            }
        }
        Ok(out)
    }

    /// The text of `ids`, leaving out control tokens (BOS, EOS, `<|im_start|>`...). Bytes that
    /// are not valid UTF-8 come out as U+FFFD.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        match &self.inner.backend {
            Backend::Gguf(v) => {
                let mut bytes = Vec::with_capacity(ids.len() * 4);
                for &id in ids {
                    v.piece_bytes(id, &mut bytes)
                        .map_err(|e| e.in_context(&self.inner.path, None))?;
                }
                let start = usize::from(v.add_space_prefix && bytes.first() == Some(&b' '));
                Ok(String::from_utf8_lossy(&bytes[start..]).into_owned())
            }
            Backend::HuggingFace(t) => {
                self.check_ids(ids)?;
                t.tok
                    .decode(ids, true)
                    .map_err(|e| self.err(format!("decoding failed: {e}")))
            }
        }
    }

    fn check_ids(&self, ids: &[u32]) -> Result<()> {
        let n = self.vocab_size();
        match ids.iter().find(|&&id| id as usize >= n) {
            Some(id) => Err(self.err(format!(
                "token id {id} is out of range (the vocabulary has {n} tokens)"
            ))),
            None => Ok(()),
        }
    }

    /// The vocabulary entry of a token as stored (`▁the`, `Ġthe`, `<0x0A>`, `<|im_end|>`),
    /// or `None` when out of range.
    pub fn token_text(&self, id: u32) -> Option<String> {
        match &self.inner.backend {
            Backend::Gguf(v) => v.tokens.get(id as usize).cloned(),
            Backend::HuggingFace(t) => t.tok.id_to_token(id),
        }
    }

    /// The id of a vocabulary entry written as stored (`<|im_end|>`, `▁the`).
    pub fn token_id(&self, text: &str) -> Option<u32> {
        match &self.inner.backend {
            Backend::Gguf(v) => v.token_id(text),
            Backend::HuggingFace(t) => t.tok.token_to_id(text),
        }
    }

    /// Whether `id` is a control token (BOS, EOS, `<|im_start|>`...), left out by `decode`.
    pub fn is_control(&self, id: u32) -> bool {
        match &self.inner.backend {
            Backend::Gguf(v) => v
                .kinds
                .get(id as usize)
                .is_some_and(|k| matches!(k, TokenKind::Control)),
            Backend::HuggingFace(t) => t.special_ids.contains(&id),
        }
    }

    /// Number of tokens, special ones included.
    pub fn vocab_size(&self) -> usize {
        match &self.inner.backend {
            Backend::Gguf(v) => v.tokens.len(),
            Backend::HuggingFace(t) => t.vocab_size,
        }
    }

    pub fn bos_id(&self) -> Option<u32> {
        self.inner.bos
    }

    pub fn eos_id(&self) -> Option<u32> {
        self.inner.eos
    }

    /// The padding token, if the vocabulary names one.
    pub fn pad_id(&self) -> Option<u32> {
        self.inner.pad
    }

    /// Whether the model expects a BOS token before a prompt (`tokenizer.ggml.add_bos_token`,
    /// `add_bos_token` of tokenizer_config.json).
    pub fn add_bos_by_default(&self) -> bool {
        self.inner.add_bos
    }

    /// Whether generating `id` ends the answer: EOS, end-of-turn, and the control tokens named
    /// like them (`<|im_end|>`, `<|eot_id|>`, `<|endoftext|>`...).
    pub fn is_end_of_generation(&self, id: u32) -> bool {
        self.inner.end_of_generation.contains(&id)
    }

    /// The ids [`Self::is_end_of_generation`] accepts, ascending.
    pub fn end_of_generation_ids(&self) -> Vec<u32> {
        let mut ids: Vec<u32> = self.inner.end_of_generation.iter().copied().collect();
        ids.sort_unstable();
        ids
    }

    /// The model's own chat template (Jinja), if it has one.
    pub fn chat_template(&self) -> Option<&str> {
        self.inner.chat_template.as_deref()
    }

    /// The prompt text of a conversation in the model's own chat template, or, when it has
    /// none, TinyLlama's (Zephyr) format `<|user|>\n{content}</s>\n<|assistant|>\n`. With
    /// `add_generation_prompt` it ends where the assistant's answer begins.
    pub fn apply_chat_template(
        &self,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
    ) -> Result<String> {
        let template = self.chat_template().unwrap_or(DEFAULT_CHAT_TEMPLATE);
        let name = |id: Option<u32>| id.and_then(|i| self.token_text(i)).unwrap_or_default();
        render_chat_template(
            template,
            messages,
            add_generation_prompt,
            &name(self.inner.bos),
            &name(self.inner.eos),
        )
        .map_err(|e| e.in_context(&self.inner.path, None))
    }

    /// A decoder that turns generated tokens into text one at a time.
    pub fn stream_decoder(&self) -> StreamDecoder {
        let state = match &self.inner.backend {
            Backend::Gguf(v) => StreamState::Pieces {
                pending: Vec::new(),
                strip_leading_space: v.add_space_prefix,
            },
            Backend::HuggingFace(_) => StreamState::Window {
                ids: Vec::new(),
                prefix: String::new(),
                prefix_index: 0,
            },
        };
        StreamDecoder {
            tokenizer: self.clone(),
            state,
        }
    }
}

/// Streaming detokenizer: `push` gives the text that one more token makes printable. Bytes of
/// a character split across tokens are held back until it is complete, and the space that
/// SentencePiece puts before the first word is dropped exactly as `decode` drops it, so the
/// pushed texts (and `finish`) concatenate to `decode` of all the tokens.
///
/// One exception, for `tokenizer.json` files only: their ByteFallback decoder turns a whole run
/// of byte tokens `<0xNN>` into one U+FFFD per token when the run is not valid UTF-8, changing
/// text already printed; the stream then keeps what it printed and goes on from there.
pub struct StreamDecoder {
    tokenizer: Tokenizer,
    state: StreamState,
}

enum StreamState {
    /// GGUF vocabularies: each token's bytes are known on their own.
    Pieces {
        pending: Vec<u8>,
        /// Still before the first byte of output, where one leading space is dropped.
        strip_leading_space: bool,
    },
    /// `tokenizer.json` decoders work on sequences (a decoder may strip or join across
    /// tokens), so the text of a short window of recent tokens is compared with the text of
    /// the window without the newest token.
    Window {
        ids: Vec<u32>,
        prefix: String,
        prefix_index: usize,
    },
}

impl StreamDecoder {
    /// The tokenizer this decoder uses.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// Adds one token; returns the text it completes (often empty while a character is
    /// incomplete, or for control tokens).
    pub fn push(&mut self, id: u32) -> Result<String> {
        let tok = &self.tokenizer;
        match &mut self.state {
            StreamState::Pieces {
                pending,
                strip_leading_space,
            } => {
                let Backend::Gguf(v) = &tok.inner.backend else {
                    return Err(tok.err("stream decoder state does not match its tokenizer"));
                };
                v.piece_bytes(id, pending)
                    .map_err(|e| e.in_context(&tok.inner.path, None))?;
                if *strip_leading_space && !pending.is_empty() {
                    if pending[0] == b' ' {
                        pending.remove(0);
                    }
                    *strip_leading_space = false;
                }
                Ok(take_complete_utf8(pending))
            }
            StreamState::Window {
                ids,
                prefix,
                prefix_index,
            } => {
                tok.check_ids(&[id])?;
                ids.push(id);
                let text = tok.decode(ids)?;
                // A trailing U+FFFD is an incomplete character: wait for more tokens.
                if text.len() > prefix.len() && !text.ends_with('\u{FFFD}') {
                    let Some(new_text) = text.strip_prefix(prefix.as_str()) else {
                        // The decoder rewrote earlier text (rare); restart the window here.
                        let out = text.get(prefix.len()..).unwrap_or("").to_string();
                        *prefix = tok.decode(&ids[ids.len() - 1..])?;
                        ids.drain(..ids.len() - 1);
                        *prefix_index = 0;
                        return Ok(out);
                    };
                    let new_text = new_text.to_string();
                    let new_prefix_index = ids.len() - *prefix_index;
                    ids.drain(..*prefix_index);
                    *prefix = tok.decode(ids)?;
                    *prefix_index = new_prefix_index;
                    Ok(new_text)
                } else {
                    Ok(String::new())
                }
            }
        }
    }

    /// The text still held back (an incomplete character at the end comes out as U+FFFD).
    pub fn finish(&mut self) -> Result<String> {
        let tok = &self.tokenizer;
        match &mut self.state {
            StreamState::Pieces { pending, .. } => {
                let out = String::from_utf8_lossy(pending).into_owned();
                pending.clear();
                Ok(out)
            }
            StreamState::Window {
                ids,
                prefix,
                prefix_index,
            } => {
                let text = tok.decode(ids)?;
                let out = match text.strip_prefix(prefix.as_str()) {
                    Some(rest) => rest.to_string(),
                    None => text.get(prefix.len()..).unwrap_or("").to_string(),
                };
                ids.clear();
                prefix.clear();
                *prefix_index = 0;
                Ok(out)
            }
        }
    }
}

/// Removes and returns the longest prefix of `pending` that is complete UTF-8; invalid bytes
/// become U+FFFD (as `String::from_utf8_lossy` does), an incomplete character at the end stays.
fn take_complete_utf8(pending: &mut Vec<u8>) -> String {
    let mut out = String::new();
    let mut consumed = 0;
    loop {
        match std::str::from_utf8(&pending[consumed..]) {
            Ok(s) => {
                out.push_str(s);
                consumed = pending.len();
                break;
            }
            Err(e) => {
                let valid = consumed + e.valid_up_to();
                out.push_str(&String::from_utf8_lossy(&pending[consumed..valid]));
                match e.error_len() {
                    Some(bad) => {
                        out.push('\u{FFFD}');
                        consumed = valid + bad;
                    }
                    None => {
                        consumed = valid;
                        break;
                    }
                }
            }
        }
    }
    pending.drain(..consumed);
    out
}

#[cfg(test)]
mod tests {
    use super::take_complete_utf8;

    #[test]
    fn utf8_is_released_only_when_complete() {
        let crab = "🦀".as_bytes();
        let mut pending = crab[..2].to_vec();
        assert_eq!(take_complete_utf8(&mut pending), "");
        pending.extend_from_slice(&crab[2..]);
        pending.push(b'!');
        assert_eq!(take_complete_utf8(&mut pending), "🦀!");
        assert!(pending.is_empty());
        // An invalid byte is replaced, as from_utf8_lossy does.
        let mut bad = vec![b'a', 0xFF, b'b', 0xE4];
        assert_eq!(take_complete_utf8(&mut bad), "a\u{FFFD}b");
        assert_eq!(bad, [0xE4]);
    }
}
