/** What a remote client follows of the runtime (`baton serve`): a message's fate (fates.ts) and the numbered events (event-journal.ts). */
import { EventJournal, type JournalDeps } from './event-journal.ts';
import { Fates, type FateDeps } from './fates.ts';
import type { Leadership } from './leadership.ts';

type Deps = Omit<FateDeps, 'leadership'> & Omit<JournalDeps, 'currentTerm'> & { leadership(): Pick<Leadership, 'leading' | 'leader' | 'currentTerm'> };

export function remoteViews(d: Deps): { fates: Fates; journal: EventJournal } {
  return { fates: new Fates(d), journal: new EventJournal({ ...d, currentTerm: () => d.leadership().currentTerm() }) };
}
