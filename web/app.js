// mope-clip browser page: loads one or two exported folders (?a=URL&b=URL, else /models.json from `mope-clip serve`),
// tokenises the labels (tokenizer.js), pre-processes the image on a canvas per preprocessor_config.json, runs
// onnx/model.onnx with onnxruntime-web (wasm) and shows softmax(logits_per_image) with the time taken.
// Test hook: window.mope (ready, tokenize, pixels, classifyPixels).
import { ClipTokenizer } from './tokenizer.js';

const $ = (id) => document.getElementById(id);
const statusEl = $('status');
let ort = null;
const panels = [];
let bitmap = null;
let runCount = 0;

function setStatus(text, state) {
  statusEl.textContent = text;
  statusEl.dataset.state = state;
}

async function fetchJson(url) {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return r.json();
}

/** Model folder URLs: ?a= and ?b= when given, else the folders `mope-clip serve` mounted. */
async function modelUrls() {
  const q = new URLSearchParams(location.search);
  const given = ['a', 'b'].map((k) => q.get(k)).filter(Boolean);
  if (given.length)
    return given.map((u) => ({ url: u.endsWith('/') ? u : u + '/', name: u.replace(/\/$/, '').split('/').pop() }));
  const j = await fetchJson('models.json');
  return j.models;
}

/** preprocessor_config.json → the numbers the canvas pipeline needs (dict or integer sizes, HF defaults). */
function parsePre(p, imageSize) {
  const edge = (s) => (typeof s === 'number' ? { shortest_edge: s } : (s ?? { shortest_edge: imageSize }));
  const crop =
    typeof p.crop_size === 'number'
      ? { height: p.crop_size, width: p.crop_size }
      : (p.crop_size ?? { height: imageSize, width: imageSize });
  return {
    doResize: p.do_resize !== false,
    size: edge(p.size),
    doCrop: p.do_center_crop !== false,
    crop,
    doRescale: p.do_rescale !== false,
    rescale: p.rescale_factor ?? 1 / 255,
    doNormalize: p.do_normalize !== false,
    mean: p.image_mean ?? [0.48145466, 0.4578275, 0.40821073],
    std: p.image_std ?? [0.26862954, 0.26130258, 0.27577711],
  };
}

/** Canvas pipeline: resize (shortest edge, high-quality smoothing), centre crop, rescale, normalise → [3,H,W]. */
function preprocess(img, pre) {
  const W0 = img.width,
    H0 = img.height;
  let rw = W0,
    rh = H0;
  if (pre.doResize) {
    if (pre.size.shortest_edge) {
      const s = pre.size.shortest_edge;
      if (W0 <= H0) {
        rw = s;
        rh = Math.trunc((s * H0) / W0);
      } else {
        rh = s;
        rw = Math.trunc((s * W0) / H0);
      }
    } else {
      rw = pre.size.width;
      rh = pre.size.height;
    }
  }
  const ow = pre.doCrop ? pre.crop.width : rw,
    oh = pre.doCrop ? pre.crop.height : rh;
  const top = Math.floor((rh - oh) / 2),
    left = Math.floor((rw - ow) / 2);
  const canvas = document.createElement('canvas');
  canvas.width = ow;
  canvas.height = oh;
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  ctx.imageSmoothingEnabled = true;
  ctx.imageSmoothingQuality = 'high';
  // Outside the image (crop larger than the resized image) stays transparent black = HF's zero padding.
  ctx.drawImage(img, -left, -top, rw, rh);
  const rgba = ctx.getImageData(0, 0, ow, oh).data;
  const plane = ow * oh,
    out = new Float32Array(3 * plane);
  for (let c = 0; c < 3; c++) {
    const lut = new Float32Array(256);
    for (let v = 0; v < 256; v++) {
      let x = pre.doRescale ? Math.fround(v * pre.rescale) : v;
      if (pre.doNormalize) x = Math.fround(Math.fround(x - Math.fround(pre.mean[c])) / Math.fround(pre.std[c]));
      lut[v] = x;
    }
    for (let i = 0; i < plane; i++) out[c * plane + i] = lut[rgba[4 * i + c]];
  }
  return { pixels: out, height: oh, width: ow };
}

