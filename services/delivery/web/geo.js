// Coordinates to SVG: an equirectangular projection around the area shown, which at a city's
// scale is as good as any map projection. No tiles: the points are the system's own.

const SVG_NS = "http://www.w3.org/2000/svg";
const MILES_PER_DEGREE = 69.0;

export function el(name, attributes = {}, parent = null) {
  const node = document.createElementNS(SVG_NS, name);
  for (const [k, v] of Object.entries(attributes)) node.setAttribute(k, v);
  if (parent) parent.appendChild(node);
  return node;
}

// The smallest box holding `points` (each {latitude, longitude}), padded by `padMiles`.
export function bounds(points, padMiles = 0.5) {
  let south = Infinity, north = -Infinity, west = Infinity, east = -Infinity;
  for (const p of points) {
    south = Math.min(south, p.latitude); north = Math.max(north, p.latitude);
    west = Math.min(west, p.longitude); east = Math.max(east, p.longitude);
  }
  const mid = (south + north) / 2;
  const dLat = padMiles / MILES_PER_DEGREE;
  const dLon = padMiles / (MILES_PER_DEGREE * Math.max(Math.cos((mid * Math.PI) / 180), 0.01));
  return { south: south - dLat, north: north + dLat, west: west - dLon, east: east + dLon };
}

// A projection of `box` into a width x height viewport, the same scale on both axes.
export function projection(box, width, height, margin = 24) {
  const mid = ((box.south + box.north) / 2) * (Math.PI / 180);
  const kx = Math.cos(mid);
  const spanX = (box.east - box.west) * kx;
  const spanY = box.north - box.south;
  const scale = Math.min((width - 2 * margin) / spanX, (height - 2 * margin) / spanY);
  const offsetX = (width - spanX * scale) / 2;
  const offsetY = (height - spanY * scale) / 2;
  const project = (p) => [
    offsetX + (p.longitude - box.west) * kx * scale,
    offsetY + (box.north - p.latitude) * scale,
  ];
  project.pixelsPerMile = scale / MILES_PER_DEGREE;
  return project;
}

// Where something on `route` ([{latitude, longitude, at}], times ascending) is at `t` (ms).
export function along(route, t) {
  const times = route.map((w) => Date.parse(w.at));
  if (t <= times[0]) return route[0];
  for (let i = 1; i < route.length; i++) {
    if (t < times[i]) {
      const f = (t - times[i - 1]) / Math.max(times[i] - times[i - 1], 1);
      const a = route[i - 1], b = route[i];
      return {
        latitude: a.latitude + (b.latitude - a.latitude) * f,
        longitude: a.longitude + (b.longitude - a.longitude) * f,
      };
    }
  }
  return route[route.length - 1];
}

// Points on the circle `radiusMiles` around `center`, for drawing the service area.
export function circle(center, radiusMiles, steps = 96) {
  const k = Math.max(Math.cos((center.latitude * Math.PI) / 180), 0.01);
  const points = [];
  for (let i = 0; i < steps; i++) {
    const a = (2 * Math.PI * i) / steps;
    points.push({
      latitude: center.latitude + (radiusMiles * Math.cos(a)) / MILES_PER_DEGREE,
      longitude: center.longitude + (radiusMiles * Math.sin(a)) / (MILES_PER_DEGREE * k),
    });
  }
  return points;
}

// Grid lines a round number of miles apart, at least 48 pixels, for a sense of distance.
export function grid(svg, box, project, width, height) {
  const miles = [0.5, 1, 2, 5, 10, 20].find((m) => m * project.pixelsPerMile >= 48) || 50;
  const g = el("g", {}, svg);
  const dLat = miles / MILES_PER_DEGREE;
  const kx = Math.max(Math.cos((((box.south + box.north) / 2) * Math.PI) / 180), 0.01);
  const dLon = dLat / kx;
  // Over the whole picture, which is wider or taller than the box when their shapes differ.
  const reach = (width + height) / project.pixelsPerMile / MILES_PER_DEGREE;
  for (let lat = Math.ceil((box.south - reach) / dLat) * dLat; lat < box.north + reach; lat += dLat) {
    const [, y] = project({ latitude: lat, longitude: box.west });
    if (y >= 0 && y <= height) el("line", { class: "grid", x1: 0, x2: width, y1: y, y2: y }, g);
  }
  for (let lon = Math.ceil((box.west - reach / kx) / dLon) * dLon; lon < box.east + reach / kx; lon += dLon) {
    const [x] = project({ latitude: box.south, longitude: lon });
    if (x >= 0 && x <= width) el("line", { class: "grid", x1: x, x2: x, y1: 0, y2: height }, g);
  }
}

// A scale bar of a round number of miles, about a fifth of the width.
export function scaleBar(svg, project, width, height) {
  const target = width / 5 / project.pixelsPerMile;
  const miles = [0.5, 1, 2, 5, 10, 20, 50].reverse().find((m) => m <= target) || 0.5;
  const length = miles * project.pixelsPerMile;
  const g = el("g", { class: "scale" }, svg);
  el("line", { x1: 16, y1: height - 16, x2: 16 + length, y2: height - 16 }, g);
  el("text", { x: 16, y: height - 22 }, g).textContent = `${miles} mi`;
}
