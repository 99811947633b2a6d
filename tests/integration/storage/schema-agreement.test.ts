/**
 * prisma/schema.prisma and prisma/migrations must describe the same database. Without Prisma's
 * schema-engine we cannot run `prisma migrate diff`, so this test does its job:
 * - the expected schema comes from schema.prisma through Prisma's own parser (the DMMF from
 *   `@prisma/get-dmmf`, the WebAssembly build of prisma-schema), mapped to PostgreSQL with the
 *   rules Prisma's migration engine uses (default column types, constraint naming, defaults);
 * - the actual schema is read from pg_catalog of a fresh database the migrations were applied to.
 * Tables, columns (type, nullability, default), enums and their values, primary keys, unique and
 * plain indexes, and foreign keys (columns, target, ON DELETE / ON UPDATE) are compared by name.
 * The last tests prove the check notices drift in either direction.
 */
import fs from 'node:fs';
import path from 'node:path';
import { getDMMF } from '@prisma/get-dmmf';
import type { Client } from 'pg';
import { migrate } from '../../../storage/migrate';
import { createEmptyDatabase, type TestDatabase, withClient } from '../../support/database';

type Dmmf = Extract<ReturnType<typeof getDMMF>, { datamodel: unknown }>;
type DmmfModel = Dmmf['datamodel']['models'][number];
type DmmfField = DmmfModel['fields'][number];

interface ColumnShape {
  type: string;
  nullable: boolean;
  default: string | null;
}

interface KeyShape {
  columns: string[];
}

interface IndexShape extends KeyShape {
  unique: boolean;
}

interface ForeignKeyShape extends KeyShape {
  references: string;
  referencedColumns: string[];
  onDelete: string;
  onUpdate: string;
}

interface TableShape {
  columns: Record<string, ColumnShape>;
  primaryKey: (KeyShape & { name: string }) | null;
  indexes: Record<string, IndexShape>;
  foreignKeys: Record<string, ForeignKeyShape>;
}

interface SchemaShape {
  enums: Record<string, string[]>;
  tables: Record<string, TableShape>;
}

const SCHEMA_FILE = path.resolve(__dirname, '..', '..', '..', 'prisma', 'schema.prisma');
const MAX_IDENTIFIER = 63; // PostgreSQL's NAMEDATALEN - 1; Prisma truncates generated names to fit.

// ---------------------------------------------------------------------------------------------
// Expected: schema.prisma → PostgreSQL, following Prisma's rules.

/** Prisma's default constraint names: `<table>_<columns>_<suffix>`, truncated to fit. */
function constraintName(table: string, columns: string[], suffix: 'pkey' | 'key' | 'idx' | 'fkey'): string {
  const base = suffix === 'pkey' ? table : [table, ...columns].join('_');
  return `${base.slice(0, MAX_IDENTIFIER - suffix.length - 1)}_${suffix}`;
}

/** How format_type() spells a type name: quoted unless it is a plain lower-case identifier. */
function quoteIdent(name: string): string {
  return /^[a-z_][a-z0-9_$]*$/.test(name) ? name : `"${name.replace(/"/g, '""')}"`;
}

const DEFAULT_TYPES: Record<string, string> = {
  String: 'text',
  Int: 'integer',
  BigInt: 'bigint',
  Float: 'double precision',
  Decimal: 'numeric(65,30)',
  Boolean: 'boolean',
  DateTime: 'timestamp(3) without time zone',
  Json: 'jsonb',
  Bytes: 'bytea',
};

function nativeType(name: string, args: readonly string[]): string {
  const p = args.length > 0 ? `(${args.join(',')})` : '';
  const simple: Record<string, string> = {
    Text: 'text',
    Uuid: 'uuid',
    Integer: 'integer',
    SmallInt: 'smallint',
    BigInt: 'bigint',
    Real: 'real',
    DoublePrecision: 'double precision',
    Boolean: 'boolean',
    Date: 'date',
    Json: 'json',
    JsonB: 'jsonb',
    ByteA: 'bytea',
    Inet: 'inet',
    Citext: 'citext',
    Xml: 'xml',
    Money: 'money',
    Oid: 'oid',
  };
  if (simple[name]) return simple[name];
  switch (name) {
    case 'VarChar':
      return `character varying${p}`;
    case 'Char':
      return `character${p}`;
    case 'Decimal':
      return `numeric${p}`;
    case 'Timestamp':
      return `timestamp${p} without time zone`;
    case 'Timestamptz':
      return `timestamp${p} with time zone`;
    case 'Time':
      return `time${p} without time zone`;
    case 'Timetz':
      return `time${p} with time zone`;
    case 'Bit':
      return `bit${p}`;
    case 'VarBit':
      return `bit varying${p}`;
  }
  throw new Error(`schema-agreement: no PostgreSQL spelling for @db.${name} yet; add it to nativeType()`);
}

