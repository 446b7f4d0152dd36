import { ConflictError } from '../errors.js';
import { ownOperation } from '../state/journal.js';
import type { ClusterState } from '../state/schema.js';
import type { ClusterStateStore, StateSnapshot } from '../state/store.js';

/**
 * Writes an operation's journal to the cluster state, one change at a time, each a
 * conditional write. When a write loses the race, the state is read again: if the
 * operation is still ours (another command recorded, e.g., a validation meanwhile) the
 * change is applied on the new revision; if another process holds the operation now, a
 * ConflictError stops this one.
 */
export class JournalWriter {
  #chain: Promise<unknown> = Promise.resolve();
  constructor(
    private readonly store: ClusterStateStore,
    private snap: StateSnapshot,
    readonly operationId: string,
    private readonly owner: { host: string; pid: number },
    private readonly allowDowngrade: boolean,
  ) {}

  /** The state as last written or read. */
  get state(): ClusterState {
    return this.snap.state;
  }

  /**
   * Applies `change` and writes the state (serialised with the other changes of this writer).
   * @throws ConflictError when the operation was taken over
   */
  apply(change: (s: ClusterState) => ClusterState): Promise<void> {
    const run = async () => {
      for (let attempt = 0; ; attempt++) {
        try {
          this.snap = await this.store.write(this.snap, change(this.snap.state), {
            allowDowngrade: this.allowDowngrade,
          });
          return;
        } catch (e) {
          if (!(e instanceof ConflictError) || attempt >= 5) throw e;
          const fresh = await this.store.read();
          const op = ownOperation(fresh.state, this.operationId);
          if (op.owner.host !== this.owner.host || op.owner.pid !== this.owner.pid) {
            throw new ConflictError(
              `operation ${this.operationId} was taken over by ${op.owner.arn} on ${op.owner.host} (pid ${op.owner.pid}); stopping`,
            );
          }
          this.snap = fresh;
        }
      }
    };
    const p = this.#chain.then(run, run);
    this.#chain = p.catch(() => {});
    return p;
  }
}
