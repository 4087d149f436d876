/** A job of the build queue: its team and the work, started when both the global and the team's limit allow. */
interface Job {
  id: string;
  teamId: string;
  teamLimit: number;
  run: () => Promise<void>;
}

/**
 * Builds run at most `limit` at once overall and at most the team's limit per team; the rest wait in submission
 * order (a job whose team is at its limit does not hold back other teams' jobs behind it).
 */
export class BuildQueue {
  private readonly waiting: Job[] = [];
  private readonly running = new Map<string, string>();
  private readonly idle: Array<() => void> = [];

  constructor(private limit: number) {}

  get queued(): number {
    return this.waiting.length;
  }

  get active(): number {
    return this.running.size;
  }

  setLimit(n: number): void {
    this.limit = n;
    this.pump();
  }

  submit(job: Job): void {
    this.waiting.push(job);
    this.pump();
  }

  /** Take a job out before it started (cancel of a queued build); false when it is not waiting. */
  remove(id: string): boolean {
    const i = this.waiting.findIndex((j) => j.id === id);
    if (i < 0) return false;
    this.waiting.splice(i, 1);
    return true;
  }

  /** Resolves when nothing runs. */
  async drained(): Promise<void> {
    if (this.running.size === 0) return;
    await new Promise<void>((r) => this.idle.push(r));
  }

  private teamRunning(teamId: string): number {
    let n = 0;
    for (const t of this.running.values()) if (t === teamId) n++;
    return n;
  }

  private pump(): void {
    for (let i = 0; i < this.waiting.length && this.running.size < this.limit; ) {
      const job = this.waiting[i]!;
      if (this.teamRunning(job.teamId) >= job.teamLimit) {
        i++;
        continue;
      }
      this.waiting.splice(i, 1);
      this.running.set(job.id, job.teamId);
      void job.run().finally(() => {
        this.running.delete(job.id);
        this.pump();
        if (this.running.size === 0) for (const r of this.idle.splice(0)) r();
      });
    }
  }
}
