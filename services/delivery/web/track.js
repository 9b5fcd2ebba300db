// One delivery's journey for its owner: the route from pickup to drop-off, the drone on it,
// the ETAs. Read every few seconds while the page is visible; the drone moves in between
// (it flies straight, at a steady speed, to the pickup and then to the drop-off).

import { NeedsToken, formatIn, formatTime, getJson, poll, setToken, signIn } from "./api.js";
import { bounds, el, grid, projection, scaleBar } from "./geo.js";

const W = 1000, H = 520;
const STEPS = {
  Created: "scheduled", Rescheduled: "scheduled", HeadedToPickup: "pickup",
  HeadedToDropoff: "dropoff", Completed: "done",
};
const ORDER = ["scheduled", "pickup", "dropoff", "done"];
const SAYS = {
  Created: "Scheduled", Rescheduled: "Rescheduled", HeadedToPickup: "Flying to pickup",
  HeadedToDropoff: "On its way", Completed: "Delivered", Cancelled: "Cancelled", Failed: "Failed",
};

const $ = (id) => document.getElementById(id);
const id = decodeURIComponent(location.pathname.split("/").filter(Boolean).pop() || "");
$("delivery-id").textContent = id;
document.title = `Drone Delivery · tracking ${id}`;
const live = $("live");
const state = { delivery: null, status: null, readAt: 0, skew: 0 };
const signin = signIn($("signin"), () => reads.now());
$("forget").addEventListener("click", () => { setToken(""); reads.now(); });

// Where the drone is at `t`: from where it was last seen towards where it is headed, arriving
// at that stop's ETA; standing still otherwise.
function droneAt(t) {
  const s = state.status, d = state.delivery;
  const heading = s.stage === "HeadedToPickup" ? [d.pickup, s.pickupETA]
    : s.stage === "HeadedToDropoff" ? [d.dropoff, s.deliveryETA] : null;
  if (!heading) return s.lastKnownLocation;
  const [to, eta] = heading;
  const from = s.lastKnownLocation, end = Date.parse(eta);
  const f = end > state.readAt ? Math.min(Math.max((t - state.readAt) / (end - state.readAt), 0), 1) : 1;
  return {
    latitude: from.latitude + (to.latitude - from.latitude) * f,
    longitude: from.longitude + (to.longitude - from.longitude) * f,
  };
}

function draw() {
  const s = state.status, d = state.delivery;
  const svg = $("route");
  svg.replaceChildren();
  const box = bounds([d.pickup, d.dropoff, s.lastKnownLocation], 0.6);
  const project = projection(box, W, H, 40);
  el("rect", { class: "map-bg", x: 0, y: 0, width: W, height: H, rx: 8 }, svg);
  grid(svg, box, project, W, H);
  const [px, py] = project(d.pickup), [dx, dy] = project(d.dropoff);
  el("line", { class: "track-line", x1: px, y1: py, x2: dx, y2: dy }, svg);
  const done = el("line", { class: "track-done", x1: px, y1: py, x2: px, y2: py, id: "done-line" }, svg);
  el("rect", { class: "pickup", x: px - 8, y: py - 8, width: 16, height: 16, transform: `rotate(45 ${px} ${py})` }, svg);
  el("text", { class: "label", x: px + 14, y: py + 4 }, svg).textContent = "Pickup";
  el("circle", { class: "dropoff", cx: dx, cy: dy, r: 10 }, svg);
  el("text", { class: "label", x: dx + 15, y: dy + 4 }, svg).textContent = "Drop-off";
  const approach = el("line", { class: "route", id: "approach" }, svg);
  // No drone to show for a delivery no drone carries (failed, or cancelled before booking).
  const carried = Boolean(d.droneId);
  const drone = el("circle", { class: `track-drone ${s.stage}`, r: 10, id: "drone-dot", visibility: carried ? "visible" : "hidden" }, svg);
  const droneLabel = el("text", { class: "label", visibility: carried ? "visible" : "hidden" }, svg);
  droneLabel.textContent = d.droneId;
  scaleBar(svg, project, W, H);
  state.move = () => {
    const where = droneAt(Date.now() + state.skew);
    const [x, y] = project(where);
    drone.setAttribute("cx", x.toFixed(1));
    drone.setAttribute("cy", y.toFixed(1));
    drone.dataset.latitude = where.latitude.toFixed(6);
    drone.dataset.longitude = where.longitude.toFixed(6);
    droneLabel.setAttribute("x", (x + 14).toFixed(1));
    droneLabel.setAttribute("y", (y - 10).toFixed(1));
    const toPickup = s.stage === "HeadedToPickup" || s.stage === "Created" || s.stage === "Rescheduled";
    approach.setAttribute("visibility", carried ? "visible" : "hidden");
    approach.setAttribute("x1", x); approach.setAttribute("y1", y);
    approach.setAttribute("x2", toPickup ? px : x); approach.setAttribute("y2", toPickup ? py : y);
    const loaded = s.stage === "HeadedToDropoff" || s.stage === "Completed";
    done.setAttribute("x2", loaded ? x : px); done.setAttribute("y2", loaded ? y : py);
  };
  state.move();
}