function sqlLiteral(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}

function expectedDefault(
  field: DmmfField,
  table: string,
  column: string,
  type: string,
  dmmf: Dmmf,
): string | null {
  const d = field.default;
  if (d === undefined) return null;
  if (typeof d === 'object' && d !== null && !Array.isArray(d) && 'name' in d) {
    switch (d.name) {
      case 'now':
        return 'CURRENT_TIMESTAMP';
      case 'autoincrement':
        return `nextval('${quoteIdent(`${table}_${column}_seq`)}'::regclass)`;
      case 'dbgenerated':
        return d.args.length > 0 ? String(d.args[0]) : null;
      case 'uuid':
      case 'cuid':
      case 'ulid':
      case 'nanoid':
        return null; // Generated by the Prisma client, not by the database.
    }
    throw new Error(`schema-agreement: @default(${d.name}()) is not mapped yet; add it to expectedDefault()`);
  }
  if (field.kind === 'enum') {
    const e = dmmf.datamodel.enums.find((x) => x.name === field.type);
    const value = e?.values.find((v) => v.name === d)?.dbName ?? String(d);
    return `${sqlLiteral(value)}::${quoteIdent(e?.dbName ?? field.type)}`;
  }
  if (typeof d === 'boolean') return String(d);
  if (typeof d === 'number') return d < 0 ? `${sqlLiteral(String(d))}::${type}` : String(d);
  if (typeof d === 'string') return `${sqlLiteral(d)}::${type}`;
  throw new Error('schema-agreement: list defaults are not mapped yet; add them to expectedDefault()');
}

function columnType(field: DmmfField, dmmf: Dmmf): string {
  let base: string;
  if (field.kind === 'enum') {
    const e = dmmf.datamodel.enums.find((x) => x.name === field.type);
    base = quoteIdent(e?.dbName ?? field.type);
  } else if (field.nativeType) {
    base = nativeType(field.nativeType[0], field.nativeType[1]);
  } else if (DEFAULT_TYPES[field.type]) {
    base = DEFAULT_TYPES[field.type];
  } else {
    throw new Error(`schema-agreement: no PostgreSQL type for ${field.type}`);
  }
  return field.isList ? `${base}[]` : base;
}

function expectedFromPrisma(schemaText: string): SchemaShape {
  // The DMMF does not carry foreign key constraint names, so a custom one could not be checked.
  if (/@relation\([^)]*\bmap\s*:/.test(schemaText)) {
    throw new Error('schema-agreement: @relation(map: ...) is not supported by this check yet');
  }
  const result = getDMMF({ datamodel: schemaText });
  if (!('datamodel' in result)) throw new Error(`schema.prisma does not parse: ${result.reason}`);
  const dmmf = result;

  const enums: Record<string, string[]> = {};
  for (const e of dmmf.datamodel.enums) enums[e.dbName ?? e.name] = e.values.map((v) => v.dbName ?? v.name);

  const tableOf = (modelName: string): string => {
    const model = dmmf.datamodel.models.find((m) => m.name === modelName);
    if (!model) throw new Error(`unknown model ${modelName}`);
    return model.dbName ?? model.name;
  };
  const columnOf = (modelName: string, fieldName: string): string => {
    const field = dmmf.datamodel.models
      .find((m) => m.name === modelName)
      ?.fields.find((f) => f.name === fieldName);
    if (!field) throw new Error(`unknown field ${modelName}.${fieldName}`);
    return field.dbName ?? field.name;
  };

  const tables: Record<string, TableShape> = {};
  for (const model of dmmf.datamodel.models) {
    const table = model.dbName ?? model.name;
    const shape: TableShape = { columns: {}, primaryKey: null, indexes: {}, foreignKeys: {} };
    for (const field of model.fields) {
      if (field.kind !== 'scalar' && field.kind !== 'enum') continue;
      const column = field.dbName ?? field.name;
      const type = columnType(field, dmmf);
      shape.columns[column] = {
        type,
        // Prisma makes scalar lists nullable columns.
        nullable: field.isList || !field.isRequired,
        default: expectedDefault(field, table, column, type, dmmf),
      };
    }
    for (const field of model.fields) {
      if (field.kind !== 'object' || !field.relationFromFields?.length) continue;
      const columns = field.relationFromFields.map((f) => columnOf(model.name, f));
      const optional = field.relationFromFields.some(
        (f) => !model.fields.find((x) => x.name === f)?.isRequired,
      );
      shape.foreignKeys[constraintName(table, columns, 'fkey')] = {
        columns,
        references: tableOf(field.type),
        referencedColumns: (field.relationToFields ?? []).map((f) => columnOf(field.type, f)),
        // Prisma's defaults: Restrict for required relations, SetNull for optional ones; Cascade on update.
        onDelete: field.relationOnDelete ?? (optional ? 'SetNull' : 'Restrict'),
        onUpdate: field.relationOnUpdate ?? 'Cascade',
      };
    }
    tables[table] = shape;
  }

  for (const index of dmmf.datamodel.indexes) {
    const table = tableOf(index.model);
    const columns = index.fields.map(
      (f) => columnOf(index.model, f.name) + (f.sortOrder === 'desc' ? ' DESC' : ''),
    );
    const bare = index.fields.map((f) => columnOf(index.model, f.name));
    if (index.type === 'id') {
      tables[table].primaryKey = { name: index.dbName ?? constraintName(table, bare, 'pkey'), columns };
    } else if (index.type === 'unique' || index.type === 'normal') {
      const suffix = index.type === 'unique' ? 'key' : 'idx';
      tables[table].indexes[index.dbName ?? constraintName(table, bare, suffix)] = {
        columns,
        unique: index.type === 'unique',
      };
    } else {
      throw new Error(`schema-agreement: ${index.type} indexes are not supported on PostgreSQL`);
    }
  }
  return { enums, tables };
}

