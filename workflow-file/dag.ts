/** The job dependency graph (`needs`): a topological order, parallel stages, and cycles. */
import type { Job } from './model';

export interface JobGraph {
  /** Every job after all the jobs it needs: stage by stage, file order within a stage. */
  order: string[];
  /** Each job sits in the first stage after all of its needs; jobs of one stage may run in parallel. */
  stages: string[][];
  /** id → ids of the jobs that need it directly, in file order. */
  dependents: Record<string, string[]>;
  /** Dependency cycles, each closed (`['a', 'b', 'a']` reads "a needs b needs a"). Empty when valid. */
  cycles: string[][];
}

type GraphJob = Pick<Job, 'id' | 'needs'>;

/** Builds the graph. Unknown `needs` and repeated ids (reported by validation) are ignored here. */
export function jobGraph(jobs: readonly GraphJob[]): JobGraph {
  const byId = new Map<string, GraphJob>();
  for (const job of jobs) if (!byId.has(job.id)) byId.set(job.id, job);
  const ids = [...byId.keys()];
  const needsOf = (id: string) => [...new Set(byId.get(id)!.needs.filter((n) => byId.has(n)))];

  // fromEntries defines own properties, so no id (not even __proto__) can reach the prototype.
  const dependents: Record<string, string[]> = Object.fromEntries(ids.map((id) => [id, []]));
  for (const id of ids) for (const need of needsOf(id)) dependents[need].push(id);

  // Kahn's algorithm, a whole stage at a time.
  const missing = new Map(ids.map((id) => [id, needsOf(id).length]));
  const stages: string[][] = [];
  let ready = ids.filter((id) => missing.get(id) === 0);
  while (ready.length > 0) {
    stages.push(ready);
    const next = new Set<string>();
    for (const id of ready) {
      for (const dependent of dependents[id]) {
        const left = missing.get(dependent)! - 1;
        missing.set(dependent, left);
        if (left === 0) next.add(dependent);
      }
    }
    ready = ids.filter((id) => next.has(id));
  }
  const order = stages.flat();
  const cycles = order.length === ids.length ? [] : findCycles(ids, needsOf);
  return { order, stages, dependents, cycles };
}

/** Jobs that (transitively) need `id`, in topological order: what to skip when `id` fails. */
export function transitiveDependents(graph: JobGraph, id: string): string[] {
  const seen = new Set<string>();
  const visit = (j: string) => {
    for (const d of Object.hasOwn(graph.dependents, j) ? graph.dependents[j] : []) {
      if (!seen.has(d)) {
        seen.add(d);
        visit(d);
      }
    }
  };
  visit(id);
  return graph.order.filter((j) => seen.has(j));
}

/** One shortest cycle per strongly connected component, starting at its first job in file order. */
function findCycles(ids: string[], needsOf: (id: string) => string[]): string[][] {
  const components = stronglyConnected(ids, needsOf);
  const position = new Map(ids.map((id, i) => [id, i]));
  const cycles: string[][] = [];
  for (const component of components) {
    const members = new Set(component);
    const start = component.reduce((a, b) => (position.get(a)! <= position.get(b)! ? a : b));
    if (component.length === 1 && !needsOf(start).includes(start)) continue;
    // Breadth-first search back to `start`, following `needs` in the order they are written.
    const parent = new Map<string, string>();
    const queue = [start];
    let closing: string | undefined;
    for (let i = 0; i < queue.length && closing === undefined; i++) {
      for (const next of needsOf(queue[i])) {
        if (!members.has(next)) continue;
        if (next === start) {
          closing = queue[i];
          break;
        }
        if (!parent.has(next)) {
          parent.set(next, queue[i]);
          queue.push(next);
        }
      }
    }
    const path = [start];
    for (let at = closing!; at !== start; at = parent.get(at)!) path.splice(1, 0, at);
    cycles.push([...path, start]);
  }
  return cycles.sort((a, b) => position.get(a[0])! - position.get(b[0])!);
}

/** Tarjan's algorithm, iteratively (deep chains of needs must not overflow the stack). */
function stronglyConnected(ids: string[], needsOf: (id: string) => string[]): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const out: string[][] = [];
  let counter = 0;
  for (const root of ids) {
    if (index.has(root)) continue;
    const work: { id: string; edges: string[]; next: number }[] = [];
    const open = (id: string) => {
      index.set(id, counter);
      low.set(id, counter);
      counter++;
      stack.push(id);
      onStack.add(id);
      work.push({ id, edges: needsOf(id), next: 0 });
    };
    open(root);
    while (work.length > 0) {
      const frame = work[work.length - 1];
      if (frame.next < frame.edges.length) {
        const to = frame.edges[frame.next++];
        if (!index.has(to)) open(to);
        else if (onStack.has(to)) low.set(frame.id, Math.min(low.get(frame.id)!, index.get(to)!));
        continue;
      }
      work.pop();
      if (work.length > 0) {
        const up = work[work.length - 1].id;
        low.set(up, Math.min(low.get(up)!, low.get(frame.id)!));
      }
      if (low.get(frame.id) === index.get(frame.id)) {
        const component: string[] = [];
        let member: string;
        do {
          member = stack.pop()!;
          onStack.delete(member);
          component.push(member);
        } while (member !== frame.id);
        out.push(component);
      }
    }
  }
  return out;
}
