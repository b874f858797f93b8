#!/usr/bin/env node
/**
 * xenstore-stream: look at, check and convert XenStore migration / live-update
 * stream files. Plain Node, no dependencies; the codec does all the work.
 *
 * Exit status: 0 success, 1 the stream is invalid or cannot be converted
 * without loss, 2 bad usage or an unreadable/unwritable file.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { recordTypeName, recordTypeOf, type DecodedRecord, type QuotaEntry, type StreamRecord } from '../stream/records.js';
import { checkStream } from '../stream/stream-check.js';
import { StreamEncodeError, StreamError } from '../stream/stream-error.js';
import { decodeStream, iterateStream, readHeader } from '../stream/stream-reader.js';
import { downgradeToV1, encodeStream } from '../stream/stream-writer.js';

const USAGE = `usage: xenstore-stream inspect FILE [--json]
       xenstore-stream verify FILE
       xenstore-stream convert IN OUT [--version 1|2] [--big-endian|--little-endian]`;

/** Bytes of a value shown before it is cut short. */
const SHOW_BYTES = 48;

class UsageError extends Error {}

interface Args {
  command: string;
  files: string[];
  flags: Map<string, string>;
}

/** Flags each command accepts; `true` marks a flag that takes a value. */
const COMMANDS: Record<string, { files: number; flags: Record<string, boolean> }> = {
  inspect: { files: 1, flags: { '--json': false } },
  verify: { files: 1, flags: {} },
  convert: { files: 2, flags: { '--version': true, '--big-endian': false, '--little-endian': false } },
};

function parseArgs(argv: string[]): Args {
  const [command = '', ...rest] = argv;
  const spec = COMMANDS[command];
  if (!spec) throw new UsageError(command ? `unknown command ${JSON.stringify(command)}` : 'no command given');
  const files: string[] = [];
  const flags = new Map<string, string>();
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i] as string;
    if (!arg.startsWith('--')) {
      files.push(arg);
      continue;
    }
    const takesValue = spec.flags[arg];
    if (takesValue === undefined) throw new UsageError(`${command} does not accept ${arg}`);
    if (flags.has(arg)) throw new UsageError(`${arg} given twice`);
    const value = takesValue ? rest[++i] : '';
    if (value === undefined) throw new UsageError(`${arg} needs a value`);
    flags.set(arg, value);
  }
  if (files.length !== spec.files) throw new UsageError(`${command} takes ${spec.files} file name(s), got ${files.length}`);
  return { command, files, flags };
}

function hex(n: number | bigint, width = 0): string {
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
function describe(r: StreamRecord): string {
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
function toJson(d: DecodedRecord): Record<string, unknown> {
  const out: Record<string, unknown> = { offset: d.offset, index: d.index, type: recordTypeName(recordTypeOf(d.record)) };
  for (const [key, value] of Object.entries(d.record)) {
    if (Buffer.isBuffer(value)) out[key] = value.toString('hex');
    else if (typeof value === 'bigint') out[key] = hex(value, 16);
    else out[key] = value;
  }
  return out;
}

function endianName(bigEndian: boolean): string {
  return bigEndian ? 'big-endian' : 'little-endian';
}

function inspect(file: string, json: boolean): void {
  const bytes = readFileSync(file);
  if (json) {
    const stream = decodeStream(bytes);
    process.stdout.write(`${JSON.stringify({ ...stream, records: stream.records.map(toJson) }, null, 2)}\n`);
    return;
  }
  const { version, bigEndian } = readHeader(bytes);
  let lines = [`xenstore stream: version ${version}, ${endianName(bigEndian)}, ${bytes.length} bytes`];
  const flush = (): void => {
    process.stdout.write(`${lines.join('\n')}\n`);
    lines = [];
  };
  try {
    // Print as we go, so the records before a problem are shown too.
    for (const d of iterateStream(bytes)) {
      const name = recordTypeName(recordTypeOf(d.record));
      lines.push(`${hex(d.offset, 6)}  #${String(d.index).padEnd(5)} ${name.padEnd(19)} ${describe(d.record)}`);
      if (lines.length >= 4096) flush();
    }
  } finally {
    flush();
  }
  lines.push(`${hex(bytes.length - 8, 6)}         END`);
  flush();
}

function verify(file: string): void {
  const stream = decodeStream(readFileSync(file));
  const problem = checkStream(stream.records);
  if (problem) throw problem;
  process.stdout.write(`OK: ${stream.records.length} records, version ${stream.version}, ${endianName(stream.bigEndian)}\n`);
}

function convert(input: string, output: string, flags: Map<string, string>): void {
  const versionFlag = flags.get('--version');
  if (versionFlag !== undefined && versionFlag !== '1' && versionFlag !== '2') {
    throw new UsageError(`--version must be 1 or 2, not ${JSON.stringify(versionFlag)}`);
  }
  if (flags.has('--big-endian') && flags.has('--little-endian')) {
    throw new UsageError('--big-endian and --little-endian exclude each other');
  }
  const source = decodeStream(readFileSync(input));
  const version = versionFlag === undefined ? source.version : versionFlag === '1' ? 1 : 2;
  const bigEndian = flags.has('--big-endian') || (!flags.has('--little-endian') && source.bigEndian);
  let records = source.records.map((d) => d.record);
  if (version === 1) records = downgradeToV1(records);
  const bytes = encodeStream({ version, bigEndian }, records);
  writeFileSync(output, bytes);
  process.stdout.write(`wrote ${output}: ${records.length} records, version ${version}, ${endianName(bigEndian)}, ${bytes.length} bytes\n`);
}

function main(argv: string[]): number {
  if (argv.length === 1 && ['--help', '-h', 'help'].includes(argv[0] as string)) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  try {
    const { command, files, flags } = parseArgs(argv);
    const [first = '', second = ''] = files;
    if (command === 'inspect') inspect(first, flags.has('--json'));
    else if (command === 'verify') verify(first);
    else convert(first, second, flags);
    return 0;
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`xenstore-stream: ${err.message}\n${USAGE}\n`);
      return 2;
    }
    if (err instanceof StreamError) {
      process.stderr.write(`xenstore-stream: ${err.message}\n`);
      return 1;
    }
    if (err instanceof StreamEncodeError) {
      process.stderr.write(`xenstore-stream: refusing to convert, information would be lost: ${err.message}\n`);
      return 1;
    }
    if (err instanceof Error && 'code' in err && 'syscall' in err) {
      process.stderr.write(`xenstore-stream: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
}

// `inspect big.bin | head` closes the pipe early; that is not an error.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code !== 'EPIPE') throw err;
  process.exit(process.exitCode ?? 0);
});
process.exitCode = main(process.argv.slice(2));
