import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkStream } from '../../src/stream/stream-check.js';
import { decodeStream } from '../../src/stream/stream-reader.js';
import { encodeStream } from '../../src/stream/stream-writer.js';

/** State files written by real C xenstored 4.17 (see test/fixtures/c-xenstored/README.md). */
const DIR = resolve(import.meta.dirname, '../fixtures/c-xenstored');
const FILES = existsSync(DIR) ? readdirSync(DIR).filter((f) => f.endsWith('.bin')).sort() : [];

describe.skipIf(FILES.length === 0)('streams written by C xenstored 4.17', () => {
  it.each(FILES)('%s decodes, passes the check and re-encodes byte for byte', (name) => {
    const bytes = readFileSync(join(DIR, name));
    const decoded = decodeStream(bytes);
    expect(decoded).toMatchObject({ version: 1, bigEndian: false });
    expect(checkStream(decoded.records)).toBeUndefined();
    const again = encodeStream(decoded, decoded.records.map((d) => d.record));
    expect(again.equals(bytes)).toBe(true);
  });
});
