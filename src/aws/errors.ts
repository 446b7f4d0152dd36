/**
 * The one classifier of AWS errors (issue 10): what a failed request means to the caller.
 * From the SDK v3 error shape: `name` (the service's error code) and
 * `$metadata.httpStatusCode`. Sources: Amazon S3 API Reference "Error responses" (404
 * NoSuchKey/NotFound, 403 AccessDenied, 412 PreconditionFailed, 503 SlowDown), AWS KMS
 * API Reference "Common errors" (ThrottlingException, AccessDeniedException).
 *
 * A 403 is never "absent": HeadObject answers 403 instead of 404 when the caller may not
 * list the bucket, so reading it as "not there" would overwrite or skip on a guess.
 */
export type AwsErrorKind = 'not-found' | 'access-denied' | 'precondition-failed' | 'throttled' | 'other';

const NOT_FOUND = new Set(['NotFound', 'NoSuchKey', 'NoSuchBucket', 'NotFoundException', 'NoSuchEntity']);
const ACCESS_DENIED = new Set([
  'AccessDenied',
  'AccessDeniedException',
  'Forbidden',
  'UnauthorizedOperation',
]);
const THROTTLED = new Set([
  'SlowDown',
  'Throttling',
  'ThrottlingException',
  'RequestLimitExceeded',
  'TooManyRequestsException',
]);

/** Classifies an error thrown by an AWS SDK v3 client's `send()`; anything else is 'other'. */
export function classifyAwsError(e: unknown): AwsErrorKind {
  const err = e as { name?: string; Code?: string; $metadata?: { httpStatusCode?: number } } | undefined;
  const name = err?.name ?? err?.Code ?? '';
  const status = err?.$metadata?.httpStatusCode;
  if (ACCESS_DENIED.has(name) || status === 403) return 'access-denied';
  if (NOT_FOUND.has(name) || status === 404) return 'not-found';
  if (name === 'PreconditionFailed' || status === 412) return 'precondition-failed';
  if (THROTTLED.has(name) || status === 429 || status === 503) return 'throttled';
  return 'other';
}
