/**
 * Guest clients that connect to a domain's socket while another client
 * still holds that domain's ring. A newcomer is parked: not read, not
 * answered, until the holder is seen gone (end-of-file, a failed read or
 * write, close), and then served. Only a holder still there after
 * GUEST_PATIENCE_MS makes the newcomer's first request answer EBUSY.
 *
 * Parking instead of refusing at once removes every race with the holder's
 * hang-up (which may be read after the newcomer's first bytes, or, for a
 * holder with unread output, only when a write to it fails), and it is
 * closer to a real guest, whose kernel multiplexes all its processes onto
 * the one ring.
 *
 * A live update carries the newcomers over (see {@link ParkedGuests.saved}):
 * each one's socket, its place in its queue, how long it has waited and the
 * bytes of its first request already read, so that the new image admits or
 * refuses it exactly as this one would have.
 */
import type net from 'node:net';
import type { Requester } from '../store/requester.js';
import { resumeReading, stopReading, undeliveredInput } from '../protocol/unix-transport.js';

/** How long a newcomer waits for the holder of its domain's ring to go. */
export const GUEST_PATIENCE_MS = 1000;

export interface ParkingHost {
  /** Has the domain's ring no client (and is the domain still there)? */
  ringFree(client: Requester): boolean;
  /** Makes `socket` the domain's ring; `first` holds bytes already read from it. */
  admit(client: Requester, socket: net.Socket, first?: Buffer): void;
  /** Answers the request that starts `first` with EBUSY and hangs up. */
  refuse(client: Requester, socket: net.Socket, first: Buffer): void;
}

interface Parked {
  socket: net.Socket;
  timer: NodeJS.Timeout;
  /** When it started waiting (performance.now()), less any wait before a live update. */
  since: number;
  onClose: () => void;
  onError: () => void;
  /** Set once patience ran out: the socket is read, to judge its first request. */
  onFirstRequest?: (first: Buffer) => void;
  /** Its first request's bytes, read by a previous image, not yet judged. */
  first?: Buffer;
}

/** A waiting newcomer as a live update hands it over, in its domain's queue order. */
export interface ParkedGuest {
  client: Requester;
  socket: net.Socket;
  waitedMs: number;
  /** Bytes of its first request already read from the socket (empty while it is not read). */
  first: Buffer;
}

export class ParkedGuests {
  /** Newcomers by the domain they wait for, longest waiting first. */
  private readonly queues = new Map<Requester, Parked[]>();

  constructor(
    private readonly host: ParkingHost,
    private readonly patienceMs = GUEST_PATIENCE_MS,
  ) {}

  /**
   * Holds `socket` back until `client`'s ring is free or patience runs out;
   * a newcomer handed over by a live update comes with the time it has
   * waited already and any bytes of its first request read before.
   */
  park(client: Requester, socket: net.Socket, waitedMs = 0, first?: Buffer): void {
    stopReading(socket);
    const parked: Parked = {
      socket,
      since: performance.now() - waitedMs,
      timer: setTimeout(() => this.outOfPatience(client, parked), Math.max(0, this.patienceMs - waitedMs)),
      onClose: () => this.unpark(client, parked),
      onError: () => socket.destroy(),
      ...(first && first.length > 0 ? { first } : {}),
    };
    parked.timer.unref();
    socket.once('close', parked.onClose);
    socket.on('error', parked.onError);
    const queue = this.queues.get(client);
    if (queue) queue.push(parked);
    else this.queues.set(client, [parked]);
  }

  /** The ring of `client` was let go: the longest-waiting live newcomer gets it. */
  ringFreed(client: Requester): void {
    for (let next = this.queues.get(client)?.[0]; next && this.host.ringFree(client); next = this.queues.get(client)?.[0]) {
      this.unpark(client, next);
      if (next.socket.destroyed) continue;
      this.host.admit(client, next.socket, next.first);
      resumeReading(next.socket);
    }
  }

  /** The domain is gone: hang up on everyone waiting for it. */
  dismiss(client: Requester): void {
    for (const parked of [...(this.queues.get(client) ?? [])]) {
      this.unpark(client, parked);
      parked.socket.destroy();
    }
  }

  dismissAll(): void {
    for (const client of [...this.queues.keys()]) this.dismiss(client);
  }

  /** Every newcomer waiting, queue by queue, longest waiting first: what a live update hands over. */
  saved(): ParkedGuest[] {
    const now = performance.now();
    return [...this.queues].flatMap(([client, queue]) =>
      queue.map((p) => ({ client, socket: p.socket, waitedMs: now - p.since, first: Buffer.concat([p.first ?? Buffer.alloc(0), undeliveredInput(p.socket)]) })));
  }

  /** Lets go of every newcomer without hanging up: a successor has taken them over. */
  handOver(): void {
    for (const [client, queue] of [...this.queues]) {
      for (const parked of [...queue]) {
        this.unpark(client, parked);
        parked.socket.off('error', parked.onError);
        stopReading(parked.socket);
      }
    }
  }

  /**
   * The holder is still there: the newcomer is judged at its first request
   * (EBUSY, unless the ring has come free by then). It stays in the queue
   * meanwhile, so a ring let go first is still handed to it.
   */
  private outOfPatience(client: Requester, parked: Parked): void {
    parked.onFirstRequest = (first) => {
      this.unpark(client, parked);
      if (this.host.ringFree(client)) this.host.admit(client, parked.socket, first);
      else this.host.refuse(client, parked.socket, first);
    };
    if (parked.first) {
      parked.onFirstRequest(parked.first);
      resumeReading(parked.socket);
      return;
    }
    parked.socket.once('data', parked.onFirstRequest);
    resumeReading(parked.socket);
  }

  private unpark(client: Requester, parked: Parked): void {
    clearTimeout(parked.timer);
    parked.socket.off('close', parked.onClose);
    if (parked.onFirstRequest) parked.socket.off('data', parked.onFirstRequest);
    const queue = this.queues.get(client);
    const at = queue?.indexOf(parked) ?? -1;
    if (at >= 0) queue!.splice(at, 1);
    if (queue?.length === 0) this.queues.delete(client);
  }
}
