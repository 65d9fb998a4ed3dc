//! Models from the Hugging Face hub: `tl chat hf:OWNER/REPO/FILE.gguf` downloads one file
//! from `$HF_ENDPOINT` (default https://huggingface.co) into the model cache once, with a
//! progress bar, and uses the cached copy afterwards.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// The prefix that names a hub file instead of a local path.
pub const HUB_PREFIX: &str = "hf:";

/// The local path of `hf:OWNER/REPO/FILE`, downloading it first if it is not cached.
pub fn hub_model(spec: &str) -> Result<PathBuf, String> {
    let rest = spec.strip_prefix(HUB_PREFIX).unwrap_or(spec);
    let parts: Vec<&str> = rest.splitn(3, '/').collect();
    let [owner, repo, file] = parts[..] else {
        return Err(format!(
            "`{spec}` is not a hub file: write hf:OWNER/REPO/FILE, e.g. hf:TheBloke/TinyLlama-1.1B-Chat-v1.0-GGUF/tinyllama-1.1b-chat-v1.0.Q4_0.gguf"
        ));
    };
    let safe = |s: &str| !s.is_empty() && s != "." && s != ".." && !s.contains('\\');
    if !safe(owner) || !safe(repo) || !file.split('/').all(safe) {
        return Err(format!(
            "`{spec}`: owner, repository and file must be plain names"
        ));
    }
    let target = crate::chat::cache_dir()?
        .join("models/hf")
        .join(owner)
        .join(repo)
        .join(file);
    if target.is_file() {
        return Ok(target);
    }
    let endpoint = std::env::var("HF_ENDPOINT")
        .ok()
        .filter(|e| !e.is_empty())
        .unwrap_or_else(|| "https://huggingface.co".into());
    let url = format!(
        "{}/{owner}/{repo}/resolve/main/{file}",
        endpoint.trim_end_matches('/')
    );
    download(&url, &target)?;
    Ok(target)
}

/// Downloads `url` to `target` through a `.part` file renamed at the end, so an interrupted
/// download never looks complete.
pub fn download(url: &str, target: &Path) -> Result<(), String> {
    let dir = target.parent().ok_or("the target has no folder")?;
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let mut response = ureq::get(url).call().map_err(|e| {
        format!(
            "cannot download {url}: {e}\n(offline? place the file at {} yourself, or pass a local path)",
            target.display()
        )
    })?;
    let total: Option<u64> = response
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let bar = match total {
        Some(n) => indicatif::ProgressBar::new(n),
        None => indicatif::ProgressBar::new_spinner(),
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
        .map_err(|e| e.to_string())?
        .progress_chars("=> "),
    );
    bar.set_message(format!(
        "downloading {}",
        target
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("model")
    ));
    let part = target.with_extension("part");
    let result = (|| {
        let mut out = std::fs::File::create(&part)
            .map_err(|e| format!("cannot create {}: {e}", part.display()))?;
        let mut reader = response.body_mut().as_reader();
        let mut buf = vec![0u8; 1 << 20];
        let mut got = 0u64;
        loop {
            let n = reader
                .read(&mut buf)
                .map_err(|e| format!("download of {url} broke off after {got} bytes: {e}"))?;
            if n == 0 {
                break;
            }
            out.write_all(&buf[..n])
                .map_err(|e| format!("cannot write {}: {e}", part.display()))?;
            got += n as u64;
            bar.set_position(got);
        }
        if let Some(n) = total
            && got != n
        {
            return Err(format!("download of {url} ended at {got} of {n} bytes"));
        }
        out.sync_all()
            .map_err(|e| format!("cannot write {}: {e}", part.display()))?;
        std::fs::rename(&part, target).map_err(|e| {
            format!(
                "cannot move {} to {}: {e}",
                part.display(),
                target.display()
            )
        })
    })();
    bar.finish_and_clear();
    if result.is_err() {
        let _ = std::fs::remove_file(&part);
    } else {
        eprintln!("tl chat: saved {}", target.display());
    }
    result
}
