//! Derivations (proof trees) rebuilt from the provenance recorded during forward chaining.
//!
//! Each derived row records only the rule that first produced it and the round it was produced in. A proof
//! is recovered by re-running that rule's body with the head bound to the row and only rows from earlier
//! rounds allowed: such a body match exists (the one that fired) and every premise is strictly older, so
//! the recursion ends at base facts.

use std::collections::{HashMap, HashSet};
use std::fmt;

use crate::engine::Engine;
use crate::error::LogicError;
use crate::eval::{self, Arg, CLit, RelId};
use crate::rule::{Atom, Term};
use crate::value::{Id, Value};

/// One proven tuple of a [`Derivation`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DerivationNode {
    pub relation: String,
    pub values: Vec<Value>,
    /// `Relation(v1, ..., vn)`.
    pub text: String,
    /// The rule (index into [`Engine::rules`]) that derived it; `None` for a base fact.
    pub rule: Option<usize>,
    pub rule_text: Option<String>,
    /// Nodes proving the rule's positive body atoms, in body order.
    pub premises: Vec<usize>,
    /// The rule's negated atoms, instantiated, which are absent (`_` left for wildcards).
    pub absent: Vec<String>,
}

/// A proof: `nodes[0]` is the goal; premises point to other nodes (a tuple used twice is shared).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Derivation {
    pub nodes: Vec<DerivationNode>,
}

impl Derivation {
    pub fn root(&self) -> &DerivationNode {
        &self.nodes[0]
    }

    /// Depth of the proof tree (a base fact has depth 1).
    pub fn depth(&self) -> usize {
        // Iterative post-order over the proof DAG (premises are strictly older tuples, so no cycles).
        let mut depth = vec![0usize; self.nodes.len()];
        let mut stack = vec![(0usize, false)];
        while let Some((n, done)) = stack.pop() {
            if done {
                depth[n] = 1 + self.nodes[n]
                    .premises
                    .iter()
                    .map(|&p| depth[p])
                    .max()
                    .unwrap_or(0);
            } else if depth[n] == 0 {
                stack.push((n, true));
                stack.extend(
                    self.nodes[n]
                        .premises
                        .iter()
                        .filter(|&&p| depth[p] == 0)
                        .map(|&p| (p, false)),
                );
            }
        }
        depth[0]
    }
}

impl fmt::Display for Derivation {
    /// An indented tree, one tuple per line with the rule or `fact` that gives it; a tuple proven
    /// earlier in the listing is not expanded again.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut shown = HashSet::new();
        let mut stack = vec![(0usize, 0usize)];
        while let Some((n, depth)) = stack.pop() {
            let node = &self.nodes[n];
            let pad = "  ".repeat(depth);
            if !shown.insert(n) && node.rule.is_some() {
                writeln!(f, "{pad}{}   (derived above)", node.text)?;
                continue;
            }
            match (&node.rule, &node.rule_text) {
                (Some(i), Some(t)) => writeln!(f, "{pad}{}   [rule {i}: {t}]", node.text)?,
                _ => writeln!(f, "{pad}{}   [fact]", node.text)?,
            }
            for a in &node.absent {
                writeln!(f, "{pad}  not {a}   [absent]")?;
            }
            for &p in node.premises.iter().rev() {
                stack.push((p, depth + 1));
            }
        }
        Ok(())
    }
}

impl Engine {
    /// A derivation of a ground atom after forward chaining it, or `None` if it does not hold.
    pub fn explain(&mut self, goal: &Atom) -> Result<Option<Derivation>, LogicError> {
        if !goal.is_ground() {
            return Err(LogicError::NotGround {
                atom: goal.to_string(),
            });
        }
        let rel = self.existing_relation(goal, "explain")?;
        self.ensure_complete(&[rel])?;
        let mut tuple = Vec::new();
        for t in &goal.args {
            let v = match t {
                Term::Sym(s) => match self.symbol_known(s) {
                    Some(sym) => Value::Sym(sym),
                    None => return Ok(None),
                },
                Term::Int(i) => Value::Int(*i),
                _ => unreachable!("checked ground"),
            };
            match self.interner.existing_id(v) {
                Some(id) => tuple.push(id),
                None => return Ok(None),
            }
        }
        let Some(row) = self.store[rel].find(&tuple) else {
            return Ok(None);
        };
        let mut nodes: Vec<DerivationNode> = Vec::new();
        let mut memo: HashMap<(RelId, u32), usize> = HashMap::new();
        let mut todo: Vec<(RelId, u32, usize)> = Vec::new();
        self.proof_node(rel, row, &mut nodes, &mut memo, &mut todo);
        while let Some((rel, row, n)) = todo.pop() {
            self.expand(rel, row, n, &mut nodes, &mut memo, &mut todo)?;
        }
        Ok(Some(Derivation { nodes }))
    }

