// bgkit LiveBackground: the browser half of the live loop.
//
// The BodyPix demo's loop (requestVideoFrameCallback -> segment -> draw) split in two: this page
// grabs each camera frame, sends it to the kernel as a binary message, and draws what comes back:
// for the demo's four effects the person's matte, from which the page composites the effect over
// the frame it kept (composeMatte below; the frame travels at the size the model works at), for
// the others the picture the kernel drew. The protocol is described in bgkit/live/protocol.py.
//
// Rules: at most `max_in_flight` frames on their way (default 1); camera frames that come while
// the kernel is busy are dropped, never queued (the freshest one is sent as soon as a reply
// arrives); a frame not answered within `timeout_ms` is given up so a lost reply cannot stop the
// loop. If the widget is shown twice, the first view runs the camera and the others mirror it.

// widget instance key -> { views: [view, ...], shared: {...} }. anywidget hands every view its own
// model proxy, so views of one widget are matched by the widget's `_view_key`; the map lives on
// globalThis in case the module is evaluated more than once.
const HUBS = (globalThis.__bgkitLiveHubs = globalThis.__bgkitLiveHubs || new Map());
const REF = "IPY_MODEL_";

// ---------------------------------------------------------------- compat
// Everything this widget takes from private parts of JupyterLab / Notebook 7 and ipywebrtc is in
// this section, feature-checked: where a frontend lacks something, the widget falls back to the
// public path, says why in `frontend` (the kernel and the status line show it), and keeps working.
// The kernel's half is bgkit/live/jupyter_compat.py.
const compat = {
  // Comms over kernel subshells (@jupyterlab/services >= 4.4 with ipykernel >= 7): widget messages
  // then go to a kernel thread of their own, so frames are processed while a cell runs. The
  // subshell is only there once `subshellStarted` resolves; anything sent before goes to the main
  // shell and waits behind running cells. Resolves to {subshells, reason} within ~3 s.
  async commChannel(model) {
    const no = (reason) => ({ subshells: false, reason });
    try {
      const id = model.get("_model_ref");
      if (!id || !model.widget_manager || typeof model.widget_manager.get_model !== "function")
        return no("this frontend gives widgets no handle on their comm");
      const real = await model.widget_manager.get_model(id);
      const c = real && real.comm && real.comm.jsServicesComm; // private: @jupyter-widgets/base's shim
      if (!c || !("subshellStarted" in c))
        return no("this frontend does not send widget messages over kernel subshells (JupyterLab >= 4.5 or Notebook >= 7.5 does)");
      if (c.commsOverSubshells === "disabled")
        return no("comms over subshells are turned off in the settings (Settings > Kernel)");
      const k = c._kernel; // private: the kernel connection, to wait for its kernel_info reply
      if (k && k.info) await Promise.race([k.info, new Promise((r) => setTimeout(r, 3000))]);
      if (k && k.supportsSubshells === false) return no("the kernel has no subshells (ipykernel >= 7 has)");
      const started = await Promise.race([
        Promise.resolve(c.subshellStarted).then(() => true, () => false),
        new Promise((r) => setTimeout(() => r(false), 3000)),
      ]);
      return started ? { subshells: true, reason: "" } : no("the kernel did not start a subshell for this widget in 3 s");
    } catch (e) {
      return no(`could not check for subshells (${e && e.message || e})`);
    }
  },
  // ipywebrtc's MediaStreamModel caches its getUserMedia promise in the private `cameraStream`;
  // after the tracks were stopped (or a request failed) it must be dropped to ask again.
  forgetCachedStream(src) {
    if (src && "cameraStream" in src) src.cameraStream = null;
  },
};

// ---------------------------------------------------------------- compositing in the page
// The kernel answers the four demo effects with the person's matte (1 byte per pixel, at the size
// the model works at); the page scales it up and draws the effect over the camera frame it already
// has. composeMatte must draw what bgkit.live.matte.compose_matte draws (the pipeline's own
// drawing, bgkit.pipeline.draw): a browser test holds the two to a small tolerance.

// transport "auto": raw RGBA up to this many pixels, JPEG above. Measured (selfie 256x256 and RVM
// 640x480, page compositing, one frame in flight): a 256 kB RGBA frame's messages take ~13 ms, and
// a 640x480 one (1.2 MB) 48 ms, where its JPEG (32 kB) takes 12 ms plus ~14 ms to encode and 2.4 ms
// to decode: 18.0 against 12.2 frames/s.
const RGBA_MAX_PIXELS = 100000;

// Per-pixel buffers and canvases are kept between frames (a frame allocated ~10 MB of typed arrays
// and three canvases, and the garbage collector took 2-3 ms a frame). Everything here runs
// synchronously and its result is used before the next call: a picture composeMatte returns is
// valid until it is called again.
const SCRATCH = new Map();
function scratch(name, Type, n) {
  let b = SCRATCH.get(name);
  if (!b || b.length !== n || !(b instanceof Type)) { b = new Type(n); SCRATCH.set(name, b); }
  return b;
}
function scratchCanvas(name, W, H) {
  let c = SCRATCH.get(name);
  if (!c) { c = new OffscreenCanvas(W, H); SCRATCH.set(name, c); }
  else if (c.width !== W || c.height !== H) { c.width = W; c.height = H; }
  return c;
}

