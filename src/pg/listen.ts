import pg from 'pg';
import { BuildError } from '../errors/index.js';
import { pgError } from './connect.js';
import type { PgDatabase } from './types.js';

/** A `LISTEN` kept open; `close` ends it. */
export interface PgListener {
  close(): Promise<void>;
}

/** Options of {@link listenPg}. */
export interface ListenPgOptions {
  /** the channel (an SQL identifier: lowercase letters, digits, _) */
  channel: string;
  /** each `NOTIFY channel, payload` */
  onNotify(payload: string): void;
  /** the connection was lost and is back: notifications sent meanwhile are lost, so look again */
  onReconnect?(): void;
}

const RETRY_MS = [1_000, 2_000, 5_000, 10_000, 30_000];

/**
 * LISTEN on a channel over a connection of its own (LISTEN belongs to a session, so it cannot come from the pool).
 * A lost connection (a server restart) is opened again, 1 s and then up to 30 s apart, and `onReconnect` is told.
 * The first connection's failure is thrown (`ERR_KILN_DB_UNAVAILABLE`).
 *
 * @example
 * const l = await listenPg(db, { channel: 'kiln_build_events', onNotify: (id) => wake(id) });
 * await l.close();
 */
export async function listenPg(db: PgDatabase, o: ListenPgOptions): Promise<PgListener> {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(o.channel)) throw new BuildError('ERR_KILN_ARGUMENT', `listenPg: "${o.channel}" is not a channel name`);
  let closed = false;
  let client: pg.Client | undefined;
  let timer: NodeJS.Timeout | undefined;
  let failures = 0;

  const open = async (): Promise<void> => {
    const c = new pg.Client({ connectionString: db.connectionString, application_name: 'kiln-listen', connectionTimeoutMillis: 10_000 });
    // only an established connection's loss is retried here; a failed attempt is its caller's to retry
    const onLost = (): void => {
      if (client !== c) return;
      client = undefined;
      if (!closed) retry();
    };
    c.on('error', onLost);
    c.on('end', onLost);
    c.on('notification', (m) => {
      if (m.channel === o.channel) o.onNotify(m.payload ?? '');
    });
    try {
      await c.connect();
      await c.query(`LISTEN ${o.channel}`);
    } catch (err) {
      await c.end().catch(() => undefined);
      throw err;
    }
    if (closed) {
      await c.end().catch(() => undefined);
      return;
    }
    client = c;
    failures = 0;
  };

  const retry = (): void => {
    timer = setTimeout(() => {
      timer = undefined;
      open().then(() => o.onReconnect?.(), () => {
        failures++;
        if (!closed) retry();
      });
    }, RETRY_MS[Math.min(failures, RETRY_MS.length - 1)]);
    timer.unref();
  };

  try {
    await open();
  } catch (err) {
    throw pgError(err, db.displayUrl, 'cannot LISTEN on PostgreSQL');
  }
  return {
    async close() {
      closed = true;
      if (timer) clearTimeout(timer);
      const c = client;
      client = undefined;
      await c?.end().catch(() => undefined);
    },
  };
}
