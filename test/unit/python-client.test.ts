// The Python example client's own logic (scripts/baton_client.py), tested by python3's unittest
// against stub servers in test/python/ (no baton needed): run here so that it is part of the suite.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

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
});
