// Reading NumPy .npy files (format versions 1-3) in the browser, so the cursor readout looks
// values up in the job's own artifacts (biomes.npy, heights.npy) without a request per move.
// Written by hand: the format is a 10-byte preamble, a Python-literal header and the raw array
// (https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html); no well-kept
// browser library for it ships in Debian, and this is ~60 lines.

const TYPES = {
  "|u1": Uint8Array, "<u1": Uint8Array, "|i1": Int8Array, "<i1": Int8Array,
  "<u2": Uint16Array, "<i2": Int16Array, "<u4": Uint32Array, "<i4": Int32Array,
  "<f4": Float32Array, "<f8": Float64Array,
};

/** Parse an .npy file. Returns {shape: number[], data: TypedArray} (C order, little-endian).
 *  Throws an Error naming what is wrong for anything else. */
export function parseNpy(buffer) {
  const bytes = new Uint8Array(buffer);
  const magic = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY
  if (bytes.length < 10 || magic.some((b, i) => bytes[i] !== b)) {
    throw new Error("not a .npy file (bad magic)");
  }
  const view = new DataView(buffer);
  const major = bytes[6];
  let headerLen, start;
  if (major === 1) {
    headerLen = view.getUint16(8, true); start = 10;
  } else if (major === 2 || major === 3) {
    headerLen = view.getUint32(8, true); start = 12;
  } else {
    throw new Error(`unsupported .npy version ${major}`);
  }
  const header = new TextDecoder(major === 3 ? "utf-8" : "latin1")
    .decode(bytes.subarray(start, start + headerLen));
  const descr = /'descr'\s*:\s*'([^']+)'/.exec(header);
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header);
  const shape = /'shape'\s*:\s*\(([^)]*)\)/.exec(header);
  if (!descr || !fortran || !shape) throw new Error(`unreadable .npy header: ${header}`);
  if (fortran[1] === "True") throw new Error(".npy in Fortran order is not supported");
  const Type = TYPES[descr[1]];
  if (!Type) throw new Error(`unsupported .npy dtype ${descr[1]}`);
  const dims = shape[1].split(",").map((s) => s.trim()).filter((s) => s !== "").map(Number);
  const count = dims.reduce((a, b) => a * b, 1);
  const offset = start + headerLen;
  if (buffer.byteLength < offset + count * Type.BYTES_PER_ELEMENT) {
    throw new Error(".npy file is shorter than its header says");
  }
  // The format pads the header so the data is aligned; copy if a writer did not.
  const data = offset % Type.BYTES_PER_ELEMENT === 0
    ? new Type(buffer, offset, count)
    : new Type(buffer.slice(offset, offset + count * Type.BYTES_PER_ELEMENT));
  return { shape: dims, data };
}
