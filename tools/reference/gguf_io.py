"""Reads a GGUF file of any version (1, 2 or 3) into plain Python/NumPy values.

Versions 2 and 3 go through the `gguf` package's GGUFReader. Version 1 (32-bit counts and
string lengths; the stories260K file is one) is not read by GGUFReader, so it is parsed here.

    meta, tensors = read_gguf(path)
    meta["llama.embedding_length"]        # plain int / float / str / bool / list
    t = tensors["blk.0.attn_q.weight"]    # GgufTensor(qtype, shape (row-major), raw uint8 bytes)
    w = dequantize(t)                     # float32 ndarray of t.shape, via gguf.quants.dequantize
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import gguf
import numpy as np
from gguf import GGMLQuantizationType as T
from gguf import GGUFValueType as V


@dataclass
class GgufTensor:
    qtype: T
    shape: tuple  # row-major (numpy order): the GGUF dims reversed
    data: np.ndarray  # raw bytes (uint8) as stored in the file

    def nbytes(self) -> int:
        return int(self.data.nbytes)


def dequantize(t: GgufTensor) -> np.ndarray:
    """The tensor's values as float32, with gguf's reference dequantizers."""
    if t.qtype == T.F32:
        return t.data.view("<f4").reshape(t.shape).copy()
    if t.qtype == T.F16:
        return t.data.view("<f2").astype(np.float32).reshape(t.shape)
    out = gguf.quants.dequantize(t.data.reshape(-1), t.qtype)
    return np.asarray(out, dtype=np.float32).reshape(t.shape)


_SCALAR_FORMATS = {
    V.UINT8: "<B", V.INT8: "<b", V.UINT16: "<H", V.INT16: "<h", V.UINT32: "<I", V.INT32: "<i",
    V.FLOAT32: "<f", V.BOOL: "<?", V.UINT64: "<Q", V.INT64: "<q", V.FLOAT64: "<d",
}


class _V1Parser:
    """GGUF v1: like v3 but every count, length and dimension is a u32."""

    def __init__(self, path):
        self.path = path
        self.buf = np.memmap(path, dtype=np.uint8, mode="r")
        self.pos = 0

    def take(self, fmt):
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.buf):
            raise ValueError(f"{self.path}: truncated at byte {self.pos}")
        (value,) = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += size
        return value

    def string(self):
        n = self.take("<I")
        raw = bytes(self.buf[self.pos:self.pos + n])
        self.pos += n
        return raw.decode("utf-8")

    def value(self, vtype):
        vtype = V(vtype)
        if vtype == V.STRING:
            return self.string()
        if vtype == V.ARRAY:
            sub = self.take("<I")
            n = self.take("<I")
            return [self.value(sub) for _ in range(n)]
        return self.take(_SCALAR_FORMATS[vtype])

    def parse(self):
        magic = bytes(self.buf[:4])
        if magic != b"GGUF":
            raise ValueError(f"{self.path}: not a GGUF file (magic {magic!r})")
        self.pos = 4
        version = self.take("<I")
        if version != 1:
            raise ValueError(f"{self.path}: expected GGUF v1, found v{version}")
        n_tensors = self.take("<I")
        n_kv = self.take("<I")
        meta = {}
        for _ in range(n_kv):
            key = self.string()
            meta[key] = self.value(self.take("<I"))
        infos = []
        for _ in range(n_tensors):
            name = self.string()
            n_dims = self.take("<I")
            dims = [self.take("<I") for _ in range(n_dims)]
            qtype = T(self.take("<I"))
            offset = self.take("<Q")
            infos.append((name, dims, qtype, offset))
        alignment = int(meta.get("general.alignment", 32))
        data_start = (self.pos + alignment - 1) // alignment * alignment
        tensors = {}
        for name, dims, qtype, offset in infos:
            shape = tuple(reversed(dims))
            block, block_bytes = gguf.GGML_QUANT_SIZES[qtype]
            n = int(np.prod(shape))
            nbytes = n // block * block_bytes
            start = data_start + offset
            if start + nbytes > len(self.buf):
                raise ValueError(f"{self.path}: tensor {name} runs past the end of the file")
            tensors[name] = GgufTensor(qtype, shape, np.asarray(self.buf[start:start + nbytes]))
        return meta, tensors


def _field_value(field):
    """A GGUFReader field as a plain Python value."""
    vtype = field.types[0]
    if vtype == V.ARRAY:
        sub = field.types[-1]
        if sub == V.STRING:
            return [bytes(field.parts[i]).decode("utf-8") for i in field.data]
        return [field.parts[i].tolist()[0] for i in field.data]
    if vtype == V.STRING:
        return bytes(field.parts[field.data[0]]).decode("utf-8")
    return field.parts[field.data[0]].tolist()[0]


def read_gguf(path):
    """(metadata dict, {name: GgufTensor}) for a GGUF file of version 1, 2 or 3."""
    with open(path, "rb") as f:
        head = f.read(8)
    if head[:4] != b"GGUF":
        raise ValueError(f"{path}: not a GGUF file (magic {head[:4]!r})")
    if int.from_bytes(head[4:8], "little") == 1:
        return _V1Parser(path).parse()
    reader = gguf.GGUFReader(path)
    meta = {}
    for key, field in reader.fields.items():
        if key.startswith("GGUF."):
            continue
        meta[key] = _field_value(field)
    tensors = {}
    for rt in reader.tensors:
        shape = tuple(int(d) for d in reversed(rt.shape.tolist()))
        tensors[rt.name] = GgufTensor(T(rt.tensor_type), shape, np.asarray(rt.data).view(np.uint8).reshape(-1))
    return meta, tensors


# The tokenizer.ggml.* keys and their GGUF value types, for copying a vocabulary into a new file.
TOKENIZER_ARRAY_TYPES = {
    "tokenizer.ggml.tokens": V.STRING,
    "tokenizer.ggml.scores": V.FLOAT32,
    "tokenizer.ggml.token_type": V.INT32,
    "tokenizer.ggml.merges": V.STRING,
}
