/**
 * The traffic layer's public API: the seeds' server (startServer, runServer) and churn client.
 */
export * from './server.js';
export {
  requestOnce,
  type RequestOnceOptions,
  type RequestOnceResult,
  type RequestClose,
} from './server-client.js';
export * from './churn.js';
export { CHURN, SERVER, SERVER_CLIENT } from './remote.js';
export {
  runChurnInSandbox,
  startChurnServer,
  type SandboxChurnSummary,
  type ChurnServer,
} from './churn-sandbox.js';
