//! Models and LLM state: `load_model get_tensor model_metadata tensor_names kv_cache attend`,
//! the `KVCache` methods and the earlier interpreter's `KVCache::new_f16(layers)` constructors.

use std::rc::Rc;

use tl_tensor::{DType, Tensor};

use super::args::at_call;
use super::{Builtin, CallArgs};
use crate::error::Result;
use crate::interp::Interpreter;
use crate::objects::kv_cache::KvCache;
use crate::objects::model::{ModelData, ModelObject, meta_to_value};
use crate::value::Value;

pub static BUILTINS: &[Builtin] = &[
    Builtin {
        name: "load_model",
        signature: "load_model(path: string) -> model",
        category: "models",
        doc: "Opens a model file, recognised by its content: a GGUF file (versions 1 to 3), a \
              `.safetensors` file, or a directory holding `model.safetensors` (or shards named \
              by `model.safetensors.index.json`) with its `config.json`. The file is memory-mapped \
              and each tensor is read when first named. Tensors go by their GGUF names: \
              `model.token_embd.weight`, `model.blk[i].attn_q.weight`, `model.output_norm.weight` \
              (Hugging Face Llama names are mapped, and q/k rows are reordered to GGUF's \
              adjacent-pairs RoPE layout, so `rope(x, pos)` serves both). `model.config` is a \
              record: architecture, n_layers, d_model, n_heads, n_kv_heads, head_dim, ffn_dim, \
              vocab_size, context_length, rope_theta, rms_norm_eps, tied_output (true when the \
              file has no `output.weight`), format. `len(model.blk)` is the layer count; \
              `model.path` the file; `model.weight_bytes` the stored bytes of every tensor. Errors \
              name the file and what is wrong (missing, truncated, wrong magic, unknown tensor \
              type, a shape that disagrees with the data).",
        func: load_model,
    },
    Builtin {
        name: "get_tensor",
        signature: "get_tensor(model: model, name: string) -> tensor",
        category: "models",
        doc: "The tensor called `name` (a GGUF name such as \"blk.0.attn_q.weight\") of a model \
              from `load_model`; the same as `model.blk[0].attn_q.weight`. Float tensors keep \
              their stored dtype (f32, f16, bf16); quantized ones (q8_0, q4_0, ...) stay packed \
              and are used as they are by `linear` and `embedding` (cast with `x as float` is \
              not how to expand them: use `cast(x, \"float32\")`). Errors: a name the model does \
              not have (the closest name is suggested).",
        func: get_tensor,
    },
    Builtin {
        name: "tensor_names",
        signature: "tensor_names(model: model) -> list",
        category: "models",
        doc: "The names of every tensor in the model (GGUF names, e.g. \"blk.0.attn_q.weight\"), sorted, as a list of strings.",
        func: tensor_names,
    },
    Builtin {
        name: "model_metadata",
        signature: "model_metadata(model: model, key: string) -> value",
        category: "models",
        doc: "One metadata value of the model under its GGUF key (\"llama.block_count\", \
              \"tokenizer.ggml.model\", ...; safetensors `config.json` entries are offered under \
              the same keys). Numbers become ints or floats, arrays lists. Errors: a key the \
              file does not have.",
        func: model_metadata,
    },
    Builtin {
        name: "kv_cache",
        signature: "kv_cache(layers: int, max_len: int, kv_heads: int, head_dim: int, dtype: string = \"float32\") -> KVCache",
        category: "LLM state",
        doc: "A preallocated key/value cache for `layers` decoder layers: per layer, keys and \
              values of shape [max_len, kv_heads, head_dim] in `dtype` (fifth argument or \
              `dtype:`), on the program's device. Fill it with `cache.append(layer, k, v, pos)` \
              and read it with `attend(q, cache, layer, pos)`, `cache.keys(layer, len)` or \
              `cache.values(layer, len)`; `cache.len()` is the number of positions held, \
              `cache.clear()` forgets them. Writing past max_len is an error. See also \
              `KVCache::new_f16(layers)` for a cache that grows.",
        func: kv_cache,
    },
    Builtin {
        name: "KVCache::new",
        signature: "KVCache::new(layers: int) -> KVCache",
        category: "LLM state",
        doc: "A float32 KV cache for `layers` layers that sizes its rows from the first append \
              and grows (doubling) when full, as the earlier interpreter's caches did. Prefer \
              `kv_cache(...)`, which allocates once.",
        func: kv_new_f32,
    },
    Builtin {
        name: "KVCache::new_f32",
        signature: "KVCache::new_f32(layers: int) -> KVCache",
        category: "LLM state",
        doc: "The same as `KVCache::new(layers)`: a growable float32 KV cache.",
        func: kv_new_f32,
    },
    Builtin {
        name: "KVCache::new_f16",
        signature: "KVCache::new_f16(layers: int) -> KVCache",
        category: "LLM state",
        doc: "A growable KV cache that stores keys and values as float16 (converted on append).",
        func: kv_new_f16,
    },
    Builtin {
        name: "KVCache.append",
        signature: "cache.append(layer: int, k: tensor, v: tensor, pos: int = cache.len(layer), rope: float = none, neox: bool = false)",
        category: "LLM state",
        doc: "Writes keys `k` and values `v` (each [n, kv_heads, head_dim], or any [n, ...] \
              rows of the shape the cache holds) of `layer` at positions pos..pos+n, in place, \
              converting to the cache's dtype. `pos` (a host int) defaults to the number of \
              positions the layer holds; a smaller pos rewinds (the layer then holds pos+n). \
              `rope: theta` rotates the keys on the way in, as `rope(k, pos, theta)` would \
              (`neox: true` for the rotate-half pairing): one launch on CUDA instead of a rope \
              and two copies. Errors: a layer out of range, k and v of different shapes, rows \
              of the wrong shape (both named), a pos past the end (a gap), a full \
              preallocated cache, an odd head_dim or a theta that is not positive with `rope:`.",
        func: kv_append,
    },
    Builtin {
        name: "KVCache.set",
        signature: "cache.set(layer: int, k: tensor, v: tensor)",
        category: "LLM state",
        doc: "Replaces what `layer` holds by `k` and `v` ([n, ...] rows): the same as \
              `cache.append(layer, k, v, 0)`.",
        func: kv_set,
    },
    Builtin {
        name: "KVCache.keys",
        signature: "cache.keys(layer: int, len: int = cache.len(layer)) -> tensor",
        category: "LLM state",
        doc: "The first `len` positions of `layer`'s keys, [len, kv_heads, head_dim], as a view \
              of the cache (no copy). Errors: more positions than the layer holds.",
        func: kv_keys,
    },
    Builtin {
        name: "KVCache.values",
        signature: "cache.values(layer: int, len: int = cache.len(layer)) -> tensor",
        category: "LLM state",
        doc: "The first `len` positions of `layer`'s values, like `cache.keys`.",
        func: kv_values,
    },
    Builtin {
        name: "KVCache.get_k",
        signature: "cache.get_k(layer: int) -> tensor",
        category: "LLM state",
        doc: "Every position `layer` holds, of its keys: the same as `cache.keys(layer)` (a view, no copy).",
        func: kv_keys,
    },
    Builtin {
        name: "KVCache.get_v",
        signature: "cache.get_v(layer: int) -> tensor",
        category: "LLM state",
        doc: "Every position `layer` holds, of its values: the same as `cache.values(layer)` (a view, no copy).",
        func: kv_values,
    },
    Builtin {
        name: "KVCache.len",
        signature: "cache.len(layer: int = 0) -> int",
        category: "LLM state",
        doc: "The number of positions `layer` (default 0) holds: the next free position for `cache.append`.",
        func: kv_len,
    },
    Builtin {
        name: "KVCache.max_len",
        signature: "cache.max_len() -> int",
        category: "LLM state",
        doc: "The number of positions the cache has room for now (a growable cache doubles when full).",
        func: kv_max_len,
    },
    Builtin {
        name: "KVCache.clear",
        signature: "cache.clear()",
        category: "LLM state",
        doc: "Forgets every position of every layer (the memory stays allocated), for a new \
              conversation.",
        func: kv_clear,
    },
    Builtin {
        name: "attend",
        signature: "attend(q: tensor, cache: KVCache, layer: int, pos: int) -> tensor",
        category: "LLM state",
        doc: "Causal grouped-query attention of the queries `q` ([n, heads, head_dim], the \
              positions pos..pos+n) over the first pos+n positions of `layer` in `cache` (write \
              this step's keys and values with `cache.append` first). Query heads are shared \
              out over the cache's kv_heads (heads must be a multiple of kv_heads); query i \
              sees positions up to pos+i; scores are scaled by 1/sqrt(head_dim) and the softmax \
              runs in float32. Result: [n, heads, head_dim] in q's dtype. Errors: head counts \
              that do not divide, a head_dim that differs from the cache's, pos+n beyond what \
              the layer holds.",
        func: attend,
    },
];

