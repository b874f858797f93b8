/**
 * CONTROL (xenstore-control) sub-commands: C xenstored's set, with each
 * version's synopses and reply texts, plus the simulator's own: `domain`
 * (the hypervisor's part, so tests can drive a guest's whole life cycle)
 * and the state-stream commands other parts provide.
 */
import path from 'node:path';
import { checkDomains, clientOf, type DomainHooks } from '../store/domain-ops.js';
import type { Domain } from '../store/domains.js';
import { fail } from '../store/errors.js';
import { isOrdinaryDomid, type DomainState } from '../store/hypervisor.js';
import { atoi } from '../store/numbers.js';
import { QUOTA_NAMES, type QuotaName } from '../store/quotas.js';
import type { Store } from '../store/store.js';
import type { HandlerRequest } from '../protocol/handler.js';
import { cString } from '../protocol/payload.js';
import { data, OK, type Reply } from '../protocol/reply.js';
import { DOMID_FIRST_RESERVED } from '../wire/vocabulary.js';
import { appendPrivateFile } from './private-files.js';

/** Master's trace switches, in the order `log` lists them. */
export const TRACE_SWITCHES = ['obj', 'io', 'wrl', 'acc', 'tdb'] as const;

/** What control commands may ask of the rest of the daemon. */
export interface ControlHost extends DomainHooks {
  readonly store: Store;
  /** Relative file names given to commands are under it. */
  readonly rundir: string;
  /** Switches turned on (`log +io`); master starts with obj and io. */
  readonly traceSwitches: Set<string>;
  /** Highest usage seen per quota, for `quota max` (reset by `quota max -r`). */
  readonly quotaMaxSeen: Map<QuotaName, number>;
  log(line: string): void;
  /** Opens (or with undefined closes) the trace log. */
  setTraceFile(path: string | undefined): void;
  traceFile(): string | undefined;
  memoryReport(): string;
  /** Commands provided by other parts (live update, state dumps), by name. */
  readonly controlExtensions: ReadonlyMap<string, ControlExtension>;
}

/** A CONTROL command another part of the daemon provides. */
export interface ControlExtension {
  run(request: HandlerRequest, args: string[]): Reply;
}

type Command = (host: ControlHost, args: string[], request: HandlerRequest) => Reply;

const text = (s: string): Reply => data(cString(s));
const row = (name: string, width: number, value: number) => `${name.padEnd(width)}: ${String(value).padStart(8)}`;

// --- quota -------------------------------------------------------------------

/** A domain's current use of each quota (what master's `quota <domid>` shows). */
function usage(store: Store, domain: Domain): Record<QuotaName, number> {
  const client = clientOf(store, domain);
  return {
    nodes: domain.nodeCount, watches: client?.watches.length ?? 0, outstanding: 0, memory: store.memoryOf(domain),
    transactions: client?.transactions.size ?? 0, 'transaction-nodes': 0, 'node-permissions': 0, 'path-max': 0, 'node-size': 0,
  };
}

/** A domain's usage now, noting it in the maxima. */
function seen(host: ControlHost, domain: Domain): Record<QuotaName, number> {
  const now = usage(host.store, domain);
  for (const q of QUOTA_NAMES) host.quotaMaxSeen.set(q, Math.max(host.quotaMaxSeen.get(q) ?? 0, now[q]));
  return now;
}

