/**
 * The observe layer's public API: the kernel's TCP table (sock_diag, /proc fallback), the census
 * built from it, doctor's findings, sysctls and counters, read in the caller's namespace.
 */
export { openTcpDump, dumpTcp, decodeRecord, addressAt } from './sockdiag.js';
export type { TcpSocketRecord, TcpDump, DumpOptions, DumpSource } from './sockdiag.js';
export { DIAG } from './sockdiag-layout.js';
export type { RecordVisitor } from './sockdiag-layout.js';
export { tcpStateName, tcpStateNumber, stateMask, type TcpStateName } from './sockdiag-states.js';
export * as tcpState from './sockdiag-states.js';
export { takeCensus, secondsToExhaustion } from './census.js';
export type { CensusOptions, CensusResult, PressureEntry } from './census.js';
export { readSysctl, readSysctls, readPortRange, readReservedPorts, ephemeralPorts } from './sysctl.js';
export type { EphemeralPorts } from './sysctl.js';
export { readCounters, readSockstat, readTcpExt } from './counters.js';
export type { Counters, Sockstat } from './counters.js';
export { runDoctor, DOCTOR_SYSCTLS } from './doctor.js';
export type { DoctorResult, DoctorOptions, Finding, Fix } from './doctor.js';
export { inspectPort, predictBind, addressesOverlap } from './doctor-port.js';
export type { PortReport, PortHolder, BindPrediction, BindVerdict } from './doctor-port.js';
export * from './trace.js';
export { ownerFromCgroup } from './cgroup-owner.js';
export type { Owner, PodRef } from './cgroup-owner.js';
export { discoverNetns } from './namespaces.js';
export type { NetnsInfo, NetnsDiscovery, DiscoverOptions } from './namespaces.js';
