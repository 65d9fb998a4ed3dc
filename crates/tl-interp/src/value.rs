//! Values of the language.

use std::any::Any;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::rc::Rc;
use tl_tensor::Tensor;

use crate::builtins::Builtin;

#[derive(Clone, Default)]
pub enum Value {
    /// The value of statements and of functions that return nothing.
    #[default]
    Unit,
    Int(i64),
    Float(f64),
    Bool(bool),
    Str(Rc<str>),
    /// Lists are values: `append(list, x)` returns a new list (copy-on-write, so appending to a
    /// list nobody else holds is amortised O(1)).
    List(Rc<Vec<Value>>),
    Tensor(Tensor),
    /// A user function (`fn`) or method.
    Function(Rc<crate::interp::Function>),
    Builtin(&'static Builtin),
    /// A struct instance; shared and mutable, so `self.x = ...` in a method is seen by the caller.
    Struct(Rc<RefCell<StructValue>>),
    /// A read-only record with named fields (generation results, `model.config`, ...).
    Record(Rc<BTreeMap<String, Value>>),
    /// Host objects owned by other crates (models, tokenizers, KV caches, relations).
    Object(Rc<dyn Object>),
}

pub struct StructValue {
    pub type_name: String,
    /// Fields in declaration order (printing keeps it).
    pub fields: Vec<(String, Value)>,
}

impl StructValue {
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.fields.iter().find(|f| f.0 == name).map(|f| &f.1)
    }

    /// Replaces field `name`; false when the struct has no such field.
    pub fn set(&mut self, name: &str, value: Value) -> bool {
        match self.fields.iter_mut().find(|f| f.0 == name) {
            Some(f) => {
                f.1 = value;
                true
            }
            None => false,
        }
    }
}

/// A host object exposed to programs. `type_name` appears in messages (`model`, `tokenizer`).
pub trait Object: Any {
    fn type_name(&self) -> &'static str;
    fn as_any(&self) -> &dyn Any;
    /// How `print` shows it.
    fn describe(&self) -> String {
        format!("<{}>", self.type_name())
    }
    /// `obj.name` (fields other than methods); `None` when the object has no fields at all.
    fn member(&self, _name: &str) -> Option<std::result::Result<Value, String>> {
        None
    }
    /// `obj[i]`; `None` when the object cannot be indexed.
    fn index(&self, _i: i64) -> Option<std::result::Result<Value, String>> {
        None
    }
    /// `len(obj)`; `None` when the object has no length.
    fn length(&self) -> Option<usize> {
        None
    }
}

impl Value {
    pub fn str(s: impl AsRef<str>) -> Value {
        Value::Str(Rc::from(s.as_ref()))
    }

    /// The kind of value, as messages name it: `int`, `float`, `bool`, `string`, `list`,
    /// `tensor`, `function`, or the struct / object type name.
    pub fn type_name(&self) -> String {
        match self {
            Value::Unit => "unit".into(),
            Value::Int(_) => "int".into(),
            Value::Float(_) => "float".into(),
            Value::Bool(_) => "bool".into(),
            Value::Str(_) => "string".into(),
            Value::List(_) => "list".into(),
            Value::Tensor(_) => "tensor".into(),
            Value::Function(_) | Value::Builtin(_) => "function".into(),
            Value::Struct(s) => s.borrow().type_name.clone(),
            Value::Record(_) => "record".into(),
            Value::Object(o) => o.type_name().into(),
        }
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{}>", self.type_name())
    }
}
