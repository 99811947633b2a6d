/**
 * The image map: which guest image (and machine size) a `runs-on` label gets on this host.
 * A YAML file (SOLSTICE_IMAGE_MAP / --image-map), see docs/qemu.md:
 *
 *   default_label: debian-12
 *   aliases: { linux: debian-12 }
 *   sizes: { small: { cpu: 1, memory: 1024 } }
 *   images:
 *     debian-12:
 *       base: ../.tools/images/debian-12/base.qcow2   # relative to this file
 *       kernel: ../.tools/images/debian-12/vmlinuz
 *       initrd: ../.tools/images/debian-12/initrd
 *       size: small
 *       source: https://images.example/debian-12.qcow2   # optional: fetched when base is missing
 *       checksum: sha256:<hex>                            # optional: verified after fetching
 *       options: { accel: tcg, append: "root=/dev/vda console=ttyS0 rw" }
 */
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { z } from 'zod';
import { ConfigError } from '../../platform/errors';
import { checkPoolSpec, DEFAULT_MAX_IDLE_AGE_MS, type PoolSpec } from '../../capacity/pool-spec';
import { readSettingDuration } from '../../platform/units';

export type Accel = 'kvm' | 'tcg' | 'auto';

export interface MachineSize {
  cpu: number;
  /** MiB */
  memory: number;
}

export interface ImageSpec {
  name: string;
  /** Absolute paths. */
  base: string;
  kernel: string;
  initrd: string;
  size: MachineSize;
  source?: string;
  /** `sha256:<hex>` */
  checksum?: string;
  options: { accel?: Accel; append: string };
  /** Warm pool of this image on every host (capacity/pool-spec.ts). */
  pool?: PoolSpec;
}

export interface ImageMap {
  defaultLabel: string;
  /** alias → image name */
  aliases: Record<string, string>;
  images: Record<string, ImageSpec>;
}

export const DEFAULT_SIZE: MachineSize = { cpu: 1, memory: 1024 };
export const DEFAULT_APPEND = 'root=/dev/vda console=ttyS0 rw';

const name = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'letters, digits, ".", "_" and "-" only');
const sizeSchema = z.strictObject({
  cpu: z.number().int().min(1).max(256),
  memory: z.number().int().min(128),
});
const poolSchema = z.strictObject({
  min_idle: z.number().int().min(0),
  max_idle: z.number().int().min(0).optional(),
  max_idle_age: z.string().min(1).optional(),
});
const imageSchema = z.strictObject({
  base: z.string().min(1),
  pool: poolSchema.optional(),
  kernel: z.string().min(1),
  initrd: z.string().min(1),
  size: z.union([z.string(), sizeSchema]).optional(),
  source: z.string().min(1).optional(),
  checksum: z
    .string()
    .regex(/^sha256:[0-9a-f]{64}$/i, 'must be sha256:<64 hex digits>')
    .optional(),
  options: z
    .strictObject({
      accel: z.enum(['kvm', 'tcg', 'auto']).optional(),
      append: z.string().min(1).optional(),
    })
    .optional(),
});
const mapSchema = z.strictObject({
  default_label: name.optional(),
  aliases: z.record(name, name).optional(),
  sizes: z.record(name, sizeSchema).optional(),
  images: z.record(name, imageSchema).refine((o) => Object.keys(o).length > 0, 'needs at least one image'),
});

function poolSpecOf(source: string, image: string, p: z.infer<typeof poolSchema>): PoolSpec {
  try {
    return checkPoolSpec(image, {
      minIdle: p.min_idle,
      maxIdle: p.max_idle ?? p.min_idle,
      maxIdleAgeMs: p.max_idle_age ? readSettingDuration(p.max_idle_age) : DEFAULT_MAX_IDLE_AGE_MS,
    });
  } catch (err) {
    throw new ConfigError(`${source}: image "${image}": ${(err as Error).message}`);
  }
}

/** Warm pools by label: each pooled image's, under its name (aliases share their image's pool). */
export function poolsOf(map: ImageMap): Record<string, PoolSpec> {
  const out: Record<string, PoolSpec> = {};
  for (const img of Object.values(map.images)) if (img.pool) out[img.name] = img.pool;
  return out;
}

/** Parses and checks an image map; relative paths are resolved against `baseDir`. */
export function parseImageMap(text: string, baseDir: string, source = 'image map'): ImageMap {
  let raw: unknown;
  try {
    raw = YAML.parse(text);
  } catch (err) {
    throw new ConfigError(`${source} is not valid YAML: ${(err as Error).message}`);
  }
  const parsed = mapSchema.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.') || '(top)'}: ${i.message}`);
    throw new ConfigError(`${source} is invalid: ${problems.join('; ')}`, 'see docs/qemu.md for the format');
  }
  const m = parsed.data;
  const sizes = m.sizes ?? {};
  const images: Record<string, ImageSpec> = {};
  for (const [imageName, img] of Object.entries(m.images)) {
    let size = DEFAULT_SIZE;
    if (typeof img.size === 'string') {
      const named = sizes[img.size];
      if (!named)
        throw new ConfigError(
          `${source}: image "${imageName}" uses size "${img.size}", which sizes does not define (defined: ${Object.keys(sizes).join(', ') || 'none'})`,
        );
      size = named;
    } else if (img.size) size = img.size;
    images[imageName] = {
      name: imageName,
      base: path.resolve(baseDir, img.base),
      kernel: path.resolve(baseDir, img.kernel),
      initrd: path.resolve(baseDir, img.initrd),
      size,
      source: img.source,
      checksum: img.checksum?.toLowerCase(),
      options: { accel: img.options?.accel, append: img.options?.append ?? DEFAULT_APPEND },
      ...(img.pool ? { pool: poolSpecOf(source, imageName, img.pool) } : {}),
    };
  }
  const aliases = m.aliases ?? {};
  for (const [alias, target] of Object.entries(aliases)) {
    if (images[alias]) throw new ConfigError(`${source}: alias "${alias}" is also an image name`);
    if (!images[target])
      throw new ConfigError(
        `${source}: alias "${alias}" points to "${target}", which images does not define`,
      );
  }
  const defaultLabel = m.default_label ?? Object.keys(images)[0];
  if (!images[defaultLabel] && !aliases[defaultLabel])
    throw new ConfigError(`${source}: default_label "${defaultLabel}" is neither an image nor an alias`);
  return { defaultLabel, aliases, images };
}

export function loadImageMap(file: string): ImageMap {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(
      `the image map ${file} cannot be read (${(err as Error).message})`,
      'set SOLSTICE_IMAGE_MAP / --image-map to a YAML file; see docs/qemu.md',
    );
  }
  return parseImageMap(text, path.dirname(path.resolve(file)), file);
}

/** Every label a job may name: image names and aliases, sorted. */
export function knownLabels(map: ImageMap): string[] {
  return [...Object.keys(map.images), ...Object.keys(map.aliases)].sort();
}

/** The image a label runs on, or undefined for a label the map does not know. */
export function imageForLabel(map: ImageMap, label: string): ImageSpec | undefined {
  return map.images[label] ?? map.images[map.aliases[label] ?? ''];
}
