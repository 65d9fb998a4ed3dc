//! The interpreter: its state (global scope, functions, structs, the source map, output, the
//! random generator) and the entry points the CLI calls. Evaluation itself lives in
//! `crate::eval`, file loading and imports in `crate::load`, `tl check` in `crate::check`.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tl_syntax::ast::{FnDecl, StructDecl};
use tl_syntax::{Diagnostic, SourceMap, Span};
use tl_tensor::Device;
use tl_tensor::random::TensorRng;

use crate::error::{Result, RuntimeError};
use crate::eval::Scope;
use crate::load::{LoadedProgram, TopItem};
use crate::value::Value;

/// Settings of one run, from the command line.
pub struct Options {
    /// Program arguments after `--`, returned by the builtin `args()`.
    pub args: Vec<String>,
    /// `--stats`: the CLI prints [`Interpreter::stats_report`] at exit.
    pub stats: bool,
    /// `--device`: where new tensors are created (only the CPU exists now).
    pub device: Device,
    /// `--explain`: print a derivation under every answer of a logic query.
    pub explain: bool,
    /// `--quiet`: `learn` blocks print no progress.
    pub quiet: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            args: Vec::new(),
            stats: false,
            device: Device::Cpu,
            explain: false,
            quiet: false,
        }
    }
}

/// What `tl run --test` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TestSummary {
    pub passed: usize,
    pub failed: usize,
}

/// A user-defined function or method.
pub struct Function {
    pub decl: FnDecl,
    /// The struct an `impl` method belongs to.
    pub owner: Option<String>,
}

impl Function {
    /// `f`, or `Point::new` for a method.
    pub fn display_name(&self) -> String {
        match &self.owner {
            Some(owner) => format!("{owner}::{}", self.decl.name),
            None => self.decl.name.clone(),
        }
    }

    /// True for a method whose first parameter is `self`.
    pub fn takes_self(&self) -> bool {
        self.decl.params.first().is_some_and(|p| p.name == "self")
    }
}

/// Counters printed by `--stats`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Counters {
    pub statements: u64,
    pub function_calls: u64,
    pub builtin_calls: u64,
    /// Tokens drawn by the sampling builtins, and the runtime counters at the first and the
    /// latest draw: between two draws lies exactly one decode step.
    pub tokens_sampled: u64,
    pub first_sample: Option<tl_tensor::stats::Stats>,
    pub last_sample: Option<tl_tensor::stats::Stats>,
}

/// A writer whose bytes can be read back: give a clone to [`Interpreter::set_output`] and
/// read what the program printed with [`SharedBuffer::contents`] (tests, embedding).
#[derive(Clone, Default)]
pub struct SharedBuffer(Arc<Mutex<Vec<u8>>>);

impl SharedBuffer {
    pub fn new() -> SharedBuffer {
        SharedBuffer::default()
    }

