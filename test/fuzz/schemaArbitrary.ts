/**
 * fast-check arbitraries from the JSON schemas of the served OpenAPI document: values the schema
 * allows (boundaries included: min/max lengths and numbers, empty and full arrays), values it
 * refuses (a wrong type, a missing required field, an unknown field, a number out of range, a
 * string too long), and hints that steer named fields to values the database knows, so that valid
 * requests get past validation and do real work.
 */
import fc from 'fast-check';

export type Schema = {
  $ref?: string;
  type?: string | string[];
  enum?: unknown[];
  format?: string;
  pattern?: string;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  minItems?: number;
  maxItems?: number;
  items?: Schema;
  properties?: Record<string, Schema>;
  required?: string[];
  additionalProperties?: boolean | Schema;
  anyOf?: Schema[];
  allOf?: Schema[];
};

/** Text that must be stored and shown as text, never run or rendered. */
export const NASTY_STRINGS = [
  "'; DROP TABLE events; --",
  "' OR '1'='1",
  '1; SELECT pg_sleep(5)',
  "Robert'); DELETE FROM ledger_entries;--",
  '$1',
  '\\x00',
  '%00',
  '../../etc/passwd',
  '<script>alert(1)</script>',
  '=HYPERLINK("http://x")',
  'Ünïcödé ✓ 😀',
  '\u202Eevil',
  ' ',
];

export interface Hints {
  /** Per field name, values the running Tally knows (a member's id, a model it prices). */
  [field: string]: fc.Arbitrary<unknown>;
}

export class SchemaArbitraries {
  constructor(
    private readonly components: Record<string, Schema>,
    private readonly hints: Hints,
  ) {}

  resolve(schema: Schema): Schema {
    if (!schema.$ref) return schema;
    const name = schema.$ref.replace('#/components/schemas/', '');
    const target = this.components[name];
    if (!target) throw new Error(`Unknown schema ${schema.$ref}`);
    return this.resolve(target);
  }

  /** A value the schema allows (as far as the schema says; the service may still refuse it). */
  valid(input: Schema, field?: string): fc.Arbitrary<unknown> {
    const schema = this.resolve(input);
    const plain = this.validPlain(schema);
    const hint = field ? this.hints[field] : undefined;
    return hint ? fc.oneof({ arbitrary: hint, weight: 3 }, { arbitrary: plain, weight: 1 }) : plain;
  }

  private validPlain(schema: Schema): fc.Arbitrary<unknown> {
    if (schema.enum) return fc.constantFrom(...schema.enum);
    if (schema.anyOf) return fc.oneof(...schema.anyOf.map((s) => this.valid(s)));
    if (schema.allOf) {
      return fc
        .tuple(...schema.allOf.map((s) => this.valid(s)))
        .map((parts) => Object.assign({}, ...parts.filter((p) => typeof p === 'object')));
    }
    const types = Array.isArray(schema.type) ? schema.type : schema.type ? [schema.type] : [];
    if (types.length === 0) return fc.jsonValue({ maxDepth: 2 });
    return fc.oneof(...types.map((type) => this.ofType(type, schema)));
  }

  private ofType(type: string, schema: Schema): fc.Arbitrary<unknown> {
    switch (type) {
      case 'null':
        return fc.constant(null);
      case 'boolean':
        return fc.boolean();
      case 'integer':
      case 'number': {
        const min = schema.minimum ?? -1_000_000;
        const max = schema.maximum ?? 1_000_000_000;
        const int = fc.integer({
          min: Math.ceil(min),
          max: Math.floor(Math.min(max, Number.MAX_SAFE_INTEGER)),
        });
        const edges = fc.constantFrom(
          ...[min, max, Math.max(min, 0)].map((n) => (type === 'integer' ? Math.trunc(n) : n)),
        );
        return fc.oneof({ arbitrary: int, weight: 4 }, { arbitrary: edges, weight: 1 });
      }
      case 'string':
        return this.validString(schema);
      case 'array': {
        const items = schema.items ? this.valid(schema.items) : fc.jsonValue({ maxDepth: 1 });
        const minLength = schema.minItems ?? 0;
        // Arrays stay short: the largest allowed batch is one fixed-size request of its own.
        const maxLength = Math.min(schema.maxItems ?? 5, minLength + 5);
        return fc.array(items, { minLength, maxLength });
      }
      case 'object':
        return this.validObject(schema);
      default:
        return fc.constant(null);
    }
  }

