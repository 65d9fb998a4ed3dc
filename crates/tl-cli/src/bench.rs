//! `tl bench llama`: the decode benchmark of `examples/llama/bench.tl` (compiled into the
//! binary, with the `chat.tl` decoder it imports) run by the interpreter on one model, reported
//! with the runtime's counters per decode step and the weight bandwidth decode reaches, beside
//! the device's own copy bandwidth. Without `--model` it writes a random-weight Llama of the
//! chosen shape and type into the cache once (`tl_models::synthetic`), so nothing but `tl` is
//! needed.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::ValueEnum;
use tl_interp::Interpreter;
use tl_interp::interp::{Options, SharedBuffer};
use tl_models::synthetic::{LlamaShape, random_llama_file_size, write_random_llama};
use tl_models::{GgmlType, Model};

use crate::DeviceArg;

/// The benchmark program, as shipped in the repository.
const BENCH_PROGRAM: &str = include_str!("../../../examples/llama/bench.tl");
/// Seed of the generated weights (make_tinyllama_shaped.py's too).
const WEIGHT_SEED: u64 = 1100;
/// Bumped when the generated file's contents change, so that stale cache files are not used.
const GENERATOR_VERSION: u32 = 1;
/// Timed copies for the copy bandwidth (the best counts).
const COPY_REPEATS: usize = 5;

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BenchDtype {
    #[value(name = "f16")]
    F16,
    #[value(name = "q8_0")]
    Q8_0,
    #[value(name = "q4_0")]
    Q4_0,
}