// Sample positions and weights along one axis (torch's align_corners=False, edges clamped).
function axisTaps(n, size) {
  const key = `taps ${n} ${size}`;
  let t = SCRATCH.get(key);
  if (t) return t;
  const i0 = new Int32Array(size), i1 = new Int32Array(size), l = new Float32Array(size), s = n / size;
  for (let x = 0; x < size; x++) {
    let src = (x + 0.5) * s - 0.5;
    if (src < 0) src = 0;
    const i = Math.floor(src);
    i0[x] = i; i1[x] = i < n - 1 ? i + 1 : i; l[x] = Math.min(Math.max(src - i, 0), 1);
  }
  t = { i0, i1, l };
  SCRATCH.set(key, t);
  return t;
}

// Bilinear scaling of an (mh, mw) byte matte to (H, W), pixel centres aligned and edges clamped
// (torch's align_corners=False), in byte units.
function upsampleMatte(matte, mw, mh, W, H) {
  const up = scratch("up", Float32Array, W * H);
  const { i0: x0, i1: x1, l: lx } = axisTaps(mw, W);
  const { i0: y0, i1: y1, l: wy } = axisTaps(mh, H);
  const row0 = scratch("row0", Float32Array, W), row1 = scratch("row1", Float32Array, W);
  let cached0 = -1, cached1 = -1;
  const fillRow = (row, y) => {
    const o = y * mw;
    for (let x = 0; x < W; x++) {
      const a = matte[o + x0[x]], b = matte[o + x1[x]];
      row[x] = a + lx[x] * (b - a);
    }
  };
  for (let y = 0; y < H; y++) {
    const j = y0[y], j1 = y1[y], ly = wy[y];
    if (cached0 !== j) { fillRow(row0, j); cached0 = j; }
    if (cached1 !== j1) { fillRow(row1, j1); cached1 = j1; }
    const o = y * W;
    for (let x = 0; x < W; x++) up[o + x] = (1 - ly) * row0[x] + ly * row1[x];
  }
  return up;
}

// Gaussian blur (standard deviation `sigma` px) of straight-alpha RGBA pixels by the canvas's
// blur filter, which works on premultiplied colours: the colours come back as
// blur(rgb * a) / blur(a) and the alpha as blur(a). Edge pixels are replicated outwards first,
// as bgkit's blurs do. Returns straight-alpha RGBA bytes.
function canvasBlur(rgba, W, H, sigma) {
  const pad = Math.ceil(3 * sigma) + 1;
  const src = scratchCanvas("blur src", W, H);
  src.getContext("2d").putImageData(new ImageData(rgba, W, H), 0, 0);
  const big = scratchCanvas("blur big", W + 2 * pad, H + 2 * pad);
  const b = big.getContext("2d");
  b.clearRect(0, 0, big.width, big.height);  // kept from the last frame: draw onto nothing
  b.imageSmoothingEnabled = false;
  b.drawImage(src, pad, pad);
  b.drawImage(src, 0, 0, 1, H, 0, pad, pad, H);
  b.drawImage(src, W - 1, 0, 1, H, pad + W, pad, pad, H);
  b.drawImage(src, 0, 0, W, 1, pad, 0, W, pad);
  b.drawImage(src, 0, H - 1, W, 1, pad, pad + H, W, pad);
  b.drawImage(src, 0, 0, 1, 1, 0, 0, pad, pad);
  b.drawImage(src, W - 1, 0, 1, 1, pad + W, 0, pad, pad);
  b.drawImage(src, 0, H - 1, 1, 1, 0, pad + H, pad, pad);
  b.drawImage(src, W - 1, H - 1, 1, 1, pad + W, pad + H, pad, pad);
  const out = scratchCanvas("blur out", W, H);
  const o = out.getContext("2d", { willReadFrequently: true });
  o.clearRect(0, 0, W, H);
  o.filter = `blur(${sigma}px)`;
  o.drawImage(big, -pad, -pad);
  o.filter = "none";
  return o.getImageData(0, 0, W, H).data;
}

// The alpha blurred by `sigma` px (edge_blur_amount), as 0..1 floats.
function blurAlpha(alpha, W, H, sigma) {
  const n = W * H, rgba = scratch("blur alpha in", Uint8ClampedArray, n * 4);
  for (let i = 0; i < n; i++) { rgba[i * 4 + 3] = Math.round(alpha[i] * 255); }
  const blurred = canvasBlur(rgba, W, H, sigma);
  const out = scratch("blur alpha out", Float32Array, n);
  for (let i = 0; i < n; i++) out[i] = blurred[i * 4 + 3] / 255;
  return out;
}

// A value in byte units clamped to 0..255 and rounded half up (bgkit's uint8 conversion).
const toByte = (v) => (v <= 0 ? 0 : v >= 255 ? 255 : (v + 0.5) | 0);
const lerpByte = (bg, fg, a) => toByte(bg + a * (fg - bg));

// lerpByte of every byte value towards colour c (3 channels) by weight w, as a 768-byte table
// (the mask's two classes each blend by one weight: one lookup per channel instead of a lerp).
function lerpTable(name, c, w) {
  const t = scratch(name, Uint8Array, 768);
  for (let k = 0; k < 3; k++) for (let v = 0; v < 256; v++) t[k * 256 + v] = w === 0 ? v : lerpByte(v, c[k], w);
  return t;
}

