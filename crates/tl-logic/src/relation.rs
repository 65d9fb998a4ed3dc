//! Sparse relation storage: a Boolean tensor kept as its list of true coordinates.
//!
//! Rows are appended to one flat `u32` vector and never move, so "the rows new since round k" is a row
//! range and semi-naive deltas cost nothing to represent. Deduplication and join indexes are open-addressed
//! tables of row ids (4 bytes a slot) hashed on the key columns; an index chains the rows of one key through
//! a per-row `next` array, newest first, and is extended as rows are inserted rather than rebuilt.

use crate::value::Id;

pub(crate) const NONE: u32 = u32::MAX;

/// How a row came to be: a base fact, or rule `rule` fired in global round `round`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Prov {
    pub rule: u32,
    pub round: u32,
}

impl Prov {
    pub const FACT: Prov = Prov {
        rule: NONE,
        round: 0,
    };

    pub fn is_fact(self) -> bool {
        self.rule == NONE
    }
}

fn hash32(key: &[Id]) -> u32 {
    (hash_key(key.iter().copied()) >> 32) as u32
}

fn hash_key(key: impl Iterator<Item = u32>) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for w in key {
        h = (h ^ w as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        h ^= h >> 32;
    }
    h.wrapping_mul(0xff51_afd7_ed55_8ccd)
}

const EMPTY_SLOT: u64 = u64::MAX;

/// Open-addressed table (linear probing) from a key (a projection of a row) to one row id having that
/// key. A slot packs the key's 32-bit hash above the row id, so mismatches and growth never read rows:
/// a probe for an absent key costs one cache line.
#[derive(Debug, Clone)]
struct KeyTable {
    slots: Vec<u64>,
    used: usize,
}

impl KeyTable {
    fn new() -> Self {
        KeyTable {
            slots: vec![EMPTY_SLOT; 16],
            used: 0,
        }
    }

    fn start(&self, h: u32) -> usize {
        // High bits of the hash are the well-mixed ones.
        let bits = self.slots.len().trailing_zeros();
        (u64::from(h) >> (32 - bits)) as usize
    }

    /// The slot holding the key (or the empty slot where it would go), and the key's hash.
    fn probe(&self, data: &[Id], arity: usize, cols: &[usize], key: &[Id]) -> (usize, u32) {
        self.probe_hashed(data, arity, cols, key, hash32(key))
    }

    fn probe_hashed(
        &self,
        data: &[Id],
        arity: usize,
        cols: &[usize],
        key: &[Id],
        h: u32,
    ) -> (usize, u32) {
        let mask = self.slots.len() - 1;
        let mut i = self.start(h);
        loop {
            let s = self.slots[i];
            if s == EMPTY_SLOT {
                return (i, h);
            }
            if (s >> 32) as u32 == h {
                let row = &data[(s as u32) as usize * arity..];
                if cols.iter().zip(key).all(|(&c, &k)| row[c] == k) {
                    return (i, h);
                }
            }
            i = (i + 1) & mask;
        }
    }

    fn row_at(&self, slot: usize) -> u32 {
        let s = self.slots[slot];
        if s == EMPTY_SLOT { NONE } else { s as u32 }
    }

    fn set(&mut self, slot: usize, row: u32, h: u32) {
        self.slots[slot] = (u64::from(h) << 32) | u64::from(row);
    }

    /// Doubles the table before it passes 70% full (the stored hashes place the entries again).
    fn grow_if_needed(&mut self) {
        self.reserve(1);
    }

    /// Grows the table so that `extra` more entries keep it under 70% full.
    fn reserve(&mut self, extra: usize) {
        while (self.used + extra) * 10 > self.slots.len() * 7 {
            self.double();
        }
    }

    fn double(&mut self) {
        let doubled = vec![EMPTY_SLOT; self.slots.len() * 2];
        let old = std::mem::replace(&mut self.slots, doubled);
        let mask = self.slots.len() - 1;
        for s in old.into_iter().filter(|&s| s != EMPTY_SLOT) {
            let mut i = self.start((s >> 32) as u32);
            while self.slots[i] != EMPTY_SLOT {
                i = (i + 1) & mask;
            }
            self.slots[i] = s;
        }
    }
}

/// A hash index on some columns: key -> newest row with that key, then `next` down the chain.
#[derive(Debug, Clone)]
pub(crate) struct Index {
    pub cols: Vec<usize>,
    table: KeyTable,
    next: Vec<u32>,
    /// Reused buffer for the key of the row being added.
    scratch: Vec<Id>,
}

