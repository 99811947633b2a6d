/**
 * Two jobs with a secret each, run one after the other on a pool's machines: what each job can
 * see of the other's secret, of the pool file and of its token from inside its machine. The
 * local provider's pool test (tests/integration/capacity/pools.test.ts) and QEMU's
 * (tests/integration/provisioning/qemu-pool.test.ts) run the same look, each at its machine's root.
 */
import fs from 'node:fs';

/** Both jobs' secrets. Their common prefix is what SECRET_IN_THE_CLEAR finds. */
export const JOB_SECRETS = {
  A_SECRET: 'secret-of-job-a-5f1c2e',
  B_SECRET: 'secret-of-job-b-9d04aa',
} as const;

/** Matches either secret, for stored rows that must hold them only sealed. */
export const SECRET_IN_THE_CLEAR = /secret-of-job/;

/** Writes both secrets as a host secrets file (SOLSTICE_SECRETS_FILE), readable by its owner only. */
export function writeJobSecrets(file: string): void {
  const yaml = Object.entries(JOB_SECRETS)
    .map(([name, value]) => `${name}: ${value}\n`)
    .join('');
  fs.writeFileSync(file, yaml, { mode: 0o600 });
}

/** One job's look: the secret it names, and the other job's, which it must not see. */
export interface SecretLook {
  mine: string;
  other: string;
  otherValue: string;
}

/** Job A's look and job B's. */
export const SECRET_LOOKS: readonly SecretLook[] = [
  { mine: 'A_SECRET', other: 'B_SECRET', otherValue: JOB_SECRETS.B_SECRET },
  { mine: 'B_SECRET', other: 'A_SECRET', otherValue: JOB_SECRETS.A_SECRET },
];

/** Where a job finds its machine's files. */
export interface MachineRoot {
  /** The machine's `/` as the job's shell sees it: `$SOLSTICE_ROOT` on the local provider, '' in a VM. */
  root: string;
  /** Folders under the root that must not hold the other job's secret; default: etc only. */
  searched?: string[];
}

/**
 * Job script lines that print what SECRET_LOOK_CLEAN lists when the job sees its own secret and
 * nothing else: not the other job's, in its environment or on the machine's disk, nor the pool
 * file or its variable, nor the job token's variable.
 */
export function secretLookScript(look: SecretLook, machine: MachineRoot): string[] {
  const { root, searched = ['etc'] } = machine;
  const folders = searched.map((d) => `"${root}/${d}"`).join(' ');
  const { mine, other, otherValue } = look;
  return [
    `[ -n "$${mine}" ] && echo "got my secret"`,
    `[ -z "\${${other}:-}" ] && echo "no other secret in env"`,
    // The value in two halves: this script, on disk in the checkout, must not match itself.
    `other="$(printf %s%s '${otherValue.slice(0, 8)}' '${otherValue.slice(8)}')"`,
    `if grep -rqs -e "$other" ${folders}; then echo "LEAK"; else echo "no other secret on disk"; fi`,
    `[ -e "${root}/etc/solstice/pool.yaml" ] && echo "pool file left" || echo "no pool file"`,
    `[ -z "\${SOLSTICE_POOL_FILE:-}" ] && echo "no pool file variable"`,
    `[ -z "\${SOLSTICE_JOB_TOKEN:-}" ] && echo "no token variable"`,
  ];
}

/** Every line secretLookScript prints when nothing leaks; a leak prints LEAK or leaves one out. */
export const SECRET_LOOK_CLEAN: readonly string[] = [
  'got my secret',
  'no other secret in env',
  'no other secret on disk',
  'no pool file',
  'no pool file variable',
  'no token variable',
];
