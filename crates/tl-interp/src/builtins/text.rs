//! Tokenizers: `load_tokenizer tokenize detokenize token_text is_end_of_generation
//! chat_template token_stream` and the `TokenStream` methods.

use std::cell::RefCell;
use std::rc::Rc;

use tl_models::{ChatMessage, Tokenizer};

use super::{Builtin, CallArgs};
use crate::error::Result;
use crate::interp::Interpreter;
use crate::objects::model::ModelObject;
use crate::objects::tokenizer::{TokenStreamObject, TokenizerObject};
use crate::value::Value;

pub static BUILTINS: &[Builtin] = &[
    Builtin {
        name: "load_tokenizer",
        signature: "load_tokenizer(source: string | model) -> tokenizer",
        category: "tokenizers",
        doc: "A tokenizer from a Hugging Face `tokenizer.json` file (its `tokenizer_config.json` \
              beside it supplies the chat template), from the vocabulary inside a GGUF file \
              (SentencePiece `llama` or byte-level BPE `gpt2` vocabularies), or from a model \
              returned by `load_model` (its GGUF vocabulary, or the `tokenizer.json` next to a \
              safetensors checkpoint). Fields: `tok.vocab_size`, `tok.bos_id`, `tok.eos_id`, \
              `tok.kind`. Errors name the file and the problem (no vocabulary in the file, a \
              malformed tokenizer.json).",
        func: load_tokenizer,
    },
    Builtin {
        name: "tokenize",
        signature: "tokenize(tok: tokenizer, text: string, add_bos: bool = model default) -> list",
        category: "tokenizers",
        doc: "The token ids (a list of ints) of `text`. Special tokens written in the text \
              (`<|im_start|>`, `</s>`) become their single ids. `add_bos` (third argument or \
              `add_bos:`) puts the beginning-of-sequence token first; by default the \
              tokenizer's own setting decides (true for Llama vocabularies). Pass \
              `add_bos: false` for text made by `chat_template`, which writes it itself.",
        func: tokenize,
    },
    Builtin {
        name: "detokenize",
        signature: "detokenize(tok: tokenizer, ids: list | tensor) -> string",
        category: "tokenizers",
        doc: "The text of the token ids `ids` (a list of ints or an int tensor), leaving out \
              control tokens such as BOS and EOS. For text printed while generating, use \
              `token_stream`, which never splits a character. Errors: an id outside the \
              vocabulary.",
        func: detokenize,
    },
    Builtin {
        name: "token_text",
        signature: "token_text(tok: tokenizer, id: int) -> string",
        category: "tokenizers",
        doc: "The vocabulary entry of one id as the tokenizer stores it (e.g. `▁Once`, `<0x0A>`, \
              `Ġthe`), for inspecting a vocabulary. Errors: an id outside the vocabulary.",
        func: token_text,
    },
    Builtin {
        name: "is_end_of_generation",
        signature: "is_end_of_generation(tok: tokenizer, id: int) -> bool",
        category: "tokenizers",
        doc: "True when `id` ends a model's answer: its end-of-sequence token or an \
              end-of-turn token of its chat format (`<|im_end|>`, `<|eot_id|>`, `</s>`).",
        func: is_end_of_generation,
    },
    Builtin {
        name: "chat_template",
        signature: "chat_template(tok: tokenizer, messages: list, add_generation_prompt: bool = true) -> string",
        category: "tokenizers",
        doc: "The prompt text of a conversation, in the model's own chat template (the Jinja \
              template stored in the GGUF file or tokenizer_config.json), or TinyLlama's format \
              (`<|system|>`, `<|user|>`, `<|assistant|>` turns ending in `</s>`) when the model \
              has none. `messages` is a list of [role, content] pairs (roles \"system\", \
              \"user\", \"assistant\") or of structs/records with `role` and `content` fields. \
              With `add_generation_prompt` (default true) the text ends where the assistant's \
              answer begins. Tokenize the result with `add_bos: false`. Errors: a malformed \
              message, a template that fails (its message is shown).",
        func: chat_template,
    },
    Builtin {
        name: "token_stream",
        signature: "token_stream(tok: tokenizer) -> TokenStream",
        category: "tokenizers",
        doc: "A streaming decoder for printing generated text as it comes: `stream.push(id)` \
              returns the text that token completes (empty while a character split across \
              tokens is incomplete, or for control tokens), and `stream.finish()` what is left. \
              The pieces join to exactly `detokenize` of all the ids: no broken UTF-8, no lost \
              or doubled spaces.",
        func: token_stream,
    },
    Builtin {
        name: "TokenStream.push",
        signature: "stream.push(id: int) -> string",
        category: "tokenizers",
        doc: "Adds one generated token id and returns the text it makes printable (see \
              `token_stream`). Errors: an id outside the vocabulary.",
        func: stream_push,
    },
    Builtin {
        name: "TokenStream.finish",
        signature: "stream.finish() -> string",
        category: "tokenizers",
        doc: "The text still held back (an incomplete character at the end), and a fresh start \
              for the next answer.",
        func: stream_finish,
    },
];