fn load_model(interp: &mut Interpreter, args: &mut CallArgs) -> Result<Value> {
    args.expect_named(&[])?;
    args.expect_count(1, 1)?;
    let path = args.string(0)?;
    let model = tl_models::Model::open(&path).map_err(|e| args.arg_error(0, e.to_string()))?;
    let data = ModelData::new(model, interp.options.device);
    Ok(Value::Object(Rc::new(ModelObject {
        data: Rc::new(data),
    })))
}

fn model_arg(args: &CallArgs, i: usize) -> Result<Rc<ModelData>> {
    args.object::<ModelObject>(i, "a model")
        .map(|m| m.data.clone())
}

fn get_tensor(_: &mut Interpreter, args: &mut CallArgs) -> Result<Value> {
    args.expect_named(&[])?;
    args.expect_count(2, 2)?;
    let model = model_arg(args, 0)?;
    let name = args.string(1)?;
    model
        .tensor(&name)
        .map(Value::Tensor)
        .map_err(|m| args.arg_error(1, m))
}

fn tensor_names(_: &mut Interpreter, args: &mut CallArgs) -> Result<Value> {
    args.expect_named(&[])?;
    args.expect_count(1, 1)?;
    let model = model_arg(args, 0)?;
    Ok(Value::List(Rc::new(
        model.tensor_names().map(Value::str).collect(),
    )))
}

