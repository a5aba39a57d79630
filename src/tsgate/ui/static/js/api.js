// Talking to tsgate: the caller's token, JSON or MessagePack bodies, problem+json errors.

const TOKEN_KEY = "tsgate.token";
export const MSGPACK = "application/x-msgpack";

export function getToken() {
  return localStorage.getItem(TOKEN_KEY) || "";
}

export function setToken(token) {
  if (token) localStorage.setItem(TOKEN_KEY, token);
  else localStorage.removeItem(TOKEN_KEY);
}

/** An error answer from tsgate, carrying the problem's title and detail. */
export class ApiError extends Error {
  constructor(status, title, detail, retryAfterS = null) {
    super(`${title}: ${detail}`);
    this.status = status;
    this.title = title;
    this.detail = detail;
    this.retryAfterS = retryAfterS;
  }
}

function headers(accept, extra = {}) {
  const h = { Accept: accept, ...extra };
  const token = getToken();
  if (token) h.Authorization = `Bearer ${token}`;
  return h;
}

async function problemOf(response) {
  const retry = response.headers.get("Retry-After");
  let title = response.statusText || `HTTP ${response.status}`;
  let detail = "";
  try {
    const text = await response.text();
    try {
      const body = JSON.parse(text);
      title = body.title || title;
      detail = body.detail || body.message || "";
    } catch {
      detail = text.slice(0, 300);
    }
  } catch {
    // the body itself failed: keep the status line
  }
  return new ApiError(response.status, title, detail, retry === null ? null : Number(retry));
}

/** fetch() with the token; a network failure becomes an ApiError too. */
export async function request(url, { method = "GET", accept = "application/json", body, signal } = {}) {
  const extra = body === undefined ? {} : { "Content-Type": "application/json" };
  let response;
  try {
    response = await fetch(url, {
      method,
      headers: headers(accept, extra),
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
    });
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError(0, "Network error", `tsgate did not answer (${err.message})`);
  }
  if (!response.ok && response.status !== 202) throw await problemOf(response);
  return response;
}

/** A JSON endpoint's body. */
export async function getJson(url, options = {}) {
  const response = await request(url, options);
  return response.status === 204 ? null : response.json();
}

/** Decode a body as MessagePack or JSON by its Content-Type; returns [object, format]. */
export async function readBody(response) {
  const bytes = new Uint8Array(await response.arrayBuffer());
  const type = response.headers.get("Content-Type") || "";
  if (type.includes("msgpack")) {
    return [globalThis.MessagePack.decode(bytes), "msgpack", bytes.byteLength];
  }
  return [JSON.parse(new TextDecoder().decode(bytes)), "json", bytes.byteLength];
}

/** Bytes on the wire for ``url`` (compressed body) when the browser tells us. */
export function transferredBytes(url, fallback) {
  const absolute = new URL(url, location.href).href;
  const entries = performance.getEntriesByName(absolute);
  const last = entries[entries.length - 1];
  return last && last.encodedBodySize ? last.encodedBodySize : fallback;
}
