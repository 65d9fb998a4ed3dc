//! `tl repl`: an interactive session. Entries are statements or expressions; an entry whose
//! brackets or block are still open continues on the next line (`...` prompt). The value of a
//! trailing expression is printed. Errors are printed and the session goes on with its state.
//!
//! When stdin is not a terminal (input piped in), lines are read plainly with no prompts, so
//! `echo 'sum(ones([3]))' | tl repl` prints just `3.0`-style results; the exit code is then 1
//! if any entry failed.

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::process::ExitCode;

use rustyline::DefaultEditor;
use rustyline::error::ReadlineError;
use tl_interp::Interpreter;
use tl_interp::interp::Options;

use crate::interrupt;

const PROMPT: &str = "tl> ";
const CONTINUATION: &str = "... ";

const REPL_HELP: &str = "\
Type statements or expressions; the value of an expression is printed.
Blocks and brackets left open continue on the next line (`...` prompt); an empty line
ends an entry that cannot be completed.

  :help          this text
  :reset         forget every binding, function and import (a fresh interpreter)
  :quit          leave (Ctrl-D does too)

Ctrl-C stops a running entry (a second Ctrl-C quits) or clears the line being typed.
`tl help` lists the builtins and `tl help NAME` documents one, e.g. `tl help softmax`.
";

/// What one line of input did.
#[derive(Debug, PartialEq, Eq)]
enum Step {
    /// The entry is incomplete: read another line.
    More,
    /// An entry (or command) finished; `ok` is false if it failed.
    Done {
        ok: bool,
    },
    Quit,
}

/// The interpreter and the entry being typed.
struct Session {
    interp: Interpreter,
    buffer: String,
}

impl Session {
    fn new() -> Session {
        let interp = Interpreter::new(Options::default());
        interrupt::watch(interp.interrupt_flag());
        Session {
            interp,
            buffer: String::new(),
        }
    }

    fn prompt(&self) -> &'static str {
        if self.buffer.is_empty() {
            PROMPT
        } else {
            CONTINUATION
        }
    }

    /// Takes one line. Commands (`:help`) are recognised only at the start of an entry.
    fn feed(&mut self, line: &str) -> Step {
        if self.buffer.is_empty() {
            let trimmed = line.trim();
            if trimmed.is_empty() {
                return Step::Done { ok: true };
            }
            if let Some(command) = trimmed.strip_prefix(':') {
                return self.command(command.trim());
            }
        }
        // An empty line ends an entry still open, so a stray bracket cannot trap the user.
        let force = !self.buffer.is_empty() && line.trim().is_empty();
        self.buffer.push_str(line);
        self.buffer.push('\n');
        if !force && tl_syntax::needs_more_input(&self.buffer) {
            return Step::More;
        }
        let entry = std::mem::take(&mut self.buffer);
        Step::Done {
            ok: self.evaluate(&entry),
        }
    }

    /// At end of input: evaluates what is left (its errors say what is missing).
    fn finish(&mut self) -> bool {
        if self.buffer.trim().is_empty() {
            return true;
        }
        let entry = std::mem::take(&mut self.buffer);
        self.evaluate(&entry)
    }

    fn evaluate(&mut self, entry: &str) -> bool {
        let result = self.interp.eval_repl(entry);
        // A Ctrl-C during this entry has done its job; the next one again stops politely.
        interrupt::clear();
        match result {
            Ok(Some(value)) => {
                println!("{}", tl_interp::format_value(&value));
                true
            }
            Ok(None) => true,
            Err(diags) => {
                crate::report(&self.interp, &diags);
                false
            }
        }
    }

    fn command(&mut self, command: &str) -> Step {
        match command {
            "help" | "h" | "?" => {
                print!("{REPL_HELP}");
                Step::Done { ok: true }
            }
            "quit" | "q" | "exit" => Step::Quit,
            "reset" => {
                *self = Session::new();
                println!("(state cleared)");
                Step::Done { ok: true }
            }
            other => {
                eprintln!("error: unknown REPL command `:{other}` (try :help)");
                Step::Done { ok: false }
            }
        }
    }

    /// Drops a half-typed entry (Ctrl-C at the prompt).
    fn discard(&mut self) {
        self.buffer.clear();
    }
}

pub fn run() -> ExitCode {
    if std::io::stdin().is_terminal() {
        interactive()
    } else {
        piped()
    }
}

/// Input from a pipe or file: no prompts, no history.
fn piped() -> ExitCode {
    let mut session = Session::new();
    let mut all_ok = true;
    for line in std::io::stdin().lock().lines() {
        let line = match line {
            Ok(l) => l,
            Err(e) => {
                eprintln!("error: cannot read input: {e}");
                return ExitCode::from(1);
            }
        };
        match session.feed(&line) {
            Step::More => {}
            Step::Done { ok } => all_ok &= ok,
            Step::Quit => return exit_code(all_ok),
        }
    }
    all_ok &= session.finish();
    exit_code(all_ok)
}

fn exit_code(ok: bool) -> ExitCode {
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn interactive() -> ExitCode {
    let mut editor = match DefaultEditor::new() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: cannot start line editing: {e}");
            return ExitCode::from(1);
        }
    };
    let history = history_path();
    if let Some(path) = &history {
        // A missing or unreadable history is normal on first use.
        let _ = editor.load_history(path);
    }
    println!(
        "TensorLogic {} REPL. :help for help, :quit or Ctrl-D to leave.",
        env!("CARGO_PKG_VERSION")
    );
    let mut session = Session::new();
    loop {
        match editor.readline(session.prompt()) {
            Ok(line) => {
                if !line.trim().is_empty() {
                    let _ = editor.add_history_entry(line.as_str());
                }
                if session.feed(&line) == Step::Quit {
                    break;
                }
            }
            Err(ReadlineError::Interrupted) => {
                session.discard();
                println!("(Ctrl-C: entry cleared; :quit or Ctrl-D to leave)");
            }
            Err(ReadlineError::Eof) => {
                session.finish();
                break;
            }
            Err(e) => {
                eprintln!("error: cannot read input: {e}");
                break;
            }
        }
    }
    if let Some(path) = &history {
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        // Not writable (read-only home, sandbox): the session simply is not remembered.
        let _ = editor.save_history(path);
    }
    ExitCode::SUCCESS
}

/// `$HOME/.local/share/tl/history`, if there is a home.
fn history_path() -> Option<PathBuf> {
    let home = std::env::var_os("HOME")?;
    Some(PathBuf::from(home).join(".local/share/tl/history"))
}