fn model_metadata(_: &mut Interpreter, args: &mut CallArgs) -> Result<Value> {
    args.expect_named(&[])?;
    args.expect_count(2, 2)?;
    let model = model_arg(args, 0)?;
    let key = args.string(1)?;
    match model.model.metadata(&key) {
        Some(m) => Ok(meta_to_value(m)),
        None => Err(args.arg_error(
            1,
            format!(
                "model {} has no metadata key \"{key}\"",
                model.model.path().display()
            ),
        )),
    }
}

fn positive(args: &CallArgs, i: usize, what: &str) -> Result<usize> {
    let v = args.int(i)?;
    if v <= 0 {
        return Err(args.arg_error(i, format!("{what} must be positive, got {v}")));
    }
    Ok(v as usize)
}

fn kv_cache(_: &mut Interpreter, args: &mut CallArgs) -> Result<Value> {
    args.expect_named(&["dtype"])?;
    args.expect_count(4, 5)?;
    let layers = positive(args, 0, "layers")?;
    let max_len = positive(args, 1, "max_len")?;
    let kv_heads = positive(args, 2, "kv_heads")?;
    let head_dim = positive(args, 3, "head_dim")?;
    let dtype = args.dtype_arg(Some(4), DType::F32)?;
    if !dtype.is_float() {
        return Err(args.error(format!("a KV cache holds floats, not {}", dtype.name())));
    }
    let cache = KvCache::preallocated(layers, max_len, vec![kv_heads, head_dim], dtype)
        .map_err(|e| args.error(e))?;
    Ok(Value::Object(Rc::new(cache)))
}

fn kv_new(args: &CallArgs, dtype: DType) -> Result<Value> {
    args.expect_named(&[])?;
    args.expect_count(1, 1)?;
    let layers = positive(args, 0, "layers")?;
    Ok(Value::Object(Rc::new(KvCache::growable(layers, dtype))))
}

fn kv_new_f32(_: &mut Interpreter, args: &mut CallArgs) -> Result<Value> {
    kv_new(args, DType::F32)
}

fn kv_new_f16(_: &mut Interpreter, args: &mut CallArgs) -> Result<Value> {
    kv_new(args, DType::F16)
}

/// Runs `f` on the cache that is argument `i` (the receiver of a method is argument 0).
fn with_cache<T>(
    args: &CallArgs,
    i: usize,
    f: impl FnOnce(&KvCache) -> std::result::Result<T, String>,
) -> Result<T> {
    f(args.object::<KvCache>(i, "a KVCache")?).map_err(|m| args.error(m))
}

fn opt_position(args: &CallArgs, i: usize, name: &str) -> Result<Option<usize>> {
    match args.opt_int(Some(i), name)? {
        Some(p) if p < 0 => Err(args.arg_error(i, format!("{name} must not be negative, got {p}"))),
        Some(p) => Ok(Some(p as usize)),
        None => Ok(None),
    }
}

