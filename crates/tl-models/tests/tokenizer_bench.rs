//! Encode and decode speed on about 100 KB of text, for the stories260K (SentencePiece) and
//! SmolLM2 (byte-level BPE) vocabularies and the stories260K tokenizer.json. Prints numbers only
//! (no timing is asserted); ignored by default:
//! `cargo test --release -p tl-models --test tokenizer_bench -- --ignored --nocapture`.

mod common;

use std::path::PathBuf;
use std::time::Instant;
use tl_models::{Model, Tokenizer};

/// ~100 KB of varied text: prose, numbers, code, accents, CJK and emoji.
fn sample_text() -> String {
    let paragraph = "Once upon a time, there was a little girl named Lily. She loved to play \
        outside in the sunshine with her dog, Max. One day, they found 3 shiny stones near the \
        river (about 12.5 meters away) and Lily said: \"Let's keep them!\" Café au lait, naïve \
        résumé; 中文字符 and 日本語; emoji 🦙🚀👍🏽.\n    fn main() { println!(\"{}\", 40 + 2); }\n\n";
    let mut text = String::new();
    while text.len() < 100_000 {
        text.push_str(paragraph);
    }
    text
}

fn bench(tok: &Tokenizer, label: &str) {
    let text = sample_text();
    let ids = tok.encode(&text, false).expect("encode");
    let reps = 5;
    let start = Instant::now();
    for _ in 0..reps {
        std::hint::black_box(tok.encode(&text, false).expect("encode"));
    }
    let enc = start.elapsed().as_secs_f64() / reps as f64;
    let start = Instant::now();
    for _ in 0..reps {
        std::hint::black_box(tok.decode(&ids).expect("decode"));
    }
    let dec = start.elapsed().as_secs_f64() / reps as f64;
    let start = Instant::now();
    let mut streamed = 0;
    let mut d = tok.stream_decoder();
    for &id in &ids {
        streamed += d.push(id).expect("push").len();
    }
    streamed += d.finish().expect("finish").len();
    let stream = start.elapsed().as_secs_f64();
    println!(
        "{label}: {} bytes -> {} tokens; encode {:.1} ms ({:.0} tokens/s, {:.2} MB/s); decode {:.2} ms ({:.0} tokens/s); stream {:.2} ms ({streamed} bytes)",
        text.len(),
        ids.len(),
        enc * 1e3,
        ids.len() as f64 / enc,
        text.len() as f64 / enc / 1e6,
        dec * 1e3,
        ids.len() as f64 / dec,
        stream * 1e3,
    );
}

#[test]
#[ignore]
fn encode_decode_speed() {
    let stories = Tokenizer::from_gguf(&Model::open(common::tinyllamas()).unwrap()).unwrap();
    bench(&stories, "stories260K SPM (GGUF)");
    let json =
        Tokenizer::from_file(common::fixture("tokenizer/stories260k/tokenizer.json")).unwrap();
    bench(&json, "stories260K (tokenizer.json, tokenizers crate)");
    let llama =
        Tokenizer::from_file(common::fixture("tokenizer/ggml-vocab-llama-spm.gguf")).unwrap();
    bench(&llama, "Llama 2 SPM 32000 (GGUF)");
    let smol = std::env::var_os("TL_SMOLLM2_GGUF").map(PathBuf::from);
    match smol.filter(|p| p.is_file()) {
        Some(p) => bench(
            &Tokenizer::from_gguf(&Model::open(p).unwrap()).unwrap(),
            "SmolLM2 BPE (GGUF)",
        ),
        None => println!("SmolLM2 skipped: set TL_SMOLLM2_GGUF"),
    }
}
