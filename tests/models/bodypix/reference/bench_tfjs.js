// Timing server for the original BodyPix on TF.js (default backend: wasm), driven by bench_bodypix.py.
//
//   node bench_tfjs.js MODEL_ROOT FRAME.rgb HEIGHT WIDTH [backend]
//
// Loads MobileNetV1 0.50 and 0.75 (stride 16; quant2 files, i.e. BodyPix's own 2-byte weights),
// then reads commands from stdin, one per line:
//   run <variant> <internalResolution> <n>   -> prints {"variant", "ms": [n timings]} as JSON
//   info                                     -> prints backend / wasm flags as JSON
//   quit
// A timing is one `await net.segmentPerson(frame, {internalResolution})` (the library's end to
// end: pad/resize, network, scale/crop, threshold, pose decoding, data download), measured with
// performance.now() inside this process.
'use strict';
const {performance} = require('perf_hooks');
const tf = require('@tensorflow/tfjs-core');
require('@tensorflow/tfjs-backend-cpu');
require('@tensorflow/tfjs-backend-wasm');
const {loadBodyPix, readRgb} = require('./tfjs_load');

async function main() {
  const [modelRoot, framePath, h, w, backend = 'wasm'] = process.argv.slice(2);
  await tf.setBackend(backend);
  await tf.ready();
  const frame = readRgb(framePath, Number(h), Number(w));
  const nets = {
    '050': (await loadBodyPix(modelRoot, {quant: 'quant2', multiplier: 0.5, stride: 16})).net,
    '075': (await loadBodyPix(modelRoot, {quant: 'quant2', multiplier: 0.75, stride: 16})).net,
  };
  // A plain line queue on stdin (readline's async iterator can drop lines that arrive while the
  // loop body is awaiting).
  const lines = [];
  let waiting = null;
  let buffered = '';
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (chunk) => {
    buffered += chunk;
    let i;
    while ((i = buffered.indexOf('\n')) >= 0) {
      lines.push(buffered.slice(0, i));
      buffered = buffered.slice(i + 1);
    }
    if (waiting && lines.length) { const w = waiting; waiting = null; w(); }
  });
  process.stdin.on('end', () => { lines.push('quit'); if (waiting) { const w = waiting; waiting = null; w(); } });
  const nextLine = async () => {
    while (!lines.length) await new Promise((resolve) => { waiting = resolve; });
    return lines.shift();
  };
  process.stdout.write(JSON.stringify({ready: true}) + '\n');
  for (;;) {
    const line = await nextLine();
    const [cmd, variant, res, n] = line.trim().split(/\s+/);
    if (cmd === 'quit') process.exit(0);
    if (cmd === 'info') {
      const flags = {};
      for (const f of ['WASM_HAS_SIMD_SUPPORT', 'WASM_HAS_MULTITHREAD_SUPPORT']) {
        try { flags[f] = await tf.env().getAsync(f); } catch (e) { flags[f] = String(e); }
      }
      let threads = null;
      try { threads = tf.backend().getThreadsCount ? tf.backend().getThreadsCount() : null; } catch (e) { /* */ }
      process.stdout.write(JSON.stringify({backend: tf.getBackend(), flags, threads,
                                           tfjs: tf.version_core, node: process.version}) + '\n');
      continue;
    }
    if (cmd === 'run') {
      const resolution = isNaN(Number(res)) ? res : Number(res);
      const ms = [];
      for (let i = 0; i < Number(n); i++) {
        const t0 = performance.now();
        const seg = await nets[variant].segmentPerson(frame, {internalResolution: resolution});
        ms.push(performance.now() - t0);
        if (seg.data.length !== frame.shape[0] * frame.shape[1]) throw new Error('bad mask');
      }
      process.stdout.write(JSON.stringify({variant, ms, tensors: tf.memory().numTensors}) + '\n');
    }
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
