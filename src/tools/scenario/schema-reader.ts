/** Reading a scenario file's fields: each read checks one value and, when it is wrong, fails naming the file and the field. */
import { BatonError } from '../../errors.ts';

export class Reader {
  constructor(private readonly file: string) {}
  fail(field: string, what: string): never {
    throw new BatonError('invalid-scenario', `${this.file}: "${field}" ${what}; nothing was started`, { file: this.file, field });
  }
  obj(v: unknown, field: string, known: string[]): Record<string, unknown> {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) this.fail(field, 'must be an object');
    for (const k of Object.keys(v)) if (!known.includes(k)) this.fail(`${field ? field + '.' : ''}${k}`, `is not a known field (known: ${known.join(', ')})`);
    return v as Record<string, unknown>;
  }
  int(v: unknown, field: string, min: number, max: number, dflt?: number): number {
    if (v === undefined && dflt !== undefined) return dflt;
    if (!Number.isSafeInteger(v) || (v as number) < min || (v as number) > max) this.fail(field, `must be an integer from ${min} to ${max} (got ${JSON.stringify(v)})`);
    return v as number;
  }
  num(v: unknown, field: string, min: number, max: number, dflt: number): number {
    if (v === undefined) return dflt;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) this.fail(field, `must be a number from ${min} to ${max} (got ${JSON.stringify(v)})`);
    return v;
  }
  str(v: unknown, field: string, dflt?: string): string {
    if (v === undefined && dflt !== undefined) return dflt;
    if (typeof v !== 'string' || v === '') this.fail(field, 'must be a non-empty string');
    return v;
  }
  /** one of `choices` (quoted in the error) */
  oneOf<T extends string>(v: unknown, field: string, choices: readonly T[], dflt?: T): T {
    const s = this.str(v, field, dflt);
    const quoted = choices.map((c) => `"${c}"`);
    if (!(choices as readonly string[]).includes(s)) this.fail(field, `must be ${quoted.length > 1 ? `${quoted.slice(0, -1).join(', ')} or ${quoted.at(-1)}` : quoted[0]} (got ${JSON.stringify(s)})`);
    return s as T;
  }
  bool(v: unknown, field: string, dflt: boolean): boolean {
    if (v === undefined) return dflt;
    if (typeof v !== 'boolean') this.fail(field, 'must be true or false');
    return v;
  }
  ids(v: unknown, field: string, dflt: string[]): string[] {
    if (v === undefined) return dflt;
    if (Number.isSafeInteger(v)) return Array.from({ length: this.int(v, field, 1, 10) }, (_, i) => `${field.replace(/s$/, '')}-${i + 1}`);
    if (!Array.isArray(v) || v.length === 0) this.fail(field, 'must be a count or a non-empty list of ids');
    for (const [i, id] of v.entries()) if (typeof id !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9._-]{0,40}$/.test(id)) this.fail(`${field}[${i}]`, 'must be an id of letters, digits, ".", "_" or "-"');
    if (new Set(v).size !== v.length) this.fail(field, 'has an id twice');
    return v as string[];
  }
}
