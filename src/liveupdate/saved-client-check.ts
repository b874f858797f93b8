/**
 * A client as the simulator's own record saves it (SavedRequester, with its
 * watches and transactions whole) comes from a file: before the store takes
 * it, every value must be one the store itself could have saved, so that a
 * restored daemon can always dump and live-update again. The checks are of
 * shape and range; what the store's rules say about the values (quotas,
 * conflicts) is checkStore's job once they are loaded.
 */
import { pathProblem } from '../stream/stream-check.js';
import type { PermEntry } from '../store/permissions.js';
import type { SavedRequester } from '../store/requester.js';
import type { SavedTouchedNode, SavedTransaction } from '../store/transaction.js';
import { WATCH_DEPTH_MAX, type SavedWatch } from '../store/watches.js';
import { DOMID_FIRST_RESERVED } from '../wire/vocabulary.js';

const U32_MAX = 0xffffffff;

class Problem extends Error {}

function need(ok: boolean, what: string): void {
  if (!ok) throw new Problem(what);
}

const isBool = (v: unknown): v is boolean => typeof v === 'boolean';
const isUint = (v: unknown, max = U32_MAX): v is number => Number.isInteger(v) && (v as number) >= 0 && (v as number) <= max;
/** Generations (and times) are kept as doubles; the record carries them as such. */
const isGeneration = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

function checkPath(path: unknown, allowRelative: boolean, what: string): void {
  need(typeof path === 'string', `${what} path is not text`);
  const problem = pathProblem(path as string, allowRelative);
  need(problem === undefined, `${what} path ${JSON.stringify(path)} ${problem}`);
}

function checkPerms(perms: unknown, what: string): void {
  need(Array.isArray(perms) && perms.length > 0, `${what} has no permission list`);
  for (const e of perms as PermEntry[]) {
    need(e !== null && typeof e === 'object' && isUint(e.bits, 3) && isUint(e.domid) && isBool(e.stale), `${what} has a bad permission entry`);
  }
}

function checkWatch(w: SavedWatch, who: string): void {
  need(w !== null && typeof w === 'object', `${who} has a watch that is not one`);
  checkPath(w.path, true, `${who}: a watch`);
  need(typeof w.token === 'string' && Buffer.byteLength(w.token) < 0xffff, `${who}: the token of watch ${w.path} is not text of under 64 KiB`);
  need(w.depth === undefined || isUint(w.depth, WATCH_DEPTH_MAX), `${who}: watch ${w.path} has depth ${String(w.depth)}`);
}

function checkTouched(t: SavedTouchedNode, what: string): void {
  need(t !== null && typeof t === 'object', `${what} touches something that is not a node`);
  checkPath(t.path, false, what);
  const at = `${what}, node ${t.path}:`;
  need(isBool(t.checkGen) && isBool(t.modified) && isGeneration(t.gen), `${at} bad bookkeeping`);
  need(t.fire === undefined || t.fire === 'subtree' || t.fire === 'exact', `${at} bad event mode`);
  if (t.oldPerms !== null) checkPerms(t.oldPerms, `${at} its permissions before`);
  const r = t.record;
  if (r === null) return;
  need(typeof r === 'object' && typeof r.value === 'string' && isGeneration(r.gen), `${at} bad copy`);
  checkPerms(r.perms, `${at} its copy`);
  need(r.children === null || (Array.isArray(r.children) && r.children.every((c) => typeof c === 'string' && c !== '' && !c.includes('/'))), `${at} bad child names`);
  // A copy neither written nor read is written as a deletion, which a copy with contents cannot be.
  need(t.modified || t.checkGen, `${at} a copy neither read nor written`);
}

function checkTransaction(tx: SavedTransaction, who: string): void {
  need(tx !== null && typeof tx === 'object' && isUint(tx.id) && tx.id !== 0, `${who} has a transaction with a bad id`);
  const what = `${who}: transaction ${tx.id}`;
  need(isGeneration(tx.startGen) && isBool(tx.failed) && isBool(tx.createdNode) && isBool(tx.historyUnknown), `${what} has bad bookkeeping`);
  need(Array.isArray(tx.nodeCountDelta) && tx.nodeCountDelta.every((d) => Array.isArray(d) && d.length === 2 && isUint(d[0]) && Number.isInteger(d[1])), `${what} has bad node counts`);
  need(Array.isArray(tx.touched), `${what} has no node list`);
  const seen = new Set<string>();
  for (const t of tx.touched) {
    checkTouched(t, what);
    need(!seen.has(t.path), `${what} touches ${t.path} twice`);
    seen.add(t.path);
  }
}

/** Throws an Error saying what is wrong with `saved`, a client read from the simulator's record. */
export function checkSavedClient(saved: SavedRequester): void {
  try {
    need(saved !== null && typeof saved === 'object', 'a saved client is not one');
    const who = `client of domain ${String(saved.domid)}`;
    need(isBool(saved.ring) && isUint(saved.domid, DOMID_FIRST_RESERVED - 1), `${who}: bad kind or domid`);
    need(saved.target === undefined || isUint(saved.target), `${who}: bad target`);
    // transactionsSince is a time in ms.
    need(isUint(saved.nextTransactionId) && isGeneration(saved.transactionsSince) && isBool(saved.ignored), `${who}: bad bookkeeping`);
    need(Array.isArray(saved.watches) && Array.isArray(saved.transactions), `${who}: no watch or transaction list`);
    for (const w of saved.watches) checkWatch(w, who);
    for (const tx of saved.transactions) checkTransaction(tx, who);
  } catch (e) {
    if (e instanceof Problem) throw new Error(`xenstored-sim state: ${e.message}`);
    throw e;
  }
}
