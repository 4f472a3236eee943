// The Python example client's own logic (scripts/baton_client.py), tested by python3's unittest
// against stub servers in test/python/ (no baton needed): run here so that it is part of the suite.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { DEFAULT_SERVE_PORT } from '../../src/serve/server.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));

describe('scripts/baton_client.py', () => {
  it('passes its unittest suite (python3 -m unittest, standard library only)', async () => {
    const out = await new Promise<{ code: number; stderr: string }>((resolve) => {
      execFile('python3', ['-B', '-m', 'unittest', 'discover', '-s', 'test/python', '-p', 'test_*.py'], { cwd: root, timeout: 60_000 }, (err, _stdout, stderr) =>
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stderr }),
      );
    });
    // unittest reports on stderr: shown whole when it fails
    expect(out.stderr).toMatch(/^Ran \d+ tests? in/m);
    expect({ code: out.code, tail: out.stderr.split('\n').slice(-3).join('\n') }).toEqual({ code: 0, tail: expect.stringMatching(/\nOK\n?$/) });
  });

  it("defaults to baton serve's own address", () => {
    const client = readFileSync(new URL('../../scripts/baton_client.py', import.meta.url), 'utf8');
    expect(client).toMatch(new RegExp(`^DEFAULT_URL = "http://127\\.0\\.0\\.1:${DEFAULT_SERVE_PORT}"$`, 'm'));
    expect(client).toContain('os.environ.get("BATON_URL", DEFAULT_URL)');
  });
});