fn kv_append(_: &mut Interpreter, args: &mut CallArgs) -> Result<Value> {
    args.expect_named(&["pos", "rope", "neox"])?;
    args.expect_count(4, 5)?;
    let layer = args.int(1)?;
    let k = args.tensor(2)?;
    let v = args.tensor(3)?;
    let pos = opt_position(args, 4, "pos")?;
    let neox = args.opt_bool(None, "neox", false)?;
    let rope = match args.opt_float(None, "rope")? {
        Some(theta) => Some((theta, neox)),
        None if args.named("neox").is_some() => {
            return Err(args.error("`neox:` is only taken with `rope:`"));
        }
        None => None,
    };
    with_cache(args, 0, |c| c.write(layer, &k, &v, pos, rope))?;
    Ok(Value::Unit)
}

fn kv_set(_: &mut Interpreter, args: &mut CallArgs) -> Result<Value> {
    args.expect_named(&[])?;
    args.expect_count(4, 4)?;
    let layer = args.int(1)?;
    let k = args.tensor(2)?;
    let v = args.tensor(3)?;
    with_cache(args, 0, |c| c.write(layer, &k, &v, Some(0), None))?;
    Ok(Value::Unit)
}

fn kv_rows(args: &CallArgs, values: bool) -> Result<Value> {
    args.expect_named(&["len"])?;
    args.expect_count(2, 3)?;
    let layer = args.int(1)?;
    let len = opt_position(args, 2, "len")?;
    with_cache(args, 0, |c| c.rows(layer, len, values)).map(Value::Tensor)
}

fn kv_keys(_: &mut Interpreter, args: &mut CallArgs) -> Result<Value> {
    kv_rows(args, false)
}

fn kv_values(_: &mut Interpreter, args: &mut CallArgs) -> Result<Value> {
    kv_rows(args, true)
}

fn kv_len(_: &mut Interpreter, args: &mut CallArgs) -> Result<Value> {
    args.expect_named(&[])?;
    args.expect_count(1, 2)?;
    let layer = if args.len() > 1 { args.int(1)? } else { 0 };
    with_cache(args, 0, |c| c.len(layer)).map(|n| Value::Int(n as i64))
}

fn kv_max_len(_: &mut Interpreter, args: &mut CallArgs) -> Result<Value> {
    args.expect_named(&[])?;
    args.expect_count(1, 1)?;
    with_cache(args, 0, |c| Ok(c.capacity())).map(|n| Value::Int(n as i64))
}

fn kv_clear(_: &mut Interpreter, args: &mut CallArgs) -> Result<Value> {
    args.expect_named(&[])?;
    args.expect_count(1, 1)?;
    with_cache(args, 0, |c| {
        c.clear();
        Ok(())
    })?;
    Ok(Value::Unit)
}

fn attend(_: &mut Interpreter, args: &mut CallArgs) -> Result<Value> {
    args.expect_named(&[])?;
    args.expect_count(4, 4)?;
    let q = args.tensor(0)?;
    let layer = args.int(2)?;
    let pos = args.int(3)?;
    if pos < 0 {
        return Err(args.arg_error(3, format!("pos must not be negative, got {pos}")));
    }
    let pos = pos as usize;
    if q.rank() != 3 {
        return Err(args.arg_error(
            0,
            format!(
                "queries must be [n, heads, head_dim], got shape {:?}",
                q.shape()
            ),
        ));
    }
    let n = q.shape()[0];
    let total = pos + n;
    let (k, v) = with_cache(args, 1, |c| {
        let held = c.len(layer)?;
        if total > held {
            return Err(format!(
                "queries at positions {pos}..{total} need {total} cached positions, layer {layer} holds {held} (append this step's keys and values first)"
            ));
        }
        Ok((
            c.rows(layer, Some(total), false)?,
            c.rows(layer, Some(total), true)?,
        ))
    })?;
    if k.rank() != 3 || k.shape()[2] != q.shape()[2] {
        return Err(args.error(format!(
            "queries {:?} and cached keys {:?} must be [n, heads, head_dim] with one head_dim",
            q.shape(),
            k.shape()
        )));
    }
    // [n, heads, d] -> [heads, n, d]: the layout `attention` takes, as views.
    let q_h = at_call(args, q.permute(&[1, 0, 2]))?;
    let k_h = at_call(args, k.permute(&[1, 0, 2]))?;
    let v_h = at_call(args, v.permute(&[1, 0, 2]))?;
    // A prompt's rows see their own and earlier positions; one row sees every cached one.
    let out = if n > 1 {
        at_call(args, Tensor::causal_attention(&q_h, &k_h, &v_h, pos))?
    } else {
        at_call(args, Tensor::attention(&q_h, &k_h, &v_h, None))?
    };
    at_call(args, out.permute(&[1, 0, 2])).map(Value::Tensor)
}
