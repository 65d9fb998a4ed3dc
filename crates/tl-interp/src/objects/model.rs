//! `load_model(path)` values: a model file behind the GGUF namespace. `model.token_embd.weight`,
//! `model.blk[3].attn_q.weight` and `get_tensor(model, "blk.3.attn_q.weight")` name tensors;
//! `model.config` is a record of the hyper-parameters. Each tensor is read from the file once
//! and kept, so a generation loop that names the same weights every token does no more I/O.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::rc::Rc;

use tl_models::{MetaValue, Model};
use tl_tensor::{Device, Tensor};

use crate::value::{Object, Value};

pub struct ModelData {
    pub model: Model,
    /// Every tensor name, sorted (prefix lookups for `model.blk[3]`).
    names: BTreeSet<String>,
    /// Tensors already read, in the program's device.
    loaded: RefCell<HashMap<String, Tensor>>,
    device: Device,
}

impl ModelData {
    pub fn new(model: Model, device: Device) -> ModelData {
        let names = model.tensor_names().into_iter().map(String::from).collect();
        ModelData {
            model,
            names,
            loaded: RefCell::new(HashMap::new()),
            device,
        }
    }

    fn file_name(&self) -> String {
        self.model.path().display().to_string()
    }

    /// The tensor called `name`, read on first use. Float tensors keep their dtype and
    /// quantized ones stay packed where the runtime supports it.
    pub fn tensor(&self, name: &str) -> Result<Tensor, String> {
        if let Some(t) = self.loaded.borrow().get(name) {
            return Ok(t.clone());
        }
        if !self.names.contains(name) {
            return Err(self.unknown(name));
        }
        let t = match self.model.tensor(name) {
            Ok(t) => t,
            // A runtime without packed support for this type gets the f32 expansion.
            Err(_) if self.is_quantized(name) => {
                self.model.dequantize(name).map_err(|e| e.to_string())?
            }
            Err(e) => return Err(e.to_string()),
        };
        let t = to_device(t, self.device)?;
        self.loaded.borrow_mut().insert(name.to_string(), t.clone());
        Ok(t)
    }

    fn is_quantized(&self, name: &str) -> bool {
        self.model
            .describe(name)
            .map(|d| d.kind.is_quantized())
            .unwrap_or(false)
    }

    /// `prefix` as a tensor, a group of tensors (`blk`, `blk.3`, `blk.3.attn_q`), or an error.
    fn resolve(self: &Rc<Self>, name: String) -> Result<Value, String> {
        if self.names.contains(&name) {
            return self.tensor(&name).map(Value::Tensor);
        }
        let group = format!("{name}.");
        if self
            .names
            .range(group.clone()..)
            .next()
            .is_some_and(|n| n.starts_with(&group))
        {
            return Ok(Value::Object(Rc::new(ModelGroup {
                data: self.clone(),
                prefix: name,
            })));
        }
        Err(self.unknown(&name))
    }

    fn unknown(&self, name: &str) -> String {
        let names = self.names.iter().map(String::as_str);
        let mut msg = format!("model {} has no tensor `{name}`", self.file_name());
        if let Some(s) = crate::suggest::closest(name, names) {
            msg.push_str(&format!(" (did you mean `{s}`?)"));
        }
        msg
    }

    /// The distinct next name components under `prefix.` (the layer numbers under `blk`).
    fn children(&self, prefix: &str) -> BTreeSet<String> {
        let group = format!("{prefix}.");
        self.names
            .range(group.clone()..)
            .take_while(|n| n.starts_with(&group))
            .filter_map(|n| n[group.len()..].split('.').next().map(String::from))
            .collect()
    }

    /// `model.config`: the hyper-parameters under stable names.
    pub fn config_record(&self) -> Value {
        let c = self.model.config();
        let mut r = BTreeMap::new();
        let int = |v: Option<usize>| v.map_or(Value::Unit, |v| Value::Int(v as i64));
        r.insert("architecture".into(), Value::str(&c.architecture));
        r.insert("n_layers".into(), int(c.n_layers));
        r.insert("d_model".into(), int(c.d_model));
        r.insert("n_heads".into(), int(c.n_heads));
        r.insert("n_kv_heads".into(), int(c.n_kv_heads));
        r.insert("head_dim".into(), int(c.head_dim));
        r.insert("ffn_dim".into(), int(c.ffn_dim));
        r.insert("vocab_size".into(), int(c.vocab_size));
        r.insert("context_length".into(), int(c.context_length));
        r.insert("rope_theta".into(), Value::Float(c.rope_theta));
        // Llama's default when a file leaves it out.
        r.insert(
            "rms_norm_eps".into(),
            Value::Float(c.rms_norm_eps.unwrap_or(1e-5)),
        );
        r.insert(
            "tied_output".into(),
            Value::Bool(!self.names.contains("output.weight")),
        );
        r.insert(
            "format".into(),
            Value::str(match self.model.format() {
                tl_models::ModelFormat::Gguf => "gguf",
                tl_models::ModelFormat::Safetensors => "safetensors",
            }),
        );
        Value::Record(Rc::new(r))
    }

