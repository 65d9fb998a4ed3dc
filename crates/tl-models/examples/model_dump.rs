//! Prints a model file's metadata and tensor list: `cargo run -p tl-models --example model_dump -- FILE`.

use tl_models::Model;

fn main() {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: model_dump MODEL_FILE_OR_DIR");
        std::process::exit(2);
    };
    let model = match Model::open(&path) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    };
    println!("format: {:?}", model.format());
    if let Some(g) = model.gguf() {
        println!("gguf version {}, alignment {}", g.version(), g.alignment());
    }
    for (key, value) in model.metadata_entries() {
        println!("{key} ({}) = {value}", value.type_name());
    }
    for name in model.tensor_names() {
        match model.describe(name) {
            Ok(d) => println!("{name}: {} {:?}", d.kind.name(), d.shape),
            Err(e) => println!("{name}: {e}"),
        }
    }
    println!("{:#?}", model.config());
}
