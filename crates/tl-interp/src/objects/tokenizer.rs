//! `load_tokenizer` values and the streaming decoders made from them.

use std::cell::RefCell;

use tl_models::{StreamDecoder, Tokenizer};

use crate::value::{Object, Value};

pub struct TokenizerObject {
    pub tokenizer: Tokenizer,
}

impl Object for TokenizerObject {
    fn type_name(&self) -> &'static str {
        "tokenizer"
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
    fn describe(&self) -> String {
        format!(
            "<tokenizer {} ({}, {} tokens)>",
            self.tokenizer.path().display(),
            self.tokenizer.kind(),
            self.tokenizer.vocab_size()
        )
    }
    fn member(&self, name: &str) -> Option<Result<Value, String>> {
        let id = |v: Option<u32>| v.map_or(Value::Unit, |i| Value::Int(i as i64));
        Some(match name {
            "vocab_size" => Ok(Value::Int(self.tokenizer.vocab_size() as i64)),
            "bos_id" => Ok(id(self.tokenizer.bos_id())),
            "eos_id" => Ok(id(self.tokenizer.eos_id())),
            "kind" => Ok(Value::str(self.tokenizer.kind())),
            _ => Err(format!(
                "a tokenizer has no field `{name}` (it has vocab_size, bos_id, eos_id, kind)"
            )),
        })
    }
}

/// A streaming decoder: `stream.push(id)` gives the text one more token completes.
pub struct TokenStreamObject {
    pub decoder: RefCell<StreamDecoder>,
}

impl Object for TokenStreamObject {
    fn type_name(&self) -> &'static str {
        "TokenStream"
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}