  private validString(schema: Schema): fc.Arbitrary<string> {
    const min = schema.minLength ?? 0;
    const max = schema.maxLength ?? 64;
    const fits = (s: string) =>
      s.length >= min && s.length <= max && (!schema.pattern || new RegExp(schema.pattern).test(s));
    if (schema.format === 'date-time') {
      return fc
        .date({
          min: new Date('1999-12-31T00:00:00Z'),
          max: new Date('2100-01-01T00:00:00Z'),
          noInvalidDate: true,
        })
        .map((d) => d.toISOString());
    }
    if (schema.format === 'email') return fc.emailAddress().filter(fits);
    if (schema.format === 'uri') return fc.webUrl().filter(fits);
    if (schema.pattern && schema.pattern !== '\\S') {
      // The largest and smallest numbers a decimal pattern and its length allow are the usual overflow.
      const extremes = ['0', '9'.repeat(max), `${'9'.repeat(Math.max(1, max - 7))}.999999`].filter(fits);
      const matching = fc.stringMatching(new RegExp(schema.pattern)).filter(fits);
      return extremes.length > 0
        ? fc.oneof({ arbitrary: matching, weight: 4 }, { arbitrary: fc.constantFrom(...extremes), weight: 1 })
        : matching;
    }
    const text = fc.string({ minLength: Math.max(min, 1), maxLength: Math.min(max, 40), unit: 'grapheme' });
    const boundary = fc.constantFrom('x'.repeat(Math.max(min, 1)), 'y'.repeat(Math.min(max, 1000)));
    const nasty = fc.constantFrom(...NASTY_STRINGS);
    return fc
      .oneof(
        { arbitrary: text, weight: 4 },
        { arbitrary: boundary, weight: 1 },
        { arbitrary: nasty, weight: 2 },
      )
      .filter(fits);
  }

  private validObject(schema: Schema): fc.Arbitrary<unknown> {
    const properties = schema.properties ?? {};
    if (Object.keys(properties).length === 0) {
      return fc.dictionary(fc.string({ minLength: 1, maxLength: 10 }), fc.jsonValue({ maxDepth: 1 }), {
        maxKeys: 3,
      });
    }
    const record: Record<string, fc.Arbitrary<unknown>> = {};
    for (const [name, property] of Object.entries(properties)) record[name] = this.valid(property, name);
    return fc.record(record, { requiredKeys: schema.required ?? [] });
  }

  /** A value the schema refuses: the first thing a server must notice. */
  invalid(input: Schema): fc.Arbitrary<unknown> {
    const schema = this.resolve(input);
    const options: fc.Arbitrary<unknown>[] = [this.wrongType(schema)];
    const types = Array.isArray(schema.type) ? schema.type : [schema.type];
    if (types.includes('object') && schema.properties) {
      const props = schema.properties;
      const base = this.valid(schema) as fc.Arbitrary<Record<string, unknown>>;
      if (schema.additionalProperties === false) {
        options.push(
          fc
            .tuple(base, fc.constantFrom('zzz_unknown', 'orgId', 'admin', '__proto__x'))
            .map(([value, extra]) => ({ ...value, [extra]: 1 })),
        );
      }
      for (const required of schema.required ?? []) {
        options.push(base.map(({ [required]: _, ...rest }) => rest));
      }
      // One property replaced by a value its own schema refuses.
      const names = Object.keys(props);
      options.push(
        fc
          .constantFrom(...names)
          .chain((name) => fc.tuple(base, fc.constant(name), this.invalid(props[name]!)))
          .map(([value, name, bad]) => ({ ...value, [name]: bad })),
      );
    }
    if (types.includes('array') && schema.items) {
      const items = schema.items;
      options.push(fc.array(this.invalid(items), { minLength: 1, maxLength: 3 }));
      if (schema.maxItems !== undefined && schema.maxItems <= 1000) {
        options.push(fc.constant(Array.from({ length: schema.maxItems + 1 }, () => ({}))));
      }
      if ((schema.minItems ?? 0) > 0) options.push(fc.constant([]));
    }
    if (types.includes('string')) {
      if (schema.maxLength !== undefined) options.push(fc.constant('z'.repeat(schema.maxLength + 1)));
      if ((schema.minLength ?? 0) > 0) options.push(fc.constant(''));
      if (schema.enum) options.push(fc.constant('not-one-of-them'));
      if (schema.format === 'date-time')
        options.push(fc.constantFrom('yesterday', '2026-02-30T00:00:00Z', '2026-01-01'));
      options.push(fc.constantFrom('a\u0000b', '\ud800'));
    }
    if (types.includes('integer') || types.includes('number')) {
      if (schema.minimum !== undefined) options.push(fc.constant(schema.minimum - 1));
      if (schema.maximum !== undefined) options.push(fc.constant(schema.maximum + 1));
      if (types.includes('integer')) options.push(fc.constantFrom(1.5, 2 ** 53 + 2, -0.1));
    }
    return fc.oneof(...options);
  }

  private wrongType(schema: Schema): fc.Arbitrary<unknown> {
    const types = new Set(Array.isArray(schema.type) ? schema.type : schema.type ? [schema.type] : []);
    const candidates: [string, unknown][] = [
      ['string', 'text'],
      ['integer', 7],
      ['number', 1.25],
      ['boolean', true],
      ['object', { a: 1 }],
      ['array', [1, 'two']],
      ['null', null],
    ];
    const wrong = candidates.filter(([type]) => {
      if (types.size === 0) return false;
      if (type === 'integer' && types.has('number')) return false;
      return !types.has(type);
    });
    // A schema that takes any value has no wrong type: the property is left out instead.
    return wrong.length > 0 ? fc.constantFrom(...wrong.map(([, v]) => v)) : fc.constant(undefined);
  }
}