    /// The bytes of every tensor as stored (what one pass over the weights reads).
    pub fn weight_bytes(&self) -> u64 {
        self.names
            .iter()
            .filter_map(|n| self.model.describe(n).ok())
            .filter_map(|d| d.kind.bytes_for(d.shape.iter().product()).ok())
            .map(|b| b as u64)
            .sum()
    }

    pub fn tensor_names(&self) -> impl Iterator<Item = &String> {
        self.names.iter()
    }
}

/// Moves a freshly read tensor to the program's device (quantized weights stay packed: the
/// device backends read the blocks).
fn to_device(t: Tensor, device: Device) -> Result<Tensor, String> {
    t.to_device(device).map_err(|e| e.to_string())
}

/// A metadata value as a program value (arrays become lists).
pub fn meta_to_value(m: &MetaValue) -> Value {
    match m {
        MetaValue::U8(v) => Value::Int(*v as i64),
        MetaValue::I8(v) => Value::Int(*v as i64),
        MetaValue::U16(v) => Value::Int(*v as i64),
        MetaValue::I16(v) => Value::Int(*v as i64),
        MetaValue::U32(v) => Value::Int(*v as i64),
        MetaValue::I32(v) => Value::Int(*v as i64),
        MetaValue::U64(v) => Value::Int(*v as i64),
        MetaValue::I64(v) => Value::Int(*v),
        MetaValue::F32(v) => Value::Float(*v as f64),
        MetaValue::F64(v) => Value::Float(*v),
        MetaValue::Bool(v) => Value::Bool(*v),
        MetaValue::String(s) => Value::str(s),
        MetaValue::Array(items) => Value::List(Rc::new(items.iter().map(meta_to_value).collect())),
    }
}

/// A loaded model.
pub struct ModelObject {
    pub data: Rc<ModelData>,
}

impl Object for ModelObject {
    fn type_name(&self) -> &'static str {
        "model"
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
    fn describe(&self) -> String {
        let c = self.data.model.config();
        format!(
            "<model {} ({}, {} tensors, {} layers)>",
            self.data.file_name(),
            c.architecture,
            self.data.names.len(),
            c.n_layers.map_or("?".to_string(), |n| n.to_string())
        )
    }
    fn member(&self, name: &str) -> Option<Result<Value, String>> {
        Some(match name {
            "config" => Ok(self.data.config_record()),
            "path" => Ok(Value::str(self.data.file_name())),
            "weight_bytes" => Ok(Value::Int(self.data.weight_bytes() as i64)),
            _ => self.data.resolve(name.to_string()),
        })
    }
}

/// A group of tensors under a name prefix: `model.blk`, `model.blk[3]`, `model.blk[3].attn_q`.
pub struct ModelGroup {
    data: Rc<ModelData>,
    prefix: String,
}

impl Object for ModelGroup {
    fn type_name(&self) -> &'static str {
        "model group"
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
    fn describe(&self) -> String {
        format!("<model tensors {}.*>", self.prefix)
    }
    fn member(&self, name: &str) -> Option<Result<Value, String>> {
        Some(self.data.resolve(format!("{}.{name}", self.prefix)))
    }
    fn index(&self, i: i64) -> Option<Result<Value, String>> {
        if i < 0 {
            return Some(Err(format!(
                "`{}[{i}]`: model layers are numbered from 0",
                self.prefix
            )));
        }
        Some(self.data.resolve(format!("{}.{i}", self.prefix)))
    }
    fn length(&self) -> Option<usize> {
        // `len(model.blk)`: the number of numbered groups (layers).
        Some(
            self.data
                .children(&self.prefix)
                .iter()
                .filter(|c| c.parse::<usize>().is_ok())
                .count(),
        )
    }
}