const quota: Command = (host, args) => {
  const { store } = host;
  const table = store.compat.quotaTable;
  if (args.length === 0) {
    return text(`Quota settings:\n${table.map(([q, name, descr]) => `${row(name, 17, store.quotas[q])} ${descr}\n`).join('')}`);
  }
  if (args[0] === 'set') {
    const entry = args.length === 3 ? table.find(([, name]) => name === args[1]) : undefined;
    const value = atoi(args[2] ?? '');
    if (!entry || value < 1) fail('EINVAL');
    store.quotas[entry[0]] = value;
    return OK;
  }
  if (store.compat.quotaMaxima && args[0] === 'max') {
    if (args.length > 2 || (args.length === 2 && args[1] !== '-r')) fail('EINVAL');
    if (args[1] === '-r') host.quotaMaxSeen.clear();
    for (const d of store.domains.all()) seen(host, d);
    return text(`Max. seen accounting values:\n${QUOTA_NAMES.map((q) => `${row(q, 17, host.quotaMaxSeen.get(q) ?? 0)}\n`).join('')}`);
  }
  if (args.length !== 1) fail('EINVAL');
  const domain = store.domains.get(atoi(args[0]!) >>> 0) ?? fail('ENOENT');
  const now = seen(host, domain);
  if (!store.compat.quotaMaxima) {
    return text(`Domain ${domain.domid}:\n${store.compat.quotaUsageRows.map((q) => `${row(q, 16, now[q])}\n`).join('')}`);
  }
  return text(`Domain ${domain.domid}:\n${QUOTA_NAMES.map((q) => `${row(q, 17, now[q])} (max ${String(host.quotaMaxSeen.get(q)).padStart(8)})\n`).join('')}`);
};

const quotaSoft: Command = (host, args) => {
  const descr = host.store.compat.softMemoryDescription;
  if (args.length === 0) return text(`Quota settings:\n${row('memory', 17, host.store.softMemory)} ${descr}\n`);
  if (args[0] !== 'set' || args.length !== 3 || args[1] !== 'memory' || atoi(args[2]!) < 1) fail('EINVAL');
  host.store.softMemory = atoi(args[2]!);
  return OK;
};

// --- log ---------------------------------------------------------------------

const log: Command = (host, args) => {
  const switches = host.store.compat.logSwitches;
  if (args.length === 0 && switches) {
    const lines = TRACE_SWITCHES.map((s) => `${s.padEnd(8)}: ${host.traceSwitches.has(s) ? 'on' : 'off'}\n`);
    return text(`Log switch settings:\n${lines.join('')}`);
  }
  if (args.length !== 1) fail('EINVAL');
  const [arg] = args as [string];
  if (arg === 'on') host.setTraceFile(host.traceFile() ?? 'xenstored-trace.log');
  else if (arg === 'off') host.setTraceFile(undefined);
  else if (switches && /^[+-]/.test(arg) && (TRACE_SWITCHES as readonly string[]).includes(arg.slice(1))) {
    if (arg[0] === '+') host.traceSwitches.add(arg.slice(1));
    else host.traceSwitches.delete(arg.slice(1));
  } else fail('EINVAL');
  return OK;
};

// --- the simulated hypervisor --------------------------------------------------

const DOMAIN_VERBS: Record<string, DomainState | 'create' | 'destroy'> = {
  create: 'create', destroy: 'destroy', shutdown: 'shutdown', crash: 'crashed', dying: 'dying',
};

/** `domain create|shutdown|crash|dying|destroy <domid>`, `domain list`. */
const domain: Command = (host, args) => {
  const { store } = host;
  const [verb, id] = args;
  if (verb === 'list' && args.length === 1) {
    const rows = [...store.domains.all()].map((d) => `${d.domid} ${store.hypervisor.info(d.domid)?.state ?? 'gone'}${d.introduced ? ' introduced' : ''}`);
    return text(rows.join('\n'));
  }
  const action = verb === undefined ? undefined : DOMAIN_VERBS[verb];
  if (args.length !== 2 || !action || !/^\d+$/.test(id!)) fail('EINVAL', 'usage: domain create|shutdown|crash|dying|destroy <domid>');
  const domid = Number(id);
  // dom0 is the daemon's own domain: nothing may stop it, and a refusal changes nothing.
  if (domid === 0) fail('EINVAL', 'dom0 cannot be created, stopped or destroyed');
  if (action === 'create' && !isOrdinaryDomid(domid)) fail('EINVAL', `domid ${domid} is not one a hypervisor hands out (0..${DOMID_FIRST_RESERVED - 1})`);
  try {
    if (action === 'create') store.hypervisor.create(domid);
    else if (action === 'destroy') store.hypervisor.destroy(domid);
    else store.hypervisor.setState(domid, action);
  } catch (e) {
    fail('ENOENT', (e as Error).message);
  }
  checkDomains(store, host);
  return OK;
};