impl BenchDtype {
    fn kind(self) -> GgmlType {
        match self {
            BenchDtype::F16 => GgmlType::F16,
            BenchDtype::Q8_0 => GgmlType::Q8_0,
            BenchDtype::Q4_0 => GgmlType::Q4_0,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BenchShape {
    /// TinyLlama-1.1B: 22 layers, d_model 2048, 32 heads, 4 KV heads, FFN 5632, vocab 32000
    Tinyllama,
    /// 2 layers, d_model 64, 4 heads, 2 KV heads, FFN 128, vocab 512 (for quick checks)
    Tiny,
}

impl BenchShape {
    fn name(self) -> &'static str {
        match self {
            BenchShape::Tinyllama => "tinyllama",
            BenchShape::Tiny => "tiny",
        }
    }

    fn shape(self) -> LlamaShape {
        match self {
            BenchShape::Tinyllama => LlamaShape::tinyllama_1_1b(),
            BenchShape::Tiny => LlamaShape::tiny(),
        }
    }
}

/// What `tl bench llama` was asked to do (its command-line arguments).
#[derive(clap::Args)]
pub struct LlamaBench {
    /// A model file to use instead of the generated random-weight one
    #[arg(long, value_name = "PATH")]
    pub model: Option<PathBuf>,
    /// Where tensors live and ops run
    #[arg(long, value_enum, default_value_t = DeviceArg::Cpu)]
    pub device: DeviceArg,
    /// Element type of the generated model's matrices (norms stay f32) [default: f16]
    #[arg(long, value_enum, conflicts_with = "model")]
    pub dtype: Option<BenchDtype>,
    /// Shape of the generated model
    #[arg(long, value_enum, default_value_t = BenchShape::Tinyllama, conflicts_with = "model")]
    pub shape: BenchShape,
    /// Prompt tokens processed in one prefill pass
    #[arg(long, value_name = "N", default_value_t = 512, value_parser = crate::at_least_one)]
    pub prompt: usize,
    /// Tokens generated one at a time after the prefill
    #[arg(long = "gen", value_name = "N", default_value_t = 256, value_parser = crate::at_least_one)]
    pub gen_tokens: usize,
    /// Size of the tensor copied to measure the copy bandwidth, in MiB
    #[arg(long, value_name = "MIB", default_value_t = 1024, value_parser = crate::at_least_one)]
    pub copy_mib: usize,
    /// Print one JSON object instead of the table
    #[arg(long)]
    pub json: bool,
    /// CUDA: kernel launches grouped per submission (as for `tl run`)
    #[arg(long, value_name = "N")]
    pub compute_per_buffer: Option<usize>,
}

/// The figures of one run.
struct Measured {
    prefill_s: f64,
    decode_s: f64,
    steps: u64,
    step_stats: tl_tensor::stats::Stats,
    copy_bytes_per_s: f64,
    /// On the CPU, the read bandwidth of all worker threads: decode reads its weights that way,
    /// and on several cores it exceeds a one-thread copy.
    read_bytes_per_s: Option<f64>,
}

pub fn run(b: LlamaBench) -> ExitCode {
    match bench(&b) {
        Ok(()) => ExitCode::SUCCESS,
        Err(BenchError::Message(m)) => {
            eprintln!("error: {m}");
            ExitCode::from(1)
        }
        Err(BenchError::Program(code)) => code,
    }
}

enum BenchError {
    Message(String),
    /// The benchmark program failed; its diagnostics are printed.
    Program(ExitCode),
}

impl From<String> for BenchError {
    fn from(m: String) -> Self {
        BenchError::Message(m)
    }
}

fn bench(b: &LlamaBench) -> Result<(), BenchError> {
    let device = crate::start_device(b.device, b.compute_per_buffer)?;
    let (path, description) = match &b.model {
        Some(p) => (p.clone(), p.display().to_string()),
        None => {
            let kind = b.dtype.unwrap_or(BenchDtype::F16).kind();
            let path = generated_model(b.shape, kind)?;
            let what = match b.shape {
                BenchShape::Tinyllama => "TinyLlama-1.1B-shaped",
                BenchShape::Tiny => "tiny Llama-shaped",
            };
            (path, format!("{what} random weights"))
        }
    };
    let model = Model::open(&path).map_err(|e| format!("cannot read the model: {e}"))?;
    let weights = WeightBytes::of(&model)?;
    drop(model);

    let copy_bytes_per_s =
        tl_tensor::device::copy_bandwidth(device, b.copy_mib << 20, COPY_REPEATS)
            .map_err(|e| format!("measuring the copy bandwidth on {device}: {e}"))?;
    let read_bytes_per_s = (device == tl_tensor::Device::Cpu)
        .then(|| tl_tensor::device::host_read_bandwidth(b.copy_mib << 20, COPY_REPEATS, true));

    let program = crate::chat::chat_program_path()
        .and_then(|_| crate::chat::cached_program("bench.tl", BENCH_PROGRAM))?;
    let args = vec![
        path.display().to_string(),
        "--prompt".into(),
        b.prompt.to_string(),
        "--gen".into(),
        b.gen_tokens.to_string(),
        "--record".into(),
    ];
    let output = SharedBuffer::new();
    let options = Options {
        args,
        stats: false,
        device,
        explain: false,
        quiet: true,
    };
    let mut interp = Interpreter::with_output(options, Box::new(output.clone()));
    crate::interrupt::watch(interp.interrupt_flag());
    if let Err(diags) = interp.run_file(&program) {
        eprint!("{}", output.contents());
        crate::report(&interp, &diags);
        return Err(BenchError::Program(crate::exit_code_for_failure()));
    }
    let printed = output.contents();
    let (prefill_s, decode_s) = parse_record(&printed, b.prompt, b.gen_tokens)?;
    let (steps, step_stats) = interp.decode_step_stats().ok_or_else(|| {
        format!("the benchmark program sampled fewer than two tokens; it printed:\n{printed}")
    })?;
    let m = Measured {
        prefill_s,
        decode_s,
        steps,
        step_stats,
        copy_bytes_per_s,
        read_bytes_per_s,
    };
    let report = Report {
        bench: b,
        device,
        path: &path,
        description: &description,
        weights: &weights,
        m: &m,
    };
    if b.json {
        println!("{}", report.json());
    } else {
        print!("{}", report.table());
    }
    Ok(())
}

/// The cached random model of `shape` in `kind`, written first if it is not there.
fn generated_model(shape: BenchShape, kind: GgmlType) -> Result<PathBuf, String> {
    let dir = crate::chat::cache_dir()?.join("bench");
    let name = format!(
        "llama-{}-{}-seed{WEIGHT_SEED}-v{GENERATOR_VERSION}.gguf",
        shape.name(),
        kind.name().to_lowercase()
    );
    let target = dir.join(name);
    if target.is_file() {
        return Ok(target);
    }
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let dims = shape.shape();
    let size = random_llama_file_size(&dims, kind).map_err(|e| e.to_string())?;
    eprintln!(
        "tl bench: writing a {} random-weight {} model ({}, once) to {}",
        shape.name(),
        kind.name(),
        human_bytes(size),
        target.display()
    );
    let bar = indicatif::ProgressBar::new(size);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "writing [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
        .map_err(|e| e.to_string())?
        .progress_chars("=> "),
    );
    // Written under a temporary name and renamed, so an interrupted run leaves no
    // complete-looking file.
    let part = dir.join(format!(
        ".{}.part{}",
        target.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id()
    ));
    let written = write_random_llama(&part, &dims, kind, WEIGHT_SEED, &mut |done, _| {
        bar.set_position(done)
    });
    bar.finish_and_clear();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&part);
        return Err(format!("cannot write the benchmark model: {e}"));
    }
    std::fs::rename(&part, &target).map_err(|e| {
        format!(
            "cannot move {} to {}: {e}",
            part.display(),
            target.display()
        )
    })?;
    Ok(target)
}

