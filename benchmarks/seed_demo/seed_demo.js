// The seed demo's loop, with timings for benchmarks/live_fps.py (read through window.seedDemo).
// Query options: model=<url of model-stride16.json>, threshold, resolution.
(async () => {
  const q = new URLSearchParams(location.search);
  const modelUrl = q.get("model") || "/models/mobilenet/quant2/075/model-stride16.json";
  const config = {
    internalResolution: q.get("resolution") || "medium",
    segmentationThreshold: Number(q.get("threshold") || 0.7),
  };
  const status = document.getElementById("status");
  const video = document.getElementById("video");
  const canvas = document.getElementById("output");
  const frames = []; // {t, segmentMs, drawMs, totalMs} of every processed frame
  const state = window.seedDemo = {
    ready: false, error: null, backend: null, flags: {}, frames: 0,
    reset() { frames.length = 0; state.frames = 0; },
    stats() { return { frames: state.frames, list: frames.slice(), ready: state.ready, error: state.error,
                       backend: state.backend, flags: state.flags, videoWidth: video.videoWidth,
                       videoHeight: video.videoHeight }; },
  };
  try {
    const bodyPix = window.bodyPix || window["body-pix"];
    tf.wasm.setWasmPaths("/npm/@tensorflow/tfjs-backend-wasm/dist/");
    if (!(await tf.setBackend("wasm"))) throw new Error("the TF.js wasm backend did not start");
    await tf.ready();
    state.backend = tf.getBackend();
    for (const f of ["WASM_HAS_SIMD_SUPPORT", "WASM_HAS_MULTITHREAD_SUPPORT"]) {
      try { state.flags[f] = await tf.env().getAsync(f); } catch (e) { state.flags[f] = null; }
    }
    status.textContent = "loading BodyPix…";
    const net = await bodyPix.load({
      architecture: "MobileNetV1", outputStride: 16, multiplier: 0.75, quantBytes: 2, modelUrl,
    });
    status.textContent = "starting the camera…";
    video.srcObject = await navigator.mediaDevices.getUserMedia({
      audio: false, video: { facingMode: "user", width: { ideal: 640 }, height: { ideal: 480 } },
    });
    await new Promise((r) => (video.readyState >= 2 ? r() : (video.onloadeddata = r)));
    await video.play();
    video.width = video.videoWidth;   // BodyPix reads the input size from width/height
    video.height = video.videoHeight;
    async function onFrame() {
      const t0 = performance.now();
      try {
        const segmentation = await net.segmentPerson(video, config);
        const t1 = performance.now();
        const mask = bodyPix.toMask(segmentation);
        bodyPix.drawMask(canvas, video, mask, 0.7, 0, true);
        const t2 = performance.now();
        frames.push({ t: t2, segmentMs: t1 - t0, drawMs: t2 - t1, totalMs: t2 - t0 });
        if (frames.length > 2000) frames.splice(0, frames.length - 2000);
        state.frames += 1;
        state.ready = true;
      } catch (e) {
        state.error = String(e && e.message || e);
      }
      video.requestVideoFrameCallback(onFrame);
    }
    status.textContent = `BodyPix 2 on TF.js ${state.backend}`;
    video.requestVideoFrameCallback(onFrame);
  } catch (e) {
    state.error = String(e && e.stack || e);
    status.textContent = "failed: " + state.error;
  }
})();
