// baton serve's OpenAPI document: every /v1 route the app registered is in it, with its method, and
// the document is valid OpenAPI 3.1: checked against a schema of the 3.1 document's structure
// (test/fixtures/openapi-3.1-document.schema.json, written from the specification), and every Schema
// Object in it compiles under JSON Schema 2020-12 (3.1's default dialect). /v1/docs lists every route,
// and so does the README's API table.
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

/**
 * The /v1 routes of the README's API table ("Running baton as a service"), as "METHOD /path". A cell
 * lists paths in backticks: one starting `/v1/` is whole, `[/x]` is optional; one starting with
 * another `/` replaces the last segment of the /v1 path before it in the cell (`/v1/devices/{id}/pause`,
 * `/resume`), and with none before it is not a /v1 route (`/metrics`).
 */
function readmeRoutes(readme: string): string[] {
  const section = readme.split('\n## Running baton as a service\n')[1]!.split('\n## ')[0]!;
  const routes: string[] = [];
  for (const row of section.split('\n').filter((l) => /^\| (GET|POST) \|/.test(l))) {
    const [, method, paths] = row.split('|').map((c) => c.trim());
    let last = '';
    for (const [, p] of paths!.matchAll(/`([^`]+)`/g)) {
      const path = p!.startsWith('/v1/') ? p! : p!.startsWith('/') && last ? last.replace(/\/[^/]+$/, p!) : null;
      if (path === null) continue;
      last = path.replace(/\[.*\]$/, '');
      const optional = /^(.*)\[(.*)\]$/.exec(path);
      for (const full of optional ? [optional[1]!, optional[1]! + optional[2]!] : [path]) routes.push(`${method} ${full}`);
    }
  }
  return routes;
}

describe("the README's API table", () => {
  it('lists every /v1 route of the document, and no other', async () => {
    const doc = (await s.call('GET', '/v1/openapi.json')).json;
    const documented = Object.entries<any>(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`));
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    expect(readmeRoutes(readme).sort()).toEqual(documented.sort());
  });

  it('reads the compact cells as the routes they stand for', () => {
    const table = '\n## Running baton as a service\n| method | path | what |\n|---|---|---|\n| POST | `/v1/devices/{id}/pause`, `/resume`; `/v1/wait` | x |\n| GET | `/v1/dead-letters[/{id}]`, `/drop` | y |\n| GET | `/`, `/metrics` | z |\n## Next\n';
    expect(readmeRoutes(table)).toEqual(['POST /v1/devices/{id}/pause', 'POST /v1/devices/{id}/resume', 'POST /v1/wait', 'GET /v1/dead-letters', 'GET /v1/dead-letters/{id}', 'GET /v1/drop']);
  });
});