// ---------------------------------------------------------------------------------------------
// Actual: what the migrations created, from pg_catalog.

const FK_ACTIONS: Record<string, string> = {
  a: 'NoAction',
  r: 'Restrict',
  c: 'Cascade',
  n: 'SetNull',
  d: 'SetDefault',
};

async function actualFromDatabase(client: Client): Promise<SchemaShape> {
  const enums: Record<string, string[]> = {};
  const enumRows = await client.query<{ name: string; value: string }>(
    `SELECT t.typname AS name, e.enumlabel AS value
       FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid JOIN pg_namespace n ON n.oid = t.typnamespace
      WHERE n.nspname = current_schema() ORDER BY t.typname, e.enumsortorder`,
  );
  for (const r of enumRows.rows) (enums[r.name] ??= []).push(r.value);

  const tables: Record<string, TableShape> = {};
  const tableRows = await client.query<{ name: string }>(
    `SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND c.relname <> '_prisma_migrations'`,
  );
  for (const t of tableRows.rows)
    tables[t.name] = { columns: {}, primaryKey: null, indexes: {}, foreignKeys: {} };

  const columnRows = await client.query<{
    table: string;
    column: string;
    type: string;
    notnull: boolean;
    dflt: string | null;
  }>(
    `SELECT c.relname AS table, a.attname AS column, format_type(a.atttypid, a.atttypmod) AS type,
            a.attnotnull AS notnull, pg_get_expr(d.adbin, d.adrelid) AS dflt
       FROM pg_attribute a
       JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
       LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
      WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped`,
  );
  for (const r of columnRows.rows) {
    const table = tables[r.table];
    if (table) table.columns[r.column] = { type: r.type, nullable: !r.notnull, default: r.dflt };
  }

  const indexRows = await client.query<{
    table: string;
    name: string;
    primary: boolean;
    unique: boolean;
    method: string;
    partial: boolean;
    columns: string[];
  }>(
    `SELECT t.relname AS table, i.relname AS name, x.indisprimary AS primary, x.indisunique AS unique,
            am.amname AS method, x.indpred IS NOT NULL AS partial,
            ARRAY(SELECT COALESCE(a.attname, '<expression>') ||
                         CASE WHEN (x.indoption[k.ord - 1] & 1) = 1 THEN ' DESC' ELSE '' END
                    FROM unnest(x.indkey) WITH ORDINALITY AS k(attnum, ord)
                    LEFT JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum
                   ORDER BY k.ord) AS columns
       FROM pg_index x
       JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
       JOIN pg_namespace n ON n.oid = t.relnamespace JOIN pg_am am ON am.oid = i.relam
      WHERE n.nspname = current_schema() AND t.relname <> '_prisma_migrations'`,
  );
  for (const r of indexRows.rows) {
    const table = tables[r.table];
    if (!table) continue;
    // Prisma only makes plain btree indexes here; anything else must show up as a difference.
    const decorated =
      r.method === 'btree' && !r.partial
        ? r.columns
        : [...r.columns, `<${r.method}${r.partial ? ', partial' : ''}>`];
    if (r.primary) table.primaryKey = { name: r.name, columns: decorated };
    else table.indexes[r.name] = { columns: decorated, unique: r.unique };
  }

  const fkRows = await client.query<{
    table: string;
    name: string;
    columns: string[];
    references: string;
    referenced_columns: string[];
    on_delete: string;
    on_update: string;
  }>(
    `SELECT t.relname AS table, con.conname AS name,
            ARRAY(SELECT a.attname::text FROM unnest(con.conkey) WITH ORDINALITY k(n, ord)
                    JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n ORDER BY k.ord) AS columns,
            r.relname AS references,
            ARRAY(SELECT a.attname::text FROM unnest(con.confkey) WITH ORDINALITY k(n, ord)
                    JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.n ORDER BY k.ord) AS referenced_columns,
            con.confdeltype AS on_delete, con.confupdtype AS on_update
       FROM pg_constraint con
       JOIN pg_class t ON t.oid = con.conrelid JOIN pg_class r ON r.oid = con.confrelid
       JOIN pg_namespace n ON n.oid = t.relnamespace
      WHERE con.contype = 'f' AND n.nspname = current_schema()`,
  );
  for (const r of fkRows.rows) {
    const table = tables[r.table];
    if (!table) continue;
    table.foreignKeys[r.name] = {
      columns: r.columns,
      references: r.references,
      referencedColumns: r.referenced_columns,
      onDelete: FK_ACTIONS[r.on_delete] ?? r.on_delete,
      onUpdate: FK_ACTIONS[r.on_update] ?? r.on_update,
    };
  }
  return { enums, tables };
}

