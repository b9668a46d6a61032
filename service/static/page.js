// The Rectifier page: plain browser JavaScript over the public HTTP API, no framework.
// Served with a strict Content-Security-Policy (script-src 'self'), so no inline code.
"use strict";

const state = {
  models: [],      // {name, version, newest, card, explainable}
  apiKey: null,    // kept in memory only: never in a URL, never in storage
  last: null,      // {file, bitmap, model, explanation}
};

const $ = (id) => document.getElementById(id);

class ApiError extends Error {
  constructor(status, code, message, retryAfter) {
    super(message);
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

async function api(path, options = {}) {
  const headers = new Headers(options.headers || {});
  headers.set("Accept", "application/json");
  if (state.apiKey) headers.set("Authorization", `Bearer ${state.apiKey}`);
  let response;
  try {
    response = await fetch(path, { ...options, headers, credentials: "omit" });
  } catch (err) {
    throw new ApiError(0, "network", `cannot reach the server (${err.message})`, null);
  }
  let body = null;
  try {
    body = await response.json();
  } catch (err) {
    body = null;
  }
  if (!response.ok) {
    const error = body && body.error;
    const message = (error && error.message) || (typeof error === "string" ? error : "") ||
      `HTTP ${response.status}`;
    throw new ApiError(response.status, (error && error.code) || "", message,
      response.headers.get("Retry-After"));
  }
  return body;
}

function describeError(err) {
  switch (err.status) {
    case 0: return `The server cannot be reached: ${err.message}.`;
    case 401: return `This server needs an API key: ${err.message}. Enter it above.`;
    case 413: return `The file is too large: ${err.message}.`;
    case 415: return `This kind of file is not supported: ${err.message}.`;
    case 503: {
      const wait = err.retryAfter ? ` Try again in ${err.retryAfter} s.` : " Try again shortly.";
      return `The server is overloaded or still starting: ${err.message}.${wait}`;
    }
    case 400: return `The image could not be read: ${err.message}.`;
    case 404: return `Not found: ${err.message}.`;
    default: return `The server answered ${err.status}: ${err.message}.`;
  }
}

function showMessage(text) {
  const box = $("message");
  box.textContent = text;
  box.hidden = !text;
}

function handleError(err) {
  if (!(err instanceof ApiError)) throw err;
  if (err.status === 401) {
    $("key-form").hidden = false;
    $("api-key").focus();
  }
  showMessage(describeError(err));
}

// --- models --------------------------------------------------------------------------

async function loadModels() {
  const select = $("model");
  let listing;
  try {
    listing = await api("/v1/models");
  } catch (err) {
    select.replaceChildren(new Option("no models available", ""));
    handleError(err);
    return;
  }
  showMessage("");
  state.models = [];
  for (const model of listing.models) {
    for (const version of model.versions) {
      state.models.push({
        name: model.name,
        version: version.version,
        newest: version.version === model.default_version,
        card: version.card,
        explainable: Boolean(version.card.class_activation_maps),
      });
    }
  }
  select.replaceChildren(...state.models.map((m, i) => new Option(
    `${m.name} v${m.version}${m.newest ? " (newest)" : ""} · ${m.card.architecture}`, String(i))));
  select.disabled = state.models.length === 0;
  if (state.models.length === 0) {
    select.replaceChildren(new Option("the server has no models", ""));
  }
  describeModel();
}

function currentModel() {
  return state.models[Number($("model").value)] || null;
}

function describeModel() {
  const model = currentModel();
  const note = $("model-note");
  if (!model) {
    note.textContent = "";
    return;
  }
  const p = model.card.preprocessing;
  const heat = model.explainable
    ? "explanations: class-activation maps"
    : "no class-activation maps in this export: predictions only";
  note.textContent = `${model.card.labels.length} labels · ${p.crop_size} px ${p.color_mode} · ${heat}`;
}

// --- classify and explain ------------------------------------------------------------

async function classify(file) {
  const model = currentModel();
  if (!model) {
    showMessage("Choose a model first.");
    return;
  }
  $("file-name").textContent = `${file.name} (${Math.round(file.size / 1024)} kB)`;
  const base = `/v1/models/${encodeURIComponent(model.name)}/versions/${model.version}`;
  const path = `${base}/${model.explainable ? "explain" : "predict"}?top_k=5`;
  let body;
  try {
    body = await api(path, {
      method: "POST",
      headers: { "Content-Type": file.type || "application/octet-stream" },
      body: file,
    });
  } catch (err) {
    handleError(err);
    return;
  }
  showMessage("");
  let bitmap = null;
  try {
    bitmap = await createImageBitmap(file);
  } catch (err) {
    bitmap = null;  // DICOM and other formats a browser cannot draw
  }
  const explanation = body.explanations ? body.explanations[0] : null;
  state.last = { bitmap, model, explanation };
  renderNotice(body.predictions[0]);
  renderBars(body.predictions[0].top_k);
  renderTimings(body.timings_ms);
  renderExplained(explanation, bitmap);
  draw();
  $("result").hidden = false;
}

// in_distribution is false: the image is unlike the model's training data (its OOD score
// is over the card's threshold); absent for models exported without an OOD score.
function renderNotice(prediction) {
  const box = $("ood-notice");
  const outside = prediction.in_distribution === false;
  box.textContent = outside
    ? "This image is unlike the images this model was trained on, so its answer is not " +
      "to be trusted (out-of-distribution score " + prediction.ood_score.toFixed(2) + ")."
    : "";
  box.hidden = !outside;
}

function renderBars(topK) {
  const items = topK.map((entry) => {
    const li = document.createElement("li");
    li.dataset.label = entry.label;
    const label = document.createElement("span");
    label.className = "label";
    label.textContent = entry.label;
    label.title = entry.label;
    const track = document.createElement("span");
    track.className = "track";
    const fill = document.createElement("span");
    fill.className = "fill";
    fill.style.width = `${(entry.probability * 100).toFixed(1)}%`;
    track.append(fill);
    const value = document.createElement("span");
    value.className = "value";
    value.textContent = `${(entry.probability * 100).toFixed(1)}%`;
    li.append(label, track, value);
    return li;
  });
  $("bars").replaceChildren(...items);
}

function renderTimings(timings) {
  const rows = Object.entries(timings).map(([phase, ms]) => {
    const tr = document.createElement("tr");
    const name = document.createElement("td");
    name.textContent = phase;
    const value = document.createElement("td");
    value.textContent = `${ms.toFixed(2)} ms`;
    tr.append(name, value);
    return tr;
  });
  $("timings").tBodies[0].replaceChildren(...rows);
}

function renderExplained(explanation, bitmap) {
  const parts = [];
  if (explanation) {
    const [h, w] = explanation.grid_size;
    parts.push(`Heatmap for “${explanation.label}” (${w}×${h} class-activation map).`);
  } else {
    parts.push("This model has no class-activation maps; showing the image only.");
  }
  if (!bitmap) parts.push("The browser cannot display this file type; the heatmap is shown alone.");
  $("explained").textContent = parts.join(" ");
  $("show-heatmap").disabled = !explanation;
  $("opacity").disabled = !explanation;
}

// --- drawing -------------------------------------------------------------------------

// The same 'jet' colours as model/cam.py's colorize.
function jet(value) {
  const x = Math.min(1, Math.max(0, value)) * 4;
  const channel = (centre) => Math.round(255 * Math.min(1, Math.max(0, 1.5 - Math.abs(x - centre))));
  return [channel(3), channel(2), channel(1)];
}

function heatCanvas(grid) {
  const h = grid.length;
  const w = grid[0].length;
  const canvas = document.createElement("canvas");
  canvas.width = w;
  canvas.height = h;
  const ctx = canvas.getContext("2d");
  const image = ctx.createImageData(w, h);
  grid.forEach((row, y) => row.forEach((value, x) => {
    const [r, g, b] = jet(value);
    image.data.set([r, g, b, 255], (y * w + x) * 4);
  }));
  ctx.putImageData(image, 0, 0);
  return canvas;
}

function draw() {
  const last = state.last;
  if (!last) return;
  const canvas = $("canvas");
  const ctx = canvas.getContext("2d");
  const size = canvas.width;
  ctx.globalAlpha = 1;
  ctx.filter = "none";
  ctx.fillStyle = "#222";
  ctx.fillRect(0, 0, size, size);
  const p = last.model.card.preprocessing;
  if (last.bitmap) {
    // The square the model saw: shorter side resized to resize_size, centre crop_size.
    const { width, height } = last.bitmap;
    const side = Math.min(width, height) * p.crop_size / p.resize_size;
    if (p.color_mode === "L") ctx.filter = "grayscale(1)";
    ctx.imageSmoothingEnabled = true;
    ctx.drawImage(last.bitmap, (width - side) / 2, (height - side) / 2, side, side, 0, 0, size, size);
    ctx.filter = "none";
  }
  if (last.explanation && $("show-heatmap").checked) {
    ctx.imageSmoothingEnabled = true;
    ctx.globalAlpha = last.bitmap ? Number($("opacity").value) / 100 : 1;
    ctx.drawImage(heatCanvas(last.explanation.grid), 0, 0, size, size);
    ctx.globalAlpha = 1;
  }
  canvas.dataset.heatmap = String(Boolean(last.explanation && $("show-heatmap").checked));
}

// --- wiring --------------------------------------------------------------------------

function wire() {
  $("model").addEventListener("change", describeModel);
  $("file").addEventListener("change", (event) => {
    const [file] = event.target.files;
    if (file) classify(file);
    event.target.value = "";  // choosing the same file again still classifies it
  });
  const drop = $("drop");
  drop.addEventListener("dragover", (event) => {
    event.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    const [file] = event.dataTransfer.files;
    if (file) classify(file);
  });
  drop.addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === " ") $("file").click();
  });
  $("show-heatmap").addEventListener("change", draw);
  $("opacity").addEventListener("input", draw);
  $("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    state.apiKey = $("api-key").value.trim() || null;
    loadModels();
  });
}

wire();
loadModels();
