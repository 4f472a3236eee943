// baton serve's OpenAPI document: every /v1 route the app registered is in it, with its method, and
// the document is valid OpenAPI 3.1: checked against a schema of the 3.1 document's structure
// (test/fixtures/openapi-3.1-document.schema.json, written from the specification), and every Schema
// Object in it compiles under JSON Schema 2020-12 (3.1's default dialect). /v1/docs lists every route.
import { readFileSync } from 'node:fs';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serveDouble } from '../support/serve-double.ts';

const documentSchema = JSON.parse(readFileSync(new URL('../fixtures/openapi-3.1-document.schema.json', import.meta.url), 'utf8'));
let s: Awaited<ReturnType<typeof serveDouble>>;
/** every route the app registered under /v1, as "METHOD /path" (fastify's :param as {param}) */
const registered: string[] = [];
beforeAll(async () => {
  s = await serveDouble();
});
afterAll(() => s.serve.app.close());

/** The Schema Objects of a document: each request body's, response's and parameter's. */
function schemasOf(doc: any): Array<[string, object]> {
  const out: Array<[string, object]> = [];
  for (const [path, ops] of Object.entries<any>(doc.paths)) {
    for (const [method, op] of Object.entries<any>(ops)) {
      for (const p of op.parameters ?? []) out.push([`${method} ${path} parameter ${p.name}`, p.schema]);
      for (const [type, m] of Object.entries<any>(op.requestBody?.content ?? {})) out.push([`${method} ${path} body ${type}`, m.schema]);
      for (const [status, r] of Object.entries<any>(op.responses)) for (const [type, m] of Object.entries<any>(r.content ?? {})) out.push([`${method} ${path} ${status} ${type}`, m.schema]);
    }
  }
  return out;
}

describe('GET /v1/openapi.json', () => {
  it('holds every /v1 route the app registered, and nothing else', async () => {
    const { serveDouble: again } = await import('../support/serve-double.ts');
    // a second app, watched from its first route on: what fastify registers is what the document must hold
    const watched = await again({}, undefined, (app) => app.addHook('onRoute', (r) => {
      const methods = [r.method].flat().filter((m) => m !== 'HEAD');
      if (r.url.startsWith('/v1/')) for (const m of methods) registered.push(`${m} ${r.url.replace(/:(\w+)/g, '{$1}')}`);
    }));
    const doc = (await watched.call('GET', '/v1/openapi.json')).json;
    await watched.serve.app.close();
    const documented = Object.entries<any>(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`));
    expect(registered.length).toBeGreaterThan(20);
    expect(documented.sort()).toEqual([...new Set(registered)].sort());
  });

  it('is a valid OpenAPI 3.1 document, and each of its schemas compiles under JSON Schema 2020-12', async () => {
    const doc = (await s.call('GET', '/v1/openapi.json')).json;
    const ajv = new Ajv2020({ strict: false, allErrors: true });
    const valid = ajv.validate(documentSchema, doc);
    expect(ajv.errors ?? [], JSON.stringify(ajv.errors?.slice(0, 3))).toEqual([]);
    expect(valid).toBe(true);
    const strict = new Ajv2020({ strict: true, strictTypes: false, allErrors: true });
    strict.addKeyword('example');
    const schemas = schemasOf(doc);
    expect(schemas.length).toBeGreaterThan(40);
    for (const [where, schema] of schemas) expect(() => strict.compile(schema), where).not.toThrow();
  });

  it('the structural check can fail: a path parameter not required, a response without a description, an unknown field', async () => {
    const ajv = new Ajv2020({ strict: false });
    const doc = (await s.call('GET', '/v1/openapi.json')).json;
    const broken = [
      (d: any) => (d.paths['/v1/messages/{deviceId}/{seq}'].get.parameters.find((p: any) => p.in === 'path').required = false),
      (d: any) => delete d.paths['/v1/status'].get.responses['200'].description,
      (d: any) => (d.paths['/v1/status'].get.colour = 'red'),
      (d: any) => (d.openapi = '3.0.3'),
    ];
    for (const brk of broken) {
      const d = structuredClone(doc);
      brk(d);
      expect(ajv.validate(documentSchema, d), brk.toString()).toBe(false);
    }
  });
});

describe('GET /v1/docs', () => {
  it('is an HTML page listing every route of the document', async () => {
    const doc = (await s.call('GET', '/v1/openapi.json')).json;
    const page = await s.call('GET', '/v1/docs');
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toContain('text/html');
    for (const path of Object.keys(doc.paths)) expect(page.text).toContain(`<code>${path}</code>`);
  });
});
