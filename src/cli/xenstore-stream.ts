#!/usr/bin/env node
/**
 * xenstore-stream: look at, check and convert XenStore migration / live-update
 * stream files. Plain Node, no dependencies; the codec does all the work.
 *
 * Exit status: 0 success, 1 the stream is invalid or cannot be converted
 * without loss, 2 bad usage or an unreadable/unwritable file.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { describeRecord, hex, recordJson } from '../stream/record-text.js';
import { recordTypeName, recordTypeOf } from '../stream/records.js';
import { checkStream } from '../stream/stream-check.js';
import { StreamEncodeError, StreamError } from '../stream/stream-error.js';
import { decodeStream, iterateStream, readHeader } from '../stream/stream-reader.js';
import { downgradeToV1, encodeStream } from '../stream/stream-writer.js';

const USAGE = `usage: xenstore-stream inspect FILE [--json]
       xenstore-stream verify FILE
       xenstore-stream convert IN OUT [--version 1|2] [--big-endian|--little-endian]`;

/** A bad xenstore-stream command line: the message plus the usage text go to stderr. */
class StreamUsageError extends Error {}

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
  if (!spec) throw new StreamUsageError(command ? `unknown command ${JSON.stringify(command)}` : 'no command given');
  const files: string[] = [];
  const flags = new Map<string, string>();
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i] as string;
    if (!arg.startsWith('--')) {
      files.push(arg);
      continue;
    }
    const takesValue = spec.flags[arg];
    if (takesValue === undefined) throw new StreamUsageError(`${command} does not accept ${arg}`);
    if (flags.has(arg)) throw new StreamUsageError(`${arg} given twice`);
    const value = takesValue ? rest[++i] : '';
    if (value === undefined) throw new StreamUsageError(`${arg} needs a value`);
    flags.set(arg, value);
  }
  if (files.length !== spec.files) throw new StreamUsageError(`${command} takes ${spec.files} file name(s), got ${files.length}`);
  return { command, files, flags };
}

function endianName(bigEndian: boolean): string {
  return bigEndian ? 'big-endian' : 'little-endian';
}

function inspect(file: string, json: boolean): void {
  const bytes = readFileSync(file);
  if (json) {
    const stream = decodeStream(bytes);
    process.stdout.write(`${JSON.stringify({ ...stream, records: stream.records.map(recordJson) }, null, 2)}\n`);
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
      lines.push(`${hex(d.offset, 6)}  #${String(d.index).padEnd(5)} ${name.padEnd(19)} ${describeRecord(d.record)}`);
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
    throw new StreamUsageError(`--version must be 1 or 2, not ${JSON.stringify(versionFlag)}`);
  }
  if (flags.has('--big-endian') && flags.has('--little-endian')) {
    throw new StreamUsageError('--big-endian and --little-endian exclude each other');
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
    if (err instanceof StreamUsageError) {
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
