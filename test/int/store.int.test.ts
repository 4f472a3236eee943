import { createOrmStore } from '../../src/adapters/orm/store.ts';
import { silentLogger } from '../../src/logger.ts';
import { freshDatabase } from '../support/services.ts';
import { storeContract } from '../support/store-contract.ts';

storeContract('PostgreSQL (MikroORM)', async () => {
  const db = freshDatabase();
  const store = await createOrmStore({ databaseUrl: db.url, logger: silentLogger(), poolMax: 4 });
  return { store, dispose: db.drop };
});
