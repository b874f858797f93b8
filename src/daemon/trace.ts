/** The request trace (-T): one line per request, reply and watch event. */
import fs from 'node:fs';
import { messageTypeName } from '../wire/vocabulary.js';
import type { Frame } from '../protocol/frame.js';
import { openPrivateAppend } from './private-files.js';

export class TraceLog {
  private fd: number;

  constructor(readonly file: string) {
    this.fd = openPrivateAppend(file);
  }

  frame(direction: 'IN ' | 'OUT', connection: number, frame: Frame): void {
    const shown = frame.payload.toString('latin1').replace(/\0/g, ' ').replace(/[^\x20-\x7e]/g, '.');
    const line = `${direction} conn${connection} ${new Date().toISOString()} ${messageTypeName(frame.type)} req ${frame.reqId} tx ${frame.txId} (${shown})\n`;
    fs.writeSync(this.fd, line);
  }

  line(text: string): void {
    fs.writeSync(this.fd, `${new Date().toISOString()} ${text}\n`);
  }

  close(): void {
    fs.closeSync(this.fd);
  }
}
