// REST calls of docs/api.md. Every error becomes an ApiError with the API's stable code, so
// pages choose their message by code, not by parsing text.

export class ApiError extends Error {
  constructor(status, code, message, retryAfterSeconds = null) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

// The CSRF token of the advisor's session (from the login, set-up or session response): every
// cookie-authenticated write sends it back as X-CSRF-Token.
let csrfToken = null;

export function setCsrfToken(token) {
  csrfToken = token || null;
}

export function getCsrfToken() {
  return csrfToken;
}

export async function api(method, path, body) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET' && method !== 'HEAD' && csrfToken) headers['X-CSRF-Token'] = csrfToken;
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'same-origin',
      cache: 'no-store',
    });
  } catch (err) {
    throw new ApiError(0, 'network', 'The server cannot be reached. Check your internet connection and try again.');
  }
  if (response.status === 204) return null;
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) {
    const error = (data && data.error) || {};
    const retryAfter = Number.parseInt(response.headers.get('Retry-After') || '', 10);
    throw new ApiError(response.status, error.code || `http_${response.status}`,
      error.message || `The server answered ${response.status}.`,
      Number.isFinite(retryAfter) ? retryAfter : null);
  }
  return data;
}

export const get = (path) => api('GET', path);
export const post = (path, body = {}) => api('POST', path, body);
export const del = (path) => api('DELETE', path);

// The advisor's session, or null when not logged in.
export async function currentSession() {
  try {
    const session = await get('/api/v1/session');
    setCsrfToken(session.csrfToken);
    return session;
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return null;
    throw err;
  }
}

export async function iceServers() {
  const answer = await get('/api/v1/ice-servers');
  return Array.isArray(answer.iceServers) ? answer.iceServers : [];
}