// --- the table -----------------------------------------------------------------

/** A command whose work lives elsewhere; EINVAL (unknown command) until it is provided. */
function extension(name: string): Command {
  return (host, args, request) => {
    const ext = host.controlExtensions.get(name);
    return ext ? ext.run(request, args) : fail('EINVAL', `${name} is not available`);
  };
}

interface CommandSpec {
  name: string;
  run: Command;
  /** Synopsis for `help`: 4.17's, then master's when it differs. */
  pars: string;
  masterPars?: string;
  /** The simulator's own, not C's: left out of `help` in 4.17. */
  simulatorOnly?: boolean;
}

const COMMANDS: CommandSpec[] = [
  { name: 'check', run: (_h, a) => (a.length ? fail('EINVAL') : OK), pars: '' },
  { name: 'log', run: log, pars: 'on|off', masterPars: '[on|off|+<switch>|-<switch>]' },
  {
    name: 'live-update', run: extension('live-update'),
    pars: '[-c <cmdline>] [-F] [-t <timeout>] <file>\n    Default timeout is 60 seconds.',
    masterPars: '[-c <cmdline>] [-F] [-t <timeout>] [-v <version>] <file>\n    Default timeout is 60 seconds, default version is 2.',
  },
  { name: 'logfile', run: (h, a) => (a.length !== 1 ? fail('EINVAL') : (h.setTraceFile(a[0]), OK)), pars: '<file>' },
  {
    name: 'memreport',
    run: (h, a) => {
      if (a.length > 1) fail('EINVAL');
      if (a.length === 1) {
        try {
          appendPrivateFile(path.resolve(h.rundir, a[0]!), `${h.memoryReport()}\n`);
        } catch {
          fail('EINVAL', `cannot write ${a[0]}`); // C: EBADF, reported as EINVAL
        }
      } else if (h.traceFile() === undefined) fail('EINVAL', 'no log file');
      else h.log(h.memoryReport());
      return OK;
    },
    pars: '[<file>]',
  },
  { name: 'print', run: (h, a) => (a.length !== 1 ? fail('EINVAL') : (h.log(`control: ${a[0]}`), OK)), pars: '<string>' },
  { name: 'quota', run: quota, pars: '[set <name> <val>|<domid>]', masterPars: '[set <name> <val>|<domid>|max [-r]]' },
  { name: 'quota-soft', run: quotaSoft, pars: '[set <name> <val>]' },
  { name: 'domain', run: domain, pars: 'create|shutdown|crash|dying|destroy <domid> | list', simulatorOnly: true },
  { name: 'dump', run: extension('dump'), pars: '[-v 1|2] [--c417] <file>', simulatorOnly: true },
  { name: 'export-domain', run: extension('export-domain'), pars: '<domid> <file>', simulatorOnly: true },
  { name: 'import-domain', run: extension('import-domain'), pars: '<file>', simulatorOnly: true },
  { name: 'help', run: (h, a) => (a.length ? fail('EINVAL') : help(h.store)), pars: '' },
];

function help(store: Store): Reply {
  const { alignedHelp, listSimulatorCommands } = store.compat;
  const listed = COMMANDS.filter((c) => listSimulatorCommands || !c.simulatorOnly);
  const lines = listed.map((c) => (alignedHelp ? `${c.name.padEnd(15)} ${c.masterPars ?? c.pars}\n` : `${c.name}\t${c.pars}\n`));
  return text(lines.join(''));
}

export function runControl(host: ControlHost, request: HandlerRequest, args: string[]): Reply {
  const [name, ...rest] = args;
  const spec = COMMANDS.find((c) => c.name === name) ?? fail('EINVAL', `unknown control command ${name ?? ''}`);
  return spec.run(host, rest, request);
}
