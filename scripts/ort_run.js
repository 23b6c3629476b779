#!/usr/bin/env node
// Run an ONNX model with onnxruntime-node: float reference and speed peer
// for potc.
//
//   node scripts/ort_run.js MODEL.onnx IN0.npy [IN1.npy ...] -o OUT0.npy [-o OUT1.npy ...]
//   node scripts/ort_run.js MODEL.onnx IN0.npy [...] --bench N
//
// Inputs are .npy files (<f4, <f8, <i8, <i4, ... ; converted to the element
// type the model's input wants), given in the order of the model's inputs,
// or as NAME=FILE.npy.  Outputs are written as float32 (<f4) .npy files, in
// the order of the model's outputs; an output without an -o is not written.
//
// --bench N   run the inputs N times (after one warm-up run) on one thread
//             (intraOpNumThreads=1, interOpNumThreads=1, sequential) and
//             print "median_us <value>" (median wall time per inference).
// --opt LEVEL graph optimization level: disabled|basic|extended|all
//             (default all).
// --threads T intra-op threads when not benchmarking (default 1).
//
// onnxruntime-node is resolved from $POTC_ORT_DIR/node_modules (default
// /opt/potc-ort); install it with scripts/setup_ort.sh.
'use strict';

const fs = require('fs');
const path = require('path');

function die(msg) {
  process.stderr.write(`ort_run: ${msg}\n`);
  process.exit(2);
}

function loadOrt() {
  const dir = process.env.POTC_ORT_DIR || '/opt/potc-ort';
  const mod = path.join(dir, 'node_modules', 'onnxruntime-node');
  try {
    return require(mod);
  } catch (e) {
    die(`cannot load onnxruntime-node from ${mod} (${e.message.split('\n')[0]}); ` +
        'run scripts/setup_ort.sh or set POTC_ORT_DIR');
  }
  return null;
}

// ---------------------------------------------------------------- .npy I/O

const NPY_MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]); // \x93NUMPY

// descr (without byte-order char) -> [TypedArray ctor, item size]
const NPY_TYPES = {
  f4: [Float32Array, 4], f8: [Float64Array, 8],
  i1: [Int8Array, 1], i2: [Int16Array, 2], i4: [Int32Array, 4], i8: [BigInt64Array, 8],
  u1: [Uint8Array, 1], u2: [Uint16Array, 2], u4: [Uint32Array, 4], u8: [BigUint64Array, 8],
  b1: [Uint8Array, 1], f2: [Uint16Array, 2],
};

function parseNpyHeader(hdr, file) {
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(hdr);
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(hdr);
  const shape = /'shape'\s*:\s*\(([^)]*)\)/.exec(hdr);
  if (!descr || !fortran || !shape) die(`${file}: cannot parse .npy header ${JSON.stringify(hdr)}`);
  if (fortran[1] === 'True') die(`${file}: fortran_order arrays are not supported`);
  const dims = shape[1].split(',').map((s) => s.trim()).filter((s) => s.length > 0)
    .map((s) => {
      const v = Number(s.replace(/L$/, ''));
      if (!Number.isInteger(v) || v < 0) die(`${file}: bad shape ${shape[1]}`);
      return v;
    });
  return { descr: descr[1], dims };
}

function readNpy(file) {
  let buf;
  try {
    buf = fs.readFileSync(file);
  } catch (e) {
    die(`cannot read ${file}: ${e.message}`);
  }
  if (buf.length < 10 || !buf.subarray(0, 6).equals(NPY_MAGIC)) die(`${file}: not a .npy file`);
  const major = buf[6];
  let hlen, off;
  if (major === 1) { hlen = buf.readUInt16LE(8); off = 10; }
  else if (major === 2 || major === 3) { hlen = buf.readUInt32LE(8); off = 12; }
  else die(`${file}: unsupported .npy version ${major}`);
  const hdr = buf.toString(major === 3 ? 'utf8' : 'latin1', off, off + hlen);
  const { descr, dims } = parseNpyHeader(hdr, file);
  const order = descr[0];
  const code = descr.slice(1);
  const t = NPY_TYPES[code];
  if (!t || !'<|='.includes(order) || (order === '>' && t[1] > 1)) die(`${file}: unsupported dtype '${descr}'`);
  const [Ctor, size] = t;
  const count = dims.reduce((a, b) => a * b, 1);
  const start = off + hlen;
  if (buf.length - start < count * size) die(`${file}: truncated data (${buf.length - start} bytes, need ${count * size})`);
  // copy into an aligned buffer
  const ab = new ArrayBuffer(count * size);
  buf.copy(Buffer.from(ab), 0, start, start + count * size);
  return { code, dims, data: new Ctor(ab) };
}

