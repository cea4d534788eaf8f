/**
 * S1-13: TIME_WAIT assassination. One host (loopback): the client closes first and holds
 * TIME_WAIT; a raw socket captured the server's segments, so the sequence number the TIME_WAIT
 * socket expects next is known. We inject an RST from the server's address and port: first one
 * out of the window (control), then one exactly in window, and read the table after each.
 * Measured with tcp_rfc1337 0 and 1.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Claim, Judgement } from '../types.js';
import type { Sandbox } from '../../sandbox/types.js';
import { closeInOrder } from '../probes/scenarios.js';
import { raw, statesOf } from '../probes/remote.js';

export interface AssassinationOutcome {
  rfc1337: number;
  /** Sequence number the TIME_WAIT socket expects next, from the captured segments. */
  expectedSeq: number;
  /** The client side of the connection before any RST, after the out-of-window RST, after the in-window RST. */
  before: string[];
  afterOutOfWindowRst: string[];
  afterInWindowRst: string[];
}

export interface S1_13Measured {
  runs: AssassinationOutcome[];
}

const PORT = 5131;
/** Far outside any receive window. */
const OUT_OF_WINDOW = 0x40000000;

async function assassinate(sb: Sandbox, rfc1337: number): Promise<AssassinationOutcome> {
  const r = raw(sb.client);
  const cap = await r.capture();
  try {
    const c = await closeInOrder(sb, PORT, 'client');
    const seq = await r.expectedSeq({ fd: cap.fd, fromPort: PORT, toPort: c.clientPort });
    if (seq.nextSeq === null || !seq.sawFin) {
      throw new Error(
        `the capture saw ${seq.segments} segments from the server and no FIN: cannot compute the sequence number`,
      );
    }
    const addr = sb.server.address;
    const rst = (s: number): Promise<unknown> =>
      r.sendRst({
        fd: cap.fd,
        src: addr,
        sport: PORT,
        dst: sb.client.address,
        dport: c.clientPort,
        seq: s >>> 0,
      });
    const states = (): Promise<string[]> => statesOf(sb.client, c.clientPort, PORT);
    const before = await states();
    await rst(seq.nextSeq + OUT_OF_WINDOW);
    await sleep(50);
    const afterOutOfWindowRst = await states();
    await rst(seq.nextSeq);
    await sleep(50);
    const afterInWindowRst = await states();
    return { rfc1337, expectedSeq: seq.nextSeq, before, afterOutOfWindowRst, afterInWindowRst };
  } finally {
    await r.closeCapture({ fd: cap.fd });
  }
}

export const claim: Claim<S1_13Measured> = {
  id: 'S1-13',
  claim:
    'An RST that reaches a socket in TIME_WAIT ends it early (TIME_WAIT assassination), and an implementation can refuse to (on Linux: tcp_rfc1337).',
  source: {
    seed: '001_f645a441ee13af30.txt',
    where: 'Chinese part, "2.3 如何结束TIME_WAIT状态呢" (TIME_WAIT Assassination)',
    quote:
      '对方已经关闭...就会回复一个RST包给HOST1。导致HOST1立即结束 ... 当处于TIME_WAIT状态时不处理RST包即可',
  },
  estimateMs: 4000,
  async run(ctx) {
    ctx.progress('crafted RST with tcp_rfc1337 0 and 1');
    const sbs = await Promise.all([0, 1].map((v) => ctx.sandbox({ hosts: 1, sysctls: { tcp_rfc1337: v } })));
    const runs = await Promise.all(sbs.map((sb, i) => assassinate(sb, i)));
    return { runs };
  },
  judge(m): Judgement {
    const tw = (s: string[]): boolean => s.includes('TIME_WAIT');
    const say = (o: AssassinationOutcome): string =>
      `tcp_rfc1337=${o.rfc1337}: before ${o.before.join('+') || 'none'}, after an out-of-window RST ` +
      `${o.afterOutOfWindowRst.join('+') || 'gone'}, after an in-window RST (seq ${o.expectedSeq}) ${o.afterInWindowRst.join('+') || 'gone'}`;
    const text = m.runs.map(say).join('; ');
    if (m.runs.some((o) => !tw(o.before) || !tw(o.afterOutOfWindowRst))) {
      return { verdict: 'not-tested', explanation: `The TIME_WAIT socket was not there to attack: ${text}.` };
    }
    const off = m.runs.find((o) => o.rfc1337 === 0);
    const on = m.runs.find((o) => o.rfc1337 === 1);
    const killed = off !== undefined && !tw(off.afterInWindowRst);
    const refused = on !== undefined && tw(on.afterInWindowRst);
    if (killed && refused) return { verdict: 'confirmed', explanation: `${text}.` };
    if (killed) {
      return {
        verdict: 'depends',
        explanation: `The RST ended TIME_WAIT even with tcp_rfc1337=1: ${text}.`,
        conditions: [say(off!), say(on ?? off!)],
      };
    }
    return { verdict: 'refuted', explanation: `An in-window RST did not end TIME_WAIT: ${text}.` };
  },
};
