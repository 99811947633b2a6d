/**
 * Whose a machine is. Every machine carries the installation (one database) and the host that
 * made it in its process tag, its work-folder name and its VM name, because several
 * installations may share one host and even one host id (the hostname, by default): a
 * developer's `solstice ci-local` next to a production worker, staging next to production.
 * The sweeper removes only machines whose owner is exactly its own; everything else is
 * foreign and left alone, whatever its age.
 */
import { MACHINE_ID_PATTERN } from './contract';

export interface MachineOwner {
  /** The installation's id, made once by its database's migrations (storage/installation.ts). */
  installationId: string;
  hostId: string;
}

export function sameOwner(a: MachineOwner, b: MachineOwner): boolean {
  return a.installationId === b.installationId && a.hostId === b.hostId;
}

/** Value of SOLSTICE_MACHINE_TAG: `<installation id>/<host id>/<machine id>`. */
export function machineTag(owner: MachineOwner, machineId: string): string {
  return `${owner.installationId}/${owner.hostId}/${machineId}`;
}

/**
 * The machine's work folder under the workspace root: `<installation id>.<host id>.<machine id>`
 * (the host id percent-encoded, so a `/` in it cannot nest folders).
 */
export function machineFolderName(owner: MachineOwner, machineId: string): string {
  return `${owner.installationId}.${encodeURIComponent(owner.hostId)}.${machineId}`;
}

/** The VM's name as QEMU and `ps` show it. */
export function vmName(owner: MachineOwner, machineId: string): string {
  return `solstice-${owner.installationId}-${owner.hostId}-${machineId}`;
}

export interface NamedMachine {
  machineId: string;
  /** Undefined for a machine named before machines carried their owner: never ours to sweep. */
  owner?: MachineOwner;
}

const MACHINE = MACHINE_ID_PATTERN.source.replace(/^\^|\$$/g, '');
const FOLDER = new RegExp(`^([^./]+)\\.([^/]+)\\.(${MACHINE})$`);
const TAG = new RegExp(`^([^/]+)/(.+)/(${MACHINE})$`);

/** A work folder's machine and owner, or undefined when the folder is no machine's. */
export function parseMachineFolder(name: string): NamedMachine | undefined {
  if (MACHINE_ID_PATTERN.test(name)) return { machineId: name };
  const m = FOLDER.exec(name);
  if (!m) return undefined;
  let hostId: string;
  try {
    hostId = decodeURIComponent(m[2]);
  } catch {
    return undefined;
  }
  return { machineId: m[3], owner: { installationId: m[1], hostId } };
}

/** A process tag's machine and owner (`<host id>/<machine id>` tags are from older versions). */
export function parseMachineTag(tag: string): NamedMachine | undefined {
  const m = TAG.exec(tag);
  if (m) return { machineId: m[3], owner: { installationId: m[1], hostId: m[2] } };
  const legacy = /\/([^/]+)$/.exec(tag);
  return legacy && MACHINE_ID_PATTERN.test(legacy[1]) ? { machineId: legacy[1] } : undefined;
}