function writeNpyF32(file, dims, f32) {
  const shape = dims.length === 0 ? '()' : dims.length === 1 ? `(${dims[0]},)` : `(${dims.join(', ')})`;
  let hdr = `{'descr': '<f4', 'fortran_order': False, 'shape': ${shape}, }`;
  // total header (magic 6 + version 2 + len 2 + hdr + '\n') padded to 64 bytes
  const pad = 64 - ((10 + hdr.length + 1) % 64);
  hdr = hdr + ' '.repeat(pad % 64) + '\n';
  const head = Buffer.alloc(10);
  NPY_MAGIC.copy(head, 0);
  head[6] = 1; head[7] = 0;
  head.writeUInt16LE(hdr.length, 8);
  const body = Buffer.from(f32.buffer, f32.byteOffset, f32.byteLength);
  fs.writeFileSync(file, Buffer.concat([head, Buffer.from(hdr, 'latin1'), body]));
}

// ------------------------------------------------------- type conversions

function halfToFloat(h) {
  const s = (h & 0x8000) ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

function floatToHalf(v) {
  const f = new Float32Array([v]);
  const x = new Uint32Array(f.buffer)[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let r = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && (r & 1))) r++;
    return sign | r;
  }
  let r = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (r & 1))) r++;
  return sign | r;
}

// plain JS numbers (Number) of any npy array
function toNumbers(arr) {
  const out = new Array(arr.data.length);
  for (let i = 0; i < arr.data.length; i++) {
    out[i] = arr.code === 'f2' ? halfToFloat(arr.data[i]) : Number(arr.data[i]);
  }
  return out;
}

const ORT_CTORS = {
  float32: Float32Array, float64: Float64Array,
  int8: Int8Array, int16: Int16Array, int32: Int32Array, int64: BigInt64Array,
  uint8: Uint8Array, uint16: Uint16Array, uint32: Uint32Array, uint64: BigUint64Array,
  bool: Uint8Array, float16: Uint16Array,
};
const NPY_OF_ORT = {
  float32: 'f4', float64: 'f8', int8: 'i1', int16: 'i2', int32: 'i4', int64: 'i8',
  uint8: 'u1', uint16: 'u2', uint32: 'u4', uint64: 'u8', bool: 'b1', float16: 'f2',
};

function makeTensor(ort, arr, type, name) {
  if (!(type in ORT_CTORS)) die(`input '${name}': unsupported model input type ${type}`);
  let data;
  if (NPY_OF_ORT[type] === arr.code) {
    data = arr.data;
  } else {
    const nums = toNumbers(arr);
    const Ctor = ORT_CTORS[type];
    data = new Ctor(nums.length);
    for (let i = 0; i < nums.length; i++) {
      const v = nums[i];
      if (type === 'int64' || type === 'uint64') data[i] = BigInt(Math.trunc(v));
      else if (type === 'bool') data[i] = v ? 1 : 0;
      else if (type === 'float16') data[i] = floatToHalf(v);
      else data[i] = v;
    }
  }
  return new ort.Tensor(type, data, arr.dims);
}

function tensorToF32(t, name) {
  const src = t.data;
  if (src instanceof Float32Array) return src;
  if (typeof src === 'string' || Array.isArray(src)) die(`output '${name}': ${t.type} outputs cannot be written as float32`);
  const out = new Float32Array(src.length);
  for (let i = 0; i < src.length; i++) {
    out[i] = t.type === 'float16' && src instanceof Uint16Array ? halfToFloat(src[i]) : Number(src[i]);
  }
  return out;
}

// ------------------------------------------------------------------ main

