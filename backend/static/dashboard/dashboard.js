// The live dashboard page: sign in over REST, load GET /api/v1/dashboard, then follow the
// `dashboard` topic with the Triton client. The token lives in sessionStorage (this tab only)
// and travels as a bearer header: the API trusts no cookie.

const clientUrl = document.querySelector("script[data-client]").dataset.client;
const { connect } = await import(clientUrl);

const TOKEN_KEY = "triton.token";
const $ = (id) => document.getElementById(id);
const api = (path, options = {}) => {
  const headers = { Accept: "application/json", ...(options.headers || {}) };
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = `Bearer ${token}`;
  return fetch(`/api/v1${path}`, { ...options, headers });
};

let client = null;
let shownAt = ""; // computed_at of the figures on screen

function show(view) {
  for (const id of ["login-view", "forbidden-view", "dashboard-view"]) $(id).hidden = id !== view;
  $("logout").hidden = view === "login-view";
}

function setState(state) {
  const badge = $("connection");
  badge.dataset.state = state;
  badge.textContent = state;
}

function text(value) {
  return document.createTextNode(String(value));
}

function row(cells) {
  const tr = document.createElement("tr");
  for (const cell of cells) {
    const td = document.createElement("td");
    td.append(text(cell));
    tr.append(td);
  }
  return tr;
}

function render(figures) {
  // A REST answer may arrive after a newer pushed update: never go back in time.
  if (figures.computed_at < shownAt) return;
  shownAt = figures.computed_at;
  $("orders-today").textContent = figures.orders_today;
  $("revenue-today").textContent = figures.revenue_today;
  $("users-online").textContent = figures.users_online;
  $("by-status").replaceChildren(
    ...Object.entries(figures.orders_by_status).map(([status, count]) => row([status, count])),
  );
  $("top-products").replaceChildren(
    ...figures.top_products.map((p) => row([p.name, p.quantity, p.revenue])),
  );
  const at = $("computed-at");
  at.dateTime = figures.computed_at;
  at.textContent = new Date(figures.computed_at).toLocaleTimeString();
  document.body.dataset.ordersToday = figures.orders_today; // read by the browser tests
}

async function reload() {
  const answer = await api("/dashboard");
  if (answer.status === 401) return signOut();
  if (answer.status === 403) return show("forbidden-view");
  if (answer.ok) render(await answer.json());
}

async function start() {
  const me = await api("/auth/me");
  if (!me.ok) return signOut();
  const user = await me.json();
  if (!user.permissions.includes("orders.view_any")) {
    show("forbidden-view");
    return;
  }
  show("dashboard-view");
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  client = connect({
    url: `${scheme}://${location.host}/ws/v1/`,
    getToken: async () => sessionStorage.getItem(TOKEN_KEY),
    onState: setState,
  });
  // Load once the server confirmed the subscription, not before: an update published
  // between the load and the subscription would be lost (this page's own socket coming
  // online is one). Again after every reconnect, which also covers a gap the server could
  // not replay; render() keeps whichever figures are newest.
  client.subscribe("dashboard", (frame) => render(frame.data), { onSubscribed: () => reload() });
}

function signOut() {
  if (client) client.close();
  client = null;
  shownAt = "";
  const token = sessionStorage.getItem(TOKEN_KEY);
  sessionStorage.removeItem(TOKEN_KEY);
  if (token) fetch("/api/v1/auth/logout", { method: "POST", headers: { Authorization: `Bearer ${token}` } });
  setState("offline");
  show("login-view");
}

$("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("login-error").textContent = "";
  const answer = await fetch("/api/v1/auth/login", {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    body: JSON.stringify({ email: $("email").value, password: $("password").value, device_name: "dashboard" }),
  });
  if (!answer.ok) {
    const problem = await answer.json().catch(() => ({}));
    $("login-error").textContent = problem.detail || problem.title || "Sign-in failed.";
    return;
  }
  const { token } = await answer.json();
  sessionStorage.setItem(TOKEN_KEY, token);
  $("password").value = "";
  await start();
});

$("logout").addEventListener("click", signOut);

if (sessionStorage.getItem(TOKEN_KEY)) start();
else show("login-view");
