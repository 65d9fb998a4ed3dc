//! Backward chaining by magic-sets rewriting.
//!
//! For a goal with bound arguments (`Ancestor(alice, X)`), each relation the goal reaches is copied per
//! binding pattern ("adornment", `bf` = first argument bound) and guarded by a magic relation holding the
//! bindings actually asked for. Magic rules pass bindings sideways through rule bodies (atoms with more
//! bound arguments first), so the rewritten program, evaluated semi-naively, derives only tuples relevant
//! to the goal: the bottom-up equivalent of tabled top-down evaluation. Relations reached with nothing
//! bound, and relations under negation, are computed in full (the latter keeps the program stratified).

use std::collections::HashMap;

use crate::answers::Answers;
use crate::engine::Engine;
use crate::error::LogicError;
use crate::eval::{Arg, CAtom, CLit, CRule, RelId};
use crate::relation::{NONE, Prov};
use crate::rule::{Atom, Term};
use crate::strata;
use crate::value::Id;

struct Rewrite {
    /// (relation, adornment) -> (adorned copy, magic relation).
    copies: HashMap<(RelId, Vec<bool>), (RelId, RelId)>,
    work: Vec<(RelId, Vec<bool>)>,
    rules: Vec<CRule>,
    needs_full: Vec<RelId>,
}

fn bound_arg(arg: Arg, bound: &[bool]) -> bool {
    match arg {
        Arg::Const(_) => true,
        Arg::Var(v) => bound[v],
        Arg::Wild => false,
    }
}

impl Engine {
    /// Answers `goal` by backward chaining: only tuples the goal can use are derived. Gives the same
    /// answers as [`Engine::query`]. A relation already computed by forward chaining is read directly.
    pub fn query_backward(&mut self, goal: &Atom) -> Result<Answers, LogicError> {
        let qrel = self.existing_relation(goal, "query")?;
        self.check_known()?;
        strata::components(&self.compiled, &|id| self.rel_name(id))?;
        self.refresh();
        let adornment: Vec<bool> = goal
            .args
            .iter()
            .map(|t| matches!(t, Term::Sym(_) | Term::Int(_)))
            .collect();
        if !self.is_pending(qrel) || !adornment.contains(&true) {
            self.ensure_complete(&[qrel])?;
            return self.answers_from(goal, None, &[]);
        }
        let keep = self.store.len();
        let result = self.magic_answers(goal, qrel, adornment);
        self.drop_temp_relations(keep);
        result
    }

    /// Defined by rules and not yet computed.
    fn is_pending(&self, rel: RelId) -> bool {
        self.defined.get(rel).copied().unwrap_or(false) && !self.store[rel].complete
    }

    fn magic_answers(
        &mut self,
        goal: &Atom,
        qrel: RelId,
        adornment: Vec<bool>,
    ) -> Result<Answers, LogicError> {
        let mut rw = Rewrite {
            copies: HashMap::new(),
            work: Vec::new(),
            rules: Vec::new(),
            needs_full: Vec::new(),
        };
        let (adorned_goal, magic_goal) = self.copy_for(&mut rw, qrel, &adornment);
        while let Some((rel, ad)) = rw.work.pop() {
            self.rewrite_relation(&mut rw, rel, &ad);
        }
        let needs_full = std::mem::take(&mut rw.needs_full);
        self.ensure_complete(&needs_full)?;

        let mut seed: Vec<Id> = Vec::new();
        for t in &goal.args {
            let v = match t {
                Term::Sym(s) => crate::value::Value::Sym(self.intern(s)),
                Term::Int(i) => crate::value::Value::Int(*i),
                _ => continue,
            };
            seed.push(self.interner.id(v));
        }
        self.store[magic_goal].insert(&seed, Prov::FACT);
        self.evaluate(&rw.rules)?;
        self.answers_from(goal, Some(adorned_goal), &[])
    }

    fn copy_for(&mut self, rw: &mut Rewrite, rel: RelId, ad: &[bool]) -> (RelId, RelId) {
        if let Some(&ids) = rw.copies.get(&(rel, ad.to_vec())) {
            return ids;
        }
        let pattern: String = ad.iter().map(|&b| if b { 'b' } else { 'f' }).collect();
        let name = self.rel_name(rel);
        let arity = self.store[rel].arity;
        let adorned = self.new_temp_relation(format!("{name}@{pattern}"), arity);
        let magic = self.new_temp_relation(
            format!("magic@{name}@{pattern}"),
            ad.iter().filter(|&&b| b).count(),
        );
        rw.copies.insert((rel, ad.to_vec()), (adorned, magic));
        rw.work.push((rel, ad.to_vec()));
        (adorned, magic)
    }

