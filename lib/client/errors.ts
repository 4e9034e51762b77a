import type { Status } from '../api/index.js';
import { qualifiedResource, type ResourceRef } from './types.js';

/**
 * An error answered by the apiserver (or synthesised for a failed request).
 * `reason` is metav1.Status.reason ('NotFound', 'Conflict', 'Expired', ...).
 */
export class ApiError extends Error {
  readonly code: number;
  readonly reason: string;
  readonly status?: Status;
  readonly verb: string;
  readonly resource: string;
  readonly retryAfterSeconds?: number;

  constructor(opts: {
    code: number;
    reason?: string;
    message: string;
    status?: Status;
    verb: string;
    resource: string;
    retryAfterSeconds?: number;
  }) {
    super(opts.message);
    this.name = 'ApiError';
    this.code = opts.code;
    this.reason = opts.reason ?? reasonForCode(opts.code);
    this.status = opts.status;
    this.verb = opts.verb;
    this.resource = opts.resource;
    this.retryAfterSeconds = opts.retryAfterSeconds;
  }

  /** Build from an HTTP status and the response body (JSON Status or plain text). */
  static fromResponse(
    code: number,
    body: string,
    verb: string,
    resource: string,
    retryAfter?: string | null,
  ): ApiError {
    let status: Status | undefined;
    try {
      const parsed = JSON.parse(body) as Status;
      if (parsed && parsed.kind === 'Status') status = parsed;
    } catch {
      // not JSON: keep the text as the message
    }
    const reason = status?.reason || reasonForCode(code);
    let message = status?.message || body.trim() || `HTTP ${code}`;
    if (code === 403 && !message.includes(verb)) {
      message = `forbidden: cannot ${verb} ${resource}: ${message}`;
    }
    const ra = retryAfter ? Number(retryAfter) : status?.details?.retryAfterSeconds;
    return new ApiError({
      code,
      reason,
      message,
      status,
      verb,
      resource,
      retryAfterSeconds: ra !== undefined && Number.isFinite(ra) ? ra : undefined,
    });
  }
}

function reasonForCode(code: number): string {
  switch (code) {
    case 400:
      return 'BadRequest';
    case 401:
      return 'Unauthorized';
    case 403:
      return 'Forbidden';
    case 404:
      return 'NotFound';
    case 405:
      return 'MethodNotAllowed';
    case 409:
      return 'Conflict';
    case 410:
      return 'Expired';
    case 422:
      return 'Invalid';
    case 429:
      return 'TooManyRequests';
    case 500:
      return 'InternalError';
    case 503:
      return 'ServiceUnavailable';
    case 504:
      return 'Timeout';
    default:
      return 'Unknown';
  }
}

function apiError(err: unknown): ApiError | undefined {
  return err instanceof ApiError ? err : undefined;
}

export const isNotFound = (err: unknown): boolean => apiError(err)?.code === 404;
/** A 409 whose reason is Conflict (stale resourceVersion), not AlreadyExists. */
export const isConflict = (err: unknown): boolean => {
  const e = apiError(err);
  return e?.code === 409 && e.reason !== 'AlreadyExists';
};
export const isAlreadyExists = (err: unknown): boolean => apiError(err)?.reason === 'AlreadyExists';
/** 410 Gone or reason Expired: the resourceVersion asked for is too old. */
export const isGone = (err: unknown): boolean => {
  const e = apiError(err);
  return e?.code === 410 || e?.reason === 'Expired' || e?.reason === 'Gone';
};
export const isTooManyRequests = (err: unknown): boolean => apiError(err)?.code === 429;
export const isForbidden = (err: unknown): boolean => apiError(err)?.code === 403;
export const isInvalid = (err: unknown): boolean => apiError(err)?.code === 422;

// ---- Constructors with the apiserver's wording, for the fake client and for fault injection in tests ----

function statusError(
  code: number,
  reason: string,
  message: string,
  verb: string,
  ref: Pick<ResourceRef, 'group' | 'resource'>,
  name?: string,
): ApiError {
  const status: Status = {
    apiVersion: 'v1',
    kind: 'Status',
    status: 'Failure',
    message,
    reason,
    code,
    details: { name, group: ref.group || undefined, kind: ref.resource },
  };
  return new ApiError({ code, reason, message, status, verb, resource: qualifiedResource(ref) });
}

