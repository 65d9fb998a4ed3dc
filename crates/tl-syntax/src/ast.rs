//! The abstract syntax tree. Every node that can be the subject of an error carries a [`Span`].
//!
//! The parser decides only what the grammar decides. Questions that need scope information
//! (is `Y[i, j] = ...` an indexed assignment or a tensor equation? is `Parent(alice, bob)` a
//! fact or a call?) are left to the interpreter, which sees the bindings.

use crate::span::Span;

/// A parsed file.
#[derive(Debug, Clone, PartialEq)]
pub struct Program {
    pub items: Vec<Item>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub kind: ItemKind,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ItemKind {
    /// `import "path.tl"`; the path is relative to the importing file.
    Import(String),
    TensorDecl(TensorDecl),
    Relation(RelationDecl),
    Embedding(EmbeddingDecl),
    /// A Datalog rule (`head <- body` or `head :- body`, with or without the `rule` keyword).
    Rule(Rule),
    Fn(FnDecl),
    Struct(StructDecl),
    Impl(ImplDecl),
    /// `main { ... }`
    Main(Block),
    /// `test NAME { ... }`, run by `tl run --test`.
    Test {
        name: String,
        body: Block,
    },
    /// `bench NAME { ... }`, run by `tl run --bench`.
    Bench {
        name: String,
        body: Block,
    },
    /// Any statement at top level: tensor equations, facts (`Parent(alice, bob)`), queries
    /// (`Y?`, `Parent(alice, X)?`), or plain statements of a script without `main`.
    Stmt(Stmt),
}

/// A type annotation such as `float32[2, n, ?]`, `int`, `string`.
#[derive(Debug, Clone, PartialEq)]
pub enum TypeExpr {
    Tensor(TensorType),
    /// A non-tensor type name: `int`, `float`, `bool`, `string`, `list`, a struct name, ...
    Named(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct TensorType {
    /// One of `float16 float32 float64 bfloat16 int32 int64 bool`, as written.
    pub dtype: String,
    pub dims: Vec<Dim>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Dim {
    Fixed(usize),
    /// A named dimension: must agree wherever the same name appears in one signature.
    Named(String),
    /// `?`: any size.
    Any,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TensorRole {
    Learnable,
    Frozen,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TensorDecl {
    pub name: String,
    pub ty: TensorType,
    pub role: Option<TensorRole>,
    pub init: Option<Expr>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    pub name: String,
    pub ty: Option<TypeExpr>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RelationDecl {
    pub name: String,
    pub params: Vec<Param>,
    pub embed: Option<TensorType>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EmbeddingDecl {
    pub name: String,
    /// `None` means `entities: auto`.
    pub entities: Option<Vec<String>>,
    pub dimension: usize,
    pub init: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FnDecl {
    pub name: String,
    pub params: Vec<Param>,
    pub ret: Option<TypeExpr>,
    pub body: Block,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StructDecl {
    pub name: String,
    pub fields: Vec<Param>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ImplDecl {
    pub type_name: String,
    /// Methods; a first parameter named `self` makes an instance method.
    pub methods: Vec<FnDecl>,
}

/// A logic atom `Name(t1, ..., tn)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Atom {
    pub name: String,
    pub args: Vec<Term>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Term {
    /// Starts with an upper-case letter: a variable (`X`, `Person`).
    Var(String),
    /// A lower-case name: a symbol constant (`alice`).
    Symbol(String),
    Int(i64),
    Str(String),
    /// `_`
    Wildcard,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub head: Atom,
    pub body: Vec<BodyLiteral>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum BodyLiteral {
    Atom {
        negated: bool,
        atom: Atom,
    },
    /// A comparison constraint such as `X != Y`.
    Compare(Expr),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Block {
    pub stmts: Vec<Stmt>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Stmt {
    pub kind: StmtKind,
    pub span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssignOp {
    /// `=`: rebind, or for a tensor equation, the equation itself.
    Assign,
    /// `:=`: bind or rebind.
    Bind,
    AddAssign,
    SubAssign,
    MulAssign,
    DivAssign,
    /// `max=`: a tensor equation projecting with max.
    MaxAssign,
    /// `avg=`: a tensor equation projecting with mean.
    AvgAssign,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InferDirection {
    Forward,
    Backward,
}

#[derive(Debug, Clone, PartialEq)]
pub enum StmtKind {
    /// `let x = e`, `let x: T = e`
    Let {
        name: String,
        ty: Option<TypeExpr>,
        value: Expr,
    },
    /// `target op value`. The target is a name, an index expression (`Y[i, k]`: assignment or
    /// tensor equation, decided by the interpreter), a call-shaped relation head (`Aunt(x, z)`),
    /// or a member (`self.w`).
    Assign {
        target: Expr,
        op: AssignOp,
        value: Expr,
    },
    If {
        cond: Expr,
        then: Block,
        /// `else { }` or `else if ...` (an `If` statement wrapped in a block).
        otherwise: Option<Block>,
    },
    /// `for x in e { }`; `e` is `range(n)`, `range_i(n)`, a list or a tensor.
    For {
        var: String,
        iter: Expr,
        body: Block,
    },
    While {
        cond: Expr,
        body: Block,
    },
    Break,
    Continue,
    Return(Option<Expr>),
    /// A nested `{ }` block with its own scope.
    Block(Block),
    /// `query Parent(alice, X) where X != Y`, `Parent(alice, X)?`
    Query {
        atom: Atom,
        condition: Option<Expr>,
    },
    /// `Y?`: print a tensor of the equation set.
    TensorQuery(Expr),
    /// `infer forward Ancestor(alice, X)?`
    Infer {
        direction: InferDirection,
        atom: Atom,
    },
    /// `learn { local := e ... objective: e, optimizer: adam(lr: 0.001), epochs: 100 }`
    Learn {
        body: Vec<Stmt>,
        /// `objective`, `optimizer`, `epochs` and any other `key: value` settings, in order.
        settings: Vec<(String, Expr)>,
    },
    /// A Datalog rule written inside a block.
    Rule(Rule),
    /// An expression evaluated for its effect (`print(x)`), or a fact `Parent(alice, bob)`.
    Expr(Expr),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnaryOp {
    Neg,
    /// `!` and `not`
    Not,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
    Add,
    Sub,
    Mul,
    Div,
    Rem,
    /// `@`
    MatMul,
    /// `**`
    Pow,
}

impl BinaryOp {
    /// The operator as written in source (`or` and `and` for the word forms).
    pub fn symbol(self) -> &'static str {
        match self {
            BinaryOp::Or => "or",
            BinaryOp::And => "and",
            BinaryOp::Eq => "==",
            BinaryOp::Ne => "!=",
            BinaryOp::Lt => "<",
            BinaryOp::Gt => ">",
            BinaryOp::Le => "<=",
            BinaryOp::Ge => ">=",
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
            BinaryOp::Rem => "%",
            BinaryOp::MatMul => "@",
            BinaryOp::Pow => "**",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CastTarget {
    Int,
    Float,
    Bool,
    Str,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Arg {
    /// `name: value` for a named argument.
    pub name: Option<String>,
    pub value: Expr,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum IndexArg {
    /// `x[e]`; inside a tensor equation also an index variable or index arithmetic (`t+1`).
    Expr(Expr),
    /// `a:b`, `a:`, `:b`, `:`, with an optional `:step`.
    Slice {
        start: Option<Expr>,
        end: Option<Expr>,
        step: Option<Expr>,
    },
    /// `p'.`: the index normalised over (softmax-style) in a tensor equation. The name keeps
    /// its prime (`"p'"`); a primed name without the dot (`p'`) is an ordinary `Expr` name.
    Normalized(String),
    /// `*t`, `*t+1`, `*t-1`: a virtual index (no memory kept for it) and its offset.
    Virtual(String, i64),
}

#[derive(Debug, Clone, PartialEq)]
pub enum ExprKind {
    Int(i64),
    Float(f64),
    Str(String),
    Bool(bool),
    /// `[a, b, c]`, nested for tensors.
    Array(Vec<Expr>),
    Name(String),
    /// `Type::name`, e.g. `f16::zeros`, `KVCache::new_f16`, `Point::new`.
    Path {
        ty: String,
        name: String,
    },
    Unary {
        op: UnaryOp,
        expr: Box<Expr>,
    },
    Binary {
        op: BinaryOp,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
    /// `f(a, name: b)`; the callee is a `Name` or a `Path`.
    Call {
        callee: Box<Expr>,
        args: Vec<Arg>,
    },
    /// `obj.m(args)`
    MethodCall {
        receiver: Box<Expr>,
        method: String,
        args: Vec<Arg>,
    },
    /// `x[i, a:b, :]`
    Index {
        base: Box<Expr>,
        indices: Vec<IndexArg>,
    },
    /// `model.blk`
    Member {
        base: Box<Expr>,
        name: String,
    },
    /// `e as int`
    Cast {
        expr: Box<Expr>,
        target: CastTarget,
    },
    /// `Point { x: 1, y: 2 }`: a struct literal.
    StructLit {
        name: String,
        fields: Vec<(String, Expr)>,
    },
}
