//! Loading files: reading, parsing, imports (relative to the importing file, each file once,
//! cycles reported with their chain), and registering declarations (functions, structs, impls,
//! relations). What runs is collected, in order, into a [`LoadedProgram`].

use std::path::{Path, PathBuf};
use std::rc::Rc;

use tl_syntax::ast::{Block, ItemKind, Program, RelationDecl, Stmt, StmtKind, TensorDecl};
use tl_syntax::{Diagnostic, FileId, Span};

use crate::interp::{Function, Interpreter};

/// Something run at top level, in file order (an import's items come where the import is).
pub(crate) enum TopItem {
    Stmt(Stmt),
    Tensor(TensorDecl, Span),
    /// `relation Name(...)`, declared in the logic engine when it runs.
    Relation(RelationDecl, Span),
    /// `embedding Name { entities: ..., dimension: D }` (`crate::eval::embedding`).
    Embedding(tl_syntax::ast::EmbeddingDecl, Span),
    /// A construct of a later issue (relations, rules, embeddings); running it fails with
    /// "not supported yet: WHAT".
    #[allow(dead_code)]
    Unsupported(&'static str, Span),
}

#[derive(Default)]
pub(crate) struct LoadedProgram {
    pub items: Vec<TopItem>,
    /// `main` of the file given to `run` (imported files' `main`s are not run).
    pub main: Option<Block>,
    pub tests: Vec<(String, Block, Span)>,
    pub benches: Vec<(String, Block, Span)>,
}

/// The file being loaded and the files that import it, for cycle messages.
struct ImportChain {
    /// (canonical path, name as shown in cycle messages)
    files: Vec<(PathBuf, String)>,
    /// The directory of the file given to `run`; cycle messages show paths relative to it.
    root: PathBuf,
}

impl ImportChain {
    fn short_name(&self, path: &Path) -> String {
        path.strip_prefix(&self.root)
            .unwrap_or(path)
            .display()
            .to_string()
    }
}

impl Interpreter {
    /// Reads, parses and registers `path` and everything it imports.
    pub(crate) fn load_program(&mut self, path: &Path) -> Result<LoadedProgram, Vec<Diagnostic>> {
        let text = read_source(path).map_err(|e| {
            vec![Diagnostic::without_span(format!(
                "cannot read {}: {e}",
                path.display()
            ))]
        })?;
        let canonical = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
        let name = path.display().to_string();
        let file = self.sources.add(name.clone(), text);
        let mut program = LoadedProgram::default();
        let mut errors = Vec::new();
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let mut chain = ImportChain {
            files: Vec::new(),
            root: dir.clone(),
        };
        let short = chain.short_name(path);
        chain.files.push((canonical.clone(), short));
        self.loaded.insert(canonical);
        self.load_parsed(file, &dir, true, &mut chain, &mut program, &mut errors);
        if errors.is_empty() {
            Ok(program)
        } else {
            Err(errors)
        }
    }

    /// Parses and registers one REPL entry; imports are relative to the working directory.
    pub(crate) fn load_repl_entry(
        &mut self,
        name: &str,
        input: &str,
    ) -> Result<LoadedProgram, Vec<Diagnostic>> {
        let file = self.sources.add(name.to_string(), input.to_string());
        let mut program = LoadedProgram::default();
        let mut errors = Vec::new();
        let mut chain = ImportChain {
            files: vec![(PathBuf::from(name), name.to_string())],
            root: PathBuf::from("."),
        };
        self.load_parsed(
            file,
            Path::new("."),
            true,
            &mut chain,
            &mut program,
            &mut errors,
        );
        if errors.is_empty() {
            Ok(program)
        } else {
            Err(errors)
        }
    }

