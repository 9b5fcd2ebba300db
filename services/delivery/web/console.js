// The operations console: the fleet on a map and a timeline, the pipeline, the deliveries.
// Three reads, each from the service that owns the data, polled while the page is visible;
// drones move between reads along the routes the fleet read gave.

import { NeedsToken, formatIn, formatTime, getJson, poll, setToken, signIn } from "./api.js";
import { along, bounds, circle, el, grid, projection, scaleBar } from "./geo.js";

const MAP_W = 1000, MAP_H = 560;
const TL_W = 1000, TL_LABEL = 78, TL_ROW = 16, TL_AXIS = 22;
const TIMELINE_BEFORE_MS = 10 * 60e3, TIMELINE_AFTER_MS = 110 * 60e3;
const STAGES = ["Created", "Rescheduled", "HeadedToPickup", "HeadedToDropoff", "Completed", "Cancelled", "Failed"];

const state = { fleet: null, fleetAt: 0, skew: 0, area: null, box: null, pipeline: [], drawn: null };
const $ = (id) => document.getElementById(id);
const live = $("live");

const signin = signIn($("signin"), () => refreshAll());
$("forget").addEventListener("click", () => { setToken(""); refreshAll(); });

function failed(error) {
  live.className = "live error";
  if (error instanceof NeedsToken) {
    live.textContent = "signed out";
    signin.ask(error);
  } else {
    live.textContent = "unreachable";
  }
}

function ok() {
  live.className = "live on";
  live.textContent = "live";
}

const serverNow = () => Date.now() + state.skew;

// ---------------------------------------------------------------- the map

function mapBox(fleet) {
  // The service area (workflow's) and every base: stable, so the map never jumps.
  const points = fleet.drones.map((d) => d.home);
  if (state.area) points.push(...circle(state.area, state.area.radiusMiles));
  for (const d of fleet.drones) points.push(d.position, ...d.route);
  return bounds(points, 0.6);
}

function drawMap() {
  const fleet = state.fleet;
  const svg = $("map");
  svg.replaceChildren();
  state.box = mapBox(fleet);
  const project = projection(state.box, MAP_W, MAP_H);
  el("rect", { class: "map-bg", x: 0, y: 0, width: MAP_W, height: MAP_H, rx: 8 }, svg);
  grid(svg, state.box, project, MAP_W, MAP_H);
  if (state.area) {
    const ring = circle(state.area, state.area.radiusMiles).map((p) => project(p).join(",")).join(" ");
    el("polygon", { class: "area", points: ring }, svg);
    const [cx, top] = project({ latitude: state.area.latitude + state.area.radiusMiles / 69, longitude: state.area.longitude });
    el("text", { class: "label", x: cx, y: top - 6, "text-anchor": "middle" }, svg).textContent =
      `service area · ${state.area.radiusMiles} mi radius`;
  }
  for (const d of fleet.drones) {
    const [x, y] = project(d.home);
    el("rect", { class: "base", x: x - 5, y: y - 5, width: 10, height: 10, rx: 2 }, svg);
  }
  const routes = el("g", {}, svg);
  const drones = el("g", {}, svg);
  state.drawn = fleet.drones.map((d) => {
    if (d.route.length) {
      el("polyline", { class: "route", points: d.route.map((p) => project(p).join(",")).join(" ") }, routes);
      const [px, py] = project(d.route[1]);
      el("rect", { class: "pickup", x: px - 5, y: py - 5, width: 10, height: 10, transform: `rotate(45 ${px} ${py})` }, routes);
      const [dx, dy] = project(d.route[2]);
      el("circle", { class: "dropoff", cx: dx, cy: dy, r: 6 }, routes);
    }
    const g = el("g", { class: d.flying ? "drone flying" : "drone", "data-drone": d.id }, drones);
    el("circle", { r: d.flying ? 7 : 5 }, g);
    if (d.flying) el("text", { x: 10, y: 4 }, g).textContent = d.id;
    const title = el("title", {}, g);
    title.textContent = d.flying ? `${d.id}: flying ${d.flying}` : `${d.id}: idle`;
    return { drone: d, g };
  });
  scaleBar(svg, project, MAP_W, MAP_H);
  moveDrones();
}

