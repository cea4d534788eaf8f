/**
 * A bounded HTTP GET, for running inside a sandbox host through `host.call` (tests, the bench):
 * a server listening in a host's namespace is reachable only from inside it.
 */
export interface HttpGetResult {
  status: number;
  body: string;
  ms: number;
}

/** `timeout` may be host.call's trailing emit function when left out: then 10 s. */
export async function httpGet(url: string, timeout?: unknown): Promise<HttpGetResult> {
  const t0 = performance.now();
  const ms = typeof timeout === 'number' ? timeout : 10_000;
  const res = await fetch(url, { signal: AbortSignal.timeout(ms) });
  const body = await res.text();
  return { status: res.status, body, ms: performance.now() - t0 };
}

/** GET `url` n times in a row; the time of each (for the scrape benchmark). */
export async function timeGets(
  url: string,
  n: number,
  _emit?: unknown,
): Promise<{ ms: number[]; lastBody: string }> {
  const ms: number[] = [];
  let lastBody = '';
  for (let i = 0; i < Math.min(n, 100); i++) {
    const r = await httpGet(url, 30_000);
    if (r.status !== 200) throw new Error(`GET ${url}: ${r.status}`);
    ms.push(r.ms);
    lastBody = r.body;
  }
  return { ms, lastBody };
}
