/**
 * `top`'s counting and view without a kernel: which tracer events count as what, for whom, the
 * bounds, the interval rates and the order by risk. (The kernel tests are in top.test.ts.)
 */
import { describe, expect, it } from 'vitest';
import { MAX_DESTINATIONS, MAX_ROWS, TopCounter } from '../../src/observe/top.js';
import { SORTS, topView, type NetnsFacts } from '../../src/observe/top-view.js';
import type { FailedConnect, Transition } from '../../src/observe/trace-timeline.js';

const SERVER = { address: '127.0.0.1', port: 7000 };

function step(
  pid: number,
  oldState: string,
  newState: string,
  opts: { netns?: number; port?: number; remote?: typeof SERVER; source?: Transition['source'] } = {},
): Transition {
  return {
    kind: 'transition',
    timeMs: 0,
    time: '',
    pid,
    task: `p${pid}`,
    netns: opts.netns ?? 1,
    family: 4,
    local: { address: '127.0.0.1', port: opts.port ?? 40000 },
    remote: opts.remote ?? SERVER,
    oldState,
    newState,
    source: opts.source ?? 'tracepoint',
  };
}

function failed(pid: number, errno: string | null): FailedConnect {
  return {
    kind: 'connect-failed',
    timeMs: 0,
    time: '',
    errno,
    code: null,
    pid,
    task: `p${pid}`,
    family: 4,
    remote: SERVER,
    localPort: 0,
    netns: 1,
  };
}

/** One client connection (pid 10) to a server (pid 20), the client closing first. */
function connection(c: TopCounter): void {
  for (const ev of [
    step(10, 'CLOSE', 'SYN-SENT', { port: 0 }),
    step(10, 'SYN-SENT', 'ESTAB'),
    step(20, 'LISTEN', 'SYN-RECV'),
    step(20, 'SYN-RECV', 'ESTAB'),
    step(10, 'ESTAB', 'FIN-WAIT-1'),
    step(20, 'ESTAB', 'CLOSE-WAIT'),
    step(10, 'FIN-WAIT-1', 'FIN-WAIT-1'), // close() after shutdown(): not a second close
    step(10, 'FIN-WAIT-1', 'FIN-WAIT-2'),
    step(10, 'FIN-WAIT-2', 'CLOSE'),
    step(20, 'CLOSE-WAIT', 'LAST-ACK'),
    step(20, 'LAST-ACK', 'CLOSE'),
    step(10, 'FIN-WAIT-2', 'TIME-WAIT', { source: 'sock_diag' }),
  ])
    c.add(ev);
}

const noFacts: NetnsFacts = { pressure: () => undefined, owner: () => null };

describe('TopCounter', () => {
  it('each side counts what its process did, nothing of the other', () => {
    const c = new TopCounter();
    connection(c);
    connection(c);
    c.add(failed(10, 'EADDRNOTAVAIL'));
    c.add(failed(10, null));
    const [client, server] = c.snapshot().sort((a, b) => a.pid - b.pid);
    expect(client).toMatchObject({
      pid: 10,
      netns: 1,
      connects: 2,
      failedConnects: { EADDRNOTAVAIL: 1, unknown: 1 },
      activeCloses: 2,
      passiveCloses: 0,
      accepts: 0,
      timeWaitCreated: 2,
      timeWaitAlive: 2,
    });
    expect(client!.destinations).toEqual([
      { remote: '127.0.0.1:7000', connects: 2, failedConnects: 2, timeWaitCreated: 2 },
    ]);
    expect(server).toMatchObject({ pid: 20, connects: 0, activeCloses: 0, passiveCloses: 2, accepts: 2 });
    expect(server!.timeWaitCreated).toBe(0);
  });

  it('a TIME-WAIT that ends is no longer alive; interval counts start again at each snapshot', () => {
    const c = new TopCounter();
    connection(c);
    c.snapshot();
    c.add(step(10, 'TIME-WAIT', 'CLOSE', { source: 'sock_diag' }));
    const [client] = c.snapshot().filter((p) => p.pid === 10);
    expect(client).toMatchObject({ timeWaitCreated: 1, timeWaitAlive: 0, connects: 1 });
    expect(client!.interval).toMatchObject({ connects: 0, timeWaitCreated: 0 });
  });

  it('events of namespaces not accepted, and transitions it does not count, make no row', () => {
    const c = new TopCounter((netns) => netns === 1);
    c.add(step(30, 'CLOSE', 'SYN-SENT', { netns: 2 }));
    c.add(step(0, 'SYN-SENT', 'CLOSE', { port: 0 }));
    expect(c.snapshot()).toEqual([]);
  });

  it('bounded: rows past MAX_ROWS are counted as dropped, destinations past MAX_DESTINATIONS go to "other"', () => {
    const c = new TopCounter();
    for (let pid = 1; pid <= MAX_ROWS + 3; pid++) c.add(step(pid, 'CLOSE', 'SYN-SENT'));
    expect(c.snapshot()).toHaveLength(MAX_ROWS);
    expect(c.droppedRows).toBe(3);
    const d = new TopCounter();
    for (let port = 1; port <= MAX_DESTINATIONS + 5; port++)
      d.add(step(1, 'CLOSE', 'SYN-SENT', { remote: { address: '10.0.0.1', port } }));
    const dests = d.snapshot()[0]!.destinations;
    expect(dests).toHaveLength(MAX_DESTINATIONS + 1);
    expect(dests.find((x) => x.remote === 'other')).toMatchObject({ connects: 5 });
  });
});

describe('topView', () => {
  it("rates per second of the interval; the census's ports held and exhaustion per destination; most at risk first", () => {
    const c = new TopCounter();
    connection(c);
    for (let i = 0; i < 4; i++) c.add(step(30, 'CLOSE', 'SYN-SENT', { netns: 2 }));
    const facts: NetnsFacts = {
      pressure: (netns) =>
        netns === 1
          ? [
              {
                remote: '127.0.0.1:7000',
                local: '127.0.0.1',
                inUse: 90,
                timeWait: 90,
                rangeSize: 100,
                ratio: 0.9,
                ratePerSec: 2,
                secondsToExhaustion: 5,
              },
            ]
          : undefined,
      owner: (netns) =>
        netns === 2 ? { kind: 'container', runtime: 'docker', id: 'abc', name: 'web', pod: null } : null,
    };
    const view = topView(c.snapshot(), 2, facts);
    // pid 10 runs out in 5 s: first; then 30 (4 connects, nothing failing), then the server.
    expect(view.map((p) => p.pid)).toEqual([10, 30, 20]);
    expect(view[0]!.destinations[0]).toMatchObject({ portsHeld: 90, rangeSize: 100, secondsToExhaustion: 5 });
    expect(view[0]!.rates).toMatchObject({ connects: 0.5, activeCloses: 0.5 });
    expect(view[1]).toMatchObject({ owner: { id: 'abc' }, rates: { connects: 2 } });
    // The other orders (top's keys) fall back to risk on ties.
    expect([...view].sort(SORTS.connects).map((p) => p.pid)).toEqual([30, 10, 20]);
    expect([...view].sort(SORTS.timeWait).map((p) => p.pid)).toEqual([10, 30, 20]);
    // Without a census of the namespace: the destination stays, held and exhaustion unknown.
    const [unknown] = topView(c.snapshot(), 2, noFacts).filter((p) => p.pid === 10);
    expect(unknown!.destinations[0]).toMatchObject({
      connects: 1,
      portsHeld: null,
      secondsToExhaustion: null,
    });
  });
});