impl Index {
    fn add_row(&mut self, data: &[Id], arity: usize, r: u32) {
        self.table.grow_if_needed();
        let row = &data[r as usize * arity..(r as usize + 1) * arity];
        self.scratch.clear();
        self.scratch.extend(self.cols.iter().map(|&c| row[c]));
        let (slot, h) = self.table.probe(data, arity, &self.cols, &self.scratch);
        let head = self.table.row_at(slot);
        if head == NONE {
            self.table.used += 1;
        }
        self.next.push(head);
        self.table.set(slot, r, h);
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Relation {
    pub name: String,
    pub arity: usize,
    /// Declared column type names (domains); `None` for an untyped column.
    pub col_types: Vec<Option<String>>,
    data: Vec<Id>,
    len: usize,
    all_cols: Vec<usize>,
    set: KeyTable,
    pub indexes: Vec<Index>,
    pub prov: Vec<Prov>,
    /// Whether the relation holds its full meaning under the current rules (always true without rules).
    pub complete: bool,
}

impl Relation {
    pub fn new(name: &str, arity: usize, col_types: Vec<Option<String>>) -> Self {
        Relation {
            name: name.to_string(),
            arity,
            col_types,
            data: Vec::new(),
            len: 0,
            all_cols: (0..arity).collect(),
            set: KeyTable::new(),
            indexes: Vec::new(),
            prov: Vec::new(),
            complete: true,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn row(&self, r: u32) -> &[Id] {
        let a = self.arity;
        &self.data[r as usize * a..(r as usize + 1) * a]
    }

    /// The row id of a full tuple, if present.
    pub fn find(&self, tuple: &[Id]) -> Option<u32> {
        if self.arity == 0 {
            return (self.len > 0).then_some(0);
        }
        let (slot, _) = self
            .set
            .probe(&self.data, self.arity, &self.all_cols, tuple);
        let r = self.set.row_at(slot);
        (r != NONE).then_some(r)
    }

    /// Appends a tuple unless present; returns whether it was new. Keeps every index current.
    pub fn insert(&mut self, tuple: &[Id], prov: Prov) -> bool {
        if self.arity == 0 {
            if self.len > 0 {
                return false;
            }
            self.len = 1;
            self.prov.push(prov);
            return true;
        }
        self.set.grow_if_needed();
        self.insert_hashed(tuple, hash32(tuple), prov)
    }

    /// Inserts many tuples (flat, `arity` cells each); returns how many were new. A flat list cannot
    /// count nullary tuples, so a nullary relation takes its one tuple through [`Relation::insert`].
    pub fn insert_batch(&mut self, flat: &[Id], prov: Prov) -> u64 {
        debug_assert!(self.arity > 0, "nullary tuples go through insert");
        flat.chunks_exact(self.arity)
            .map(|t| u64::from(self.insert(t, prov)))
            .sum()
    }

    /// Insertion with the key's hash known and room in the dedup table already made.
    fn insert_hashed(&mut self, tuple: &[Id], h: u32, prov: Prov) -> bool {
        debug_assert_eq!(tuple.len(), self.arity);
        let r = self.len as u32;
        let (slot, h) = self
            .set
            .probe_hashed(&self.data, self.arity, &self.all_cols, tuple, h);
        if self.set.row_at(slot) != NONE {
            return false;
        }
        self.set.set(slot, r, h);
        self.set.used += 1;
        self.data.extend_from_slice(tuple);
        self.len += 1;
        self.prov.push(prov);
        for ix in &mut self.indexes {
            ix.add_row(&self.data, self.arity, r);
        }
        true
    }

    /// The index on exactly these columns, built over all rows the first time it is asked for.
    pub fn index_on(&mut self, cols: &[usize]) -> usize {
        if let Some(i) = self.indexes.iter().position(|ix| ix.cols == cols) {
            return i;
        }
        let mut ix = Index {
            cols: cols.to_vec(),
            table: KeyTable::new(),
            next: Vec::with_capacity(self.len),
            scratch: Vec::with_capacity(cols.len()),
        };
        for r in 0..self.len as u32 {
            ix.add_row(&self.data, self.arity, r);
        }
        self.indexes.push(ix);
        self.indexes.len() - 1
    }

    /// The newest row whose indexed columns equal `key`, or `NONE`; continue with [`Relation::next_in_chain`].
    pub fn chain_head(&self, index: usize, key: &[Id]) -> u32 {
        let ix = &self.indexes[index];
        let (slot, _) = ix.table.probe(&self.data, self.arity, &ix.cols, key);
        ix.table.row_at(slot)
    }

    pub fn next_in_chain(&self, index: usize, r: u32) -> u32 {
        self.indexes[index].next[r as usize]
    }

    /// Drops every derived row, keeping base facts in their order (used when facts or rules change).
    pub fn reset_to_facts(&mut self) {
        let mut fresh = Relation::new(&self.name, self.arity, self.col_types.clone());
        for r in 0..self.len as u32 {
            if self.prov[r as usize].is_fact() {
                fresh.insert(self.row(r), Prov::FACT);
            }
        }
        *self = fresh;
    }

    pub fn fact_count(&self) -> usize {
        self.prov.iter().filter(|p| p.is_fact()).count()
    }

    /// Approximate heap bytes held (rows, provenance, dedup table, indexes).
    pub fn heap_bytes(&self) -> usize {
        self.data.capacity() * 4
            + self.prov.capacity() * 8
            + self.set.slots.capacity() * 8
            + self
                .indexes
                .iter()
                .map(|ix| ix.table.slots.capacity() * 8 + ix.next.capacity() * 4)
                .sum::<usize>()
    }
}