// frame: ImageData (W x H) of the camera picture; matte: Uint8Array (mw x mh); look: the settings
// (bgkit.live.matte.look); background: the replacement picture, RGB bytes W x H x 3, or null.
// Returns an ImageData W x H (transparent where "cutout" makes it so), not yet mirrored; its
// pixels are valid until the next call.
export function composeMatte(frame, matte, mw, mh, look, background = null) {
  const W = frame.width, H = frame.height, n = W * H;
  const px = frame.data;
  const up = upsampleMatte(matte, mw, mh, W, H);
  const out = scratch("out", Uint8ClampedArray, n * 4);
  const effect = look.effect;
  const edge = look.edge_blur_amount || 0;
  if (effect === "mask") {
    const [fg, bg] = [look.foreground, look.background];
    const blur = look.mask_blur_amount || 0;
    if (blur <= 0) {
      const on = lerpTable("mask on", fg, (fg[3] / 255) * look.opacity);
      const off = lerpTable("mask off", bg, (bg[3] / 255) * look.opacity);
      for (let i = 0, j = 0; i < n; i++, j += 4) {
        const t = up[i] >= 127.5 ? on : off;
        out[j] = t[px[j]]; out[j + 1] = t[256 + px[j + 1]]; out[j + 2] = t[512 + px[j + 2]]; out[j + 3] = 255;
      }
    } else {
      const m = scratch("mask colours", Uint8ClampedArray, n * 4);
      for (let i = 0; i < n; i++) {
        const c = up[i] >= 127.5 ? fg : bg, j = i * 4;
        m[j] = c[0]; m[j + 1] = c[1]; m[j + 2] = c[2]; m[j + 3] = c[3];
      }
      const bl = canvasBlur(m, W, H, blur);
      for (let i = 0; i < n; i++) {
        const j = i * 4, a = (bl[j + 3] / 255) * look.opacity;
        for (let k = 0; k < 3; k++) out[j + k] = lerpByte(px[j + k], bl[j + k], a);
        out[j + 3] = 255;
      }
    }
    return new ImageData(out, W, H);
  }
  let alpha = scratch("alpha", Float32Array, n);
  for (let i = 0; i < n; i++) alpha[i] = Math.min(Math.max(up[i] / 255, 0), 1);
  if (effect === "bokeh") {
    const sigma = look.background_blur_amount || 0;
    let bgpx = px, den = null;
    if (sigma > 0) {
      const w = scratch("bokeh weighted", Uint8ClampedArray, n * 4);
      for (let i = 0; i < n; i++) {
        const j = i * 4;
        w[j] = px[j]; w[j + 1] = px[j + 1]; w[j + 2] = px[j + 2]; w[j + 3] = Math.round((1 - alpha[i]) * 255);
      }
      const bl = canvasBlur(w, W, H, sigma);
      bgpx = scratch("bokeh background", Uint8ClampedArray, n * 4);
      den = scratch("bokeh weight", Float32Array, n);
      for (let i = 0; i < n; i++) {
        const j = i * 4;
        den[i] = bl[j + 3] / 255;
        if (bl[j + 3] === 0) { bgpx[j] = px[j]; bgpx[j + 1] = px[j + 1]; bgpx[j + 2] = px[j + 2]; }
        else { bgpx[j] = bl[j]; bgpx[j + 1] = bl[j + 1]; bgpx[j + 2] = bl[j + 2]; }
      }
    }
    if (edge > 0 && edge === sigma && den) { for (let i = 0; i < n; i++) alpha[i] = 1 - den[i]; }
    else if (edge > 0) alpha = blurAlpha(alpha, W, H, edge);
    for (let i = 0, j = 0; i < n; i++, j += 4) {
      const a = alpha[i];
      for (let k = j; k < j + 3; k++) {
        out[k] = lerpByte(bgpx[k], px[k], a);
      }
      out[j + 3] = 255;
    }
    return new ImageData(out, W, H);
  }
  if (edge > 0) alpha = blurAlpha(alpha, W, H, edge);
  if (effect === "replace") {
    const c = look.background;
    const ca = c[3] / 255;
    for (let i = 0, j = 0; i < n; i++, j += 4) {
      const a = alpha[i];
      for (let k = 0; k < 3; k++) {
        const f = px[j + k];
        const b = background ? background[i * 3 + k] : ca < 1 ? f + ca * (c[k] - f) : c[k];
        out[j + k] = lerpByte(b, f, a);
      }
      out[j + 3] = 255;
    }
    return new ImageData(out, W, H);
  }
  // cutout
  for (let i = 0, j = 0; i < n; i++, j += 4) {
    out[j] = px[j]; out[j + 1] = px[j + 1]; out[j + 2] = px[j + 2];
    out[j + 3] = toByte(alpha[i] * 255);
  }
  return new ImageData(out, W, H);
}

function hubFor(model) {
  const key = model.get("_view_key") || "?";
  let hub = HUBS.get(key);
  if (!hub) {
    hub = { key, views: [], shared: { fps: 0, rtt50: null, modelMs: null, size: "", format: "", kB: 0, error: "", lastStream: null, pingMs: null, channel: null, kind: "", flip: false } };
    HUBS.set(key, hub);
  }
  return hub;
}