/// The model's stored bytes, and those decode reads per token.
struct WeightBytes {
    total: u64,
    per_token: u64,
    /// The type of the attention query matrix of layer 0 (the file's main type).
    main_kind: Option<GgmlType>,
}

impl WeightBytes {
    /// Every tensor is read once per token except the token embedding, of which one row is
    /// read (when the output projection is a separate matrix; a tied one is read whole).
    fn of(model: &Model) -> Result<WeightBytes, String> {
        let mut total = 0u64;
        let mut embedding = 0u64;
        for name in model.tensor_names() {
            let d = model.describe(name).map_err(|e| e.to_string())?;
            let n = d
                .kind
                .bytes_for(d.shape.iter().product())
                .map_err(|e| e.0)? as u64;
            total += n;
            if name == "token_embd.weight" {
                embedding = n;
            }
        }
        let tied = model.describe("output.weight").is_err();
        let per_token = if tied { total } else { total - embedding };
        let main_kind = model.describe("blk.0.attn_q.weight").ok().map(|d| d.kind);
        Ok(WeightBytes {
            total,
            per_token,
            main_kind,
        })
    }
}

/// The prefill and decode seconds from bench.tl's `bench-record` line.
fn parse_record(printed: &str, prompt: usize, gen_tokens: usize) -> Result<(f64, f64), String> {
    let line = printed
        .lines()
        .find(|l| l.starts_with("bench-record "))
        .ok_or_else(|| format!("the benchmark program printed no bench-record line:\n{printed}"))?;
    let words: Vec<&str> = line.split_whitespace().collect();
    let field = |key: &str| -> Result<f64, String> {
        words
            .iter()
            .position(|w| *w == key)
            .and_then(|i| words.get(i + 1))
            .and_then(|v| v.parse::<f64>().ok())
            .ok_or_else(|| format!("no number after `{key}` in `{line}`"))
    };
    if field("prompt")? != prompt as f64 || field("gen")? != gen_tokens as f64 {
        return Err(format!(
            "the benchmark program ran other sizes than asked: `{line}`"
        ));
    }
    Ok((field("prefill_s")?, field("decode_s")?))
}

struct Report<'a> {
    bench: &'a LlamaBench,
    device: tl_tensor::Device,
    path: &'a Path,
    description: &'a str,
    weights: &'a WeightBytes,
    m: &'a Measured,
}

