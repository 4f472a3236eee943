/** The CLI's environment, read once (`fromEnv`), and the service URLs it names. */
import { fromEnv } from '../../config.ts';

export const env = fromEnv();

/** The service URLs given in the environment (the rest take their defaults). */
export const services = {
  ...(env.amqpUrl ? { amqpUrl: env.amqpUrl } : {}),
  ...(env.databaseUrl ? { databaseUrl: env.databaseUrl } : {}),
  ...(env.managementUrl ? { managementUrl: env.managementUrl } : {}),
};
