/**
 * CONTROL (xenstore-control) sub-commands: C xenstored's set, with its reply
 * texts for each version, plus `domain`, which plays the hypervisor's part
 * so tests can drive a guest's whole life cycle.
 */
import { checkDomains, clientOf, type DomainHooks } from '../store/domain-ops.js';
import { fail } from '../store/errors.js';
import type { DomainState } from '../store/hypervisor.js';
import { atoi } from '../store/numbers.js';
import { QUOTA_DESCRIPTIONS, isQuotaName, type QuotaName } from '../store/quotas.js';
import type { Store } from '../store/store.js';
import type { HandlerRequest } from '../protocol/handler.js';
import { cString } from '../protocol/payload.js';
import { data, OK, type Reply } from '../protocol/reply.js';

/** What control commands may ask of the rest of the daemon. */
export interface ControlHost extends DomainHooks {
  readonly store: Store;
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

interface CommandSpec {
  run: Command;
  /** Synopsis for `help`. */
  pars: string;
}

const text = (s: string): Reply => data(cString(s));

const ORDER_4_17: QuotaName[] = ['nodes', 'watches', 'transactions', 'outstanding', 'transaction-nodes', 'memory', 'node-size', 'path-max', 'node-permissions'];
const NAMES_4_17: Partial<Record<QuotaName, string>> = { 'node-permissions': 'permissions' };
const DESCR_4_17: Partial<Record<QuotaName, string>> = {
  transactions: 'Transactions per domain',
  memory: 'Total Xenstore memory per domain (error level)',
};

function quotaRows(store: Store): [string, number, string][] {
  if (store.compat.version === '4.17') {
    return ORDER_4_17.map((q) => [NAMES_4_17[q] ?? q, store.quotas[q], DESCR_4_17[q] ?? QUOTA_DESCRIPTIONS[q]]);
  }
  return (Object.keys(QUOTA_DESCRIPTIONS) as QuotaName[]).map((q) => [q, store.quotas[q], QUOTA_DESCRIPTIONS[q]]);
}

function quotaByName(store: Store, name: string): QuotaName | undefined {
  if (store.compat.version === '4.17') return ORDER_4_17.find((q) => (NAMES_4_17[q] ?? q) === name);
  return isQuotaName(name) ? name : undefined;
}

const quota: Command = (host, args) => {
  const { store } = host;
  if (args.length === 0) {
    return text(`Quota settings:\n${quotaRows(store).map(([n, v, d]) => `${n.padEnd(17)}: ${String(v).padStart(8)} ${d}\n`).join('')}`);
  }
  if (args[0] === 'set') {
    const name = args.length === 3 ? quotaByName(store, args[1]!) : undefined;
    const value = atoi(args[2] ?? '');
    if (!name || value < 1) fail('EINVAL');
    store.quotas[name] = value;
    return OK;
  }
  if (args.length !== 1) fail('EINVAL');
  const domain = store.domains.get(atoi(args[0]!) >>> 0) ?? fail('ENOENT');
  const client = clientOf(store, domain);
  const rows: [string, number][] = [
    ['nodes', domain.nodeCount], ['watches', client?.watches.length ?? 0],
    ['transactions', client?.transactions.size ?? 0], ['outstanding', 0], ['memory', domain.memory],
  ];
  return text(`Domain ${domain.domid}:\n${rows.map(([n, v]) => `${n.padEnd(16)}: ${String(v).padStart(8)}\n`).join('')}`);
};

const quotaSoft: Command = (host, args) => {
  const label = host.store.compat.version === '4.17' ? 'Total Xenstore memory per domain (warning level)' : QUOTA_DESCRIPTIONS.memory;
  if (args.length === 0) return text(`Quota settings:\n${'memory'.padEnd(17)}: ${String(host.store.softMemory).padStart(8)} ${label}\n`);
  if (args[0] !== 'set' || args.length !== 3 || args[1] !== 'memory' || atoi(args[2]!) < 1) fail('EINVAL');
  host.store.softMemory = atoi(args[2]!);
  return OK;
};

const log: Command = (host, args) => {
  if (args.length === 0 && host.store.compat.version !== '4.17') {
    const on = host.traceFile() !== undefined ? 'on' : 'off';
    return text(`Log switch settings:\n${['obj', 'io', 'wrl', 'acc', 'tdb'].map((s) => `${s.padEnd(8)}: ${s === 'io' ? on : 'off'}\n`).join('')}`);
  }
  if (args.length !== 1) fail('EINVAL');
  if (args[0] === 'on') host.setTraceFile(host.traceFile() ?? defaultTraceFile);
  else if (args[0] === 'off') host.setTraceFile(undefined);
  else if (host.store.compat.version === '4.17' || !/^[+-](obj|io|wrl|acc|tdb)$/.test(args[0]!)) fail('EINVAL');
  return OK;
};
const defaultTraceFile = 'xenstored-trace.log';

/** `domain create|shutdown|crash|dying|destroy <domid>`, `domain list`: the simulated hypervisor. */
const domain: Command = (host, args) => {
  const { store } = host;
  const [verb, id] = args;
  if (verb === 'list' && args.length === 1) {
    const rows = [...store.domains.all()].map((d) => `${d.domid} ${store.hypervisor.info(d.domid)?.state ?? 'gone'}${d.introduced ? ' introduced' : ''}`);
    return text(rows.join('\n'));
  }
  if (args.length !== 2 || !/^\d+$/.test(id!)) fail('EINVAL', 'usage: domain create|shutdown|crash|dying|destroy <domid>');
  const domid = Number(id);
  try {
    if (verb === 'create') store.hypervisor.create(domid);
    else if (verb === 'destroy') store.hypervisor.destroy(domid);
    else if (verb === 'shutdown' || verb === 'crash' || verb === 'dying') {
      store.hypervisor.setState(domid, ({ shutdown: 'shutdown', crash: 'crashed', dying: 'dying' } as const)[verb] as DomainState);
    } else fail('EINVAL', `unknown domain command ${verb}`);
  } catch (e) {
    if (e instanceof Error && !('code' in e)) fail('ENOENT', e.message);
    throw e;
  }
  checkDomains(store, host);
  return OK;
};

/** A command whose work lives elsewhere; EINVAL (unknown command) until it is provided. */
function extension(name: string): Command {
  return (host, args, request) => {
    const ext = host.controlExtensions.get(name);
    return ext ? ext.run(request, args) : fail('EINVAL', `${name} is not available`);
  };
}

const COMMANDS: Record<string, CommandSpec> = {
  check: { run: (_h, a) => (a.length ? fail('EINVAL') : OK), pars: '' },
  log: { run: log, pars: '[on|off|+<switch>|-<switch>]' },
  'live-update': {
    run: extension('live-update'),
    pars: '[-c <cmdline>] [-F] [-t <timeout>] [-v <version>] <file>\n    Default timeout is 60 seconds, default version is 2.',
  },
  logfile: { run: (h, a) => (a.length !== 1 ? fail('EINVAL') : (h.setTraceFile(a[0]), OK)), pars: '<file>' },
  memreport: {
    run: (h, a) => {
      if (a.length > 1) fail('EINVAL');
      if (a.length === 0 && h.traceFile() === undefined) fail('EINVAL', 'no log file');
      h.log(h.memoryReport());
      return OK;
    },
    pars: '[<file>]',
  },
  print: { run: (h, a) => (a.length !== 1 ? fail('EINVAL') : (h.log(`control: ${a[0]}`), OK)), pars: '<string>' },
  quota: { run: quota, pars: '[set <name> <val>|<domid>|max [-r]]' },
  'quota-soft': { run: quotaSoft, pars: '[set <name> <val>]' },
  domain: { run: domain, pars: 'create|shutdown|crash|dying|destroy <domid> | list' },
  dump: { run: extension('dump'), pars: '[-v 1|2] [--c417] <file>' },
  'export-domain': { run: extension('export-domain'), pars: '<domid> <file>' },
  'import-domain': { run: extension('import-domain'), pars: '<file>' },
  help: { run: () => OK, pars: '' },
};

function help(store: Store): Reply {
  const lines = Object.entries(COMMANDS).map(([name, spec]) =>
    store.compat.version === '4.17' ? `${name}\t${spec.pars}\n` : `${name.padEnd(15)} ${spec.pars}\n`);
  return text(lines.join(''));
}

export function runControl(host: ControlHost, request: HandlerRequest, args: string[]): Reply {
  const [name, ...rest] = args;
  const spec = name === undefined ? undefined : COMMANDS[name];
  if (!spec) fail('EINVAL', `unknown control command ${name ?? ''}`);
  if (name === 'help') return rest.length ? fail('EINVAL') : help(host.store);
  return spec.run(host, rest, request);
}
