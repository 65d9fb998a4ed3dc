//! The KV cache of a decoder: per layer, a key and a value tensor of shape
//! [capacity, ...row] (row = [kv_heads, head_dim] for Llama) whose first `len` rows hold the
//! keys and values of the positions seen so far. Appending at a host position writes rows in
//! place (no reallocation in the steady state); `attend` reads the first `pos + n` rows as views.

use std::cell::RefCell;

use tl_tensor::{DType, Tensor};

use crate::value::Object;

/// Rows a growable cache starts with (the old interpreter's `KVCache::new_f16(layers)` takes no
/// size); it doubles when full.
const GROWABLE_START_ROWS: usize = 256;

struct Layer {
    keys: Tensor,
    values: Tensor,
    len: usize,
}

impl Layer {
    /// An empty layer with room for `rows` rows of `row_shape`; fails when that does not fit
    /// in memory (or on the device).
    fn zeros(rows: usize, row_shape: &[usize], dtype: DType) -> Result<Layer, String> {
        let mut shape = vec![rows];
        shape.extend(row_shape);
        let zeros = || {
            Tensor::try_full(&shape, 0.0, dtype)
                .map_err(|e| format!("cannot make the KV cache: {e}"))
        };
        Ok(Layer {
            keys: zeros()?,
            values: zeros()?,
            len: 0,
        })
    }
}

pub struct KvCache {
    layers: RefCell<Vec<Option<Layer>>>,
    /// Rows allocated per layer; `None` until the first append for lazily sized caches.
    capacity: RefCell<usize>,
    /// The shape of one row ([kv_heads, head_dim]), fixed by the constructor or the first append.
    row_shape: RefCell<Option<Vec<usize>>>,
    dtype: DType,
    /// A cache made without a size grows; one made with `kv_cache(.., max_len, ..)` does not.
    growable: bool,
}

impl KvCache {
    /// A preallocated cache: `layers` x [max_len, kv_heads, head_dim] zeros of `dtype`; fails
    /// when that does not fit in memory.
    pub fn preallocated(
        layers: usize,
        max_len: usize,
        row_shape: Vec<usize>,
        dtype: DType,
    ) -> Result<KvCache, String> {
        let all = (0..layers)
            .map(|_| Layer::zeros(max_len, &row_shape, dtype).map(Some))
            .collect::<Result<_, _>>()?;
        Ok(KvCache {
            layers: RefCell::new(all),
            capacity: RefCell::new(max_len),
            row_shape: RefCell::new(Some(row_shape)),
            dtype,
            growable: false,
        })
    }

    /// A cache whose rows are sized by the first append and which grows as needed.
    pub fn growable(layers: usize, dtype: DType) -> KvCache {
        KvCache {
            layers: RefCell::new((0..layers).map(|_| None).collect()),
            capacity: RefCell::new(GROWABLE_START_ROWS),
            row_shape: RefCell::new(None),
            dtype,
            growable: true,
        }
    }

    pub fn n_layers(&self) -> usize {
        self.layers.borrow().len()
    }

    pub fn capacity(&self) -> usize {
        *self.capacity.borrow()
    }

    fn check_layer(&self, layer: i64) -> Result<usize, String> {
        let n = self.n_layers();
        if layer < 0 || layer as usize >= n {
            return Err(format!(
                "layer {layer} is out of range for a KV cache of {n} layers"
            ));
        }
        Ok(layer as usize)
    }

    /// Rows filled in `layer` (0 for a layer never written).
    pub fn len(&self, layer: i64) -> Result<usize, String> {
        let l = self.check_layer(layer)?;
        Ok(self.layers.borrow()[l].as_ref().map_or(0, |x| x.len))
    }

    /// Forgets every position (the memory stays allocated).
    pub fn clear(&self) {
        for l in self.layers.borrow_mut().iter_mut().flatten() {
            l.len = 0;
        }
    }

