//! Ctrl-C handling. The first Ctrl-C sets the running interpreter's interrupt flag, which its
//! loops and calls check, so the program stops with an "interrupted" error at a clean point. A
//! second Ctrl-C before the program has stopped exits at once (for code stuck inside one long
//! tensor op, which does not look at the flag).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Once};

/// The flag of the interpreter now running (the REPL replaces it on `:reset`).
static CURRENT: Mutex<Option<Arc<AtomicBool>>> = Mutex::new(None);
/// Set by the handler; read to pick the exit code 130.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);
static INSTALL: Once = Once::new();

/// Exit code of a process stopped by SIGINT, by shell convention.
pub const EXIT_INTERRUPTED: u8 = 130;

/// Makes Ctrl-C set `flag` (installing the handler the first time).
pub fn watch(flag: Arc<AtomicBool>) {
    *CURRENT.lock().unwrap_or_else(|e| e.into_inner()) = Some(flag);
    INSTALL.call_once(|| {
        // If no handler can be installed (unusual platforms), Ctrl-C keeps its default action of
        // ending the process, which is still a way to stop a runaway program.
        let _ = ctrlc::set_handler(on_ctrl_c);
    });
}

fn on_ctrl_c() {
    if INTERRUPTED.swap(true, Ordering::SeqCst) {
        // Second Ctrl-C while the first is still being handled: stop now.
        eprintln!("\ninterrupted");
        std::process::exit(EXIT_INTERRUPTED as i32);
    }
    if let Some(flag) = CURRENT.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
        flag.store(true, Ordering::SeqCst);
    }
}

/// Whether Ctrl-C was pressed since the last [`clear`].
pub fn was_interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Forgets a handled Ctrl-C (the REPL does this after each entry), so the next one again asks
/// politely.
pub fn clear() {
    INTERRUPTED.store(false, Ordering::SeqCst);
    if let Some(flag) = CURRENT.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
        flag.store(false, Ordering::SeqCst);
    }
}