// ---------------------------------------------------------------------------------------------
// Comparison: one readable line per difference.

function diffRecords<T>(
  what: string,
  expected: Record<string, T>,
  actual: Record<string, T>,
  compare: (name: string, e: T, a: T) => string[],
): string[] {
  const out: string[] = [];
  for (const name of Object.keys(expected).sort()) {
    if (!(name in actual)) out.push(`${what} ${name}: in schema.prisma, missing from the migrations`);
    else out.push(...compare(name, expected[name], actual[name]));
  }
  for (const name of Object.keys(actual).sort()) {
    if (!(name in expected))
      out.push(`${what} ${name}: created by the migrations, missing from schema.prisma`);
  }
  return out;
}

function diffValues(where: string, expected: object | null, actual: object | null): string[] {
  const e = JSON.stringify(expected);
  const a = JSON.stringify(actual);
  return e === a ? [] : [`${where}: schema.prisma says ${e}, the migrations made ${a}`];
}

function diffSchemas(expected: SchemaShape, actual: SchemaShape): string[] {
  return [
    ...diffRecords('enum', expected.enums, actual.enums, (name, e, a) =>
      diffValues(`enum ${name} values`, e, a),
    ),
    ...diffRecords('table', expected.tables, actual.tables, (table, e, a) => [
      ...diffRecords(`table ${table} column`, e.columns, a.columns, (c, ec, ac) =>
        diffValues(`table ${table} column ${c}`, ec, ac),
      ),
      ...diffValues(`table ${table} primary key`, e.primaryKey, a.primaryKey),
      ...diffRecords(`table ${table} index`, e.indexes, a.indexes, (i, ei, ai) =>
        diffValues(`table ${table} index ${i}`, ei, ai),
      ),
      ...diffRecords(`table ${table} foreign key`, e.foreignKeys, a.foreignKeys, (f, ef, af) =>
        diffValues(`table ${table} foreign key ${f}`, ef, af),
      ),
    ]),
  ];
}

// ---------------------------------------------------------------------------------------------

