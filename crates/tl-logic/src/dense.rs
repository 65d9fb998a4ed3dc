//! A dense Boolean-tensor view of a relation, for relations small enough to hold every cell.

use crate::engine::Engine;
use crate::error::LogicError;
use crate::rule::Atom;
use crate::value::Domain;

/// `R(x, y)` as a dense Boolean tensor: axis `k` is indexed by `axes[k]` (the column's type domain for a
/// typed column, else the values present in that column), row-major `data`.
#[derive(Debug, Clone)]
pub struct DenseRelation {
    pub relation: String,
    pub shape: Vec<usize>,
    pub axes: Vec<Domain>,
    pub data: Vec<bool>,
}

impl DenseRelation {
    /// The cell at these axis indices.
    pub fn get(&self, index: &[usize]) -> Option<bool> {
        if index.len() != self.shape.len() || index.iter().zip(&self.shape).any(|(i, n)| i >= n) {
            return None;
        }
        let flat = index
            .iter()
            .zip(&self.shape)
            .fold(0, |acc, (i, n)| acc * n + i);
        Some(self.data[flat])
    }
}

impl Engine {
    /// Computes a relation (forward) and returns it densely; fails with [`LogicError::TooLarge`] past
    /// `max_cells` cells, in which case the relation should stay sparse.
    pub fn dense(&mut self, relation: &str, max_cells: usize) -> Result<DenseRelation, LogicError> {
        let arity = self.arity(relation).unwrap_or(0);
        let probe = Atom::new(relation, vec![crate::rule::Term::Wildcard; arity]);
        let id = self.existing_relation(&probe, "dense view of")?;
        self.ensure_complete(&[id])?;
        let rel = &self.store[id];
        let mut axes: Vec<Domain> = Vec::new();
        for c in 0..rel.arity {
            match &rel.col_types[c] {
                Some(ty) => axes.push(self.domain(ty)),
                None => {
                    let mut d = Domain::default();
                    for r in 0..rel.len() as u32 {
                        d.add(self.interner.value(rel.row(r)[c]));
                    }
                    axes.push(d);
                }
            }
        }
        let shape: Vec<usize> = axes.iter().map(Domain::len).collect();
        let cells: u128 = shape.iter().map(|&n| n as u128).product();
        if cells > max_cells as u128 {
            return Err(LogicError::TooLarge {
                relation: relation.to_string(),
                cells,
                limit: max_cells,
            });
        }
        let mut data = vec![false; cells as usize];
        for r in 0..rel.len() as u32 {
            let mut flat = 0;
            for (c, &id) in rel.row(r).iter().enumerate() {
                let Some(i) = axes[c].index_of(self.interner.value(id)) else {
                    return Err(LogicError::Internal(format!(
                        "value of `{relation}` column {c} missing from its domain"
                    )));
                };
                flat = flat * shape[c] + i;
            }
            data[flat] = true;
        }
        Ok(DenseRelation {
            relation: relation.to_string(),
            shape,
            axes,
            data,
        })
    }
}
