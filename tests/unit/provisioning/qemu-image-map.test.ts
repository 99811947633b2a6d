import path from 'node:path';
import { ConfigError } from '../../../platform/errors';
import {
  DEFAULT_APPEND,
  DEFAULT_SIZE,
  imageForLabel,
  knownLabels,
  parseImageMap,
} from '../../../provisioning/qemu/image-map';

const MAP = `
default_label: debian-12
aliases:
  linux: debian-12
  big-linux: debian-12-large
sizes:
  small: { cpu: 1, memory: 1024 }
  large: { cpu: 4, memory: 8192 }
images:
  debian-12:
    base: images/debian-12/base.qcow2
    kernel: images/debian-12/vmlinuz
    initrd: /abs/initrd
    size: small
    source: https://images.example/debian-12.qcow2
    checksum: sha256:${'AB'.repeat(32)}
  debian-12-large:
    base: images/debian-12/base.qcow2
    kernel: images/debian-12/vmlinuz
    initrd: images/debian-12/initrd
    size: large
    options: { accel: tcg, append: "root=/dev/vda console=ttyS0 rw quiet" }
  tiny:
    base: t.qcow2
    kernel: t.vmlinuz
    initrd: t.initrd
    size: { cpu: 2, memory: 512 }
`;

test('parses images, sizes, aliases and resolves paths against the map file', () => {
  const map = parseImageMap(MAP, '/etc/solstice');
  expect(map.defaultLabel).toBe('debian-12');
  expect(knownLabels(map)).toEqual(['big-linux', 'debian-12', 'debian-12-large', 'linux', 'tiny']);
  const img = imageForLabel(map, 'linux');
  expect(img).toMatchObject({
    name: 'debian-12',
    base: path.resolve('/etc/solstice/images/debian-12/base.qcow2'),
    initrd: '/abs/initrd',
    size: { cpu: 1, memory: 1024 },
    source: 'https://images.example/debian-12.qcow2',
    checksum: `sha256:${'ab'.repeat(32)}`,
    options: { append: DEFAULT_APPEND },
  });
  expect(imageForLabel(map, 'big-linux')).toMatchObject({
    name: 'debian-12-large',
    size: { cpu: 4, memory: 8192 },
    options: { accel: 'tcg', append: 'root=/dev/vda console=ttyS0 rw quiet' },
  });
  expect(imageForLabel(map, 'tiny')?.size).toEqual({ cpu: 2, memory: 512 });
  expect(imageForLabel(map, 'ubuntu-22.04')).toBeUndefined();
});

test('without default_label or sizes: the first image, one CPU and 1 GiB', () => {
  const map = parseImageMap('images:\n  a: { base: a.qcow2, kernel: k, initrd: i }\n', '/x');
  expect(map.defaultLabel).toBe('a');
  expect(imageForLabel(map, 'a')?.size).toEqual(DEFAULT_SIZE);
});

test.each([
  ['not yaml: [', /not valid YAML/],
  ['images: {}', /images: needs at least one image/],
  ['images:\n  a: { base: a.qcow2, kernel: k }', /images\.a\.initrd/],
  [
    'images:\n  a: { base: a, kernel: k, initrd: i, size: huge }',
    /uses size "huge", which sizes does not define/,
  ],
  ['images:\n  a: { base: a, kernel: k, initrd: i, checksum: md5:1 }', /checksum: must be sha256/],
  ['images:\n  a: { base: a, kernel: k, initrd: i, options: { accel: xen } }', /options\.accel/],
  ['aliases: { b: c }\nimages:\n  a: { base: a, kernel: k, initrd: i }', /alias "b" points to "c"/],
  ['default_label: z\nimages:\n  a: { base: a, kernel: k, initrd: i }', /default_label "z"/],
  ['images:\n  a: { base: a, kernel: k, initrd: i, disk: 3 }', /Unrecognized key/i],
])('rejects %j', (text, message) => {
  expect(() => parseImageMap(text, '/x', 'map.yaml')).toThrow(ConfigError);
  expect(() => parseImageMap(text, '/x', 'map.yaml')).toThrow(message);
});
