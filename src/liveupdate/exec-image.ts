/**
 * Live update: hand the daemon over to a successor program while its sockets
 * stay open, so that connected clients and pending connections survive.
 *
 * Two ways, same contract:
 *
 *  - {@link reexecSelf}: execve(2) in place through the native addon
 *    `build/Release/xs_execve.node` (native/execve.c). Same PID, same
 *    descriptor numbers. Node marks every descriptor FD_CLOEXEC: those it
 *    opens, and at startup the inherited ones, stdio 0-2 included (without
 *    `keepStdio` the new image would start with /dev/null as stdio). The addon
 *    clears the flag on the descriptors to keep right before the exec and
 *    restores it if the exec fails; the caller then gets an Error (`code`
 *    "ENOENT", "EACCES", ...) and simply keeps serving.
 *  - {@link spawnSuccessor}: fallback when the addon is not built or disabled
 *    (`XENSTORED_SIM_NO_NATIVE=1`). A child process receives the descriptors
 *    through `child_process.spawn` stdio entries. New PID: the predecessor
 *    must exit afterwards, and a supervisor tracking the PID must allow that.
 *
 * ## Descriptor-mapping contract
 *
 * The predecessor lists the descriptors to hand over in `keepFds`, in an order
 * of its choosing. The successor finds in the environment variable
 * `XENSTORED_SIM_LU_FDS` ({@link INHERITED_FDS_ENV}) a comma-separated list of
 * the same length and order, giving where each one landed; read it with
 * {@link takeInheritedFds}:
 *
 *  - after {@link reexecSelf}: the same numbers (exec keeps the descriptor
 *    table), e.g. keepFds [17, 21, 22] -> "17,21,22";
 *  - after {@link spawnSuccessor}: keepFds[i] is fd 3+i in the child,
 *    e.g. keepFds [17, 21, 22] -> "3,4,5".
 *
 * Position i is the only link between the two sides: what each descriptor is
 * (the listening socket, the connection of domain N, ...) belongs in the state
 * the predecessor serialises for its successor. Stdio (fds 0-2) is not listed:
 * it is inherited as-is in both modes unless `keepStdio: false`.
 *
 * The successor adopts the descriptors with adoptListeningSocket() and
 * adoptConnectedSocket() from ./adopt-fds.js.
 *
 * ## Caveats (see also ./adopt-fds.ts)
 *
 *  - Nothing runs after a successful exec: no 'exit' handlers, no pending
 *    timers, and bytes still queued in a net.Socket's user-space write buffer
 *    (`socket.writableLength > 0`) are lost. Flush or serialise them first.
 *    Bytes the peer sent that the old image has not read stay in the kernel and
 *    are read by the successor; bytes already read into JS are the old image's
 *    to serialise.
 *  - Node flags are not inherited by an exec: pass them again in `argv`
 *    (`process.execArgv`, e.g. --max-old-space-size=...; {@link nodeSelfArgs}
 *    does that). NODE_OPTIONS travels in `env` like any variable.
 *  - O_NONBLOCK belongs to the open file description, not the descriptor, so
 *    it survives the hand-over: sockets Node created are non-blocking, and so
 *    are stdout/stderr once Node has written to them if they are pipes or
 *    sockets (Node's exit hook that resets stdio modes does not run on exec;
 *    with spawn, libuv makes the child's 0-2 blocking, for both processes).
 *    A Node successor copes (libuv sets O_NONBLOCK anyway when it adopts a
 *    descriptor); a non-Node successor must expect it.
 *  - Spawn fallback under a Node parent: when the predecessor exits, Node's
 *    ChildProcess in the parent destroys its end of the predecessor's stdin
 *    pipe, so the successor reads EOF on stdin at once. Do not treat stdin
 *    EOF as "shut down".
 *  - Signal dispositions are inherited as execve(2) specifies: handlers are
 *    reset, ignored signals stay ignored. Node ignores SIGPIPE and SIGXFSZ, so
 *    the new image starts with those ignored (Node does that itself anyway;
 *    another program might not expect it). The signal mask was empty in the
 *    tests.
 */
