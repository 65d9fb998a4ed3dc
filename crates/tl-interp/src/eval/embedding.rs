//! Embedding spaces (Domingos 2025, section 5): `embedding Emb { entities: {a, b, c} | auto,
//! dimension: D, init: random | orthonormal | zeros }` declares a float32 tensor `Emb[x, d]` whose
//! rows embed the entities (symbols) of a domain. In a tensor equation an entity names its row
//! (`Emb[alice, d]`), and a relation atom `R(x, y)` whose variables index embeddings is the
//! Boolean tensor of `R`'s tuples over those entities, so that
//! `EmbR[i, j] = R(x, y) Emb[x, i] Emb[y, j]` sums the outer products of the facts' embeddings.
//!
//! - `entities: {..}` fixes the rows in the order written; `auto` takes every symbol the logic
//!   engine holds (in the order first stated) when an equation first uses the embedding.
//! - `init: random` (the default) draws each row from a standard normal and scales it to unit
//!   length, so that distinct rows are nearly orthogonal when D is much larger than the number of
//!   entities (their dot products have standard deviation about 1/sqrt(D)); `orthonormal`
//!   orthonormalises those rows (Gram-Schmidt; needs D >= the number of entities), so that
//!   dot products are exactly 0 or 1; `zeros` starts at 0. Draws use the interpreter's generator,
//!   so `seed(n)` before the declaration repeats them.
//!
//! `relation R(x: A, y: B) embed float32[Da, Db]` gives `R` an embedding: each column's type
//! names an embedding space declared before (`embedding A { .. }`), the type's dimensions are
//! those spaces' dimensions, and in a tensor equation `R[i, j]` (brackets) is
//! `sum over R's tuples (x, y) of A[x, i] B[y, j]`, computed from the tuples R holds when the
//! equation runs (facts and derived), so that new facts change it. `R(x, y)` stays the relation.

use std::collections::HashMap;

use tl_syntax::Span;
use tl_syntax::ast::{Dim, EmbeddingDecl, Expr, ExprKind, RelationDecl, TensorType, TypeExpr};
use tl_tensor::{DType, Tensor};

use crate::error::{Result, RuntimeError};
use crate::interp::Interpreter;
use crate::value::Value;

/// A declared embedding space.
pub(crate) struct EmbeddingSpace {
    /// `None` until an `auto` space is first used.
    entities: Option<Vec<String>>,
    index: HashMap<String, usize>,
    dimension: usize,
    init: Init,
}

#[derive(Clone, Copy, PartialEq)]
enum Init {
    Random,
    Orthonormal,
    Zeros,
}

impl Interpreter {
    /// `embedding NAME { ... }`: records the space and, with explicit entities, creates its tensor.
    pub(crate) fn exec_embedding_decl(&mut self, decl: &EmbeddingDecl, span: Span) -> Result<()> {
        self.current_span = span;
        let init = match decl.init.as_deref() {
            None | Some("random") => Init::Random,
            Some("orthonormal") | Some("orthogonal") => Init::Orthonormal,
            Some("zeros") => Init::Zeros,
            Some(other) => {
                return Err(RuntimeError::new(
                    format!(
                        "unknown embedding init `{other}` (expected `random`, `orthonormal` or `zeros`)"
                    ),
                    span,
                ));
            }
        };
        if decl.dimension == 0 {
            return Err(RuntimeError::new(
                format!("embedding `{}` needs a dimension of at least 1", decl.name),
                span,
            ));
        }
        if let Some(list) = &decl.entities {
            let mut seen = std::collections::HashSet::new();
            for e in list {
                if !seen.insert(e) {
                    return Err(RuntimeError::new(
                        format!("embedding `{}` lists the entity `{e}` twice", decl.name),
                        span,
                    ));
                }
            }
        }
        self.embeddings.insert(
            decl.name.clone(),
            EmbeddingSpace {
                entities: None,
                index: HashMap::new(),
                dimension: decl.dimension,
                init,
            },
        );
        match &decl.entities {
            Some(list) => self.create_embedding(&decl.name, list.clone(), span),
            None => Ok(()),
        }
    }

    /// Creates the tensor of an `auto` embedding space at its first use (no-op otherwise).
    pub(crate) fn materialize_embedding(&mut self, name: &str, span: Span) -> Result<()> {
        match self.embeddings.get(name) {
            Some(space) if space.entities.is_none() => {}
            _ => return Ok(()),
        }
        let mut symbols: Vec<String> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for rel in self.logic.relation_names() {
            for tuple in self.logic.tuples(&rel) {
                for v in tuple {
                    if let tl_logic::Value::Sym(_) = v {
                        let text = self.logic.render(v);
                        if seen.insert(text.clone()) {
                            symbols.push(text);
                        }
                    }
                }
            }
        }
        if symbols.is_empty() {
            return Err(RuntimeError::new(
                format!(
                    "embedding `{name}` has `entities: auto`, but no facts name any symbol yet"
                ),
                span,
            ));
        }
        self.create_embedding(name, symbols, span)
    }

