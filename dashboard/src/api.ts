// The dashboard's own calls (see src/dashboard/api.rs): every one goes to
// /api/..., carried by the HttpOnly cookie the login set.

export interface Port {
  IP?: string;
  PrivatePort: number;
  PublicPort?: number;
  Type: string;
}

export interface Container {
  Id: string;
  Names: string[];
  Image: string;
  State: string;
  Status: string;
  Created: number;
  Labels: Record<string, string>;
  Ports: Port[];
  Health?: { Status?: string };
}

export class ApiError extends Error {
  constructor(
    public status: number,
    message: string,
  ) {
    super(message);
  }
}

async function failure(r: Response, what: string): Promise<ApiError> {
  let msg = `${r.status} ${r.statusText}`;
  try {
    const text = await r.text();
    try {
      msg = JSON.parse(text).message ?? text;
    } catch {
      msg = text.trim() || msg;
    }
  } catch {
    // keep the status line
  }
  return new ApiError(r.status, `${what}: ${msg}`);
}

export async function getJson<T>(path: string, what: string): Promise<T> {
  const r = await fetch(`/api/${path}`, { credentials: "same-origin" });
  if (!r.ok) throw await failure(r, what);
  return (await r.json()) as T;
}

export async function act(method: "POST" | "DELETE", path: string, what: string): Promise<void> {
  const r = await fetch(`/api/${path}`, { method, credentials: "same-origin" });
  // 304: started or stopped already, as Docker answers.
  if (!r.ok && r.status !== 304) throw await failure(r, what);
}

/// Reads a stream of bytes until it ends or `signal` aborts, handing each
/// chunk to `each`.
export async function stream(
  path: string,
  what: string,
  signal: AbortSignal,
  each: (chunk: Uint8Array) => void,
  opened?: () => void,
): Promise<void> {
  const r = await fetch(`/api/${path}`, { credentials: "same-origin", signal });
  if (!r.ok || !r.body) throw await failure(r, what);
  opened?.();
  const reader = r.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return;
    if (value) each(value);
  }
}

/// Splits a byte stream of JSON values, one a line.
export function jsonLines<T>(each: (v: T) => void): (chunk: Uint8Array) => void {
  const decoder = new TextDecoder();
  let rest = "";
  return (chunk) => {
    rest += decoder.decode(chunk, { stream: true });
    let nl: number;
    while ((nl = rest.indexOf("\n")) >= 0) {
      const line = rest.slice(0, nl).trim();
      rest = rest.slice(nl + 1);
      if (line) {
        try {
          each(JSON.parse(line) as T);
        } catch {
          // a line that is not JSON: skipped
        }
      }
    }
  };
}

/// Docker's multiplexed log stream (8-byte headers: stream, 0, 0, 0, size)
/// split into its frames; a container with a tty sends plain bytes.
export function demux(tty: boolean, each: (stream: number, data: Uint8Array) => void) {
  let buf = new Uint8Array(0);
  return (chunk: Uint8Array) => {
    if (tty) {
      each(1, chunk);
      return;
    }
    const joined = new Uint8Array(buf.length + chunk.length);
    joined.set(buf);
    joined.set(chunk, buf.length);
    let at = 0;
    while (joined.length - at >= 8) {
      const size =
        ((joined[at + 4] << 24) >>> 0) + (joined[at + 5] << 16) + (joined[at + 6] << 8) + joined[at + 7];
      if (joined.length - at - 8 < size) break;
      each(joined[at], joined.subarray(at + 8, at + 8 + size));
      at += 8 + size;
    }
    buf = joined.slice(at);
  };
}