fn load_tokenizer(_: &mut Interpreter, args: &mut CallArgs) -> Result<Value> {
    args.expect_named(&[])?;
    args.expect_count(1, 1)?;
    let tokenizer = match args.get(0) {
        Some(Value::Object(o)) => match o.as_any().downcast_ref::<ModelObject>() {
            Some(m) => Tokenizer::for_model(&m.data.model),
            None => {
                return Err(
                    args.arg_error(0, format!("needs a path or a model, got {}", o.type_name()))
                );
            }
        },
        _ => Tokenizer::from_file(args.string(0)?),
    }
    .map_err(|e| args.arg_error(0, e.to_string()))?;
    Ok(Value::Object(Rc::new(TokenizerObject { tokenizer })))
}

fn tokenizer_arg(args: &CallArgs, i: usize) -> Result<Tokenizer> {
    args.object::<TokenizerObject>(i, "a tokenizer")
        .map(|t| t.tokenizer.clone())
}

fn token_id(args: &CallArgs, i: usize, tok: &Tokenizer) -> Result<u32> {
    in_vocabulary(args, i, tok, args.int(i)?)
}

/// `id` (from argument `i`) as a vocabulary index, or an error naming the vocabulary size.
fn in_vocabulary(args: &CallArgs, i: usize, tok: &Tokenizer, id: i64) -> Result<u32> {
    if id < 0 || id as usize >= tok.vocab_size() {
        return Err(args.arg_error(
            i,
            format!(
                "token id {id} is outside the vocabulary of {} tokens",
                tok.vocab_size()
            ),
        ));
    }
    Ok(id as u32)
}

fn tokenize(_: &mut Interpreter, args: &mut CallArgs) -> Result<Value> {
    args.expect_named(&["add_bos"])?;
    args.expect_count(2, 3)?;
    let tok = tokenizer_arg(args, 0)?;
    let text = args.string(1)?;
    let add_bos = args.opt_bool(Some(2), "add_bos", tok.add_bos_by_default())?;
    let ids = tok
        .encode(&text, add_bos)
        .map_err(|e| args.error(e.to_string()))?;
    Ok(Value::List(Rc::new(
        ids.into_iter().map(|i| Value::Int(i as i64)).collect(),
    )))
}

fn id_list(args: &CallArgs, i: usize, tok: &Tokenizer) -> Result<Vec<u32>> {
    let raw: Vec<i64> = match args.get(i) {
        Some(Value::Tensor(t)) => {
            if t.dtype().is_float() {
                return Err(args.arg_error(i, "token ids must be ints"));
            }
            t.to_vec_i64()
        }
        Some(Value::Int(v)) => vec![*v],
        _ => args.int_list(i)?,
    };
    raw.into_iter()
        .map(|id| in_vocabulary(args, i, tok, id))
        .collect()
}

fn detokenize(_: &mut Interpreter, args: &mut CallArgs) -> Result<Value> {
    args.expect_named(&[])?;
    args.expect_count(2, 2)?;
    let tok = tokenizer_arg(args, 0)?;
    let ids = id_list(args, 1, &tok)?;
    tok.decode(&ids)
        .map(Value::str)
        .map_err(|e| args.error(e.to_string()))
}

fn token_text(_: &mut Interpreter, args: &mut CallArgs) -> Result<Value> {
    args.expect_named(&[])?;
    args.expect_count(2, 2)?;
    let tok = tokenizer_arg(args, 0)?;
    let id = token_id(args, 1, &tok)?;
    tok.token_text(id)
        .map(Value::str)
        .ok_or_else(|| args.arg_error(1, format!("token id {id} has no text")))
}