    fn create_embedding(&mut self, name: &str, entities: Vec<String>, span: Span) -> Result<()> {
        let Some(space) = self.embeddings.get(name) else {
            return Ok(());
        };
        let (n, d, init) = (entities.len(), space.dimension, space.init);
        let tensor = match init {
            Init::Zeros => Tensor::try_full(&[n, d], 0.0, DType::F32)
                .map_err(|e| RuntimeError::new(format!("embedding `{name}`: {e}"), span))?,
            Init::Random | Init::Orthonormal => {
                let raw = Tensor::try_randn(&[n, d], DType::F32, self.rng())
                    .map_err(|e| RuntimeError::new(format!("embedding `{name}`: {e}"), span))?
                    .to_vec_f64();
                let mut rows: Vec<Vec<f64>> = raw.chunks(d).map(<[f64]>::to_vec).collect();
                if init == Init::Orthonormal {
                    if d < n {
                        return Err(RuntimeError::new(
                            format!(
                                "embedding `{name}`: `init: orthonormal` needs dimension >= the number of entities ({d} < {n})"
                            ),
                            span,
                        ));
                    }
                    for i in 0..n {
                        for j in 0..i {
                            let dot: f64 = rows[i].iter().zip(&rows[j]).map(|(a, b)| a * b).sum();
                            let prev = rows[j].clone();
                            for (x, p) in rows[i].iter_mut().zip(&prev) {
                                *x -= dot * p;
                            }
                        }
                        normalize(&mut rows[i]);
                    }
                } else {
                    for r in &mut rows {
                        normalize(r);
                    }
                }
                let data: Vec<f32> = rows.into_iter().flatten().map(|x| x as f32).collect();
                Tensor::from_f32(data, &[n, d])
                    .and_then(|t| t.to_default_device())
                    .map_err(|e| RuntimeError::from(e).at(span))?
            }
        };
        if let Some(space) = self.embeddings.get_mut(name) {
            space.index = entities
                .iter()
                .enumerate()
                .map(|(i, e)| (e.clone(), i))
                .collect();
            space.entities = Some(entities);
        }
        self.globals.insert(name.to_string(), Value::Tensor(tensor));
        Ok(())
    }

    /// The entity -> row map of an embedding space that exists.
    pub(crate) fn embedding_entities(&self, name: &str) -> Option<HashMap<String, usize>> {
        let space = self.embeddings.get(name)?;
        space.entities.as_ref()?;
        Some(space.index.clone())
    }

    /// The domains of the relation variables of an equation: every variable that indexes the
    /// entity (first) dimension of an embedding, with that embedding's name.
    pub(crate) fn embedding_domains(&self, terms: &[&Expr]) -> HashMap<String, String> {
        let mut out = HashMap::new();
        for term in terms {
            if let ExprKind::Index { base, indices } = &term.kind
                && let ExprKind::Name(emb) = &base.kind
                && self.embeddings.contains_key(emb)
                && let Some(tl_syntax::ast::IndexArg::Expr(Expr {
                    kind: ExprKind::Name(v),
                    ..
                })) = indices.first()
            {
                out.entry(v.clone()).or_insert_with(|| emb.clone());
            }
        }
        out
    }
}

