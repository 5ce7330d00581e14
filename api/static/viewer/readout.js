// The cursor readout: x and z in metres, the biome and (with terrain) the height of the point,
// looked up in the job's own grids (biomes.npy, heights.npy) once they are loaded.
// Grids are on the minimap lattice: N x N cells of 24576 / N metres, row 0 south, column 0
// west (docs/architecture.md, "World viewer").

import { parseNpy } from "./npy.js";
import { EDGE_RADIUS_M, HALF, MAP_SIZE_M } from "./map.js";

async function fetchNpy(url) {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  const grid = parseNpy(await r.arrayBuffer());
  if (grid.shape.length !== 2) throw new Error(`${url}: expected a 2-D grid, got ${grid.shape}`);
  return grid;
}

function cellOf(grid, x, z) {
  const [rows, cols] = grid.shape;
  const i = Math.floor((z + HALF) / (MAP_SIZE_M / rows));
  const j = Math.floor((x + HALF) / (MAP_SIZE_M / cols));
  if (i < 0 || i >= rows || j < 0 || j >= cols) return null;
  return i * cols + j;
}

export class Readout {
  constructor(doc) {
    this.el = {
      x: doc.getElementById("readout-x"), z: doc.getElementById("readout-z"),
      biome: doc.getElementById("readout-biome"), height: doc.getElementById("readout-height"),
      hint: doc.getElementById("readout-hint"),
      terrain: [...doc.querySelectorAll(".terrain-only")],
    };
    this.use({});
  }

  /** Read from a finished job's grids (`artifacts` by name) from now on. Nothing is fetched
   *  yet: the grids are megabytes (8 MiB of biomes and 16 MiB of heights at 2048²), so they
   *  load on the first point asked for, or at once through `load()`. */
  use(artifacts) {
    this.artifacts = artifacts;
    this.biomes = null; this.heights = null; this.names = new Map();
    this.loading = null; this.last = null;
    for (const el of this.el.terrain) el.hidden = !artifacts["heights.npy"];
  }

  /** Fetch the grids (once). Resolves when the readout can answer; a missing optional grid
   *  (heights.npy without terrain) is simply not shown; rejects with a readable Error. */
  load() {
    if (!this.loading) this.loading = this.fetchGrids();
    return this.loading;
  }

  async fetchGrids() {
    const artifacts = this.artifacts;
    if (!artifacts["biomes.npy"]) throw new Error("this job has no biomes.npy");
    const loads = [fetchNpy(artifacts["biomes.npy"].url)];
    if (artifacts["heights.npy"]) loads.push(fetchNpy(artifacts["heights.npy"].url));
    if (artifacts["world.json"]) {
      loads.push(fetch(artifacts["world.json"].url).then((r) => {
        if (!r.ok) throw new Error(`world.json: HTTP ${r.status}`);
        return r.json();
      }));
    }
    const [biomes, ...rest] = await Promise.all(loads);
    if (this.artifacts !== artifacts) return; // another world was shown meanwhile
    const world = artifacts["world.json"] ? rest.pop() : {};
    this.heights = artifacts["heights.npy"] ? rest[0] : null;
    this.names = new Map(Object.entries(world.biome_codes || {}).map(([n, c]) => [c, n]));
    this.biomes = biomes;
    if (this.last) this.show(this.last.x, this.last.z);
  }

  /** What the grids hold at world point (x, z), metres: {biome: name|null, height: m|null}. */
  sample(x, z) {
    let biome = null, height = null;
    if (this.biomes) {
      const k = cellOf(this.biomes, x, z);
      if (k !== null) {
        const code = this.biomes.data[k];
        biome = this.names.get(code) ?? `biome ${code}`;
      }
    }
    if (this.heights) {
      const k = cellOf(this.heights, x, z);
      if (k !== null) height = this.heights.data[k];
    }
    return { biome, height };
  }

  show(x, z) {
    this.last = { x, z };
    this.el.x.textContent = Math.round(x).toString();
    this.el.z.textContent = Math.round(z).toString();
    this.el.hint.hidden = true;
    if (!this.biomes) {
      if (!this.artifacts["biomes.npy"]) return;
      this.el.biome.textContent = "loading…";
      this.load().catch((err) => { this.el.biome.textContent = `unavailable (${err.message})`; });
      return;
    }
    const { biome, height } = this.sample(x, z);
    const beyond = Math.hypot(x, z) > EDGE_RADIUS_M ? " (beyond the world edge)" : "";
    this.el.biome.textContent = biome === null ? "outside the map" : biome + beyond;
    this.el.height.textContent = height === null ? "–" : height.toFixed(1);
  }
}
