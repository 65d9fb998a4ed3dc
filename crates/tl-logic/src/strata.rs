//! Stratification: strongly connected components of the relation dependency graph in evaluation order,
//! rejecting negation inside a component with the cycle spelled out.

use std::collections::{HashMap, VecDeque};

use crate::error::LogicError;
use crate::eval::{CLit, CRule, RelId};

/// One component: the relations defined together and the rules defining them.
#[derive(Debug, Clone)]
pub(crate) struct Component {
    pub rels: Vec<RelId>,
    pub rules: Vec<usize>,
}

/// Components of the rules' head relations, each after every component it depends on. Relations that
/// head no rule are inputs. `name` renders a relation for error messages.
pub(crate) fn components(
    rules: &[CRule],
    name: &dyn Fn(RelId) -> String,
) -> Result<Vec<Component>, LogicError> {
    let mut heads: Vec<RelId> = Vec::new();
    let mut node_of: HashMap<RelId, usize> = HashMap::new();
    for r in rules {
        node_of.entry(r.head.rel).or_insert_with(|| {
            heads.push(r.head.rel);
            heads.len() - 1
        });
    }
    let n = heads.len();
    // Edges head -> body relation (only relations defined here); `true` marks a negative edge.
    let mut edges: Vec<Vec<(usize, bool)>> = vec![Vec::new(); n];
    for r in rules {
        let h = node_of[&r.head.rel];
        for lit in &r.body {
            let (atom, neg) = match lit {
                CLit::Pos(a) => (a, false),
                CLit::Neg(a) => (a, true),
                CLit::Cmp(..) => continue,
            };
            if let Some(&b) = node_of.get(&atom.rel) {
                edges[h].push((b, neg));
            }
        }
    }

    let comp = tarjan(&edges);
    // Reject a negative edge inside one component.
    for (h, out) in edges.iter().enumerate() {
        for &(b, neg) in out {
            if neg && comp[h] == comp[b] {
                let mut cycle = vec![name(heads[h])];
                cycle.extend(
                    path_within(&edges, &comp, b, h)
                        .into_iter()
                        .map(|x| name(heads[x])),
                );
                return Err(LogicError::Unstratifiable {
                    cycle,
                    negated: name(heads[b]),
                });
            }
        }
    }

    let ncomp = comp.iter().copied().max().map_or(0, |m| m + 1);
    let mut out: Vec<Component> = (0..ncomp)
        .map(|_| Component {
            rels: Vec::new(),
            rules: Vec::new(),
        })
        .collect();
    for (i, &c) in comp.iter().enumerate() {
        out[c].rels.push(heads[i]);
    }
    for (ri, r) in rules.iter().enumerate() {
        out[comp[node_of[&r.head.rel]]].rules.push(ri);
    }
    Ok(out)
}

/// Shortest path from `from` to `to` staying inside their component, both ends included.
fn path_within(edges: &[Vec<(usize, bool)>], comp: &[usize], from: usize, to: usize) -> Vec<usize> {
    let mut prev = vec![usize::MAX; edges.len()];
    let mut seen = vec![false; edges.len()];
    let mut queue = VecDeque::from([from]);
    seen[from] = true;
    while let Some(x) = queue.pop_front() {
        if x == to {
            break;
        }
        for &(y, _) in &edges[x] {
            if !seen[y] && comp[y] == comp[from] {
                seen[y] = true;
                prev[y] = x;
                queue.push_back(y);
            }
        }
    }
    let mut path = vec![to];
    let mut x = to;
    while x != from && prev[x] != usize::MAX {
        x = prev[x];
        path.push(x);
    }
    path.reverse();
    path
}

/// Tarjan's algorithm (iterative). Component numbers come out in reverse topological order of the
/// condensation, i.e. a component's dependencies are numbered before it.
fn tarjan(edges: &[Vec<(usize, bool)>]) -> Vec<usize> {
    let n = edges.len();
    let mut index = vec![usize::MAX; n];
    let mut low = vec![0; n];
    let mut on_stack = vec![false; n];
    let mut stack = Vec::new();
    let mut comp = vec![usize::MAX; n];
    let mut next_index = 0;
    let mut ncomp = 0;
    for root in 0..n {
        if index[root] != usize::MAX {
            continue;
        }
        let mut call: Vec<(usize, usize)> = vec![(root, 0)];
        index[root] = next_index;
        low[root] = next_index;
        next_index += 1;
        stack.push(root);
        on_stack[root] = true;
        while let Some(&mut (v, ref mut ei)) = call.last_mut() {
            if *ei < edges[v].len() {
                let w = edges[v][*ei].0;
                *ei += 1;
                if index[w] == usize::MAX {
                    index[w] = next_index;
                    low[w] = next_index;
                    next_index += 1;
                    stack.push(w);
                    on_stack[w] = true;
                    call.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
            } else {
                call.pop();
                if let Some(&(parent, _)) = call.last() {
                    low[parent] = low[parent].min(low[v]);
                }
                if low[v] == index[v] {
                    loop {
                        let w = stack.pop().expect("tarjan stack holds v");
                        on_stack[w] = false;
                        comp[w] = ncomp;
                        if w == v {
                            break;
                        }
                    }
                    ncomp += 1;
                }
            }
        }
    }
    comp
}
