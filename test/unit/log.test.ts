import { jsonFormat, log, registerSecret, setLogFormat, setLogSink, textFormat } from '../../src/log.js';

/** The one log channel: structured entries, a text and a JSON formatter, secrets masked in both. */
test('text and JSON formats of the same entries; a registered secret is masked in both', () => {
  const lines: string[] = [];
  const restoreSink = setLogSink((l) => lines.push(l));
  registerSecret('hunter2-secret-value');
  try {
    log.step('bootstrap');
    log.info('token hunter2-secret-value used');
    log.warn('careful');
    log.error('failed');
    const restoreFormat = setLogFormat('json');
    log.step('bootstrap');
    log.warn('token hunter2-secret-value');
    restoreFormat();
    log.info('text again');
  } finally {
    restoreSink();
  }
  expect(lines.slice(0, 4)).toEqual([
    '==> bootstrap',
    '    token *** used',
    'warning: careful',
    'error: failed',
  ]);
  const json = lines.slice(4, 6).map((l) => JSON.parse(l) as { time: string; level: string; msg: string });
  expect(json.map(({ level, msg }) => ({ level, msg }))).toEqual([
    { level: 'info', msg: 'bootstrap' },
    { level: 'warn', msg: 'token ***' },
  ]);
  expect(json.every((j) => !Number.isNaN(Date.parse(j.time)))).toBe(true);
  expect(lines[6]).toBe('    text again');
  const e = { level: 'debug' as const, msg: 'x', time: new Date(0) };
  expect(textFormat(e)).toBe('debug: x');
  expect(JSON.parse(jsonFormat(e))).toEqual({ time: '1970-01-01T00:00:00.000Z', level: 'debug', msg: 'x' });
});
