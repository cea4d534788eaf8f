/**
 * A bounded HTTP GET, for running inside a sandbox host through `remote()` (tests):
 * a server listening in a host's namespace is reachable only from inside it.
 */
export interface HttpGetResult {
  status: number;
  body: string;
  ms: number;
}

export async function httpGet(url: string, timeoutMs = 10_000): Promise<HttpGetResult> {
  const t0 = performance.now();
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  const body = await res.text();
  return { status: res.status, body, ms: performance.now() - t0 };
}
