/**
 * The traffic layer's public API: the seeds' server (startServer, runServer) and churn client.
 */
export * from './server.js';