impl Interpreter {
    /// `relation R(x: A, ...) embed TYPE`: checks that each column's type names an embedding
    /// space and that TYPE is float32 with those spaces' dimensions, and records the columns.
    pub(crate) fn declare_relation_embedding(
        &mut self,
        decl: &RelationDecl,
        ty: &TensorType,
    ) -> Result<()> {
        let rel = &decl.name;
        match DType::from_name(&ty.dtype) {
            Some(DType::F32) => {}
            Some(_) => {
                return Err(RuntimeError::new(
                    format!(
                        "the embedding of relation `{rel}` is a float32 tensor, not `{}`",
                        ty.dtype
                    ),
                    ty.span,
                ));
            }
            None => {
                return Err(RuntimeError::new(
                    format!("unknown dtype `{}`", ty.dtype),
                    ty.span,
                ));
            }
        }
        if ty.dims.len() != decl.params.len() {
            return Err(RuntimeError::new(
                format!(
                    "relation `{rel}` has {} arguments, so its embedding has one dimension per argument, but `{}` has {}",
                    decl.params.len(),
                    super::types::tensor_type_str(ty),
                    ty.dims.len()
                ),
                ty.span,
            ));
        }
        let mut columns = Vec::with_capacity(decl.params.len());
        let mut named: HashMap<&str, (usize, &str)> = HashMap::new();
        for (param, dim) in decl.params.iter().zip(&ty.dims) {
            let space = match &param.ty {
                Some(TypeExpr::Named(t)) if self.embeddings.contains_key(t) => t.clone(),
                Some(TypeExpr::Named(t)) => {
                    return Err(RuntimeError::new(
                        format!(
                            "relation `{rel}` has an embedding, so the type of `{}` must name an embedding space, but no `embedding {t} {{ .. }}` is declared before it",
                            param.name
                        ),
                        param.span,
                    )
                    .with_note(format!(
                        "declare `embedding {t} {{ entities: auto, dimension: D }}` before the relation"
                    )));
                }
                _ => {
                    return Err(RuntimeError::new(
                        format!(
                            "relation `{rel}` has an embedding, so `{}` needs a type naming an embedding space (as in `{}: Person` with `embedding Person {{ .. }}`)",
                            param.name, param.name
                        ),
                        param.span,
                    ));
                }
            };
            let size = self.embeddings[&space].dimension;
            // The size the type gives this column, and why (for the message).
            let declared: Option<(usize, String)> = match dim {
                Dim::Fixed(n) => Some((*n, format!("says {n} for `{}`", param.name))),
                Dim::Named(n) => match self.lookup_var(n) {
                    Some(Value::Int(k)) => Some((
                        *k as usize,
                        format!("says `{n}` = {k} for `{}`", param.name),
                    )),
                    _ => match named.get(n.as_str()) {
                        Some(&(first, by)) => Some((
                            first,
                            format!(
                                "says `{n}` for `{}`, and `{n}` is {first} for `{by}`",
                                param.name
                            ),
                        )),
                        None => {
                            named.insert(n, (size, &param.name));
                            None
                        }
                    },
                },
                Dim::Any => None,
            };
            if let Some((n, why)) = declared
                && n != size
            {
                return Err(RuntimeError::new(
                    format!(
                        "the embedding `{}` of relation `{rel}` {why}, but the embedding space `{space}` of `{}` has dimension {size}",
                        super::types::tensor_type_str(ty),
                        param.name
                    ),
                    ty.span,
                ));
            }
            columns.push(space);
        }
        self.embedded_relations.insert(rel.clone(), columns);
        Ok(())
    }

    /// The columns' embedding spaces of `name` when it names a relation declared with `embed`
    /// (and no variable hides it).
    fn embedded_relation(&self, name: &str) -> Option<&Vec<String>> {
        if self.lookup_var(name).is_some() {
            return None;
        }
        self.embedded_relations.get(name)
    }

    /// The shape of the embedding of relation `name` (one embedding dimension per column).
    pub(crate) fn embedded_relation_shape(&self, name: &str) -> Option<Vec<usize>> {
        let columns = self.embedded_relation(name)?;
        Some(
            columns
                .iter()
                .map(|c| self.embeddings.get(c).map_or(0, |s| s.dimension))
                .collect(),
        )
    }

    /// The embedding of relation `name` now: the sum over its tuples of the outer product of
    /// their entities' rows, as one einsum of the 0/1 tensor of its tuples with each column's
    /// embedding. None when `name` is no embedded relation.
    pub(crate) fn relation_embedding(&mut self, name: &str, span: Span) -> Result<Option<Tensor>> {
        let Some(columns) = self.embedded_relation(name).cloned() else {
            return Ok(None);
        };
        let mut maps = Vec::with_capacity(columns.len());
        let mut tables = Vec::with_capacity(columns.len());
        for c in &columns {
            self.materialize_embedding(c, span)?;
            maps.push(self.embedding_entities(c).unwrap_or_default());
            match self.lookup_var(c) {
                Some(Value::Tensor(t)) => tables.push(t.clone()),
                _ => {
                    return Err(RuntimeError::new(
                        format!(
                            "the embedding space `{c}` of relation `{name}` is no longer a tensor"
                        ),
                        span,
                    ));
                }
            }
        }
        let slots: Vec<super::equation::RelationColumn> = (0..columns.len())
            .map(super::equation::RelationColumn::Slot)
            .collect();
        let indicator = self.relation_indicator(name, &slots, &maps, Some(&columns), span)?;
        // `ab,aA,bB->AB` for two columns: entities lower case, embedding dimensions upper case.
        let lower: Vec<char> = ('a'..='z').take(columns.len()).collect();
        let upper: Vec<char> = ('A'..='Z').take(columns.len()).collect();
        if lower.len() < columns.len() {
            return Err(RuntimeError::new(
                format!("relation `{name}` has too many arguments for an embedding (at most 26)"),
                span,
            ));
        }
        let mut spec: String = lower.iter().collect();
        for (l, u) in lower.iter().zip(&upper) {
            spec.push(',');
            spec.push(*l);
            spec.push(*u);
        }
        spec.push_str("->");
        spec.extend(upper.iter());
        let mut operands = vec![&indicator];
        operands.extend(tables.iter());
        Tensor::einsum(&spec, &operands)
            .and_then(|t| t.cast(DType::F32))
            .map(Some)
            .map_err(|e| RuntimeError::from(e).at(span))
    }
}

fn normalize(v: &mut [f64]) {
    let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
    if norm > 0.0 {
        for x in v {
            *x /= norm;
        }
    }
}
