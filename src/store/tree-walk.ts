/**
 * The one way to visit the node tree: iterative, so a chain thousands of
 * levels deep costs heap, not call stack. Children are visited in list
 * order, a node before its children (`enter`) and, when asked, after them
 * too (`leave`).
 */
import type { Node } from './node.js';
import { childPath } from './path.js';

/** Return false to skip the node's children. */
export type EnterNode = (path: string, node: Node, depth: number) => boolean | void;
export type LeaveNode = (path: string, node: Node, depth: number) => void;

interface Frame {
  path: string;
  node: Node;
  children: Iterator<[string, Node | undefined]> | undefined;
}

/**
 * Walks the subtree at `path`. The callbacks may change nodes, and may
 * detach the node they are given from its parent: a child list is read
 * through the iterator taken when its node was entered.
 */
export function walkTree(path: string, node: Node, enter: EnterNode, leave?: LeaveNode): void {
  const stack: Frame[] = [];
  const push = (p: string, n: Node): void => {
    const descend = enter(p, n, stack.length) !== false;
    stack.push({ path: p, node: n, children: descend ? n.children?.children() : undefined });
  };
  push(path, node);
  while (stack.length > 0) {
    const top = stack[stack.length - 1]!;
    const next = top.children?.next();
    if (next && !next.done) {
      const [name, child] = next.value;
      if (child) push(childPath(top.path, name), child);
      continue;
    }
    stack.pop();
    leave?.(top.path, top.node, stack.length);
  }
}
