/**
 * Generated requests for every operation of the served OpenAPI document: path parameters (ids the
 * database holds, ids of nothing, garbage), query strings and bodies from each operation's schemas,
 * valid or not, and the credentials of the operator, of the org, of another org, or none.
 */
import fc from 'fast-check';
import { type Hints, NASTY_STRINGS, type Schema, SchemaArbitraries } from './schemaArbitrary.ts';

export interface OpenApiDoc {
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, Schema> };
}

interface Parameter {
  name: string;
  in: 'path' | 'query' | 'header';
  required?: boolean;
  schema: Schema;
}

interface Operation {
  parameters?: Parameter[];
  requestBody?: { content: Record<string, { schema: Schema }> };
}

export interface FuzzRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string;
  /** What the generator meant to send, for the failure report. */
  kind: 'valid' | 'invalid';
}

export interface FuzzWorld {
  /** Per path parameter name, ids that exist (of the org the keys belong to). */
  ids: Record<string, string[]>;
  /** Bearer keys by who holds them. */
  keys: { operator: string; org: string; otherOrg: string };
  hints: Hints;
}

const METHODS = ['get', 'post', 'put', 'patch', 'delete'];

/**
 * Path parameter values that name nothing or are not ids at all. (Not `..`: the URL parser resolves
 * it, and the request leaves the operation for another route.)
 */
const STRANGE_IDS = [
  'org_00000000000000000000',
  'mem_doesnotexist',
  'x',
  '0',
  '-1',
  '%00',
  'a'.repeat(300),
  '2026-02-30',
  '9999-99-99',
  ...NASTY_STRINGS.map(encodeURIComponent),
];

export function operations(doc: OpenApiDoc): { method: string; template: string; op: Operation }[] {
  return Object.entries(doc.paths).flatMap(([template, methods]) =>
    Object.entries(methods)
      .filter(([method]) => METHODS.includes(method))
      .map(([method, op]) => ({ method: method.toUpperCase(), template, op })),
  );
}

export function requestArbitrary(doc: OpenApiDoc, world: FuzzWorld): fc.Arbitrary<FuzzRequest> {
  const schemas = new SchemaArbitraries(doc.components.schemas, world.hints);
  const perOperation = operations(doc).map(({ method, template, op }) =>
    operationArbitrary(schemas, world, method, template, op),
  );
  return fc.oneof(...perOperation);
}

function operationArbitrary(
  schemas: SchemaArbitraries,
  world: FuzzWorld,
  method: string,
  template: string,
  op: Operation,
): fc.Arbitrary<FuzzRequest> {
  const params = op.parameters ?? [];
  const pathNames = [...template.matchAll(/\{(\w+)\}/g)].map((m) => m[1]!);
  const path = fc.tuple(...pathNames.map((name) => pathValue(world, name))).map((values) => {
    let i = 0;
    return template.replace(/\{\w+\}/g, () => values[i++]!);
  });
  const query = fc
    .tuple(...params.filter((p) => p.in === 'query').map((p) => queryValue(schemas, p)))
    .map((pairs) => {
      const search = new URLSearchParams();
      for (const pair of pairs) if (pair) search.append(pair[0], pair[1]);
      const text = search.toString();
      return text ? `?${text}` : '';
    });
  const bodySchema = op.requestBody?.content['application/json']?.schema;
  const body: fc.Arbitrary<{ raw?: string; valid: boolean }> = bodySchema
    ? fc.oneof(
        {
          arbitrary: schemas.valid(bodySchema).map((v) => ({ raw: JSON.stringify(v), valid: true })),
          weight: 5,
        },
        {
          arbitrary: schemas.invalid(bodySchema).map((v) => ({ raw: JSON.stringify(v), valid: false })),
          weight: 4,
        },
        { arbitrary: brokenJson().map((raw) => ({ raw, valid: false })), weight: 1 },
      )
    : method === 'GET'
      ? fc.constant({ valid: true })
      : fc.oneof(
          { arbitrary: fc.constant({ valid: true }), weight: 9 },
          {
            arbitrary: fc.jsonValue({ maxDepth: 2 }).map((v) => ({ raw: JSON.stringify(v), valid: true })),
            weight: 1,
          },
        );
  return fc
    .record({ path, query, body, auth: authHeader(world), contentType: contentType() })
    .map(({ path, query, body, auth, contentType }) => {
      const headers: Record<string, string> = { ...auth };
      if (body.raw !== undefined && contentType) headers['content-type'] = contentType;
      return {
        method,
        path: `${path}${query}`,
        headers,
        ...(body.raw !== undefined ? { body: body.raw } : {}),
        kind: body.valid && contentType === 'application/json' ? 'valid' : 'invalid',
      } satisfies FuzzRequest;
    });
}

function pathValue(world: FuzzWorld, name: string): fc.Arbitrary<string> {
  const known = world.ids[name] ?? [];
  const strange = fc.constantFrom(...STRANGE_IDS);
  if (known.length === 0) return strange;
  return fc.oneof({ arbitrary: fc.constantFrom(...known), weight: 8 }, { arbitrary: strange, weight: 2 });
}

function queryValue(schemas: SchemaArbitraries, param: Parameter): fc.Arbitrary<[string, string] | null> {
  const text = (v: unknown) => (typeof v === 'string' ? v : JSON.stringify(v));
  const value = fc.oneof(
    { arbitrary: schemas.valid(param.schema, param.name).map(text), weight: 6 },
    { arbitrary: schemas.invalid(param.schema).map(text), weight: 2 },
    { arbitrary: fc.constantFrom(...NASTY_STRINGS, '', '%', '\u0000', '-1', '1e309'), weight: 1 },
  );
  return fc.option(
    value.map((v) => [param.name, v] as [string, string]),
    { freq: 2, nil: null },
  );
}

function brokenJson(): fc.Arbitrary<string> {
  return fc.oneof(
    fc.constantFrom('', '{', '{"events": [', "{'a': 1}", 'null', '[]', '"text"', '42', '{"a":1}}', '\u0000'),
    fc.string({ maxLength: 50 }),
    fc.jsonValue({ maxDepth: 2 }).map((v) => JSON.stringify(v).slice(0, -1)),
  );
}

function contentType(): fc.Arbitrary<string | null> {
  return fc.oneof(
    { arbitrary: fc.constant('application/json'), weight: 18 },
    {
      arbitrary: fc.constantFrom('text/plain', 'application/x-www-form-urlencoded', 'application/jsonx'),
      weight: 1,
    },
    { arbitrary: fc.constant(null), weight: 1 },
  );
}

function authHeader(world: FuzzWorld): fc.Arbitrary<Record<string, string>> {
  const bearer = (key: string) => ({ authorization: `Bearer ${key}` });
  return fc.oneof(
    { arbitrary: fc.constant(bearer(world.keys.operator)), weight: 10 },
    { arbitrary: fc.constant(bearer(world.keys.org)), weight: 6 },
    { arbitrary: fc.constant(bearer(world.keys.otherOrg)), weight: 1 },
    { arbitrary: fc.constant({}), weight: 1 },
    {
      arbitrary: fc
        .constantFrom(
          'Bearer ',
          'Bearer tally_op_wrong',
          'Basic dXNlcjpwYXNz',
          `Bearer ${world.keys.org}x`,
          'bearer',
        )
        .map((authorization) => ({ authorization })),
      weight: 1,
    },
  );
}
