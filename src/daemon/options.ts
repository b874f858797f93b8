/**
 * Command-line options. Where they overlap with C xenstored's the spelling
 * is the same, so existing scripts work unchanged.
 */
import { isXenVersion, type XenVersion } from '../store/compat.js';
import { isQuotaName, type Quotas } from '../store/quotas.js';
import { atoi } from '../store/numbers.js';
import path from 'node:path';
import { GUEST_PATIENCE_MS } from './parked-guests.js';

export interface DaemonOptions {
  compat: XenVersion;
  rundir: string;
  socketPath: string;
  quotas: Partial<Quotas>;
  softMemory: number | undefined;
  implicitDomains: boolean;
  keepOrphans: boolean;
  pidFile: string | undefined;
  traceFile: string | undefined;
  verbose: boolean;
  /** Start from this migration stream instead of the initial tree. */
  restoreFile: string | undefined;
  /** Internal: this process is the new image of a live update. */
  liveUpdate: boolean;
  /** Only check that this stream (a file, or - for stdin) could be restored, then exit (live update's dry run). */
  checkStream: string | undefined;
  /** Watch events still undelivered to a guest this long are dropped (C's -w watch-event; 0: never). */
  watchEventTimeoutMs: number;
  /** How long to keep polling for a lone client's next request before sleeping (0: never). */
  pollWindowUs: number;
  /** How long a guest client waits for its domain's ring, held by another client, before EBUSY. */
  guestPatienceMs: number;
  /** Run the request path on a scratch store once listening, so that V8 has optimized it before clients come (see warm-up.ts). */
  warmUp: boolean;
  /** Serve the sandbox page here (--ui). */
  ui: { host: string; port: number } | undefined;
}

/** 50 µs covers a client's turnaround between replies and requests with room to spare. */
export const DEFAULT_POLL_WINDOW_US = 50;

/** C xenstored's default watch-event timeout (timeout_watch_event_msec), 4.17 and master. */
export const DEFAULT_WATCH_EVENT_TIMEOUT_MS = 20_000;

/** A bad xenstored-sim command line: the message plus the usage text go to stderr. */
export class DaemonUsageError extends Error {}

export const USAGE = `usage: xenstored-sim [options]

  --socket PATH            listen here (default <rundir>/socket)
  --compat 4.17|master     behave like C xenstored 4.17 or current upstream (default master)
  --explicit-domains       domains exist only once created (CONTROL domain create)
  --restore FILE           start from a migration stream written by a dump
  -E, --entry-nb N         nodes per domain          -S, --entry-size N   node size
  -W, --watch-nb N         watches per domain        -t, --transaction N  transactions per domain
  -A, --perm-nb N          permissions per node      -M, --path-max N     path length
  -Q, --quota NAME=N       any quota by name         -q, --quota-soft memory=N
  -w, --timeout watch-event=S  drop a guest's watch events undelivered after S seconds
                           (default 20, 0: never)
  -K, --keep-orphans       give a dead domain's nodes to dom0 instead of deleting them
  -F, --pid-file FILE      write the pid here        -T, --trace-file FILE  log requests, replies, watch events
  --poll-window-us N       after answering a lone client, poll this long for its next
                           request before sleeping (default ${DEFAULT_POLL_WINDOW_US}; 0 turns it off)
  --guest-patience-ms N    a guest client connecting while another holds its domain's ring
                           waits this long for it before EBUSY (default ${GUEST_PATIENCE_MS})
  --warm-up                exercise the request path on a scratch store once listening: a fresh
                           daemon's first thousands of requests get faster, for ~0.3 s of CPU and 5 MB
  -V, --verbose            the trace on stderr too   -N, -D, -I, -R       accepted for compatibility
  --ui [HOST:]PORT         serve the sandbox page (default host 127.0.0.1; port 0: any free one)
  -H, --help               this text

The run directory is $XENSTORED_RUNDIR, else $XDG_RUNTIME_DIR/xenstored-sim, else /tmp/xenstored-sim;
it must be yours alone (not writable by others), and is created 0700.
`;

const SHORT: Record<string, string> = {
  E: 'entry-nb', S: 'entry-size', W: 'watch-nb', t: 'transaction', A: 'perm-nb', M: 'path-max',
  Q: 'quota', q: 'quota-soft', w: 'timeout', F: 'pid-file', T: 'trace-file', V: 'verbose', K: 'keep-orphans',
  H: 'help', h: 'help', N: 'no-fork', D: 'no-domain-init', P: 'output-pid', R: 'no-recovery', I: 'internal-db', U: 'live-update',
};
const TAKES_VALUE = new Set(['socket', 'compat', 'restore', 'check-stream', 'entry-nb', 'entry-size', 'watch-nb', 'transaction', 'perm-nb', 'path-max', 'quota', 'quota-soft', 'timeout', 'pid-file', 'trace-file', 'poll-window-us', 'guest-patience-ms', 'ui']);
const QUOTA_FLAGS: Record<string, keyof Quotas> = {
  'entry-nb': 'nodes', 'entry-size': 'node-size', 'watch-nb': 'watches', transaction: 'transactions', 'perm-nb': 'node-permissions', 'path-max': 'path-max',
};

