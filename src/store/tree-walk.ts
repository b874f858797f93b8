/**
 * The one way to visit a tree of nodes: iterative, so a chain thousands of
 * levels deep costs heap, not call stack. Children are visited in list
 * order, a node before its children (`enter`) and, when asked, after them
 * too (`leave`). The store's tree is walked with walkTree; a transaction's
 * view, whose children are read through the view, with walkNodes.
 */
import type { Node } from './node.js';
import { childPath } from './path.js';

/** Return false to skip the node's children. */
export type EnterNode<T> = (path: string, node: T, depth: number) => boolean | void;
/** `parent` is undefined for the node the walk started at. */
export type LeaveNode<T> = (path: string, node: T, depth: number, parent: T | undefined) => void;
/** A node's children as [name, child] pairs, read when the node is entered; a child that is undefined is skipped. */
export type ChildrenOf<T> = (path: string, node: T) => Iterator<[string, T | undefined]> | undefined;

interface Frame<T> {
  path: string;
  node: T;
  children: Iterator<[string, T | undefined]> | undefined;
}

export function walkNodes<T>(path: string, node: T, childrenOf: ChildrenOf<T>, enter: EnterNode<T>, leave?: LeaveNode<T>): void {
  const stack: Frame<T>[] = [];
  const push = (p: string, n: T): void => {
    const descend = enter(p, n, stack.length) !== false;
    stack.push({ path: p, node: n, children: descend ? childrenOf(p, n) : undefined });
  };
  push(path, node);
  while (stack.length > 0) {
    const top = stack[stack.length - 1]!;
    const next = top.children?.next();
    if (next && !next.done) {
      const [name, child] = next.value;
      if (child !== undefined) push(childPath(top.path, name), child);
      continue;
    }
    stack.pop();
    leave?.(top.path, top.node, stack.length, stack[stack.length - 1]?.node);
  }
}

/**
 * Walks the store's subtree at `path`. The callbacks may change nodes, and
 * may detach the node they are given from its parent: a child list is read
 * through the iterator taken when its node was entered.
 */
export function walkTree(path: string, node: Node, enter: EnterNode<Node>, leave?: LeaveNode<Node>): void {
  walkNodes(path, node, (_p, n) => n.children?.children(), enter, leave);
}
