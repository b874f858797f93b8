/**
 * Migration-stream records as text: one line of fields per record (what
 * `xenstore-stream inspect` prints and the sandbox page shows), or plain
 * JSON with buffers as hex.
 */
import { recordTypeName, recordTypeOf, type DecodedRecord, type QuotaEntry, type StreamRecord } from './records.js';

/** Bytes of a value shown before it is cut short. */
const SHOW_BYTES = 48;

export function hex(n: number | bigint, width = 0): string {
  return `0x${n.toString(16).padStart(width, '0')}`;
}

/** Bytes as a quoted string with non-printables escaped, cut after SHOW_BYTES. */
function showBytes(bytes: Buffer): string {
  let out = '';
  for (const b of bytes.subarray(0, SHOW_BYTES)) {
    if (b === 0x22 || b === 0x5c) out += `\\${String.fromCharCode(b)}`;
    else if (b >= 0x20 && b < 0x7f) out += String.fromCharCode(b);
    else out += `\\x${b.toString(16).padStart(2, '0')}`;
  }
  return bytes.length > SHOW_BYTES ? `"${out}"… (${bytes.length} bytes)` : `"${out}"`;
}

function showString(s: string): string {
  return showBytes(Buffer.from(s, 'latin1'));
}

function showQuotas(quotas: readonly QuotaEntry[]): string {
  return quotas.length === 0 ? '(none)' : quotas.map((q) => `${q.name}=${q.value}`).join(' ');
}

/** One line of `key=value` fields for the text listing. */
export function describeRecord(r: StreamRecord): string {
  switch (r.kind) {
    case 'global': return `socket-fd=${r.socketFd} evtchn-fd=${r.evtchnFd}`;
    case 'connection': {
      const spec = r.connType === 'ring'
        ? `ring domid=${r.domid} tdomid=${hex(r.tdomid)} evtchn=${r.evtchn}`
        : `socket fd=${r.socketFd}`;
      const id = r.uniqueId === undefined ? '' : ` unique-id=${hex(r.uniqueId, 16)}`;
      return `conn-id=${r.connId} ${spec}${id} in=${showBytes(r.inData)} out=${showBytes(r.outData)} out-resp-len=${r.outRespLen}`;
    }
    case 'watch': {
      const depth = r.depth === undefined ? '' : ` depth=${r.depth}`;
      return `conn-id=${r.connId} path=${showString(r.path)} token=${showString(r.token)}${depth}`;
    }
    case 'transaction': return `conn-id=${r.connId} tx-id=${r.txId}`;
    case 'node': {
      const perms = r.perms.map((p) => `${p.perm}${p.domid}${p.stale ? '(stale)' : ''}`).join(',');
      const tx = r.connId === 0 ? '' : `conn-id=${r.connId} tx-id=${r.txId} access=${r.access} `;
      return `${tx}path=${showString(r.path)} perms=${perms || '(none)'} value=${showBytes(r.value)}`;
    }
    case 'globalQuota': return `domain: ${showQuotas(r.domainQuotas)}; global: ${showQuotas(r.globalQuotas)}`;
    case 'domain': return `domid=${r.domid} features=${hex(r.features)} quotas: ${showQuotas(r.quotas)}`;
    case 'unknown': return `type=${hex(r.type)} body=${showBytes(r.body)}`;
  }
}

/** A record as plain JSON: buffers as hex strings, the 64-bit unique id as a hex string. */
export function recordJson(d: DecodedRecord): Record<string, unknown> {
  const out: Record<string, unknown> = { offset: d.offset, index: d.index, type: recordTypeName(recordTypeOf(d.record)) };
  for (const [key, value] of Object.entries(d.record)) {
    if (Buffer.isBuffer(value)) out[key] = value.toString('hex');
    else if (typeof value === 'bigint') out[key] = hex(value, 16);
    else out[key] = value;
  }
  return out;
}
