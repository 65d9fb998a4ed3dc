//! `tl-cli` owns the `tl` command: `run`, `check`, `repl`, `help NAME`, `--version`.

fn main() {
    println!("tl {}", env!("CARGO_PKG_VERSION"));
}
