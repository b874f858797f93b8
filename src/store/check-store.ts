/**
 * checkStore: recounts what the store keeps counts of and checks what its
 * operations rely on, as C xenstored's check_store does. Tests call it after
 * every step; a restore or import calls it before the result is used. It
 * changes nothing (but settles the memory figures kept lazily) and throws a StoreCheckError naming every problem found.
 */
import { DOMID_MAX } from '../wire/vocabulary.js';
import type { Domain } from './domains.js';
import type { Requester } from './requester.js';
import { isOrdinaryDomid } from './hypervisor.js';
import type { Node } from './node.js';
import type { Perms } from './permissions.js';
import type { Store } from './store.js';
import { WATCH_DEPTH_MAX } from './watches.js';
import { walkTree } from './tree-walk.js';
import { watchBytes } from './watches.js';

export class StoreCheckError extends Error {
  constructor(readonly problems: string[]) {
    super(`store check failed: ${problems.join('; ')}`);
  }
}

/** More problems than this are summed up: one broken invariant tends to break it everywhere. */
const MAX_REPORTED = 10;

export function checkStore(store: Store): void {
  const problems: string[] = [];
  const report = (problem: string): void => {
    problems.push(problem);
  };
  const { owned, taken } = checkTree(store, report);
  checkDomains(store, owned, report);
  for (const [serial, client] of store.clients) checkClient(store, serial, client, report);
  checkValues(store, report);
  checkNodeMemory(store, taken, report);
  checkConnectionMemory(store, report);
  if (problems.length > 0) {
    const shown = problems.slice(0, MAX_REPORTED);
    if (problems.length > MAX_REPORTED) shown.push(`and ${problems.length - MAX_REPORTED} more`);
    throw new StoreCheckError(shown);
  }
}

/** What one walk of the tree counts per owning domid: nodes, and the bytes they take. */
interface TreeCounts {
  owned: Map<number, number>;
  taken: Map<number, number>;
}

/**
 * Checks every node, counting per owner as it goes (one walk: inside a
 * live update's restore each walk of a large tree is milliseconds of the
 * pause).
 */
function checkTree(store: Store, report: (problem: string) => void): TreeCounts {
  const owned = new Map<number, number>();
  const taken = new Map<number, number>();
  const checkNode = (path: string, node: Node): void => {
    if (node.perms.length === 0) report(`${path} has no permissions`);
    else {
      const owner = ownerOf(node.perms);
      owned.set(owner, (owned.get(owner) ?? 0) + 1);
      taken.set(owner, (taken.get(owner) ?? 0) + store.nodeBytes(path.length, node));
    }
    if (!Number.isInteger(node.gen) || node.gen < 0 || node.gen > store.generation) {
      report(`${path} has generation ${node.gen}, outside 0..${store.generation}`);
    }
  };
  walkTree('/', store.root, (path, node) => {
    checkNode(path, node);
    for (const [name, child] of node.children?.children() ?? []) {
      if (!child) report(`${path} lists a child ${JSON.stringify(name)} with no node`);
    }
  });
  for (const [name, node] of store.specialNodes) checkNode(name, node);
  return { owned, taken };
}

/** A domain's `memory` is what its live nodes take: `taken`, recounted from the tree. */
function checkNodeMemory(store: Store, taken: ReadonlyMap<number, number>, report: (problem: string) => void): void {
  for (const domain of store.domains.all()) {
    const bytes = taken.get(domain.domid) ?? 0;
    if (domain.memory !== bytes) report(`domain ${domain.domid} is charged ${domain.memory} bytes for its nodes, which take ${bytes}`);
  }
}

/**
 * A domain's connection memory is what its connections' watches and
 * transaction copies take (C keys a copy `<startGen>/<path>`): recounted
 * from every client.
 */
function checkConnectionMemory(store: Store, report: (problem: string) => void): void {
  const taken = new Map<Domain, number>();
  for (const client of store.clients.values()) {
    const account = store.connectionAccount(client);
    if (!account) continue; // reported by checkDomains for a ring; a socket client always has dom0
    let bytes = taken.get(account) ?? 0;
    for (const watch of client.watches) bytes += watchBytes(watch);
    for (const tx of client.transactions.values()) bytes += store.transactionBytes(tx);
    taken.set(account, bytes);
  }
  for (const domain of store.domains.all()) {
    const charged = store.connectionMemoryOf(domain);
    const bytes = taken.get(domain) ?? 0;
    if (charged !== bytes) report(`domain ${domain.domid} is charged ${charged} bytes for its connections, whose watches and transaction copies take ${bytes}`);
  }
}

