/**
 * `xenstore-control live-update`: C xenstored's sub-command protocol (-f,
 * -c, -s, -a) with its reply texts. Unlike C, `-s` never waits for open
 * transactions: they travel in the stream and survive the update.
 */
import fs from 'node:fs';
import type { LiveUpdateHost } from './host.js';
import type { HandlerRequest } from '../protocol/handler.js';
import { cString } from '../protocol/payload.js';
import { data, type Reply } from '../protocol/reply.js';
import { fail } from '../store/errors.js';
import { atoi } from '../store/numbers.js';
import { reexecUpdate } from './reexec-update.js';

interface Session {
  /** Requester serial of the connection that opened the session. */
  owner: number;
  binary: string;
  cmdline: string[] | undefined;
}

/** What C's xenstore-control passes as `-t` when not told otherwise, in seconds. */
const DEFAULT_TIMEOUT_S = 60;

const text = (s: string): Reply => data(cString(s));

export class LiveUpdateCommand {
  private session: Session | undefined;

  constructor(private readonly daemon: LiveUpdateHost, private readonly daemonArgs: () => string[]) {}

  run(r: HandlerRequest, args: string[]): Reply {
    // C looks at the command and at most six arguments.
    const vec = args.slice(0, 6);
    switch (vec[0]) {
      case '-a':
        if (vec.length !== 1) fail('EINVAL');
        if (!this.session) return text('No live-update session active.');
        // During `-s` too: the update then stops before the dump (C answers it the same way).
        this.session = undefined;
        return text('OK');
      case '-c':
        if (vec.length !== 2) fail('EINVAL');
        if (this.session?.owner !== r.client.serial) return text('Not in live-update session.');
        this.session.cmdline = vec[1]!.split(/[ \t]+/).filter(Boolean);
        return text('OK');
      case '-s':
        return this.start(r, vec.slice(1));
      case '-f':
        if (vec.length !== 2) fail('EINVAL');
        return text(this.open(r, vec[1]!));
      default:
        // -b/-d (stub-domain upload) and anything else: what a daemon build answers.
        return fail('EINVAL', `unsupported live-update option ${vec[0] ?? ''}`);
    }
  }

  private open(r: HandlerRequest, binary: string): string {
    let stat: fs.Stats;
    try {
      stat = fs.statSync(binary);
    } catch {
      return 'File not accessible.';
    }
    if (!(stat.mode & 0o111) && !/\.(c|m)?js$/.test(binary)) return 'File not executable.';
    if (this.session) return 'live-update session already active.';
    this.session = { owner: r.client.serial, binary, cmdline: undefined };
    return 'OK';
  }

  private start(r: HandlerRequest, flags: string[]): Reply {
    let version = r.store.compat.streamVersion as number;
    let timeoutS = DEFAULT_TIMEOUT_S;
    for (let i = 0; i < flags.length; i++) {
      const flag = flags[i];
      if (flag === '-F') continue;
      if (flag === '-t' && i < flags.length - 1) timeoutS = atoi(flags[++i]!) || DEFAULT_TIMEOUT_S;
      else if (flag === '-v' && i < flags.length - 1 && r.store.compat.liveUpdateVersionFlag) version = atoi(flags[++i]!);
      else fail('EINVAL', `bad live-update -s flag ${flag}`);
    }
    const session = this.session;
    if (session?.owner !== r.client.serial) return text('Not in live-update session.');
    if (version !== 1 && version !== 2) return text('Migration stream version not supported.');
    const conn = this.daemon.connections.get(r.client.serial)!;
    const ok = { type: r.frame.type, reqId: r.frame.reqId, txId: r.frame.txId, payload: cString('OK') };
    // Answer later, from the new image. Meanwhile the requester's next
    // requests wait, so its replies keep their order.
    conn.transport?.pause();
    // The session stays open until the update ends, as C's does: another
    // client's `-f` meanwhile gets "live-update session already active.".
    void reexecUpdate(this.daemon, {
      binary: session.binary,
      daemonArgs: withUpdateFlag(session.cmdline ?? this.daemonArgs()),
      version,
      timeoutMs: Math.max(timeoutS, 1) * 1000,
      cancelled: () => this.session !== session,
      reply: { conn, frame: ok },
    }).then((failure) => {
      if (this.session === session) this.session = undefined;
      conn.transport?.resume();
      this.daemon.reply(conn, { ...ok, payload: cString(failure) });
      this.daemon.flush();
    });
    return { payload: Buffer.alloc(0), deferred: true };
  }
}

/** The daemon's arguments with -U (start from the state file) added once. */
export function withUpdateFlag(args: string[]): string[] {
  return args.includes('-U') || args.includes('--live-update') ? args : [...args, '-U'];
}
