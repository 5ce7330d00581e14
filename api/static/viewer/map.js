// The map: Leaflet with L.CRS.Simple, one map unit = one world metre, LatLng(z, x): z north
// (up), x east (right), as the game's minimap and biomes.png are laid out.
// The world's artifacts are drawn as image overlays over the minimap extent; the world edge
// (WorldGenerator.waterEdge, 10 500 m) as a circle.

export const MAP_SIZE_M = 24576; // the minimap's extent: 2048 cells of 12 m
export const HALF = MAP_SIZE_M / 2;
export const EDGE_RADIUS_M = 10500; // WorldGenerator.waterEdge: nothing exists beyond it
const EXTENT = [[-HALF, -HALF], [HALF, HALF]];
const EDGE_BOUNDS = [[-EDGE_RADIUS_M, -EDGE_RADIUS_M], [EDGE_RADIUS_M, EDGE_RADIUS_M]];

// Image artifacts drawn as base layers, in the layer control's order, the first one shown (the
// relief map when the job has terrain, except on touch screens); any other PNG artifact
// a newer generator adds is offered too, under its file name.
const IMAGE_LAYERS = [["relief.png", "Relief"], ["biomes.png", "Biomes"]];

export class WorldMap {
  constructor(element) {
    const L = window.L;
    this.map = L.map(element, {
      crs: L.CRS.Simple, minZoom: -7, maxZoom: 3, zoomSnap: 0.25, zoomDelta: 0.5,
      attributionControl: false, maxBounds: [[-HALF * 1.3, -HALF * 1.3], [HALF * 1.3, HALF * 1.3]],
      maxBoundsViscosity: 0.8, preferCanvas: true, // thousands of streams stay smooth
    });
    this.map.fitBounds(EDGE_BOUNDS);
    // Map images under the vector layers (edge, rivers) whatever order they are added in.
    this.map.createPane("world").style.zIndex = 350;
    // CRS.Simple measures distance in map units, which are metres here.
    L.control.scale({ metric: true, imperial: false, maxWidth: 160 }).addTo(this.map);
    this.edge = L.circle([0, 0], {
      radius: EDGE_RADIUS_M, color: "#f4f1ea", weight: 1.5, opacity: 0.9, fill: false,
      dashArray: "6 5", interactive: false,
    }).addTo(this.map);
    this.control = null;
    this.layers = [];
    this.bases = {};
    this.overlays = {};
    this.resize = new ResizeObserver(() => this.map.invalidateSize());
    this.resize.observe(element);
  }

  /** Replace the shown world by `job`'s. Resolves when the first base layer's image has
   *  loaded; rejects with a readable Error when it cannot. `extra` holds Leaflet overlay layers
   *  (rivers, lakes) keyed by their label, shown unless marked `startHidden`. */
  showWorld(job, extra = {}) {
    const L = window.L;
    for (const layer of this.layers) layer.remove();
    if (this.control) this.control.remove();
    this.layers = [];
    const images = job.artifacts.filter((a) => a.content_type === "image/png"
      || a.name.endsWith(".png"));
    const order = (a) => {
      const i = IMAGE_LAYERS.findIndex(([name]) => name === a.name);
      return i < 0 ? IMAGE_LAYERS.length : i;
    };
    images.sort((a, b) => order(a) - order(b));
    const bases = {};
    for (const artifact of images) {
      const known = IMAGE_LAYERS.find(([name]) => name === artifact.name);
      const label = known ? known[1] : artifact.name.replace(/\.png$/, "");
      bases[label] = L.imageOverlay(artifact.url, EXTENT, { alt: `${label} map`, pane: "world" });
      this.layers.push(bases[label]);
    }
    const overlays = { "World edge": this.edge, ...extra };
    this.bases = bases; this.overlays = overlays; // by label, for the tests and the console
    for (const layer of Object.values(extra)) this.layers.push(layer);
    this.control = L.control.layers(bases, overlays, { collapsed: true }).addTo(this.map);
    for (const layer of Object.values(extra)) if (!layer.startHidden) layer.addTo(this.map);
    // The relief map is megabytes at 2048² (3.3 MiB for MWd8eV6svz), the biome map ~155 KiB:
    // a touch screen starts with the light one; the other loads when picked in the control.
    const light = window.matchMedia("(pointer: coarse)").matches && bases.Biomes;
    const first = light || Object.values(bases)[0];
    if (!first) return Promise.reject(new Error("this job has no map image"));
    const loaded = new Promise((resolve, reject) => {
      first.once("load", resolve);
      first.once("error", () => reject(new Error("the map image did not load")));
    });
    first.addTo(this.map);
    return loaded;
  }

  /** The world point under a Leaflet event: {x, z} in metres. */
  static point(latlng) {
    return { x: latlng.lng, z: latlng.lat };
  }
}