impl Report<'_> {
    fn dtype_name(&self) -> String {
        self.weights
            .main_kind
            .map(|k| k.name().to_lowercase())
            .unwrap_or_else(|| "?".into())
    }

    fn per_step(&self, n: u64) -> f64 {
        n as f64 / self.m.steps as f64
    }

    fn decode_tok_s(&self) -> f64 {
        self.bench.gen_tokens as f64 / self.m.decode_s
    }

    fn achieved_bytes_per_s(&self) -> f64 {
        self.weights.per_token as f64 * self.decode_tok_s()
    }

    fn percent_of_copy(&self) -> f64 {
        100.0 * self.achieved_bytes_per_s() / self.m.copy_bytes_per_s
    }

    fn percent_of_read(&self) -> Option<f64> {
        self.m
            .read_bytes_per_s
            .map(|r| 100.0 * self.achieved_bytes_per_s() / r)
    }

    fn table(&self) -> String {
        let s = &self.m.step_stats;
        let rows: Vec<(String, String)> = vec![
            (
                "model".into(),
                format!(
                    "{} ({}, {})",
                    self.description,
                    self.dtype_name(),
                    human_bytes(self.weights.total)
                ),
            ),
            ("file".into(), self.path.display().to_string()),
            ("device".into(), self.device.to_string()),
            (
                format!("prefill ({} tokens)", self.bench.prompt),
                format!(
                    "{:.2} ms ({:.1} tok/s)",
                    self.m.prefill_s * 1e3,
                    self.bench.prompt as f64 / self.m.prefill_s
                ),
            ),
            (
                format!("decode ({} tokens)", self.bench.gen_tokens),
                format!(
                    "{:.2} tok/s ({:.3} ms/token)",
                    self.decode_tok_s(),
                    1e3 * self.m.decode_s / self.bench.gen_tokens as f64
                ),
            ),
            (
                "syncs/token".into(),
                format!("{:.2}", self.per_step(s.syncs)),
            ),
            (
                "launches/token".into(),
                format!("{:.1}", self.per_step(s.kernel_launches)),
            ),
            (
                "submissions/token".into(),
                format!("{:.1}", self.per_step(s.submissions)),
            ),
            (
                "tensor ops/token".into(),
                format!("{:.1}", self.per_step(s.ops_dispatched)),
            ),
            (
                "weights read/token".into(),
                human_bytes(self.weights.per_token),
            ),
            (
                "achieved bandwidth".into(),
                format!("{:.1} GB/s", self.achieved_bytes_per_s() / 1e9),
            ),
            (
                "copy bandwidth".into(),
                format!(
                    "{:.1} GB/s (read + write of {} MiB, best of {COPY_REPEATS})",
                    self.m.copy_bytes_per_s / 1e9,
                    self.bench.copy_mib
                ),
            ),
            (
                "of copy bandwidth".into(),
                format!("{:.1} %", self.percent_of_copy()),
            ),
        ];
        let mut rows = rows;
        if let (Some(r), Some(p)) = (self.m.read_bytes_per_s, self.percent_of_read()) {
            rows.push((
                "read bandwidth".into(),
                format!(
                    "{:.1} GB/s (sum of {} MiB on every worker thread, best of {COPY_REPEATS})",
                    r / 1e9,
                    self.bench.copy_mib
                ),
            ));
            rows.push(("of read bandwidth".into(), format!("{p:.1} %")));
        }
        let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        let mut out = String::new();
        for (k, v) in &rows {
            out.push_str(&format!("{k:<width$}  {v}\n"));
        }
        out.push_str(&format!(
            "summary: {} {}: prefill {} tokens in {:.2} ms, decode {:.2} tok/s, {:.2} syncs/token, {:.1} launches/token, {:.1} GB/s = {:.1}% of copy bandwidth{}\n",
            self.device,
            self.dtype_name(),
            self.bench.prompt,
            self.m.prefill_s * 1e3,
            self.decode_tok_s(),
            self.per_step(s.syncs),
            self.per_step(s.kernel_launches),
            self.achieved_bytes_per_s() / 1e9,
            self.percent_of_copy(),
            self.percent_of_read()
                .map(|p| format!(", {p:.1}% of read bandwidth"))
                .unwrap_or_default()
        ));
        out
    }

    fn json(&self) -> String {
        let s = &self.m.step_stats;
        serde_json::json!({
            "model": self.path.display().to_string(),
            "description": self.description,
            "dtype": self.dtype_name(),
            "device": self.device.to_string(),
            "weight_bytes": self.weights.total,
            "weight_bytes_per_token": self.weights.per_token,
            "prompt_tokens": self.bench.prompt,
            "prefill_ms": self.m.prefill_s * 1e3,
            "gen_tokens": self.bench.gen_tokens,
            "decode_tok_s": self.decode_tok_s(),
            "syncs_per_token": self.per_step(s.syncs),
            "launches_per_token": self.per_step(s.kernel_launches),
            "submissions_per_token": self.per_step(s.submissions),
            "tensor_ops_per_token": self.per_step(s.ops_dispatched),
            "achieved_gb_s": self.achieved_bytes_per_s() / 1e9,
            "copy_gb_s": self.m.copy_bytes_per_s / 1e9,
            "percent_of_copy": self.percent_of_copy(),
            "read_gb_s": self.m.read_bytes_per_s.map(|r| r / 1e9),
            "percent_of_read": self.percent_of_read(),
        })
        .to_string()
    }
}

/// Bytes in GB (3 decimals) from 1 GB up, else in MB.
fn human_bytes(n: u64) -> String {
    if n >= 1_000_000_000 {
        format!("{:.3} GB", n as f64 / 1e9)
    } else {
        format!("{:.3} MB", n as f64 / 1e6)
    }
}