function parseArgs(argv) {
  const a = { model: null, inputs: [], outputs: [], bench: 0, opt: 'all', threads: 1 };
  for (let i = 0; i < argv.length; i++) {
    const s = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) die(`${s} needs a value`);
      return argv[++i];
    };
    if (s === '-o') a.outputs.push(next());
    else if (s === '--bench') {
      a.bench = Number(next());
      if (!Number.isInteger(a.bench) || a.bench < 1) die('--bench needs a positive integer');
    } else if (s === '--opt') {
      a.opt = next();
      if (!['disabled', 'basic', 'extended', 'all'].includes(a.opt)) die(`bad --opt ${a.opt}`);
    } else if (s === '--threads') {
      a.threads = Number(next());
      if (!Number.isInteger(a.threads) || a.threads < 0) die('--threads needs an integer >= 0');
    } else if (s === '-h' || s === '--help') {
      process.stdout.write('usage: node ort_run.js MODEL.onnx IN0.npy [IN1.npy ...] ' +
        '(-o OUT0.npy [-o OUT1.npy ...] | --bench N) [--opt LEVEL] [--threads T]\n');
      process.exit(0);
    } else if (s.startsWith('-') && s.length > 1) die(`unknown option ${s}`);
    else if (a.model === null) a.model = s;
    else a.inputs.push(s);
  }
  if (a.model === null) die('usage: node ort_run.js MODEL.onnx IN0.npy [...] (-o OUT0.npy [...] | --bench N)');
  if (a.outputs.length === 0 && a.bench === 0) die('nothing to do: give -o OUT.npy and/or --bench N');
  return a;
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const ort = loadOrt();
  const opts = {
    executionProviders: ['cpu'],
    graphOptimizationLevel: args.opt,
    intraOpNumThreads: args.bench ? 1 : args.threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    // warnings (e.g. about old opsets) only with POTC_ORT_VERBOSE=1
    logSeverityLevel: process.env.POTC_ORT_VERBOSE ? 2 : 3,
  };
  let session;
  try {
    session = await ort.InferenceSession.create(args.model, opts);
  } catch (e) {
    die(`cannot load model ${args.model}: ${e.message}`);
  }
  const names = session.inputNames;
  const meta = {};
  for (const m of session.inputMetadata || []) meta[m.name] = m;

  const feeds = {};
  let pos = 0;
  for (const spec of args.inputs) {
    let name, file;
    const eq = spec.indexOf('=');
    if (eq > 0 && names.includes(spec.slice(0, eq))) {
      name = spec.slice(0, eq); file = spec.slice(eq + 1);
    } else {
      if (pos >= names.length) die(`too many inputs: model has ${names.length} (${names.join(', ')})`);
      name = names[pos++]; file = spec;
    }
    const m = meta[name];
    if (m && m.isTensor === false) die(`input '${name}' is not a tensor`);
    const type = m && m.type ? m.type : 'float32';
    feeds[name] = makeTensor(ort, readNpy(file), type, name);
  }
  const missing = names.filter((n) => !(n in feeds));
  if (missing.length) die(`missing inputs: ${missing.join(', ')} (model inputs: ${names.join(', ')})`);
  if (args.outputs.length > session.outputNames.length) {
    die(`${args.outputs.length} -o given but model has ${session.outputNames.length} outputs`);
  }

  let results;
  try {
    results = await session.run(feeds);
  } catch (e) {
    die(`run failed: ${e.message}`);
  }

  if (args.bench) {
    const times = new Array(args.bench);
    for (let i = 0; i < args.bench; i++) {
      const t0 = process.hrtime.bigint();
      await session.run(feeds);
      times[i] = Number(process.hrtime.bigint() - t0) / 1000;
    }
    times.sort((x, y) => x - y);
    const n = times.length;
    const med = n % 2 ? times[(n - 1) / 2] : (times[n / 2 - 1] + times[n / 2]) / 2;
    process.stdout.write(`median_us ${med.toFixed(1)}\n`);
  }

  args.outputs.forEach((file, i) => {
    const name = session.outputNames[i];
    const t = results[name];
    writeNpyF32(file, t.dims.map(Number), tensorToF32(t, name));
  });
  if (typeof session.release === 'function') await session.release();
}

main().catch((e) => die(e && e.stack ? e.stack : String(e)));