function moveDrones() {
  if (!state.drawn) return;
  const project = projection(state.box, MAP_W, MAP_H);
  const t = serverNow();
  for (const { drone, g } of state.drawn) {
    const where = drone.route.length ? along(drone.route, t) : drone.position;
    const [x, y] = project(where);
    g.setAttribute("transform", `translate(${x.toFixed(1)} ${y.toFixed(1)})`);
    g.dataset.x = x.toFixed(1);
    g.dataset.y = y.toFixed(1);
  }
  $("clock").textContent = formatTime(new Date(t).toISOString());
}

// ---------------------------------------------------------------- the timeline

function drawTimeline() {
  const fleet = state.fleet;
  const svg = $("timeline");
  const height = TL_AXIS + fleet.drones.length * TL_ROW + 6;
  svg.setAttribute("viewBox", `0 0 ${TL_W} ${height}`);
  svg.replaceChildren();
  const t0 = serverNow() - TIMELINE_BEFORE_MS, t1 = serverNow() + TIMELINE_AFTER_MS;
  const x = (t) => TL_LABEL + ((t - t0) / (t1 - t0)) * (TL_W - TL_LABEL - 8);
  const axis = el("g", { class: "axis" }, svg);
  const quarter = 15 * 60e3;
  for (let t = Math.ceil(t0 / quarter) * quarter; t < t1; t += quarter) {
    el("line", { x1: x(t), x2: x(t), y1: TL_AXIS - 6, y2: height }, axis);
    el("text", { x: x(t) + 3, y: 12 }, axis).textContent =
      new Date(t).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
  }
  fleet.drones.forEach((d, i) => {
    const y = TL_AXIS + i * TL_ROW;
    el("rect", { class: "row-bg", x: TL_LABEL, y: y + 1, width: TL_W - TL_LABEL - 8, height: TL_ROW - 2 }, svg);
    el("text", { class: "row-label", x: 4, y: y + 12 }, svg).textContent =
      `${d.id}${d.booked > d.windows.length ? ` +${d.booked - d.windows.length}` : ""}`;
    for (const w of d.windows) {
      const dep = Math.max(Date.parse(w.departure), t0), pick = Date.parse(w.pickupETA);
      const drop = Math.min(Date.parse(w.deliveryETA), t1);
      if (drop <= t0 || dep >= t1) continue;
      const bar = el("g", {}, svg);
      el("title", {}, bar).textContent =
        `${w.deliveryId}: departs ${formatTime(w.departure)}, picks up ${formatTime(w.pickupETA)}, drops off ${formatTime(w.deliveryETA)}`;
      if (pick > dep) {
        el("rect", { class: "win-approach", x: x(dep), y: y + 3, width: Math.max(x(Math.min(pick, t1)) - x(dep), 1), height: TL_ROW - 6, rx: 2 }, bar);
      }
      const carry = Math.max(pick, dep);
      el("rect", { class: "win-carry", x: x(carry), y: y + 3, width: Math.max(x(drop) - x(carry), 2), height: TL_ROW - 6, rx: 2 }, bar);
    }
  });
  el("line", { class: "now-line", x1: x(serverNow()), x2: x(serverNow()), y1: TL_AXIS - 8, y2: height }, svg);
}

async function readFleet() {
  try {
    const { body } = await getJson("", "api/console/fleet");
    state.fleet = body;
    state.skew = Date.parse(body.now) - Date.now();
    const flying = body.drones.filter((d) => d.flying).length;
    $("fleet-note").textContent = `${body.drones.length} drones · ${flying} in flight`;
    drawMap();
    drawTimeline();
    ok();
  } catch (error) { failed(error); }
}

// ---------------------------------------------------------------- the pipeline

function card(name, value, bad = false) {
  const div = document.createElement("div");
  div.className = bad ? "card bad" : "card";
  div.dataset.metric = name;
  div.innerHTML = `<div class="value"></div><div class="name"></div>`;
  div.querySelector(".value").textContent = value;
  div.querySelector(".name").textContent = name;
  return div;
}