    /// Writes `k` and `v` (each [n, ...row]) at rows `pos..pos + n` of `layer`; the layer then
    /// holds `pos + n` positions (anything after is forgotten, so rewinding works). With
    /// `rope: (theta, neox)` the keys are rotated as `rope(k, pos, theta)` on the way in.
    pub fn write(
        &self,
        layer: i64,
        k: &Tensor,
        v: &Tensor,
        pos: Option<usize>,
        rope: Option<(f64, bool)>,
    ) -> Result<(), String> {
        let l = self.check_layer(layer)?;
        if k.shape() != v.shape() {
            return Err(format!(
                "keys {:?} and values {:?} must have one shape",
                k.shape(),
                v.shape()
            ));
        }
        if k.rank() < 2 {
            return Err(format!(
                "keys must be [n, ...] rows (e.g. [n, kv_heads, head_dim]), got shape {:?}",
                k.shape()
            ));
        }
        let n = k.shape()[0];
        let row = k.shape()[1..].to_vec();
        {
            let mut rs = self.row_shape.borrow_mut();
            match rs.as_ref() {
                Some(expected) if *expected != row => {
                    return Err(format!(
                        "the cache holds rows of shape {expected:?}, but keys of shape {:?} have rows {row:?}",
                        k.shape()
                    ));
                }
                Some(_) => {}
                None => *rs = Some(row.clone()),
            }
        }
        let filled = self.len(layer)?;
        let pos = pos.unwrap_or(filled);
        if pos > filled {
            return Err(format!(
                "position {pos} leaves a gap: layer {l} holds {filled} positions, so the next is {filled}"
            ));
        }
        let end = pos + n;
        if end > self.capacity() {
            if !self.growable {
                return Err(format!(
                    "the KV cache is full: writing {n} positions at {pos} needs {end} rows, it has {} (make it with a larger max_len)",
                    self.capacity()
                ));
            }
            self.grow(end.max(2 * self.capacity()))?;
        }
        let mut layers = self.layers.borrow_mut();
        if layers[l].is_none() {
            layers[l] = Some(Layer::zeros(self.capacity(), &row, self.dtype)?);
        }
        let layer_state = layers[l].as_mut().expect("made above");
        if let Some((theta, neox)) = rope {
            Tensor::write_kv_rope_in_place(
                &mut layer_state.keys,
                &mut layer_state.values,
                pos,
                k,
                v,
                (pos, theta, neox),
            )
            .map_err(|e| e.to_string())?;
        } else {
            let k = k.cast(self.dtype).map_err(|e| e.to_string())?;
            let v = v.cast(self.dtype).map_err(|e| e.to_string())?;
            write_rows(&mut layer_state.keys, pos, &k)?;
            write_rows(&mut layer_state.values, pos, &v)?;
        }
        layer_state.len = end;
        Ok(())
    }

    /// Reallocates every layer to `rows` rows, keeping what they hold.
    fn grow(&self, rows: usize) -> Result<(), String> {
        let mut layers = self.layers.borrow_mut();
        for layer in layers.iter_mut().flatten() {
            for t in [&mut layer.keys, &mut layer.values] {
                let mut shape = t.shape().to_vec();
                shape[0] = rows - shape[0];
                let extra = Tensor::try_full(&shape, 0.0, self.dtype)
                    .map_err(|e| format!("cannot grow the KV cache: {e}"))?;
                *t = Tensor::concat(&[t.clone(), extra], 0).map_err(|e| e.to_string())?;
            }
        }
        *self.capacity.borrow_mut() = rows;
        Ok(())
    }

    /// The first `len` rows of `layer`'s keys (`values` false) or values, as a view.
    pub fn rows(&self, layer: i64, len: Option<usize>, values: bool) -> Result<Tensor, String> {
        let l = self.check_layer(layer)?;
        let layers = self.layers.borrow();
        let Some(state) = layers[l].as_ref() else {
            return Err(format!("layer {l} of the KV cache holds nothing yet"));
        };
        let len = len.unwrap_or(state.len);
        if len > state.len {
            return Err(format!(
                "asked for {len} positions of layer {l}, which holds {}",
                state.len
            ));
        }
        let t = if values { &state.values } else { &state.keys };
        t.narrow(0, 0, len).map_err(|e| e.to_string())
    }
}

/// Copies `src` into rows `start..start + src.shape[0]` of `dst`, in place when `dst` is the
/// only holder of its memory.
fn write_rows(dst: &mut Tensor, start: usize, src: &Tensor) -> Result<(), String> {
    dst.write_slice_in_place(0, start, src)
        .map_err(|e| e.to_string())
}

impl Object for KvCache {
    fn type_name(&self) -> &'static str {
        "KVCache"
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
    fn describe(&self) -> String {
        let len = self.len(0).unwrap_or(0);
        format!(
            "<KVCache {} layers, {len}/{} positions, {}>",
            self.n_layers(),
            self.capacity(),
            self.dtype.name()
        )
    }
    fn length(&self) -> Option<usize> {
        self.len(0).ok()
    }
}
