/** The sandbox layer: throw-away network namespaces ("hosts") bound to twlab's own processes. */
export { createSandbox, withSandbox, SANDBOX_NET } from './sandbox.js';
export { normaliseSysctlName, parseSysctlAssignment, sysctlPath } from './sysctl-names.js';
export type * from './types.js';
