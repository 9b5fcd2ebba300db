// Calls to the public API, with the bearer token a user pasted (kept for this tab only),
// and polling that stops while the page is hidden: nobody watching costs the services nothing.

const TOKEN_KEY = "drone-delivery.token";

export class NeedsToken extends Error {
  constructor(status, detail) {
    super(detail || `HTTP ${status}`);
    this.status = status;
  }
}

export function token() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

export function setToken(value) {
  const bare = value.trim().replace(/^Bearer\s+/i, "");
  if (bare) sessionStorage.setItem(TOKEN_KEY, bare);
  else sessionStorage.removeItem(TOKEN_KEY);
}

// `base` is the API root relative to the page ("" beside /console, "../" under /track/),
// so the page works with and without the version prefix.
export async function getJson(base, path) {
  const headers = { Accept: "application/json" };
  const t = token();
  if (t) headers.Authorization = `Bearer ${t}`;
  const response = await fetch(base + path, { headers, cache: "no-store" });
  if (response.status === 401 || response.status === 403) {
    let detail = "";
    try { detail = (await response.json()).detail; } catch { /* not JSON */ }
    throw new NeedsToken(response.status, detail);
  }
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  const body = await response.json();
  // How far this machine's clock is from the server's, for moving things between reads.
  const date = Date.parse(response.headers.get("Date") || "");
  return { body, skewMs: Number.isNaN(date) ? 0 : date - Date.now() };
}

// Call `read` every `everyMs` while the page is visible; never two at once.
export function poll(read, everyMs) {
  let timer = null;
  let running = false;
  const tick = async () => {
    timer = null;
    if (document.hidden || running) return;
    running = true;
    try { await read(); } finally {
      running = false;
      if (!document.hidden) timer = setTimeout(tick, everyMs);
    }
  };
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && timer === null && !running) tick();
  });
  tick();
  return { now: () => { if (timer !== null) clearTimeout(timer); timer = null; tick(); } };
}

// The sign-in strip: shown when the API asks for a token; a pasted one is kept.
export function signIn(element, onToken) {
  const form = element.querySelector("form");
  const input = element.querySelector("input");
  const message = element.querySelector(".message");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    setToken(input.value);
    input.value = "";
    element.classList.remove("shown");
    onToken();
  });
  return {
    ask(error) {
      message.textContent = error.status === 403
        ? `This token may not see this: ${error.message}.`
        : "Authentication is on: paste a bearer token.";
      element.classList.add("shown");
    },
  };
}

export function formatTime(iso) {
  return new Date(iso).toLocaleTimeString([], {
    hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23",
  });
}

export function formatIn(ms) {
  const s = Math.round(Math.abs(ms) / 1000);
  const text = s >= 3600 ? `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`
    : s >= 60 ? `${Math.floor(s / 60)} min ${s % 60} s` : `${s} s`;
  return ms >= 0 ? `in ${text}` : `${text} ago`;
}