    /// Everything written so far, as text (invalid UTF-8 replaced).
    pub fn contents(&self) -> String {
        let bytes = self.0.lock().unwrap_or_else(|e| e.into_inner());
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

impl Write for SharedBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut bytes = self.0.lock().unwrap_or_else(|e| e.into_inner());
        bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The deepest nesting of user function calls before "recursion too deep".
pub(crate) const MAX_CALL_DEPTH: usize = 10_000;

/// When less than this much stack is left at a user function call, the evaluator continues on
/// a fresh stack segment of [`STACK_SEGMENT`] bytes (see `stacker::maybe_grow`).
pub(crate) const STACK_RED_ZONE: usize = 256 << 10;
pub(crate) const STACK_SEGMENT: usize = 8 << 20;

/// Runs programs. Holds the global scope, the declarations, the source map, output and the
/// random generator. State persists across calls (the REPL relies on it).
pub struct Interpreter {
    pub(crate) options: Options,
    pub(crate) sources: SourceMap,
    /// Top-level `let`s and tensor declarations of every loaded file.
    pub(crate) globals: Scope,
    pub(crate) fns: HashMap<String, Rc<Function>>,
    pub(crate) structs: HashMap<String, Rc<StructDecl>>,
    /// `impl` methods by type name, then method name.
    pub(crate) methods: HashMap<String, HashMap<String, Rc<Function>>>,
    /// Declared relation names (so that `Name(a, b)` statements are facts, not calls).
    pub(crate) relations: HashSet<String>,
    /// Tensors declared `learnable`, in declaration order (what `learn` updates).
    pub(crate) learnable: Vec<String>,
    /// The top-level equation sets run so far, in order: `learn` re-runs those that depend on
    /// a learnable tensor every epoch (`crate::eval::learn`).
    pub(crate) equation_sets: Vec<Rc<[tl_syntax::ast::Stmt]>>,
    /// Top-level equations run once as statements (`+=`, `*t`): their left side, the names
    /// they read and where they are; `learn` refuses to differentiate through them.
    pub(crate) statement_equations: Vec<crate::eval::StatementEquation>,
    /// Facts, rules and relations of the program's logic (`crate::eval::logic`).
    pub(crate) logic: tl_logic::Engine,
    /// Declared embedding spaces by name (`crate::eval::embedding`).
    pub(crate) embeddings: HashMap<String, crate::eval::embedding::EmbeddingSpace>,
    /// Relations declared with `embed TYPE`: the embedding space of each column, in order.
    pub(crate) embedded_relations: HashMap<String, Vec<String>>,
    /// Block scopes of the function now running (innermost last); empty at top level.
    pub(crate) scopes: Vec<Scope>,
    pub(crate) depth: usize,
    /// Span of the statement being executed (where "interrupted" points).
    pub(crate) current_span: Span,
    /// Canonical paths of the files already loaded (each is loaded once).
    pub(crate) loaded: HashSet<PathBuf>,
    pub(crate) counters: Counters,
    out: Box<dyn Write>,
    /// Set when stdout is closed (`tl run x.tl | head`): the program then ends quietly.
    output_closed: bool,
    rng: TensorRng,
    interrupt: Arc<AtomicBool>,
    start: Instant,
    repl_entries: usize,
}

impl Interpreter {
    pub fn new(options: Options) -> Interpreter {
        Interpreter {
            options,
            sources: SourceMap::new(),
            globals: Scope::default(),
            fns: HashMap::new(),
            structs: HashMap::new(),
            methods: HashMap::new(),
            relations: HashSet::new(),
            learnable: Vec::new(),
            equation_sets: Vec::new(),
            statement_equations: Vec::new(),
            logic: tl_logic::Engine::new(),
            embeddings: HashMap::new(),
            embedded_relations: HashMap::new(),
            scopes: Vec::new(),
            depth: 0,
            current_span: Span::default(),
            loaded: HashSet::new(),
            counters: Counters::default(),
            out: Box::new(std::io::stdout()),
            output_closed: false,
            rng: TensorRng::seed_from_u64(0),
            interrupt: Arc::new(AtomicBool::new(false)),
            start: Instant::now(),
            repl_entries: 0,
        }
    }

    /// Sends everything the program prints to `out` instead of stdout.
    pub fn set_output(&mut self, out: Box<dyn Write>) {
        self.out = out;
        self.output_closed = false;
    }

    /// The interpreter with its output captured in a [`SharedBuffer`].
    pub fn with_output(options: Options, out: Box<dyn Write>) -> Interpreter {
        let mut interp = Interpreter::new(options);
        interp.set_output(out);
        interp
    }

    pub fn sources(&self) -> &SourceMap {
        &self.sources
    }

    pub fn options(&self) -> &Options {
        &self.options
    }

    /// The random generator used by `rand`, `randn` and sampling; `seed(n)` resets it.
    pub fn rng(&mut self) -> &mut TensorRng {
        &mut self.rng
    }

    pub fn reseed(&mut self, seed: u64) {
        self.rng = TensorRng::seed_from_u64(seed);
    }

    /// Seconds since the interpreter was created (monotonic).
    pub fn elapsed_seconds(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    /// Set by a Ctrl-C handler; loops and calls check it and fail with "interrupted".
    pub fn interrupt_flag(&self) -> Arc<AtomicBool> {
        self.interrupt.clone()
    }

    pub(crate) fn check_interrupt(&self) -> Result<()> {
        if self.interrupt.load(Ordering::Relaxed) {
            self.interrupt.store(false, Ordering::Relaxed);
            return Err(RuntimeError::new("interrupted", self.current_span));
        }
        Ok(())
    }

    /// Writes program output (flushed at once, so output interleaves with stderr as written).
    /// When the reader has gone away (a closed pipe) the program ends quietly.
    pub fn write_output(&mut self, text: &str) -> Result<()> {
        if self.output_closed {
            return Err(RuntimeError::without_span("output closed"));
        }
        let result = self
            .out
            .write_all(text.as_bytes())
            .and_then(|_| self.out.flush());
        match result {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                self.output_closed = true;
                Err(RuntimeError::without_span("output closed"))
            }
            Err(e) => Err(RuntimeError::without_span(format!(
                "cannot write output: {e}"
            ))),
        }
    }

    /// Counts one builtin call (for `--stats`).
    pub(crate) fn count_builtin(&mut self) {
        self.counters.builtin_calls += 1;
    }

    /// Records that a sampling builtin drew one token (for the per-token `--stats` figures).
    pub(crate) fn note_token_sampled(&mut self) {
        let now = tl_tensor::stats::snapshot();
        self.counters.tokens_sampled += 1;
        if self.counters.first_sample.is_none() {
            self.counters.first_sample = Some(now);
        }
        self.counters.last_sample = Some(now);
    }

    /// The runtime counters accumulated between the first and the latest token drawn by a
    /// sampling builtin, with the number of steps between them (tokens drawn - 1): in a
    /// generation loop, the cost of that many decode steps. None before two tokens are drawn.
    pub fn decode_step_stats(&self) -> Option<(u64, tl_tensor::stats::Stats)> {
        let c = &self.counters;
        match (c.first_sample, c.last_sample) {
            (Some(first), Some(last)) if c.tokens_sampled > 1 => {
                Some((c.tokens_sampled - 1, last.since(&first)))
            }
            _ => None,
        }
    }

    /// What `--stats` prints: interpreter counters, then the tensor runtime's, then (when the
    /// program sampled tokens) the runtime's counts per decode step.
    pub fn stats_report(&self) -> String {
        let c = self.counters;
        let mut out = format!(
            "statements executed: {}\nfunction calls: {}\nbuiltin calls: {}\n",
            c.statements, c.function_calls, c.builtin_calls
        );
        let t = tl_tensor::stats::snapshot();
        out.push_str(&format!(
            "tensor ops dispatched: {}\ntensor allocations: {} ({} bytes)\nhost reads of tensor data: {}\n",
            t.ops_dispatched, t.allocations, t.bytes_allocated, t.host_reads
        ));
        if t.kernel_launches + t.syncs + t.device_allocations + t.host_to_device_bytes > 0 {
            out.push_str(&format!(
                "device syncs: {}\nkernel launches: {}\ndevice submissions: {}\ndevice allocations: {} ({} bytes)\nhost to device: {} bytes\ndevice to host: {} bytes\n",
                t.syncs,
                t.kernel_launches,
                t.submissions,
                t.device_allocations,
                t.device_bytes_allocated,
                t.host_to_device_bytes,
                t.device_to_host_bytes
            ));
        }
        if let Some((steps, d)) = self.decode_step_stats() {
            let steps = steps as f64;
            out.push_str(&format!(
                "tokens sampled: {}\nper generated token (between two samples): {:.1} host reads, {:.1} device syncs, {:.1} kernel launches, {:.1} device submissions, {:.1} tensor ops, {:.1} allocations ({:.0} bytes), {:.0} bytes host to device, {:.0} bytes device to host\n",
                c.tokens_sampled,
                d.host_reads as f64 / steps,
                d.syncs as f64 / steps,
                d.kernel_launches as f64 / steps,
                d.submissions as f64 / steps,
                d.ops_dispatched as f64 / steps,
                d.allocations as f64 / steps,
                d.bytes_allocated as f64 / steps,
                d.host_to_device_bytes as f64 / steps,
                d.device_to_host_bytes as f64 / steps
            ));
        }
        out
    }

    /// Parses `path`, loads its imports, then runs `main` (after the top-level declarations) or,
    /// without `main`, the top-level statements in order.
    pub fn run_file(&mut self, path: &Path) -> std::result::Result<(), Vec<Diagnostic>> {
        self.interrupt.store(false, Ordering::Relaxed);
        let program = self.load_program(path)?;
        {
            let interp = self;
            let result = interp.run_loaded(&program);
            interp.finish(result).map_err(|e| vec![e.to_diagnostic()])
        }
    }

    /// Parses `path`, loads its imports and resolves every name without running anything;
    /// all problems are reported.
    pub fn check_file(&mut self, path: &Path) -> std::result::Result<(), Vec<Diagnostic>> {
        let program = self.load_program(path)?;
        let diags = crate::check::check_program(self, &program);
        if diags.is_empty() { Ok(()) } else { Err(diags) }
    }

    /// Runs the top-level declarations, then every `test NAME { }` block of the file, printing
    /// `test NAME ... ok` or `test NAME ... FAILED: message (file:line:col)`.
    pub fn run_tests(&mut self, path: &Path) -> std::result::Result<TestSummary, Vec<Diagnostic>> {
        self.interrupt.store(false, Ordering::Relaxed);
        let program = self.load_program(path)?;
        {
            let interp = self;
            let setup = interp.run_top_items(&program).map(|_| ());
            interp.finish(setup).map_err(|e| vec![e.to_diagnostic()])?;
            let mut summary = TestSummary::default();
            for (name, body, _) in &program.tests {
                let outcome = interp.run_fresh_block(body);
                let line = match outcome {
                    Ok(()) => {
                        summary.passed += 1;
                        format!("test {name} ... ok\n")
                    }
                    Err(e) => {
                        if interp.output_closed {
                            return Ok(summary);
                        }
                        summary.failed += 1;
                        let place = e
                            .to_diagnostic()
                            .location(&interp.sources)
                            .map(|l| format!(" ({l})"))
                            .unwrap_or_default();
                        format!("test {name} ... FAILED: {}{place}\n", e.message)
                    }
                };
                if interp.write_output(&line).is_err() {
                    return Ok(summary);
                }
            }
            Ok(summary)
        }
    }

    /// Runs the top-level declarations, then times every `bench NAME { }` block: one warm-up
    /// run, then repeated runs for about one second (at least 3, at most 10 000), printing
    /// `bench NAME ... 1.234 ms/iter (N iterations)`.
    pub fn run_benches(&mut self, path: &Path) -> std::result::Result<(), Vec<Diagnostic>> {
        self.interrupt.store(false, Ordering::Relaxed);
        let program = self.load_program(path)?;
        {
            let interp = self;
            let result = interp.run_benches_loaded(&program);
            interp.finish(result).map_err(|e| vec![e.to_diagnostic()])
        }
    }

    fn run_benches_loaded(&mut self, program: &LoadedProgram) -> Result<()> {
        self.run_top_items(program)?;
        for (name, body, _) in &program.benches {
            self.run_fresh_block(body)?;
            let started = Instant::now();
            let mut iterations = 0u32;
            while iterations < 3 || (started.elapsed().as_secs_f64() < 1.0 && iterations < 10_000) {
                self.run_fresh_block(body)?;
                iterations += 1;
            }
            let per_iter = started.elapsed().as_secs_f64() / f64::from(iterations);
            let line = format!(
                "bench {name} ... {} ({iterations} iterations)\n",
                format_duration(per_iter)
            );
            self.write_output(&line)?;
        }
        Ok(())
    }

    /// One REPL entry: declarations are remembered, statements run in the global scope. A
    /// trailing expression's value is returned (not when it is `()`) for the REPL to echo.
    pub fn eval_repl(
        &mut self,
        input: &str,
    ) -> std::result::Result<Option<Value>, Vec<Diagnostic>> {
        self.interrupt.store(false, Ordering::Relaxed);
        self.repl_entries += 1;
        let name = format!("<repl:{}>", self.repl_entries);
        let program = self.load_repl_entry(&name, input)?;
        {
            let interp = self;
            let result = interp.run_repl_items(&program);
            // A failed entry must not leave the scopes of the statement it stopped in.
            interp.scopes.clear();
            interp.depth = 0;
            match result {
                Ok(v) => Ok(v),
                Err(e) if interp.output_closed => {
                    let _ = e;
                    Ok(None)
                }
                Err(e) => Err(vec![e.to_diagnostic()]),
            }
        }
    }

    fn run_repl_items(&mut self, program: &LoadedProgram) -> Result<Option<Value>> {
        let mut last = self.run_top_items(program)?;
        if let Some(main) = &program.main {
            self.run_fresh_block(main)?;
            last = None;
        }
        Ok(last.filter(|v| !matches!(v, Value::Unit)))
    }

    /// Turns the quiet end of a closed output into success.
    fn finish(&mut self, result: Result<()>) -> Result<()> {
        match result {
            Err(_) if self.output_closed => Ok(()),
            other => other,
        }
    }

    fn run_loaded(&mut self, program: &LoadedProgram) -> Result<()> {
        self.run_top_items(program)?;
        if let Some(main) = &program.main {
            self.run_fresh_block(main)?;
        }
        Ok(())
    }

    /// Runs the top-level items in order, each run of tensor equations as one set; the value
    /// of the last item when it is not an equation set (what the REPL echoes).
    pub(crate) fn run_top_items(&mut self, program: &LoadedProgram) -> Result<Option<Value>> {
        let mut last = None;
        let mut i = 0;
        while i < program.items.len() {
            let set = self.equation_run(&program.items[i..]);
            if !set.is_empty() {
                let stmts: Rc<[tl_syntax::ast::Stmt]> = program.items[i..i + set.len()]
                    .iter()
                    .filter_map(|item| match item {
                        TopItem::Stmt(stmt) => Some(stmt.clone()),
                        _ => None,
                    })
                    .collect();
                i += set.len();
                self.run_equation_set(&set)?;
                self.equation_sets.push(stmts);
                last = None;
                continue;
            }
            if let TopItem::Stmt(stmt) = &program.items[i] {
                self.note_statement_equation(stmt);
            }
            last = self.run_top_item(&program.items[i])?;
            i += 1;
        }
        Ok(last)
    }

    /// The tensor equations at the start of `items` up to the first item that is not one: a
    /// top-level equation set (`crate::eval::equation_set`).
    fn equation_run<'a>(&self, items: &'a [TopItem]) -> Vec<crate::eval::SetEquation<'a>> {
        let mut set = Vec::new();
        for item in items {
            match item {
                TopItem::Stmt(stmt) => match self.set_equation(stmt) {
                    Some(eq) => set.push(eq),
                    None => break,
                },
                _ => break,
            }
        }
        set
    }