// node:child_process is loaded at first use (process.getBuiltinModule): a
// daemon start does not pay for it.
import type { ChildProcess, IOType, StdioOptions } from 'node:child_process';
import { accessSync, constants as fsConstants } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/** Set to "1" to ignore the native addon and always use the spawn fallback. */
export const NO_NATIVE_ENV = 'XENSTORED_SIM_NO_NATIVE';
/** Overrides where the addon is loaded from (a path to xs_execve.node). */
export const NATIVE_ADDON_ENV = 'XENSTORED_SIM_NATIVE_ADDON';
/** Carries the successor's descriptor numbers; see the module comment. */
export const INHERITED_FDS_ENV = 'XENSTORED_SIM_LU_FDS';

/** The raw native addon (native/execve.c). All calls throw on failure. */
export interface ExecAddon {
  /** Whether FD_CLOEXEC is set on fd. */
  getCloexec(fd: number): boolean;
  /** Clears FD_CLOEXEC on all fds (all or nothing); returns the previous F_GETFD flags. */
  clearCloexec(fds: readonly number[]): number[];
  /** Sets the F_GETFD flags of fds, e.g. to what clearCloexec returned. */
  setCloexec(fds: readonly number[], flags: readonly number[]): void;
  /** execve(2) keeping keepFds open; argv includes argv[0]. Returns only by throwing. */
  execve(
    path: string,
    argv: readonly string[],
    env: Readonly<Record<string, string>> | readonly string[],
    keepFds: readonly number[],
  ): never;
  /** flock(fd, LOCK_EX | LOCK_NB): true when taken, false when another open file holds it. */
  tryLock(fd: number): boolean;
}

/** What to run as the successor and which descriptors it gets. */
export interface SuccessorOptions {
  /** Program to run; for the daemon itself `process.execPath`. No PATH search: give a path. */
  execPath: string;
  /**
   * Arguments after argv[0], as for `child_process.spawn`. For a Node successor
   * the node flags come first: `[...process.execArgv, script, ...args]`.
   */
  argv: readonly string[];
  /** Environment of the successor; default `process.env`. {@link INHERITED_FDS_ENV} is added. */
  env?: NodeJS.ProcessEnv;
  /** Descriptors to hand over, in the order the successor will find them. */
  keepFds: readonly number[];
  /** argv[0] as the successor sees it; default `execPath`. */
  argv0?: string;
  /** Hand over stdio (fds 0-2) too; default true. When false the successor gets /dev/null. */
  keepStdio?: boolean;
}

const FD_CLOEXEC = 1;

let loaded: { addon: ExecAddon | null; error?: string } | undefined;

function addonPath(): string {
  return (
    process.env[NATIVE_ADDON_ENV] ||
    fileURLToPath(new URL('../../build/Release/xs_execve.node', import.meta.url))
  );
}

/**
 * The native addon, or null when it is disabled ({@link NO_NATIVE_ENV}), not
 * built or fails to load. The load is attempted once; the switch is read on
 * every call.
 */
export function loadExecAddon(): ExecAddon | null {
  if (process.env[NO_NATIVE_ENV] === '1') return null;
  if (!loaded) {
    const path = addonPath();
    try {
      loaded = { addon: createRequire(import.meta.url)(path) as ExecAddon };
    } catch (err) {
      loaded = { addon: null, error: `cannot load ${path}: ${String((err as Error).message).split('\n')[0]}` };
    }
  }
  return loaded.addon;
}

/** Whether {@link reexecSelf} can work here (the native addon is loaded). */
export function reexecAvailable(): boolean {
  return loadExecAddon() !== null;
}

/** Why {@link reexecAvailable} is false, for a log line; undefined when it is true. */
export function reexecUnavailableReason(): string | undefined {
  if (process.env[NO_NATIVE_ENV] === '1') return `disabled by ${NO_NATIVE_ENV}=1`;
  return loadExecAddon() ? undefined : loaded?.error;
}

/**
 * Sets FD_CLOEXEC on fds again (adopted descriptors arrive without it, so any
 * child the successor spawns would inherit them). Returns false, doing
 * nothing, when the addon is unavailable: Node itself has no way to do this.
 */
export function markCloexec(fds: readonly number[]): boolean {
  const addon = loadExecAddon();
  if (!addon) return false;
  addon.setCloexec(fds, fds.map(() => FD_CLOEXEC));
  return true;
}

/** Node flags plus script and arguments that started this process, to run it again. */
export function nodeSelfArgs(): string[] {
  return [...process.execArgv, ...process.argv.slice(1)];
}

