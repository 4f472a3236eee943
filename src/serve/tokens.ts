/**
 * The tokens of `baton serve`, from a file (`--tokens FILE`) or the environment (`BATON_TOKENS`): one
 * `label:token` a line (or, in the environment, separated by commas too); blank lines and `#` comments
 * are skipped. The label is what the audit records (`token:<label>`); checked as the inspector's are.
 */
import { BatonError } from '../errors.ts';
import { checkTokens, type InspectorToken } from '../inspector/access.ts';

export function parseTokens(text: string, source: string): InspectorToken[] {
  const tokens = text
    .split(/[\n,]/)
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((line, i) => {
      const at = line.indexOf(':');
      if (at <= 0 || at === line.length - 1) throw new BatonError('invalid-config', `${source}: entry ${i + 1} must be label:token (got ${at <= 0 ? 'no label' : 'no token'})`);
      return { label: line.slice(0, at), token: line.slice(at + 1) };
    });
  try {
    checkTokens({ tokens });
  } catch (err) {
    throw new BatonError('invalid-config', `${source}: ${(err as Error).message.replace(/^createRuntime: option "inspector.tokens" /, 'tokens ')}`);
  }
  return tokens;
}
