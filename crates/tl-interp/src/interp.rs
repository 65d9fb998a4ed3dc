//! The evaluator.

/// A user-defined function or method, with the scope it was defined in.
pub struct Function {
    pub decl: tl_syntax::ast::FnDecl,
}

/// Runs programs. Holds the global scope, the source map, output and the random generator.
pub struct Interpreter {}