    fn rewrite_relation(&mut self, rw: &mut Rewrite, rel: RelId, ad: &[bool]) {
        let (adorned, magic) = self.copy_for(rw, rel, ad);
        let arity = self.store[rel].arity;
        if self.store[rel].fact_count() > 0 {
            // The relation's own facts (and any tuples already derived), restricted to the asked bindings.
            let all: Vec<Arg> = (0..arity).map(Arg::Var).collect();
            let asked: Vec<Arg> = (0..arity).filter(|&c| ad[c]).map(Arg::Var).collect();
            rw.rules.push(CRule {
                head: CAtom {
                    rel: adorned,
                    args: all.clone(),
                },
                body: vec![
                    CLit::Pos(CAtom {
                        rel: magic,
                        args: asked,
                    }),
                    CLit::Pos(CAtom { rel, args: all }),
                ],
                nvars: arity,
                source: NONE,
            });
        }
        let defining: Vec<CRule> = self
            .compiled
            .iter()
            .filter(|c| c.head.rel == rel)
            .cloned()
            .collect();
        for rule in defining {
            self.rewrite_rule(rw, &rule, ad, adorned, magic);
        }
    }

    fn rewrite_rule(
        &mut self,
        rw: &mut Rewrite,
        rule: &CRule,
        ad: &[bool],
        adorned: RelId,
        magic: RelId,
    ) {
        let mut bound = vec![false; rule.nvars];
        let mut asked = Vec::new();
        for (c, &arg) in rule.head.args.iter().enumerate() {
            if ad[c] {
                asked.push(arg);
                if let Arg::Var(v) = arg {
                    bound[v] = true;
                }
            }
        }
        let mut body = vec![CLit::Pos(CAtom {
            rel: magic,
            args: asked,
        })];
        let mut pending: Vec<usize> = (0..rule.body.len())
            .filter(|&i| !matches!(rule.body[i], CLit::Pos(_)))
            .collect();
        let mut remaining: Vec<usize> = (0..rule.body.len())
            .filter(|&i| matches!(rule.body[i], CLit::Pos(_)))
            .collect();
        for &i in &pending {
            if let CLit::Neg(a) = &rule.body[i]
                && self.is_pending(a.rel)
            {
                rw.needs_full.push(a.rel);
            }
        }
        // Negations and comparisons join the body once decidable; an equality `V == e` that binds `V`
        // joins it as soon as `e` is bound.
        let move_ready = |pending: &mut Vec<usize>, body: &mut Vec<CLit>, bound: &mut [bool]| loop {
            let mut progressed = false;
            pending.retain(|&i| {
                let lit = &rule.body[i];
                let ready = match lit {
                    CLit::Pos(a) | CLit::Neg(a) => a.vars().all(|v| bound[v]),
                    CLit::Cmp(l, _, r) => [l, r]
                        .iter()
                        .all(|a| !matches!(a, Arg::Var(v) if !bound[*v])),
                };
                if ready {
                    body.push(lit.clone());
                } else if let Some((v, _)) = crate::eval::assignment(lit, bound) {
                    bound[v] = true;
                    progressed = true;
                    body.push(lit.clone());
                    return false;
                }
                !ready
            });
            if !progressed {
                break;
            }
        };
        move_ready(&mut pending, &mut body, &mut bound);
        while !remaining.is_empty() {
            // Sideways information passing: next the atom with the most bound arguments.
            let pick = *remaining
                .iter()
                .max_by_key(|&&i| {
                    let CLit::Pos(a) = &rule.body[i] else {
                        unreachable!()
                    };
                    (
                        a.args.iter().filter(|&&x| bound_arg(x, &bound)).count(),
                        usize::MAX - i,
                    )
                })
                .expect("remaining is not empty");
            remaining.retain(|&i| i != pick);
            let CLit::Pos(atom) = &rule.body[pick] else {
                unreachable!()
            };
            let sub_ad: Vec<bool> = atom.args.iter().map(|&x| bound_arg(x, &bound)).collect();
            if self.is_pending(atom.rel) {
                if sub_ad.contains(&true) {
                    let (sub_adorned, sub_magic) = self.copy_for(rw, atom.rel, &sub_ad);
                    let sub_asked: Vec<Arg> = atom
                        .args
                        .iter()
                        .zip(&sub_ad)
                        .filter(|&(_, &b)| b)
                        .map(|(&a, _)| a)
                        .collect();
                    rw.rules.push(CRule {
                        head: CAtom {
                            rel: sub_magic,
                            args: sub_asked,
                        },
                        body: body.clone(),
                        nvars: rule.nvars,
                        source: NONE,
                    });
                    body.push(CLit::Pos(CAtom {
                        rel: sub_adorned,
                        args: atom.args.clone(),
                    }));
                } else {
                    rw.needs_full.push(atom.rel);
                    body.push(CLit::Pos(atom.clone()));
                }
            } else {
                body.push(CLit::Pos(atom.clone()));
            }
            for v in atom.vars() {
                bound[v] = true;
            }
            move_ready(&mut pending, &mut body, &mut bound);
        }
        body.extend(pending.iter().map(|&i| rule.body[i].clone()));
        rw.rules.push(CRule {
            head: CAtom {
                rel: adorned,
                args: rule.head.args.clone(),
            },
            body,
            nvars: rule.nvars,
            source: NONE,
        });
    }
}