describe('schema.prisma and prisma/migrations', () => {
  let db: TestDatabase;
  let actual: SchemaShape;
  const schemaText = fs.readFileSync(SCHEMA_FILE, 'utf8');

  beforeAll(async () => {
    db = await createEmptyDatabase();
    await migrate({ databaseUrl: db.url });
    actual = await withClient(db.url, actualFromDatabase);
  });
  afterAll(async () => {
    await db?.drop();
  });

  it('describe the same database', () => {
    const expected = expectedFromPrisma(schemaText);
    expect(Object.keys(expected.tables).length).toBeGreaterThan(0);
    expect(diffSchemas(expected, actual)).toEqual([]);
  });

  it('the comparison reads what it should (sanity check on the init migration)', () => {
    expect(actual.enums.job_state).toEqual([
      'queued',
      'provisioning',
      'running',
      'success',
      'failure',
      'error',
      'cancelled',
    ]);
    expect(actual.tables.jobs.columns.created_at).toEqual({
      type: 'timestamp(3) with time zone',
      nullable: false,
      default: 'CURRENT_TIMESTAMP',
    });
    expect(actual.tables.jobs.columns.state.default).toBe("'queued'::job_state");
    expect(actual.tables.log_chunks.primaryKey).toEqual({
      name: 'log_chunks_pkey',
      columns: ['job_id', 'first_seq'],
    });
    expect(actual.tables.jobs.indexes.jobs_workflow_id_key).toEqual({
      columns: ['workflow_id'],
      unique: true,
    });
    expect(actual.tables.log_chunks.foreignKeys.log_chunks_job_id_fkey).toEqual({
      columns: ['job_id'],
      references: 'jobs',
      referencedColumns: ['id'],
      onDelete: 'Cascade',
      onUpdate: 'Cascade',
    });
  });

  describe('notice drift', () => {
    const edit = (from: RegExp, to: string): string => {
      expect(schemaText).toMatch(from);
      return schemaText.replace(from, to);
    };

    it('a field added to schema.prisma without a migration', () => {
      const changed = edit(/(\n\s*attempt\s+Int\s+@default\(0\))/, '$1\n  priority Int @default(5)');
      expect(diffSchemas(expectedFromPrisma(changed), actual)).toEqual([
        'table jobs column priority: in schema.prisma, missing from the migrations',
      ]);
    });

    it('an index, a default, a type, nullability and an ON DELETE changed in schema.prisma only', () => {
      const changed = [
        (s: string) => s.replace('@@index([createdAt])', '@@index([createdAt])\n  @@index([state])'),
        (s: string) => s.replace('@default("manual")', '@default("webhook")'),
        (s: string) => s.replace(/(\n\s*streams\s+)String/, '$1String @db.VarChar(16)'),
        (s: string) => s.replace(/(\n\s*host\s+)String/, '$1String?'),
        (s: string) => s.replace(/(model Vm \{[\s\S]*?onDelete: )Cascade/, '$1Restrict'),
      ].reduce((s, f) => f(s), schemaText);
      expect(diffSchemas(expectedFromPrisma(changed), actual)).toEqual([
        `table jobs column source: schema.prisma says {"type":"text","nullable":false,"default":"'webhook'::text"}, the migrations made {"type":"text","nullable":false,"default":"'manual'::text"}`,
        'table jobs index jobs_state_idx: in schema.prisma, missing from the migrations',
        'table log_chunks column streams: schema.prisma says {"type":"character varying(16)","nullable":false,"default":null}, the migrations made {"type":"text","nullable":false,"default":null}',
        'table vms column host: schema.prisma says {"type":"text","nullable":true,"default":null}, the migrations made {"type":"text","nullable":false,"default":null}',
        'table vms foreign key vms_job_id_fkey: schema.prisma says {"columns":["job_id"],"references":"jobs","referencedColumns":["id"],"onDelete":"Restrict","onUpdate":"Cascade"}, the migrations made {"columns":["job_id"],"references":"jobs","referencedColumns":["id"],"onDelete":"Cascade","onUpdate":"Cascade"}',
      ]);
    });

    it('an enum value and a model added to schema.prisma only', () => {
      const changed = edit(/(\n\s*cancelled\n)/, '$1  skipped\n').concat(
        '\nmodel Runner {\n  id String @id\n}\n',
      );
      expect(diffSchemas(expectedFromPrisma(changed), actual)).toEqual([
        `enum job_state values: schema.prisma says ${JSON.stringify([...actual.enums.job_state, 'skipped'])}, the migrations made ${JSON.stringify(actual.enums.job_state)}`,
        'table Runner: in schema.prisma, missing from the migrations',
      ]);
    });

    it('a migration that changes the database without schema.prisma', async () => {
      const other = await createEmptyDatabase();
      try {
        await migrate({ databaseUrl: other.url });
        const drifted = await withClient(other.url, async (c) => {
          await c.query('ALTER TABLE jobs ADD COLUMN runner_version TEXT');
          await c.query('CREATE INDEX jobs_label_idx ON jobs (label)');
          await c.query(`ALTER TYPE job_state ADD VALUE 'skipped'`);
          return actualFromDatabase(c);
        });
        expect(diffSchemas(expectedFromPrisma(schemaText), drifted)).toEqual([
          `enum job_state values: schema.prisma says ${JSON.stringify(actual.enums.job_state)}, the migrations made ${JSON.stringify([...actual.enums.job_state, 'skipped'])}`,
          'table jobs column runner_version: created by the migrations, missing from schema.prisma',
          'table jobs index jobs_label_idx: created by the migrations, missing from schema.prisma',
        ]);
      } finally {
        await other.drop();
      }
    });
  });
});
