// baton serve's tokens from a file or BATON_TOKENS: label:token entries, comments and blank lines
// skipped, refused naming the source and the entry when malformed, duplicate or badly labelled; and
// the flags baton serve refuses before it starts anything.
import { describe, expect, it } from 'vitest';
import { parseTokens } from '../../src/serve/tokens.ts';
import { commandTable, runCli } from '../../src/tools/cli/main.ts';

describe('parseTokens', () => {
  it('reads label:token lines (a token may hold colons), skipping blanks and comments; commas separate too', () => {
    expect(parseTokens('# ops\nnoc:s3cret\n\n  ci:a:b:c  \n', 'f')).toEqual([{ label: 'noc', token: 's3cret' }, { label: 'ci', token: 'a:b:c' }]);
    expect(parseTokens('noc:x,ci:y', 'BATON_TOKENS')).toEqual([{ label: 'noc', token: 'x' }, { label: 'ci', token: 'y' }]);
    expect(parseTokens('', 'f')).toEqual([]);
  });

  it('refuses, naming the source, an entry without label or token, a bad label, a label or token used twice', () => {
    expect(() => parseTokens('noc:x\njusttoken', '--tokens t.txt')).toThrow('--tokens t.txt: entry 2 must be label:token (got no label)');
    expect(() => parseTokens('noc:', 'BATON_TOKENS')).toThrow('BATON_TOKENS: entry 1 must be label:token (got no token)');
    expect(() => parseTokens('n o c:x', 'f')).toThrow(/^f: tokens \[0\]\.label must be/);
    expect(() => parseTokens('noc:x\nnoc:y', 'f')).toThrow(/used twice/);
    expect(() => parseTokens('noc:x\nci:x', 'f')).toThrow(/same as another token/);
  });
});

describe('baton serve, its flags', () => {
  it('refuses, before starting anything, a missing --devices, an unreadable --tokens file and half a TLS pair', async () => {
    const run = (...args: string[]) => runCli(['serve', ...args], commandTable());
    await expect(run()).rejects.toThrow(/baton serve needs --devices FILE/);
    await expect(run('--devices', 'd.json', '--tokens', '/nonexistent/tokens.txt')).rejects.toThrow(/--tokens \/nonexistent\/tokens\.txt: ENOENT/);
    await expect(run('--devices', 'd.json', '--tls-key', 'k.pem')).rejects.toThrow(/--tls-key and --tls-cert together/);
  });
});