function softmax(xs) {
  const m = Math.max(...xs);
  const e = xs.map((x) => Math.exp(x - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / s);
}

function fmtMb(bytes) {
  return bytes ? `${(bytes / 1e6).toFixed(1)} MB` : '';
}

async function loadPanel(slot, info, suffix) {
  const el = panels[slot]?.el ?? document.createElement('div');
  el.className = 'panel';
  el.dataset.slot = String(slot);
  el.innerHTML = `<h2></h2><p class="meta">loading…</p><p class="time"></p><table><tbody></tbody></table>`;
  el.querySelector('h2').textContent = info.name;
  if (!panels[slot]) $('panels').append(el);
  const t0 = performance.now();
  const [config, preJson, tokJson] = await Promise.all(
    ['config.json', 'preprocessor_config.json', 'tokenizer.json'].map((f) => fetchJson(info.url + f)),
  );
  const file = `onnx/model${suffix}.onnx`;
  const resp = await fetch(info.url + file);
  if (!resp.ok) throw new Error(`${info.url}${file}: HTTP ${resp.status} (export with --quantize for q8 / fp16)`);
  const bytes = new Uint8Array(await resp.arrayBuffer());
  const session = await ort.InferenceSession.create(bytes, {
    executionProviders: ['wasm'],
    graphOptimizationLevel: 'all',
  });
  const vc = config.vision_config ?? {},
    tc = config.text_config ?? {};
  const tokenizer = ClipTokenizer.fromTokenizerJson(tokJson, tc.max_position_embeddings ?? 77);
  const pre = parsePre(preJson, vc.image_size ?? 224);
  const range = (xs) => (Math.min(...xs) === Math.max(...xs) ? `${xs[0]}` : `${Math.min(...xs)}–${Math.max(...xs)}`);
  const widths = (t, m) =>
    `${t.num_hidden_layers ?? '?'} layers, ` +
    (m?.heads || m?.intermediate
      ? `${range(m.heads ?? [t.num_attention_heads])} heads, FFN ${range(m.intermediate ?? [t.intermediate_size])} (pruned)`
      : `${t.num_attention_heads ?? '?'} heads, FFN ${t.intermediate_size ?? '?'}`);
  el.querySelector('.meta').textContent =
    `${file} · ${fmtMb(bytes.length)} · vision ${widths(vc, config.mope_clip?.vision)} · ` +
    `text ${widths(tc, config.mope_clip?.text)} · loaded in ${(performance.now() - t0).toFixed(0)} ms`;
  panels[slot] = { el, info, session, tokenizer, pre, file, pixels: null };
  // One warm-up run (wasm kernels, buffers) so the times shown are steady-state ones.
  const S = pre.doCrop ? pre.crop : { height: vc.image_size ?? 224, width: vc.image_size ?? 224 };
  await classify(panels[slot], { pixels: new Float32Array(3 * S.height * S.width), height: S.height, width: S.width }, [
    'warm-up',
  ]);
}

/** Runs model.onnx on one pre-processed image and the labels; returns { probs, ms }. */
async function classify(p, pixels, labels) {
  const { ids, mask, B, S } = p.tokenizer.encodeBatch(labels);
  const { height: H, width: W } = pixels;
  const feeds = {
    input_ids: new ort.Tensor('int64', ids, [B, S]),
    attention_mask: new ort.Tensor('int64', mask, [B, S]),
    pixel_values: new ort.Tensor('float32', pixels.pixels, [1, 3, H, W]),
  };
  const t0 = performance.now();
  const out = await p.session.run(feeds, ['logits_per_image']);
  const ms = performance.now() - t0;
  const logits = Array.from(out.logits_per_image.data);
  return { probs: softmax(logits), logits, ms };
}

function render(p, labels, r, preMs) {
  p.el.querySelector('.time').textContent =
    `${r.ms.toFixed(1)} ms for 1 image + ${labels.length} labels (pre-processing ${preMs.toFixed(1)} ms)`;
  p.el.querySelector('.time').dataset.ms = String(r.ms);
  const best = r.probs.indexOf(Math.max(...r.probs));
  const body = p.el.querySelector('tbody');
  body.replaceChildren(
    ...labels.map((label, i) => {
      const tr = document.createElement('tr');
      tr.className = 'result' + (i === best ? ' top' : '');
      tr.dataset.label = label;
      tr.dataset.prob = String(r.probs[i]);
      tr.innerHTML = `<td class="label"></td><td class="prob"></td><td><div class="bar"></div></td>`;
      tr.querySelector('.label').textContent = label;
      tr.querySelector('.prob').textContent = `${(100 * r.probs[i]).toFixed(1)}%`;
      tr.querySelector('.bar').style.width = `${(100 * r.probs[i]).toFixed(1)}%`;
      return tr;
    }),
  );
}

function currentLabels() {
  return $('labels')
    .value.split('\n')
    .map((s) => s.trim())
    .filter(Boolean);
}

async function runAll() {
  const labels = currentLabels();
  if (!bitmap || labels.length === 0 || panels.length === 0) {
    setStatus(bitmap ? 'Type at least one label.' : 'Choose an image.', 'idle');
    return;
  }
  const n = ++runCount;
  setStatus('Running…', 'running');
  try {
    for (const p of panels) {
      const t0 = performance.now();
      p.pixels = preprocess(bitmap, p.pre);
      const preMs = performance.now() - t0;
      render(p, labels, await classify(p, p.pixels, labels), preMs);
    }
    if (n === runCount) {
      setStatus(`Done: ${labels.length} labels, ${panels.length} model${panels.length > 1 ? 's' : ''}.`, 'done');
      statusEl.dataset.run = String(n);
    }
  } catch (e) {
    setStatus(`Error: ${e.message}`, 'error');
  }
}

async function setImage(file) {
  if (!file) return;
  // As PIL and mope-clip: no EXIF rotation, no colour-profile conversion, alpha kept apart (not premultiplied).
  bitmap = await createImageBitmap(file, {
    imageOrientation: 'none',
    colorSpaceConversion: 'none',
    premultiplyAlpha: 'none',
  });
  const prev = $('preview');
  if (prev.src) URL.revokeObjectURL(prev.src);
  prev.src = URL.createObjectURL(file);
  prev.classList.add('shown');
  await runAll();
}

async function loadAll() {
  const infos = await modelUrls();
  if (!infos.length)
    throw new Error('no model folders: open with ?a=URL[&b=URL] or start with mope-clip serve DIR [DIR2]');
  const suffix = $('precision').value;
  for (let i = 0; i < infos.length; i++) await loadPanel(i, infos[i], suffix);
}

async function init() {
  try {
    ort = await import('./ort/ort.wasm.min.mjs');
  } catch (e) {
    throw new Error(`cannot load onnxruntime-web from ./ort/ (serve this page with mope-clip serve): ${e.message}`);
  }
  ort.env.wasm.wasmPaths = new URL('./ort/', location.href).href;
  if (!self.crossOriginIsolated) ort.env.wasm.numThreads = 1;
  await loadAll();
  $('run').disabled = false;
  setStatus(
    `Ready (${panels.length} model${panels.length > 1 ? 's' : ''}, onnxruntime-web ${ort.env.versions?.web ?? ''}, ` +
      `${ort.env.wasm.numThreads || 'auto'} wasm threads). Choose an image.`,
    'ready',
  );
}

$('file').addEventListener('change', (e) => setImage(e.target.files[0]));
$('run').addEventListener('click', () => runAll());
$('precision').addEventListener('change', async () => {
  setStatus('Loading…', 'loading');
  try {
    await loadAll();
    setStatus('Ready.', 'ready');
    await runAll();
  } catch (e) {
    setStatus(`Error: ${e.message}`, 'error');
  }
});
const drop = $('drop');
drop.addEventListener('dragover', (e) => {
  e.preventDefault();
  drop.classList.add('over');
});
drop.addEventListener('dragleave', () => drop.classList.remove('over'));
drop.addEventListener('drop', (e) => {
  e.preventDefault();
  drop.classList.remove('over');
  setImage(e.dataTransfer.files[0]);
});

const ready = init().catch((e) => {
  setStatus(`Error: ${e.message}`, 'error');
  throw e;
});

// Test hook: exact inputs in, exact numbers out (no canvas in the way).
window.mope = {
  ready,
  tokenize: (text, slot = 0) => panels[slot].tokenizer.encode(text),
  /** The last canvas-preprocessed pixels of a panel, as a plain array. */
  pixels: (slot = 0) => (panels[slot].pixels ? Array.from(panels[slot].pixels.pixels) : null),
  classifyPixels: async (slot, pixels, labels) => {
    const p = panels[slot];
    const { height, width } = p.pre.doCrop
      ? p.pre.crop
      : { height: Math.sqrt(pixels.length / 3), width: Math.sqrt(pixels.length / 3) };
    const r = await classify(p, { pixels: Float32Array.from(pixels), height, width }, labels);
    return r.probs;
  },
};