fn is_end_of_generation(_: &mut Interpreter, args: &mut CallArgs) -> Result<Value> {
    args.expect_named(&[])?;
    args.expect_count(2, 2)?;
    let tok = tokenizer_arg(args, 0)?;
    let id = args.int(1)?;
    Ok(Value::Bool(
        id >= 0 && id <= u32::MAX as i64 && tok.is_end_of_generation(id as u32),
    ))
}

/// One message: a [role, content] list, or a struct/record with `role` and `content`.
fn message(v: &Value) -> std::result::Result<ChatMessage, String> {
    let text = |v: &Value, what: &str| match v {
        Value::Str(s) => Ok(s.to_string()),
        other => Err(format!(
            "the {what} must be a string, got {}",
            other.type_name()
        )),
    };
    match v {
        Value::List(items) if items.len() == 2 => Ok(ChatMessage {
            role: text(&items[0], "role")?,
            content: text(&items[1], "content")?,
        }),
        Value::Record(fields) => match (fields.get("role"), fields.get("content")) {
            (Some(r), Some(c)) => Ok(ChatMessage {
                role: text(r, "role")?,
                content: text(c, "content")?,
            }),
            _ => Err("a message record needs `role` and `content` fields".into()),
        },
        Value::Struct(s) => {
            let s = s.borrow();
            match (s.get("role"), s.get("content")) {
                (Some(r), Some(c)) => Ok(ChatMessage {
                    role: text(r, "role")?,
                    content: text(c, "content")?,
                }),
                _ => Err(format!(
                    "a message struct needs `role` and `content` fields (`{}` lacks one)",
                    s.type_name
                )),
            }
        }
        other => Err(format!(
            "each message must be a [role, content] pair or have role/content fields, got {}",
            other.type_name()
        )),
    }
}

fn chat_template(_: &mut Interpreter, args: &mut CallArgs) -> Result<Value> {
    args.expect_named(&["add_generation_prompt"])?;
    args.expect_count(2, 3)?;
    let tok = tokenizer_arg(args, 0)?;
    let Some(Value::List(items)) = args.get(1) else {
        return Err(args.arg_error(1, "messages must be a list"));
    };
    let messages = items
        .iter()
        .enumerate()
        .map(|(i, v)| message(v).map_err(|m| args.arg_error(1, format!("message {i}: {m}"))))
        .collect::<Result<Vec<_>>>()?;
    let add_generation_prompt = args.opt_bool(Some(2), "add_generation_prompt", true)?;
    tok.apply_chat_template(&messages, add_generation_prompt)
        .map(Value::str)
        .map_err(|e| args.error(e.to_string()))
}

fn token_stream(_: &mut Interpreter, args: &mut CallArgs) -> Result<Value> {
    args.expect_named(&[])?;
    args.expect_count(1, 1)?;
    let tok = tokenizer_arg(args, 0)?;
    Ok(Value::Object(Rc::new(TokenStreamObject {
        decoder: RefCell::new(tok.stream_decoder()),
    })))
}

fn stream_arg(args: &CallArgs) -> Result<&TokenStreamObject> {
    args.object::<TokenStreamObject>(0, "a TokenStream")
}

fn stream_push(_: &mut Interpreter, args: &mut CallArgs) -> Result<Value> {
    args.expect_named(&[])?;
    args.expect_count(2, 2)?;
    let stream = stream_arg(args)?;
    let tok = stream.decoder.borrow().tokenizer().clone();
    let id = token_id(args, 1, &tok)?;
    let text = stream
        .decoder
        .borrow_mut()
        .push(id)
        .map_err(|e| args.error(e.to_string()))?;
    Ok(Value::str(text))
}

fn stream_finish(_: &mut Interpreter, args: &mut CallArgs) -> Result<Value> {
    args.expect_named(&[])?;
    args.expect_count(1, 1)?;
    let stream = stream_arg(args)?;
    let mut decoder = stream.decoder.borrow_mut();
    let text = decoder.finish().map_err(|e| args.error(e.to_string()))?;
    Ok(Value::str(text))
}