export function defaultRundir(env: NodeJS.ProcessEnv): string {
  if (env.XENSTORED_RUNDIR) return env.XENSTORED_RUNDIR;
  if (env.XDG_RUNTIME_DIR) return path.join(env.XDG_RUNTIME_DIR, 'xenstored-sim');
  return '/tmp/xenstored-sim';
}

function number(name: string, text: string): number {
  if (!/^-?\d+$/.test(text)) throw new DaemonUsageError(`--${name} needs a number, got "${text}"`);
  return atoi(text);
}

function nonNegative(name: string, text: string): number {
  const n = number(name, text);
  if (n < 0) throw new DaemonUsageError(`--${name} must not be negative, got ${n}`);
  return n;
}

function defaultOptions(rundir: string): DaemonOptions {
  return {
    compat: 'master', rundir, socketPath: path.join(rundir, 'socket'), quotas: {}, softMemory: undefined,
    implicitDomains: true, keepOrphans: false, pidFile: undefined, traceFile: undefined, verbose: false,
    restoreFile: undefined, liveUpdate: false, checkStream: undefined, pollWindowUs: DEFAULT_POLL_WINDOW_US,
    watchEventTimeoutMs: DEFAULT_WATCH_EVENT_TIMEOUT_MS, guestPatienceMs: GUEST_PATIENCE_MS, warmUp: false,
    ui: undefined,
  };
}

/**
 * The options of a scratch daemon beside this one (the warm-up's): the same
 * store settings, and nothing anyone can see — no trace, pid file or page.
 * Built from the same literal as parsed options, so that V8 gives both
 * objects one shape and code optimized for one serves the other.
 */
export function scratchOptions(options: DaemonOptions): DaemonOptions {
  return Object.assign(defaultOptions(options.rundir), options, {
    pidFile: undefined, traceFile: undefined, verbose: false, warmUp: false, ui: undefined,
  });
}

/** Parses argv (without node and script); throws DaemonUsageError, or HelpRequested for --help. */
export function parseOptions(argv: readonly string[], env: NodeJS.ProcessEnv): DaemonOptions {
  const options = defaultOptions(defaultRundir(env));
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    let name: string;
    let value: string | undefined;
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      name = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
      value = eq < 0 ? undefined : arg.slice(eq + 1);
    } else if (/^-[A-Za-z]$/.test(arg) && SHORT[arg[1]!]) {
      name = SHORT[arg[1]!]!;
    } else {
      throw new DaemonUsageError(`unknown argument "${arg}"`);
    }
    if (TAKES_VALUE.has(name) && value === undefined) {
      value = argv[++i];
      if (value === undefined) throw new DaemonUsageError(`--${name} needs a value`);
    }
    apply(options, name, value);
  }
  return options;
}

function apply(options: DaemonOptions, name: string, value: string | undefined): void {
  const quotaFlag = QUOTA_FLAGS[name];
  if (quotaFlag) {
    options.quotas[quotaFlag] = number(name, value!);
    return;
  }
  switch (name) {
    case 'socket': options.socketPath = path.resolve(value!); return;
    case 'compat':
      if (!isXenVersion(value!)) throw new DaemonUsageError(`--compat must be 4.17 or master, got "${value}"`);
      options.compat = value;
      return;
    case 'restore': options.restoreFile = value; return;
    case 'check-stream': options.checkStream = value; return;
    case 'quota': case 'quota-soft': {
      const m = /^([a-z-]+)=(-?\d+)$/.exec(value!);
      if (!m || !isQuotaName(m[1]!) || (name === 'quota-soft' && m[1] !== 'memory')) throw new DaemonUsageError(`bad --${name} "${value}"`);
      if (name === 'quota') options.quotas[m[1]!] = atoi(m[2]!);
      else options.softMemory = atoi(m[2]!);
      return;
    }
    case 'timeout': {
      const m = /^watch-event=(\d+)$/.exec(value!);
      if (!m) throw new DaemonUsageError(`bad --timeout "${value}"`);
      options.watchEventTimeoutMs = Number(m[1]) * 1000;
      return;
    }
    case 'pid-file': options.pidFile = path.resolve(value!); return;
    case 'trace-file': options.traceFile = path.resolve(value!); return;
    case 'poll-window-us': options.pollWindowUs = nonNegative(name, value!); return;
    case 'guest-patience-ms': options.guestPatienceMs = nonNegative(name, value!); return;
    case 'ui': options.ui = uiAddress(value!); return;
    case 'verbose': options.verbose = true; return;
    case 'keep-orphans': options.keepOrphans = true; return;
    case 'warm-up': options.warmUp = true; return;
    case 'explicit-domains': options.implicitDomains = false; return;
    case 'live-update': options.liveUpdate = true; return;
    case 'help': throw new HelpRequested();
    case 'no-fork': case 'no-domain-init': case 'output-pid': case 'no-recovery': case 'internal-db': return;
    default: throw new DaemonUsageError(`unknown option --${name}`);
  }
}

export class HelpRequested extends Error {}

/** `[HOST:]PORT`; the host defaults to loopback, so the page is not exposed by accident. */
function uiAddress(text: string): { host: string; port: number } {
  const m = /^(?:(.+):)?(\d{1,5})$/.exec(text);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port > 65535) throw new DaemonUsageError(`--ui needs [HOST:]PORT, got "${text}"`);
  return { host: m[1]?.replace(/^\[(.*)\]$/, '$1') ?? '127.0.0.1', port };
}
