/**
 * The modules traffic code and its callers run inside sandbox hosts (the churn engine, the server,
 * the one-request client; the router's conntrack and its events for --nat), each path declared once with its type.
 */
import type * as Conntrack from '../observe/conntrack.js';
import type * as ConntrackEvents from '../observe/conntrack-events.js';
import { remoteModule } from '../sandbox/remote.js';
import type * as Churn from './churn.js';
import type * as Server from './server.js';
import type * as ServerClient from './server-client.js';

export const CHURN = remoteModule<typeof Churn>('traffic/churn.js');
export const SERVER = remoteModule<typeof Server>('traffic/server.js');
export const SERVER_CLIENT = remoteModule<typeof ServerClient>('traffic/server-client.js');
export const CONNTRACK = remoteModule<typeof Conntrack>('observe/conntrack.js');
/** The router's conntrack events (NEW/UPDATE/DESTROY with the NAT port), watched in its namespace. */
export const CONNTRACK_EVENTS = remoteModule<typeof ConntrackEvents>('observe/conntrack-events.js');