function facts() {
  const s = state.status, d = state.delivery;
  const now = Date.now() + state.skew;
  const over = s.stage === "Cancelled" || s.stage === "Failed";
  $("stage").textContent = SAYS[s.stage] || s.stage;
  $("stage").className = `value stage stage-${s.stage}`;
  $("drone").textContent = d.droneId || "none";
  $("pickup-eta").textContent = over && !d.droneId ? "—" : formatTime(s.pickupETA);
  $("dropoff-eta").textContent = over && !d.droneId ? "—" : formatTime(s.deliveryETA);
  $("pickup-in").textContent = over ? "" : formatIn(Date.parse(s.pickupETA) - now);
  $("dropoff-in").textContent = over ? "" : formatIn(Date.parse(s.deliveryETA) - now);
  const reached = ORDER.indexOf(STEPS[s.stage]);
  for (const step of document.querySelectorAll(".step")) {
    const i = ORDER.indexOf(step.dataset.step);
    step.className = i < reached || (i === reached && s.stage === "Completed") ? "step done"
      : i === reached ? "step current" : "step";
  }
  const banner = $("banner");
  banner.className = `banner shown ${s.stage}`;
  if (s.stage === "Failed") {
    banner.textContent = `This delivery failed: ${d.failureReason || "no reason was recorded"}. No drone will carry it.`;
  } else if (s.stage === "Cancelled") {
    banner.textContent = d.droneId
      ? `This delivery was cancelled at its owner's request; drone ${d.droneId} was released.`
      : "This delivery was cancelled at its owner's request before a drone was booked.";
  } else if (s.stage === "Completed") {
    banner.textContent = `Delivered at ${formatTime(s.deliveryETA)}.`;
  } else {
    banner.className = "banner";
  }
}

async function read() {
  try {
    const path = `api/deliveries/${encodeURIComponent(id)}`;
    const [delivery, status] = await Promise.all([getJson("../", path), getJson("../", `${path}/status`)]);
    state.delivery = delivery.body;
    state.status = status.body;
    state.skew = status.skewMs;
    state.readAt = Date.now() + state.skew;
    draw();
    facts();
    live.className = "live on";
    live.textContent = "live";
  } catch (error) {
    live.className = "live error";
    if (error instanceof NeedsToken) { forget(); live.textContent = "signed out"; signin.ask(error); }
    else if (/HTTP 404/.test(error.message)) { forget(); live.textContent = "not found"; showMissing(); }
    else live.textContent = "unreachable";
  }
}

// What this token may not see is not left on the screen from an earlier one.
function forget() {
  state.move = null;
  $("route").replaceChildren();
  $("banner").className = "banner";
}

function showMissing() {
  const banner = $("banner");
  banner.className = "banner shown Failed";
  banner.textContent = `No delivery ${id} is known to this token (it may not exist yet, or belong to another owner).`;
}

const reads = poll(read, 2000);
setInterval(() => { if (!document.hidden && state.move) { state.move(); facts(); } }, 250);
