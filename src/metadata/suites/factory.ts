/**
 * A fresh, empty repository of one role for each test, and how to drop it. Each role's suite takes one of these,
 * so every implementation of a role (SQLite today) runs the same tests.
 */
export type RepoFactory<R> = () => Promise<{ repo: R; close(): Promise<void> | void }>;

/** Run `fn` against a fresh repository from `factory`, closing it afterwards. */
export async function withRepo<R>(factory: RepoFactory<R>, fn: (repo: R) => Promise<void> | void): Promise<void> {
  const { repo, close } = await factory();
  try {
    await fn(repo);
  } finally {
    await close();
  }
}
