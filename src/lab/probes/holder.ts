/**
 * A program (not a module) that runs inside a sandbox host as its own process, to be killed:
 * `node dist/lab/probes/holder.js ADDRESS PORT`. It connects, prints {"port": LOCAL_PORT} on one
 * line, never reads, and exits by itself after 60 s at the latest. S1-04 kills it with SIGKILL to
 * see what the kernel does with the connection of a process that dies.
 */
import { dial } from './tcp.js';

const [address, portText] = process.argv.slice(2);
const LIFETIME_MS = 60_000;

const d = await dial({ address: address ?? '127.0.0.1', port: Number(portText), timeoutMs: 3000 });
process.stdout.write(`${JSON.stringify(d.ok ? { port: d.local?.port } : { error: d.errno })}\n`);
setTimeout(() => process.exit(0), LIFETIME_MS);