/** 404: `configmaps "foo" not found`. */
export function newNotFound(
  ref: Pick<ResourceRef, 'group' | 'resource'>,
  name: string,
  verb = 'get',
): ApiError {
  return statusError(404, 'NotFound', `${qualifiedResource(ref)} "${name}" not found`, verb, ref, name);
}

/** 409 AlreadyExists: `configmaps "foo" already exists`. */
export function newAlreadyExists(
  ref: Pick<ResourceRef, 'group' | 'resource'>,
  name: string,
  verb = 'create',
): ApiError {
  return statusError(
    409,
    'AlreadyExists',
    `${qualifiedResource(ref)} "${name}" already exists`,
    verb,
    ref,
    name,
  );
}

/** 409 Conflict, by default the stale-resourceVersion wording of the apiserver. */
export function newConflict(
  ref: Pick<ResourceRef, 'group' | 'resource'>,
  name: string,
  verb = 'update',
  detail = 'the object has been modified; please apply your changes to the latest version and try again',
): ApiError {
  return statusError(
    409,
    'Conflict',
    `Operation cannot be fulfilled on ${qualifiedResource(ref)} "${name}": ${detail}`,
    verb,
    ref,
    name,
  );
}

/** 410 Expired: the watch or list asked for a resourceVersion the server no longer has. */
export function newGone(
  ref: Pick<ResourceRef, 'group' | 'resource'>,
  message = 'too old resource version',
  verb = 'watch',
): ApiError {
  return statusError(410, 'Expired', message, verb, ref);
}

/** 422 Invalid. */
export function newInvalid(
  ref: Pick<ResourceRef, 'group' | 'resource'>,
  name: string,
  detail: string,
  verb = 'create',
): ApiError {
  return statusError(
    422,
    'Invalid',
    `${qualifiedResource(ref)} "${name}" is invalid: ${detail}`,
    verb,
    ref,
    name,
  );
}

/** 400 BadRequest. */
export function newBadRequest(
  ref: Pick<ResourceRef, 'group' | 'resource'>,
  message: string,
  verb: string,
): ApiError {
  return statusError(400, 'BadRequest', message, verb, ref);
}

/** 403 Forbidden with the apiserver's RBAC wording. */
export function newForbidden(
  ref: Pick<ResourceRef, 'group' | 'resource'>,
  verb: string,
  user = 'system:anonymous',
  namespace?: string,
): ApiError {
  const scope = namespace ? `in the namespace "${namespace}"` : 'at the cluster scope';
  const message = `${qualifiedResource(ref)} is forbidden: User "${user}" cannot ${verb} resource "${ref.resource}" in API group "${ref.group}" ${scope}`;
  return statusError(403, 'Forbidden', message, verb, ref);
}

/** 429 TooManyRequests, optionally with Retry-After seconds. */
export function newTooManyRequests(
  ref: Pick<ResourceRef, 'group' | 'resource'>,
  verb: string,
  retryAfterSeconds?: number,
): ApiError {
  const e = statusError(429, 'TooManyRequests', 'Too many requests, please try again later.', verb, ref);
  return new ApiError({
    code: 429,
    reason: e.reason,
    message: e.message,
    status: e.status,
    verb,
    resource: e.resource,
    retryAfterSeconds,
  });
}

/** No HTTP response: connection refused or reset, TLS failure, timeout. `cause` is the socket error. */
export class NetworkError extends Error {
  readonly verb: string;
  readonly url: string;
  /** The errno code when there is one ('ECONNREFUSED', 'ECONNRESET', ...). */
  readonly errno?: string;

  constructor(verb: string, url: string, cause: unknown) {
    const errno = (cause as { code?: unknown } | undefined)?.code;
    const detail = cause instanceof Error ? cause.message : String(cause);
    super(`${verb} ${url}: ${detail}`, { cause });
    this.name = 'NetworkError';
    this.verb = verb;
    this.url = url;
    this.errno = typeof errno === 'string' ? errno : undefined;
  }
}

export const isNetworkError = (err: unknown): boolean => err instanceof NetworkError;

/** A watch stream carried a line that is not a JSON watch event. Never skipped silently. */
export class WatchDecodeError extends Error {
  readonly line: string;

  constructor(url: string, line: string, detail: string) {
    super(
      `malformed watch event from ${url}: ${detail}: ${line.length > 200 ? line.slice(0, 200) + '...' : line}`,
    );
    this.name = 'WatchDecodeError';
    this.line = line;
  }
}
