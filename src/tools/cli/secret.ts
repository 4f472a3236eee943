/** `baton secret`: prints a fresh deployment secret. */
import { newSecret } from '../../trust.ts';
import { out, type Command } from './command.ts';

export const secret: Command = {
  summary: 'print a fresh deployment secret (every runtime gets it; agents get only their own key)',
  usage: 'baton secret\n  keep it like a password: BATON_SECRET (or BATON_SECRET_FILE) for every runtime; `baton agent-key ID` derives each agent\'s credential from it',
  options: {},
  async run() {
    out(newSecret());
  },
};