function explainCameraError(err) {
  const name = (err && err.name) || "";
  const text = (err && err.message) || String(err);
  if (name === "NotAllowedError" || name === "SecurityError" || name === "PermissionDeniedError")
    return ["denied", "Camera access was denied. Allow the camera for this page (site settings in the address bar), then press Start."];
  if (name === "NotFoundError" || name === "DevicesNotFoundError" || name === "OverconstrainedError")
    return ["no-camera", "No camera was found. Plug one in (or check its permissions), then press Start."];
  if (name === "NotReadableError" || name === "TrackStartError" || name === "AbortError")
    return ["busy", "The camera could not be started: another program may be using it. Close it, then press Start."];
  if (name === "Unavailable")
    return ["unavailable", text];
  return ["error", `Could not start the camera (${name ? name + ": " : ""}${text}).`];
}

function asBytes(buf) {
  if (!buf) return null;
  if (buf instanceof ArrayBuffer) return new Uint8Array(buf);
  if (ArrayBuffer.isView(buf)) return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  return null;
}

function percentile(values, q) {
  if (!values.length) return null;
  const s = [...values].sort((a, b) => a - b);
  const i = Math.min(s.length - 1, Math.max(0, Math.round((q / 100) * (s.length - 1))));
  return s[i];
}

function render({ model, el }) {
  // ---------------------------------------------------------------- DOM
  const root = document.createElement("div");
  root.className = "bgkit-live";
  const stage = document.createElement("div");
  stage.className = "bgkit-live-stage";
  const canvas = document.createElement("canvas");
  canvas.className = "bgkit-live-output";
  canvas.width = 640;
  canvas.height = 480;
  const ctx = canvas.getContext("2d");
  const overlay = document.createElement("div");
  overlay.className = "bgkit-live-message";
  const video = document.createElement("video");
  video.className = "bgkit-live-video";
  video.muted = true;
  video.playsInline = true;
  video.autoplay = true;
  video.setAttribute("playsinline", "");
  const status = document.createElement("div");
  status.className = "bgkit-live-status";
  const notice = document.createElement("div");
  notice.className = "bgkit-live-notice";
  stage.append(canvas, overlay, video);
  root.append(stage, status, notice);
  el.appendChild(root);

  const hub = hubFor(model);
  const shared = hub.shared;
  const view = { role: "mirror", becomeOwner: null, release: null, paint: null };
  hub.views.push(view);

  let disposed = false;
  let lastDrawn = 0; // seq of the picture on the canvas
  const shownTimes = []; // draw times (ms) in the last 2 s

  function showMessage(text, kind = "info") {
    overlay.textContent = text || "";
    overlay.dataset.kind = kind;
    overlay.style.display = text ? "flex" : "none";
  }
  function showNotice() {
    const n = model.get("notice") || "";
    notice.textContent = n;
    notice.style.display = n ? "block" : "none";
  }
  showMessage("");
  showNotice();

  // ---------------------------------------------------------------- drawing replies (all views)
  const backgrounds = new Map(); // replacement pictures sent by the kernel: "id WxH" -> RGB bytes
  function setFlip(flip) {
    // The page mirrors a picture it composited itself with CSS (free); the kernel's pictures come mirrored.
    const t = flip ? "scaleX(-1)" : "";
    if (canvas.style.transform !== t) canvas.style.transform = t;
  }
  function shown(seq) {
    lastDrawn = seq;
    const now = performance.now();
    shownTimes.push(now);
    while (shownTimes.length && shownTimes[0] < now - 2000) shownTimes.shift();
  }
  // a picture composited in the page (by this view, or by the view that runs the camera)
  function paint(picture, flip, seq) {
    if (disposed || seq < lastDrawn) return;
    if (canvas.width !== picture.width || canvas.height !== picture.height) { canvas.width = picture.width; canvas.height = picture.height; }
    ctx.putImageData(picture, 0, 0);
    setFlip(flip);
    shared.flip = flip;
    shown(seq);
  }
  view.paint = paint;
  async function drawResult(msg, buffers, frame) {
    const bytes = asBytes(buffers && buffers[0]);
    if (!bytes) throw new Error("result without picture");
    const w = msg.width, h = msg.height;
    if (msg.kind === "matte") {
      if (msg.background_image) {
        const b = msg.background_image, pic = asBytes(buffers[1]);
        if (pic && pic.byteLength === b.width * b.height * 3) {
          backgrounds.clear();
          backgrounds.set(`${b.id} ${b.width}x${b.height}`, new Uint8Array(pic));
        }
      }
      if (!frame) return false; // a matte for a frame this view does not have (another view's camera)
      if (bytes.byteLength !== w * h) throw new Error(`a ${w}x${h} matte has ${bytes.byteLength} bytes`);
      if (disposed || msg.seq < lastDrawn) return false;
      const t0 = performance.now();
      const look = msg.look;
      const bgKey = look.background_image ? `${look.background_image} ${frame.width}x${frame.height}` : null;
      const picture = composeMatte(frame, bytes, w, h, look, bgKey ? backgrounds.get(bgKey) || null : null);
      paint(picture, look.flip_horizontal, msg.seq);
      loop.composeMs = performance.now() - t0;
      // the other views of this widget have no camera frame: show them the same picture
      for (const other of hub.views) if (other !== view && other.paint) other.paint(picture, look.flip_horizontal, msg.seq);
      return true;
    } else {
      let bitmap = null;
      if (msg.format !== "rgba") {
        bitmap = await createImageBitmap(new Blob([bytes], { type: "image/" + msg.format }));
      }
      if (disposed || msg.seq < lastDrawn) { if (bitmap) bitmap.close(); return false; }
      if (canvas.width !== w || canvas.height !== h) { canvas.width = w; canvas.height = h; }
      setFlip(false);
      shared.flip = false;
      if (bitmap) {
        ctx.clearRect(0, 0, w, h);
        ctx.drawImage(bitmap, 0, 0);
        bitmap.close();
      } else {
        if (bytes.byteLength !== w * h * 4) throw new Error(`rgba picture of ${w}x${h} has ${bytes.byteLength} bytes`);
        ctx.putImageData(new ImageData(new Uint8ClampedArray(bytes.buffer, bytes.byteOffset, bytes.byteLength), w, h), 0, 0);
      }
      loop.composeMs = null;
    }
    shown(msg.seq);
    return true;
  }

  function fpsShown() {
    const now = performance.now();
    while (shownTimes.length && shownTimes[0] < now - 2000) shownTimes.shift();
    if (shownTimes.length < 2) return 0;
    const span = shownTimes[shownTimes.length - 1] - shownTimes[0];
    // frames over the window, counting the gap since the last frame so a stall shows as a drop
    return span > 0 ? ((shownTimes.length - 1) * 1000) / Math.max(span, now - shownTimes[0]) : 0;
  }

  // ---------------------------------------------------------------- the camera loop (owner only)
  const newCanvas = (w, h) => {
    if (typeof OffscreenCanvas === "function") return new OffscreenCanvas(w, h);
    const c = document.createElement("canvas"); c.width = w; c.height = h; return c;
  };
  const loop = {
    stream: null, starting: null, on: false, vfc: null, raf: null, seq: 0,
    inflight: new Map(), frames: new Map(), newFrame: false, dropped: 0, timeouts: 0, errors: 0,
    rtts: [], rttHist: [], lastReplyAt: 0, lastSentAt: 0, backoffUntil: 0, stalled: false,
    // the frame at the picture's size (kept to composite on), and scaled to the size the kernel wants
    disp: newCanvas(640, 480), dctx: null, grab: newCanvas(640, 480), gctx: null,
    want: null, grabMs: null, encodeMs: null, drawMs: null, composeMs: null,
  };

  // Wait (at most ~3 s) until widget messages can go to a kernel subshell, then tell the kernel
  // what this frontend offers (see compat.commChannel); frames flow either way.
  let commReadyPromise = null;
  function commReady() {
    if (!commReadyPromise) {
      commReadyPromise = compat.commChannel(model).then((found) => {
        shared.channel = found;
        try { model.set("frontend", { subshells: found.subshells, reason: found.reason }); model.save_changes(); } catch (e) { /* kernel gone */ }
        return found;
      });
    }
    return commReadyPromise;
  }

  // One message to the kernel: the state, its message and any other traits (e.g. running=false)
  // change together, so Python never sees a failed camera that is still "running".
  function setState(state, message, extra = {}) {
    if (view.role !== "owner" || disposed) return;
    try {
      // `extra` first: the kernel applies a message's traits in order, so by the time Python
      // can read the new camera_state, `running` has already changed too.
      for (const [key, value] of Object.entries(extra)) model.set(key, value);
      model.set("camera_state", state);
      model.set("camera_message", message || "");
      model.save_changes(); // one message for all of the above
    } catch (e) { /* kernel gone */ }
  }

  async function acquireStream() {
    const ref = model.get("source");
    if (typeof ref === "string" && ref.startsWith(REF)) {
      const src = await model.widget_manager.get_model(ref.slice(REF.length));
      if (!src || typeof src.captureStream !== "function")
        throw Object.assign(new Error("the source widget cannot give a MediaStream"), { name: "Unavailable" });
      try {
        let s = await src.captureStream();
        const vt = s && s.getVideoTracks ? s.getVideoTracks() : [];
        if (vt.length && vt.every((t) => t.readyState === "ended")) {
          compat.forgetCachedStream(src); // ask again after a stop
          s = await src.captureStream();
        }
        if (!s || !s.getVideoTracks || !s.getVideoTracks().length)
          throw Object.assign(new Error("the source gives no video track"), { name: "NotFoundError" });
        return s;
      } catch (err) {
        compat.forgetCachedStream(src); // don't keep a failed request cached
        throw err;
      }
    }
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia)
      throw Object.assign(new Error("This page cannot use a camera: browsers allow it only on https:// or http://localhost pages."), { name: "Unavailable" });
    return navigator.mediaDevices.getUserMedia(model.get("constraints"));
  }

  function releaseStream() {
    const s = loop.stream;
    loop.stream = null;
    if (s) s.getTracks().forEach((t) => { try { t.stop(); } catch (e) { /* ignore */ } });
    try { video.pause(); } catch (e) { /* ignore */ }
    video.srcObject = null;
  }

  function cancelCallbacks() {
    if (loop.vfc !== null && video.cancelVideoFrameCallback) video.cancelVideoFrameCallback(loop.vfc);
    if (loop.raf !== null) cancelAnimationFrame(loop.raf);
    loop.vfc = loop.raf = null;
  }

  async function start() {
    if (view.role !== "owner" || disposed || loop.on || loop.starting) return;
    showMessage("Starting the camera… (if the browser asks, allow the camera for this page)");
    loop.starting = (async () => {
      await commReady();
      if (disposed || view.role !== "owner" || !model.get("running")) return;
      setState("starting", "");
      const pinged = shared.pingMs === null ? measureTransport() : Promise.resolve();
      let stream;
      try {
        stream = await acquireStream();
        await Promise.race([pinged, new Promise((r) => setTimeout(r, 1500))]);
      } catch (err) {
        const [state, text] = explainCameraError(err);
        if (!disposed) {
          showMessage(text, "error");
          setState(state, text, { running: false });
        }
        return;
      }
      if (disposed || view.role !== "owner" || !model.get("running")) {
        stream.getTracks().forEach((t) => t.stop());
        return;
      }
      loop.stream = stream;
      shared.lastStream = stream;
      stream.getVideoTracks().forEach((t) => t.addEventListener("ended", () => {
        if (loop.stream === stream) stop("stopped", "The camera was switched off or unplugged. Press Start to try again.");
      }));
      video.srcObject = stream;
      try { await video.play(); } catch (err) { /* autoplay of a muted video is allowed; frames still come */ }
      loop.on = true;
      loop.lastReplyAt = performance.now();
      loop.stalled = false;
      showMessage("");
      setState("running", "");
      schedule();
    })();
    try { await loop.starting; } finally { loop.starting = null; }
  }

  function stop(state = "stopped", text = "Camera stopped: press Start to run it again.") {
    loop.on = false;
    cancelCallbacks();
    loop.inflight.clear();
    loop.frames.clear();
    loop.newFrame = false;
    releaseStream();
    if (!disposed) {
      showMessage(text, state === "stopped" ? "info" : "error");
      setState(state, state === "stopped" ? "" : text);
    }
  }

  function schedule() {
    if (!loop.on) return;
    if (typeof video.requestVideoFrameCallback === "function") loop.vfc = video.requestVideoFrameCallback(onVideoFrame);
    else loop.raf = requestAnimationFrame(onVideoFrame);
  }

  function onVideoFrame() {
    loop.vfc = loop.raf = null;
    if (!loop.on) return;
    schedule();
    if (loop.newFrame) loop.dropped += 1; // the previous camera frame was never sent: dropped
    loop.newFrame = true;
    pump();
  }

  function expire(now) {
    const limit = model.get("timeout_ms") || 1000;
    for (const [seq, t] of loop.inflight) {
      if (now - t > limit) { loop.inflight.delete(seq); loop.frames.delete(seq); loop.timeouts += 1; }
    }
    const silentFor = now - loop.lastReplyAt;
    if (loop.on && loop.lastSentAt > loop.lastReplyAt && silentFor > 3 * limit && !loop.stalled) {
      loop.stalled = true;
      showMessage("The kernel is not answering (busy, or restarted?). The picture resumes when it answers.", "warn");
    }
  }

  function pump() {
    if (!loop.on || !loop.newFrame) return;
    const now = performance.now();
    expire(now);
    if (loop.inflight.size >= Math.max(1, model.get("max_in_flight") || 1)) return; // busy: wait, newest frame wins
    if (now < loop.backoffUntil) return;
    if (video.readyState < 2 || !video.videoWidth) return;
    loop.newFrame = false;
    const seq = ++loop.seq;
    loop.inflight.set(seq, now); // hold the slot while encoding
    sendFrame(seq, now).catch((err) => {
      loop.inflight.delete(seq);
      reportError(`could not send a frame: ${err && err.message || err}`);
    });
  }

  async function sendFrame(seq, t) {
    const vw = video.videoWidth, vh = video.videoHeight;
    const maxW = model.get("frame_width") || vw;
    const scale = Math.min(1, maxW / vw);
    const dw = Math.max(1, Math.round(vw * scale)), dh = Math.max(1, Math.round(vh * scale));
    const pageComposites = model.get("compositing") !== "kernel";
    const want = loop.want;
    const asMatte = pageComposites && want && want.kind === "matte";
    const w = asMatte ? want.width : dw, h = asMatte ? want.height : dh;
    const transport = model.get("transport");
    const fmt = transport === "auto" ? (asMatte && w * h <= RGBA_MAX_PIXELS ? "rgba" : "jpeg") : transport;
    // the picture-sized frame: kept to composite the reply on
    const d = loop.disp;
    if (d.width !== dw || d.height !== dh) { d.width = dw; d.height = dh; loop.dctx = null; }
    if (!loop.dctx) loop.dctx = d.getContext("2d", { willReadFrequently: true });
    loop.dctx.drawImage(video, 0, 0, dw, dh);
    let frame = null;
    if (pageComposites) {
      frame = loop.dctx.getImageData(0, 0, dw, dh);
      loop.frames.set(seq, frame);
    }
    // what the kernel gets: the same, or scaled to the size the model works at
    let src = d, sctx = loop.dctx;
    if (w !== dw || h !== dh) {
      const g = loop.grab;
      if (g.width !== w || g.height !== h) { g.width = w; g.height = h; loop.gctx = null; }
      if (!loop.gctx) loop.gctx = g.getContext("2d", { willReadFrequently: true });
      loop.gctx.drawImage(d, 0, 0, w, h);
      src = g; sctx = loop.gctx;
    }
    loop.grabMs = performance.now() - t;
    let buf;
    if (fmt === "jpeg") {
      const q = (model.get("jpeg_quality") || 80) / 100;
      // OffscreenCanvas.convertToBlob encodes at once; canvas.toBlob waits for idle time
      const blob = src.convertToBlob
        ? await src.convertToBlob({ type: "image/jpeg", quality: q })
        : await new Promise((resolve) => src.toBlob(resolve, "image/jpeg", q));
      if (!blob) throw new Error("JPEG encoding failed");
      buf = await blob.arrayBuffer();
    } else {
      buf = (src === d && frame ? frame : sctx.getImageData(0, 0, w, h)).data.buffer.slice(0);
    }
    loop.encodeMs = performance.now() - t - loop.grabMs;
    if (!loop.on || !loop.inflight.has(seq)) { loop.frames.delete(seq); return; } // stopped or timed out meanwhile
    const r2 = (x) => (x === null || x === undefined ? null : Math.round(x * 100) / 100);
    const client = {
      fps: r2(fpsShown()), rtt_ms: loop.rtts.splice(0), dropped: loop.dropped,
      timeouts: loop.timeouts, format: fmt, grab_ms: r2(loop.grabMs), encode_ms: r2(loop.encodeMs),
      draw_ms: r2(loop.drawMs), composite_ms: r2(loop.composeMs), ping_ms: r2(shared.pingMs),
    };
    const accept = pageComposites ? ["matte", "picture"] : ["picture"];
    try {
      model.send({ type: "frame", seq, t, width: w, height: h, format: fmt, display: [dw, dh], accept, client }, undefined, [buf]);
    } catch (err) {
      stop("disconnected", "Lost the connection to the kernel: the camera is released. Run the cell again to restart.");
      return;
    }
    loop.lastSentAt = performance.now();
  }

  function reportError(text) {
    shared.error = text;
    loop.errors += 1;
    if (loop.errors <= 3) console.warn("bgkit LiveBackground:", text);
  }

  // The picture as the person sees it (the canvas, mirrored where CSS mirrors it).
  function shownPicture() {
    const out = new OffscreenCanvas(canvas.width, canvas.height), o = out.getContext("2d");
    if (shared.flip) { o.translate(canvas.width, 0); o.scale(-1, 1); }
    o.drawImage(canvas, 0, 0);
    return out;
  }

  // ---------------------------------------------------------------- messages from the kernel
  async function onMessage(msg, buffers) {
    if (disposed || !msg || typeof msg !== "object") return;
    try {
      if (msg.type === "result") {
        const mine = view.role === "owner" && !msg.simulated;
        const sentAt = mine ? loop.inflight.get(msg.seq) : undefined;
        const frame = mine ? loop.frames.get(msg.seq) : undefined;
        if (mine) {
          loop.inflight.delete(msg.seq);
          for (const s of loop.frames.keys()) if (s <= msg.seq) loop.frames.delete(s);
          if (msg.want) loop.want = msg.want;
          loop.lastReplyAt = performance.now();
          if (loop.stalled) { loop.stalled = false; showMessage(""); }
          pump(); // send the newest camera frame while this one is drawn
        }
        if (msg.simulated && loop.on) return; // the live picture wins
        const receivedAt = performance.now();
        const drawn = await drawResult(msg, buffers, frame);
        if (drawn) {
          if (mine) loop.drawMs = performance.now() - receivedAt;
          shared.error = "";
          if (mine) {
            const rtt = performance.now() - (sentAt !== undefined ? sentAt : msg.t);
            loop.rtts.push(Math.round(rtt * 100) / 100);
            if (loop.rtts.length > 50) loop.rtts.splice(0, loop.rtts.length - 50);
            loop.rttHist.push(rtt);
            if (loop.rttHist.length > 100) loop.rttHist.shift();
            shared.rtt50 = percentile(loop.rttHist, 50);
          }
          shared.modelMs = msg.model_ms;
          shared.size = `${msg.width}×${msg.height}`;
          shared.format = msg.format;
          shared.kind = msg.kind || "picture";
          shared.kB = Math.round((msg.bytes_in || 0) / 1024);
          shared.model = msg.model;
        }
      } else if (msg.type === "snapshot" && view.role === "owner") {
        // the kernel asks for the picture as shown (mirrored where it is shown mirrored), as PNG
        const blob = await shownPicture().convertToBlob({ type: "image/png" });
        model.send({ type: "snapshot", id: msg.id, width: canvas.width, height: canvas.height, drawn: lastDrawn },
                   undefined, [await blob.arrayBuffer()]);
      } else if (msg.type === "pong") {
        const resolve = pings.get(msg.t);
        if (resolve) { pings.delete(msg.t); resolve(performance.now() - msg.t); }
      } else if (msg.type === "error") {
        reportError(msg.error || "error");
        if (view.role === "owner") {
          if (msg.seq !== null && msg.seq !== undefined) loop.inflight.delete(msg.seq);
          loop.lastReplyAt = performance.now();
          loop.backoffUntil = performance.now() + 250; // a failing kernel gets 4 frames/s, not 30
          setTimeout(pump, 260);
        }
      }
    } catch (err) {
      reportError(`could not draw a frame: ${err && err.message || err}`);
      if (view.role === "owner") pump();
    }
  }
  model.on("msg:custom", onMessage);

  // Round trip of an empty message page -> kernel -> page (ms): the transport's share of the
  // latency (for the statistics; bgkit's server extension keeps it at a few ms, see bgkit/live/server.py).
  async function measureTransport() {
    const times = [];
    for (let i = 0; i < 5; i++) {
      const ms = await ping(1000);
      if (ms !== null) times.push(ms);
    }
    if (times.length) shared.pingMs = percentile(times, 50);
  }
  const pings = new Map();
  function ping(timeoutMs = 2000) {
    return new Promise((resolve) => {
      const t = performance.now();
      pings.set(t, resolve);
      try { model.send({ type: "ping", t }); } catch (e) { pings.delete(t); resolve(null); return; }
      setTimeout(() => { if (pings.delete(t)) resolve(null); }, timeoutMs);
    });
  }

  // ---------------------------------------------------------------- status line
  function updateStatus() {
    if (disposed) return;
    if (view.role === "owner") { expire(performance.now()); pump(); }
    const fps = fpsShown();
    if (view.role === "owner") shared.fps = fps;
    // for people: how smooth (frames per second) and how late (ms from the camera to the screen)
    const parts = [`${fps.toFixed(1)} frames/s`];
    if (shared.rtt50 !== null) parts.push(`${Math.round(shared.rtt50)} ms behind the camera`);
    if (view.role === "owner" && loop.on && loop.timeouts) parts.push(`${loop.timeouts} frame${loop.timeouts === 1 ? "" : "s"} lost`);
    if (view.role === "mirror") parts.push("(second view: the camera runs in the first one)");
    if (shared.channel && !shared.channel.subshells && shared.fps > 0)
      parts.push(`frames pause while a cell runs: ${shared.channel.reason}`);
    status.textContent = parts.join(" · ");
    // the details, on hover
    const details = [];
    if (shared.model) details.push(`model ${shared.model}`);
    if (shared.modelMs !== null && shared.modelMs !== undefined) details.push(`${Math.round(shared.modelMs)} ms per frame`);
    if (shared.size) details.push(shared.kind === "matte" ? `matte ${shared.size}, composited in the page`
                                                            : `picture ${shared.size} ${shared.format}, drawn by the kernel`);
    if (shared.pingMs !== null) details.push(`kernel ping ${Math.round(shared.pingMs)} ms`);
    status.title = details.join(" · ");
    status.dataset.error = shared.error ? "1" : "";
    if (shared.error) status.textContent += ` · ⚠ ${shared.error}`;
  }
  const statusTimer = setInterval(updateStatus, 250);

  // ---------------------------------------------------------------- roles, model events
  view.becomeOwner = () => {
    view.role = "owner";
    root.dataset.role = "owner";
    if (model.get("running")) start();
    else { showMessage("Camera off: press Start."); commReady().then(() => setState("stopped", "")); }
  };
  view.release = () => stop("stopped");

  if (hub.views[0] === view) view.becomeOwner();
  else {
    root.dataset.role = "mirror";
    showMessage("");
  }

  model.on("change:running", () => {
    if (view.role !== "owner") return;
    if (model.get("running")) start();
    else if (loop.on || loop.stream) stop("stopped");
    else if (overlay.dataset.kind !== "error") { showMessage("Camera off: press Start."); setState("stopped", ""); }
    // else: keep the message saying why the camera could not start (denied, none, busy ...)
  });
  model.on("change:source", () => {
    if (view.role === "owner" && (loop.on || loop.stream)) { stop("stopped", "Switching camera…"); start(); }
  });
  model.on("change:notice", showNotice);
  model.on("comm_live_update", () => {
    // the kernel restarted or went away: give the camera back and say so
    if (disposed) return;
    if (view.role === "owner" && (loop.on || loop.stream || loop.starting)) {
      loop.on = false; cancelCallbacks(); loop.inflight.clear(); releaseStream();
    }
    showMessage("The kernel was restarted or disconnected: the camera is released. Run the cell again for a new live view.", "error");
  });

  // Hooks for tests and for the curious (document.querySelector(".bgkit-live").bgkitLive).
  root.bgkitLive = {
    get role() { return view.role; },
    get running() { return loop.on; },
    get stream() { return loop.stream; },
    get lastStream() { return shared.lastStream; },
    get video() { return video; },
    get canvas() { return canvas; },
    // the picture as shown, as a PNG data URL
    picture: async () => {
      const blob = await shownPicture().convertToBlob({ type: "image/png" });
      const buf = new Uint8Array(await blob.arrayBuffer());
      let s = "";
      for (let i = 0; i < buf.length; i += 8192) s += String.fromCharCode.apply(null, buf.subarray(i, i + 8192));
      return "data:image/png;base64," + btoa(s);
    },
    ping,
    stats: () => ({
      role: view.role, running: loop.on, fps: fpsShown(), rttP50: percentile(loop.rttHist, 50),
      rttP95: percentile(loop.rttHist, 95), sent: loop.seq, drawnSeq: lastDrawn, dropped: loop.dropped,
      timeouts: loop.timeouts, errors: loop.errors, inflight: loop.inflight.size, error: shared.error,
      tracks: (shared.lastStream ? shared.lastStream.getTracks() : []).map((t) => ({ kind: t.kind, readyState: t.readyState })),
      message: overlay.textContent, pingMs: shared.pingMs, kind: shared.kind, want: loop.want,
      grabMs: loop.grabMs, encodeMs: loop.encodeMs, composeMs: loop.composeMs, drawMs: loop.drawMs,
    }),
  };

  return () => {
    // the view is removed (cell cleared, widget closed, page closed): stop everything it started
    disposed = true;
    clearInterval(statusTimer);
    const wasOwner = view.role === "owner";
    if (wasOwner) { loop.on = false; cancelCallbacks(); loop.inflight.clear(); releaseStream(); }
    const i = hub.views.indexOf(view);
    if (i >= 0) hub.views.splice(i, 1);
    if (wasOwner && hub.views.length) hub.views[0].becomeOwner();
    if (!hub.views.length) HUBS.delete(hub.key);
  };
}

export default { render };
