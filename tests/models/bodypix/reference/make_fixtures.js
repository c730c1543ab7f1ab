// Runs the original BodyPix 2.2.1 (TF.js 4.22, cpu backend) on raw RGB frames and dumps its
// outputs for the PyTorch port's parity tests.
//
//   node make_fixtures.js JOB.json OUT_DIR
//
// JOB.json (written by make_fixtures.py):
//   {model_root, backend, variants: {id: {quant, multiplier, stride}},
//    images: {name: {raw, height, width}},
//    cases: [{id, variant, image, resolution, single, person, raw: [head names], multi}]}
// For every case OUT_DIR/<id>/ receives meta.json and little-endian binary arrays:
//   parts.i32 (segmentPersonParts, H*W -1..23), mask.u8 (segmentPerson, H*W 0/1; only when
//   case.person, since the person mask is also parts != -1),
//   raw_<head>.f32 (outputs of the library's own inference in segmentPersonParts /
//   segmentMultiPersonParts, at model resolution, HWC, before any sigmoid),
//   multi_mask_<k>.u8 and multi_parts_<k>.i32 (segmentMultiPerson[Parts], per person).
'use strict';
const fs = require('fs');
const path = require('path');
const tf = require('@tensorflow/tfjs-core');
require('@tensorflow/tfjs-backend-cpu');
const util = require('@tensorflow-models/body-pix/dist/util');
const {loadBodyPix, readRgb} = require('./tfjs_load');

const HEADS = ['short_offsets', 'segments', 'part_heatmaps', 'long_offsets', 'heatmaps',
               'displacement_fwd', 'displacement_bwd', 'part_offsets'];

function poseToJson(pose) {
  return {
    score: pose.score,
    keypoints: pose.keypoints.map((k) => [k.position.x, k.position.y, k.score]),
    parts: pose.keypoints.map((k) => k.part),
  };
}

function writeArray(file, typed) {
  fs.writeFileSync(file, Buffer.from(typed.buffer, typed.byteOffset, typed.byteLength));
}

/**
 * Wrap the BodyPix GraphModel's predict() so that the raw outputs of the inference the library
 * itself runs are copied out (synchronously, before the library's tidy() disposes them).
 * Returns a function that yields (and clears) the last captured outputs.
 */
function captureRaw(net) {
  const model = net.baseModel.model;
  const original = model.predict.bind(model);
  let last = null;
  model.predict = (x, cfg) => {
    const ys = original(x, cfg);
    last = {inputShape: x.shape.slice(1, 3), heads: {}};
    ys.forEach((y, i) => {
      last.heads[HEADS[i]] = {shape: y.shape.slice(1), data: y.dataSync().slice()};
    });
    return ys;
  };
  return () => { const r = last; last = null; return r; };
}

async function main() {
  const [jobPath, outDir] = process.argv.slice(2);
  const job = JSON.parse(fs.readFileSync(jobPath, 'utf8'));
  await tf.setBackend(job.backend || 'cpu');
  await tf.ready();
  const nets = {};
  const captured = {};
  for (const [id, v] of Object.entries(job.variants)) {
    nets[id] = (await loadBodyPix(job.model_root, v)).net;
    captured[id] = captureRaw(nets[id]);
  }
  const inputs = {};
  for (const [name, im] of Object.entries(job.images)) inputs[name] = readRgb(im.raw, im.height, im.width);

  for (const c of job.cases) {
    const net = nets[c.variant];
    const input = inputs[c.image];
    const dir = path.join(outDir, c.id);
    if (job.resume && fs.existsSync(path.join(dir, 'meta.json'))) continue;
    fs.mkdirSync(dir, {recursive: true});
    const meta = {case: c, tfjs_backend: tf.getBackend(), image_shape: input.shape, heads: {}};
    const cfg = {internalResolution: c.resolution};
    const [h, w] = input.shape;
    meta.internal = util.toInputResolutionHeightAndWidth(c.resolution, net.baseModel.outputStride, [h, w]);
    const pr = util.padAndResizeTo(input, meta.internal);
    meta.padding = pr.padding;
    pr.resized.dispose();
    let raw = null;
    if (c.single) {
      const parts = await net.segmentPersonParts(input, cfg);
      raw = captured[c.variant]();
      writeArray(path.join(dir, 'parts.i32'), Int32Array.from(parts.data));
      meta.parts_poses = parts.allPoses.map(poseToJson);
      if (c.person) {
        const seg = await net.segmentPerson(input, cfg);
        writeArray(path.join(dir, 'mask.u8'), Uint8Array.from(seg.data));
        meta.person_poses = seg.allPoses.map(poseToJson);
      }
    }
    if (c.multi) {
      const peopleParts = await net.segmentMultiPersonParts(input, cfg);
      raw = captured[c.variant]();
      meta.multi_parts_poses = peopleParts.map((p) => poseToJson(p.pose));
      peopleParts.forEach((p, k) => writeArray(path.join(dir, `multi_parts_${k}.i32`), Int32Array.from(p.data)));
      const people = await net.segmentMultiPerson(input, cfg);
      meta.multi_poses = people.map((p) => poseToJson(p.pose));
      people.forEach((p, k) => writeArray(path.join(dir, `multi_mask_${k}.u8`), Uint8Array.from(p.data)));
    }
    if (raw.inputShape[0] !== meta.internal[0] || raw.inputShape[1] !== meta.internal[1]) {
      throw new Error(`${c.id}: model ran at ${raw.inputShape}, expected ${meta.internal}`);
    }
    for (const name of c.raw || []) {
      meta.heads[name] = raw.heads[name].shape;
      writeArray(path.join(dir, `raw_${name}.f32`), raw.heads[name].data);
    }
    fs.writeFileSync(path.join(dir, 'meta.json'), JSON.stringify(meta));
    process.stderr.write(`${c.id} internal=${meta.internal} tensors=${tf.memory().numTensors}\n`);
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
