//! Tensor logic proper: Datalog over relations stored as sparse Boolean tensors.
//!
//! A relation `R(x, y)` is a Boolean tensor; a rule `A(x, z) <- S(x, y), P(y, z)` is the tensor equation
//! `A(x, z) = step(S(x, y) P(y, z))`: a join summing over the variables absent from the head, then a step
//! (here: projection with deduplication). Several rules for one head are the step of their sum (a union).
//!
//! [`Engine`] holds relations, facts and rules and evaluates them by semi-naive forward chaining to a fixed
//! point, stratum by stratum (stratified negation), or by backward chaining from a goal through a
//! magic-sets rewriting that computes only the tuples the goal can use. Every derived tuple records the
//! rule and round that first produced it, from which [`Engine::explain`] rebuilds a proof.
//!
//! Each stratum runs either on tuples (hashed tuple lists; joins planned by cost, see
//! [`Engine::join_plan`]) or, when it is small and dense enough, on dense 0/1 tensors of `tl_tensor` on
//! the default tensor device: a rule body is one `einsum` then `step`, rounds are semi-naive over delta
//! tensors, and the round and rule of each derived cell are recorded so explanations work alike
//! ([`TensorMode`], [`DenseLimits`], [`Engine::stratum_reports`]; details in `tensor_eval.rs`). Both
//! give the same tuples.
//!
//! ```
//! use tl_logic::{Atom, Engine};
//! let mut e = Engine::new();
//! for (a, b) in [("alice", "bob"), ("bob", "carol")] {
//!     let (a, b) = (e.sym(a), e.sym(b));
//!     e.add_fact("Parent", &[a, b]).unwrap();
//! }
//! e.add_rule_text("Ancestor(X, Y) <- Parent(X, Y)").unwrap();
//! e.add_rule_text("Ancestor(X, Z) <- Parent(X, Y), Ancestor(Y, Z)").unwrap();
//! let goal = Atom::parse("Ancestor(alice, X)").unwrap();
//! let answers = e.query(&goal).unwrap(); // forward chaining of what the goal needs
//! assert_eq!(answers.to_string(), "X\n-----\nbob\ncarol\n(2 answers)\n");
//! assert_eq!(e.query_backward(&goal).unwrap(), answers);
//! let proof = e.explain(&Atom::parse("Ancestor(alice, carol)").unwrap()).unwrap().unwrap();
//! assert!(proof.to_string().contains("Parent(bob, carol)   [fact]"));
//! ```
//!
//! For an interpreter: build [`Rule`]s from the AST (`Term::Var` for variables, whatever their case in
//! the equation form; `Term::Sym` for symbols and strings; `Literal::Cmp` for `X != Y`), feed facts with
//! [`Engine::add_fact`] / [`Engine::add_fact_atom`], declarations with [`Engine::declare_typed`], then
//! answer `query` with [`Engine::query`] / [`Engine::query_where`], `infer forward` with
//! [`Engine::run_forward`] + `query`, `infer backward` with [`Engine::query_backward`], and `--explain`
//! with [`Engine::explain`]. Adding facts or rules after a run is allowed: derived tuples are recomputed
//! on the next query.

mod answers;
mod backward;
mod dense;
mod engine;
mod error;
mod eval;
mod explain;
mod relation;
mod rule;
mod strata;
mod tensor_eval;
mod value;

pub use answers::Answers;
pub use dense::DenseRelation;
pub use engine::{Engine, Strategy};
pub use error::LogicError;
pub use eval::Stats;
pub use explain::{Derivation, DerivationNode};
pub use rule::{Atom, CmpOp, Literal, Rule, Term, classify_name};
pub use tensor_eval::{DenseLimits, StratumReport, TensorMode};
pub use value::{Domain, Symbol, Value};
