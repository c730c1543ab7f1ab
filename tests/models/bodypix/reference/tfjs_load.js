// Shared helpers for the Node reference scripts: load a local BodyPix model directory through a
// custom tf.io handler, and read raw RGB frames written by the Python driver.
'use strict';
const fs = require('fs');
const path = require('path');
const tf = require('@tensorflow/tfjs-core');
const bodyPix = require('@tensorflow-models/body-pix');

/** An IOHandler that serves model.json + its shards from the local file system. */
function localModelHandler(jsonPath) {
  return {
    load: async () => {
      const model = JSON.parse(fs.readFileSync(jsonPath, 'utf8'));
      const dir = path.dirname(jsonPath);
      const weightSpecs = [];
      const buffers = [];
      for (const group of model.weightsManifest) {
        weightSpecs.push(...group.weights);
        for (const p of group.paths) buffers.push(fs.readFileSync(path.join(dir, p)));
      }
      const all = Buffer.concat(buffers);
      const weightData = all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength);
      return {
        modelTopology: model.modelTopology,
        weightSpecs,
        weightData,
        format: model.format,
        generatedBy: model.generatedBy,
        convertedBy: model.convertedBy,
      };
    },
  };
}

/**
 * Load BodyPix (MobileNetV1) from <modelRoot>/<quant>/<mult>/model-stride<S>.json.
 * variant: {quant: 'float'|'quant2'|..., multiplier: 0.5|0.75|1.0, stride: 8|16}
 */
async function loadBodyPix(modelRoot, variant) {
  const toStr = {1.0: '100', 0.75: '075', 0.5: '050'};
  const quantBytes = variant.quant === 'float' ? 4 : Number(variant.quant.replace('quant', ''));
  const jsonPath = path.join(modelRoot, variant.quant, toStr[variant.multiplier],
                             `model-stride${variant.stride}.json`);
  const net = await bodyPix.load({
    architecture: 'MobileNetV1',
    outputStride: variant.stride,
    multiplier: variant.multiplier,
    quantBytes,
    modelUrl: localModelHandler(jsonPath),
  });
  return {net, jsonPath};
}

/** Read an RGB frame (uint8, H*W*3, row-major) into an int32 [H, W, 3] tensor (as fromPixels). */
function readRgb(rawPath, height, width) {
  const buf = fs.readFileSync(rawPath);
  if (buf.length !== height * width * 3) {
    throw new Error(`${rawPath}: ${buf.length} bytes, expected ${height}x${width}x3`);
  }
  return tf.tensor3d(Int32Array.from(buf), [height, width, 3], 'int32');
}

module.exports = {localModelHandler, loadBodyPix, readRgb};