    fn proof_node(
        &self,
        rel: RelId,
        row: u32,
        nodes: &mut Vec<DerivationNode>,
        memo: &mut HashMap<(RelId, u32), usize>,
        todo: &mut Vec<(RelId, u32, usize)>,
    ) -> usize {
        if let Some(&n) = memo.get(&(rel, row)) {
            return n;
        }
        let r = &self.store[rel];
        let values: Vec<Value> = r.row(row).iter().map(|&i| self.interner.value(i)).collect();
        let text = format!(
            "{}({})",
            r.name,
            values
                .iter()
                .map(|&v| self.interner.render(v))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let prov = r.prov[row as usize];
        let rule = (!prov.is_fact()).then_some(prov.rule as usize);
        nodes.push(DerivationNode {
            relation: r.name.clone(),
            values,
            text,
            rule,
            rule_text: rule.map(|i| self.rules[i].to_string()),
            premises: Vec::new(),
            absent: Vec::new(),
        });
        let n = nodes.len() - 1;
        memo.insert((rel, row), n);
        if rule.is_some() {
            todo.push((rel, row, n));
        }
        n
    }

    fn expand(
        &mut self,
        rel: RelId,
        row: u32,
        n: usize,
        nodes: &mut Vec<DerivationNode>,
        memo: &mut HashMap<(RelId, u32), usize>,
        todo: &mut Vec<(RelId, u32, usize)>,
    ) -> Result<(), LogicError> {
        let prov = self.store[rel].prov[row as usize];
        let rule = self.compiled[prov.rule as usize].clone();
        let tuple: Vec<Id> = self.store[rel].row(row).to_vec();
        let mut binding = vec![0; rule.nvars];
        let mut prebound = vec![false; rule.nvars];
        for (c, a) in rule.head.args.iter().enumerate() {
            if let Arg::Var(v) = *a {
                binding[v] = tuple[c];
                prebound[v] = true;
            }
        }
        let ranges = eval::full_ranges(&self.store, &rule.body);
        let mut plan = self.plan_for(&rule, &ranges, &prebound);
        plan.max_round = prov.round;
        let order = plan.step_literals();
        let mut found: Option<(Vec<Id>, Vec<u32>)> = None;
        eval::execute(
            &self.store,
            &self.interner,
            &plan,
            &mut binding,
            &mut self.stats,
            &mut |b, rows| {
                found = Some((b.to_vec(), rows.to_vec()));
                true
            },
        );
        let Some((binding, rows)) = found else {
            return Err(LogicError::Internal(format!(
                "no earlier body match re-derives {}",
                nodes[n].text
            )));
        };
        let mut by_lit: Vec<(usize, u32)> = order.into_iter().zip(rows).collect();
        by_lit.sort_unstable();
        let mut premises = Vec::new();
        for (lit, r) in by_lit {
            let CLit::Pos(a) = &rule.body[lit] else {
                unreachable!()
            };
            premises.push(self.proof_node(a.rel, r, nodes, memo, todo));
        }
        let mut absent = Vec::new();
        for lit in &rule.body {
            if let CLit::Neg(a) = lit {
                let args: Vec<String> = a
                    .args
                    .iter()
                    .map(|&x| match x {
                        Arg::Var(v) => self.interner.render(self.interner.value(binding[v])),
                        Arg::Const(c) => self.interner.render(self.interner.value(c)),
                        Arg::Wild => "_".to_string(),
                    })
                    .collect();
                absent.push(format!("{}({})", self.store[a.rel].name, args.join(", ")));
            }
        }
        nodes[n].premises = premises;
        nodes[n].absent = absent;
        Ok(())
    }
}
