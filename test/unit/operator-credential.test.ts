import { UserError } from '../../src/errors.js';
import { operatorName, parseLifetimeS } from '../../src/secrets/pki/operator.js';

test('the operator name comes from the AWS identity: IAM user, assumed-role session', () => {
  expect(operatorName('arn:aws:iam::123456789012:user/alice')).toBe('alice');
  expect(operatorName('arn:aws:iam::123456789012:user/team/bob')).toBe('bob');
  expect(
    operatorName('arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Admin_0123/carol@example.com'),
  ).toBe('carol@example.com');
  expect(() => operatorName('arn:aws:iam::123456789012:root')).toThrow(UserError);
});

test('lifetimes in the ssh time format, 1 s to 7 days; 18h is the default kops uses', () => {
  expect(parseLifetimeS('18h')).toBe(64_800);
  expect(parseLifetimeS('1h30m')).toBe(5400);
  expect(parseLifetimeS('3600')).toBe(3600);
  expect(parseLifetimeS('7d')).toBe(604_800);
  for (const bad of ['0', '8d', '2w', '', 'h', '1x', '-1h'])
    expect(() => parseLifetimeS(bad)).toThrow(UserError);
});
