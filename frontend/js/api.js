// A small fetch wrapper: JSON in and out, Bearer token, the contract's error body.

/** An HTTP failure carrying the contract's {detail, code} (status 0: network). */
export class ApiError extends Error {
  constructor(status, code, detail, retryAfter = null) {
    super(detail || code || `HTTP ${status}`);
    this.name = "ApiError";
    this.status = status;
    this.code = code || "";
    this.detail = detail || "";
    this.retryAfter = retryAfter;
  }
}

/**
 * Build the client.
 * getToken(): the current token or null.
 * onUnauthorized(): called on a 401 of an authenticated request; returns a promise
 *   resolving to true once the user is signed in again (the request is then retried once).
 */
export function createApi({ getToken, onUnauthorized = null }) {
  async function send(method, path, body, token) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (token) headers.Authorization = `Bearer ${token}`;
    let response;
    try {
      response = await fetch(path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: "same-origin",
        cache: "no-store",
      });
    } catch (err) {
      throw new ApiError(0, "network", String(err && err.message ? err.message : err));
    }
    if (response.status === 204) return null;
    const text = await response.text();
    let data = null;
    if (text) {
      try {
        data = JSON.parse(text);
      } catch {
        data = null;
      }
    }
    if (!response.ok) {
      const retry = response.headers.get("Retry-After");
      throw new ApiError(
        response.status,
        data && typeof data.code === "string" ? data.code : "",
        data && typeof data.detail === "string" ? data.detail : response.statusText,
        retry ? Number(retry) : null,
      );
    }
    return data;
  }

  /**
   * Send a request. options.auth=false: no sign-in prompt on 401, and no token unless
   * options.token names one explicitly.
   */
  async function request(method, path, body, { auth = true, token = null } = {}) {
    try {
      return await send(method, path, body, token || (auth ? getToken() : null));
    } catch (err) {
      if (auth && err instanceof ApiError && err.status === 401 && onUnauthorized) {
        const again = await onUnauthorized();
        if (again) return send(method, path, body, getToken());
      }
      throw err;
    }
  }

  return {
    request,
    get: (path, opts) => request("GET", path, undefined, opts),
    post: (path, body = {}, opts) => request("POST", path, body, opts),
  };
}
