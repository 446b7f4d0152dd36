import { BACKUP_PREFIX, backupKey, compactTime, parseBackupKey } from '../../src/backup/store.js';
import { UserError } from '../../src/errors.js';

const T = Date.parse('2026-12-02T23:42:16.218Z');

test('backupKey: milliseconds in the key, so two snapshots of one label in the same second get two keys', () => {
  // what failed a resumed roll secure: the interrupted roll's pre-roll snapshot and the rerun's, 0.4 s apart
  const first = backupKey(T - 400, 'pre-roll');
  const rerun = backupKey(T, 'pre-roll');
  expect(first).toBe('backups/etcd/20261202T234215.818Z-pre-roll.db');
  expect(rerun).toBe('backups/etcd/20261202T234216.218Z-pre-roll.db');
  expect(backupKey(T + 1, 'pre-roll')).not.toBe(rerun);
  expect(compactTime(Date.parse('2026-01-02T03:04:05Z'))).toBe('20260102T030405.000Z');
});

test('parseBackupKey reads the millisecond form and the whole-second form written before it', () => {
  expect(parseBackupKey(backupKey(T, 'etcd-0'))).toEqual({ takenAtMs: T, member: 'etcd-0' });
  expect(parseBackupKey(`${BACKUP_PREFIX}20261201T220000Z-etcd-a.db`)).toEqual({
    takenAtMs: Date.parse('2026-12-01T22:00:00Z'),
    member: 'etcd-a',
  });
  for (const bad of [
    `${BACKUP_PREFIX}20261201T220000.12Z-etcd-a.db`,
    `${BACKUP_PREFIX}20261201T220000.1234Z-etcd-a.db`,
    `${BACKUP_PREFIX}20261201T220000-etcd-a.db`,
    `${BACKUP_PREFIX}20261201T220000Z-etcd-a.tar`,
    'backups/etcd-lease/20261201T220000Z',
  ]) {
    expect([bad, parseBackupKey(bad)]).toEqual([bad, undefined]);
  }
});

test('backupKey refuses a member name that is not [A-Za-z0-9._-]', () => {
  expect(() => backupKey(T, 'etcd 0')).toThrow(UserError);
  expect(() => backupKey(T, '../x')).toThrow(/member name/);
});