    fn load_parsed(
        &mut self,
        file: FileId,
        dir: &Path,
        is_main: bool,
        chain: &mut ImportChain,
        program: &mut LoadedProgram,
        errors: &mut Vec<Diagnostic>,
    ) {
        let parsed: Program = match tl_syntax::parse(&self.sources, file) {
            Ok(p) => p,
            Err(diags) => {
                errors.extend(diags);
                return;
            }
        };
        for item in parsed.items {
            let span = item.span;
            match item.kind {
                ItemKind::Import(rel) => self.load_import(&rel, span, dir, chain, program, errors),
                ItemKind::Fn(decl) => {
                    self.fns
                        .insert(decl.name.clone(), Rc::new(Function { decl, owner: None }));
                }
                ItemKind::Struct(decl) => {
                    self.structs.insert(decl.name.clone(), Rc::new(decl));
                }
                ItemKind::Impl(decl) => {
                    let table = self.methods.entry(decl.type_name.clone()).or_default();
                    for method in decl.methods {
                        table.insert(
                            method.name.clone(),
                            Rc::new(Function {
                                decl: method,
                                owner: Some(decl.type_name.clone()),
                            }),
                        );
                    }
                }
                ItemKind::TensorDecl(decl) => program.items.push(TopItem::Tensor(decl, span)),
                ItemKind::Relation(decl) => {
                    self.relations.insert(decl.name.clone());
                    program.items.push(TopItem::Relation(decl, span));
                }
                ItemKind::Embedding(decl) => program.items.push(TopItem::Embedding(decl, span)),
                // A top-level rule runs in file order like a rule statement.
                ItemKind::Rule(rule) => program.items.push(TopItem::Stmt(Stmt {
                    kind: StmtKind::Rule(rule),
                    span,
                })),
                ItemKind::Main(body) => {
                    if is_main {
                        program.main = Some(body);
                    }
                }
                ItemKind::Test { name, body } => {
                    if is_main {
                        program.tests.push((name, body, span));
                    }
                }
                ItemKind::Bench { name, body } => {
                    if is_main {
                        program.benches.push((name, body, span));
                    }
                }
                ItemKind::Stmt(stmt) => program.items.push(TopItem::Stmt(stmt)),
            }
        }
    }

    fn load_import(
        &mut self,
        rel: &str,
        span: Span,
        dir: &Path,
        chain: &mut ImportChain,
        program: &mut LoadedProgram,
        errors: &mut Vec<Diagnostic>,
    ) {
        let path = dir.join(rel);
        let shown = path.display().to_string();
        let canonical = match path.canonicalize() {
            Ok(c) => c,
            Err(_) => {
                errors.push(Diagnostic::error(
                    format!("cannot import \"{rel}\": file {shown} not found"),
                    span,
                ));
                return;
            }
        };
        if let Some(pos) = chain.files.iter().position(|(p, _)| *p == canonical) {
            let mut names: Vec<&str> = chain.files[pos..].iter().map(|(_, n)| n.as_str()).collect();
            names.push(&chain.files[pos].1);
            errors.push(Diagnostic::error(
                format!("import cycle: {}", names.join(" -> ")),
                span,
            ));
            return;
        }
        // Each file is loaded once per interpreter; a second import is a no-op.
        if !self.loaded.insert(canonical.clone()) {
            return;
        }
        let text = match read_source(&path) {
            Ok(t) => t,
            Err(e) => {
                errors.push(Diagnostic::error(
                    format!("cannot import \"{rel}\": cannot read {shown}: {e}"),
                    span,
                ));
                return;
            }
        };
        let file = self.sources.add(shown.clone(), text);
        let sub_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let short = chain.short_name(&path);
        chain.files.push((canonical, short));
        self.load_parsed(file, &sub_dir, false, chain, program, errors);
        chain.files.pop();
    }
}

/// The text of a source file; a file that is not UTF-8 is an error naming the first bad byte.
fn read_source(path: &Path) -> Result<String, String> {
    let bytes = std::fs::read(path).map_err(|e| io_message(&e))?;
    String::from_utf8(bytes).map_err(|e| {
        format!(
            "the file is not valid UTF-8 (bad byte at offset {})",
            e.utf8_error().valid_up_to()
        )
    })
}

fn io_message(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => {
            // Drop the "(os error N)" suffix Rust adds.
            let s = e.to_string();
            match s.find(" (os error") {
                Some(i) => s[..i].to_string(),
                None => s,
            }
        }
    }
}