async function readPipeline() {
  try {
    const { body } = await getJson("", "api/console/pipeline");
    if (!state.area) {
      state.area = body.serviceArea;
      if (state.fleet) drawMap();
    }
    const processed = Object.values(body.processed).reduce((a, b) => a + b, 0);
    const at = Date.parse(body.now);
    state.pipeline.push({ at, processed });
    state.pipeline = state.pipeline.filter((p) => at - p.at <= 30e3);
    const first = state.pipeline[0];
    const rate = at > first.at ? ((processed - first.processed) * 1000) / (at - first.at) : null;
    const retries = Object.values(body.retries).reduce((a, b) => a + b, 0);
    const open = Object.values(body.circuits).filter((s) => s !== "closed").length;
    const dead = body.deadLetterDepth ?? Object.values(body.deadLettered).reduce((a, b) => a + b, 0);
    $("cards").replaceChildren(
      card("queue depth", body.queueDepth ?? "n/a"),
      card("processed / s", rate === null ? "…" : rate.toFixed(1)),
      card("completed", body.processed.completed ?? 0),
      card("retries", retries + (body.processed.retried ?? 0)),
      card("open circuits", open, open > 0),
      card("dead letters", dead, dead > 0),
    );
    $("circuits").replaceChildren(...Object.entries(body.circuits).map(([service, s]) => {
      const span = document.createElement("span");
      span.className = s;
      span.textContent = `${service}: ${s}`;
      return span;
    }));
    $("pipeline-note").textContent = `workflow idle for ${body.secondsSinceProgress.toFixed(0)} s`;
    ok();
  } catch (error) { failed(error); }
}

// ---------------------------------------------------------------- the deliveries

let stageFilter = "";

async function readDeliveries() {
  const owner = $("owner").value.trim();
  const query = new URLSearchParams({ limit: "200" });
  if (owner) query.set("owner", owner);
  if (stageFilter) query.set("stage", stageFilter);
  try {
    const { body } = await getJson("", `api/console/deliveries?${query}`);
    $("deliveries-note").textContent = stageFilter
      ? `${body.matching} of ${body.total} ${stageFilter}` : `${body.total} in all`;
    $("stages").replaceChildren(...STAGES.map((s) => {
      const chip = document.createElement("span");
      chip.className = `chip stage-${s}${s === stageFilter ? " selected" : ""}`;
      chip.innerHTML = `<span></span><b></b>`;
      chip.firstChild.textContent = s;
      chip.lastChild.textContent = body.stages[s] ?? 0;
      chip.addEventListener("click", () => {
        stageFilter = stageFilter === s ? "" : s;
        $("stage").value = stageFilter;
        deliveriesPoll.now();
      });
      return chip;
    }));
    const now = Date.parse(body.now);
    $("deliveries").replaceChildren(...body.deliveries.map((d) => {
      const tr = document.createElement("tr");
      tr.dataset.delivery = d.id;
      tr.innerHTML = "<td><a></a></td><td></td><td><span></span></td><td></td><td></td>";
      const cells = tr.children;
      const link = cells[0].firstChild;
      link.href = `track/${encodeURIComponent(d.id)}`;
      link.textContent = d.id.length > 14 ? `${d.id.slice(0, 13)}…` : d.id;
      link.title = d.id;
      cells[1].textContent = d.ownerId;
      cells[2].firstChild.className = `stage stage-${d.stage}`;
      cells[2].firstChild.textContent = d.stage;
      cells[3].textContent = d.droneId || "—";
      if (d.failureReason) {
        cells[4].className = "reason";
        cells[4].textContent = d.failureReason;
      } else {
        cells[4].textContent = formatTime(d.deliveryETA);
        cells[4].title = formatIn(Date.parse(d.deliveryETA) - now);
      }
      return tr;
    }));
    ok();
  } catch (error) { failed(error); }
}

$("stage").addEventListener("change", (e) => { stageFilter = e.target.value; deliveriesPoll.now(); });
$("owner").addEventListener("change", () => deliveriesPoll.now());

const fleetPoll = poll(readFleet, 3000);
const pipelinePoll = poll(readPipeline, 2000);
const deliveriesPoll = poll(readDeliveries, 3000);

function refreshAll() {
  fleetPoll.now();
  pipelinePoll.now();
  deliveriesPoll.now();
}

// Between reads, the drones move on their routes and the timeline slides: no requests.
setInterval(() => { if (!document.hidden && state.fleet) { moveDrones(); } }, 250);
setInterval(() => { if (!document.hidden && state.fleet) drawTimeline(); }, 15000);
