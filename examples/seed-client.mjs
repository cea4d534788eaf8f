// The seed's failing client, reproduced in a throw-away namespace (run as root: node examples/seed-client.mjs).
/* global console */
import { CHURN, remote, withSandbox, twlabArgv } from 'twlab';

const summary = await withSandbox(
  { portRange: { low: 50000, high: 50099 }, sysctls: { tcp_tw_reuse: 0 } }, // 100 ephemeral ports
  async ({ client: host }) => {
    const server = host.spawn(twlabArgv('serve', '--listen', '127.0.0.1:8080', '--json'));
    await new Promise((listening) => server.stdout.once('data', listening));
    return remote(host, CHURN).runChurn({ to: '127.0.0.1:8080', count: 200 });
  },
);
console.log(summary.firstError, `${summary.localPortsUsed} local ports used`);
// -> { errno: 'EADDRNOTAVAIL', code: 99, syscall: 'connect', atIteration: 101 } 100 local ports used
