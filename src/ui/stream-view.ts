/**
 * A migration stream as the page lists it: the header, then one line per
 * record, up to the first problem (which is shown, not thrown).
 */
import { describeRecord } from '../stream/record-text.js';
import { recordTypeName, recordTypeOf } from '../stream/records.js';
import { StreamError } from '../stream/stream-error.js';
import { iterateStream, readHeader } from '../stream/stream-reader.js';

/** Records listed at most; a larger stream says how many more there were. */
const RECORDS_SHOWN = 5000;

export interface StreamView {
  header: string;
  records: { offset: number; type: string; fields: string }[];
  more: number;
  problem: string | undefined;
}

export function viewStream(bytes: Buffer): StreamView {
  const view: StreamView = { header: '', records: [], more: 0, problem: undefined };
  try {
    const { version, bigEndian } = readHeader(bytes);
    view.header = `version ${version}, ${bigEndian ? 'big' : 'little'}-endian, ${bytes.length} bytes`;
    for (const d of iterateStream(bytes)) {
      if (view.records.length === RECORDS_SHOWN) view.more++;
      else view.records.push({ offset: d.offset, type: recordTypeName(recordTypeOf(d.record)), fields: describeRecord(d.record) });
    }
  } catch (e) {
    if (!(e instanceof StreamError)) throw e;
    view.problem = e.message;
  }
  return view;
}
