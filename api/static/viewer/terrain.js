// Rivers, streams and lakes from a job's rivers.json (jobs generated with terrain), as Leaflet
// vector layers. A river runs from p0 to p1 and wiggles sideways as the game lays its river
// points out (WorldGenerator.RenderRivers, Valheim 1.0.15): at distance s along the line, the
// offset is sin(t) * sin(0.63412 t) * sin(0.33412 t) * curve_width with t = s / curve_wavelength.
// Drawn for looking at, not for measuring: the relief map and heights.npy are the exact output.

const STEP_M = 40; // polyline vertex spacing; river curves have wavelengths of 100 m and more

// A point as rivers.json may write it: [x, z], {x, z} or {x, y} (the game's Vector2).
function xz(p) {
  if (Array.isArray(p)) return [Number(p[0]), Number(p[1])];
  return [Number(p.x), Number(p.z ?? p.y)];
}

function field(river, snake, camel) {
  return Number(river[snake] ?? river[camel] ?? 0);
}

/** The centre line of one river as LatLngs ([z, x]), from p0 to p1. */
export function riverLine(river) {
  const [x0, z0] = xz(river.p0);
  const [x1, z1] = xz(river.p1);
  const length = Math.hypot(x1 - x0, z1 - z0);
  if (!(length > 0)) return [];
  const nx = (x1 - x0) / length, nz = (z1 - z0) / length;
  const width = field(river, "curve_width", "curveWidth");
  const wavelength = field(river, "curve_wavelength", "curveWavelength") || 1;
  const line = [];
  for (let s = 0; ; s = Math.min(s + STEP_M, length)) {
    const t = s / wavelength;
    const d = Math.sin(t) * Math.sin(t * 0.63412) * Math.sin(t * 0.33412) * width;
    line.push([z0 + nz * s + nx * d, x0 + nx * s - nz * d]);
    if (s >= length) break;
  }
  return line;
}

function riverGroup(rivers, colour, defaultWidth) {
  const L = window.L;
  const group = L.layerGroup();
  const lines = [];
  for (const river of rivers) {
    const width = (field(river, "width_min", "widthMin") + field(river, "width_max", "widthMax"))
      / 2 || defaultWidth;
    const line = L.polyline(riverLine(river), {
      color: colour, opacity: 0.75, interactive: false, lineCap: "round",
    });
    // A river point's width is the radius of its influence on the terrain; the water itself,
    // where the weight is high, is about half as wide: drawn as the mean width, it matches.
    line.widthM = width;
    lines.push(line);
    group.addLayer(line);
  }
  // Stroke widths are pixels in Leaflet: keep them the river's width in metres at each zoom.
  group.on("add", function () {
    const map = this._map;
    const fit = () => {
      const metresPerPixel = 1 / map.getZoomScale(map.getZoom(), 0);
      for (const line of lines) {
        line.setStyle({ weight: Math.max(1, line.widthM / metresPerPixel) });
      }
    };
    fit();
    map.on("zoomend", fit);
    group.once("remove", () => map.off("zoomend", fit));
  });
  return group;
}

/** Leaflet overlays keyed by label for a job's artifacts (by name): {} without rivers.json.
 *  Rejects with a readable Error when rivers.json exists but cannot be read. */
export async function terrainLayers(artifacts) {
  const artifact = artifacts["rivers.json"];
  if (!artifact || !window.L) return {};
  const r = await fetch(artifact.url);
  if (!r.ok) throw new Error(`rivers.json: HTTP ${r.status}`);
  const data = await r.json();
  const L = window.L;
  const layers = {};
  if (Array.isArray(data.rivers)) layers.Rivers = riverGroup(data.rivers, "#3d8fd6", 80);
  if (Array.isArray(data.streams)) {
    layers.Streams = riverGroup(data.streams, "#6fb3e8", 20);
    layers.Streams.startHidden = true; // thousands of them: on request
  }
  if (Array.isArray(data.lakes)) {
    layers.Lakes = L.layerGroup(data.lakes.map((lake) => {
      const [x, z] = xz(lake.center ?? lake);
      return L.circleMarker([z, x], {
        radius: 4, color: "#0b3d6b", weight: 1, fillColor: "#5ab0f0", fillOpacity: 0.9,
      }).bindTooltip(`lake at x ${Math.round(x)}, z ${Math.round(z)}`);
    }));
  }
  return layers;
}