/**
 * Replaces this process image by `execPath` (same PID), keeping `keepFds` and,
 * unless `keepStdio` is false, fds 0-2 open. Returns only by throwing: when the
 * exec fails the FD_CLOEXEC flags are back as they were and the Error has
 * `code` (e.g. "ENOENT"), `errno` (negative, as in Node), `syscall` and `path`;
 * without the addon it throws with code "ERR_XS_REEXEC_UNAVAILABLE".
 */
export function reexecSelf(options: SuccessorOptions): never {
  const addon = loadExecAddon();
  if (!addon) {
    throw Object.assign(new Error(`re-exec unavailable: ${reexecUnavailableReason()}`), {
      code: 'ERR_XS_REEXEC_UNAVAILABLE',
    });
  }
  const { execPath, args, fds } = validate(options);
  const keep = options.keepStdio === false ? fds : [...new Set([0, 1, 2, ...fds])];
  return addon.execve(
    execPath,
    [options.argv0 ?? execPath, ...args],
    successorEnv(options.env, fds),
    keep,
  );
}

/**
 * Fallback hand-over: starts `execPath` as a child that gets keepFds[i] as
 * fd 3+i (see the module comment) and stdio as this process has it. Throws
 * synchronously when the child cannot be started; otherwise the child is
 * running and this process should exit soon, in the same tick (e.g. with
 * `process.exit()`), because until it does both processes share the
 * descriptors: anything it reads or accepts meanwhile is lost to the
 * successor. Do not `close()` a Unix-socket server it bound itself before
 * exiting: libuv unlinks the socket path on close.
 */
export function spawnSuccessor(options: SuccessorOptions): ChildProcess {
  const { execPath, args, fds } = validate(options);
  const std: IOType = options.keepStdio === false ? 'ignore' : 'inherit';
  const stdio: StdioOptions = [std, std, std, ...fds];
  const env = successorEnv(options.env, fds.map((_, i) => 3 + i));
  const child = process.getBuiltinModule('node:child_process').spawn(execPath, args, { argv0: options.argv0 ?? execPath, env, stdio });
  if (child.pid === undefined) {
    // Node reports ENOENT, EACCES, EAGAIN, EMFILE and ENFILE through a deferred
    // 'error' event; swallow that and throw now with the best code we can find.
    child.once('error', () => {});
    throw spawnFailure(execPath);
  }
  return child;
}

/**
 * The successor side of the contract: the descriptor numbers handed over, in
 * the predecessor's keepFds order ([] when started normally). Removes the
 * variable from `env` so that the successor's own children do not see it.
 */
export function takeInheritedFds(env: NodeJS.ProcessEnv = process.env): number[] {
  const raw = env[INHERITED_FDS_ENV];
  delete env[INHERITED_FDS_ENV];
  if (raw === undefined || raw === '') return [];
  return raw.split(',').map((s) => {
    if (!/^\d+$/.test(s)) throw new Error(`${INHERITED_FDS_ENV}: bad descriptor list "${raw}"`);
    return Number(s);
  });
}

function validate(options: SuccessorOptions): { execPath: string; args: string[]; fds: number[] } {
  const { execPath, argv, keepFds } = options;
  for (const s of [execPath, options.argv0 ?? '', ...argv]) {
    if (typeof s !== 'string' || s.includes('\0')) {
      throw new TypeError('execPath, argv0 and argv must be strings without NUL bytes');
    }
  }
  if (execPath === '') throw new TypeError('execPath must not be empty');
  const fds = [...keepFds];
  if (fds.some((fd) => !Number.isInteger(fd) || fd < 0) || new Set(fds).size !== fds.length) {
    throw new TypeError('keepFds must be distinct non-negative integers');
  }
  return { execPath, args: [...argv], fds };
}

function successorEnv(env: NodeJS.ProcessEnv = process.env, fds: readonly number[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined) continue;
    if (name.includes('=') || name.includes('\0') || value.includes('\0')) {
      throw new TypeError(`bad environment variable ${JSON.stringify(name)}`);
    }
    out[name] = value;
  }
  out[INHERITED_FDS_ENV] = fds.join(',');
  return out;
}

function spawnFailure(execPath: string): Error {
  if (execPath.includes('/')) {
    try {
      accessSync(execPath, fsConstants.X_OK);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      return Object.assign(new Error(`spawn ${execPath}: ${e.code ?? e.message}`), {
        code: e.code,
        errno: e.errno,
        syscall: 'spawn',
        path: execPath,
      });
    }
  }
  return Object.assign(new Error(`spawn ${execPath} failed`), { code: 'ERR_XS_SPAWN_FAILED', path: execPath });
}
