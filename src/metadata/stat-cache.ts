/** The context stat cache: a file's stat key → its content digest, loaded once per build and saved after it. */
export interface StatCacheRepo {
  statCacheLoad(): Map<string, string>;
  /** insert or replace, in one transaction */
  statCacheSave(entries: Iterable<[string, string]>): void;
}
