// The cursor readout: x and z in metres, the biome and (with terrain) the height of the point,
// looked up in the job's own grids (biomes.npy, heights.npy) once they are loaded.
// Grids are on the minimap lattice: N x N cells of 24576 / N metres, row 0 south, column 0
// west (docs/architecture.md, "World viewer").

import { parseNpy } from "./npy.js";
import { HALF, MAP_SIZE_M } from "./map.js";

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
    this.clear();
  }

  clear() {
    this.biomes = null; this.heights = null; this.names = new Map();
    for (const el of this.el.terrain) el.hidden = true;
  }

  /** Load the grids of a finished job (`artifacts` by name). Resolves when the readout can
   *  answer; a missing optional grid (heights.npy before terrain) is simply not shown. */
  async load(artifacts) {
    this.clear();
    const world = artifacts["world.json"];
    if (world) {
      const r = await fetch(world.url);
      if (!r.ok) throw new Error(`world.json: HTTP ${r.status}`);
      const codes = (await r.json()).biome_codes || {};
      this.names = new Map(Object.entries(codes).map(([name, code]) => [code, name]));
    }
    if (!artifacts["biomes.npy"]) throw new Error("this job has no biomes.npy");
    const loads = [fetchNpy(artifacts["biomes.npy"].url).then((g) => { this.biomes = g; })];
    if (artifacts["heights.npy"]) {
      loads.push(fetchNpy(artifacts["heights.npy"].url).then((g) => { this.heights = g; }));
    }
    await Promise.all(loads);
    for (const el of this.el.terrain) el.hidden = !this.heights;
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
    this.el.x.textContent = Math.round(x).toString();
    this.el.z.textContent = Math.round(z).toString();
    const { biome, height } = this.sample(x, z);
    this.el.biome.textContent = biome ?? (this.biomes ? "outside the map" : "–");
    this.el.height.textContent = height === null ? "–" : height.toFixed(1);
    this.el.hint.hidden = true;
  }
}
