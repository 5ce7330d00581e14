// The world viewer page: the seed form, the job's progress, errors a person can read, the world
// panel (seed, hash, generator, downloads), and the map with its cursor readout.
// Talks only to this API's public routes: POST /v1/worlds (JSON), GET /v1/jobs/{id}?wait=S
// (long-poll) and the job's artifact URLs.

import { WorldMap } from "./map.js";
import { Readout } from "./readout.js";
import { terrainLayers } from "./terrain.js";

const POLL_WAIT_S = 1; // a long-poll returns at once when the job ends, else after this
const $ = (id) => document.getElementById(id);

let current = 0; // the latest submission; an older one's loop stops when this moves on
let retryTimer = null;

function setState(state) { document.body.dataset.state = state; }

function showSeedError(message) {
  const el = $("seed-error");
  el.textContent = message;
  el.hidden = !message;
  $("seed").setAttribute("aria-invalid", message ? "true" : "false");
}

function showNotice(message, bad = false) {
  const el = $("notice");
  el.textContent = message;
  el.hidden = !message;
  el.classList.toggle("bad", bad);
}

function showProgress(job) {
  const box = $("progress");
  if (!job) { box.hidden = true; return; }
  box.hidden = false;
  $("progress-bar").value = job.status === "queued" ? 0 : job.progress;
  const pct = Math.round(job.progress * 100);
  const text = job.status === "queued"
    ? `Seed "${job.seed}": queued, waiting for a generator…`
    : `Seed "${job.seed}": generating, ${pct}%${job.message ? ` (${job.message})` : ""}`;
  $("progress-text").textContent = text;
}

function formatSize(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

async function errorOf(response) {
  try {
    const body = await response.json();
    if (body && body.error && body.error.message) return body.error.message;
  } catch { /* not JSON: fall through to the status line */ }
  return `HTTP ${response.status} ${response.statusText}`.trim();
}

function fillWorld(job) {
  $("world").hidden = false;
  $("world-seed").textContent = job.seed;
  $("world-seed-hash").textContent = job.seed_hash ?? "–";
  $("world-generator").textContent = job.generator;
  const how = job.cached ? "from the cache"
    : `${job.launch_type ?? "?"} start, ${job.duration_s === null ? "?" : job.duration_s.toFixed(2)} s`;
  $("world-job").textContent = `${job.job_id.slice(0, 8)}… (${how})`;
  const list = $("downloads");
  list.replaceChildren(...job.artifacts.map((a) => {
    const li = document.createElement("li");
    const link = document.createElement("a");
    link.href = a.url;
    link.download = a.name.split("/").pop();
    link.textContent = a.name;
    const size = document.createElement("span");
    size.className = "size";
    size.textContent = ` ${formatSize(a.size)}`;
    li.append(link, size);
    return li;
  }));
}

/** The answer to a request that did not get a job: what a person reads, and when to retry. */
async function explain(response, seed, terrain, submitted) {
  const message = await errorOf(response);
  if (response.status === 422) {
    showSeedError(message);
    setState("invalid");
    return;
  }
  if (response.status === 429 || response.status === 503) {
    const wait = Math.max(1, parseInt(response.headers.get("Retry-After") || "5", 10) || 5);
    const what = response.status === 429
      ? "The queue is full (HTTP 429)"
      : "The service is unavailable (HTTP 503)";
    let left = wait;
    const tick = () => {
      if (submitted !== current) return;
      if (left <= 0) { submit(seed, terrain); return; }
      showNotice(`${what}: ${message}. Retrying in ${left} s…`, true);
      left -= 1;
      retryTimer = setTimeout(tick, 1000);
    };
    tick();
    setState(response.status === 429 ? "queue-full" : "unavailable");
    return;
  }
  showNotice(`The request failed: ${message}`, true);
  setState("error");
}

/** Generate (or fetch) `seed`'s world; with `terrain`, heights, relief and rivers too (the
 *  API's `layers`; without it the API's default, the biome map). */
async function submit(seed, terrain) {
  const submitted = ++current;
  clearTimeout(retryTimer);
  showSeedError("");
  showNotice("");
  showProgress(null);
  const url = new URL(window.location.href);
  url.searchParams.set("seed", seed);
  if (terrain) url.searchParams.set("terrain", "1"); else url.searchParams.delete("terrain");
  window.history.replaceState(null, "", url);
  document.title = `${seed} · Valheim world viewer`;
  setState("submitting");
  let job;
  try {
    const response = await fetch("/v1/worlds", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify(terrain ? { seed, layers: ["biomes", "heights"] } : { seed }),
    });
    if (!response.ok) { await explain(response, seed, terrain, submitted); return; }
    job = await response.json();
    while (job.status === "queued" || job.status === "running") {
      if (submitted !== current) return;
      setState("waiting");
      showProgress(job);
      const r = await fetch(`/v1/jobs/${job.job_id}?wait=${POLL_WAIT_S}`,
        { headers: { Accept: "application/json" } });
      if (!r.ok) { await explain(r, seed, terrain, submitted); return; }
      job = await r.json();
    }
  } catch (err) {
    if (submitted !== current) return;
    showNotice(`The server did not answer (${err.message}). Is the daemon running?`, true);
    setState("error");
    return;
  }
  if (submitted !== current) return;
  showProgress(null);
  if (job.status !== "succeeded") {
    showNotice(`Generating "${seed}" failed: ${job.error || "no reason given"}`, true);
    setState("failed");
    return;
  }
  await showWorld(job, submitted);
}

async function showWorld(job, submitted) {
  setState("loading-map");
  fillWorld(job);
  const artifacts = Object.fromEntries(job.artifacts.map((a) => [a.name, a]));
  viewer.readout.use(artifacts);
  try {
    const overlays = await terrainLayers(artifacts);
    if (submitted !== current) return;
    await viewer.map.showWorld(job, overlays);
  } catch (err) {
    if (submitted !== current) return;
    showNotice(`The world was generated but could not be shown: ${err.message}`, true);
    setState("error");
    return;
  }
  if (submitted !== current) return;
  // With a mouse the readout is wanted at once; on a touch screen, only after the first tap.
  if (!window.matchMedia("(pointer: coarse)").matches) viewer.readout.load().catch(() => {});
  document.body.dataset.jobId = job.job_id;
  setState("ready");
}

const viewer = { map: null, readout: null };
window.vweViewer = viewer; // for the browser tests and a curious console

function start() {
  viewer.readout = new Readout(document);
  if (!window.L) {
    showNotice("The map library (Leaflet) did not load: the server has no libjs-leaflet "
      + "(`make run` installs it, or set VWE_VIEWER_LEAFLET_DIR).", true);
    setState("error");
    return;
  }
  viewer.map = new WorldMap($("map"));
  const update = (e) => {
    const p = WorldMap.point(e.latlng);
    viewer.readout.show(p.x, p.z);
  };
  viewer.map.map.on("mousemove", update);
  viewer.map.map.on("click", update); // phones: tap to read a point
  $("seed-form").addEventListener("submit", (e) => {
    e.preventDefault();
    submit($("seed").value, $("terrain").checked);
  });
  const params = new URLSearchParams(window.location.search);
  const seed = params.get("seed");
  $("terrain").checked = params.get("terrain") === "1";
  setState("idle");
  if (seed !== null) {
    $("seed").value = seed;
    submit(seed, $("terrain").checked);
  } else {
    $("seed").focus();
  }
}

start();
