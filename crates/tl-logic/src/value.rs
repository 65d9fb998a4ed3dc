//! Symbols, values and their interning.
//!
//! Every constant a relation stores (a symbol such as `alice` or an integer) is interned once into a dense
//! `u32` id, so tuples are flat `u32` rows. Per-type domains (`relation Parent(x: Person, y: Person)`)
//! additionally number the values seen in columns of that type densely from 0, which is the index a
//! Boolean tensor over that domain uses.

use std::cmp::Ordering;
use std::collections::HashMap;

/// An interned symbol name (`alice`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Symbol(pub(crate) u32);

impl Symbol {
    /// The dense id of this symbol in its engine's symbol table.
    pub fn id(self) -> u32 {
        self.0
    }
}

/// A constant stored in a relation: a symbol or a 64-bit integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Value {
    Sym(Symbol),
    Int(i64),
}

/// Interned value id: the cell type of every stored tuple.
pub(crate) type Id = u32;

/// Symbol names and the value <-> id mapping.
#[derive(Debug, Default, Clone)]
pub(crate) struct Interner {
    names: Vec<String>,
    by_name: HashMap<String, Symbol>,
    values: Vec<Value>,
    ids: HashMap<Value, Id>,
}

impl Interner {
    pub(crate) fn symbol(&mut self, name: &str) -> Symbol {
        if let Some(&s) = self.by_name.get(name) {
            return s;
        }
        let s = Symbol(self.names.len() as u32);
        self.names.push(name.to_string());
        self.by_name.insert(name.to_string(), s);
        s
    }

    pub(crate) fn lookup_symbol(&self, name: &str) -> Option<Symbol> {
        self.by_name.get(name).copied()
    }

    pub(crate) fn has_symbol(&self, s: Symbol) -> bool {
        (s.0 as usize) < self.names.len()
    }

    pub(crate) fn name(&self, s: Symbol) -> &str {
        &self.names[s.0 as usize]
    }

    pub(crate) fn id(&mut self, v: Value) -> Id {
        if let Some(&id) = self.ids.get(&v) {
            return id;
        }
        let id = self.values.len() as Id;
        self.values.push(v);
        self.ids.insert(v, id);
        id
    }

    /// The id of a value already interned, without interning it (a constant never stored matches nothing).
    pub(crate) fn existing_id(&self, v: Value) -> Option<Id> {
        self.ids.get(&v).copied()
    }

    /// Number of interned values (ids run from 0 to this).
    pub(crate) fn value_count(&self) -> usize {
        self.values.len()
    }

    pub(crate) fn value(&self, id: Id) -> Value {
        self.values[id as usize]
    }

    /// The total order used for sorting answers and for `<`-style comparisons: integers numerically,
    /// symbols by name, every integer before every symbol.
    pub(crate) fn compare_values(&self, a: Value, b: Value) -> Ordering {
        match (a, b) {
            (Value::Int(x), Value::Int(y)) => x.cmp(&y),
            (Value::Sym(x), Value::Sym(y)) => {
                if x == y {
                    Ordering::Equal
                } else {
                    self.name(x).cmp(self.name(y))
                }
            }
            (Value::Int(_), Value::Sym(_)) => Ordering::Less,
            (Value::Sym(_), Value::Int(_)) => Ordering::Greater,
        }
    }

    pub(crate) fn compare_ids(&self, a: Id, b: Id) -> Ordering {
        if a == b {
            Ordering::Equal
        } else {
            self.compare_values(self.value(a), self.value(b))
        }
    }

    pub(crate) fn render(&self, v: Value) -> String {
        match v {
            Value::Int(i) => i.to_string(),
            Value::Sym(s) => self.name(s).to_string(),
        }
    }
}

/// The values seen in columns of one declared type, numbered densely in order of first appearance.
#[derive(Debug, Default, Clone)]
pub struct Domain {
    values: Vec<Value>,
    index: HashMap<Value, usize>,
}

impl Domain {
    pub(crate) fn add(&mut self, v: Value) -> usize {
        if let Some(&i) = self.index.get(&v) {
            return i;
        }
        let i = self.values.len();
        self.values.push(v);
        self.index.insert(v, i);
        i
    }

    /// The values of this domain in index order.
    pub fn values(&self) -> &[Value] {
        &self.values
    }

    /// The dense index of `v` in this domain (its coordinate along a tensor axis of this type).
    pub fn index_of(&self, v: Value) -> Option<usize> {
        self.index.get(&v).copied()
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}
