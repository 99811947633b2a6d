/** Conditions on the triggering event and branch. */
import type { When, WorkflowEvent } from './model';

/** Whether a `when` matches a triggering event on a branch (the branch is ignored for tags). */
export function whenMatches(when: When, trigger: { event: WorkflowEvent; branch?: string }): boolean {
  if (when.events && !when.events.includes(trigger.event)) return false;
  if (when.branches && trigger.event !== 'tag') {
    if (trigger.branch === undefined) return false;
    return when.branches.some((pattern) => branchPattern(pattern).test(trigger.branch!));
  }
  return true;
}

function branchPattern(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === '*' && glob[i + 1] === '*') {
      re += '.*';
      i++;
    } else if (c === '*') re += '[^/]*';
    else re += c.replace(/[.+?^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}
