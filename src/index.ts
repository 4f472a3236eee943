/** baton's public API. */

/** Creates the runtime that a host embeds: `start()`, `dispatch()`, `status()`, `stop()`. */
export { createRuntime } from './runtime/runtime.ts';
/** Types of the runtime's options, results, status and events. */
export type { RuntimeOptions } from './runtime/runtime.ts';
export type { Runtime, Dispatched, RuntimeStatus, RuntimeEvents, DeviceView, DeviceState, Alarm } from './api.ts';
/** What a remote client reads (`baton serve`): a message's fate, who leads and where, the event journal. */
export type { MessageFate, LeaderView, EventJournalView, JournalEntry, JournalEvent, JournalRead, FollowedEntry, SwitchStep } from './api.ts';
/** Starts an agent in this process (what `baton agent` runs). */
export { startAgent } from './agent/worker.ts';
/** Handle of a running agent. */
export type { AgentHandle } from './agent/worker.ts';
/** Starts the bundled device simulator (what `baton device` runs). */
export { startDeviceSimulator } from './devices/simulator.ts';
/** Types of the device simulator. */
export type { DeviceSimulator, DeviceSimulatorOptions, DeviceFaults, AppliedEntry } from './devices/simulator.ts';
/** The one error class, with a stable `code`. */
export { BatonError, isBatonError } from './errors.ts';
/** Error codes. */
export type { BatonErrorCode } from './errors.ts';
/** A fresh deployment secret (what `baton secret` prints). */
export { newSecret } from './trust.ts';
/** The credential of one agent, derived from the deployment secret (what `baton agent-key ID` prints). */
export { agentCredential } from './trust.ts';
/** The RabbitMQ permissions of the runtime and of one agent under a namespace (README "Trust and security"). */
export { runtimePermissions, agentPermissions } from './adapters/amqp/permissions.ts';
/** Reads and validates a devices file. */
export { loadDevicesFile, runtimeDefaults, agentDefaults } from './config.ts';
/** Configuration types. */
export type { RuntimeConfig, AgentConfig } from './config.ts';
/** What a host passes to `dispatch()`. */
export type { ConfigMessage } from './wire.ts';
/** Starts baton serve over a runtime: HTTP API v1, the inspector and /metrics on one server (what `baton serve` runs). */
export { startServer } from './serve/server.ts';
/** baton serve's options and handle; the runtime's parts it reads beyond the Runtime interface. */
export type { ServerOptions, BatonServer } from './serve/server.ts';
export type { RuntimePorts, FateReader, EventJournal, LeaderLocator } from './serve/runtime-ports.ts';
/** The ports, for custom adapters. */
export type { Broker, Store, DeviceClient, Clock, DeviceConfig, WireMessage, IdempotencyStore } from './ports.ts';
