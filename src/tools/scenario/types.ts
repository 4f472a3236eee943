/** What a scenario run is given (options) and gives back (the report with its checks, figures and timeline). */
import type { Logger } from 'pino';

export interface Check {
  name: string;
  ok: boolean;
  [count: string]: unknown;
}

export interface TimelineEntry {
  t: number;
  kind: 'fault' | 'phase' | 'agent' | 'leader' | 'device';
  text: string;
}

export interface SwitchFigures {
  from: string | null;
  to: string | null;
  epoch: number;
  reason: string;
  switchingMs: number | null;
  drainingMs: number | null;
  replayingMs: number | null;
  moved: number;
  replayed: number;
}

export interface ScenarioReport {
  name: string;
  ok: boolean;
  checks: Check[];
  figures: {
    throughputPerSec: number;
    killToResumeMs: number | null;
    durationMs: number;
    switches: SwitchFigures[];
  };
  timeline: TimelineEntry[];
  /** applied writes per device per second since the load began */
  throughput: Record<string, number[]>;
}

export interface RunOptions {
  amqpUrl?: string;
  databaseUrl?: string;
  managementUrl?: string;
  logger: Logger;
  /** progress: share of the load dispatched (0..1) */
  onProgress?: (share: number) => void;
  onTimeline?: (e: TimelineEntry) => void;
  signal?: AbortSignal;
  /** serve the inspector from the first runtime on this port */
  inspectPort?: number;
  /** told the inspector's URL once it listens */
  onInspector?: (url: string) => void;
}