    /// Runs one top-level item; returns the value of an expression statement.
    fn run_top_item(&mut self, item: &TopItem) -> Result<Option<Value>> {
        match item {
            TopItem::Stmt(stmt) => {
                let value = self.exec_top_stmt(stmt)?;
                Ok(if matches!(stmt.kind, tl_syntax::ast::StmtKind::Expr(_)) {
                    Some(value)
                } else {
                    None
                })
            }
            TopItem::Tensor(decl, span) => {
                self.exec_tensor_decl(decl, *span)?;
                Ok(None)
            }
            TopItem::Relation(decl, span) => {
                self.exec_relation_decl(decl, *span)?;
                Ok(None)
            }
            TopItem::Embedding(decl, span) => {
                self.exec_embedding_decl(decl, *span)?;
                Ok(None)
            }
            TopItem::Unsupported(what, span) => Err(RuntimeError::new(
                format!("not supported yet: {what}"),
                *span,
            )),
        }
    }

    /// Runs a block (main, a test, a bench) with no enclosing function scope.
    fn run_fresh_block(&mut self, body: &tl_syntax::ast::Block) -> Result<()> {
        let saved = std::mem::take(&mut self.scopes);
        let result = self.exec_body(body);
        self.scopes = saved;
        result.map(|_| ())
    }
}

fn format_duration(seconds: f64) -> String {
    if seconds >= 1.0 {
        format!("{seconds:.3} s/iter")
    } else if seconds >= 1e-3 {
        format!("{:.3} ms/iter", seconds * 1e3)
    } else if seconds >= 1e-6 {
        format!("{:.3} us/iter", seconds * 1e6)
    } else {
        format!("{:.1} ns/iter", seconds * 1e9)
    }
}
