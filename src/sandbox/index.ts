/** The sandbox layer: throw-away network namespaces ("hosts") bound to twlab's own processes. */
export { createSandbox, withSandbox } from './sandbox.js';
export { NAT_NET, SANDBOX_NET } from './topology.js';
export { normaliseSysctlName, parseSysctlAssignment } from './sysctl-names.js';
export { remote, remoteModule, type Remote, type RemoteModule, type RemoteEvent } from './remote.js';
export type * from './types.js';