function ownerOf(perms: Perms): number {
  return perms[0]!.domid;
}

function checkDomains(store: Store, owned: Map<number, number>, report: (problem: string) => void): void {
  const rings = new Map<number, number>();
  for (const client of store.clients.values()) {
    if (client.domain) rings.set(client.domid, (rings.get(client.domid) ?? 0) + 1);
  }
  for (const domain of store.domains.all()) {
    const { domid } = domain;
    if (!Number.isInteger(domid) || domid < 0 || domid > DOMID_MAX) report(`domain ${domid} is not a domid (0..${DOMID_MAX})`);
    const nodes = owned.get(domid) ?? 0;
    if (domain.nodeCount !== nodes) report(`domain ${domid} counts ${domain.nodeCount} nodes but owns ${nodes}`);
    if (domain.generation > store.generation) report(`domain ${domid} was created at generation ${domain.generation}, after ${store.generation}`);
    if ((rings.get(domid) ?? 0) > 1) report(`domain ${domid} has ${rings.get(domid)} ring connections`);
  }
  for (const client of store.clients.values()) {
    if (client.domain && store.domains.get(client.domid) !== client.domain) {
      report(`the ring connection of domain ${client.domid} is not attached to its domain object`);
    }
  }
}

function checkClient(store: Store, serial: number, client: Requester, report: (problem: string) => void): void {
  const who = `client #${serial} (domain ${client.domid})`;
  if (client.serial !== serial) report(`${who} is filed under serial ${client.serial}`);
  const watches = new Set<string>();
  for (const w of client.watches) {
    if (typeof w.path !== 'string' || typeof w.token !== 'string') report(`${who} has a watch whose path or token is not text`);
    if (w.depth !== undefined && !(Number.isInteger(w.depth) && w.depth >= 0 && w.depth <= WATCH_DEPTH_MAX)) {
      report(`${who} has a watch of depth ${String(w.depth)}, not 0..${WATCH_DEPTH_MAX}`);
    }
    const key = `${w.path}\0${w.token}`;
    if (watches.has(key)) report(`${who} has the watch ${w.path} ${JSON.stringify(w.token)} twice`);
    watches.add(key);
  }
  for (const [id, tx] of client.transactions) {
    if (tx.id !== id) report(`${who} files transaction ${tx.id} under ${id}`);
    if (!Number.isInteger(id) || id < 1 || id > 0xffffffff) report(`${who} has transaction id ${id}, not a u32 other than 0`);
    if (tx.startGen > store.generation) report(`${who}: transaction ${id} starts at generation ${tx.startGen}, after ${store.generation}`);
    for (const [path, t] of tx.touched) {
      if (t.gen > store.generation) report(`${who}: transaction ${id} saw ${path} at generation ${t.gen}, after ${store.generation}`);
    }
  }
}

const U32_MAX = 0xffffffff;

function isU32(value: unknown): boolean {
  return Number.isInteger(value) && (value as number) >= 0 && (value as number) <= U32_MAX;
}

/** Numbers the migration stream stores as u32 must fit, or the store could not be dumped. */
function checkValues(store: Store, report: (problem: string) => void): void {
  if (!isU32(store.softMemory)) report(`soft memory quota ${store.softMemory} is not a u32`);
  for (const [name, value] of Object.entries(store.quotas)) if (!isU32(value)) report(`quota ${name} ${value} is not a u32`);
  for (const domain of store.domains.all()) {
    for (const [name, value] of Object.entries(domain.quotas)) if (!isU32(value)) report(`domain ${domain.domid}: quota ${name} ${value} is not a u32`);
    for (const [name, value] of [['port', domain.port], ['features', domain.features], ['memory', domain.memory]] as const) {
      if (!isU32(value)) report(`domain ${domain.domid}: ${name} ${value} is not a u32`);
    }
    if (typeof domain.uniqueId !== 'bigint' || domain.uniqueId < 0n || domain.uniqueId >= 1n << 64n) {
      report(`domain ${domain.domid}: unique id ${String(domain.uniqueId)} is not a u64`);
    }
  }
  const { domains, destroyed } = store.hypervisor.describe();
  for (const domid of [...domains.map(([id]) => id), ...destroyed]) {
    if (!isOrdinaryDomid(domid)) report(`the hypervisor has domain ${domid}, not a domid it could hand out`);
  }
}
