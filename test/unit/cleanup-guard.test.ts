import { cleanupGuard } from '../../src/commands/cleanup.js';
import { UserError } from '../../src/errors.js';

test('without a TTY cleanup fails at once unless the flags authorise it', () => {
  expect(() => cleanupGuard('prod', {}, false)).toThrow(/stdin is not a terminal/);
  expect(() => cleanupGuard('prod', { yes: true }, false)).toThrow(UserError);
  expect(() => cleanupGuard('play-alice', {}, false)).toThrow(/not a terminal/);
  expect(cleanupGuard('prod', { yes: true, confirm: 'prod' }, false)).toEqual({
    shared: true,
    preauthorised: true,
  });
  expect(cleanupGuard('play-alice', { yes: true }, false)).toEqual({ shared: false, preauthorised: true });
});

test('a --confirm naming another environment is refused, TTY or not', () => {
  expect(() => cleanupGuard('prod', { yes: true, confirm: 'staging' }, true)).toThrow(/does not match/);
  expect(() => cleanupGuard('prod', { yes: true }, true)).toThrow(/--confirm prod/);
});

test('with a TTY and no flags, cleanup asks: the name for shared environments, yes/no for playgrounds', () => {
  expect(cleanupGuard('prod', {}, true)).toEqual({ shared: true, preauthorised: false });
  expect(cleanupGuard('play-bob', {}, true)).toEqual({ shared: false, preauthorised: false });
});

test('--purge without a TTY is refused by the guard, before anything is destroyed (issue 11 item 2)', () => {
  expect(() => cleanupGuard('play-alice', { yes: true, purge: true }, false)).toThrow(
    /--purge .* stdin is not a terminal; nothing was destroyed/,
  );
  expect(() => cleanupGuard('prod', { yes: true, confirm: 'prod', purge: true }, false)).toThrow(UserError);
  expect(cleanupGuard('prod', { purge: true }, true)).toEqual({ shared: true, preauthorised: false });
});
